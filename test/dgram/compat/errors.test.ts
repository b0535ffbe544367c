/**
 * node:dgram's argument and state errors on maio/dgram: class, code and
 * message of each, written down from node:dgram (which runs first), and
 * EMSGSIZE for an oversize datagram through the send callback.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { bindLocal, close, impls, sent, skip, thrown } from './common';

const BUFFER = 'of type string or an instance of Buffer, TypedArray, or DataView';

for (const [name, dgram] of impls) {
  test(`bad arguments: node:dgram's TypeError/RangeError, code and message (${name})`, { skip }, async () => {
    const s = dgram.createSocket('udp4');
    const cases: [string, () => unknown, object][] = [
      ['bad type', () => dgram.createSocket('udp5' as never), { name: 'TypeError', code: 'ERR_SOCKET_BAD_TYPE', message: 'Bad socket type specified. Valid types are: udp4, udp6' }],
      ['recvBufferSize -1', () => dgram.createSocket({ type: 'udp4', recvBufferSize: -1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'The value of "options.recvBufferSize" is out of range. It must be >= 0 && <= 4294967295. Received -1' }],
      ['sendBufferSize 1.5', () => dgram.createSocket({ type: 'udp4', sendBufferSize: 1.5 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'The value of "options.sendBufferSize" is out of range. It must be an integer. Received 1.5' }],
      ['recvBufferSize a string', () => dgram.createSocket({ type: 'udp4', recvBufferSize: '1' as never }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'The "options.recvBufferSize" property must be of type number. Received type string (\'1\')' }],
      ['send a number', () => s.send(5 as never, 7000, '127.0.0.1'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: `The "buffer" argument must be ${BUFFER}. Received type number (5)` }],
      ['send a list of numbers', () => s.send([1] as never, 7000, '127.0.0.1'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: `The "buffer list arguments" argument must be ${BUFFER}. Received an instance of Array` }],
      ['send port 70000', () => s.send('x', 70000, '127.0.0.1'), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT', message: 'Port should be > 0 and < 65536. Received type number (70000).' }],
      ['send port 0', () => s.send('x', 0, '127.0.0.1'), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT', message: 'Port should be > 0 and < 65536. Received type number (0).' }],
      ['send address 5', () => s.send('x', 7000, 5 as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'The "address" argument must be of type string. Received type number (5)' }],
      ['offset out of bounds', () => s.send(Buffer.alloc(4), 5, 1, 7000, '127.0.0.1'), { name: 'RangeError', code: 'ERR_BUFFER_OUT_OF_BOUNDS', message: '"offset" is outside of buffer bounds' }],
      ['length out of bounds', () => s.send(Buffer.alloc(4), 1, 4, 7000, '127.0.0.1'), { name: 'RangeError', code: 'ERR_BUFFER_OUT_OF_BOUNDS', message: '"length" is outside of buffer bounds' }],
      ['connect port 0', () => s.connect(0), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT', message: 'Port should be > 0 and < 65536. Received type number (0).' }],
      ['remoteAddress unconnected', () => s.remoteAddress(), { name: 'Error', code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED', message: 'Not connected' }],
      ['disconnect unconnected', () => s.disconnect(), { name: 'Error', code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED', message: 'Not connected' }],
      ['setTTL a string', () => s.setTTL('a' as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'The "ttl" argument must be of type number. Received type string (\'a\')' }],
      ['setBroadcast unbound', () => s.setBroadcast(true), { name: 'Error', code: 'EBADF', message: 'setBroadcast EBADF' }],
      ['setTTL unbound', () => s.setTTL(5), { name: 'Error', code: 'EBADF', message: 'setTTL EBADF' }],
      ['address unbound', () => s.address(), { name: 'Error', code: 'EBADF', message: 'getsockname EBADF' }],
      ['setRecvBufferSize -1', () => s.setRecvBufferSize(-1), { name: 'TypeError', code: 'ERR_SOCKET_BAD_BUFFER_SIZE', message: 'Buffer size must be a positive integer' }],
      ['addMembership()', () => (s.addMembership as (...a: unknown[]) => void)(), { name: 'TypeError', code: 'ERR_MISSING_ARGS', message: 'The "multicastAddress" argument must be specified' }],
    ];
    for (const [what, f, want] of cases) assert.deepEqual(thrown(f), want, what);
    await close(s);
  });

  test(`bound: out-of-range TTLs and bad addresses are EINVAL errno errors named after the method (${name})`, { skip }, async () => {
    const s = dgram.createSocket('udp4');
    await bindLocal(s);
    const einval = (syscall: string) => ({ name: 'Error', code: 'EINVAL', message: `${syscall} EINVAL` });
    assert.deepEqual(thrown(() => s.setTTL(0)), einval('setTTL'));
    assert.deepEqual(thrown(() => s.setTTL(256)), einval('setTTL'));
    assert.deepEqual(thrown(() => s.setMulticastTTL(300)), einval('setMulticastTTL'));
    assert.deepEqual(thrown(() => s.setMulticastInterface('foo')), einval('setMulticastInterface'));
    assert.deepEqual(thrown(() => s.addMembership('1.2.3.4')), einval('addMembership'), 'not a multicast group');
    assert.deepEqual(thrown(() => s.addMembership('not an address')), einval('addMembership'));
    let errno: unknown;
    try {
      s.setTTL(0);
    } catch (e) {
      errno = [(e as NodeJS.ErrnoException).errno, (e as NodeJS.ErrnoException).syscall];
    }
    assert.deepEqual(errno, [-22, 'setTTL']);
    assert.equal(s.setTTL(64), 64);
    assert.equal(s.setMulticastTTL(0), 0);
    assert.equal(s.setMulticastLoopback(true), true);
    await close(s);
  });

  test(`an oversize datagram: EMSGSIZE to the send callback ('send EMSGSIZE host:port'), nothing without one; the socket goes on (${name})`, { skip }, async () => {
    const rx = dgram.createSocket('udp4');
    const port = await bindLocal(rx);
    const tx = dgram.createSocket('udp4');
    let errorEvents = 0;
    tx.on('error', () => errorEvents++);
    const [err, n] = await sent((cb) => tx.send(Buffer.alloc(65508), port, '127.0.0.1', cb));
    assert.equal(n, undefined);
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    assert.deepEqual(
      { code: e.code, errno: e.errno, syscall: e.syscall, message: e.message, address: e.address, port: e.port },
      { code: 'EMSGSIZE', errno: -90, syscall: 'send', message: `send EMSGSIZE 127.0.0.1:${port}`, address: '127.0.0.1', port },
    );
    tx.send(Buffer.alloc(70000), port, '127.0.0.1'); // no callback: dropped quietly, as node:dgram does
    const got = new Promise<Buffer>((r) => rx.once('message', r));
    const [err2, n2] = await sent((cb) => tx.send(Buffer.alloc(60000, 7), port, '127.0.0.1', cb));
    assert.deepEqual([err2, n2], [null, 60000]);
    const m = await got;
    assert.equal(m.length, 60000);
    assert.ok(m.every((b) => b === 7));
    // an address of the other family: EINVAL to the callback
    const [err3] = await sent((cb) => tx.send('x', port, '::1', cb));
    assert.deepEqual([(err3 as NodeJS.ErrnoException).code, err3!.message], ['EINVAL', `send EINVAL ::1:${port}`]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(errorEvents, 0);
    await close(tx);
    await close(rx);
  });
}
