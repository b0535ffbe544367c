/**
 * maio proxy (the Proxy class in-process): idle timeout, connection limit,
 * health checks with an interval. Real sockets on loopback; waits are on
 * events, and the only time bounds are one-sided (a busy machine makes them
 * longer, never shorter) or generous.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import type * as net from 'node:net';
import { Proxy } from '../../src/paths/proxy';
import { until } from './helpers';
import { bufferSkip } from './maio-helpers';
import { client, closed, upstream } from './proxy-helpers';

const local = (port: number) => ({ host: '127.0.0.1', port });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('idle timeout: idle connections are closed on both sides after it; active ones (either direction) are not', { skip: bufferSkip }, async () => {
  // 1.2 s: an active connection would be closed only if this process stalled for about a second.
  const T = 1200;
  const up = await upstream('u');
  const proxy = new Proxy({ listen: local(0), upstreams: [local(up.port)], idleTimeout: T / 1000 });
  const sockets: net.Socket[] = [];
  let stop = false;
  let pinger: Promise<void> | undefined;
  try {
    const addr = await proxy.listen();
    // The proxy's clock for the idle connection starts after this instant (it accepts later),
    // so "lived at least T" is measured from here: a slow set-up of the others cannot shorten it.
    const idleFrom = performance.now();
    // idle: never sends. upActive: the client sends every 100 ms. downActive: the upstream does.
    const idle = await client(addr.port);
    sockets.push(idle);
    await until(() => up.conns.length === 1, 'upstream side of the idle connection');
    const idleU = up.conns[0]!;
    const upActive = await client(addr.port);
    sockets.push(upActive);
    await until(() => up.conns.length === 2, 'upstream side of the second connection');
    const upActiveU = up.conns[1]!;
    const downActive = await client(addr.port);
    sockets.push(downActive);
    await until(() => up.conns.length === 3, 'upstream side of the third connection');
    const downActiveU = up.conns[2]!;

    let upGot = 0;
    upActiveU.on('data', (d: Buffer) => (upGot += d.length));
    let downGot = 0;
    downActive.on('data', (d: Buffer) => (downGot += d.length));
    const closes = {
      idle: closed(idle),
      idleU: closed(idleU),
      upActive: closed(upActive),
      upActiveU: closed(upActiveU),
      downActive: closed(downActive),
      downActiveU: closed(downActiveU),
    };
    let upSent = 0;
    let downSent = 0;
    // When the last byte of upActive was written: the proxy saw it later, so its idle clock for
    // that connection started after this instant.
    let lastUpSentAt = 0;
    pinger = (async () => {
      while (!stop) {
        upActive.write('u');
        lastUpSentAt = performance.now();
        upSent++;
        downActiveU.write('d');
        downSent++;
        await sleep(100);
      }
    })();
    await Promise.all([closes.idle, closes.idleU]);
    const lived = performance.now() - idleFrom;
    // 5 ms: libuv's timers run on a millisecond clock cached per loop turn.
    assert.ok(lived >= T - 5, `the idle connection lived ${lived.toFixed(0)} ms, at least the timeout (${T} ms)`);
    // Keep the others busy half a timeout longer: active for 1.5 timeouts at least.
    const t1 = performance.now();
    while (performance.now() - t1 < T / 2) await sleep(50);
    stop = true;
    await pinger;
    assert.equal(upActive.destroyed, false, 'a connection with client bytes every 100 ms stays open');
    assert.equal(downActive.destroyed, false, 'a connection with upstream bytes every 100 ms stays open');
    await until(() => upGot === upSent && downGot === downSent, 'every ping forwarded');
    assert.equal(proxy.stats().idleClosed, 1);
    // Now idle too: closed on both sides, and not before a full timeout after the last byte.
    await Promise.all([closes.upActive, closes.upActiveU, closes.downActive, closes.downActiveU]);
    const idleFor = performance.now() - lastUpSentAt;
    assert.ok(idleFor >= T - 5, `closed ${idleFor.toFixed(0)} ms after its last byte, timeout ${T} ms`);
    await until(() => proxy.connections === 0, 'no connection left');
    const st = proxy.stats();
    assert.equal(st.idleClosed, 3);
    assert.equal(st.errors, 0, 'an idle close is not an error');
    assert.equal(st.completed, 3);
  } finally {
    // A failed assertion must not leave the pinger and the proxy running until the file times out.
    stop = true;
    await pinger;
    for (const s of sockets) s.destroy();
    await proxy.close();
    await up.close();
  }
});

test('connection limit: the N+1-th client is closed while N are open, and accepted again after one ends', { skip: bufferSkip }, async () => {
  const up = await upstream('u');
  const proxy = new Proxy({ listen: local(0), upstreams: [local(up.port)], maxConnections: 2 });
  const addr = await proxy.listen();
  const c1 = await client(addr.port);
  const c2 = await client(addr.port);
  await until(() => up.conns.length === 2 && proxy.connections === 2, 'two forwarded connections');
  // The third is accepted by the kernel, then closed by the proxy before any upstream connect.
  const c3 = await client(addr.port);
  c3.write('never forwarded');
  await closed(c3);
  assert.equal(proxy.stats().rejected, 1);
  assert.equal(up.conns.length, 2, 'no upstream connection for the refused client');
  assert.equal(proxy.connections, 2);
  // The two open ones still work.
  const got = new Map<net.Socket, string>();
  for (const s of up.conns) s.on('data', (d: Buffer) => got.set(s, (got.get(s) ?? '') + d.toString()));
  c1.write('one');
  c2.write('two!');
  await until(() => [...got.values()].sort().join() === 'one,two!', 'bytes of both open connections');
  // One ends (both halves), the next client gets in.
  c1.end();
  const U1 = [...got].find(([, v]) => v === 'one')![0];
  U1.end();
  await closed(c1);
  await until(() => proxy.connections === 1, 'the limit to have room');
  const c4 = await client(addr.port);
  await until(() => up.conns.length === 3, 'the fourth client reaches the upstream');
  c4.write('four');
  const U4 = up.conns[2]!;
  const [d] = (await once(U4, 'data')) as [Buffer];
  assert.equal(d.toString(), 'four');
  U4.write('back');
  const [r] = (await once(c4, 'data')) as [Buffer];
  assert.equal(r.toString(), 'back');
  assert.equal(proxy.stats().rejected, 1);
  assert.equal(proxy.stats().accepted, 3);
  for (const c of [c2, c4]) c.destroy();
  await up.close();
  await proxy.close();
});

function upstreamEvent(proxy: Proxy, port: number, healthy: boolean): Promise<void> {
  return new Promise((resolve) => {
    const on = (u: { port: number }, h: boolean) => {
      if (u.port === port && h === healthy) {
        proxy.off('upstream', on);
        resolve();
      }
    };
    proxy.on('upstream', on);
  });
}

test('health checks: an upstream that goes down is marked down without traffic, traffic fails over, and it is used again when back', { skip: bufferSkip }, async () => {
  const interval = 0.2;
  let a = await upstream('a');
  const b = await upstream('b');
  const portA = a.port;
  const proxy = new Proxy({ listen: local(0), upstreams: [local(portA), local(b.port)], healthInterval: interval });
  const addr = await proxy.listen();
  const uA = () => proxy.stats().upstreams[0]!;

  // Down: only the health checks can notice, no client connects meanwhile.
  const down = upstreamEvent(proxy, portA, false);
  const t0 = performance.now();
  await a.close();
  await down;
  const took = performance.now() - t0;
  assert.ok(took < 5000 + interval * 1000, `marked down after ${took.toFixed(0)} ms (interval ${interval * 1000} ms)`);
  assert.equal(uA().healthy, false);
  assert.equal(uA().connectFailures, 0, 'marked down by a health check, not by a client connect');

  // Fail over: every connection goes to b, none is even tried on a.
  const cs: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await client(addr.port);
    c.write(`c${i}`);
    cs.push(c);
  }
  await until(() => b.busy().length === 4, 'four connections on b');
  assert.equal(uA().connectFailures, 0);
  assert.equal(uA().connections, 0);

  // Back on the same port: marked up by a health check, then round-robin uses it again.
  const upAgain = upstreamEvent(proxy, portA, true);
  a = await upstream('a again', portA);
  await upAgain;
  assert.equal(uA().healthy, true);
  for (let i = 0; i < 4; i++) {
    const c = await client(addr.port);
    c.write(`d${i}`);
    cs.push(c);
    await until(() => a.busy().length + b.busy().length === 5 + i, 'the connection to reach an upstream');
  }
  assert.equal(a.busy().length, 2, 'a takes half of the new connections');
  assert.equal(b.busy().length, 6);
  cs.forEach((c) => c.destroy());
  await Promise.all([a.close(), b.close()]);
  await proxy.close();
});

test('least-connections counts connects in flight: a burst of 10 clients is split 5/5', { skip: bufferSkip }, async () => {
  const a = await upstream('a');
  const b = await upstream('b');
  const proxy = new Proxy({ listen: local(0), upstreams: [local(a.port), local(b.port)], balance: 'least-connections' });
  const addr = await proxy.listen();
  const cs = await Promise.all(Array.from({ length: 10 }, () => client(addr.port)));
  cs.forEach((c, i) => c.write(`c${i}`));
  await until(() => a.busy().length + b.busy().length === 10, 'all ten forwarded');
  assert.deepEqual([a.busy().length, b.busy().length], [5, 5]);
  assert.deepEqual(
    proxy.stats().upstreams.map((u) => u.active),
    [5, 5],
  );
  cs.forEach((c) => c.destroy());
  await Promise.all([a.close(), b.close()]);
  await until(() => proxy.connections === 0, 'all closed');
  assert.deepEqual(
    proxy.stats().upstreams.map((u) => u.active),
    [0, 0],
  );
  await proxy.close();
});

test('without health checks, a down upstream gets one client connect again after retryDown, and is used again once it works', { skip: bufferSkip }, async () => {
  let a = await upstream('a');
  const b = await upstream('b');
  const portA = a.port;
  await a.close();
  const proxy = new Proxy({ listen: local(0), upstreams: [local(portA), local(b.port)], retryDown: 0.3 });
  const addr = await proxy.listen();
  const uA = () => proxy.stats().upstreams[0]!;
  const cs: net.Socket[] = [];
  const open = async (tag: string) => {
    const c = await client(addr.port);
    c.write(tag);
    cs.push(c);
  };
  // The first client finds a down (marked down, fails over to b); the next ones go to b only.
  await open('x0');
  await until(() => b.busy().length === 1, 'x0 on b');
  assert.equal(uA().healthy, false);
  assert.equal(uA().connectFailures, 1);
  for (let i = 1; i < 4; i++) await open(`x${i}`);
  await until(() => b.busy().length === 4, 'x1..x3 on b');
  // a comes back; after retryDown one client tries it, and it is healthy again.
  a = await upstream('a again', portA);
  const back = upstreamEvent(proxy, portA, true);
  for (let i = 0; !uA().healthy; i++) {
    await open(`y${i}`);
    await until(() => a.busy().length + b.busy().length === 5 + i, 'the connection to reach an upstream');
  }
  await back;
  assert.equal(a.busy().length, 1, 'the retry took a client connection');
  // Healthy again: round-robin gives it every other connection.
  const before = a.busy().length + b.busy().length;
  for (let i = 0; i < 4; i++) {
    await open(`z${i}`);
    await until(() => a.busy().length + b.busy().length === before + i + 1, 'the connection to reach an upstream');
  }
  assert.equal(a.busy().length, 3);
  cs.forEach((c) => c.destroy());
  await Promise.all([a.close(), b.close()]);
  await proxy.close();
});
