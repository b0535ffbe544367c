/**
 * This thread's ring, whichever backend runs: the io_uring Ring, or the
 * epoll FallbackRing where io_uring is blocked or MAIO_BACKEND=epoll. Every
 * layer above the ring (sockets, servers, pools, stats) gets its ring here
 * and codes against IoRing only.
 */
import { backend } from '../backend';
import { FallbackRing } from './fallback-ring';
import type { IoRing } from './io-ring';
import { Ring } from './ring';

/**
 * The ring of this thread's backend, created on first use (again after a
 * close). Throws what backend() throws (MAIO_BACKEND=io_uring without
 * io_uring, a bad MAIO_BACKEND) and what creating the ring throws.
 */
export function currentRing(): IoRing {
  if (backend().mode === 'io_uring') {
    const ring = Ring.current();
    if (ring !== null) return ring;
  }
  return FallbackRing.current();
}
