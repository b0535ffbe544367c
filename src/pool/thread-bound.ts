/**
 * Pool memory belongs to the thread whose pool made it. A region (or strict
 * view) ArrayBuffer in a postMessage transfer list would be detached here and
 * handed to a thread whose ring knows nothing of it, while this thread's
 * kernel operations still use it; marked untransferable, it is copied
 * instead. Copying is still wrong (it copies the whole region), so maio's own
 * worker messages refuse pool memory with BufferCrossThreadError.
 */
import { markAsUntransferable } from 'node:worker_threads';

const poolMemory = new WeakSet<ArrayBuffer>();

export function bindToThread(ab: ArrayBuffer): ArrayBuffer {
  markAsUntransferable(ab);
  poolMemory.add(ab);
  return ab;
}

/** Is this ArrayBuffer a pool region or a strict view of one (in this thread)? */
export function isPoolMemory(ab: ArrayBufferLike): boolean {
  return poolMemory.has(ab as ArrayBuffer);
}
