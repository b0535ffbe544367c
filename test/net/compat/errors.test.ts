/**
 * maio/net throws and emits node:net's errors: the same class, code and
 * message for the same bad call (ERR_MISSING_ARGS, ERR_INVALID_ARG_TYPE,
 * ERR_INVALID_ARG_VALUE, ERR_SOCKET_BAD_PORT, ERR_OUT_OF_RANGE, ...), write
 * after end, a listen error's shape.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { bounded, closed, poolGuard } from '../helpers';
import { type NetLike, closeServer, connectOn, impls, listen, skip, thrown } from './common';

type Call = [what: string, call: (n: NetLike) => unknown];
const connect = (n: NetLike, ...args: unknown[]) => (n.connect as (...a: unknown[]) => net.Socket)(...args);
const socket = (n: NetLike, o?: unknown) => new (n.Socket as unknown as new (o?: unknown) => net.Socket)(o);
const server = (n: NetLike, ...args: unknown[]) => (n.createServer as (...a: unknown[]) => net.Server)(...args);
const listenWith = (n: NetLike, ...args: unknown[]) => {
  const s = server(n);
  try {
    return s.listen(...(args as []));
  } finally {
    s.close();
  }
};

/** Calls node:net refuses at once; maio/net must refuse each the same way. */
const refused: Call[] = [
  ['connect()', (n) => connect(n)],
  ['connect({})', (n) => connect(n, {})],
  ["connect({ host: 'x' })", (n) => connect(n, { host: 'x' })],
  ['connect(null)', (n) => connect(n, null)],
  ['connect(true)', (n) => connect(n, true)],
  ['port -1', (n) => connect(n, -1)],
  ['port 65536', (n) => connect(n, { port: 65536 })],
  ['port 1.5', (n) => connect(n, { port: 1.5 })],
  ["port 'abc'", (n) => connect(n, { port: 'abc' })],
  ["port ''", (n) => connect(n, { port: '' })],
  ['port true', (n) => connect(n, { port: true })],
  ['port {}', (n) => connect(n, { port: {} })],
  ['port null', (n) => connect(n, { port: null })],
  ['host 1', (n) => connect(n, { port: 1, host: 1 })],
  ['family 5', (n) => connect(n, { port: 1, host: 'localhost', family: 5 })],
  ["family 'x'", (n) => connect(n, { port: 1, host: 'localhost', family: 'x' })],
  ['lookup 1', (n) => connect(n, { port: 1, host: 'localhost', lookup: 1 })],
  ["lookup 'dns'", (n) => connect(n, { port: 1, host: 'localhost', lookup: 'dns' })],
  ['signal 1', (n) => connect(n, { port: 1, host: '127.0.0.1', signal: 1 })],
  ['signal {}', (n) => connect(n, { port: 1, host: '127.0.0.1', signal: {} })],
  ["localAddress 'x'", (n) => connect(n, { port: 1, host: '127.0.0.1', localAddress: 'x' })],
  ["localPort 'x'", (n) => connect(n, { port: 1, host: '127.0.0.1', localPort: 'x' })],
  ['autoSelectFamily 1', (n) => connect(n, { port: 1, host: '127.0.0.1', autoSelectFamily: 1 })],
  ['autoSelectFamilyAttemptTimeout 0', (n) => connect(n, { port: 1, host: '127.0.0.1', autoSelectFamilyAttemptTimeout: 0 })],
  ["timeout 'x'", (n) => connect(n, { port: 1, host: '127.0.0.1', timeout: 'x' })],
  ['timeout -1', (n) => connect(n, { port: 1, host: '127.0.0.1', timeout: -1 })],
  ['Socket({ objectMode })', (n) => socket(n, { objectMode: true })],
  ['Socket({ readableObjectMode })', (n) => socket(n, { readableObjectMode: true })],
  ['Socket({ writableObjectMode })', (n) => socket(n, { writableObjectMode: true })],
  ['Socket({ signal: 1 })', (n) => socket(n, { signal: 1 })],
  ["Socket({ keepAliveInitialDelay: 'x' })", (n) => socket(n, { keepAliveInitialDelay: 'x' })],
  ["Socket({ fd: 'x' })", (n) => socket(n, { fd: 'x' })],
  ['Socket({ fd: -1 })', (n) => socket(n, { fd: -1 })],
  ["setTimeout('x')", (n) => socket(n).setTimeout('x' as unknown as number)],
  ['setTimeout(-1)', (n) => socket(n).setTimeout(-1)],
  ['setTimeout(Infinity)', (n) => socket(n).setTimeout(Infinity)],
  ['setTimeout(NaN)', (n) => socket(n).setTimeout(NaN)],
  ['setTimeout(1, 1)', (n) => socket(n).setTimeout(1, 1 as unknown as () => void)],
  ['createServer(1)', (n) => server(n, 1)],
  ["createServer('x')", (n) => server(n, 'x')],
  ["createServer({ highWaterMark: 'x' })", (n) => server(n, { highWaterMark: 'x' })],
  ['listen(65536)', (n) => listenWith(n, 65536)],
  ['listen(-1)', (n) => listenWith(n, -1)],
  ['listen(true)', (n) => listenWith(n, true)],
  ['listen({})', (n) => listenWith(n, {})],
  ["listen({ port: 'abc' })", (n) => listenWith(n, { port: 'abc' })],
  ['listen({ port: true })', (n) => listenWith(n, { port: true })],
  ['listen({ port: 1.5 })', (n) => listenWith(n, { port: 1.5 })],
  ['listen({ port: 0, host: 1 })', (n) => listenWith(n, { port: 0, host: 1 })],
  ['listen({ port: 0, signal: 1 })', (n) => listenWith(n, { port: 0, signal: 1 })],
  ['setDefaultAutoSelectFamily(1)', (n) => n.setDefaultAutoSelectFamily(1 as unknown as boolean)],
  ["setDefaultAutoSelectFamilyAttemptTimeout('x')", (n) => n.setDefaultAutoSelectFamilyAttemptTimeout('x' as unknown as number)],
  ['setDefaultAutoSelectFamilyAttemptTimeout(0)', (n) => n.setDefaultAutoSelectFamilyAttemptTimeout(0)],
  ['setDefaultAutoSelectFamilyAttemptTimeout(1.5)', (n) => n.setDefaultAutoSelectFamilyAttemptTimeout(1.5)],
];

test('bad calls throw what node:net throws: same class name, code and message', { skip }, async () => {
  const guard = poolGuard();
  const diffs: string[] = [];
  for (const [what, call] of refused) {
    const want = thrown(() => call(net));
    const got = thrown(() => call(impls[1][1]));
    assert.notEqual(want, 'no throw', `node:net refuses ${what}`);
    if (JSON.stringify(got) !== JSON.stringify(want)) diffs.push(`${what}:\n  node:net ${JSON.stringify(want)}\n  maio/net ${JSON.stringify(got)}`);
  }
  assert.deepEqual(diffs, []);
  await guard.check();
});

/** Calls node:net accepts although they look wrong; maio/net must accept them too. */
const accepted: Call[] = [
  ["connect(port, host) with port ' 80 '", (n) => connect(n, { port: ' 1 ', host: '127.0.0.1' })],
  ["connect with port '0x50'", (n) => connect(n, { port: '0x1', host: '127.0.0.1' })],
  ['connect({ path: null, port })', (n) => connect(n, { path: null, port: 1, host: '127.0.0.1' })],
  ['connect(IP literal, lookup: 1): an IP needs no lookup', (n) => connect(n, { port: 1, host: '127.0.0.1', lookup: 1 })],
  ['createServer(null)', (n) => server(n, null)],
  ['createServer({}, 1): a listener that is not a function is ignored', (n) => server(n, {}, 1)],
  ["server.close('not a function') is ignored", (n) => server(n).close('x' as unknown as () => void)],
  ['Socket(null)', (n) => socket(n, null)],
  ["setNoDelay('x')", (n) => socket(n).setNoDelay('x' as unknown as boolean)],
];

test('calls node:net accepts are accepted (no throw)', { skip }, async () => {
  const guard = poolGuard();
  for (const [what, call] of accepted) {
    for (const [name, impl] of impls) {
      assert.equal(thrown(() => call(impl)), 'no throw', `${name}: ${what}`);
    }
  }
  // the sockets were destroyed at once: give their closes a turn
  await new Promise((r) => setTimeout(r, 20));
  await guard.check();
});

for (const [name, impl] of impls) {
  test(`write after end(): ERR_STREAM_WRITE_AFTER_END to the callback and 'error', close with hadError (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = net.createServer((s) => s.resume());
    const port = await listen(srv);
    for (const when of ['connected', 'connecting']) {
      const c = connectOn(impl, { port, host: '127.0.0.1' });
      if (when === 'connected') await bounded(once(c, 'connect'), 'connect');
      c.end();
      const closing = closed(c);
      const cbErr = new Promise<Error | null | undefined>((r) => c.write('late', r));
      const [err] = (await bounded(once(c, 'error'), "'error'")) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ERR_STREAM_WRITE_AFTER_END', when);
      assert.equal(err.message, 'write after end');
      assert.equal(((await bounded(cbErr, 'the write callback')) as NodeJS.ErrnoException).code, 'ERR_STREAM_WRITE_AFTER_END');
      assert.equal(await bounded(closing, 'close'), true);
    }
    await closeServer(srv);
    await guard.check();
  });

  test(`write after the peer's FIN (allowHalfOpen false): EPIPE 'This socket has been ended by the other party' (${name})`, { skip }, async () => {
    const guard = poolGuard();
    const srv = net.createServer((s) => s.end());
    const port = await listen(srv);
    const c = connectOn(impl, { port, host: '127.0.0.1' });
    c.resume();
    await bounded(once(c, 'end'), "the peer's FIN");
    const errors: NodeJS.ErrnoException[] = [];
    c.on('error', (e) => errors.push(e));
    const closing = closed(c);
    const cbErr = new Promise<Error | null | undefined>((r) => c.write('late', r));
    const got = (await bounded(cbErr, 'the write callback')) as NodeJS.ErrnoException;
    assert.equal(got?.code, 'EPIPE');
    assert.equal(got?.message, 'This socket has been ended by the other party');
    await bounded(closing, 'close');
    assert.equal(errors[0]?.code, 'EPIPE');
    await closeServer(srv);
    await guard.check();
  });
}

test("a listen error (EADDRINUSE) has node:net's shape: syscall 'listen', address, port, message", { skip }, async () => {
  const guard = poolGuard();
  const holder = net.createServer();
  const port = await listen(holder);
  const errorOf = async (impl: NetLike) => {
    const s = (impl.createServer as typeof net.createServer)();
    s.listen(port, '127.0.0.1');
    const [err] = (await bounded(once(s, 'error'), 'the listen error')) as [NodeJS.ErrnoException & { address?: string; port?: number }];
    return { name: err.name, code: err.code, errno: err.errno, syscall: err.syscall, address: err.address, port: err.port, message: err.message, listening: s.listening };
  };
  const want = await errorOf(net);
  const got = await errorOf(impls[1][1]);
  assert.deepEqual(got, want);
  assert.equal(want.syscall, 'listen');
  await closeServer(holder);
  await guard.check();
});

for (const [name, impl] of impls) {
  test(`listen() twice: ERR_SERVER_ALREADY_LISTEN (${name})`, { skip }, async () => {
    const s = (impl.createServer as typeof net.createServer)();
    await listen(s);
    assert.throws(() => s.listen(0), { code: 'ERR_SERVER_ALREADY_LISTEN', message: 'Listen method has been called more than once without closing.' });
    await closeServer(s);
  });
}

