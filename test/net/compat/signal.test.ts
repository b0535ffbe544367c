/**
 * net.connect({ signal }): an AbortSignal aborted before the call, right
 * after it, and while the kernel is still connecting (a listener whose
 * accept queue is full drops the SYN, so the connect stays in progress).
 * Each ends in AbortError and 'close', on node:net and on maio/net, and
 * maio's pool is back as it was.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { bounded, closed, poolGuard } from '../helpers';
import { closeServer, connectOn, impls, listen, silentListener, skip } from './common';

/** Events of c until its first 'close' (bounded), and whether it was destroyed. */
async function outcome(c: net.Socket): Promise<{ events: string[]; error: unknown }> {
  const events: string[] = [];
  let error: unknown;
  c.on('connect', () => events.push('connect'));
  c.on('error', (e) => {
    events.push('error');
    error = e;
  });
  await bounded(closed(c), "'close'");
  events.push('close');
  return { events, error };
}

function assertAbortError(e: unknown): void {
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'AbortError');
  assert.equal((e as NodeJS.ErrnoException).code, 'ABORT_ERR');
  assert.equal(e.message, 'The operation was aborted');
}

/**
 * node:net 20, given a signal aborted before connect(), emits 'close', then
 * connects anyway (its 'connect', a second 'close', and destroyed false in
 * between): a bug maio/net does not copy. maio/net: 'error', 'close', done.
 */
function assertOnce(name: string, events: string[]): void {
  if (name !== 'maio/net') return;
  assert.deepEqual(events, ['error', 'close']);
}

for (const [name, impl] of impls) {
  test(`connect({ signal }) already aborted: AbortError, then 'close' (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const accepted = new Set<net.Socket>();
    let ending = false;
    const srv = net.createServer((s) => {
      accepted.add(s);
      s.resume();
      if (ending) s.destroy();
    });
    const port = await listen(srv);
    const ac = new AbortController();
    ac.abort();
    // The bug this guards: the Duplex constructor destroyed the socket before its fields existed
    // ("Cannot read private member #inner"), and 'close' never came.
    const c = connectOn(impl, { port, host: '127.0.0.1', signal: ac.signal });
    const { events, error } = await outcome(c);
    assertAbortError(error);
    assertOnce(name, events);
    if (name === 'maio/net') assert.equal(c.destroyed, true);
    // a Socket made with an aborted signal, never connected: the same
    const s = new (impl.Socket as typeof net.Socket)({ signal: ac.signal });
    const r = await outcome(s);
    assertAbortError(r.error);
    assert.deepEqual(r.events, ['error', 'close']);
    // node:net's late connection stays open: the server side ends it, whenever it comes
    c.on('error', () => {});
    ending = true;
    for (const a of accepted) a.destroy();
    await bounded(closeServer(srv), 'the server closed');
    await guard.check();
  });

  test(`connect({ signal }) aborted right after connect(), before 'connect' (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = net.createServer((s) => s.resume());
    const port = await listen(srv);
    const ac = new AbortController();
    const c = connectOn(impl, { port, host: '127.0.0.1', signal: ac.signal });
    assert.equal(c.connecting, true);
    ac.abort();
    const { events, error } = await outcome(c);
    assertAbortError(error);
    assert.equal(c.destroyed, true);
    assert.deepEqual(events, ['error', 'close']);
    await closeServer(srv);
    await guard.check();
  });

  test(`connect({ signal }) aborted mid-connect: the SYN is unanswered, abort ends it (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const silent = await silentListener();
    try {
      for (const host of ['127.0.0.1', 'silent.test']) {
        const ac = new AbortController();
        const c = connectOn(impl, {
          port: silent.port,
          host,
          signal: ac.signal,
          lookup: ((_h: string, _o: object, cb: (e: null, a: unknown) => void) => setImmediate(cb, null, [{ address: '127.0.0.1', family: 4 }])) as never,
        });
        const done = outcome(c);
        // well into the connect: the address is known and the SYN is out (no answer comes)
        await bounded(once(c, host === '127.0.0.1' ? 'connectionAttempt' : 'lookup'), 'the attempt');
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(c.connecting, true, 'still connecting');
        ac.abort();
        const { events, error } = await done;
        assertAbortError(error);
        assert.deepEqual(events, ['error', 'close']);
        assert.equal(c.connecting, false);
      }
    } finally {
      silent.close();
    }
    await guard.check();
  });
}

