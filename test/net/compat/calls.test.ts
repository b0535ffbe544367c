/**
 * Calls node:net accepts, accepted by maio/net the same way: Socket() and
 * Server() without new, the autoSelectFamily defaults and attempted
 * addresses, 'lookup' events and the lookup option, onread, legacy getters,
 * Symbol.asyncDispose, getters read on the prototypes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import type { LookupAddress } from 'node:dns';
import { bounded, closed, poolGuard } from '../helpers';
import { closeServer, connectOn, freePort, impls, listen, skip } from './common';

for (const [name, impl] of impls) {
  test(`Socket() and Server() without new make instances (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const s = (impl.Socket as unknown as () => net.Socket)();
    assert.ok(s instanceof impl.Socket);
    assert.equal(s.constructor, impl.Socket);
    s.destroy();
    const srv = (impl.Server as unknown as (cb: () => void) => net.Server)(() => {});
    assert.ok(srv instanceof impl.Server);
    assert.equal(srv.listenerCount('connection'), 1);
    // subclassing still works
    class Mine extends (impl.Socket as typeof net.Socket) {}
    const m = new Mine();
    assert.ok(m instanceof impl.Socket && m instanceof Mine);
    m.destroy();
    await bounded(closed(s), 'close');
    await guard.check();
  });

  test(`get/setDefaultAutoSelectFamily and its attempt timeout (${name})`, { skip }, () => {
    const was = impl.getDefaultAutoSelectFamily();
    const wasTimeout = impl.getDefaultAutoSelectFamilyAttemptTimeout();
    assert.equal(was, true, "node 20's default");
    assert.equal(wasTimeout, 250);
    try {
      impl.setDefaultAutoSelectFamily(false);
      assert.equal(impl.getDefaultAutoSelectFamily(), false);
      impl.setDefaultAutoSelectFamilyAttemptTimeout(1);
      assert.equal(impl.getDefaultAutoSelectFamilyAttemptTimeout(), 10, 'raised to 10');
    } finally {
      impl.setDefaultAutoSelectFamily(was);
      impl.setDefaultAutoSelectFamilyAttemptTimeout(wasTimeout);
    }
  });

  test(`autoSelectFamily: each looked-up address in turn, autoSelectFamilyAttemptedAddresses lists them (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = net.createServer((s) => s.end());
    const port = await listen(srv);
    const dead = await freePort();
    // The server listens on 127.0.0.1 only: the first address, ::1, refuses (or is unreachable).
    const addresses: LookupAddress[] = [
      { address: '::1', family: 6 },
      { address: '127.0.0.1', family: 4 },
    ];
    const seen: unknown[] = [];
    const c = connectOn(impl, {
      port,
      host: 'maio.test',
      lookup: ((host: string, options: object, cb: (e: null, a: LookupAddress[]) => void) => {
        seen.push({ host, ...options });
        setImmediate(cb, null, addresses);
      }) as never,
    });
    const lookups: unknown[][] = [];
    c.on('lookup', (...args) => lookups.push(args));
    c.resume();
    await bounded(once(c, 'connect'), 'connect');
    assert.deepEqual(seen, [{ host: 'maio.test', family: undefined, hints: 32, all: true }]);
    assert.deepEqual(lookups, [
      [null, '::1', 6, 'maio.test'],
      [null, '127.0.0.1', 4, 'maio.test'],
    ]);
    assert.deepEqual(c.autoSelectFamilyAttemptedAddresses, [`::1:${port}`, `127.0.0.1:${port}`]);
    assert.equal(c.remoteAddress, '127.0.0.1');
    await bounded(closed(c), 'close');

    // Every address refused: an AggregateError with the first error's code.
    const d = connectOn(impl, {
      port: dead,
      host: 'maio.test',
      lookup: ((_h: string, _o: object, cb: (e: null, a: LookupAddress[]) => void) => setImmediate(cb, null, addresses)) as never,
    });
    const dClosed = closed(d);
    const [err] = (await bounded(once(d, 'error'), "'error'")) as [AggregateError & { code?: string }];
    assert.ok(err instanceof AggregateError);
    assert.equal(err.errors.length, 2);
    assert.equal(err.code, (err.errors[0] as NodeJS.ErrnoException).code);
    assert.deepEqual(
      err.errors.map((e: Error) => e.message),
      [`connect ${(err.errors[0] as NodeJS.ErrnoException).code} ::1:${dead}`, `connect ECONNREFUSED 127.0.0.1:${dead}`],
    );
    await bounded(dClosed, 'close');
    // an IP literal is not looked up: nothing attempted in turn
    const e = connectOn(impl, { port, host: '127.0.0.1' });
    e.resume();
    await bounded(once(e, 'connect'), 'connect');
    assert.equal(e.autoSelectFamilyAttemptedAddresses, undefined);
    await bounded(closed(e), 'close');
    await closeServer(srv);
    await guard.check();
  });

  test(`'lookup' event (err, address, family, host) and the lookup option (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = net.createServer((s) => s.end());
    const port = await listen(srv);
    // autoSelectFamily off: one address, asked without `all`
    const seen: unknown[] = [];
    const c = connectOn(impl, {
      port,
      host: 'one.test',
      autoSelectFamily: false,
      lookup: ((host: string, options: object, cb: (e: null, a: string, f: number) => void) => {
        seen.push({ host, ...options });
        setImmediate(cb, null, '127.0.0.1', 4);
      }) as never,
    });
    const [lookupArgs] = await Promise.all([bounded(once(c, 'lookup'), "'lookup'"), bounded(once(c, 'connect'), 'connect')]);
    assert.deepEqual(lookupArgs, [null, '127.0.0.1', 4, 'one.test']);
    assert.deepEqual(seen, [{ host: 'one.test', family: undefined, hints: 32 }]);
    c.resume();
    await bounded(closed(c), 'close');

    // A failed lookup: 'lookup' with the error, then 'error' with it.
    const failure = Object.assign(new Error('getaddrinfo ENOTFOUND none.test'), { code: 'ENOTFOUND' });
    const d = connectOn(impl, {
      port,
      host: 'none.test',
      lookup: ((_h: string, _o: object, cb: (e: Error) => void) => setImmediate(cb, failure)) as never,
    });
    const looked = bounded(once(d, 'lookup'), "'lookup'");
    const dClosed = closed(d);
    const [err] = await bounded(once(d, 'error'), "'error'");
    assert.deepEqual(await looked, [failure, undefined, undefined, 'none.test']);
    assert.equal(err, failure);
    await bounded(dClosed, 'close');

    // The default lookup (dns.lookup) resolves 'localhost'.
    const e = connectOn(impl, { port, host: 'localhost', family: 4 });
    const [, address, family, host] = (await bounded(once(e, 'lookup'), "'lookup'")) as unknown[];
    assert.deepEqual([address, family, host], ['127.0.0.1', 4, 'localhost']);
    e.resume();
    await bounded(closed(e), 'close');
    await closeServer(srv);
    await guard.check();
  });

  test(`onread: bytes copied into the caller's buffer, callback(nread, buf); false stops reading until resume() (${name})`, { skip }, async () => {
    const guard = poolGuard();
    let peer: net.Socket | undefined;
    let accepted!: () => void;
    const hasPeer = new Promise<void>((r) => (accepted = r));
    const srv = net.createServer((s) => {
      peer = s;
      s.on('error', () => {});
      accepted();
    });
    const port = await listen(srv);
    const buf = Buffer.alloc(4);
    const calls: [number, boolean, string][] = [];
    let stop = false;
    let wake: (() => void) | null = null;
    const c = connectOn(impl, {
      port,
      host: '127.0.0.1',
      onread: {
        buffer: buf,
        callback: (n: number, b: Uint8Array) => {
          calls.push([n, b === buf, Buffer.from(b.subarray(0, n)).toString()]);
          wake?.();
          return !stop;
        },
      },
    } as net.NetConnectOpts);
    c.on('data', () => assert.fail("onread: no 'data' events"));
    await bounded(once(c, 'connect'), 'connect');
    await bounded(hasPeer, 'the server side');
    const arrived = (text: string) =>
      bounded(
        new Promise<void>((r) => {
          const check = () => calls.map((x) => x[2]).join('').endsWith(text) && r();
          wake = check;
          check();
        }),
        `onread saw ${JSON.stringify(text)}`,
      );
    peer!.write('hello world');
    await arrived('hello world');
    assert.ok(calls.every(([n, same]) => n > 0 && n <= 4 && same), JSON.stringify(calls));

    // false: reading stops; what the peer sends next waits until resume()
    stop = true;
    peer!.write('a');
    await arrived('a');
    const before = calls.length;
    stop = false;
    peer!.write('bc');
    // A stopped socket does not call back; nothing to wait for but a little time (a pass here
    // can be luck on a slow machine, a failure cannot).
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls.length, before, 'no callback while stopped');
    c.resume();
    await arrived('bc');
    c.destroy();
    await bounded(closed(c), 'close');
    await closeServer(srv);
    await guard.check();
  });

  test(`legacy getters, Symbol.asyncDispose, getters read on the prototypes (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = (impl.createServer as typeof net.createServer)((s) => s.end());
    const port = await listen(srv);
    const c = connectOn(impl, { port, host: '127.0.0.1' });
    assert.equal((c as unknown as { _connecting: boolean })._connecting, true);
    await bounded(once(c, 'connect'), 'connect');
    assert.equal((c as unknown as { _connecting: boolean })._connecting, false);
    c.resume();
    // A Readable's asyncDispose destroys the stream and waits for it to settle.
    await bounded((c as unknown as AsyncDisposable)[Symbol.asyncDispose](), 'socket asyncDispose');
    assert.equal(c.destroyed, true);
    // A listening server's asyncDispose closes it.
    assert.equal(typeof (srv as unknown as AsyncDisposable)[Symbol.asyncDispose], 'function');
    await bounded((srv as unknown as AsyncDisposable)[Symbol.asyncDispose](), 'server asyncDispose');
    assert.equal(srv.listening, false);
    // Not listening: resolves at once.
    await bounded((srv as unknown as AsyncDisposable)[Symbol.asyncDispose](), 'server asyncDispose, closed');
    await guard.check();
  });
}

test('getters read on Socket.prototype and Server.prototype do not throw and answer like node:net', { skip }, () => {
  const [nodeImpl, maioImpl] = [impls[0][1], impls[1][1]];
  for (const [nodeCls, maioCls] of [
    [nodeImpl.Socket, maioImpl.Socket],
    [nodeImpl.Server, maioImpl.Server],
  ] as [{ prototype: object }, { prototype: object }][]) {
    const names = new Set<string>();
    for (const proto of [nodeCls.prototype, maioCls.prototype]) {
      for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) if (d.get) names.add(k);
    }
    for (const k of names) {
      let got: unknown;
      assert.doesNotThrow(() => (got = (maioCls.prototype as Record<string, unknown>)[k]), `maio/net prototype getter ${k}`);
      if (k in nodeCls.prototype && k !== '_handle' && k !== '_bytesDispatched') {
        assert.deepEqual(got, (nodeCls.prototype as Record<string, unknown>)[k], `prototype getter ${k}`);
      }
    }
  }
});
