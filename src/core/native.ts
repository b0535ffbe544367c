/**
 * The typed binding to the native core (native/*.c). Nothing outside src/ring
 * and src/pool should call it directly.
 *
 * Layout constants are a copy of native/maio.h, the one source: the addon
 * exports maio.h's values as a frozen `layout` object, and native() compares
 * this copy against it when the binding loads (checkLayout), throwing
 * NativeLoadError at the first difference, so an addon built from another
 * maio.h never reads descriptors at the wrong indexes. test/core/layout.test.ts
 * fails when either side changes alone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NativeLoadError } from './errors';

/** Opaque handles: externals that native code type-tags. */
export type RingHandle = { readonly __brand: 'maio.ring' };
export type PoolHandle = { readonly __brand: 'maio.pool' };

export interface NativeProbe {
  uringUsable: boolean;
  /** errno name when io_uring_setup failed ('EPERM', 'ENOSYS', ...), else '' */
  setupError: string;
  /** 'io_uring_setup' or 'io_uring_enter' when setupError is set, else '' */
  failedSyscall: string;
  ioUringDisabled: number;
  kernel: string;
  features: number;
  /** IORING_SETUP_* of the best set-up without DEFER_TASKRUN */
  coopSetupFlags: number;
  /** IORING_SETUP_* of the DEFER_TASKRUN set-up; 0 where the kernel refuses it */
  deferSetupFlags: number;
  /** a DEFER_TASKRUN ring's eventfd, on a wake-up: 1 signalled at once, 0 late, -1 not measured */
  deferEventfd: number;
  lastOp: number;
  /** supported IORING_OP_* numbers */
  ops: number[];
  pbufRing: boolean;
  pbufRingInc: boolean;
  sparseBuffers: boolean;
}

export interface RingCreateOptions {
  entries: number;
  /** MAIO_DESC_INTS int32 per descriptor */
  submit: Int32Array;
  /** MAIO_CQE_INTS int32 per completion */
  completions: Int32Array;
  /** sockaddrs and other per-op side data, addressed by MAIO_D_AUX_OFF */
  aux: Uint8Array;
  /** MAIO_RS_COUNT doubles */
  stats: Float64Array;
  /** called once per batch of reaped completions with their count */
  onCompletions: (count: number) => void;
  /** 0..MAIO_BATCH_WAIT_MAX_US: how long a wake-up may wait for a batch while receiving in bulk (0 or absent: never) */
  batchWaitUs?: number;
  /** RING_SETUP_COOP (default) or RING_SETUP_DEFER: how completions reach the thread (src/backend.ts) */
  setup?: number;
}

/** enum maio_ring_setup (native/maio.h) */
export const RING_SETUP_COOP = 1;
export const RING_SETUP_DEFER = 2;

export type FallbackHandle = { readonly __brand: 'maio.fallback' };
export type SendfileHandle = { readonly __brand: 'maio.sendfile' };

export interface FallbackCreateOptions {
  /** (fd, epoll events) pairs, written by native before each onEvents call */
  events: Int32Array;
  /** sockaddrs for connect, addressed like the ring's aux array */
  aux: Uint8Array;
  /** (lo, hi, copied) triples, written by fallbackZcNotes */
  notes: Int32Array;
  /** called once per wakeup with the number of event pairs (0 after a bare wake) */
  onEvents: (count: number) => void;
}

export interface PoolCreateOptions {
  size: number;
  hugePages?: boolean;
  lock?: boolean;
  /** Lock or prefault now (default true); false: map only, lock when a ring pins the region. */
  eager?: boolean;
}

/** poolInfo: the region's memory state now. */
export interface PoolInfo {
  eager: boolean;
  locked: boolean;
  lockError: string;
  /** MADV_HUGEPAGE given (a lazy pool: once pinned) */
  hugePages: boolean;
  /** rings holding the region registered as a fixed buffer */
  pinned: number;
  /** errno name of a failed lazy registration, else '' */
  registerError: string;
  /** bytes of the region resident in memory (mincore) */
  residentBytes: number;
}

export interface PoolCreateResult {
  handle: PoolHandle;
  region: ArrayBuffer;
  /** start address as a hex string, to find the mapping in /proc/self/smaps */
  address: string;
  size: number;
  locked: boolean;
  /** errno name when mlock failed, else '' */
  lockError: string;
  hugePages: boolean;
  dontFork: boolean;
}

/** native/layout.c: maio.h's shared layout, frozen. */
export interface NativeLayout {
  readonly [key: string]: number | { readonly [key: string]: number };
}

export interface NativeBinding {
  /** maio.h's layout as the addon was built (checked against this file at load). */
  readonly layout: NativeLayout;
  probe(): NativeProbe;
  ringCreate(options: RingCreateOptions): RingHandle;
  /** Submits `count` descriptors from the submit array; returns the number the kernel took. */
  /** bufs: the Uint8Arrays SEND_BUF descriptors and SENDV pieces name by index (native/maio.h). */
  ringSubmit(ring: RingHandle, count: number, bufs?: Uint8Array[]): number;
  /** Attaches the pool at `index`; `registered` says whether the kernel pinned it as a fixed buffer, `error` why not. */
  ringRegisterPool(ring: RingHandle, pool: PoolHandle, index: number, lazy?: boolean): { registered: boolean; pending?: boolean; error: string };
  ringUnregisterPool(ring: RingHandle, index: number): void;
  /** Reference the event loop (referenced ops live) or not; the Ring calls it when that changes. */
  ringRef(ring: RingHandle, on: boolean): void;
  ringClose(ring: RingHandle): void;
  /** A provided-buffer ring for buffer group `group` (0..65535), `entries` a power of two <= 32768. */
  ringRegisterBufRing(ring: RingHandle, group: number, entries: number): void;
  /** The kernel forgets the group; buffers still in it are the caller's again. */
  ringUnregisterBufRing(ring: RingHandle, group: number): void;
  poolCreate(options: PoolCreateOptions): PoolCreateResult;
  /** A separate external ArrayBuffer over [offset, offset+length) of the pool. */
  poolStrictView(pool: PoolHandle, offset: number, length: number): ArrayBuffer;
  poolDetachView(view: ArrayBuffer): void;
  poolClose(pool: PoolHandle): void;
  poolInfo(pool: PoolHandle): PoolInfo;
  // Socket set-up (native/sock.c). Addresses are encoded sockaddrs (src/net/address.ts).
  /** A nonblocking, close-on-exec socket; returns its fd. */
  sockOpen(family: 4 | 6 | 'unix', type: 'tcp' | 'udp' | number): number;
  sockBind(fd: number, address: Uint8Array): void;
  sockListen(fd: number, backlog: number): void;
  /** Fallback path: 0 when connected at once, -EINPROGRESS while the handshake runs. */
  sockConnectSync(fd: number, address: Uint8Array): number;
  /** Fallback path: a new nonblocking, close-on-exec fd, or -EAGAIN when none is queued. */
  sockAccept(fd: number): number;
  /** how: 0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR */
  sockShutdown(fd: number, how: number): void;
  sockClose(fd: number): void;
  sockSetInt(fd: number, level: number, name: number, value: number): void;
  sockGetInt(fd: number, level: number, name: number): number;
  /** value at most SOCKOPT_MAX bytes */
  sockSetBytes(fd: number, level: number, name: number, value: Uint8Array): void;
  /** maxLen at most SOCKOPT_MAX; returns as many bytes as the kernel wrote */
  sockGetBytes(fd: number, level: number, name: number, maxLen: number): Uint8Array;
  /** getsockname (peer false) or getpeername (peer true), as an encoded sockaddr */
  sockName(fd: number, peer: boolean): Uint8Array;
  /** connect(AF_UNSPEC): a connected datagram socket forgets its peer. */
  sockDisconnect(fd: number): void;
  /** 0 or -errno: SO_ERROR negated, like a completion's res; reading clears it */
  sockError(fd: number): number;
  /**
   * SO_ATTACH_REUSEPORT_CBPF: the fd's reuseport group picks socket table[(CPU of arrival) %
   * groupSize], or that index itself without a table or where the entry is -1 (native/reuseport.c).
   */
  sockAttachReuseportCpu(fd: number, groupSize: number, table?: Int32Array): void;
  // The calling thread (native/affinity.c): bit i of the mask allows CPU i.
  threadSetAffinity(mask: Uint8Array): void;
  threadGetAffinity(): Uint8Array;
  /** gettid(): the calling thread's id in /proc/self/task */
  threadId(): number;
  // The epoll fallback (native/fallback.c). Data calls return a count or -errno and
  // throw typed errors only for invalid arguments.
  fallbackCreate(options: FallbackCreateOptions): FallbackHandle;
  /** Idempotent; later calls on the handle throw ERR_MAIO_CLOSED. Sockets stay open. */
  fallbackClose(fb: FallbackHandle): void;
  /** Returns the pool's size in bytes. */
  fallbackAttachPool(fb: FallbackHandle, pool: PoolHandle, index: number): number;
  fallbackDetachPool(fb: FallbackHandle, index: number): void;
  /** on: edge-triggered EPOLLIN | EPOLLOUT | EPOLLRDHUP; off: leave the set. 0 or -errno. */
  fallbackWatch(fb: FallbackHandle, fd: number, on: boolean): number;
  /** Reference the event loop (ops live) or not (idle). */
  fallbackRef(fb: FallbackHandle, on: boolean): void;
  /** onEvents runs on a coming loop turn even without events. */
  fallbackWake(fb: FallbackHandle): void;
  fallbackRecv(fb: FallbackHandle, fd: number, pool: number, off: number, len: number, msgFlags: number): number;
  fallbackSend(fb: FallbackHandle, fd: number, pool: number, off: number, len: number, msgFlags: number): number;
  /** send from bytes [off, off + len) of a caller's Uint8Array (SEND_BUF). */
  fallbackSendBuf(fb: FallbackHandle, fd: number, buf: Uint8Array, off: number, len: number, msgFlags: number): number;
  /** send with MSG_ZEROCOPY: each call that sends bytes takes the next value of the socket's counter. */
  fallbackSendZc(fb: FallbackHandle, fd: number, pool: number, off: number, len: number, msgFlags: number): number;
  /** setsockopt(SO_ZEROCOPY, 1): 0 or -errno. */
  fallbackZcEnable(fb: FallbackHandle, fd: number): number;
  /** Drains the error queue: (lo, hi, copied) triples written to `notes`; returns their count or -errno. */
  fallbackZcNotes(fb: FallbackHandle, fd: number): number;
  /** accept4; flags only SOCK_NONBLOCK | SOCK_CLOEXEC. New fd or -errno. */
  fallbackAccept(fb: FallbackHandle, fd: number, flags: number): number;
  /** Connects to the sockaddr at aux[auxOff, auxOff + auxLen): 0, -EINPROGRESS or -errno. */
  fallbackConnect(fb: FallbackHandle, fd: number, auxOff: number, auxLen: number): number;
  /**
   * One recvmmsg into up to `count` (1..64) buffers: list[4i..4i+2] = (pool, offset, length) of
   * buffer i, each laid out as a RECVMSG_MULTI buffer (io_uring_recvmsg_out, nameLen bytes of
   * name, ctlLen of control, payload). Returns the datagrams received (list[4i+3] = the bytes
   * buffer i holds) or -errno.
   */
  fallbackRecvmsg(fb: FallbackHandle, fd: number, list: Int32Array, count: number, nameLen: number, ctlLen: number, msgFlags: number): number;
  /** sendmsg of the SENDMSG aux entry at auxOff (name nameLen bytes, auxLen / 8 pieces of `pool`), UDP_SEGMENT gso if > 0: bytes sent or -errno. */
  fallbackSendmsg(fb: FallbackHandle, fd: number, pool: number, auxOff: number, auxLen: number, nameLen: number, gso: number, msgFlags: number): number;
  /** fallbackSendmsg with MSG_ZEROCOPY: a call that sends takes the next value of the socket's counter. */
  fallbackSendmsgZc(fb: FallbackHandle, fd: number, pool: number, auxOff: number, auxLen: number, nameLen: number, gso: number, msgFlags: number): number;
  /**
   * One sendmmsg of up to 64 SENDMSG entries, list[6i..6i+4] = (pool, auxOff, auxLen, nameLen, gso):
   * how many left (list[6i+5] = the bytes of entry i) or the first one's -errno.
   */
  fallbackSendmmsg(fb: FallbackHandle, fd: number, list: Int32Array, count: number, msgFlags: number): number;
  /** After -EINPROGRESS: 0 connected, -EINPROGRESS still running, else -errno (SO_ERROR). */
  fallbackConnectResult(fb: FallbackHandle, fd: number): number;
  fallbackShutdown(fb: FallbackHandle, fd: number, how: number): number;
  /** Leaves the epoll set, then closes: 0 or -errno. */
  fallbackCloseFd(fb: FallbackHandle, fd: number): number;
  // In-kernel data paths (native/pipe.c).
  /** A blocking, close-on-exec pipe of `size` bytes (default 1 MiB, capped by fs.pipe-max-size); `size` is what it got. */
  pipeOpen(size?: number): { readFd: number; writeFd: number; size: number };
  /** Sets or clears O_NONBLOCK; returns whether the fd was blocking before. */
  fdSetBlocking(fd: number, blocking: boolean): boolean;
  // Readiness-driven sendfile(2) (native/sendfile.c).
  /**
   * Sends `length` bytes of `fileFd` from `offset` to `socketFd` (both dup'd; the socket is made
   * nonblocking) whenever the socket is writable, at most `budget` bytes per wakeup.
   * cb(status, sent): 0 progress, 1 done, 2 the file ended early, < 0 -errno. Nothing after a final status.
   */
  sendfileStart(socketFd: number, fileFd: number, offset: number, length: number, budget: number, cb: (status: number, sent: number) => void): SendfileHandle;
  /** Stops a transfer at once (no callback follows); true when it was still running. */
  sendfileAbort(h: SendfileHandle): boolean;
  sendfileStats(h: SendfileHandle): { wakes: number; calls: number; eagain: number; running: boolean };
}
/** Largest raw socket option value sockSetBytes/sockGetBytes accept (MAIO_SOCKOPT_MAX). */
export const SOCKOPT_MAX = 4096;

// A copy of native/maio.h, checked at load (checkLayout below).

/**
 * Op ids (a descriptor's user data): the op-table slot in the low SLOT_BITS
 * bits, a generation in the GEN_BITS above, so ids stay positive int32 and a
 * stale id never matches a reused slot. Native reads the slot too (ring.c
 * marks which slots hold a SEND_ZC).
 */
export const SLOT_BITS = 20;
export const SLOT_MASK = (1 << SLOT_BITS) - 1;
export const GEN_BITS = 11;
export const GEN_MASK = (1 << GEN_BITS) - 1;
/** MAIO_AUX_ADDR_MAX: bytes of a sockaddr in the aux array. */
export const AUX_ADDR_MAX = 128;
/** MAIO_BATCH_WAIT_MAX_US: ringCreate's batchWaitUs at most. */
export const BATCH_WAIT_MAX_US = 10000;

export const DESC_INTS = 16;
export const enum Desc {
  Op = 0,
  Fd = 1,
  UserData = 2,
  Len = 3,
  Pool = 4,
  BufOff = 5,
  MsgFlags = 6,
  Ioprio = 7,
  BufGroup = 8,
  AuxOff = 9,
  AuxLen = 10,
  OffLo = 11,
  OffHi = 12,
  SqeFlags = 13,
  /** SPLICE: the output fd (Fd is the input). */
  FdOut = 14,
}
export const enum Op {
  Nop = 0,
  Send = 1,
  SendZc = 2,
  Recv = 3,
  RecvMulti = 4,
  Accept = 5,
  Connect = 6,
  Close = 7,
  Shutdown = 8,
  Cancel = 9,
  Splice = 10,
  /** Not an SQE: adds a pool buffer to a provided-buffer ring (user data = buffer id). */
  Provide = 11,
  /** Plain SENDMSG of 1..SENDV_MAX_SEGS (offset, length) pieces of one pool, listed in aux (native/maio.h). */
  Sendv = 12,
  /** Multishot RECVMSG into provided buffers: io_uring_recvmsg_out, name (OffLo bytes), control (OffHi bytes), payload. */
  RecvmsgMulti = 13,
  /** SENDMSG of (offset, length) pieces of one pool to the sockaddr in aux, optionally with UDP_SEGMENT (native/maio.h). */
  Sendmsg = 14,
  /** Sendmsg, zero-copy (IORING_OP_SENDMSG_ZC; epoll: MSG_ZEROCOPY): a result with F_MORE, then a F_NOTIF notification. */
  SendmsgZc = 15,
  /** Plain send from a caller's Uint8Array (entry BufOff of the buffer list given with the batch), held until the final completion. */
  SendBuf = 16,
}
/** MAIO_SENDMSG_NAME_MAX: aux bytes before a SENDMSG's segment list (the destination sockaddr). */
export const SENDMSG_NAME_MAX = 32;
/** MAIO_SENDMSG_MAX_SEGS: pieces per SENDMSG. */
export const SENDMSG_MAX_SEGS = 64;
/** MAIO_RECVMSG_OUT: sizeof(struct io_uring_recvmsg_out), at the start of every RECVMSG_MULTI buffer. */
export const RECVMSG_OUT = 16;
/** MAIO_RECVMSG_CTL_MAX: control bytes a RECVMSG_MULTI may reserve. */
export const RECVMSG_CTL_MAX = 256;
export const SOL_UDP = 17;
export const UDP_SEGMENT = 103;
/** A SENDMSG's gso: a UDP_SEGMENT cmsg of 0, one datagram even where the socket has its own UDP_SEGMENT size. */
export const UDP_SEGMENT_NONE = 0x10000;
export const UDP_GRO = 104;
/** MAIO_SENDV_MAX_SEGS: pieces per SENDV (16 int32 pairs fill one 128-byte aux slot). */
export const SENDV_MAX_SEGS = 16;
/** MAIO_SENDV_MAX_LEN: bytes per SENDV. */
export const SENDV_MAX_LEN = 1 << 30;
/** IORING_FEAT_SUBMIT_STABLE and IORING_OP_SENDMSG, from the probe: what SENDV needs. */
export const IORING_FEAT_SUBMIT_STABLE = 1 << 2;
export const IORING_OP_SENDMSG = 9;
/** What SENDMSG_ZC needs besides SENDMSG's conditions (native/ring.c refuses it otherwise). */
export const IORING_OP_SENDMSG_ZC = 48;
export const CQE_INTS = 4;
export const enum Cqe {
  UserData = 0,
  Res = 1,
  Flags = 2,
}
export const RING_STATS = 16;
export const enum RingStat {
  Enters = 0,
  Submitted = 1,
  Completed = 2,
  SubmitCalls = 3,
  ReapBatches = 4,
  Inflight = 5,
  CqOverflow = 6,
  SqFull = 7,
  CqFlushes = 8,
  BatchWaits = 9,
  /** caller buffers held for sends in flight */
  Held = 10,
  /** poll callbacks: libuv woke the ring */
  Wakeups = 11,
  /** poll callbacks that found no completion */
  EmptyWakeups = 12,
}
export const MAX_POOLS = 64;
export const MAX_BUF_RINGS = 64;
export const BUF_RING_MAX_ENTRIES = 32768;
/** IORING_CQE_BUFFER_SHIFT: a recv CQE's buffer id is flags >>> 16. */
export const CQE_BUFFER_SHIFT = 16;
export const IOSQE_IO_LINK = 1 << 2;
// splice(2) flags a SPLICE descriptor may carry in MsgFlags.
export const SPLICE_F_MOVE = 1;
export const SPLICE_F_NONBLOCK = 2;
export const SPLICE_F_MORE = 4;

// io_uring CQE flags.
export const CQE_F_BUFFER = 1 << 0;
export const CQE_F_MORE = 1 << 1;
export const CQE_F_SOCK_NONEMPTY = 1 << 2;
export const CQE_F_NOTIF = 1 << 3;
export const CQE_F_BUF_MORE = 1 << 4;
export const NOTIF_USAGE_ZC_COPIED = 1 << 31;

/** What maio.h must say, in native/layout.c's names: this file's copy. */
export const EXPECTED_LAYOUT = {
  descInts: DESC_INTS,
  desc: {
    op: Desc.Op, fd: Desc.Fd, userData: Desc.UserData, len: Desc.Len, pool: Desc.Pool, bufOff: Desc.BufOff,
    msgFlags: Desc.MsgFlags, ioprio: Desc.Ioprio, bufGroup: Desc.BufGroup, auxOff: Desc.AuxOff, auxLen: Desc.AuxLen,
    offLo: Desc.OffLo, offHi: Desc.OffHi, sqeFlags: Desc.SqeFlags, fdOut: Desc.FdOut,
  },
  op: {
    nop: Op.Nop, send: Op.Send, sendZc: Op.SendZc, recv: Op.Recv, recvMulti: Op.RecvMulti, accept: Op.Accept,
    connect: Op.Connect, close: Op.Close, shutdown: Op.Shutdown, cancel: Op.Cancel, splice: Op.Splice,
    provide: Op.Provide, sendv: Op.Sendv, recvmsgMulti: Op.RecvmsgMulti, sendmsg: Op.Sendmsg,
    sendmsgZc: Op.SendmsgZc,
    sendBuf: Op.SendBuf,
  },
  cqeInts: CQE_INTS,
  cqe: { userData: Cqe.UserData, res: Cqe.Res, flags: Cqe.Flags },
  ringStats: RING_STATS,
  ringStat: {
    enters: RingStat.Enters, submitted: RingStat.Submitted, completed: RingStat.Completed,
    submitCalls: RingStat.SubmitCalls, reapBatches: RingStat.ReapBatches, inflight: RingStat.Inflight,
    cqOverflow: RingStat.CqOverflow, sqFull: RingStat.SqFull, cqFlushes: RingStat.CqFlushes,
    batchWaits: RingStat.BatchWaits, held: RingStat.Held, wakeups: RingStat.Wakeups,
    emptyWakeups: RingStat.EmptyWakeups,
  },
  cqeFlags: { buffer: CQE_F_BUFFER, more: CQE_F_MORE, sockNonempty: CQE_F_SOCK_NONEMPTY, notif: CQE_F_NOTIF, bufMore: CQE_F_BUF_MORE },
  opIdSlotBits: SLOT_BITS,
  opIdGenBits: GEN_BITS,
  maxPools: MAX_POOLS,
  maxBufRings: MAX_BUF_RINGS,
  bufRingMaxEntries: BUF_RING_MAX_ENTRIES,
  batchWaitMaxUs: BATCH_WAIT_MAX_US,
  sendvMaxSegs: SENDV_MAX_SEGS,
  sendvMaxLen: SENDV_MAX_LEN,
  auxAddrMax: AUX_ADDR_MAX,
  sendmsgNameMax: SENDMSG_NAME_MAX,
  sendmsgMaxSegs: SENDMSG_MAX_SEGS,
  recvmsgOut: RECVMSG_OUT,
  recvmsgCtlMax: RECVMSG_CTL_MAX,
  solUdp: SOL_UDP,
  udpSegment: UDP_SEGMENT,
  udpSegmentNone: UDP_SEGMENT_NONE,
  udpGro: UDP_GRO,
  sockoptMax: SOCKOPT_MAX,
  setupCoop: RING_SETUP_COOP,
  setupDefer: RING_SETUP_DEFER,
  cqeBufferShift: CQE_BUFFER_SHIFT,
  notifUsageZcCopied: NOTIF_USAGE_ZC_COPIED,
  iosqeIoLink: IOSQE_IO_LINK,
  spliceFMove: SPLICE_F_MOVE,
  spliceFNonblock: SPLICE_F_NONBLOCK,
  spliceFMore: SPLICE_F_MORE,
} as const;

/**
 * Throws NativeLoadError naming the first value of `expected` (this file's
 * copy) that the addon's layout lacks or gives differently. Values the addon
 * has and this copy does not know are not an error (a newer addon may add).
 */
export function checkLayout(layout: unknown, file = 'maio.node', expected: object = EXPECTED_LAYOUT): void {
  const fix = 'rebuild the addon (`npm run build:native`) from the same checkout as the JavaScript';
  if (typeof layout !== 'object' || layout === null)
    throw new NativeLoadError(`${file} exports no layout: it was built from an older native/maio.h; ${fix}`);
  const walk = (want: object, got: Record<string, unknown>, at: string): void => {
    for (const [key, value] of Object.entries(want)) {
      const name = `${at}.${key}`;
      const have = got[key];
      if (typeof value === 'object') {
        if (typeof have !== 'object' || have === null)
          throw new NativeLoadError(`${file} does not match this JavaScript: ${name} is missing from the addon; ${fix}`);
        walk(value as object, have as Record<string, unknown>, name);
      } else if (have !== value) {
        throw new NativeLoadError(
          `${file} does not match this JavaScript: ${name} is ${have === undefined ? 'missing' : String(have)} in the addon ` +
            `(native/maio.h) but ${String(value)} in src/core/native.ts; ${fix}`,
        );
      }
    }
  };
  walk(expected, layout as Record<string, unknown>, 'layout');
}

let cached: NativeBinding | undefined;

/**
 * The addon for this machine: a local build (build/Release, as `npm install`
 * makes from source, found above this file from src/ or dist/src/), or else
 * the prebuilt binary the package ships in prebuilds/<platform>-<arch>/,
 * chosen by node-gyp-build as the install script chose it.
 */
function locate(): string {
  let root: string | undefined;
  for (let dir = __dirname, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    for (const kind of ['Release', 'Debug']) {
      const candidate = path.join(dir, 'build', kind, 'maio.node');
      if (fs.existsSync(candidate)) return candidate;
    }
    if (root === undefined && fs.existsSync(path.join(dir, 'prebuilds'))) root = dir;
  }
  try {
    if (root === undefined) throw new Error('no prebuilds/ folder either');
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return (require('node-gyp-build') as { path(dir: string): string }).path(root);
  } catch (cause) {
    throw new NativeLoadError(
      `no maio.node above ${__dirname} for ${process.platform}-${process.arch} (build/Release, or prebuilds/ from the package): run \`npm install\` (or \`npm run build:native\`) to build the addon`,
      { cause },
    );
  }
}

export function native(): NativeBinding {
  if (!cached) {
    const file = locate();
    let binding: NativeBinding;
    try {
      binding = require(file) as NativeBinding;
    } catch (cause) {
      throw new NativeLoadError(`could not load ${file}: ${(cause as Error).message}`, { cause });
    }
    checkLayout(binding.layout, file);
    cached = binding;
  }
  return cached;
}
