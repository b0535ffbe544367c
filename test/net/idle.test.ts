// Idle timeouts: socket.setTimeout() (node:net semantics) and the server's
// idleTimeout / idleMinBytes, all on one coarse check per thread (src/net/idle.ts).
// Only lower bounds on time are asserted ("never before ms"); upper bounds are
// generous waits, since the machine is busy.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, createServer, type Server, type Socket } from '../../src/index';
import { idleStats } from '../../src/net/idle';
import { netSkip as skip, poolGuard, until } from './helpers';

async function echoServer(opts: Parameters<typeof createServer>[0] = {}): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer(opts as object, (s) => {
    accepted.push(s);
    s.on('data', (buf) => s.send(buf));
    s.on('error', () => {});
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  return { server, port, accepted };
}

async function stop(server: Server): Promise<void> {
  const closed = once(server, 'close');
  server.close();
  await closed;
}

test("setTimeout: 'timeout' after ms without activity, never before; the socket stays open and fires again after new activity", { skip }, async () => {
  const guard = poolGuard();
  const { server, port } = await echoServer();
  const c = connect({ port, host: '127.0.0.1' });
  await once(c, 'connect');
  const ms = 120;
  let t0 = performance.now();
  c.setTimeout(ms);
  assert.equal(c.timeout, ms);
  await once(c, 'timeout');
  assert.ok(performance.now() - t0 >= ms - 1, `fired after ${performance.now() - t0} ms, not before ${ms}`);
  assert.equal(c.destroyed, false);
  // One 'timeout' per idle spell: no second one without activity.
  let extra = 0;
  c.on('timeout', () => extra++);
  await sleep(ms * 3);
  assert.equal(extra, 0, 'no second timeout without activity');
  // Activity (an echo round trip) starts a new window.
  let echoed = '';
  c.on('data', (buf) => (echoed += Buffer.from(buf.bytes).toString()));
  c.write('x');
  await until(() => echoed === 'x', 'the echo');
  t0 = performance.now();
  await until(() => extra === 1, 'the timeout after the echo');
  assert.ok(performance.now() - t0 >= ms - 1 - ms / 4, 'not before the window (less the check interval the echo may have fallen in)');
  c.setTimeout(0);
  assert.equal(c.timeout, undefined);
  c.destroy();
  await once(c, 'close');
  await stop(server);
  await guard.check();
});

test('setTimeout: steady traffic keeps the timeout from firing; setTimeout(0, cb) removes cb', { skip }, async () => {
  const { server, port } = await echoServer();
  const c = connect({ port, host: '127.0.0.1' });
  await once(c, 'connect');
  let fired = 0;
  const cb = (): void => {
    fired++;
  };
  // 2 s window, a round trip every 20 ms for 1 s: only a 2 s stall of the machine could fire it.
  c.setTimeout(2000, cb);
  c.on('data', () => {});
  for (let i = 0; i < 50; i++) {
    c.write('ping');
    await sleep(20);
  }
  assert.equal(fired, 0);
  assert.equal(c.listenerCount('timeout'), 1);
  c.setTimeout(0, cb);
  assert.equal(c.listenerCount('timeout'), 0);
  c.destroy();
  await once(c, 'close');
  await stop(server);
});

test('setTimeout: bad arguments throw typed errors', { skip }, async () => {
  const { server, port } = await echoServer();
  const c = connect({ port, host: '127.0.0.1' });
  await once(c, 'connect');
  assert.throws(() => c.setTimeout('10' as unknown as number), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => c.setTimeout(NaN), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => c.setTimeout(-1), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  assert.throws(() => c.setTimeout(Infinity), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  assert.throws(() => c.setTimeout(10, 5 as unknown as () => void), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => createServer({ idleTimeout: -5 }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => createServer({ idleTimeout: 1.5 }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => createServer({ idleMinBytes: 'x' as unknown as number }), { code: 'ERR_MAIO_INVALID_ARG' });
  c.destroy();
  await once(c, 'close');
  await stop(server);
});

test('server idleTimeout closes idle connections (a node:net client sees the close), keeps busy ones', { skip }, async () => {
  const guard = poolGuard();
  const { server, port, accepted } = await echoServer({ idleTimeout: 150 });
  const idle = net.connect(port, '127.0.0.1');
  const busy = net.connect(port, '127.0.0.1');
  await Promise.all([once(idle, 'connect'), once(busy, 'connect')]);
  const idleEnded = new Promise<void>((resolve) => idle.on('close', () => resolve()));
  idle.on('error', () => {});
  let echoed = 0;
  busy.on('data', (d) => (echoed += d.length));
  const t0 = performance.now();
  let sent = 0;
  // The busy client talks every 10 ms until the idle one is closed.
  let closedIdle = false;
  void idleEnded.then(() => (closedIdle = true));
  while (!closedIdle) {
    busy.write('abcd');
    sent += 4;
    await sleep(10);
    assert.ok(performance.now() - t0 < 20000, 'the idle connection was closed within 20 s');
  }
  assert.ok(performance.now() - t0 >= 150 - 1, 'not before idleTimeout');
  assert.equal(server.idleClosed, 1);
  await until(() => echoed === sent, 'every busy byte echoed');
  assert.equal(busy.destroyed, false, 'the busy connection is still open');
  assert.equal(accepted.filter((s) => !s.destroyed).length, 1);
  busy.end();
  await once(busy, 'close');
  await stop(server);
  await guard.check();
});

test('server idleMinBytes: a trickle below the rate is closed like an idle connection', { skip }, async () => {
  const { server, port } = await echoServer({ idleTimeout: 200, idleMinBytes: 64 });
  const trickle = net.connect(port, '127.0.0.1');
  trickle.on('error', () => {});
  trickle.on('data', () => {});
  await once(trickle, 'connect');
  let closed = false;
  trickle.on('close', () => (closed = true));
  let bytes = 0;
  const t0 = performance.now();
  // one byte every 20 ms: never idle by bytes alone, far below 64 bytes per 200 ms
  while (!closed && performance.now() - t0 < 20000) {
    if (!trickle.destroyed) {
      trickle.write('.');
      bytes++;
    }
    await sleep(20);
  }
  assert.ok(closed, 'the trickling connection was closed');
  assert.ok(bytes > 1);
  assert.equal(server.idleClosed, 1);
  await stop(server);
});

test("setTimeout(ms) and setTimeout(0) in turn, as node:http does once per request: no new check timer per re-arm, and 'timeout' still fires", { skip }, async () => {
  const { server, port } = await echoServer();
  // Alone in the watched set: with nothing else watched, a setTimeout(0) that stopped the check
  // timer would make the next setTimeout(ms) start a new one.
  await until(() => idleStats().watched === 0, 'no socket of an earlier test watched', 5000);
  const c = connect({ port, host: '127.0.0.1' });
  await once(c, 'connect');
  try {
    c.setTimeout(5000);
    const starts = idleStats().timerStarts;
    for (let i = 0; i < 1000; i++) {
      c.setTimeout(0);
      assert.equal(c.timeout, undefined);
      c.setTimeout(5000);
    }
    assert.equal(c.timeout, 5000);
    assert.equal(idleStats().timerStarts, starts, 'the re-arms started no check timer');
    assert.equal(idleStats().watched, 1, 'one entry for the socket');
    // Re-armed with a short timeout, it still fires, and not before.
    const ms = 100;
    const t0 = performance.now();
    c.setTimeout(ms);
    await once(c, 'timeout');
    assert.ok(performance.now() - t0 >= ms - 1, `fired after ${performance.now() - t0} ms, not before ${ms}`);
    c.setTimeout(0);
    let late = 0;
    c.on('timeout', () => late++);
    await sleep(ms * 2);
    assert.equal(late, 0, 'off means off');
  } finally {
    c.destroy();
    await once(c, 'close');
    await stop(server);
  }
});

test('one check for many sockets: 200 watched connections share one interval timer', { skip }, async () => {
  const { server, port } = await echoServer({ idleTimeout: 60000 });
  const clients = await Promise.all(
    Array.from({ length: 200 }, async () => {
      const c = connect({ port, host: '127.0.0.1' });
      await once(c, 'connect');
      c.setTimeout(60000);
      return c;
    }),
  );
  await until(() => server.connections === 200, '200 accepted');
  const st = idleStats();
  assert.ok(st.watched >= 400, `client and server sides watched (${st.watched})`);
  // Shorter timeouts of earlier tests are gone by the next check: it slows down to 1 s.
  await until(() => idleStats().granularity === 1000, 'one 1 s check for 60 s timeouts', 5000);
  for (const c of clients) c.destroy();
  await until(() => server.connections === 0, 'the server side closed too');
  await stop(server);
  await until(() => idleStats().watched === 0, 'every entry dropped', 5000);
  assert.equal(idleStats().granularity, 0, 'the timer stops with the last socket');
});
