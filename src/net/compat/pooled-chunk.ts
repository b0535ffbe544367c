/**
 * Chunks of maio/net's pipe fast path: a Buffer over the pool buffer the bytes
 * arrived in, handed to a maio/net socket's write (socket.ts, #pushPooled).
 *
 * The rule that keeps the stream contract: the pool buffer behind such a
 * chunk goes back to the pool only when a maio/net socket's _write/_writev
 * sends it (ownership passes to the send; released when the kernel is done)
 * or its _destroy drops it from the Writable's buffer. Nothing else releases
 * it, so a chunk that reached anyone else stays valid (its slot stays held).
 * The reader hands a chunk out this way only when the one consumer of its
 * 'data' event is pipe()'s listener to a maio/net socket.
 */
import type { IoBuffer } from '../../pool/buffer';

const pooled = new WeakMap<Uint8Array, IoBuffer>();
let enabled = true;

/** @internal turns the pipe fast path off or on (benchmarks compare the two in one run). */
export function setPooledPipe(on: boolean): void {
  enabled = on;
}

/** @internal whether the pipe fast path is on. */
export function pooledPipeEnabled(): boolean {
  return enabled;
}

/** A Buffer over `buf`'s bytes, registered until a socket takes it. */
export function pooledChunk(buf: IoBuffer): Buffer {
  const bytes = buf.bytes;
  const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pooled.set(chunk, buf);
  return chunk;
}

/** The pool buffer behind `chunk`, now the caller's to send or release (undefined: a plain chunk). */
export function takePooled(chunk: unknown): IoBuffer | undefined {
  if (!(chunk instanceof Uint8Array)) return undefined;
  const buf = pooled.get(chunk);
  if (buf !== undefined) pooled.delete(chunk);
  return buf;
}

/** Whether `chunk` is a pooled chunk nobody took yet. */
export function isPooled(chunk: Uint8Array): boolean {
  return pooled.has(chunk);
}

/** Forgets `chunk` (its buffer is then held for good: see socket.ts). */
export function forgetPooled(chunk: Uint8Array): void {
  pooled.delete(chunk);
}

/**
 * transientChunks' chunks (Buffers over a pool buffer that goes back when
 * the 'data' listeners return): a write() of one copies it, never holds it
 * (a held send would read the buffer after its next receive reused it).
 */
const transient = new WeakSet<Uint8Array>();

export function markTransient(chunk: Uint8Array): void {
  transient.add(chunk);
}

export function isTransient(chunk: Uint8Array): boolean {
  return transient.has(chunk);
}
