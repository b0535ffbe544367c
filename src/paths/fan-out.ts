/**
 * fanOut(buf, sockets): one pool buffer sent to many sockets, no copy per
 * socket. The pool counts the lends (DESIGN.md rule 4): while any send holds
 * the buffer it is LENT (buf.bytes throws ERR_MAIO_BUFFER_LENT); it goes back
 * to the pool when the last send completes (or, with { release: false },
 * back to the caller as OWNED).
 */
import { InvalidArgumentError } from '../core/errors';
import { kLend, kReturn } from '../core/symbols';
import { IoBuffer } from '../pool/buffer';
import { LEND_TRANSFER } from '../pool/pool';
import type { Socket } from '../net/socket';

export interface FanOutOptions {
  /** Release the buffer after the last send (default true); false: it comes back OWNED. */
  release?: boolean;
}

export interface FanOutResult {
  /** sockets the buffer was queued on */
  queued: number;
  /** sockets skipped (destroyed or ended) */
  skipped: Socket[];
  /** sockets above their high-water mark after queueing (wait for their 'drain') */
  full: Socket[];
  /** resolves when every send has completed (with the kernel); rejects with none of them */
  done: Promise<void>;
}

export function fanOut(buf: IoBuffer, sockets: Iterable<Socket>, options: FanOutOptions = {}): FanOutResult {
  if (!(buf instanceof IoBuffer)) throw new InvalidArgumentError('fanOut() takes an IoBuffer');
  if (sockets === null || typeof (sockets as Partial<Iterable<Socket>>)?.[Symbol.iterator] !== 'function') {
    throw new InvalidArgumentError('fanOut() takes an iterable of maio Sockets');
  }
  const list = [...sockets];
  for (const s of list) {
    if (s === null || typeof s !== 'object' || typeof (s as Socket).sendShared !== 'function') throw new InvalidArgumentError('fanOut() takes maio Sockets');
    if (s.pool !== buf.pool) throw new InvalidArgumentError("a socket's pool differs from the buffer's");
  }
  const pool = buf.pool;
  // Our own lend keeps the buffer LENT while the sends are queued, so it
  // cannot come back between two of them.
  pool[kLend](buf, 0); // throws if lent exclusively or released
  const skipped: Socket[] = [];
  const full: Socket[] = [];
  const waits: Promise<void>[] = [];
  let queued = 0;
  try {
    for (const s of list) {
      if (s.destroyed || s.writableEnded) {
        skipped.push(s);
        continue;
      }
      waits.push(
        new Promise<void>((resolve) => {
          if (!s.sendShared(buf, () => resolve())) full.push(s);
        }),
      );
      queued++;
    }
  } finally {
    if (options.release ?? true) pool[kLend](buf, LEND_TRANSFER) ;
    if (options.release ?? true) pool[kReturn](buf);
    pool[kReturn](buf);
  }
  return { queued, skipped, full, done: Promise.all(waits).then(() => undefined) };
}
