/**
 * socket.sendFile(): a file range to a maio socket without user-space copies
 * (sendFile in send-file.ts: by default sendfile(2) driven by the socket's
 * readiness, on both backends; mode 'splice': file -> pipe -> socket SPLICE
 * pairs, io_uring only, the epoll backend rejects it saying so).
 *
 * Order: what was queued on the socket before (send/write) leaves first; the
 * transfer starts once the socket's queue is empty. Do not send() or write()
 * on the socket until the promise settles: those bytes would race the splices.
 * Progress: the socket emits 'sendFileProgress' (sent, total) as bytes reach the socket.
 */
import * as fs from 'node:fs';
import { ClosedError, InvalidArgumentError } from '../core/errors';
import type { Socket } from './socket';
import { kOnSendsDrained } from '../core/symbols';
import { currentRing } from '../ring/current';
import { sendFile, type SendFileOptions } from './send-file';

export interface SocketSendFileOptions extends SendFileOptions {
  offset?: number;
  /** default: to the end of the file */
  length?: number;
  signal?: AbortSignal;
}

export async function socketSendFile(socket: Socket, file: string | number, options: SocketSendFileOptions = {}): Promise<number> {
  if (typeof file !== 'string' && typeof file !== 'number') throw new InvalidArgumentError('sendFile() takes a path or a file descriptor');
  const ring = currentRing();
  if (socket.connecting) await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => reject(new ClosedError('the socket closed before it connected')));
  });
  // Earlier sends first: wait for the socket's queue to empty.
  await new Promise<void>((resolve) => socket[kOnSendsDrained](resolve));
  if (socket.destroyed || socket.fd < 0) throw new ClosedError('the socket is destroyed');
  if (socket.writableEnded) throw new ClosedError('sendFile() after end()');
  const fd = typeof file === 'number' ? file : fs.openSync(file, 'r');
  // The transfer holds its own reference to the socket (a dup, or a splice in
  // flight): a socket closed meanwhile must stop it, or the connection would
  // stay open until the file is through.
  const ac = new AbortController();
  const outer = options.signal;
  const onOuter = (): void => ac.abort();
  let closed = false;
  const onClose = (): void => {
    closed = true;
    ac.abort();
  };
  if (outer?.aborted) ac.abort();
  else outer?.addEventListener('abort', onOuter, { once: true });
  socket.once('close', onClose);
  try {
    return await sendFile(ring, socket.fd, fd, {
      ...options,
      signal: ac.signal,
      onProgress: (sent, total) => socket.emit('sendFileProgress', sent, total),
    });
  } catch (err) {
    if (closed) throw new ClosedError('the socket closed during sendFile()');
    throw err;
  } finally {
    outer?.removeEventListener('abort', onOuter);
    socket.removeListener('close', onClose);
    if (typeof file === 'string') fs.closeSync(fd);
  }
}
