/**
 * The one seam between sockets and a worker group (src/workers/): inside a
 * maio worker thread, every listener joins the group's SO_REUSEPORT set, a
 * port 0 becomes the port the group shares (as node:cluster does), and the
 * worker learns each listener's fd (to steer, to clean up after a crash) and
 * each connecting socket's fd (to reset it after a crash: a proxy's upstream
 * connections).
 * Kept on a global symbol so that two loaded copies of maio see one hook.
 */
import type { Server } from './server';
import type { Socket } from './socket';

export interface ListenHook {
  /** before bind: the port and whether to set SO_REUSEPORT; may block until the group's port is known */
  prepare(port: number): { port: number; reusePort: boolean };
  /** after listen (or after a failed bind, with fd -1): the listener and its port */
  listened(server: Server, fd: number, port: number): void;
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
