/**
 * Pool memory belongs to the thread whose pool made it. Detached by a
 * postMessage transfer, a region or strict view would leave this thread's
 * pool while its kernel operations still use it. V8 copies the external
 * region instead today (test/pool/region.test.ts); marked untransferable, every
 * pool ArrayBuffer stays copied whatever V8 does with externals. A copy is
 * still wrong (the whole region, other connections' bytes included), so
 * maio's own worker messages refuse pool memory with BufferCrossThreadError.
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
