/**
 * Host names in node:dgram's calls, each checked on node:dgram first, then on
 * maio/dgram: connect() and send() to 'localhost' (dns.lookup, family 4 for
 * udp4); a name that does not resolve reaches the send callback, the connect
 * callback or 'error' as dns.lookup's own error (ENOTFOUND: errno, code,
 * syscall 'getaddrinfo', hostname), and a bind that failed so leaves the
 * socket free to bind again; udp6 asks for AAAA ('localhost' resolves or
 * fails for both modules alike, as this host's /etc/hosts says).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dns from 'node:dns';
import { bindLocal, bounded, close, impls, nextMessage, sent, skip, type Sock } from './common';

const NOWHERE = 'nowhere.invalid';

type Errno = NodeJS.ErrnoException & { hostname?: string };
const errShape = (e: unknown) => {
  const x = e as Errno;
  return { name: x.name, message: x.message, code: x.code, errno: x.errno, syscall: x.syscall, hostname: x.hostname, keys: Object.keys(x).sort() };
};

/** What dns.lookup says about `host` for `family`: an address, or the error's shape. */
function lookup(host: string, family: 4 | 6): Promise<{ address: string } | { error: ReturnType<typeof errShape> }> {
  return new Promise((r) => dns.lookup(host, family, (err, address) => r(err ? { error: errShape(err) } : { address })));
}

for (const [name, dgram] of impls) {
  test(`connect() and send() to 'localhost': looked up, the datagram arrives (${name})`, { skip }, async () => {
    const rx = dgram.createSocket('udp4');
    const port = await bindLocal(rx);
    const tx = dgram.createSocket('udp4');
    let got = nextMessage(rx);
    const [err, n] = await sent((cb) => tx.send('by name', port, 'localhost', cb));
    assert.equal(err, null);
    assert.equal(n, 7);
    assert.equal((await bounded(got, 'the datagram'))[0], 'by name');
    const c = dgram.createSocket('udp4');
    await new Promise<void>((r, j) => c.connect(port, 'localhost', (e?: Error) => (e ? j(e) : r())));
    assert.equal(c.remoteAddress().address, '127.0.0.1');
    assert.equal(c.remoteAddress().port, port);
    got = nextMessage(rx);
    c.send('connected by name');
    assert.equal((await bounded(got, 'the connected datagram'))[0], 'connected by name');
    await close(c);
    await close(tx);
    await close(rx);
  });

  test(`a name that does not resolve: dns.lookup's error in send's callback, connect's callback or 'error'; bind can be tried again (${name})`, { skip }, async () => {
    const want = await lookup(NOWHERE, 4);
    assert.ok('error' in want, `${NOWHERE} must not resolve here`);
    const s = dgram.createSocket('udp4');
    const [err] = await sent((cb) => s.send('x', 9, NOWHERE, cb));
    assert.deepEqual(errShape(err), want.error, 'send callback');
    const noCb = new Promise((r) => s.once('error', r));
    s.send('x', 9, NOWHERE);
    assert.deepEqual(errShape(await bounded(noCb, "send's 'error'")), want.error);
    const c = dgram.createSocket('udp4');
    const cerr = await new Promise<Error | undefined>((r) => c.connect(9, NOWHERE, (e?: Error) => r(e)));
    assert.deepEqual(errShape(cerr), want.error, 'connect callback');
    assert.throws(() => c.remoteAddress(), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
    const cerr2 = new Promise((r) => c.once('error', r));
    c.connect(9, NOWHERE);
    assert.deepEqual(errShape(await bounded(cerr2, "connect's 'error'")), want.error);
    const b = dgram.createSocket('udp4');
    const berr = new Promise((r) => b.once('error', r));
    b.bind(0, NOWHERE);
    assert.deepEqual(errShape(await bounded(berr, "bind's 'error'")), want.error);
    assert.equal(await bindLocal(b) > 0, true, 'unbound again after the failed lookup');
    await close(b);
    await close(c);
    await close(s);
  });

  test(`udp6 looks names up for AAAA: 'localhost' binds where it has an IPv6 address and fails alike where not; the lookup option is asked for family 6 (${name})`, { skip }, async () => {
    const want = await lookup('localhost', 6);
    const s: Sock = dgram.createSocket('udp6');
    const outcome = await new Promise<{ address: string } | { error: ReturnType<typeof errShape> }>((r) => {
      s.once('error', (e) => r({ error: errShape(e) }));
      s.bind(0, 'localhost', () => r({ address: s.address().address }));
    });
    assert.deepEqual(outcome, want);
    await close(s);
    const asked: number[] = [];
    const t = dgram.createSocket({
      type: 'udp6',
      lookup: ((host: string, family: number, cb: (e: Error | null, a?: string, f?: number) => void) => {
        asked.push(family);
        cb(null, '::1', 6);
      }) as never,
    });
    const rx = dgram.createSocket('udp6');
    const port = await bindLocal(rx, '::1');
    const got = nextMessage(rx);
    const [err] = await sent((cb) => t.send('six', port, 'v6.test', cb));
    assert.equal(err, null);
    assert.equal((await bounded(got, 'the datagram'))[0], 'six');
    assert.ok(asked.length >= 2 && asked.every((f) => f === 6), `family 6 every time: ${asked}`);
    await close(t);
    await close(rx);
  });
}
