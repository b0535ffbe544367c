/**
 * The proxy on unix domain sockets: listening on a path, dialling upstreams
 * at a path (and a TCP one beside it), health checks on both, the socket
 * file removed at close; "unix:PATH" in parseHostPort, { path } upstreams,
 * reload() onto a unix upstream, the PROXY header for a unix client (v1
 * UNKNOWN, v2 PROXY over AF_UNIX), and `maio proxy --listen unix:PATH`.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Proxy, parseHostPort } from '../../src/paths/proxy';
import { decodeProxyHeader } from '../../src/gateway/proxy-protocol';
import { listen, until } from './helpers';
import { bufferSkip } from './maio-helpers';
import { CLI } from './proxy-helpers';
import { spawn } from 'node:child_process';

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
  // Registered first: an upstream that ends at once may close the connection before the answer is read.
  const closed = once(c, 'close');
  await once(c, 'connect');
  let got = '';
  c.on('data', (d) => (got += String(d)));
  c.write(msg);
  await until(() => got.length >= msg.length + 2, 'the answer');
  c.end();
  await closed;
  return got;
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'maio-proxy-unix-'));

test('parseHostPort reads unix:PATH; a bad path is a typed error', () => {
  assert.deepEqual(parseHostPort('unix:/run/app.sock'), { host: '', port: 0, path: '/run/app.sock' });
  assert.deepEqual(parseHostPort('unix:\0abstract'), { host: '', port: 0, path: '\0abstract' });
  assert.throws(() => parseHostPort('unix:'), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => parseHostPort(`unix:/${'x'.repeat(200)}`), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => new Proxy({ listen: { host: '', port: 0, path: 5 as unknown as string }, upstreams: [{ host: '127.0.0.1', port: 1 }] }), {
    code: 'ERR_MAIO_INVALID_ADDRESS',
  });
  assert.throws(() => new Proxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ path: '' }] }), { code: 'ERR_MAIO_INVALID_ADDRESS' });
});

test('a proxy on a unix path, to a unix upstream and a TCP one: bytes both ways, health, cleanup', { skip: bufferSkip }, async () => {
  const dir = tmp();
  const upPath = path.join(dir, 'up.sock');
  const a = echo('a');
  await new Promise<void>((r) => a.listen(upPath, r));
  const b = echo('b');
  const bPort = await listen(b);
  const front = path.join(dir, 'front.sock');
  // the unix upstream in its UpstreamSpec form, { path }
  const proxy = new Proxy({ listen: { path: front }, upstreams: [{ path: upPath }, { host: '127.0.0.1', port: bPort }] });
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
  assert.match(proxy.metrics(), new RegExp(`maio_proxy_upstream_up\\{upstream="unix:${upPath.replace(/[/.]/g, '\\$&')}"\\} 1`));
  // the unix upstream goes away: its health check says so
  await new Promise((r) => a.close(r));
  assert.deepEqual(await proxy.checkHealth(), [false, true]);
  await proxy.close();
  assert.equal(fs.existsSync(front), false, "the proxy's socket file is removed at close");
  await new Promise((r) => b.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('reload() moves new connections from a TCP upstream to a unix one; listen cannot move to a path', { skip: bufferSkip }, async () => {
  const dir = tmp();
  const b = echo('b');
  const bPort = await listen(b);
  const upPath = path.join(dir, 'up.sock');
  const a = echo('a');
  await new Promise<void>((r) => a.listen(upPath, r));
  const front = path.join(dir, 'front.sock');
  const proxy = new Proxy({ listen: parseHostPort(`unix:${front}`), upstreams: [{ host: '127.0.0.1', port: bPort }] });
  try {
    await proxy.listen();
    assert.equal(await ask(front, 'x'), 'b:x');
    proxy.reload({ listen: { path: front }, upstreams: [parseHostPort(`unix:${upPath}`)] });
    assert.equal(await ask(front, 'y'), 'a:y');
    assert.throws(() => proxy.reload({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ path: upPath }] }), { code: 'ERR_MAIO_CONFIG' });
    assert.equal(await ask(front, 'z'), 'a:z');
  } finally {
    await proxy.close();
    await new Promise((r) => a.close(r));
    await new Promise((r) => b.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('PROXY header for a unix client: v1 UNKNOWN, v2 PROXY over AF_UNIX naming the listen path', { skip: bufferSkip }, async () => {
  const dir = tmp();
  const front = path.join(dir, 'front.sock');
  const heads: Buffer[] = [];
  const up = net.createServer((s) => {
    s.on('error', () => {});
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const r = decodeProxyHeader(got);
      if (!r.done || got.length - r.length < 2) return; // the header and the client's two bytes
      heads.push(got.subarray(0, r.length));
      s.end(`${r.header.command} ${r.header.addresses === null ? 'none' : 'addresses'}|${got.subarray(r.length)}`);
      got = Buffer.alloc(0);
    });
  });
  const upPort = await listen(up);
  const proxy = new Proxy({ listen: { path: front }, upstreams: [{ host: '127.0.0.1', port: upPort, sendProxy: 'v1' }] });
  try {
    await proxy.listen();
    const v1 = await ask(front, 'hi');
    assert.equal(v1, 'proxy none|hi');
    assert.equal(heads[0]!.toString('latin1'), 'PROXY UNKNOWN\r\n');
    proxy.reload({ listen: { path: front }, upstreams: [{ host: '127.0.0.1', port: upPort }], sendProxy: 'v2' });
    assert.equal(await ask(front, 'yo'), 'proxy none|yo');
    const h = heads[1]!;
    assert.equal(h.length, 16 + 216);
    assert.equal(h[12], 0x21, 'v2 PROXY, not LOCAL: the connection is relayed');
    assert.equal(h[13], 0x31, 'AF_UNIX over STREAM');
    assert.equal(h.readUInt16BE(14), 216);
    assert.ok(h.subarray(16, 16 + 108).every((x) => x === 0), 'an unnamed client: an empty source path');
    assert.equal(h.subarray(16 + 108, 16 + 108 + Buffer.byteLength(front)).toString(), front);
    assert.equal(h[16 + 108 + Buffer.byteLength(front)], 0);
    assert.equal(proxy.gatewayStats().proxyHeaders.sent, 2);
  } finally {
    await proxy.close();
    await new Promise((r) => up.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('maio proxy with unix:PATH listen and upstream (config file) prints "listening unix:PATH" and forwards; --metrics refuses a path', { skip: bufferSkip }, async () => {
  const dir = tmp();
  const upPath = path.join(dir, 'up.sock');
  const a = echo('a');
  await new Promise<void>((r) => a.listen(upPath, r));
  const front = path.join(dir, 'front.sock');
  const run = (args: string[]) => {
    const child = spawn(process.execPath, [CLI, 'proxy', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    return { child, out: () => out, err: () => err, exited };
  };
  const bad = run(['--listen', `unix:${front}`, '--upstream', `unix:${upPath}`, '--metrics', `unix:${dir}/m.sock`]);
  assert.equal(await bad.exited, 1);
  assert.match(bad.err(), /metrics must be HOST:PORT/);
  const many = run(['--listen', `unix:${front}`, '--upstream', `unix:${upPath}`, '--workers', '2']);
  assert.equal(await many.exited, 1);
  assert.match(many.err(), /--workers needs a TCP --listen/);
  // the good one from a config file: unix:PATH there means what it means as a flag
  const file = path.join(dir, 'proxy.json');
  fs.writeFileSync(file, JSON.stringify({ listen: `unix:${front}`, upstreams: [{ address: `unix:${upPath}`, weight: 2 }] }));
  const p = run(['--config', file]);
  try {
    await until(() => p.out().includes('\n') || p.child.exitCode !== null, 'the banner');
    assert.equal(p.out(), `listening unix:${front}\n`, p.err());
    assert.equal(await ask(front, 'cli'), 'a:cli');
  } finally {
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.err());
    await new Promise((r) => a.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
