/**
 * Child process of bad-input-native.test.ts: calls every native entry point
 * of one group (argv[2]) with bad arguments, one argument position at a time
 * (wrong types, fractions, NaN, huge and negative numbers, foreign and closed
 * handles) and with too few arguments. Prints one JSON line per call and a
 * final "DONE" line; the parent checks the lines and that this process
 * neither crashed nor died on a signal.
 *
 * Not a test file itself (no .test. in the name): a crash here must not take
 * the test runner with it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native, type NativeBinding } from '../../src/core/native';
import { sockaddr } from '../../src/net/address';

/** What a parameter accepts; `int` carries the native range. */
export type Param =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'ring' }
  | { kind: 'pool' }
  | { kind: 'fb' }
  | { kind: 'u8' }
  | { kind: 'i32' }
  | { kind: 'obj' }
  | { kind: 'view' }
  | { kind: 'fn' }
  | { kind: 'tcp' /* 'tcp' | 'udp' | 1 | 2 */ };

export interface CallRecord {
  fn: string;
  /** argument position replaced, -1 for an arity test */
  pos: number;
  /** label of the bad value */
  value: string;
  /** kind of the parameter at `pos` */
  kind: string;
  /** must the call have thrown (a value of the wrong type or range for the parameter)? */
  mustThrow: string[] | null;
  outcome: 'ok' | 'throw';
  code?: string;
  ctor?: string;
  errno?: number;
  syscall?: string;
  message?: string;
}

const I32 = 2 ** 31 - 1;
const int = (min: number, max: number): Param => ({ kind: 'int', min, max });
const fd: Param = int(0, I32);
const bool: Param = { kind: 'bool' };

/** Bad values: label -> factory (fresh each call). Handles come from the fixtures. */
function badValues(fx: Fixtures): [string, () => unknown][] {
  return [
    ['undefined', () => undefined],
    ['null', () => null],
    ['true', () => true],
    ["'x'", () => 'x'],
    ["'1'", () => '1'],
    ['{}', () => ({})],
    ['[]', () => []],
    ['[1]', () => [1]],
    ['function', () => () => 1],
    ['symbol', () => Symbol('s')],
    ['bigint', () => 10n],
    ['-1', () => -1],
    ['1.5', () => 1.5],
    ['NaN', () => NaN],
    ['Infinity', () => Infinity],
    ['-Infinity', () => -Infinity],
    ['2**31', () => 2 ** 31],
    ['2**32', () => 2 ** 32],
    ['2**53', () => 2 ** 53],
    ['-(2**63)', () => -(2 ** 63)],
    ['2**63', () => 2 ** 63],
    ['1e300', () => 1e300],
    ['Uint8Array(4)', () => new Uint8Array(4)],
    ['Int32Array(4)', () => new Int32Array(4)],
    ['ArrayBuffer(4)', () => new ArrayBuffer(4)],
    ['ring handle', () => fx.ring],
    ['pool handle', () => fx.pool],
    ['fallback handle', () => fx.fb],
    ['closed ring', () => fx.closedRing],
    ['closed pool', () => fx.closedPool],
    ['closed fallback', () => fx.closedFb],
  ];
}

/**
 * Which error codes a bad value must produce at a parameter of this kind,
 * or null when the value is acceptable there (or its effect depends on the
 * kernel: any typed error or a return is fine then).
 */
export function expected(p: Param, label: string, value: unknown): string[] | null {
  const INVALID = ['ERR_MAIO_INVALID_ARG'];
  const RANGE = ['ERR_MAIO_OUT_OF_RANGE'];
  const HANDLE = ['ERR_MAIO_INVALID_HANDLE'];
  switch (p.kind) {
    case 'int': {
      if (typeof value !== 'number') return INVALID;
      if (Number.isNaN(value)) return INVALID;
      if (Number.isFinite(value) && !Number.isInteger(value)) return INVALID;
      if (value < p.min || value > p.max) return RANGE;
      return null;
    }
    case 'bool':
      return typeof value === 'boolean' ? null : INVALID;
    case 'ring':
    case 'pool':
    case 'fb': {
      const own = { ring: 'ring handle', pool: 'pool handle', fb: 'fallback handle' }[p.kind];
      const closed = { ring: 'closed ring', pool: 'closed pool', fb: 'closed fallback' }[p.kind];
      if (label === own) return null;
      if (label === closed) return ['ERR_MAIO_CLOSED'];
      return HANDLE;
    }
    case 'u8':
      return value instanceof Uint8Array ? null : [...INVALID, ...RANGE];
    case 'i32':
      return value instanceof Int32Array ? null : [...INVALID, ...RANGE];
    case 'view':
      return ['ERR_MAIO_INVALID_HANDLE'];
    case 'fn':
      return typeof value === 'function' ? null : INVALID;
    case 'obj':
      return typeof value === 'object' && value !== null ? ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_OUT_OF_RANGE'] : INVALID;
    case 'tcp':
      if (value === 1 || value === 2 || value === 'tcp' || value === 'udp') return null;
      if (typeof value !== 'number' || Number.isNaN(value) || (Number.isFinite(value) && !Number.isInteger(value))) return INVALID;
      return RANGE;
  }
}

interface Fixtures {
  n: NativeBinding;
  ring: unknown;
  closedRing: unknown;
  pool: unknown;
  closedPool: unknown;
  fb: unknown;
  closedFb: unknown;
  /** a TCP socket (not connected) */
  sock: number;
  /** a listening TCP socket on 127.0.0.1 */
  listen: number;
  file: number;
  view: ArrayBuffer;
}

function ringOptions() {
  return {
    entries: 8,
    submit: new Int32Array(16 * 8),
    completions: new Int32Array(4 * 32),
    aux: new Uint8Array(1024),
    stats: new Float64Array(16),
    onCompletions() {},
    batchWaitUs: 50,
  };
}

/** ringOptions() with the four arrays as views of one (resizable) ArrayBuffer. */
function sharedRingOptions() {
  const sizes = { stats: 16 * 8, submit: 16 * 8 * 4, completions: 4 * 32 * 4, aux: 1024 };
  const total = sizes.stats + sizes.submit + sizes.completions + sizes.aux;
  const buf = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(total, { maxByteLength: total });
  let at = 0;
  const take = (n: number) => (at += n) - n;
  return {
    ...ringOptions(),
    stats: new Float64Array(buf, take(sizes.stats), 16),
    submit: new Int32Array(buf, take(sizes.submit), 16 * 8),
    completions: new Int32Array(buf, take(sizes.completions), 4 * 32),
    aux: new Uint8Array(buf, take(sizes.aux), 1024),
  };
}

function fbOptions() {
  return { events: new Int32Array(64), aux: new Uint8Array(256), notes: new Int32Array(24), onEvents() {} };
}

function fixtures(): Fixtures {
  const n = native();
  let ring: unknown = null;
  let closedRing: unknown = null;
  try {
    ring = n.ringCreate(ringOptions());
    closedRing = n.ringCreate(ringOptions());
    n.ringClose(closedRing as never);
  } catch {
    // io_uring blocked here: the ring group then checks that ringCreate fails typed
  }
  const p = n.poolCreate({ size: 1 << 20, lock: false });
  const cp = n.poolCreate({ size: 1 << 16, lock: false });
  n.poolClose(cp.handle);
  const fb = n.fallbackCreate(fbOptions());
  const closedFb = n.fallbackCreate(fbOptions());
  n.fallbackClose(closedFb);
  if (ring) n.ringRegisterPool(ring as never, p.handle, 0);
  n.fallbackAttachPool(fb, p.handle, 0);
  const sock = n.sockOpen(4, 'tcp');
  const listen = n.sockOpen(4, 'tcp');
  n.sockBind(listen, sockaddr('127.0.0.1', 0));
  n.sockListen(listen, 8);
  const tmp = path.join(os.tmpdir(), `maio-native-args-${process.pid}`);
  fs.writeFileSync(tmp, 'hello');
  const file = fs.openSync(tmp, 'r');
  fs.unlinkSync(tmp);
  const view = n.poolStrictView(p.handle, 0, 4096);
  return { n, ring, closedRing, pool: p.handle, closedPool: cp.handle, fb, closedFb, sock, listen, file, view };
}

interface Spec {
  fn: keyof NativeBinding;
  params: Param[];
  /** valid arguments, fresh per call (a call may consume them, e.g. close) */
  good: (fx: Fixtures) => unknown[];
  /** skip bad values at these positions (e.g. an fd position where a small number is a real fd) */
  group: string;
}

/** A fresh socket the call may close or change. */
const fresh = (fx: Fixtures) => fx.n.sockOpen(4, 'tcp');

function specs(): Spec[] {
  const ring: Param = { kind: 'ring' };
  const pool: Param = { kind: 'pool' };
  const fb: Param = { kind: 'fb' };
  const u8: Param = { kind: 'u8' };
  const obj: Param = { kind: 'obj' };
  return [
    // probe.c
    { group: 'probe', fn: 'probe', params: [], good: () => [] },
    // ring.c
    { group: 'ring', fn: 'ringCreate', params: [obj], good: () => [ringOptions()] },
    { group: 'ring', fn: 'ringSubmit', params: [ring, int(0, 8)], good: (fx) => [fx.ring, 0] },
    { group: 'ring', fn: 'ringRegisterPool', params: [ring, pool, int(0, 63)], good: (fx) => [fx.ring, fx.pool, 5] },
    { group: 'ring', fn: 'ringUnregisterPool', params: [ring, int(0, 63)], good: (fx) => [fx.ring, 7] },
    { group: 'ring', fn: 'ringRegisterBufRing', params: [ring, int(0, 0xffff), int(1, 32768)], good: (fx) => [fx.ring, 9, 8] },
    { group: 'ring', fn: 'ringUnregisterBufRing', params: [ring, int(0, 0xffff)], good: (fx) => [fx.ring, 9] },
    { group: 'ring', fn: 'ringRef', params: [ring, bool], good: (fx) => [fx.ring, false] },
    { group: 'ring', fn: 'ringClose', params: [ring], good: (fx) => [fx.closedRing] },
    // pool.c
    { group: 'pool', fn: 'poolCreate', params: [obj], good: () => [{ size: 1 << 16, lock: false }] },
    { group: 'pool', fn: 'poolStrictView', params: [pool, int(0, (1 << 20) - 1), int(1, 1 << 20)], good: (fx) => [fx.pool, 4096, 4096] },
    { group: 'pool', fn: 'poolDetachView', params: [{ kind: 'view' }], good: (fx) => [fx.view] },
    { group: 'pool', fn: 'poolClose', params: [pool], good: (fx) => [fx.closedPool] },
    { group: 'pool', fn: 'poolInfo', params: [pool], good: (fx) => [fx.pool] },
    // sock.c
    { group: 'sock', fn: 'sockOpen', params: [int(4, 6), { kind: 'tcp' }], good: () => [4, 'tcp'] },
    { group: 'sock', fn: 'sockBind', params: [fd, u8], good: (fx) => [fresh(fx), sockaddr('127.0.0.1', 0)] },
    { group: 'sock', fn: 'sockListen', params: [fd, int(0, I32)], good: (fx) => [fresh(fx), 4] },
    { group: 'sock', fn: 'sockConnectSync', params: [fd, u8], good: (fx) => [fresh(fx), sockaddr('127.0.0.1', 1)] },
    { group: 'sock', fn: 'sockAccept', params: [fd], good: (fx) => [fx.listen] },
    { group: 'sock', fn: 'sockShutdown', params: [fd, int(0, 2)], good: (fx) => [fresh(fx), 2] },
    { group: 'sock', fn: 'sockClose', params: [fd], good: (fx) => [fresh(fx)] },
    { group: 'sock', fn: 'sockSetInt', params: [fd, int(0, I32), int(0, I32), int(-(2 ** 31), I32)], good: (fx) => [fx.sock, 1, 7, 65536] },
    { group: 'sock', fn: 'sockGetInt', params: [fd, int(0, I32), int(0, I32)], good: (fx) => [fx.sock, 1, 7] },
    { group: 'sock', fn: 'sockSetBytes', params: [fd, int(0, I32), int(0, I32), u8], good: (fx) => [fx.sock, 1, 7, new Uint8Array(4)] },
    { group: 'sock', fn: 'sockGetBytes', params: [fd, int(0, I32), int(0, I32), int(0, 4096)], good: (fx) => [fx.sock, 1, 7, 4] },
    { group: 'sock', fn: 'sockName', params: [fd, bool], good: (fx) => [fx.sock, false] },
    { group: 'sock', fn: 'sockError', params: [fd], good: (fx) => [fx.sock] },
    { group: 'sock', fn: 'sockDisconnect', params: [fd], good: (fx) => [fx.n.sockOpen(4, 'udp')] },
    // reuseport.c, affinity.c (the child may pin itself: it is a process of its own)
    { group: 'sock', fn: 'sockAttachReuseportCpu', params: [fd, int(1, 1024)], good: (fx) => [fresh(fx), 2] },
    { group: 'sock', fn: 'threadSetAffinity', params: [u8], good: (fx) => [fx.n.threadGetAffinity()] },
    { group: 'sock', fn: 'threadGetAffinity', params: [], good: () => [] },
    { group: 'sock', fn: 'threadId', params: [], good: () => [] },
    // pipe.c (pipeOpen's size is optional: undefined is valid there)
    { group: 'pipe', fn: 'pipeOpen', params: [int(4096, 1 << 30)], good: () => [4096] },
    { group: 'pipe', fn: 'fdSetBlocking', params: [fd, bool], good: (fx) => [fresh(fx), false] },
    // sendfile.c (present once the nonblocking sendfile path is built)
    {
      group: 'pipe',
      fn: 'sendfileStart' as keyof NativeBinding,
      params: [fd, fd, int(0, 2 ** 62), int(1, 2 ** 62), int(4096, 2 ** 30), { kind: 'fn' }],
      good: (fx) => [fresh(fx), fx.file, 0, 1, 4096, () => {}],
    },
    { group: 'pipe', fn: 'sendfileAbort' as keyof NativeBinding, params: [{ kind: 'view' }], good: () => [{}] },
    { group: 'pipe', fn: 'sendfileStats' as keyof NativeBinding, params: [{ kind: 'view' }], good: () => [{}] },
    // fallback.c
    { group: 'fallback', fn: 'fallbackCreate', params: [obj], good: () => [fbOptions()] },
    { group: 'fallback', fn: 'fallbackClose', params: [fb], good: (fx) => [fx.closedFb] },
    { group: 'fallback', fn: 'fallbackAttachPool', params: [fb, pool, int(0, 63)], good: (fx) => [fx.fb, fx.pool, 5] },
    { group: 'fallback', fn: 'fallbackDetachPool', params: [fb, int(0, 63)], good: (fx) => [fx.fb, 7] },
    { group: 'fallback', fn: 'fallbackWatch', params: [fb, fd, bool], good: (fx) => [fx.fb, fresh(fx), false] },
    { group: 'fallback', fn: 'fallbackRef', params: [fb, bool], good: (fx) => [fx.fb, false] },
    { group: 'fallback', fn: 'fallbackWake', params: [fb], good: (fx) => [fx.fb] },
    {
      group: 'fallback',
      fn: 'fallbackSendBuf',
      params: [fb, fd, u8, int(0, I32), int(0, I32), int(-(2 ** 31), I32)],
      good: (fx) => [fx.fb, fx.sock, new Uint8Array(16), 0, 16, 0],
    },
    ...(['fallbackRecv', 'fallbackSend', 'fallbackSendZc'] as const).map(
      (f): Spec => ({
        group: 'fallback',
        fn: f,
        params: [fb, fd, int(0, 63), int(0, 1 << 20), int(0, 1 << 20), int(-(2 ** 31), I32)],
        good: (fx) => [fx.fb, fx.sock, 0, 0, 16, 0],
      }),
    ),
    { group: 'fallback', fn: 'fallbackZcEnable', params: [fb, fd], good: (fx) => [fx.fb, fx.sock] },
    { group: 'fallback', fn: 'fallbackZcNotes', params: [fb, fd], good: (fx) => [fx.fb, fx.sock] },
    { group: 'fallback', fn: 'fallbackAccept', params: [fb, fd, int(0, 0o2004000)], good: (fx) => [fx.fb, fx.listen, 0] },
    { group: 'fallback', fn: 'fallbackConnect', params: [fb, fd, int(0, 256 - 16), int(1, 128)], good: (fx) => [fx.fb, fresh(fx), 0, 16] },
    { group: 'fallback', fn: 'fallbackConnectResult', params: [fb, fd], good: (fx) => [fx.fb, fx.sock] },
    { group: 'fallback', fn: 'fallbackShutdown', params: [fb, fd, int(0, 2)], good: (fx) => [fx.fb, fresh(fx), 2] },
    { group: 'fallback', fn: 'fallbackCloseFd', params: [fb, fd], good: (fx) => [fx.fb, fresh(fx)] },
    {
      group: 'fallback',
      fn: 'fallbackRecvmsg',
      params: [fb, fd, { kind: 'i32' }, int(1, 1), int(0, 128), int(0, 256), int(-(2 ** 31), I32)],
      good: (fx) => [fx.fb, fx.sock, new Int32Array([0, 0, 256, 0]), 1, 32, 0, 0],
    },
    ...(['fallbackSendmsg', 'fallbackSendmsgZc'] as const).map(
      (fn): Spec => ({
        group: 'fallback',
        fn,
        params: [fb, fd, int(0, I32), int(0, I32), int(8, 512), int(0, 32), int(0, 0xffff), int(-(2 ** 31), I32)],
        good: (fx) => [fx.fb, fx.sock, 0, 0, 8, 0, 0, 0],
      }),
    ),
    {
      group: 'fallback',
      fn: 'fallbackSendmmsg',
      params: [fb, fd, { kind: 'i32' }, int(1, 1), int(-(2 ** 31), I32)],
      good: (fx) => [fx.fb, fx.sock, new Int32Array([0, 0, 8, 0, 0, 0]), 1, 0],
    },
  ];
}

export const GROUPS = ['probe', 'ring', 'pool', 'sock', 'pipe', 'fallback', 'descriptors', 'lifetimes', 'reentrancy'];

function record(fn: string, pos: number, value: string, kind: string, mustThrow: string[] | null, call: () => unknown): CallRecord {
  const r: CallRecord = { fn, pos, value, kind, mustThrow, outcome: 'ok' };
  try {
    call();
  } catch (e) {
    const err = e as { code?: unknown; errno?: unknown; syscall?: unknown; message?: unknown; constructor?: { name?: string } };
    r.outcome = 'throw';
    r.code = typeof err?.code === 'string' ? err.code : undefined;
    r.ctor = err?.constructor?.name;
    r.errno = typeof err?.errno === 'number' ? err.errno : undefined;
    r.syscall = typeof err?.syscall === 'string' ? err.syscall : undefined;
    r.message = String(err?.message ?? err);
  }
  return r;
}

function out(r: CallRecord): void {
  process.stdout.write(JSON.stringify(r) + '\n');
}

function runMatrix(group: string, fx: Fixtures): void {
  const n = fx.n as unknown as Record<string, (...a: unknown[]) => unknown>;
  const bad = badValues(fx);
  for (const spec of specs().filter((s) => s.group === group)) {
    const f = n[spec.fn];
    if (typeof f !== 'function') continue; // an entry point this build does not have
    // Arity: every shorter argument list must throw ERR_MAIO_INVALID_ARG (pipeOpen's size is optional).
    for (let k = 0; k < spec.params.length; k++) {
      if (spec.fn === 'pipeOpen' && k === 0) continue;
      const args = spec.good(fx).slice(0, k);
      out(record(spec.fn, -1, `${k} of ${spec.params.length} args`, 'arity', ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_INVALID_HANDLE'], () => f(...args)));
    }
    if (spec.params.length === 0) out(record(spec.fn, -1, 'extra args', 'arity', null, () => f(1, 'x', {})));
    for (let pos = 0; pos < spec.params.length; pos++) {
      for (const [label, make] of bad) {
        const args = spec.good(fx);
        const v = make();
        // Handles that this group could not make (no io_uring) are not bad values of interest.
        if (v === null && label !== 'null') continue;
        args[pos] = v;
        let must = expected(spec.params[pos], label, v);
        if (spec.fn === 'pipeOpen' && label === 'undefined') must = null; // optional
        if (/Close$/.test(spec.fn) && /^closed /.test(label)) must = null; // idempotent
        // A close of the group's own open handle would break the calls after it.
        if (/Close$/.test(spec.fn) && must === null && /handle$/.test(label)) continue;
        if (spec.fn === 'poolCreate' || spec.fn === 'ringCreate' || spec.fn === 'fallbackCreate') {
          // The options object: any object is looked into; {} and [] lack required keys.
          if (Array.isArray(v) || (typeof v === 'object' && v !== null)) must = ['ERR_MAIO_INVALID_ARG', 'ERR_MAIO_INVALID_HANDLE'];
        }
        out(record(spec.fn, pos, label, spec.params[pos].kind, must, () => f(...args)));
      }
    }
    // Bad values inside the options objects.
    if (spec.fn === 'ringCreate' || spec.fn === 'fallbackCreate' || spec.fn === 'poolCreate') {
      const base = spec.good(fx)[0] as Record<string, unknown>;
      for (const key of Object.keys(base)) {
        for (const [label, make] of bad) {
          const opts: Record<string, unknown> = { ...(spec.good(fx)[0] as object) };
          opts[key] = make();
          // poolCreate's lock and hugePages are optional booleans; size must be a number
          out(record(spec.fn, 0, `options.${key} = ${label}`, 'option', null, () => {
            const h = f(opts);
            if (spec.fn === 'ringCreate') n.ringClose(h);
            else if (spec.fn === 'fallbackCreate') n.fallbackClose(h);
            else if (spec.fn === 'poolCreate') n.poolClose((h as { handle: unknown }).handle);
          }));
        }
      }
    }
  }
}

/**
 * SEND_BUF and SENDV pieces of caller buffers: native reads the buffer list
 * itself and refuses every entry it cannot check (not an index, not a
 * Uint8Array, shorter than the length, detached), a list that is not an
 * Array, a getter that closes the ring, and any descriptor of an op slot
 * whose held send is still in flight.
 */
function runHeldBuffers(fx: Fixtures, o: ReturnType<typeof ringOptions>, ring: unknown, sock: number): void {
  const n = fx.n;
  const SEND_BUF = 16;
  const SENDV = 12;
  const auxWords = new Int32Array(o.aux.buffer);
  const bad = ['ERR_MAIO_INVALID_DESCRIPTOR'];
  const detached = new Uint8Array(64);
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  const sendBuf = (label: string, list: unknown, index: number, len: number, must: string[] | null): void => {
    o.submit.fill(0);
    o.submit.set([SEND_BUF, sock, 1, len, -1, index, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0]);
    out(record('ringSubmit', 2, `SEND_BUF ${label}`, 'descriptor', must, () => (n.ringSubmit as (...a: unknown[]) => number)(ring, 1, list)));
  };
  sendBuf('no buffer list', undefined, 0, 16, bad);
  sendBuf('index past the list', [new Uint8Array(16)], 1, 16, bad);
  sendBuf('negative index', [new Uint8Array(16)], -1, 16, bad);
  sendBuf('len past the buffer', [new Uint8Array(16)], 0, 17, bad);
  sendBuf('negative len', [new Uint8Array(16)], 0, -1, bad);
  sendBuf('a view past its buffer end (subarray)', [new Uint8Array(64).subarray(60)], 0, 8, bad);
  sendBuf('detached buffer', [detached], 0, 16, bad);
  for (const [label, v] of [['a number', 7], ['an ArrayBuffer', new ArrayBuffer(16)], ['a Float64Array', new Float64Array(4)], ['a DataView', new DataView(new ArrayBuffer(16))], ['an object', { length: 16 }], ['null', null]] as const) {
    sendBuf(`entry is ${label}`, [v], 0, 8, bad);
  }
  for (const [label, list] of [['an object', { 0: new Uint8Array(16), length: 1 }], ['a string', 'abcd'], ['a number', 1]] as const) {
    sendBuf(`list is ${label}`, list, 0, 8, ['ERR_MAIO_INVALID_ARG']);
  }
  sendBuf('list of 65,537 entries', new Array(65537).fill(new Uint8Array(1)), 0, 1, ['ERR_MAIO_OUT_OF_RANGE']);
  // A getter runs before anything is checked; one that closes the ring ends the call.
  const own = n.ringCreate(ringOptions());
  const list: unknown[] = [];
  Object.defineProperty(list, 0, { get: () => (n.ringClose(own), new Uint8Array(16)), enumerable: true });
  o.submit.fill(0);
  out(record('ringSubmit', 2, 'SEND_BUF list getter closes the ring', 'descriptor', ['ERR_MAIO_CLOSED'], () => (n.ringSubmit as (...a: unknown[]) => number)(own, 0, list)));
  // A getter that submits on the same ring while its list is read: refused, the outer call fails too.
  const nested: unknown[] = [];
  Object.defineProperty(nested, 0, { get: () => ((n.ringSubmit as (...a: unknown[]) => number)(ring, 0, [new Uint8Array(1)]), new Uint8Array(16)), enumerable: true });
  o.submit.fill(0);
  out(record('ringSubmit', 2, 'SEND_BUF list getter submits on the same ring', 'descriptor', ['ERR_MAIO_INVALID_ARG'], () => (n.ringSubmit as (...a: unknown[]) => number)(ring, 0, nested)));
  // SENDV pieces -(k + 1): entry k of the list, as long as the piece at most.
  const segCases: [string, number[], number, unknown[]][] = [
    ['held piece past the list', [-2, 8], 8, [new Uint8Array(16)]],
    ['held piece longer than its buffer', [-1, 17], 17, [new Uint8Array(16)]],
    ['held piece of a non-Uint8Array', [-1, 8], 8, [new Int32Array(4)]],
    ['held piece of a detached buffer', [-1, 8], 8, [detached]],
    ['held and pool pieces, len not the sum', [-1, 8, 0, 8], 17, [new Uint8Array(16)]],
  ];
  for (const [label, pairs, len, l] of segCases) {
    o.submit.fill(0);
    o.submit.set([SENDV, sock, 1, len, 0, 0, 0, 0, 0, 0, pairs.length * 4, 0, 0, 0, 0, 0]);
    auxWords.set(pairs);
    out(record('ringSubmit', 10, `SENDV ${label}`, 'descriptor', bad, () => (n.ringSubmit as (...a: unknown[]) => number)(ring, 1, l)));
  }
  // Good ones: the socket is not connected, the CQE carries the error.
  sendBuf('good', [new Uint8Array(16)], 0, 16, null);
  o.submit.fill(0);
  o.submit.set([SENDV, sock, 2, 24, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0]);
  auxWords.set([-1, 16, 0, 8]);
  out(record('ringSubmit', 10, 'SENDV held and pool pieces', 'descriptor', null, () => (n.ringSubmit as (...a: unknown[]) => number)(ring, 1, [new Uint8Array(16)])));
  // A held send in flight (a peer that never reads): its op slot is refused to every descriptor.
  const peer = n.sockOpen(4, 'tcp');
  n.sockConnectSync(peer, n.sockName(fx.listen, false));
  const big = new Uint8Array(64 << 20);
  o.submit.fill(0);
  o.submit.set([SEND_BUF, peer, 5, big.length, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0]);
  out(record('ringSubmit', 2, 'SEND_BUF in flight', 'descriptor', null, () => (n.ringSubmit as (...a: unknown[]) => number)(ring, 1, [big])));
  for (const [label, op] of [['NOP', 0], ['SEND_BUF', SEND_BUF]] as const) {
    o.submit.fill(0);
    o.submit.set([op, peer, 5 | (1 << 20), 16, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0]);
    out(record('ringSubmit', 2, `${label} in the op slot of a held send in flight`, 'descriptor', bad, () => (n.ringSubmit as (...a: unknown[]) => number)(ring, 1, [new Uint8Array(16)])));
  }
  n.sockClose(peer);
}

/** Submits hand-made descriptors, one bad field at a time. */
function runDescriptors(fx: Fixtures): void {
  if (!fx.ring) {
    out(record('ringCreate', -1, 'io_uring unavailable', 'skip', null, () => undefined));
    return;
  }
  const n = fx.n;
  // A ring of our own so we hold its submit array.
  const o = ringOptions();
  const ring = n.ringCreate(o);
  n.ringRegisterPool(ring, fx.pool as never, 0);
  n.ringRegisterBufRing(ring, 3, 8);
  const fields = ['op', 'fd', 'userData', 'len', 'pool', 'bufOff', 'msgFlags', 'ioprio', 'bufGroup', 'auxOff', 'auxLen', 'offLo', 'offHi', 'sqeFlags', 'fdOut', 'spare'];
  const vals = [-1, -(2 ** 31), 2 ** 31 - 1, 0x7fff, 0x10000, 1 << 20, (1 << 20) + 1, 99, 64, 12];
  const sock = fx.n.sockOpen(4, 'tcp');
  const bad = fx.n.sockOpen(4, 'tcp');
  fx.n.sockClose(bad); // a closed fd: the kernel answers -EBADF in the CQE
  // fd fields never take small numbers: a CLOSE of one of node's own descriptors
  // is like fs.closeSync() on it, not something maio can refuse.
  const fdVals = [-1, -(2 ** 31), 2 ** 31 - 1, 0x10000, bad];
  // Every op of native/maio.h (0 .. MAIO_OP_COUNT - 1) and the first number past
  // them, which must be refused: a new op must be added here (OP_COUNT).
  const OP_COUNT = 17;
  const SENDV = 12;
  const SENDMSG = 14;
  const SENDMSG_ZC = 15;
  const auxWords = new Int32Array(o.aux.buffer);
  for (let op = 0; op <= OP_COUNT; op++) {
    for (let field = 0; field < 16; field++) {
      for (const v of field === 1 || field === 14 ? fdVals : vals) {
        o.submit.fill(0);
        // A plausible descriptor of the op: socket fd (a closed one for CLOSE: the
        // kernel may close asynchronously), pool 0, 16 bytes, group 3.
        o.submit.set([op, op === 7 ? bad : sock, 1, 16, 0, 0, 0, 0, 3, 0, 16, 0, 0, 0, bad, 0]);
        o.aux.set(sockaddr('127.0.0.1', 1));
        // SENDV: aux holds (offset, length) pairs, here two 8-byte pieces of pool 0.
        if (op === SENDV) auxWords.set([0, 8, 8, 8]);
        // SENDMSG: no name (offLo 0), two 8-byte pieces listed after the 32 name bytes.
        if (op === SENDMSG || op === SENDMSG_ZC) auxWords.set([0, 8, 8, 8], 8);
        o.submit[field] = v;
        const must = op === OP_COUNT && field !== 0 ? ['ERR_MAIO_INVALID_DESCRIPTOR'] : null;
        // PROVIDE with a valid shape would really add a buffer; fine, the group is ours.
        out(record('ringSubmit', field, `op ${op} ${fields[field]} = ${v}`, 'descriptor', must, () => n.ringSubmit(ring, 1)));
      }
    }
  }
  // SENDV's segment list: every piece must lie in the pool, the pieces must add up
  // to len, 1..16 of them, the list inside aux and 4-byte aligned.
  const segCases: [string, number[], number, number, number][] = [
    // label, pairs, len, auxOff, auxLen
    ['piece past the pool', [(1 << 20) - 4, 8], 8, 0, 8],
    ['piece at a negative offset', [-8, 8], 8, 0, 8],
    ['negative piece length', [0, -1], -1, 0, 8],
    ['huge piece length', [0, 2 ** 31 - 1], 2 ** 31 - 1, 0, 8],
    ['pieces that wrap', [8, 2 ** 31 - 1, 0, 2], 1, 0, 16],
    ['len not the sum', [0, 8, 8, 8], 17, 0, 16],
    ['no pieces', [], 0, 0, 0],
    ['17 pieces', new Array(34).fill(1), 17, 0, 136],
    ['auxLen not a multiple of 8', [0, 8], 8, 0, 12],
    ['auxOff unaligned', [0, 8], 8, 2, 8],
    ['auxOff past aux', [0, 8], 8, 1024, 8],
    ['auxOff negative', [0, 8], 8, -8, 8],
  ];
  for (const [label, pairs, len, auxOff, auxLen] of segCases) {
    o.submit.fill(0);
    o.submit.set([SENDV, sock, 1, len, 0, 0, 0, 0, 0, auxOff, auxLen, 0, 0, 0, 0, 0]);
    o.aux.fill(0);
    if (auxOff >= 0 && auxOff % 4 === 0 && auxOff < 1024) auxWords.set(pairs.slice(0, (1024 - auxOff) / 4), auxOff / 4);
    out(record('ringSubmit', 10, `SENDV ${label}`, 'descriptor', ['ERR_MAIO_INVALID_DESCRIPTOR'], () => n.ringSubmit(ring, 1)));
  }
  // SENDMSG's entry: the name's length must match its family, the pieces lie in
  // the pool and add up to len, 1..64 of them, the UDP_SEGMENT size fits 16 bits
  // (or is MAIO_UDP_SEGMENT_NONE, 65536: one datagram, said explicitly).
  const msgCases: [string, number[], number, number, number, number, number][] = [
    // label, pairs, len, auxOff, auxLen, nameLen (offLo), gso (offHi)
    ['name length 20', [0, 8], 8, 0, 8, 20, 0],
    ['name length 28 for an IPv4 sockaddr', [0, 8], 8, 0, 8, 28, 0],
    ['name length 33', [0, 8], 8, 0, 8, 33, 0],
    ['negative name length', [0, 8], 8, 0, 8, -1, 0],
    ['piece past the pool', [(1 << 20) - 4, 8], 8, 0, 8, 16, 0],
    ['negative piece length', [0, -1], -1, 0, 8, 0, 0],
    ['len not the sum', [0, 8, 8, 8], 17, 0, 16, 0, 0],
    ['no pieces', [], 0, 0, 0, 0, 0],
    ['65 pieces', new Array(130).fill(1), 65, 0, 520, 0, 0],
    ['auxOff unaligned', [0, 8], 8, 2, 8, 0, 0],
    ['entry past aux', [0, 8], 8, 1024 - 32, 8, 0, 0],
    ['gso 65537', [0, 8], 8, 0, 8, 0, 65537],
    ['gso 2^31 - 1', [0, 8], 8, 0, 8, 0, 0x7fffffff],
    ['negative gso', [0, 8], 8, 0, 8, 0, -1],
  ];
  for (const op of [SENDMSG, SENDMSG_ZC]) {
    for (const [label, pairs, len, auxOff, auxLen, nameLen, gso] of msgCases) {
      o.submit.fill(0);
      o.submit.set([op, sock, 1, len, 0, 0, 0, 0, 0, auxOff, auxLen, nameLen, gso, 0, 0, 0]);
      o.aux.fill(0);
      o.aux.set(sockaddr('127.0.0.1', 9));
      if (auxOff >= 0 && auxOff % 4 === 0 && auxOff + 32 < 1024) auxWords.set(pairs.slice(0, (1024 - auxOff - 32) / 4), (auxOff + 32) / 4);
      const name = op === SENDMSG ? 'SENDMSG' : 'SENDMSG_ZC';
      out(record('ringSubmit', 10, `${name} ${label}`, 'descriptor', ['ERR_MAIO_INVALID_DESCRIPTOR'], () => n.ringSubmit(ring, 1)));
    }
  }
  for (const [label, name, ctl] of [['name 129', 129, 0], ['control 257', 0, 257], ['control not x 8', 0, 12], ['negative name', -1, 0]] as const) {
    o.submit.fill(0);
    o.submit.set([13 /* RECVMSG_MULTI */, sock, 1, 0, 0, 0, 0, 0, 3, 0, 0, name, ctl, 0, 0, 0]);
    out(record('ringSubmit', 11, `RECVMSG_MULTI ${label}`, 'descriptor', ['ERR_MAIO_INVALID_DESCRIPTOR'], () => n.ringSubmit(ring, 1)));
  }
  // A good SENDV (the socket is not connected: the CQE carries the error).
  o.submit.fill(0);
  o.submit.set([SENDV, sock, 1, 24, 0, 0, 0, 0, 0, 0, 24, 0, 0, 0, 0, 0]);
  auxWords.set([0, 8, 100, 8, (1 << 20) - 8, 8]);
  out(record('ringSubmit', 10, 'SENDV three good pieces', 'descriptor', null, () => n.ringSubmit(ring, 1)));
  runHeldBuffers(fx, o, ring, sock);
  // count larger than the array, and the whole array at once
  out(record('ringSubmit', 1, 'count = submit capacity + 1', 'int', ['ERR_MAIO_OUT_OF_RANGE'], () => n.ringSubmit(ring, 9)));
  n.ringClose(ring);
  try {
    fx.n.sockClose(sock); // a CLOSE descriptor above may have closed it already
  } catch {
    // EBADF
  }
}

/** Handles used after close, pools closed under a ring, detached arrays. */
function runLifetimes(fx: Fixtures): void {
  const n = fx.n;
  // A pool closed while a ring and a fallback still hold it: the memory stays mapped.
  const p = n.poolCreate({ size: 1 << 16, lock: false });
  const fb = n.fallbackCreate(fbOptions());
  n.fallbackAttachPool(fb, p.handle, 1);
  n.poolClose(p.handle);
  out(record('fallbackSend', 2, 'pool closed after attach', 'lifetime', null, () => n.fallbackSend(fb, fx.sock, 1, 0, 16, 0)));
  out(record('poolStrictView', 0, 'closed pool', 'lifetime', ['ERR_MAIO_CLOSED'], () => n.poolStrictView(p.handle, 0, 16)));
  out(record('poolClose', 0, 'twice', 'lifetime', null, () => n.poolClose(p.handle)));
  out(record('fallbackDetachPool', 1, 'after pool close', 'lifetime', null, () => n.fallbackDetachPool(fb, 1)));
  out(record('fallbackDetachPool', 1, 'twice', 'lifetime', null, () => n.fallbackDetachPool(fb, 1)));
  out(record('fallbackSend', 2, 'detached pool', 'lifetime', ['ERR_MAIO_OUT_OF_RANGE'], () => n.fallbackSend(fb, fx.sock, 1, 0, 16, 0)));
  n.fallbackClose(fb);
  out(record('fallbackClose', 0, 'twice', 'lifetime', null, () => n.fallbackClose(fb)));
  for (const f of ['fallbackWake', 'fallbackRef', 'fallbackWatch', 'fallbackRecv', 'fallbackAttachPool'] as const) {
    const args: Record<string, unknown[]> = {
      fallbackWake: [fb],
      fallbackRef: [fb, true],
      fallbackWatch: [fb, fx.sock, true],
      fallbackRecv: [fb, fx.sock, 0, 0, 16, 0],
      fallbackAttachPool: [fb, fx.pool, 2],
    };
    out(record(f, 0, 'closed fallback', 'lifetime', ['ERR_MAIO_CLOSED'], () => (n[f] as (...a: unknown[]) => unknown)(...args[f])));
  }
  // Detached shared arrays: the fallback and the ring must notice.
  const o = fbOptions();
  const fb2 = n.fallbackCreate(o);
  structuredClone(o.aux.buffer, { transfer: [o.aux.buffer] });
  out(record('fallbackConnect', 0, 'aux detached', 'lifetime', null, () => n.fallbackConnect(fb2, fx.sock, 0, 16)));
  structuredClone(o.notes.buffer, { transfer: [o.notes.buffer] });
  out(record('fallbackZcNotes', 0, 'notes detached', 'lifetime', null, () => n.fallbackZcNotes(fb2, fx.sock)));
  n.fallbackClose(fb2);
  // A strict view: detach twice, then a view of a closed pool.
  const p2 = n.poolCreate({ size: 1 << 16, lock: false });
  const v = n.poolStrictView(p2.handle, 0, 4096);
  n.poolDetachView(v);
  out(record('poolDetachView', 0, 'twice', 'lifetime', null, () => n.poolDetachView(v)));
  n.poolClose(p2.handle);
  if (fx.ring) {
    const ro = ringOptions();
    const r = n.ringCreate(ro);
    const p3 = n.poolCreate({ size: 1 << 16, lock: false });
    n.ringRegisterPool(r, p3.handle, 0);
    n.poolClose(p3.handle);
    // Pool closed while registered: a send into it still refers to mapped memory.
    ro.submit.fill(0);
    ro.submit.set([0 /* NOP */, -1, 1]);
    out(record('ringSubmit', 0, 'nop after pool close', 'lifetime', null, () => n.ringSubmit(r, 1)));
    out(record('ringRegisterPool', 1, 'closed pool', 'lifetime', ['ERR_MAIO_CLOSED'], () => n.ringRegisterPool(r, p3.handle, 1)));
    out(record('ringRegisterPool', 2, 'slot in use', 'lifetime', ['ERR_MAIO_OUT_OF_RANGE'], () => n.ringRegisterPool(r, fx.pool as never, 0)));
    out(record('ringRegisterBufRing', 2, 'not a power of two', 'lifetime', ['ERR_MAIO_OUT_OF_RANGE'], () => n.ringRegisterBufRing(r, 1, 6)));
    n.ringRegisterBufRing(r, 1, 8);
    out(record('ringRegisterBufRing', 1, 'group twice', 'lifetime', ['ERR_MAIO_OUT_OF_RANGE'], () => n.ringRegisterBufRing(r, 1, 8)));
    out(record('ringUnregisterPool', 1, 'after pool close', 'lifetime', null, () => n.ringUnregisterPool(r, 0)));
    out(record('ringUnregisterPool', 1, 'twice', 'lifetime', ['ERR_MAIO_OUT_OF_RANGE'], () => n.ringUnregisterPool(r, 0)));
    structuredClone(ro.submit.buffer, { transfer: [ro.submit.buffer] });
    out(record('ringSubmit', 0, 'submit detached', 'lifetime', ['ERR_MAIO_INVALID_ARG'], () => n.ringSubmit(r, 0)));
    n.ringClose(r);
    // Arrays that share one buffer (as src/ring/ring.ts makes them) are found through that buffer:
    // detached, or shrunk under the views, the ring must notice just the same.
    for (const [how, spoil] of [
      ['shared buffer detached', (b: ArrayBuffer) => structuredClone(b, { transfer: [b] })],
      ['shared buffer shrunk under the views', (b: ArrayBuffer) => (b as ArrayBuffer & { resize(n: number): void }).resize(64)],
    ] as const) {
      const so = sharedRingOptions();
      const sr = n.ringCreate(so);
      so.submit.set([0 /* NOP */, -1, 1]);
      out(record('ringSubmit', 1, `${how}: before`, 'lifetime', null, () => n.ringSubmit(sr, 1)));
      spoil(so.submit.buffer as ArrayBuffer);
      out(record('ringSubmit', 0, how, 'lifetime', ['ERR_MAIO_INVALID_ARG'], () => n.ringSubmit(sr, 0)));
      n.ringClose(sr);
    }
    out(record('ringClose', 0, 'twice', 'lifetime', null, () => n.ringClose(r)));
    out(record('ringSubmit', 0, 'closed ring', 'lifetime', ['ERR_MAIO_CLOSED'], () => n.ringSubmit(r, 0)));
    out(record('ringRef', 0, 'closed ring', 'lifetime', ['ERR_MAIO_CLOSED'], () => n.ringRef(r, true)));
    out(record('ringUnregisterBufRing', 0, 'closed ring', 'lifetime', ['ERR_MAIO_CLOSED'], () => n.ringUnregisterBufRing(r, 1)));
  }
  // The ring's own descriptors (io_uring fd, eventfd) are not targets of a descriptor.
  if (fx.ring) {
    // fd -> link; a number may be reused (the listing's own directory fd), so compare both.
    const links = () => {
      const m = new Map<string, string>();
      for (const f of fs.readdirSync('/proc/self/fd')) {
        try {
          m.set(f, fs.readlinkSync(`/proc/self/fd/${f}`));
        } catch {
          // the listing's own fd, gone already
        }
      }
      return m;
    };
    const before = links();
    const ro = ringOptions();
    const r = n.ringCreate(ro);
    const own = [...links()]
      .filter(([f, l]) => l.startsWith('anon_inode:') && before.get(f) !== l)
      .map(([f]) => Number(f));
    if (own.length < 2) throw new Error(`expected the ring fd and its eventfd, found ${own}`);
    for (const ownFd of own) {
      for (const [op, name] of [[7, 'CLOSE'], [8, 'SHUTDOWN'], [3, 'RECV'], [1, 'SEND'], [10, 'SPLICE']] as const) {
        ro.submit.fill(0);
        ro.submit.set([op, ownFd, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ownFd]);
        let link = '?';
        try {
          link = fs.readlinkSync(`/proc/self/fd/${ownFd}`);
        } catch {
          // gone
        }
        out(record('ringSubmit', 1, `${name} of the ring's own fd ${ownFd} (${link})`, 'lifetime', ['ERR_MAIO_INVALID_DESCRIPTOR'], () => n.ringSubmit(r, 1)));
      }
    }
    n.ringClose(r);
  }
  // More than 64 buffer groups, more than 64 pools.
  if (fx.ring) {
    const r = n.ringCreate(ringOptions());
    let last: CallRecord | null = null;
    for (let g = 0; g < 66; g++) {
      last = record('ringRegisterBufRing', 1, `group ${g}`, 'lifetime', null, () => n.ringRegisterBufRing(r, 100 + g, 1));
      if (last.outcome === 'throw') break;
    }
    out({ ...last!, value: 'the 65th group', mustThrow: ['ERR_MAIO_OUT_OF_RANGE'] });
    n.ringClose(r);
  }
}

/** Closing a handle from inside its own callback, and calling it again there. */
async function runReentrancy(fx: Fixtures): Promise<void> {
  const n = fx.n;
  const wait = (cond: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = () => (cond() ? resolve() : Date.now() - t0 > 10_000 ? reject(new Error('callback never came')) : setTimeout(poll, 5));
      poll();
    });
  if (fx.ring) {
    // onCompletions closes the ring, then submits and closes again.
    const o = ringOptions();
    let calls = 0;
    let r: unknown;
    o.onCompletions = () => {
      calls++;
      out(record('ringClose', 0, 'inside onCompletions', 'reentrancy', null, () => n.ringClose(r as never)));
      out(record('ringSubmit', 0, 'inside onCompletions after close', 'reentrancy', ['ERR_MAIO_CLOSED'], () => n.ringSubmit(r as never, 1)));
      out(record('ringClose', 0, 'twice inside onCompletions', 'reentrancy', null, () => n.ringClose(r as never)));
    };
    r = n.ringCreate(o);
    for (let k = 0; k < 8; k++) o.submit.set([0, -1, k + 1], k * 16); // eight NOPs
    n.ringSubmit(r as never, 8);
    await wait(() => calls > 0);
    await new Promise((res) => setTimeout(res, 20));
    out(record('onCompletions', 0, 'called once after a close inside it', 'reentrancy', null, () => {
      if (calls !== 1) throw Object.assign(new Error(`onCompletions ran ${calls} times`), { code: 'TEST_REENTRANT_CALLS' });
    }));
  }
  {
    // onEvents closes the fallback.
    const o = fbOptions();
    let calls = 0;
    let fb: unknown;
    o.onEvents = () => {
      calls++;
      out(record('fallbackClose', 0, 'inside onEvents', 'reentrancy', null, () => n.fallbackClose(fb as never)));
      out(record('fallbackWake', 0, 'inside onEvents after close', 'reentrancy', ['ERR_MAIO_CLOSED'], () => n.fallbackWake(fb as never)));
    };
    fb = n.fallbackCreate(o);
    n.fallbackWake(fb as never);
    n.fallbackWake(fb as never);
    await wait(() => calls > 0);
    await new Promise((res) => setTimeout(res, 20));
    out(record('onEvents', 0, 'called once after a close inside it', 'reentrancy', null, () => {
      if (calls !== 1) throw Object.assign(new Error(`onEvents ran ${calls} times`), { code: 'TEST_REENTRANT_CALLS' });
    }));
  }
  const sf = (n as unknown as Record<string, (...a: unknown[]) => unknown>).sendfileStart;
  if (typeof sf === 'function') {
    // The transfer's callback aborts it and asks for its stats.
    const nn = n as unknown as Record<string, (...a: unknown[]) => unknown>;
    const l = n.sockOpen(4, 'tcp');
    n.sockBind(l, sockaddr('127.0.0.1', 0));
    n.sockListen(l, 4);
    const port = (() => {
      const a = n.sockName(l, false);
      return (a[2] << 8) | a[3];
    })();
    const c = n.sockOpen(4, 'tcp');
    n.sockConnectSync(c, sockaddr('127.0.0.1', port));
    let calls = 0;
    let h: unknown;
    h = sf(c, fx.file, 0, 5, 4096, () => {
      calls++;
      out(record('sendfileAbort', 0, 'inside its callback', 'reentrancy', null, () => nn.sendfileAbort(h)));
      out(record('sendfileStats', 0, 'inside its callback after abort', 'reentrancy', null, () => nn.sendfileStats(h)));
    });
    await wait(() => calls > 0);
    await new Promise((res) => setTimeout(res, 20));
    out(record('sendfileAbort', 0, 'after the transfer ended', 'reentrancy', null, () => nn.sendfileAbort(h)));
    n.sockClose(c);
    n.sockClose(l);
  }
}

if (require.main === module) {
  const group = process.argv[2];
  const fx = fixtures();
  if (group === 'descriptors') runDescriptors(fx);
  else if (group === 'lifetimes') runLifetimes(fx);
  else if (group === 'reentrancy') {
    runReentrancy(fx).then(
      () => finish(),
      (e) => {
        process.stderr.write(String(e?.stack ?? e));
        process.exit(3);
      },
    );
  } else runMatrix(group, fx);
  if (group !== 'reentrancy') finish();
}

function finish(): void {
  // Force the finalizers: a handle freed twice or a bad refcount shows up here.
  (globalThis as { gc?: () => void }).gc?.();
  setImmediate(() => {
    (globalThis as { gc?: () => void }).gc?.();
    process.stdout.write('DONE\n');
    // Closing handles lets the loop end on its own; exit explicitly in case a uv_poll stays referenced.
    setTimeout(() => process.exit(0), 50);
  });
}
