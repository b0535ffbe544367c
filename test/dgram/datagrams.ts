/** Sequence-numbered datagrams for the UDP tests: made in pool buffers, checked byte by byte. */
import type { IoPool } from '../../src/index';

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
