// The ring's datagram ops, the same on both engines: RECVMSG_MULTI posts one
// CQE per datagram (F_BUFFER, oldest buffer first, F_MORE while armed), the
// buffer laid out as io_uring_recvmsg_out, name, control, payload, and ends
// with -ENOBUFS when the group runs dry; SENDMSG sends pool pieces to the
// sockaddr of its aux entry, as one datagram or, with a segment size, several.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CQE_F_BUFFER, CQE_F_MORE, SENDMSG_NAME_MAX, native } from '../../src/core/native';
import { decodeSockaddr, sockaddr } from '../../src/net/address';
import { Ring } from '../../src/ring/ring';
import { Collector, withPool } from '../ring/helpers';
import { netSkip as skip, until as untilMs } from '../net/helpers';

const until = (cond: () => boolean, what: string) => untilMs(cond, what, 5000);

const ENOBUFS = 105;
const NAME = 32;

function u32(b: Uint8Array, o: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(o, true);
}

test('RECVMSG_MULTI and SENDMSG: one CQE per datagram in order, the kernel\'s buffer layout, ENOBUFS when the group is empty', { skip, timeout: 20000 }, async () => {
  const ring = Ring.current();
  const n = native();
  const p = withPool(ring);
  const rx = n.sockOpen(4, 'udp');
  const tx = n.sockOpen(4, 'udp');
  n.sockBind(rx, sockaddr('127.0.0.1', 0));
  n.sockBind(tx, sockaddr('127.0.0.1', 0));
  const rxPort = decodeSockaddr(n.sockName(rx, false)).port;
  const txPort = decodeSockaddr(n.sockName(tx, false)).port;
  const group = 0x3f00;
  ring.registerBufRing(group, 8, { onProvideFailed: () => assert.fail('a PROVIDE was refused') });
  try {
    for (let bid = 0; bid < 4; bid++) ring.provide(p.index, 65536 * (bid + 1), 4096, group, bid);
    // Three datagrams wait in the socket before the recv is armed: the epoll engine reads them in one recvmmsg.
    const aux = ring.allocAux();
    ring.writeSockaddr(aux, '127.0.0.1', rxPort);
    const sends = new Collector();
    const payload = (i: number) => 100 * (i + 1);
    for (let i = 0; i < 3; i++) {
      p.bytes.fill(0x41 + i, i * 1024, i * 1024 + payload(i));
      // One piece each, no GSO: aux holds the name, then (offset, length).
      ring.sendmsg(sends, tx, p.index, aux, new Int32Array([i * 1024, payload(i)]), 1, payload(i), 16);
      ring.flush(); // one datagram per flush: the entry is rewritten for the next
      await until(() => sends.events.length === i + 1, `send ${i}`);
    }
    ring.freeAux(aux);
    assert.deepEqual(sends.events.map((e) => e[1]), [100, 200, 300]);
    const rc = new Collector();
    ring.recvmsgMulti(rc, rx, group, NAME, 0);
    await until(() => rc.events.length === 3, 'three datagrams');
    for (let i = 0; i < 3; i++) {
      const [, res, flags] = rc.events[i];
      assert.ok(flags & CQE_F_BUFFER && flags & CQE_F_MORE, `CQE ${i}: F_BUFFER | F_MORE`);
      const bid = flags >>> 16;
      assert.equal(bid, i, 'the oldest buffer first');
      const buf = p.bytes.subarray(65536 * (bid + 1), 65536 * (bid + 1) + res);
      assert.equal(u32(buf, 0), 16, 'namelen: a sockaddr_in');
      assert.equal(u32(buf, 4), 0, 'no control data');
      assert.equal(u32(buf, 8), payload(i), 'payloadlen');
      assert.equal(res, 16 + NAME + payload(i), 'res: header, reserved name, payload');
      assert.equal(decodeSockaddr(buf.subarray(16, 16 + 16)).port, txPort);
      assert.ok(buf.subarray(16 + NAME).every((x) => x === 0x41 + i), 'the payload');
    }
    // One buffer left: the fourth datagram takes it, the fifth finds the group empty.
    for (let i = 0; i < 2; i++) {
      const a = ring.allocAux();
      ring.writeSockaddr(a, '127.0.0.1', rxPort);
      ring.sendmsg(sends, tx, p.index, a, new Int32Array([0, 10]), 1, 10, 16);
      ring.flush();
      await until(() => sends.events.length === 4 + i, 'send');
      ring.freeAux(a);
    }
    await until(() => rc.events.length === 5, 'the fourth datagram and the end');
    assert.equal(rc.events[3][2] >>> 16, 3);
    assert.equal(rc.events[4][1], -ENOBUFS);
    assert.equal(rc.events[4][2] & CQE_F_MORE, 0, 'the multishot ended');

    // The fifth datagram still waits in the socket; then a GSO send of three
    // 8-byte segments and a 5-byte one arrives as four datagrams.
    for (let bid = 0; bid < 5; bid++) ring.provide(p.index, 65536 * (bid + 1), 4096, group, bid);
    const rc2 = new Collector();
    ring.recvmsgMulti(rc2, rx, group, NAME, 0);
    const big = ring.allocAuxLarge();
    ring.writeSockaddr(big, '127.0.0.1', rxPort);
    assert.equal(SENDMSG_NAME_MAX, NAME);
    ring.sendmsg(sends, tx, p.index, big, new Int32Array([0, 8, 100, 8, 200, 8, 300, 5]), 4, 29, 16, 8);
    ring.flush();
    await until(() => sends.events.length === 6, 'the GSO send');
    ring.freeAuxLarge(big);
    assert.equal(sends.events[5][1], 29);
    await until(() => rc2.events.length >= 5, 'the waiting datagram and four from one GSO send');
    assert.deepEqual(rc2.events.slice(0, 5).map((e) => u32(p.bytes, 65536 * ((e[2] >>> 16) + 1) + 8)), [10, 8, 8, 8, 5]);
    // The last buffer taken, the recv may end at once with -ENOBUFS (both engines may); else cancel it.
    if (rc2.events.length === 5 && ring.cancel(rc2.events[0][0])) await until(() => rc2.events.length === 6, 'the end');
    const last = rc2.events[5];
    assert.ok(last[1] === -ENOBUFS || last[1] === -125, `ended: ${last[1]}`);
    assert.equal(last[2] & CQE_F_MORE, 0);
  } finally {
    ring.unregisterBufRing(group);
    n.sockClose(rx);
    n.sockClose(tx);
    p.done();
  }
});

test('SENDMSGs submitted together: each its own result, a bad entry fails alone with -EINVAL (one sendmmsg on epoll)', { skip, timeout: 20000 }, async () => {
  const ring = Ring.current();
  const n = native();
  const p = withPool(ring);
  const rx = n.sockOpen(4, 'udp');
  const tx = n.sockOpen(4, 'udp');
  n.sockBind(rx, sockaddr('127.0.0.1', 0));
  const rxPort = decodeSockaddr(n.sockName(rx, false)).port;
  const sends = new Collector();
  const auxes: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const a = ring.allocAux();
      auxes.push(a);
      ring.writeSockaddr(a, '127.0.0.1', rxPort);
      // The third names 20 bytes of sockaddr: no family has that length.
      ring.sendmsg(sends, tx, p.index, a, new Int32Array([i * 100, 10 + i]), 1, 10 + i, i === 2 ? 20 : 16);
    }
    ring.flush();
    await until(() => sends.events.length === 5, 'five results');
    const byId = new Map(sends.events.map((e) => [e[0], e[1]]));
    assert.deepEqual([...byId.values()].sort((x, y) => x - y), [-22, 10, 11, 13, 14]);
  } finally {
    for (const a of auxes) ring.freeAux(a);
    n.sockClose(rx);
    n.sockClose(tx);
    p.done();
  }
});
