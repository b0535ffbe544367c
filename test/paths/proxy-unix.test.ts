/**
 * The proxy on unix domain sockets: listening on a path, dialling upstreams
 * at a path (and a TCP one beside it), health checks on both, the socket
 * file removed at close; "unix:PATH" in parseHostPort.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Proxy, parseHostPort } from '../../src/paths/proxy';
import { listen, until } from './helpers';
import { bufferSkip } from './maio-helpers';

/** A node:net upstream answering each connection's bytes with `name:` and the bytes. */
function echo(name: string): net.Server {
  return net.createServer((s) => {
    s.on('data', (d) => s.write(`${name}:${String(d)}`));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
}

/** One round trip through the proxy's unix socket. */
async function ask(at: string, msg: string): Promise<string> {
  const c = net.connect(at);
  await once(c, 'connect');
  let got = '';
  c.on('data', (d) => (got += String(d)));
  c.write(msg);
  await until(() => got.length >= msg.length + 2, 'the answer');
  c.end();
  await once(c, 'close');
  return got;
}

test('parseHostPort reads unix:PATH; a bad path is a typed error', () => {
  assert.deepEqual(parseHostPort('unix:/run/app.sock'), { host: '', port: 0, path: '/run/app.sock' });
  assert.deepEqual(parseHostPort('unix:\0abstract'), { host: '', port: 0, path: '\0abstract' });
  assert.throws(() => parseHostPort('unix:'), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => parseHostPort(`unix:/${'x'.repeat(200)}`), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => new Proxy({ listen: { host: '', port: 0, path: 5 as unknown as string }, upstreams: [{ host: '127.0.0.1', port: 1 }] }), {
    code: 'ERR_MAIO_INVALID_ADDRESS',
  });
});

test('a proxy on a unix path, to a unix upstream and a TCP one: bytes both ways, health, cleanup', { skip: bufferSkip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-proxy-unix-'));
  const upPath = path.join(dir, 'up.sock');
  const a = echo('a');
  await new Promise<void>((r) => a.listen(upPath, r));
  const b = echo('b');
  const bPort = await listen(b);
  const front = path.join(dir, 'front.sock');
  const proxy = new Proxy({ listen: parseHostPort(`unix:${front}`), upstreams: [parseHostPort(`unix:${upPath}`), { host: '127.0.0.1', port: bPort }] });
  const addr = await proxy.listen();
  assert.deepEqual(addr, { address: front, family: 'unix', port: 0 });
  assert.deepEqual(proxy.address(), addr);
  assert.deepEqual(await proxy.checkHealth(), [true, true]);
  // round robin: one connection to each upstream
  const answers = [await ask(front, 'one'), await ask(front, 'two')];
  assert.deepEqual(answers.map((s) => s.slice(2)), ['one', 'two']);
  assert.deepEqual(answers.map((s) => s[0]).sort(), ['a', 'b'], `each upstream answered once: ${answers.join(', ')}`);
  await until(() => proxy.connections === 0, 'the connections to end');
  const st = proxy.stats();
  assert.equal(st.completed, 2);
  assert.deepEqual(
    st.upstreams.map((u) => ({ path: u.path, connections: u.connections })),
    [
      { path: upPath, connections: 1 },
      { path: undefined, connections: 1 },
    ],
  );
  // the unix upstream goes away: its health check says so
  await new Promise((r) => a.close(r));
  assert.deepEqual(await proxy.checkHealth(), [false, true]);
  await proxy.close();
  assert.equal(fs.existsSync(front), false, "the proxy's socket file is removed at close");
  await new Promise((r) => b.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});
