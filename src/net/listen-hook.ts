/**
 * The one seam between sockets and a worker group (src/workers/): inside a
 * maio worker thread, every listener joins the group's SO_REUSEPORT set, a
 * port 0 becomes the port the group shares (as node:cluster does), and the
 * worker learns each listener's fd (to steer, to clean up after a crash) and
 * each fd a socket serves with there (a proxy's upstream connections, a UDP
 * relay's session sockets), all of which the group resets if the thread dies.
 * A UDP relay's listening socket (src/paths/udp-proxy.ts) joins as a listener.
 * Kept on a global symbol so that two loaded copies of maio see one hook.
 */
import type { Server } from './server';
import type { Socket } from './socket';

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
  /** a socket of connect() got its fd: recorded until its 'close' */
  connecting?(socket: Socket, fd: number): void;
}

const kHook = Symbol.for('maio.listenHook');

export function setListenHook(hook: ListenHook | null): void {
  (globalThis as Record<symbol, unknown>)[kHook] = hook ?? undefined;
}

export function listenHook(): ListenHook | undefined {
  return (globalThis as Record<symbol, unknown>)[kHook] as ListenHook | undefined;
}
