/**
 * Pool options: defaults, validation, the default size (what this process can
 * lock) and the layout of size classes inside the region.
 */
import * as fs from 'node:fs';
import { InvalidArgumentError, OutOfRangeError } from '../core/errors';

export const KiB = 1024;
export const MiB = 1024 * KiB;
const PAGE = 4096;
export const POOL_MIN = 64 * KiB;
export const POOL_MAX = 1024 * MiB;
/** Most slots one pool may have (typed arrays stay small; slot ids fit easily). */
const MAX_SLOTS = 1 << 22;

export interface SizeClassOption {
  /** Buffer capacity in bytes: a multiple of 64, at most the pool size. */
  size: number;
  /** Fraction of the pool's bytes for this class (0 < share <= 1). */
  share?: number;
  /** Or an exact number of buffers (takes precedence over share). */
  count?: number;
}

export interface PoolOptions {
  /** Region size in bytes (multiple of 4096, 64 KiB .. 1 GiB). Default: 64 MiB where
   * this process can lock that much, else half the memlock limit (4 MiB under 8 MiB). */
  size?: number;
  /** Size classes, smallest first. Default: 2 KiB 25%, 16 KiB 25%, 64 KiB 30%, 256 KiB 20%. */
  classes?: SizeClassOption[];
  /** madvise(MADV_HUGEPAGE) (default true): at creation when `eager`, else when the first
   * zero-copy send pins the region (a huge page would make a sparsely written lazy region
   * resident 2 MiB at a time). */
  hugePages?: boolean;
  /** mlock the region where the limits allow (default true): at creation when `eager`, else
   * when the region is pinned (registered) by the first zero-copy send. */
  lock?: boolean;
  /** A separate ArrayBuffer per allocation, detached on release (default false). */
  strict?: boolean;
  /** Zero-fill each buffer on release (default false). */
  zeroOnRelease?: boolean;
  /** Attach to this thread's ring and register as a fixed buffer (default true): at creation
   * when `eager`, else at the pool's first zero-copy send (false: not attached at all). */
  register?: boolean;
  /**
   * Make the whole region resident at creation: lock (or prefault) and register it now
   * (default false). A lazy pool is only mapped: pages fault in as buffers are first written,
   * so RSS follows the bytes in use; registering for SEND_ZC pins (faults in) every page, so it
   * waits for the first zero-copy send, and `lock` follows it.
   */
  eager?: boolean;
}

export const DEFAULT_CLASSES: readonly SizeClassOption[] = Object.freeze([
  { size: 2 * KiB, share: 0.25 },
  { size: 16 * KiB, share: 0.25 },
  { size: 64 * KiB, share: 0.3 },
  { size: 256 * KiB, share: 0.2 },
]);

export interface ClassLayout {
  size: number;
  count: number;
  /** byte offset of the class's first buffer in the region */
  base: number;
  /** global index of its first slot */
  firstSlot: number;
}

/** RLIMIT_MEMLOCK soft limit in bytes (Infinity when unlimited), from /proc. */
export function memlockLimit(): number {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max locked memory'));
    const soft = line?.slice('Max locked memory'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return Infinity;
    const n = Number(soft);
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

/** Whether the effective capabilities include CAP_IPC_LOCK (bit 14). */
export function hasIpcLock(): boolean {
  try {
    const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    if (!line) return false;
    const caps = BigInt('0x' + line.slice('CapEff:'.length).trim());
    return (caps & (1n << 14n)) !== 0n;
  } catch {
    return false;
  }
}

/**
 * 64 MiB when it can be locked (CAP_IPC_LOCK, or a memlock limit of at least
 * 128 MiB: mlock and the ring's registration are charged separately, plus the
 * ring's own memory). Otherwise half the limit as a power of two, so both the
 * mlock and the registration fit: 4 MiB under the usual 8 MiB, which is what
 * registers as `nobody` here (8 MiB fails with ENOMEM).
 */
export function defaultPoolSize(limit = memlockLimit(), ipcLock = hasIpcLock()): number {
  const want = 64 * MiB;
  if (ipcLock || limit >= 2 * want) return want;
  let size = POOL_MIN;
  while (size * 2 <= limit / 2 && size * 2 <= want) size *= 2;
  return size;
}

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n);
}

function checkBool(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${name} must be a boolean`);
  return v;
}

export interface ResolvedOptions {
  size: number;
  layout: ClassLayout[];
  hugePages: boolean;
  lock: boolean;
  strict: boolean;
  zeroOnRelease: boolean;
  register: boolean;
  eager: boolean;
}

export function resolveOptions(options: PoolOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
  const size = options.size ?? defaultPoolSize();
  if (!isInt(size)) throw new InvalidArgumentError('size must be an integer');
  if (size < POOL_MIN || size > POOL_MAX || size % PAGE !== 0) {
    throw new OutOfRangeError(`size must be a multiple of 4096 in [${POOL_MIN}, ${POOL_MAX}], got ${size}`);
  }
  return {
    size,
    layout: options.classes === undefined ? layoutClasses(size, DEFAULT_CLASSES, true) : layoutClasses(size, options.classes),
    hugePages: checkBool(options.hugePages, 'hugePages', true),
    lock: checkBool(options.lock, 'lock', true),
    strict: checkBool(options.strict, 'strict', false),
    zeroOnRelease: checkBool(options.zeroOnRelease, 'zeroOnRelease', false),
    register: checkBool(options.register, 'register', true),
    eager: checkBool(options.eager, 'eager', false),
  };
}

/**
 * Places the classes one after another, each starting on a page boundary, so
 * buffers of 4 KiB and more are page aligned (what the kernel pins for
 * zero-copy sends). Every class must get at least one buffer.
 */
export function layoutClasses(
  poolSize: number,
  classes: readonly SizeClassOption[],
  /** default classes: drop those a small pool has no room for */
  lenient = false,
): ClassLayout[] {
  if (!Array.isArray(classes) || classes.length === 0 || classes.length > 32) {
    throw new InvalidArgumentError('classes must be an array of 1 to 32 size classes');
  }
  const layout: ClassLayout[] = [];
  let at = 0;
  let slots = 0;
  let prev = 0;
  for (const c of classes) {
    if (typeof c !== 'object' || c === null) throw new InvalidArgumentError('each class must be an object');
    const { size, share, count } = c;
    if (lenient && (size > poolSize || Math.floor((poolSize * (share ?? 1)) / size) < 1)) continue;
    if (!isInt(size) || size < 64 || size % 64 !== 0 || size > poolSize) {
      throw new OutOfRangeError(`class size must be a multiple of 64 in [64, ${poolSize}], got ${String(size)}`);
    }
    if (size <= prev) throw new InvalidArgumentError('classes must be in increasing size order');
    prev = size;
    let n: number;
    if (count !== undefined) {
      if (!isInt(count) || count < 1) throw new OutOfRangeError(`class ${size}: count must be a positive integer`);
      n = count;
    } else {
      const s = share ?? 1 / classes.length;
      if (typeof s !== 'number' || !(s > 0 && s <= 1)) throw new OutOfRangeError(`class ${size}: share must be in (0, 1]`);
      n = Math.floor((poolSize * s) / size);
    }
    at = Math.ceil(at / PAGE) * PAGE;
    if (n < 1) throw new OutOfRangeError(`class ${size} gets no buffer in a ${poolSize}-byte pool; raise its share or the size`);
    if (at + n * size > poolSize) {
      throw new OutOfRangeError(`size classes need more than the pool's ${poolSize} bytes (class ${size})`);
    }
    layout.push({ size, count: n, base: at, firstSlot: slots });
    at += n * size;
    slots += n;
    if (slots > MAX_SLOTS) throw new OutOfRangeError(`too many buffers (${slots}); use larger classes`);
  }
  if (layout.length === 0) throw new OutOfRangeError(`no size class fits a ${poolSize}-byte pool`);
  return layout;
}
