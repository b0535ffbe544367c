/**
 * node:dgram's calls on maio/dgram, each checked on node:dgram first: the
 * send() overloads (string, Buffer, TypedArray, DataView, arrays,
 * offset/length, default host, callback forms), bind() overloads and the
 * implicit bind of a first send, connect()/disconnect(), 'close' ordering,
 * buffer sizes, the lookup option and host names, AbortSignal and
 * Symbol.asyncDispose.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dns from 'node:dns';
import type { RemoteInfo } from 'node:dgram';
import { bindLocal, close, freePort, impls, nextMessage, sent, shape, skip, thrown, until, type Sock } from './common';

for (const [name, dgram] of impls) {
  test(`send() overloads: every message form arrives as its bytes, the callback gets the byte count (${name})`, { skip }, async () => {
    const rx = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    const port = await bindLocal(rx);
    const got: [string, RemoteInfo][] = [];
    rx.on('message', (m, rinfo) => got.push([m.toString('latin1'), rinfo]));
    const counts: (number | undefined)[] = [];
    const h = '127.0.0.1';
    const forms: [string, (cb: (err: Error | null, n?: number) => void) => void][] = [
      ['str', (cb) => tx.send('str', port, h, cb)],
      ['buf', (cb) => tx.send(Buffer.from('buf'), port, h, cb)],
      ['hi', (cb) => tx.send(new Uint16Array([0x6968]), port, h, cb)], // little-endian: 'h', 'i'
      ['dv', (cb) => tx.send(new DataView(Buffer.from('xdvx').buffer, Buffer.from('xdvx').byteOffset + 1, 2), port, h, cb)],
      ['abc', (cb) => tx.send(['a', Buffer.from('b'), new Uint8Array([99])], port, h, cb)],
      ['hello', (cb) => tx.send(Buffer.from('xxhelloyy'), 2, 5, port, h, cb)],
      ['bcd', (cb) => tx.send('abcdef', 1, 3, port, h, cb)],
      ['nohost', (cb) => tx.send('nohost', port, cb)], // host default: 127.0.0.1
      ['', (cb) => tx.send(Buffer.alloc(0), port, h, cb)],
      ['', (cb) => tx.send([], port, h, cb)], // an empty list: one empty datagram
    ];
    for (const [, f] of forms) {
      const [err, n] = await sent(f);
      assert.equal(err, null);
      counts.push(n);
    }
    assert.deepEqual(counts, forms.map(([s]) => s.length), 'the callback gets the bytes sent');
    await until(() => got.length === forms.length, 'every datagram', 5000);
    assert.deepEqual(got.map(([s]) => s), forms.map(([s]) => s), 'in order, each with its bytes');
    const me = tx.address().port;
    for (const [s, rinfo] of got) assert.deepEqual(rinfo, { address: '127.0.0.1', family: 'IPv4', port: me, size: s.length });
    await close(tx);
    await close(rx);
  });

  test(`a first send() binds implicitly: 'listening', then address() is 0.0.0.0:port; before, getsockname EBADF (${name})`, { skip }, async () => {
    const rx = dgram.createSocket('udp4');
    const port = await bindLocal(rx);
    const tx = dgram.createSocket('udp4');
    assert.deepEqual(thrown(() => tx.address()), { name: 'Error', code: 'EBADF', message: 'getsockname EBADF' });
    const events: string[] = [];
    tx.on('listening', () => events.push('listening'));
    const arrived = nextMessage(rx);
    const [err] = await sent((cb) => tx.send('x', port, '127.0.0.1', (e, n) => {
      events.push('sent');
      cb(e, n);
    }));
    assert.equal(err, null);
    assert.deepEqual(events, ['listening', 'sent']);
    const a = tx.address();
    assert.equal(a.address, '0.0.0.0');
    assert.ok(a.port > 0);
    assert.deepEqual(thrown(() => tx.bind(0)), { name: 'Error', code: 'ERR_SOCKET_ALREADY_BOUND', message: 'Socket is already bound' });
    const [m, rinfo] = await arrived;
    assert.equal(m, 'x');
    assert.equal(rinfo.port, a.port, 'from the implicitly bound port');
    await close(tx);
    await close(rx);
  });

  test(`bind() overloads: (cb), (port, cb), (port, address, cb), ({ port, address }, cb), a host name; twice is ERR_SOCKET_ALREADY_BOUND (${name})`, { skip }, async () => {
    const bound = async (f: (s: Sock, cb: () => void) => void): Promise<{ address: string; port: number }> => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => f(s, r));
      const a = s.address();
      await close(s);
      return { address: a.address, port: a.port };
    };
    assert.equal((await bound((s, cb) => s.bind(cb))).address, '0.0.0.0');
    assert.equal((await bound((s, cb) => s.bind(0, cb))).address, '0.0.0.0');
    assert.equal((await bound((s, cb) => s.bind(0, '127.0.0.1', cb))).address, '127.0.0.1');
    assert.equal((await bound((s, cb) => s.bind({ port: 0, address: '127.0.0.1', exclusive: true }, cb))).address, '127.0.0.1');
    assert.equal((await bound((s, cb) => s.bind(0, 'localhost', cb))).address, '127.0.0.1', 'looked up with dns.lookup, family 4');
    const free = await freePort();
    assert.equal((await bound((s, cb) => s.bind(free, '127.0.0.1', cb))).port, free);
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    // still binding: bound all the same
    assert.deepEqual(thrown(() => s.bind(0)), { name: 'Error', code: 'ERR_SOCKET_ALREADY_BOUND', message: 'Socket is already bound' });
    await new Promise((r) => s.once('listening', r));
    await close(s);
  });

  test(`bind() to a port in use: an 'error' event 'bind EADDRINUSE', and the socket can bind again (${name})`, { skip }, async () => {
    const a = dgram.createSocket('udp4');
    const port = await bindLocal(a);
    const b = dgram.createSocket('udp4');
    b.bind(port, '127.0.0.1');
    const err = await new Promise<NodeJS.ErrnoException>((r) => b.once('error', r));
    assert.equal(err.code, 'EADDRINUSE');
    assert.equal(err.syscall, 'bind');
    assert.equal(err.message, `bind EADDRINUSE 127.0.0.1:${port}`);
    assert.ok(typeof err.errno === 'number' && err.errno < 0);
    await bindLocal(b); // unbound again after the failure
    await close(b);
    await close(a);
  });

  test(`connect(): 'connect', remoteAddress(), only the peer's datagrams, send() without an address; disconnect() (${name})`, { skip }, async () => {
    const peer = dgram.createSocket('udp4');
    const other = dgram.createSocket('udp4');
    const peerPort = await bindLocal(peer);
    await bindLocal(other);
    const c = dgram.createSocket('udp4');
    const events: string[] = [];
    c.on('listening', () => events.push('listening'));
    c.on('connect', () => events.push('connect'));
    await new Promise<void>((r) => c.connect(peerPort, () => r())); // address default: 127.0.0.1
    assert.deepEqual(events, ['listening', 'connect']);
    assert.deepEqual(c.remoteAddress(), { address: '127.0.0.1', family: 'IPv4', port: peerPort });
    assert.deepEqual(thrown(() => c.connect(peerPort)), { name: 'Error', code: 'ERR_SOCKET_DGRAM_IS_CONNECTED', message: 'Already connected' });
    assert.deepEqual(thrown(() => c.send('x', 0, 1, peerPort, '127.0.0.1')), { name: 'Error', code: 'ERR_SOCKET_DGRAM_IS_CONNECTED', message: 'Already connected' });
    const got: string[] = [];
    c.on('message', (m) => got.push(m.toString()));
    const arrived = nextMessage(peer);
    const [err, n] = await sent((cb) => c.send('to peer', cb));
    assert.deepEqual([err, n], [null, 7]);
    const [m, rinfo] = await arrived;
    assert.equal(m, 'to peer');
    assert.equal(rinfo.port, c.address().port);
    other.send('not the peer', c.address().port, '127.0.0.1');
    peer.send('from peer', c.address().port, '127.0.0.1');
    await until(() => got.length > 0, "the peer's datagram", 5000);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got, ['from peer'], 'a connected socket receives from its peer only');
    c.disconnect();
    assert.deepEqual(thrown(() => c.remoteAddress()), { name: 'Error', code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED', message: 'Not connected' });
    assert.deepEqual(thrown(() => c.disconnect()), { name: 'Error', code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED', message: 'Not connected' });
    assert.deepEqual(thrown(() => c.send('x')), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT', message: 'Port should be > 0 and < 65536. Received undefined.' });
    await Promise.all([close(c), close(peer), close(other)]);
  });

  test(`a connected socket whose peer port is closed: ECONNREFUSED as 'error' (recvmsg) or a send callback error (${name})`, { skip }, async () => {
    const port = await freePort();
    const c = dgram.createSocket('udp4');
    const seen: NodeJS.ErrnoException[] = [];
    c.on('error', (e) => seen.push(e));
    await new Promise<void>((r) => c.connect(port, '127.0.0.1', () => r()));
    for (let i = 0; i < 20 && seen.length === 0; i++) {
      c.send('anyone?', (e) => {
        if (e) seen.push(e);
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => seen.length > 0, 'ECONNREFUSED', 5000);
    for (const e of seen) {
      assert.equal(e.code, 'ECONNREFUSED');
      assert.ok(e.syscall === 'recvmsg' || e.syscall === 'send', `syscall ${e.syscall}`);
      assert.equal(e.message, `${e.syscall} ECONNREFUSED`);
    }
    await close(c);
  });

  test(`close(): the callback and 'close' once, after sends' callbacks; then ERR_SOCKET_DGRAM_NOT_RUNNING everywhere (${name})`, { skip }, async () => {
    const rx = dgram.createSocket('udp4');
    const port = await bindLocal(rx);
    const s = dgram.createSocket('udp4');
    const events: string[] = [];
    s.on('close', () => events.push('close event'));
    await new Promise<void>((r) => s.send('x', port, '127.0.0.1', () => {
      events.push('sent');
      s.close(() => {
        events.push('close cb');
        r();
      });
    }));
    assert.deepEqual(events, ['sent', 'close event', 'close cb']);
    const notRunning = { name: 'Error', code: 'ERR_SOCKET_DGRAM_NOT_RUNNING', message: 'Not running' };
    assert.deepEqual(thrown(() => s.close()), notRunning);
    assert.deepEqual(thrown(() => s.send('x', port, '127.0.0.1')), notRunning);
    assert.deepEqual(thrown(() => s.address()), notRunning);
    assert.deepEqual(thrown(() => s.bind(0)), notRunning);

    // closed while binding: the bind never completes, no 'listening'
    const b = dgram.createSocket('udp4');
    let listening = false;
    b.on('listening', () => (listening = true));
    b.bind(0, '127.0.0.1');
    await new Promise<void>((r) => b.close(() => r()));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(listening, false);
    // closed with a send waiting for the implicit bind: the bind finishes, the send goes, then the close
    const q = dgram.createSocket('udp4');
    const order: string[] = [];
    q.on('listening', () => order.push('listening'));
    q.send('queued', port, '127.0.0.1', (e) => order.push(`sent ${e}`));
    const got = nextMessage(rx);
    await new Promise<void>((r) => q.close(() => r()));
    order.push('close');
    assert.deepEqual(order.slice(0, 1), ['listening']);
    assert.equal(order[order.length - 1], 'close');
    void got;
    await close(rx);
  });

  test(`buffer sizes: options applied at bind, get/set as the kernel reports them (doubled), errors before bind and for bad sizes (${name})`, { skip }, async () => {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 65536, sendBufferSize: 65536 });
    const before = thrown(() => s.getRecvBufferSize());
    assert.deepEqual(before, { name: 'SystemError', code: 'ERR_SOCKET_BUFFER_SIZE', message: 'Could not get or set buffer size: uv_recv_buffer_size returned EBADF (bad file descriptor)' });
    await bindLocal(s);
    assert.equal(s.getRecvBufferSize(), 131072, 'Linux doubles SO_RCVBUF');
    assert.equal(s.getSendBufferSize(), 131072);
    s.setRecvBufferSize(100000);
    s.setSendBufferSize(100000);
    assert.equal(s.getRecvBufferSize(), 200000);
    assert.equal(s.getSendBufferSize(), 200000);
    const bad = { name: 'TypeError', code: 'ERR_SOCKET_BAD_BUFFER_SIZE', message: 'Buffer size must be a positive integer' };
    assert.deepEqual(thrown(() => s.setRecvBufferSize(-1)), bad);
    assert.deepEqual(thrown(() => s.setSendBufferSize(1.5)), bad);
    assert.equal(s.getSendQueueSize(), 0);
    assert.equal(s.getSendQueueCount(), 0);
    await close(s);
  });

  test(`the lookup option resolves every address; its error reaches the send callback; host names go through dns.lookup (${name})`, { skip }, async () => {
    const rx = dgram.createSocket('udp4');
    const port = await bindLocal(rx);
    const asked: [string, unknown][] = [];
    const fail = Object.assign(new Error('no such host'), { code: 'ENOTFOUND' });
    const s = dgram.createSocket({
      type: 'udp4',
      lookup: ((host: string, family: number, cb: (e: Error | null, a?: string, f?: number) => void) => {
        asked.push([host, family]);
        if (host === 'nowhere.test') cb(fail);
        else dns.lookup(host, family, cb as never);
      }) as never,
    });
    const got = nextMessage(rx);
    const [err] = await sent((cb) => s.send('via localhost', port, 'localhost', cb));
    assert.equal(err, null);
    assert.equal((await got)[0], 'via localhost');
    const [err2] = await sent((cb) => s.send('x', port, 'nowhere.test', cb));
    assert.equal(err2, fail, 'the lookup error itself');
    assert.deepEqual(asked.map(([h]) => h), ['0.0.0.0', 'localhost', 'nowhere.test'], 'the implicit bind looked up 0.0.0.0 too');
    assert.ok(asked.every(([, f]) => f === 4), 'udp4 looks up family 4');
    await close(s);
    await close(rx);
  });

  test(`signal: aborting closes the socket; an aborted signal closes it at once; Symbol.asyncDispose closes (${name})`, { skip }, async () => {
    const ac = new AbortController();
    const s = dgram.createSocket({ type: 'udp4', signal: ac.signal });
    await bindLocal(s);
    const closed = new Promise((r) => s.once('close', r));
    ac.abort();
    await closed;
    assert.equal(shape(thrown(() => s.address())) !== null, true);
    assert.deepEqual(thrown(() => s.address()), { name: 'Error', code: 'ERR_SOCKET_DGRAM_NOT_RUNNING', message: 'Not running' });
    const t = dgram.createSocket({ type: 'udp4', signal: AbortSignal.abort() });
    await new Promise((r) => t.once('close', r));
    const u = dgram.createSocket('udp4');
    await bindLocal(u);
    let uClosed = false;
    u.once('close', () => (uClosed = true));
    await (u as unknown as { [Symbol.asyncDispose](): Promise<void> })[Symbol.asyncDispose]();
    assert.ok(uClosed);
    await (u as unknown as { [Symbol.asyncDispose](): Promise<void> })[Symbol.asyncDispose](); // twice: nothing
  });
}
