/**
 * IoPool: one mmap'd region (native/pool.c) cut into size classes, handing
 * out IoBuffer handles whose ownership it enforces.
 *
 * States per slot: FREE -> OWNED (alloc) -> LENT (kernel has it; counted, so
 * one buffer can go to several sends) -> OWNED (last return) -> FREE
 * (release). Everything is bookkept in typed arrays (slots.ts); the only JS
 * object per allocation is the IoBuffer handle (plus an ArrayBuffer in strict
 * mode).
 *
 * Close: close() refuses new allocations at once (ClosedError) and rejects
 * waiters, but buffers still owned or lent stay valid. When the last one comes
 * back the pool detaches from the ring and drops its native handle; the
 * memory is unmapped when the last ArrayBuffer over it is collected (native
 * refcount), so nothing can ever see unmapped memory.
 */
import * as fs from 'node:fs';
import { native, type PoolCreateResult, type PoolHandle, type PoolInfo } from '../core/native';
import { currentRing } from '../ring/current';
import { bindToThread } from './thread-bound';
import type { IoRing } from '../ring/io-ring';
import {
  AbortError,
  BufferForeignError,
  BufferLentError,
  BufferReleasedError,
  BufferTooLargeError,
  ClosedError,
  InvalidArgumentError,
  OutOfRangeError,
  PoolExhaustedError,
  QuotaExceededError,
  fromNative,
} from '../core/errors';
import {
  kLend,
  kPoolHandle,
  kPoolId,
  kPoolIdOn,
  kRingClosed,
  kQuotaAlloc,
  kQuotaAllocWait,
  kQuotaCharge,
  kQuotaCredit,
  kReleaseWhenReturned,
  kReturn,
  kSlot,
  kUncheckedBytes,
  kRegionBytes,
  kGeneration,
  kSetRecycler,
} from '../core/symbols';
import { IoBuffer, makeBuffer, type BufferHost } from './buffer';
import { resolveOptions, type PoolOptions } from './config';
import { PoolQuota, type QuotaOptions } from './quota';
import { SlotFlag, SlotState, SlotTable } from './slots';

/** kLend flags. */
/** Ownership goes with the operation: the buffer is released when the last lend returns. */
export const LEND_TRANSFER = SlotFlag.ReleaseOnReturn;
/** The kernel writes into the buffer (recv): no other lend while it is out. */
export const LEND_EXCLUSIVE = SlotFlag.Exclusive;

/**
 * A slot's provider (the receive path's buffer group): when a buffer of a slot
 * it claimed is released, the slot is not freed but handed back to it as a
 * fresh OWNED handle (new generation: the old handle is stale). The recycler
 * either keeps it (lends it to the kernel again) or lets it go with
 * `pool[kSetRecycler](buf, null)` followed by `buf.release()`.
 */
export interface SlotRecycler {
  recycle(buf: IoBuffer): void;
}

export interface AllocWaitOptions {
  signal?: AbortSignal;
}

export interface PoolClassStats {
  size: number;
  total: number;
  inUse: number;
  lent: number;
  highWater: number;
  failedAllocs: number;
}

export type PoolResidency = 'lazy' | 'resident' | 'registered';

export interface PoolStats {
  /** region bytes */
  capacity: number;
  /** start address (hex), as in /proc/self/maps */
  address: string;
  classes: PoolClassStats[];
  buffers: number;
  inUse: number;
  lent: number;
  bytesInUse: number;
  failedAllocs: number;
  /** allocWait calls pending */
  waiting: number;
  locked: boolean;
  /** errno name when mlock failed ('ENOMEM', 'EPERM'), else '' */
  lockError: string;
  /** created with `eager: true` (resident from the start) */
  eager: boolean;
  /**
   * 'lazy': mapped, pages fault in on first write, not registered (yet); 'resident': faulted in
   * (eager) but not registered; 'registered': pinned as the ring's fixed buffer (every page
   * resident). A lazy pool becomes 'registered' at its first zero-copy send.
   */
  residency: PoolResidency;
  /** Bytes of the region resident in memory now (mincore). */
  residentBytes: number;
  /** Registration waits for the first zero-copy send (lazy pool, attached to an io_uring ring). */
  registerPending: boolean;
  /** MADV_HUGEPAGE accepted (a lazy pool is advised when it is pinned) */
  hugePages: boolean;
  /** AnonHugePages bytes of the mapping, with stats({ smaps: true }); else null */
  anonHugePages: number | null;
  dontFork: boolean;
  /** registered with the thread's io_uring ring as a fixed buffer */
  registered: boolean;
  /** why not ('ENOMEM', ...), '' when registered or no ring */
  registerError: string;
  /** index in the ring's pool table (descriptor pool id), -1 if not attached */
  poolId: number;
  strict: boolean;
  zeroOnRelease: boolean;
  closed: boolean;
}

function errorName(e: unknown): string {
  if (e === null || e === undefined || e === '') return '';
  if (typeof e === 'string') return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return e instanceof Error ? e.message : String(e);
}

/** Pools attached to a ring and dropped without close(): detach them. */
const ringRegistry = new FinalizationRegistry<{ ring: IoRing; index: number }>(({ ring, index }) => {
  try {
    ring.detachPool(index);
  } catch {
    // the ring is gone already
  }
});

interface Waiter {
  size: number;
  quota: PoolQuota | null;
  resolve: (buf: IoBuffer) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
}

export class IoPool {
  /** Region size in bytes. */
  readonly size: number;
  readonly strict: boolean;
  readonly zeroOnRelease: boolean;
  /** Start address of the region (hex). */
  readonly address: string;
  /** Descriptor pool id: the ring's index for this pool, -1 if not attached. */
  [kPoolId] = -1;

  /** @internal the ring this pool was attached to is closed */
  [kRingClosed](): boolean {
    return this.#ring !== null && this.#ring.closed;
  }

  /**
   * @internal This pool's descriptor id on `ring`. A pool is attached to the
   * ring it was made on; its id means nothing on any other ring (on the
   * thread's next ring the same id names another pool's memory), so using it
   * there is an error, never a descriptor.
   */
  [kPoolIdOn](ring: IoRing): number {
    if (this.#ring === ring && !ring.closed) return this[kPoolId];
    if (this.#ring !== null && this.#ring.closed) {
      throw new ClosedError("the pool's ring was closed: a pool serves only the ring it was made on (make a new pool; defaultPool() does)");
    }
    throw new InvalidArgumentError("the pool is not attached to this thread's ring (created with register: false, or on another thread)");
  }
  readonly #native: Omit<PoolCreateResult, 'region'>;
  readonly #t: SlotTable;
  readonly #host: BufferHost;
  #u8: Uint8Array | null;
  #quotas: (PoolQuota | null)[] | null = null;
  #waiters: Waiter[] = [];
  #recyclers: (SlotRecycler | null)[] | null = null;
  #closed = false;
  #finalized = false;
  #ring: IoRing | null = null;
  #registered = false;
  #registerPending = false;
  #registerError = '';
  readonly #eager: boolean;
  /** Native state at finalize (the handle is closed afterwards). */
  #lastInfo: PoolInfo | null = null;

  constructor(options: PoolOptions = {}) {
    const o = resolveOptions(options);
    let created: PoolCreateResult;
    try {
      created = native().poolCreate({ size: o.size, hugePages: o.hugePages, lock: o.lock, eager: o.eager });
    } catch (e) {
      throw fromNative(e);
    }
    // Keep no reference to the region here: after close it must be collectable.
    this.#native = {
      handle: created.handle,
      address: created.address,
      size: created.size,
      locked: created.locked,
      lockError: created.lockError,
      hugePages: created.hugePages,
      dontFork: created.dontFork,
    };
    this.size = o.size;
    this.strict = o.strict;
    this.zeroOnRelease = o.zeroOnRelease;
    this.#eager = o.eager;
    this.address = created.address;
    this.#t = new SlotTable(o.layout);
    bindToThread(created.region);
    this.#u8 = new Uint8Array(created.region);
    this.#host = {
      table: this.#t,
      region: created.region,
      views: o.strict ? new Array<ArrayBuffer | null>(this.#t.slotCount).fill(null) : null,
    };
    if (o.register) this.#register();
  }

  #register(): void {
    let ring: IoRing;
    try {
      ring = currentRing();
    } catch (e) {
      this.#registerError = errorName(e);
      return;
    }
    try {
      const r = ring.attachPool(this.#native.handle, !this.#eager);
      this[kPoolId] = r.index;
      this.#registered = r.registered;
      this.#registerPending = r.pending === true;
      this.#registerError = r.registered ? '' : errorName(r.error);
      if (r.index >= 0) {
        this.#ring = ring;
        ringRegistry.register(this, { ring, index: r.index }, this);
      }
    } catch (e) {
      this.#registerError = errorName(e);
    }
  }

  // ---- allocation -------------------------------------------------------

  /** An OWNED buffer of `size` bytes (smallest class that fits). Throws when none is free. */
  alloc(size: number): IoBuffer {
    return this.#take(size, null, true)!;
  }

  /** Like alloc, but null when the class is exhausted. */
  tryAlloc(size: number): IoBuffer | null {
    return this.#take(size, null, false);
  }

  /** Resolves (FIFO) when a buffer is free: backpressure. Rejects with AbortError on abort. */
  allocWait(size: number, options?: AllocWaitOptions): Promise<IoBuffer> {
    return this.#wait(size, null, options);
  }

  /** A share of this pool for one owner. */
  createQuota(options?: QuotaOptions): PoolQuota {
    if (this.#closed) throw new ClosedError('the pool is closed');
    this.#quotas ??= new Array<PoolQuota | null>(this.#t.slotCount).fill(null);
    return new PoolQuota(this, options);
  }

  [kQuotaAlloc](quota: PoolQuota, size: number, throwing: boolean): IoBuffer | null {
    this.#checkQuota(quota);
    return this.#take(size, quota, throwing);
  }

  [kQuotaAllocWait](quota: PoolQuota, size: number, options?: AllocWaitOptions): Promise<IoBuffer> {
    this.#checkQuota(quota);
    return this.#wait(size, quota, options);
  }

  #checkQuota(quota: PoolQuota): void {
    if (!(quota instanceof PoolQuota) || quota.pool !== this) throw new InvalidArgumentError('quota belongs to another pool');
  }

  /** Size class index for a request, validating it. */
  #classOf(size: number): number {
    if (typeof size !== 'number' || !Number.isInteger(size)) throw new InvalidArgumentError('size must be an integer');
    if (size < 0) throw new OutOfRangeError(`size must be >= 0, got ${size}`);
    const c = this.#t.classFor(size);
    if (c < 0) {
      const max = this.#t.classes[this.#t.classes.length - 1].size;
      throw new BufferTooLargeError(`requested ${size} bytes; the largest size class is ${max}`);
    }
    return c;
  }

  #take(size: number, quota: PoolQuota | null, throwing: boolean): IoBuffer | null {
    if (this.#closed) throw new ClosedError('the pool is closed');
    const c = this.#classOf(size);
    const t = this.#t;
    const cap = t.classes[c].size;
    if (quota && !quota.fits(cap)) {
      quota.failedAllocs++;
      if (!throwing) return null;
      throw new QuotaExceededError(
        `quota allows ${quota.maxBuffers} buffers / ${quota.maxBytes} bytes; holds ${quota.buffers} / ${quota.bytes}, asked ${cap}`,
      );
    }
    const s = t.take(c);
    if (s < 0) {
      t.failed[c]++;
      if (!throwing) return null;
      throw new PoolExhaustedError(`no free ${cap}-byte buffer (all ${t.classes[c].count} in use)`);
    }
    return this.#own(s, size, quota);
  }

  /** Without counting failures: for waiters. */
  #attempt(size: number, quota: PoolQuota | null): IoBuffer | null {
    const c = this.#t.classFor(size);
    if (quota && !quota.fits(this.#t.classes[c].size)) return null;
    const s = this.#t.take(c);
    return s < 0 ? null : this.#own(s, size, quota);
  }

  /** Slot s was just taken: hand it out. */
  #own(s: number, length: number, quota: PoolQuota | null): IoBuffer {
    const t = this.#t;
    const views = this.#host.views;
    if (views) {
      try {
        views[s] = bindToThread(native().poolStrictView(this.#native.handle, t.offset[s], t.classes[t.slotClass[s]].size));
      } catch (e) {
        t.put(s);
        throw fromNative(e);
      }
    }
    if (quota) {
      this.#quotas![s] = quota;
      quota[kQuotaCharge](t.classes[t.slotClass[s]].size);
    }
    return makeBuffer(this, this.#host, s, length);
  }

  #wait(size: number, quota: PoolQuota | null, options: AllocWaitOptions | undefined): Promise<IoBuffer> {
    return new Promise<IoBuffer>((resolve, reject) => {
      const signal = options?.signal;
      if (this.#closed) return reject(new ClosedError('the pool is closed'));
      if (signal?.aborted) return reject(new AbortError(undefined, { cause: signal.reason }));
      let c: number;
      try {
        c = this.#classOf(size);
      } catch (e) {
        return reject(e);
      }
      const cap = this.#t.classes[c].size;
      if (quota && !quota.canEverFit(cap)) {
        return reject(new QuotaExceededError(`a ${cap}-byte buffer never fits this quota`));
      }
      let buf: IoBuffer | null;
      try {
        buf = this.#attempt(size, quota);
      } catch (e) {
        return reject(e);
      }
      if (buf) return resolve(buf);
      const w: Waiter = { size, quota, resolve, reject, signal, onAbort: null };
      if (signal) {
        w.onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new AbortError(undefined, { cause: signal.reason }));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.push(w);
    });
  }

  /** After a release: satisfy waiters in arrival order that can be satisfied now. */
  #serve(): void {
    const ws = this.#waiters;
    for (let i = 0; i < ws.length; ) {
      const w = ws[i];
      let buf: IoBuffer | null;
      try {
        buf = this.#attempt(w.size, w.quota);
      } catch (e) {
        ws.splice(i, 1);
        this.#unlisten(w);
        w.reject(e);
        continue;
      }
      if (!buf) {
        i++;
        continue;
      }
      ws.splice(i, 1);
      this.#unlisten(w);
      w.resolve(buf);
    }
  }

  #unlisten(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
  }

  // ---- ownership --------------------------------------------------------

  /** The slot of a live handle of this pool; throws the typed error otherwise. */
  #live(buf: IoBuffer): number {
    if (!(buf instanceof IoBuffer)) throw new InvalidArgumentError('expected an IoBuffer');
    if (buf.pool !== this) throw new BufferForeignError();
    const s = buf[kSlot];
    if (this.#t.gen[s] !== buf[kGeneration]) throw new BufferReleasedError();
    return s;
  }

  /** Whether `buf` is a live (not released) buffer of this pool. */
  owns(buf: unknown): boolean {
    return buf instanceof IoBuffer && buf.pool === this && !buf.released;
  }

  /** Gives a buffer back. Throws BufferLentError while lent, BufferReleasedError if already released. */
  release(buf: IoBuffer): void {
    const s = this.#live(buf);
    if (this.#t.state[s] !== SlotState.Owned) throw new BufferLentError();
    this.#free(s);
  }

  /**
   * @internal Socket layer, at the end of a 'data' handler: the buffer is
   * released now if it is OWNED, or when its last lend comes back if the
   * handler lent it with sendShared() (else nothing would ever release it).
   */
  [kReleaseWhenReturned](buf: IoBuffer): void {
    const s = this.#live(buf);
    if (this.#t.state[s] === SlotState.Owned) this.#free(s);
    else this.#t.flags[s] |= SlotFlag.ReleaseOnReturn;
  }

  /** @internal Ring/socket layer: route the slot's next releases to `recycler` (null: to the free list again). */
  [kSetRecycler](buf: IoBuffer, recycler: SlotRecycler | null): void {
    const s = this.#live(buf);
    if (recycler === null && this.#recyclers === null) return;
    this.#recyclers ??= new Array<SlotRecycler | null>(this.#t.slotCount).fill(null);
    this.#recyclers[s] = recycler;
  }

  /** The one place a slot becomes FREE (or, with a recycler, goes back to it). */
  #free(s: number): void {
    const t = this.#t;
    const cap = t.classes[t.slotClass[s]].size;
    if (this.zeroOnRelease) this.#u8!.fill(0, t.offset[s], t.offset[s] + cap);
    const views = this.#host.views;
    if (views) {
      const v = views[s];
      views[s] = null;
      // Old views of the buffer now read length 0.
      if (v) native().poolDetachView(v);
    }
    const quotas = this.#quotas;
    if (quotas) {
      const q = quotas[s];
      if (q) {
        quotas[s] = null;
        q[kQuotaCredit](cap);
      }
    }
    const recycler = this.#recyclers?.[s];
    if (recycler) {
      // Still in use: a new generation (stale handles stay stale), OWNED by the recycler.
      t.gen[s] = (t.gen[s] + 1) >>> 0;
      t.state[s] = SlotState.Owned;
      t.lends[s] = 0;
      t.flags[s] = 0;
      if (views) views[s] = bindToThread(native().poolStrictView(this.#native.handle, t.offset[s], cap));
      recycler.recycle(makeBuffer(this, this.#host, s, cap));
      return;
    }
    t.put(s);
    if (this.#waiters.length > 0) this.#serve();
    if (this.#closed && !this.#finalized && t.totalInUse() === 0) this.#finalize();
  }

  /**
   * Ring/socket layer: the kernel takes the buffer. Counted: a buffer may be
   * lent to several sends at once. flags: LEND_TRANSFER (release when the
   * last lend returns), LEND_EXCLUSIVE (recv: nothing else meanwhile).
   */
  [kLend](buf: IoBuffer, flags = 0): void {
    const s = this.#live(buf);
    const t = this.#t;
    const f = flags & (SlotFlag.ReleaseOnReturn | SlotFlag.Exclusive);
    if (t.state[s] === SlotState.Owned) {
      t.state[s] = SlotState.Lent;
      t.lends[s] = 1;
      t.flags[s] = f;
      t.lent[t.slotClass[s]]++;
      return;
    }
    if (t.flags[s] & SlotFlag.ReleaseOnReturn) {
      throw new BufferReleasedError('buffer was given up; it is released when the kernel returns it');
    }
    if ((t.flags[s] | f) & SlotFlag.Exclusive) throw new BufferLentError('buffer is lent exclusively');
    if (t.lends[s] === 0xffff) throw new OutOfRangeError('buffer is lent 65535 times');
    t.lends[s]++;
    t.flags[s] |= f;
  }

  /**
   * Ring/socket layer: one lend came back. At zero the buffer is OWNED again,
   * or released if ownership went with the operation. Returns true if released.
   */
  [kReturn](buf: IoBuffer): boolean {
    const s = this.#live(buf);
    const t = this.#t;
    if (t.state[s] !== SlotState.Lent) throw new InvalidArgumentError('buffer is not lent');
    if (--t.lends[s] > 0) return false;
    t.lent[t.slotClass[s]]--;
    if (t.flags[s] & SlotFlag.ReleaseOnReturn) {
      this.#free(s);
      return true;
    }
    t.state[s] = SlotState.Owned;
    t.flags[s] = 0;
    return false;
  }

  /** @internal Native handle, for native calls that address pool memory. */
  get [kPoolHandle](): PoolHandle {
    return this.#native.handle;
  }

  /** The buffer's bytes even while LENT (fallback data path); throws if released/foreign. */
  [kUncheckedBytes](buf: IoBuffer): Uint8Array {
    const s = this.#live(buf);
    const views = this.#host.views;
    if (views) return new Uint8Array(views[s]!, 0, buf.length);
    return new Uint8Array(this.#host.region!, buf.offset, buf.length);
  }

  /**
   * @internal The region's bytes, one view made at creation: a buffer's bytes start at its
   * `offset`. Null in strict mode (stale views must be detachable, so each buffer has its own) and
   * once the pool is finalized. For the datagram receive path: one view for every buffer instead of
   * a Uint8Array made per received buffer.
   */
  get [kRegionBytes](): Uint8Array | null {
    return this.#host.views ? null : this.#u8;
  }

  // ---- lifecycle and stats ---------------------------------------------

  get closed(): boolean {
    return this.#closed;
  }

  /** Largest request alloc() accepts. */
  get maxAllocSize(): number {
    return this.#t.classes[this.#t.classes.length - 1].size;
  }

  /**
   * No new allocations (ClosedError), waiters rejected with ClosedError.
   * Buffers still owned or lent stay valid; the pool detaches from the ring
   * and drops its native handle when the last one is back. Safe twice.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (defaultPoolInstance === this) defaultPoolInstance = null;
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) {
      this.#unlisten(w);
      w.reject(new ClosedError('the pool was closed'));
    }
    if (this.#t.totalInUse() === 0) this.#finalize();
  }

  #finalize(): void {
    this.#finalized = true;
    const ring = this.#ring;
    if (ring) {
      this.#ring = null;
      ringRegistry.unregister(this);
      try {
        ring.detachPool(this[kPoolId]);
      } catch {
        // ring already closed: it dropped its registrations
      }
    }
    this[kPoolId] = -1;
    this.#registered = false;
    this.#registerPending = false;
    try {
      this.#lastInfo = native().poolInfo(this.#native.handle);
    } catch {
      this.#lastInfo = null;
    }
    native().poolClose(this.#native.handle);
    // Let the region ArrayBuffer be collected: its finalizer unmaps.
    this.#host.region = null;
    this.#u8 = null;
  }

  stats(options?: { smaps?: boolean }): PoolStats {
    const t = this.#t;
    const classes: PoolClassStats[] = t.classes.map((c, i) => ({
      size: c.size,
      total: c.count,
      inUse: t.inUse[i],
      lent: t.lent[i],
      highWater: t.highWater[i],
      failedAllocs: t.failed[i],
    }));
    const sum = (f: (c: PoolClassStats) => number) => classes.reduce((a, c) => a + f(c), 0);
    const n = this.#native;
    const info = this.#finalized ? this.#lastInfo : native().poolInfo(n.handle);
    const attached = this[kPoolId] >= 0;
    // A lazy pool's registration happens in the ring (first SEND_ZC): read its outcome here.
    const registered = attached && (this.#registered || (info !== null && info.pinned > 0));
    let registerError = this.#registerError;
    if (!registered && info?.registerError) {
      registerError = `${info.registerError}: the first zero-copy send could not register (pin) the ${this.size}-byte pool`;
    }
    const pending = attached && this.#registerPending && !registered && !info?.registerError;
    return {
      capacity: this.size,
      address: this.address,
      classes,
      buffers: sum((c) => c.total),
      inUse: sum((c) => c.inUse),
      lent: sum((c) => c.lent),
      bytesInUse: sum((c) => c.inUse * c.size),
      failedAllocs: sum((c) => c.failedAllocs),
      waiting: this.#waiters.length,
      locked: info ? info.locked : n.locked,
      lockError: info ? info.lockError : n.lockError,
      eager: this.#eager,
      residency: registered ? 'registered' : this.#eager ? 'resident' : 'lazy',
      residentBytes: info ? info.residentBytes : 0,
      registerPending: pending,
      hugePages: info ? info.hugePages : n.hugePages,
      anonHugePages: options?.smaps && !this.#finalized ? smapsField(this.address, 'AnonHugePages') : null,
      dontFork: n.dontFork,
      registered,
      registerError,
      poolId: this[kPoolId],
      strict: this.strict,
      zeroOnRelease: this.zeroOnRelease,
      closed: this.#closed,
    };
  }
}

/** A field (in bytes) of the mapping starting at `address` in /proc/self/smaps, or null. */
export function smapsField(address: string, field: string): number | null {
  const entry = smapsEntry(address);
  const m = entry?.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) * 1024 : null;
}

/** The /proc/self/smaps block of the mapping that starts at `address`. */
export function smapsEntry(address: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return null;
  }
  const start = text.search(new RegExp(`^0*${address}-`, 'm'));
  if (start < 0) return null;
  const body = text.indexOf('\n', start) + 1;
  const next = text.slice(body).search(/^[0-9a-f]+-[0-9a-f]+ /m);
  return next < 0 ? text.slice(start) : text.slice(start, body + next);
}

let defaultPoolInstance: IoPool | null = null;

/** A new pool. */
export function createPool(options?: PoolOptions): IoPool {
  return new IoPool(options);
}

/**
 * This thread's default pool, created on first use (module state is per
 * thread), and again after Ring.close(): a pool is attached to the ring it
 * was made on, and the next ring cannot take its buffers. The old pool closes
 * once the application has given back what it still holds.
 */
export function defaultPool(): IoPool {
  const old = defaultPoolInstance;
  if (old !== null && !old.closed && old[kRingClosed]()) old.close();
  if (!defaultPoolInstance || defaultPoolInstance.closed) defaultPoolInstance = new IoPool();
  return defaultPoolInstance;
}
