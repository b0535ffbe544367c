/**
 * socket.sendFile(): a file range to a maio socket without user-space copies
 * (sendFile in send-file.ts: file -> pipe -> socket SPLICE pairs). io_uring
 * only: the epoll backend has no SPLICE op (the call rejects saying so).
 *
 * Order: what was queued on the socket before (send/write) leaves first; the
 * transfer starts once the socket's queue is empty. Do not send() or write()
 * on the socket until the promise settles: those bytes would race the splices.
 * Progress: the socket emits 'sendFileProgress' (sent, total) as chains complete.
 */
import * as fs from 'node:fs';
import { BackendUnavailableError, ClosedError, InvalidArgumentError } from '../core/errors';
import type { Socket } from '../net/socket';
import { Ring } from '../ring/ring';
import { sendFile, type SendFileOptions } from './send-file';

export interface SocketSendFileOptions extends SendFileOptions {
  offset?: number;
  /** default: to the end of the file */
  length?: number;
  signal?: AbortSignal;
}

export async function socketSendFile(socket: Socket, file: string | number, options: SocketSendFileOptions = {}): Promise<number> {
  if (typeof file !== 'string' && typeof file !== 'number') throw new InvalidArgumentError('sendFile() takes a path or a file descriptor');
  const ring = Ring.current();
  if (ring === null) throw new BackendUnavailableError("socket.sendFile() needs the io_uring backend (SPLICE ops)");
  if (socket.connecting) await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => reject(new ClosedError('the socket closed before it connected')));
  });
  // Earlier sends first: wait for the socket's queue to empty.
  while (!socket.destroyed && (socket.writableLength > 0 || socket.stats().sendsInFlight > 0)) await new Promise((r) => setImmediate(r));
  if (socket.destroyed || socket.fd < 0) throw new ClosedError('the socket is destroyed');
  if (socket.writableEnded) throw new ClosedError('sendFile() after end()');
  const fd = typeof file === 'number' ? file : fs.openSync(file, 'r');
  try {
    return await sendFile(ring, socket.fd, fd, {
      ...options,
      onProgress: (sent, total) => socket.emit('sendFileProgress', sent, total),
    });
  } finally {
    if (typeof file === 'string') fs.closeSync(fd);
  }
}
