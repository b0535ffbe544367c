/** The UDP tests' common ground: socket pairs, and sequence-numbered datagrams made in pool buffers, checked byte by byte. */
import * as assert from 'node:assert/strict';
import { createPool, createUdpSocket, type IoPool, type UdpBatch, type UdpMessage, type UdpSocket } from '../../src/index';
import { bounded, poolGuard, until } from '../net/helpers';

/** A receiver and a sender bound on 127.0.0.1: [rx, tx, rx's port, tx's port]. */
export async function pair(rxOptions: object = {}, txOptions: object = {}): Promise<[UdpSocket, UdpSocket, number, number]> {
  const rx = createUdpSocket({ type: 'udp4', ...rxOptions });
  const tx = createUdpSocket({ type: 'udp4', ...txOptions });
  const { port } = await rx.bind(0, '127.0.0.1');
  const { port: txPort } = await tx.bind(0, '127.0.0.1');
  return [rx, tx, port, txPort];
}

export async function closeAll(...socks: UdpSocket[]): Promise<void> {
  await Promise.all(socks.map((s) => bounded(new Promise<void>((r) => s.close(r)), 'close')));
}

/** A datagram of `len` bytes: seq in the first 4 bytes (when it has 4), then a pattern derived from it. */
export function fill(pool: IoPool, seq: number, len: number) {
  const buf = pool.alloc(len);
  buf.setLength(len);
  const b = buf.bytes;
  for (let i = 0; i < len; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  if (len >= 4) new DataView(b.buffer, b.byteOffset, len).setUint32(0, seq);
  return buf;
}

/** The seq of a datagram made by fill(), or -1 when its bytes are not what fill() wrote. */
export function check(bytes: Uint8Array): number {
  if (bytes.length < 4) return -1;
  const seq = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(0);
  for (let i = 4; i < bytes.length; i++) if (bytes[i] !== ((seq * 31 + i * 7) & 0xff)) return -1;
  return seq;
}

/**
 * The read quota with either receive event: what the application retains
 * counts against it, the receive stops there, and releasing brings the
 * datagrams that waited in the kernel, in order.
 */
export async function readQuotaHolds(event: 'message' | 'batch'): Promise<void> {
  const pool = createPool({ size: 8 << 20, lock: false, classes: [{ size: 2048, count: 1024 }] });
  const guard = poolGuard(pool);
  const quota = 8 * 2048;
  const [rx, tx, port] = await pair({ pool, readBufferSize: 2048, gro: false, readQuota: quota }, { pool });
  const held: (UdpMessage | UdpBatch)[] = [];
  if (event === 'message') rx.on('message', (m) => held.push(m.retain()));
  else rx.on('batch', (b) => held.push(b.retain()));
  // One at a time up to the quota: each arrives before the next leaves.
  for (let i = 0; i < 8; i++) {
    tx.send(fill(pool, i, 1000), port, '127.0.0.1');
    await until(() => held.length === i + 1, `datagram ${i}`);
  }
  assert.equal(rx.stats().receiveBytesHeld, quota);
  for (let i = 8; i < 14; i++) tx.send(fill(pool, i, 1000), port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(held.length, 8, 'nothing past the quota while the application holds it');
  for (const m of held.splice(0)) m.release();
  await until(() => held.length === 6, 'the datagrams that waited');
  assert.deepEqual(held.map((m) => check(m.bytes)), [8, 9, 10, 11, 12, 13]);
  for (const m of held.splice(0)) m.release();
  await closeAll(rx, tx);
  await guard.check();
}
