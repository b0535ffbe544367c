/**
 * RecvGroup: the receive buffers of one (thread ring, pool, buffer size): a
 * provided-buffer ring whose buffers are pool slots lent to the kernel. Every
 * socket of the thread that reads from this pool arms its multishot recv on
 * the same group, so memory follows the data in flight, not the number of
 * connections: an idle socket holds nothing.
 *
 * A slot's life: alloc (group owns it) -> lent to the kernel and PROVIDEd ->
 * a recv CQE names its buffer id: the kernel returns it, the socket hands it
 * to the application (OWNED, length = bytes received) -> the application
 * releases it (or a send that took it completes) -> the pool's recycle hook
 * gives the slot back here with a new generation -> lent and PROVIDEd again.
 *
 * A datagram receivers' group (hotBuffers) gives the kernel at most that many
 * buffers; released ones beyond wait as spares, the most recently released
 * going back first, so the kernel's copy lands in memory still in cache.
 *
 * Growth: a multishot recv that ends with -ENOBUFS means the group ran dry.
 * It grows (doubling, up to `maxBuffers`) from the pool; at the limit, or with
 * the pool exhausted, the socket waits until a buffer comes back. The group
 * dissolves when its last socket detaches: the kernel forgets it and every
 * slot goes back to the pool's free list (buffers the application still holds
 * go there when released).
 */
import type { IoBuffer } from '../pool/buffer';
import { LEND_EXCLUSIVE, type IoPool, type SlotRecycler } from '../pool/pool';
import { kLend, kPoolId, kPoolIdOn, kReturn, kSetRecycler, kSlot } from '../core/symbols';
import { InvalidArgumentError, OutOfRangeError } from '../core/errors';
import type { IoRing, ProvideOwner } from '../ring/io-ring';

/** What a group calls back on the socket that received a buffer. */
export interface RecvGroupUser {
  /** The application gave back a buffer this socket received (`capacity` bytes of memory). */
  onRecvBufferReleased(capacity: number): void;
  /** Buffers are available again after this socket's recv ended with ENOBUFS: arm it again. */
  onRecvBuffersAvailable(): void;
}

export interface RecvGroupOptions {
  /** Size of each receive buffer (a pool size class), default 65536. */
  bufferSize?: number;
  /** Buffers provided when the group is set up, default 16. */
  initialBuffers?: number;
  /** Most buffers the group takes from the pool, default 256 (capped at 3/4 of what the pool has of that size). */
  maxBuffers?: number;
  /** @internal the small-receives group of socket-receive.ts: by default up to 16 MiB of buffers (8,192 of 2 KiB), not 256 */
  smallReceives?: boolean;
  /**
   * @internal A group of its own that gives the kernel at most this many buffers at once (the
   * datagram receivers': HOT_BUFFERS). The others wait in the group and go back to the kernel
   * most recently released first, so the kernel's copy lands in memory still in cache.
   */
  hotBuffers?: number;
}

export interface RecvGroupStats {
  group: number;
  bufferSize: number;
  /** slots the group holds: with the kernel or with the application */
  buffers: number;
  /** provided to the kernel, waiting for data */
  inKernel: number;
  /** delivered, not yet released by the application */
  withApplication: number;
  maxBuffers: number;
  /** -ENOBUFS ends of multishot recvs */
  noBufferEvents: number;
  /** held by the group for the kernel's next buffers (hotBuffers groups: over the cap), neither with the kernel nor the application */
  spare: number;
  sockets: number;
}

const enum Where {
  None = 0,
  Kernel = 1,
  App = 2,
  Spare = 3,
}

const DEFAULT_BUFFER = 64 * 1024;
const DEFAULT_INITIAL = 16;
const DEFAULT_MAX = 256;
/**
 * Buffers a datagram receiver's group gives the kernel at once. The kernel takes provided buffers
 * in ring order, so a group cycles through every buffer it provided: grown to 230 of 64 KiB
 * (15 MiB), each copy wrote to lines long out of the core's cache (measured: 15-25% more CPU per
 * datagram; a C receiver rotating 16 MiB of buffers paid as much). 32 is about two wake-ups'
 * worth (~17 GRO buffers each at 3.5 M datagrams/s); 16 ran dry twice as often and was no
 * cheaper. A burst beyond ends the recv with -ENOBUFS (counted) and the receiver re-arms it.
 */
export const HOT_BUFFERS = 32;
/** the small-receives group's default cap in bytes: 8,192 buffers of 2 KiB (before the 3/4 share) */
const SMALL_MAX_BYTES = 16 * 1024 * 1024;
/** the largest size class a socket of small messages may move to (RecvGroup.smallSize) */
const SMALL_MAX = 4096;

/** group ids this thread's groups use: kept away from 0 and from small ids other layers may pick */
const FIRST_GROUP_ID = 0x4000;
let nextGroupId = FIRST_GROUP_ID;
const freeGroupIds: number[] = [];

/** per thread (module state is per thread): pool -> key (groupKey) -> group */
const registry = new Map<IoPool, Map<number, RecvGroup>>();
/** pool -> its small receive size (RecvGroup.smallSize), looked up once per pool */
const smallSizes = new WeakMap<IoPool, number>();

/** The registry key: the buffer size and the group's kind (each kind has groups of its own), as one number. */
function groupKey(size: number, options: RecvGroupOptions): number {
  const kind = options.smallReceives ? 1 : options.hotBuffers !== undefined ? 2 : 0;
  return size * 4 + kind;
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export class RecvGroup implements ProvideOwner, SlotRecycler {
  readonly ring: IoRing;
  readonly pool: IoPool;
  readonly bufferSize: number;
  readonly maxBuffers: number;
  readonly id: number;
  /** RecvGroup.smallSize(pool): the size a socket of small messages moves to (0: none) */
  readonly smallSize: number;
  readonly #initial: number;
  /** its registry key */
  readonly #key: number;
  /** hotBuffers: most buffers with the kernel at once (Infinity: no cap) */
  readonly #hotCap: number;
  /** bids of Spare buffers, the most recently released last */
  readonly #spare: number[] = [];
  /** current handle per buffer id */
  readonly #bufs: (IoBuffer | null)[] = [];
  readonly #where: Uint8Array;
  readonly #holder: (RecvGroupUser | null)[] = [];
  /** buffer id by pool slot (-1: none); a typed array, not a Map: looked up at every recycle */
  #bidBySlot = new Int32Array(64).fill(-1);
  readonly #freeBids: number[] = [];
  #buffers = 0;
  #inKernel = 0;
  #users = 0;
  #noBufferEvents = 0;
  #waiting: RecvGroupUser[] = [];
  #growing = false;
  #dead = false;

  /** The thread's group for (ring, pool, bufferSize), made on first use. */
  static acquire(ring: IoRing, pool: IoPool, options: RecvGroupOptions = {}): RecvGroup {
    // A pool whose largest class is smaller than the default receives in its largest buffers.
    const size = options.bufferSize ?? Math.min(DEFAULT_BUFFER, pool.maxAllocSize);
    let bySize = registry.get(pool);
    const key = groupKey(size, options);
    let g = bySize?.get(key);
    if (!g || g.#dead || g.ring !== ring) {
      g = new RecvGroup(ring, pool, size, options);
      if (!bySize) registry.set(pool, (bySize = new Map()));
      bySize.set(key, g);
    }
    g.#users++;
    return g;
  }

  /**
   * The live group `acquire(ring, pool, options)` would return, without
   * counting a user: for a socket that acquired it before and holds it.
   */
  static held(ring: IoRing, pool: IoPool, options: RecvGroupOptions): RecvGroup | null {
    const size = options.bufferSize ?? Math.min(DEFAULT_BUFFER, pool.maxAllocSize);
    const g = registry.get(pool)?.get(groupKey(size, options));
    return g !== undefined && !g.#dead && g.ring === ring ? g : null;
  }

  /**
   * The buffer size a socket that receives small messages moves to (see
   * socket-receive.ts, "small receives"): the pool's smallest class when it
   * is at most SMALL_MAX and below the default size; 0 when there is none.
   */
  static smallSize(pool: IoPool): number {
    let size = smallSizes.get(pool);
    if (size === undefined) {
      const smallest = pool.stats().classes[0]?.size ?? 0;
      size = smallest > 0 && smallest <= SMALL_MAX && smallest < Math.min(DEFAULT_BUFFER, pool.maxAllocSize) ? smallest : 0;
      smallSizes.set(pool, size);
    }
    return size;
  }

  /** Stats of every live group of this thread. */
  static all(): RecvGroupStats[] {
    const out: RecvGroupStats[] = [];
    for (const bySize of registry.values()) for (const g of bySize.values()) out.push(g.stats());
    return out;
  }

  private constructor(ring: IoRing, pool: IoPool, bufferSize: number, options: RecvGroupOptions) {
    if (!Number.isInteger(bufferSize) || bufferSize < 1 || bufferSize > pool.maxAllocSize) {
      throw new OutOfRangeError(`receive buffer size must be in [1, ${pool.maxAllocSize}], got ${bufferSize}`);
    }
    pool[kPoolIdOn](ring);
    this.ring = ring;
    this.pool = pool;
    this.bufferSize = bufferSize;
    this.smallSize = RecvGroup.smallSize(pool);
    this.#key = groupKey(bufferSize, options);
    if (options.hotBuffers !== undefined && (!Number.isInteger(options.hotBuffers) || options.hotBuffers < 1)) throw new OutOfRangeError('hotBuffers must be a positive integer');
    this.#hotCap = options.hotBuffers ?? Infinity;
    // By default a group takes at most 3/4 of its size class: the buffers it
    // provides wait in the kernel until data comes, and a group holding the
    // whole class left senders' allocWait() waiting for buffers that only
    // their own sends could bring back (a deadlock on a small pool).
    const cls = pool.stats().classes.find((c) => c.size >= bufferSize);
    // The small-receives group holds one buffer per connection with a message in flight: 1,000
    // echoing connections need 1,000, and 2 KiB buffers make that 2 MiB.
    const cap = options.smallReceives ? Math.max(1, Math.floor(SMALL_MAX_BYTES / bufferSize)) : DEFAULT_MAX;
    const share = cls ? Math.max(1, Math.floor((cls.total * 3) / 4)) : cap;
    this.maxBuffers = Math.min(options.maxBuffers ?? Math.min(cap, share), 32768);
    if (!Number.isInteger(this.maxBuffers) || this.maxBuffers < 1) throw new OutOfRangeError('maxBuffers must be a positive integer');
    this.#initial = Math.max(1, Math.min(options.initialBuffers ?? DEFAULT_INITIAL, this.maxBuffers, this.#hotCap));
    const entries = pow2AtLeast(this.maxBuffers);
    this.#where = new Uint8Array(entries);
    let id = -1;
    for (let tries = 0; id < 0; tries++) {
      const cand = freeGroupIds.pop() ?? nextGroupId++;
      if (cand > 0xffff) throw new OutOfRangeError('no free buffer group id');
      try {
        ring.registerBufRing(cand, entries, this);
        id = cand;
      } catch (err) {
        // Taken by another layer: try the next id.
        if (!(err instanceof OutOfRangeError) || tries > 64) throw err;
      }
    }
    this.id = id;
    this.#grow(this.#initial);
  }

  /** Adds up to `n` buffers from the pool; returns how many it got. */
  #grow(n: number): number {
    let got = 0;
    while (got < n && this.#buffers < this.maxBuffers) {
      const buf = this.pool.tryAlloc(this.bufferSize);
      if (!buf) break;
      const bid = this.#freeBids.pop() ?? this.#bufs.length;
      if (bid === this.#bufs.length) {
        this.#bufs.push(null);
        this.#holder.push(null);
      }
      this.#setBid(buf[kSlot], bid);
      this.pool[kSetRecycler](buf, this);
      this.#buffers++;
      this.#provide(bid, buf);
      got++;
    }
    return got;
  }

  #setBid(slot: number, bid: number): void {
    if (slot >= this.#bidBySlot.length) {
      let n = this.#bidBySlot.length * 2;
      while (n <= slot) n *= 2;
      const grown = new Int32Array(n).fill(-1);
      grown.set(this.#bidBySlot);
      this.#bidBySlot = grown;
    }
    this.#bidBySlot[slot] = bid;
  }

  #provide(bid: number, buf: IoBuffer): void {
    this.pool[kLend](buf, LEND_EXCLUSIVE);
    this.#bufs[bid] = buf;
    this.#where[bid] = Where.Kernel;
    this.#holder[bid] = null;
    this.#inKernel++;
    this.ring.provide(this.pool[kPoolId], buf.offset, buf.capacity, this.id, bid);
  }

  /** A recv CQE named `bid` with `res` bytes: the buffer, now OWNED by the application. */
  take(bid: number, res: number, user: RecvGroupUser): IoBuffer {
    const buf = this.#bufs[bid];
    if (!buf || this.#where[bid] !== Where.Kernel) throw new InvalidArgumentError(`buffer id ${bid} is not with the kernel`);
    this.pool[kReturn](buf);
    this.#where[bid] = Where.App;
    this.#holder[bid] = user;
    this.#inKernel--;
    buf.setLength(res);
    this.#refill();
    return buf;
  }

  /** The pool's recycle hook: a buffer the application had is released. */
  recycle(buf: IoBuffer): void {
    const bid = this.#bidBySlot[buf[kSlot]];
    const holder = this.#holder[bid];
    this.#holder[bid] = null;
    this.#where[bid] = Where.None;
    if (holder) holder.onRecvBufferReleased(buf.capacity);
    if (this.#dead || this.pool.closed || this.#buffers > this.maxBuffers) {
      this.#drop(bid, buf);
      return;
    }
    if (this.#inKernel >= this.#hotCap) {
      this.#bufs[bid] = buf;
      this.#where[bid] = Where.Spare;
      this.#spare.push(bid);
      return;
    }
    this.#provide(bid, buf);
    this.#wake();
  }

  /** Gives the kernel spare buffers up to the cap, the most recently released first; returns how many. */
  #refill(): number {
    let n = 0;
    while (this.#spare.length > 0 && this.#inKernel < this.#hotCap) {
      const bid = this.#spare.pop()!;
      this.#provide(bid, this.#bufs[bid]!);
      n++;
    }
    return n;
  }

  /** Gives a slot back to the pool for good. */
  #drop(bid: number, buf: IoBuffer): void {
    this.#bufs[bid] = null;
    this.#where[bid] = Where.None;
    this.#bidBySlot[buf[kSlot]] = -1;
    this.#freeBids.push(bid);
    this.#buffers--;
    this.pool[kSetRecycler](buf, null);
    if (!buf.released && !buf.lent) buf.release();
  }

  /** The ring refused a PROVIDE (a bug, or the pool went away): take the slot back. */
  onProvideFailed(bid: number): void {
    const buf = this.#bufs[bid];
    if (!buf || this.#where[bid] !== Where.Kernel) return;
    this.#inKernel--;
    this.pool[kReturn](buf);
    this.#drop(bid, buf);
  }

  /**
   * A socket's multishot recv ended with -ENOBUFS. Returns true when it may
   * re-arm at once; otherwise its onRecvBuffersAvailable runs later.
   */
  noBuffers(user: RecvGroupUser): boolean {
    this.#noBufferEvents++;
    // A capped group: spare buffers first, and no growth while the kernel has the cap's worth.
    if (this.#refill() > 0 || this.#inKernel >= this.#hotCap) return true;
    // The kernel found the ring empty while this socket had data. Buffers
    // PROVIDEd since (counted in inKernel) do not prove the ring is big
    // enough: when buffers come back one turn after they went out (echo: at
    // the send's completion), a group sized for the sockets runs dry every
    // turn and each recv ends, costing a CQE, a re-arm and a poll per
    // message. One more buffer per such event, up to maxBuffers, sizes the
    // group to the data in flight.
    if (this.#inKernel > 0) {
      if (this.#buffers < this.maxBuffers) this.#grow(1);
      return true;
    }
    if (this.#grow(Math.max(1, Math.min(this.#buffers, this.maxBuffers - this.#buffers, this.#hotCap))) > 0) return true;
    if (!this.#waiting.includes(user)) this.#waiting.push(user);
    // Nothing with the kernel and nothing to grow from: wait for the pool.
    if (this.#buffers < this.maxBuffers && !this.#growing) {
      this.#growing = true;
      this.pool.allocWait(this.bufferSize).then(
        (buf) => {
          this.#growing = false;
          if (this.#dead) {
            buf.release();
            return;
          }
          const bid = this.#freeBids.pop() ?? this.#bufs.length;
          if (bid === this.#bufs.length) {
            this.#bufs.push(null);
            this.#holder.push(null);
          }
          this.#setBid(buf[kSlot], bid);
          this.pool[kSetRecycler](buf, this);
          this.#buffers++;
          this.#provide(bid, buf);
          this.#wake();
        },
        () => {
          this.#growing = false; // pool closed
        },
      );
    }
    return false;
  }

  /** A socket stops waiting (closed). */
  forget(user: RecvGroupUser): void {
    const i = this.#waiting.indexOf(user);
    if (i >= 0) this.#waiting.splice(i, 1);
  }

  #wake(): void {
    if (this.#waiting.length === 0) return;
    const ws = this.#waiting;
    this.#waiting = [];
    for (const w of ws) w.onRecvBuffersAvailable();
  }

  /** A socket is done with the group (its recv has completed for good). */
  release(): void {
    if (--this.#users > 0 || this.#dead) return;
    this.#dead = true;
    const bySize = registry.get(this.pool);
    if (bySize?.get(this.#key) === this) {
      bySize.delete(this.#key);
      if (bySize.size === 0) registry.delete(this.pool);
    }
    try {
      this.ring.unregisterBufRing(this.id);
    } catch {
      // the ring is closed: the kernel dropped the group with it
    }
    freeGroupIds.push(this.id);
    for (let bid = 0; bid < this.#bufs.length; bid++) {
      const buf = this.#bufs[bid];
      if (!buf) continue;
      if (this.#where[bid] === Where.Kernel) {
        this.#inKernel--;
        this.pool[kReturn](buf);
        this.#drop(bid, buf);
      } else if (this.#where[bid] === Where.Spare) {
        this.#drop(bid, buf);
      } else if (this.#where[bid] === Where.App) {
        // Still with the application: its release goes to the free list.
        this.#holder[bid] = null;
        this.#bufs[bid] = null;
        this.#buffers--;
        if (!buf.released) this.pool[kSetRecycler](buf, null);
      }
    }
    this.#waiting = [];
    this.#spare.length = 0;
  }

  get dead(): boolean {
    return this.#dead;
  }

  stats(): RecvGroupStats {
    return {
      group: this.id,
      bufferSize: this.bufferSize,
      buffers: this.#buffers,
      inKernel: this.#inKernel,
      withApplication: this.#buffers - this.#inKernel - this.#spare.length,
      maxBuffers: this.maxBuffers,
      noBufferEvents: this.#noBufferEvents,
      spare: this.#spare.length,
      sockets: this.#users,
    };
  }
}
