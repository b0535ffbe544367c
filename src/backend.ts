/**
 * Which I/O backend this process runs on, and why.
 *
 * io_uring when the kernel lets us set up a ring and has the operations maio
 * needs; otherwise the epoll fallback, with the reason in words. The probe
 * runs once per process (native/probe.c); this wraps it once per thread.
 *
 * MAIO_BACKEND=epoll forces the fallback; MAIO_BACKEND=io_uring insists on
 * io_uring and throws BackendUnavailableError when it cannot be had.
 *
 * On io_uring, the ring's set-up decides how completions wake the event loop
 * (native/probe.c): DEFER_TASKRUN only where the probe saw its eventfd
 * signalled at once, else COOP_TASKRUN. MAIO_RING_SETUP=coop|defer forces one.
 */
import { BackendUnavailableError, InvalidArgumentError } from './core/errors';
import { native, RING_SETUP_COOP, RING_SETUP_DEFER, type NativeProbe } from './core/native';

export type BackendMode = 'io_uring' | 'epoll';

/** How an io_uring ring hears about completions (native/ring.c's header comment). */
export type RingSetupMode = 'coop' | 'defer';

/**
 * The wake-up probe's verdict on DEFER_TASKRUN (native/probe.c): 'prompt' when
 * a socket-style wake-up signalled the ring's eventfd at once, 'late' when it
 * did not (such kernels stall every wake-up 12-20 ms), 'unavailable' when the
 * kernel refuses DEFER_TASKRUN or io_uring is not usable.
 */
export type DeferVerdict = 'prompt' | 'late' | 'unavailable';

export interface RingSetup {
  readonly mode: RingSetupMode;
  /** IORING_SETUP_* names */
  readonly flags: readonly string[];
  /** MAIO_RING_SETUP chose it */
  readonly forced: boolean;
  /** why this set-up, in words */
  readonly reason: string;
  /** the value ringCreate takes */
  readonly native: number;
}

/**
 * What the running backend gives the socket layer. On io_uring: the kernel's
 * io_uring features (versions in parentheses). On epoll: what the fallback
 * engine does (src/ring/engines/epoll.ts): zero-copy sends through
 * MSG_ZEROCOPY, multishot recv and accept emulated over nonblocking calls;
 * nothing that needs io_uring itself (fixed buffers, kernel buffer rings,
 * bundles, RECV_ZC, BIND/LISTEN) is there.
 */
export interface BackendCapabilities {
  /** IORING_OP_SEND_ZC (6.0); on epoll: MSG_ZEROCOPY (SO_ZEROCOPY, 4.14) */
  sendZc: boolean;
  /** IORING_OP_SENDMSG_ZC (6.1) */
  sendmsgZc: boolean;
  /** multishot recv with provided buffers (6.0); on epoll: emulated buffer groups */
  multishotRecv: boolean;
  /** multishot accept (5.19); on epoll: emulated */
  multishotAccept: boolean;
  /** provided-buffer rings, IORING_REGISTER_PBUF_RING (5.19) */
  pbufRing: boolean;
  /** incrementally consumed provided buffers, IOU_PBUF_RING_INC (6.12) */
  pbufRingInc: boolean;
  /** recv/send bundles, IORING_RECVSEND_BUNDLE (6.10) */
  bundle: boolean;
  /** a sparse fixed-buffer table the pools can be registered into */
  fixedBuffers: boolean;
  /** the ring runs DEFER_TASKRUN: completions run only when the thread enters the kernel */
  deferTaskrun: boolean;
  /** IORING_OP_RECV_ZC (6.15); usable only on NICs with header/data split */
  recvZc: boolean;
  /** IORING_OP_BIND / IORING_OP_LISTEN (6.11) */
  bindListen: boolean;
}

export interface Backend {
  readonly mode: BackendMode;
  /** MAIO_BACKEND chose the mode */
  readonly forced: boolean;
  /** why the fallback runs, in words; '' on io_uring */
  readonly reason: string;
  /** kernel release (uname -r) */
  readonly kernel: string;
  /** IORING_SETUP_* flags the ring is set up with ([] on epoll) */
  readonly setupFlags: readonly string[];
  /** the ring's set-up and why; null on epoll */
  readonly ringSetup: RingSetup | null;
  /** the wake-up probe's verdict on DEFER_TASKRUN */
  readonly deferEventfd: DeferVerdict;
  /** IORING_FEAT_* bits the kernel reports */
  readonly features: readonly string[];
  /** supported IORING_OP_* names */
  readonly ops: readonly string[];
  readonly capabilities: Readonly<BackendCapabilities>;
  /** kernel.io_uring_disabled, -1 when unknown */
  readonly ioUringDisabled: number;
  /** one line for humans */
  readonly summary: string;
}

const SETUP_FLAG_NAMES: readonly [number, string][] = [
  [1 << 0, 'IOPOLL'],
  [1 << 1, 'SQPOLL'],
  [1 << 2, 'SQ_AFF'],
  [1 << 3, 'CQSIZE'],
  [1 << 4, 'CLAMP'],
  [1 << 5, 'ATTACH_WQ'],
  [1 << 6, 'R_DISABLED'],
  [1 << 7, 'SUBMIT_ALL'],
  [1 << 8, 'COOP_TASKRUN'],
  [1 << 9, 'TASKRUN_FLAG'],
  [1 << 10, 'SQE128'],
  [1 << 11, 'CQE32'],
  [1 << 12, 'SINGLE_ISSUER'],
  [1 << 13, 'DEFER_TASKRUN'],
];

const FEATURE_NAMES = [
  'SINGLE_MMAP',
  'NODROP',
  'SUBMIT_STABLE',
  'RW_CUR_POS',
  'CUR_PERSONALITY',
  'FAST_POLL',
  'POLL_32BITS',
  'SQPOLL_NONFIXED',
  'EXT_ARG',
  'NATIVE_WORKERS',
  'RSRC_TAGS',
  'CQE_SKIP',
  'LINKED_FILE',
  'REG_REG_RING',
  'RECVSEND_BUNDLE',
  'MIN_TIMEOUT',
  'RW_ATTR',
  'NO_IOWAIT',
] as const;

/** IORING_OP_* by number, as in include/uapi/linux/io_uring.h. */
const OP_NAMES = [
  'NOP', 'READV', 'WRITEV', 'FSYNC', 'READ_FIXED', 'WRITE_FIXED', 'POLL_ADD', 'POLL_REMOVE',
  'SYNC_FILE_RANGE', 'SENDMSG', 'RECVMSG', 'TIMEOUT', 'TIMEOUT_REMOVE', 'ACCEPT', 'ASYNC_CANCEL',
  'LINK_TIMEOUT', 'CONNECT', 'FALLOCATE', 'OPENAT', 'CLOSE', 'FILES_UPDATE', 'STATX', 'READ',
  'WRITE', 'FADVISE', 'MADVISE', 'SEND', 'RECV', 'OPENAT2', 'EPOLL_CTL', 'SPLICE',
  'PROVIDE_BUFFERS', 'REMOVE_BUFFERS', 'TEE', 'SHUTDOWN', 'RENAMEAT', 'UNLINKAT', 'MKDIRAT',
  'SYMLINKAT', 'LINKAT', 'MSG_RING', 'FSETXATTR', 'SETXATTR', 'FGETXATTR', 'GETXATTR', 'SOCKET',
  'URING_CMD', 'SEND_ZC', 'SENDMSG_ZC', 'READ_MULTISHOT', 'WAITID', 'FUTEX_WAIT', 'FUTEX_WAKE',
  'FUTEX_WAITV', 'FIXED_FD_INSTALL', 'FTRUNCATE', 'BIND', 'LISTEN', 'RECV_ZC', 'EPOLL_WAIT',
  'READV_FIXED', 'WRITEV_FIXED', 'PIPE',
] as const;

/** What maio's ring puts on the kernel; without these, io_uring is of no use to us. */
const REQUIRED_OPS = ['NOP', 'ACCEPT', 'ASYNC_CANCEL', 'CONNECT', 'CLOSE', 'SEND', 'RECV', 'SHUTDOWN'];
const IORING_FEAT_NODROP = 1 << 1;
const IORING_FEAT_FAST_POLL = 1 << 5;
const IORING_FEAT_RECVSEND_BUNDLE = 1 << 14;

function opName(n: number): string {
  return OP_NAMES[n] ?? `OP_${n}`;
}

/** Why io_uring_setup (or enter) failed, in words a user can act on. */
function explainSetupError(p: NativeProbe): string {
  const call = p.failedSyscall || 'io_uring_setup';
  const head = `${call} failed with ${p.setupError}`;
  switch (p.setupError) {
    case 'EPERM':
      if (p.ioUringDisabled === 2) return `${head}: kernel.io_uring_disabled=2 disables io_uring for everyone`;
      if (p.ioUringDisabled === 1) {
        return `${head}: kernel.io_uring_disabled=1 and this process is neither privileged nor in kernel.io_uring_group`;
      }
      return `${head}: blocked by seccomp (container default profile?) or a security module`;
    case 'ENOSYS':
      return `${head}: the kernel has no io_uring (too old, or built without CONFIG_IO_URING)`;
    case 'ENOMEM':
      return `${head}: not enough locked memory for the ring (RLIMIT_MEMLOCK)`;
    case 'EMFILE':
    case 'ENFILE':
      return `${head}: out of file descriptors`;
    default:
      return head;
  }
}

function describe(p: NativeProbe, opNames: readonly string[]): string {
  if (!p.uringUsable) return explainSetupError(p);
  const missing = REQUIRED_OPS.filter((op) => !opNames.includes(op));
  if (missing.length) return `the kernel (${p.kernel}) lacks io_uring operations maio needs: ${missing.join(', ')}`;
  if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_FAST_POLL)) {
    return `the kernel (${p.kernel}) lacks IORING_FEAT_NODROP or IORING_FEAT_FAST_POLL (needs 5.7 or later)`;
  }
  return '';
}

const SOL_SOCKET = 1;
const SO_ZEROCOPY = 60;

/** Whether this kernel takes SO_ZEROCOPY on a TCP socket (what MSG_ZEROCOPY sends need). */
function msgZerocopy(): boolean {
  const n = native();
  let fd = -1;
  try {
    fd = n.sockOpen(4, 'tcp');
    n.sockSetInt(fd, SOL_SOCKET, SO_ZEROCOPY, 1);
    return true;
  } catch {
    return false;
  } finally {
    if (fd >= 0) n.sockClose(fd);
  }
}

function flagNames(bits: number): string[] {
  return SETUP_FLAG_NAMES.filter(([bit]) => (bits & bit) !== 0).map(([, n]) => n);
}

function deferVerdict(p: NativeProbe): DeferVerdict {
  if (!p.uringUsable || p.deferSetupFlags === 0 || p.deferEventfd < 0) return 'unavailable';
  return p.deferEventfd === 1 ? 'prompt' : 'late';
}

/**
 * MAIO_RING_SETUP=auto (default) takes DEFER_TASKRUN only where the probe saw
 * its eventfd signalled at once: on a kernel that signals late, a ring that
 * libuv drives through that eventfd made 63 round trips/s where node:net made
 * 28,000. COOP_TASKRUN wakes promptly everywhere (41,700/s in the same C test).
 */
function chooseRingSetup(p: NativeProbe, verdict: DeferVerdict): RingSetup {
  const env = process.env.MAIO_RING_SETUP;
  if (env !== undefined && env !== '' && env !== 'auto' && env !== 'coop' && env !== 'defer') {
    throw new InvalidArgumentError(`MAIO_RING_SETUP must be 'coop', 'defer' or 'auto', got '${env}'`);
  }
  const coop = (forced: boolean, reason: string): RingSetup => Object.freeze({
    mode: 'coop' as const, flags: Object.freeze(flagNames(p.coopSetupFlags)), forced, reason, native: RING_SETUP_COOP,
  });
  const defer = (forced: boolean, reason: string): RingSetup => Object.freeze({
    mode: 'defer' as const, flags: Object.freeze(flagNames(p.deferSetupFlags)), forced, reason, native: RING_SETUP_DEFER,
  });
  if (env === 'coop') return coop(true, 'forced by MAIO_RING_SETUP=coop');
  if (env === 'defer') {
    if (verdict === 'unavailable') {
      throw new BackendUnavailableError(`MAIO_RING_SETUP=defer, but this kernel (${p.kernel}) refuses IORING_SETUP_DEFER_TASKRUN`);
    }
    const warn = verdict === 'late' ? '; this kernel signals its eventfd late, expect 12-20 ms stalls (maio doctor)' : '';
    return defer(true, `forced by MAIO_RING_SETUP=defer${warn}`);
  }
  if (verdict === 'prompt') return defer(false, 'the wake-up probe saw DEFER_TASKRUN\'s eventfd signalled at once');
  if (verdict === 'late') return coop(false, 'DEFER_TASKRUN\'s eventfd is signalled late on this kernel (wake-up probe)');
  return coop(false, 'the kernel has no DEFER_TASKRUN');
}

function build(): Backend {
  const p = native().probe();
  const env = process.env.MAIO_BACKEND;
  if (env !== undefined && env !== '' && env !== 'epoll' && env !== 'io_uring' && env !== 'auto') {
    throw new InvalidArgumentError(`MAIO_BACKEND must be 'io_uring', 'epoll' or 'auto', got '${env}'`);
  }
  const verdict = deferVerdict(p);
  const ops = p.ops.map(opName);
  const has = (name: string): boolean => ops.includes(name);
  const unusable = describe(p, ops);

  let mode: BackendMode;
  let forced = false;
  let reason = '';
  if (env === 'epoll') {
    mode = 'epoll';
    forced = true;
    reason = 'forced by MAIO_BACKEND=epoll';
  } else if (unusable) {
    if (env === 'io_uring') {
      throw new BackendUnavailableError(`MAIO_BACKEND=io_uring, but io_uring is not usable: ${unusable}`);
    }
    mode = 'epoll';
    reason = unusable;
  } else {
    mode = 'io_uring';
    forced = env === 'io_uring';
  }

  const ringSetup = mode === 'io_uring' ? chooseRingSetup(p, verdict) : null;
  const usable = p.uringUsable;
  const zcEpoll = mode === 'epoll' && msgZerocopy();
  const capabilities: BackendCapabilities = Object.freeze(mode === 'epoll' ? {
    sendZc: zcEpoll,
    sendmsgZc: false,
    multishotRecv: true,
    multishotAccept: true,
    pbufRing: false,
    pbufRingInc: false,
    bundle: false,
    fixedBuffers: false,
    deferTaskrun: false,
    recvZc: false,
    bindListen: false,
  } : {
    sendZc: usable && has('SEND_ZC'),
    sendmsgZc: usable && has('SENDMSG_ZC'),
    // No opcode marks these; they arrived with the opcodes tested here.
    multishotRecv: usable && has('SEND_ZC'),
    multishotAccept: usable && has('SOCKET'),
    pbufRing: p.pbufRing,
    pbufRingInc: p.pbufRingInc,
    bundle: usable && (p.features & IORING_FEAT_RECVSEND_BUNDLE) !== 0,
    fixedBuffers: p.sparseBuffers,
    deferTaskrun: ringSetup?.mode === 'defer',
    recvZc: usable && has('RECV_ZC'),
    bindListen: usable && has('BIND') && has('LISTEN'),
  });
  const setupFlags = ringSetup ? ringSetup.flags : [];
  const features = FEATURE_NAMES.filter((_, i) => (p.features & (1 << i)) !== 0);

  let summary: string;
  if (mode === 'io_uring') {
    const flags = setupFlags.filter((f) => f !== 'SUBMIT_ALL').join('|') || 'no setup flags';
    const parts = [`kernel ${p.kernel}`, `${flags}: ${ringSetup!.reason}`];
    if (capabilities.sendZc) parts.push('SEND_ZC');
    if (capabilities.multishotRecv) parts.push('multishot recv');
    if (capabilities.pbufRing) parts.push(capabilities.pbufRingInc ? 'provided buffers incremental' : 'provided buffers');
    if (capabilities.bundle) parts.push('bundles');
    if (forced) parts.push('forced by MAIO_BACKEND=io_uring');
    summary = `maio backend: io_uring (${parts.join(', ')})`;
  } else {
    const zc = capabilities.sendZc ? 'MSG_ZEROCOPY' : 'no MSG_ZEROCOPY';
    summary = `maio backend: epoll (kernel ${p.kernel}, ${forced ? reason : `io_uring unavailable: ${reason}`}; ${zc}, emulated multishot recv)`;
  }

  return Object.freeze({
    mode,
    forced,
    reason,
    kernel: p.kernel,
    setupFlags,
    ringSetup,
    deferEventfd: verdict,
    features: Object.freeze([...features]),
    ops: Object.freeze(ops),
    capabilities,
    ioUringDisabled: p.ioUringDisabled,
    summary,
  });
}

let cached: Backend | undefined;

/** The backend this thread runs on (computed once; MAIO_BACKEND is read then). */
export function backend(): Backend {
  if (!cached) cached = build();
  return cached;
}
