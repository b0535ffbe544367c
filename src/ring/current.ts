/**
 * This thread's ring, and the one place above the engines that names them:
 * io_uring where backend() says so, else epoll (io_uring blocked, or
 * MAIO_BACKEND=epoll). Every layer above the ring (sockets, servers, pools,
 * stats) gets its ring here and codes against IoRing only.
 */
import { backend } from '../backend';
import type { Engine, EngineArrays, EngineHost } from './engine';
import { EpollEngine } from './engines/epoll';
import { UringEngine } from './engines/uring';
import type { IoRing } from './io-ring';
import { Ring } from './ring';

/** The engine of this thread's backend, for a new Ring. */
export function openEngine(host: EngineHost, shared: EngineArrays): Engine {
  return backend().mode === 'io_uring' ? new UringEngine(host, shared) : new EpollEngine(host, shared);
}

/**
 * The ring of this thread, created on first use (again after a close).
 * Throws what backend() throws (MAIO_BACKEND=io_uring without io_uring, a
 * bad MAIO_BACKEND) and what opening the engine throws.
 */
export function currentRing(): IoRing {
  return Ring.current();
}
