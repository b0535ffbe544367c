/**
 * The one seam between servers and a worker group (src/workers/): inside a
 * maio worker thread, every listener joins the group's SO_REUSEPORT set, a
 * port 0 becomes the port the group shares (as node:cluster does), and the
 * worker learns each listener's fd (to steer, to clean up after a crash).
 * A UDP relay's listening socket (src/paths/udp-proxy.ts) joins the same way.
 * Kept on a global symbol so that two loaded copies of maio see one hook.
 */
import type { Server } from './server';

/** A datagram socket that serves for the group (a UDP relay's listening socket): closed, it leaves. */
export interface DatagramListener {
  once(event: 'close', listener: () => void): unknown;
}

export interface ListenHook {
  /** before bind: the port and whether to set SO_REUSEPORT; may block until the group's port is known */
  prepare(port: number): { port: number; reusePort: boolean };
  /** after listen (or after a failed bind, with fd -1): the listener and its port */
  listened(server: Server, fd: number, port: number): void;
  /** the same for a datagram socket bound after prepare() (socket null, fd -1: the bind failed) */
  listenedDatagram(socket: DatagramListener | null, fd: number, port: number): void;
  /** a socket this thread serves a client with (closed by the group if the thread dies) */
  ownSocket(fd: number): void;
  /** the socket is being closed by its owner */
  disownSocket(fd: number): void;
}

const kHook = Symbol.for('maio.listenHook');

export function setListenHook(hook: ListenHook | null): void {
  (globalThis as Record<symbol, unknown>)[kHook] = hook ?? undefined;
}

export function listenHook(): ListenHook | undefined {
  return (globalThis as Record<symbol, unknown>)[kHook] as ListenHook | undefined;
}
