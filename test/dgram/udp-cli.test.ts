/** maio udp-sink / udp-blast: datagrams move from one process to another, both report and exit cleanly. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import { netSkip as skip } from '../net/helpers';

const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

function start(args: string[]): { child: ChildProcess; line: Promise<string>; stderr: () => string } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const line = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before its ready line: ${err}`)));
  });
  return { child, line, stderr: () => err };
}

for (const gso of [1, 0]) {
  test(`maio udp-blast --count to maio udp-sink (gso ${gso}): every datagram sent, the sink counts what arrived`, { skip, timeout: 30000 }, async () => {
    const sink = start(['udp-sink', '--port', '0']);
    const port = Number(/^listening (\d+)$/.exec(await sink.line)![1]);
    const blast = start(['udp-blast', '--port', String(port), '--count', '2000', '--duration', '0', '--gso', String(gso), '--size', '1200']);
    const [code] = (await once(blast.child, 'exit')) as [number];
    assert.equal(code, 0, blast.stderr());
    const sent = /udp-blast: (\d+) datagrams, (\d+) bytes/.exec(blast.stderr());
    assert.ok(sent, blast.stderr());
    assert.equal(Number(sent[1]), 2000);
    assert.equal(Number(sent[2]), 2000 * 1200);
    if (gso) assert.match(blast.stderr(), /gso batches [1-9]/);
    await new Promise((r) => setTimeout(r, 200));
    const exited = once(sink.child, 'exit');
    sink.child.kill('SIGTERM');
    const [sinkCode] = (await exited) as [number];
    assert.equal(sinkCode, 0, sink.stderr());
    const got = /udp-sink: (\d+) datagrams, (\d+) bytes/.exec(sink.stderr());
    assert.ok(got, sink.stderr());
    // Loopback may drop a burst when the sink's socket buffer is full: counted, not assumed away.
    assert.ok(Number(got[1]) > 0 && Number(got[1]) <= 2000, sink.stderr());
    assert.equal(Number(got[2]), Number(got[1]) * 1200);
  });
}
