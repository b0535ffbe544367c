/** The maio command: echo answers a node:net client; sink/blast move bytes; each exits on SIGTERM. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { backend } from '../../src/backend';
import { netSkip } from './helpers';
import { CLI, startCli as start } from './child';

const skip = netSkip;

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return code;
}

test('maio --help, unknown commands and options fail in one line', () => {
  const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /maio echo \[--port P\]/);
  assert.match(help.stdout, /maio doctor/);
  assert.match(help.stdout, /maio blast/);
  const bad = spawnSync(process.execPath, [CLI, 'nope'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /unknown command 'nope'/);
  const badOpt = spawnSync(process.execPath, [CLI, 'echo', '--bogus', '1'], { encoding: 'utf8' });
  assert.equal(badOpt.status, 1);
  assert.match(badOpt.stderr, /unknown option --bogus/);
  // A bad flag fails before the backend line: one line on stderr, the error.
  for (const args of [['echo', '--bogus', '1'], ['sink', '--port', 'x'], ['blast', '--size', '1'], ['proxy', '--bogus'], ['self-check', '--impl', 'bun']]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /maio backend:/, args.join(' '));
  }
  // An unknown proxy flag is named as such, not as one missing its value.
  const proxyBogus = spawnSync(process.execPath, [CLI, 'proxy', '--bogus'], { encoding: 'utf8' });
  assert.match(proxyBogus.stderr, /unknown option --bogus/);
});

test('maio <command> --help explains every option the command takes', () => {
  const flags: Record<string, string[]> = {
    echo: ['--port', '--host'],
    sink: ['--port', '--host'],
    blast: ['--port', '--host', '--size', '--duration', '--bytes'],
    proxy: ['--listen', '--upstream', '--balance', '--max-connections', '--idle-timeout', '--health-interval', '--retry-down', '--connect-timeout', '--metrics', '--mode', '--splice-after', '--config'],
    doctor: ['--json', '--duration-ms'],
    'self-check': ['--round-trips', '--duration-ms', '--bulk-ms', '--impl'],
  };
  for (const [cmd, list] of Object.entries(flags)) {
    const r = spawnSync(process.execPath, [CLI, cmd, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, cmd);
    assert.match(r.stdout, new RegExp(`^usage: maio ${cmd} `), cmd);
    // Each flag on a line of its own with words after it: an explanation, not only the usage line.
    for (const f of list) assert.match(r.stdout, new RegExp(`^  ${f}\\b.*\\w{3,}`, 'm'), `${cmd} --help explains ${f}`);
  }
});

test('maio echo answers a node:net client and exits on SIGTERM', { skip }, async () => {
  const { child, line, err } = start(['echo', '--port', '0']);
  const m = /^listening (\d+)$/.exec(await line);
  assert.ok(m, 'listening <port>');
  assert.match(err(), new RegExp(`^maio backend: ${backend().mode} \\(`), 'the one-line banner names the backend');
  const c = net.connect(Number(m[1]), '127.0.0.1');
  await once(c, 'connect');
  const payload = Buffer.alloc(300000, 'e');
  let got = Buffer.alloc(0);
  c.on('data', (d) => (got = Buffer.concat([got, d])));
  c.write(payload);
  while (got.length < payload.length) await new Promise((r) => setTimeout(r, 5));
  assert.ok(got.equals(payload));
  c.destroy();
  assert.equal(await stop(child), 0);
});

test('maio blast into maio sink moves the bytes; both exit cleanly', { skip }, async () => {
  const BYTES = 32 << 20;
  const sink = start(['sink', '--port', '0']);
  const m = /^listening (\d+)$/.exec(await sink.line);
  assert.ok(m);
  const blast = start(['blast', '--port', m[1]!, '--bytes', String(BYTES)]);
  assert.equal(await blast.line, 'ready');
  const [code] = (await once(blast.child, 'exit')) as [number];
  assert.equal(code, 0, blast.err());
  assert.match(blast.err(), new RegExp(`maio blast: ${BYTES} bytes`));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await stop(sink.child), 0);
  const bytes = Number(/maio sink: (\d+) bytes/.exec(sink.err())?.[1]);
  assert.equal(bytes, BYTES);
});

test('maio blast --duration stops by itself; SIGTERM ends it early too', { skip }, async () => {
  const sink = start(['sink', '--port', '0']);
  const port = /^listening (\d+)$/.exec(await sink.line)![1]!;
  const timed = start(['blast', '--port', port, '--duration', '0.3']);
  assert.equal(await timed.line, 'ready');
  const [code] = (await once(timed.child, 'exit')) as [number];
  assert.equal(code, 0);
  const endless = start(['blast', '--port', port]);
  assert.equal(await endless.line, 'ready');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await stop(endless.child), 0);
  assert.equal(await stop(sink.child), 0);
});
