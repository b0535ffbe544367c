/**
 * The io_uring engine: native/ring.c does the work. submit() is one
 * ringSubmit (validate, fill SQEs, one io_uring_enter); native reaps CQEs into
 * the completion array and calls the Ring's onCompletions itself. Nothing
 * here runs per operation.
 */
import { backend } from '../../backend';
import { OutOfRangeError } from '../../core/errors';
import {
  IORING_FEAT_SUBMIT_STABLE,
  IORING_OP_SENDMSG,
  IORING_OP_SENDMSG_ZC,
  SENDV_MAX_SEGS,
  native,
  type NativeBinding,
  type PoolHandle,
  type RingHandle,
} from '../../core/native';
import { typed, type Engine, type EngineArrays, type EngineAttachment, type EngineHost } from '../engine';
import type { RingCapabilities } from '../io-ring';

/**
 * MAIO_RING_ENTRIES (a power of two, 64..32768; default 1024): SQ entries; the
 * CQ holds four times as many. Small rings are for tests of a full SQ and an
 * overflowing CQ. A submit never takes more descriptors than the SQ holds, so
 * a link chain (at most 32 sends) never straddles two enters.
 */
const ENTRIES_ENV = process.env.MAIO_RING_ENTRIES;
const ENTRIES_OK = ENTRIES_ENV === undefined || ENTRIES_ENV === '' || /^(64|128|256|512|1024|2048|4096|8192|16384|32768)$/.test(ENTRIES_ENV);
const ENTRIES = ENTRIES_OK && ENTRIES_ENV ? Number(ENTRIES_ENV) : 1024;
/**
 * MAIO_BATCH_WAIT_US (an integer 0..10000; default 50): while this thread's
 * ring receives at least 1 GiB/s on stream sockets, each wake-up first waits
 * up to this long (or for 16 completions) so that receives come back in a few
 * large batches instead of one small one per wake-up (native/ring.c, "bulk
 * batching"). Datagram receives do not count: a datagram batch is one
 * completion however long the wait. 0 turns it off. Below that rate nothing
 * waits.
 */
const BATCH_WAIT_ENV = process.env.MAIO_BATCH_WAIT_US;
const BATCH_WAIT_OK = BATCH_WAIT_ENV === undefined || BATCH_WAIT_ENV === '' || (/^\d{1,5}$/.test(BATCH_WAIT_ENV) && Number(BATCH_WAIT_ENV) <= 10000);
const BATCH_WAIT_US = BATCH_WAIT_OK && BATCH_WAIT_ENV ? Number(BATCH_WAIT_ENV) : 50;
/**
 * MAIO_SENDV=0 turns SENDV off: every queued send goes as its own SEND (for
 * A/B measurements). By default a socket sends runs of plain sends as one
 * SENDMSG of up to SENDV_MAX_SEGS pieces where the kernel allows it.
 */
const SENDV_ENV = process.env.MAIO_SENDV;
const SENDV_OK = SENDV_ENV === undefined || SENDV_ENV === '' || SENDV_ENV === '0' || SENDV_ENV === '1';

export class UringEngine implements Engine {
  readonly capabilities: RingCapabilities;
  readonly batch: number;
  readonly #native: NativeBinding;
  readonly #handle: RingHandle;

  constructor(host: EngineHost, shared: EngineArrays) {
    if (!ENTRIES_OK) throw new OutOfRangeError(`MAIO_RING_ENTRIES must be a power of two from 64 to 32768, got '${ENTRIES_ENV}'`);
    if (!BATCH_WAIT_OK) throw new OutOfRangeError(`MAIO_BATCH_WAIT_US must be an integer from 0 to 10000, got '${BATCH_WAIT_ENV}'`);
    if (!SENDV_OK) throw new OutOfRangeError(`MAIO_SENDV must be 0 or 1, got '${SENDV_ENV}'`);
    this.batch = Math.min(shared.submit.length >> 4, ENTRIES);
    this.#native = native();
    const n = this.#native;
    this.#handle = typed(() =>
      n.ringCreate({
        entries: ENTRIES,
        submit: shared.submit,
        completions: shared.completions,
        aux: shared.aux,
        stats: shared.stats,
        onCompletions: host.onCompletions,
        batchWaitUs: BATCH_WAIT_US,
        setup: backend().ringSetup?.native,
      }),
    );
    // native/ring.c refuses SENDV on the same grounds.
    const p = this.#native.probe();
    const stable = (p.features & IORING_FEAT_SUBMIT_STABLE) !== 0 && p.ops.includes(IORING_OP_SENDMSG) && !backend().setupFlags.includes('SQPOLL');
    const sendv = stable && SENDV_ENV !== '0';
    this.capabilities = Object.freeze({
      splice: true,
      sendvMax: sendv ? SENDV_MAX_SEGS : 0,
      fixedBuffers: true,
      zeroCopySend: 'SEND_ZC' as const,
      zeroCopySendmsg: stable && p.ops.includes(IORING_OP_SENDMSG_ZC),
    });
  }

  submit(count: number, bufs: Uint8Array[]): number {
    // native references the views of the ops the kernel took (RingStat.Held)
    return bufs.length === 0 ? this.#native.ringSubmit(this.#handle, count) : this.#native.ringSubmit(this.#handle, count, bufs);
  }

  attachPool(handle: PoolHandle, index: number, lazy: boolean): EngineAttachment {
    const r = typed(() => this.#native.ringRegisterPool(this.#handle, handle, index, lazy));
    return { registered: r.registered, pending: r.pending === true, error: r.error };
  }

  detachPool(index: number): void {
    typed(() => this.#native.ringUnregisterPool(this.#handle, index));
  }

  registerBufRing(group: number, entries: number): void {
    typed(() => this.#native.ringRegisterBufRing(this.#handle, group, entries));
  }

  unregisterBufRing(group: number): void {
    typed(() => this.#native.ringUnregisterBufRing(this.#handle, group));
  }

  /** The Ring says whether referenced ops are live (only when that changes). */
  setRef(on: boolean): void {
    this.#native.ringRef(this.#handle, on);
  }

  /** Cancels what is in flight and closes the ring (native waits for the cancellations). */
  close(): void {
    this.#native.ringClose(this.#handle);
  }
}
