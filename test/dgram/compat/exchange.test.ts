/**
 * Data through maio/dgram, checked on node:dgram first: 2,000 paced
 * datagrams echoed back byte-exact (the 'message' Buffers kept by the test
 * stay intact: they are the user's, not pool views), node:dgram and
 * maio/dgram talking to each other both ways, and udp6 on ::1.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as nodeDgram from 'node:dgram';
import * as mdgram from '../../../src/dgram/compat/index';
import { bindLocal, close, impls, skip, until, type DgramLike } from './common';
import { poolGuard } from '../../net/helpers';

/** Datagram `seq`: its number, then bytes derived from it; 1 to 1,400 bytes. */
function datagram(seq: number): Buffer {
  const len = 4 + ((seq * 7919) % 1397);
  const b = Buffer.alloc(len);
  b.writeUInt32BE(seq, 0);
  for (let i = 4; i < len; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  return b;
}

/** Sends `total` datagrams from `tx` to an echo on `echo`, at most `window` unanswered; returns the echoes, kept. */
async function exchange(tx: nodeDgram.Socket, echoPort: number, total: number, window = 32): Promise<Buffer[]> {
  const back: Buffer[] = [];
  tx.on('message', (m) => back.push(m));
  let next = 0;
  while (next < total) {
    while (next < total && next - back.length < window) tx.send(datagram(next++), echoPort, '127.0.0.1');
    await until(() => next - back.length < window / 2 || back.length === next, `echoes of ${next}`, 10000);
  }
  await until(() => back.length === total, 'every echo', 10000);
  return back;
}

function echo(s: nodeDgram.Socket): void {
  s.on('message', (m, rinfo) => s.send(m, rinfo.port, rinfo.address));
}

function checkAll(back: Buffer[], total: number): void {
  const seen = new Uint8Array(total);
  for (const m of back) {
    const seq = m.readUInt32BE(0);
    assert.ok(seq < total && !seen[seq], `datagram ${seq} once`);
    seen[seq] = 1;
    assert.ok(m.equals(datagram(seq)), `datagram ${seq} byte-exact, still, after all the others arrived`);
  }
}

for (const [name, dgram] of impls) {
  test(`2,000 paced datagrams echoed back byte-exact; the kept 'message' Buffers stay intact (${name})`, { skip, timeout: 60000 }, async () => {
    const guard = poolGuard();
    const e = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    const tx = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    echo(e);
    const port = await bindLocal(e);
    await bindLocal(tx);
    const back = await exchange(tx, port, 2000);
    checkAll(back, 2000);
    await close(tx);
    await close(e);
    await guard.check('every pool buffer (copied out or sent)');
  });
}

const pairs: [string, DgramLike, DgramLike][] = [
  ['node:dgram sender, maio/dgram echo', nodeDgram, mdgram as unknown as DgramLike],
  ['maio/dgram sender, node:dgram echo', mdgram as unknown as DgramLike, nodeDgram],
];
for (const [what, sender, echoer] of pairs) {
  test(`${what}: 500 datagrams byte-exact both ways`, { skip, timeout: 30000 }, async () => {
    const e = echoer.createSocket('udp4');
    const tx = sender.createSocket('udp4');
    echo(e);
    const port = await bindLocal(e);
    const back = await exchange(tx, port, 500); // tx binds implicitly
    checkAll(back, 500);
    await close(tx);
    await close(e);
  });
}

for (const [name, dgram] of impls) {
  test(`udp6 on ::1: rinfo family IPv6, address(), connect (${name})`, { skip }, async () => {
    const a = dgram.createSocket('udp6');
    const b = dgram.createSocket({ type: 'udp6', ipv6Only: true });
    const port = await bindLocal(a, '::1');
    await bindLocal(b, '::1');
    assert.deepEqual(a.address(), { address: '::1', family: 'IPv6', port });
    const got = new Promise<[Buffer, nodeDgram.RemoteInfo]>((r) => a.once('message', (m, ri) => r([m, ri])));
    await new Promise<void>((r) => b.connect(port, '::1', () => r()));
    b.send('over v6');
    const [m, rinfo] = await got;
    assert.equal(m.toString(), 'over v6');
    assert.deepEqual(rinfo, { address: '::1', family: 'IPv6', port: b.address().port, size: 7 });
    await close(a);
    await close(b);
  });
}

test('maio/dgram: datagrams of one size sent in one turn leave as one UDP_SEGMENT batch, each copied once into a pool buffer', { skip }, async () => {
  const rx = mdgram.createSocket('udp4');
  const tx = mdgram.createSocket('udp4');
  const port = await bindLocal(rx as unknown as nodeDgram.Socket);
  await bindLocal(tx as unknown as nodeDgram.Socket);
  const got: Buffer[] = [];
  rx.on('message', (m) => got.push(m));
  const sentBufs: Buffer[] = [];
  for (let i = 0; i < 10; i++) {
    const b = Buffer.alloc(1000, i);
    sentBufs.push(b);
    tx.send(b, port, '127.0.0.1');
    b.fill(0xee); // the user's buffer is theirs again at once: send() copied it
  }
  await until(() => got.length === 10, 'ten datagrams', 5000);
  for (let i = 0; i < 10; i++) assert.ok(got[i].equals(Buffer.alloc(1000, i)), `datagram ${i} as it was at send()`);
  const st = tx.udpSocket.stats();
  if (st.gso.enabled) assert.ok(st.gsoBatches >= 1, `a UDP_SEGMENT batch (stats: ${JSON.stringify(st)})`);
  assert.equal(st.datagramsOut, 10);
  await close(tx as unknown as nodeDgram.Socket);
  await close(rx as unknown as nodeDgram.Socket);
});
