/**
 * A worker group: N worker threads each running the application's module
 * with its own ring and pool, their servers on one address through
 * SO_REUSEPORT. The group starts them (pinned to CPUs if asked), replaces one
 * that dies (with a backoff), answers stats across them, and stops them
 * gracefully: every worker stops accepting, open connections finish, then the
 * threads end (terminated after the timeout).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits, type SHARE_ENV } from 'node:worker_threads';
import { InvalidArgumentError, OutOfRangeError, WorkerStartError } from '../core/errors';
import { TypedEmitter } from '../core/typed-events';
import { sumNumbers, sumPrometheus } from './aggregate';
import { allowedCpus, parseCpuList } from './cpus';
import { createFdTable, resetOwnedBy, type FdTableMemory } from './fd-table';
import { TAG, checkNoPoolMemory, isInternal, type ToGroup, type ToWorker, type WorkerBoot, type WorkerStats } from './protocol';
import { steeringTable, type SteeringState } from './steering';

/** Listen calls per worker whose port the group shares (the k-th listen of each worker). */
const SHARED_LISTENS = 16;
const MAX_WORKERS = 1024;

export interface RestartOptions {
  /** ms before the first restart of a worker (default 100); doubles per crash in a row */
  minDelay?: number;
  /** ms, the longest wait between restarts (default 10000) */
  maxDelay?: number;
  /** ms a worker must live for its crash not to count as one in a row (default 10000) */
  resetAfter?: number;
}

export interface StartWorkersOptions {
  /** the module every worker runs: a path (relative to the current directory) or a file: URL */
  module: string | URL;
  /** worker threads: a number or 'auto' (default): the CPUs this process may run on, or the length of `cpus` */
  count?: number | 'auto';
  /** pin worker i to CPU cpus[i % cpus.length]: '0-3,8' or [0, 1, 2] */
  cpus?: string | readonly number[];
  /**
   * 'cpu': the kernel gives a connection to socket (CPU it arrived on) % count (a classic BPF
   * reuseport program), so pinned workers handle connections where the kernel processed them.
   * 'hash': the kernel's 4-tuple hash. Default 'cpu' when `cpus` is given, else 'hash'.
   */
  steer?: 'cpu' | 'hash';
  /** each worker's `workerData` (structured clone) */
  workerData?: unknown;
  /** each worker's process.env (default: a copy of this one), as worker_threads' option */
  env?: NodeJS.Dict<string> | typeof SHARE_ENV;
  execArgv?: string[];
  resourceLimits?: ResourceLimits;
  /** replace a worker that exits unexpectedly (default true) */
  restart?: boolean | RestartOptions;
  /** ms for every worker to be ready (listening, or ready() called) at start (default 10000) */
  readyTimeout?: number;
  /** SIGTERM / SIGINT stop the group gracefully (a second one terminates at once); default false */
  signals?: boolean;
  /** ms stop() waits for connections to finish when the signal handlers stop the group (default 10000) */
  stopTimeout?: number;
}

export type WorkerState = 'starting' | 'online' | 'ready' | 'stopping' | 'exited';

/** One worker thread of a group (like node:cluster's Worker). */
export class MaioWorker {
  /** the worker's place, 0..count-1; a replacement takes the same index */
  readonly index: number;
  /** unique per start */
  readonly id: number;
  /** the node:worker_threads Worker */
  readonly thread: Worker;
  state: WorkerState = 'starting';
  /** kernel thread id (/proc/self/task/<threadId>), once online */
  threadId = 0;
  /** CPUs the thread may run on, once online */
  cpus: number[] = [];
  /** why pinning failed, if it did */
  pinError: string | null = null;
  /** ports its servers listen on */
  readonly ports: number[] = [];
  exitCode: number | null = null;
  /** when it started (performance.now()) */
  readonly startedAt = performance.now();

  /** @internal */
  constructor(index: number, id: number, thread: Worker) {
    this.index = index;
    this.id = id;
    this.thread = thread;
  }

  /** A message to the worker (its currentWorker() 'message' event). Pool buffers are refused. */
  send(message: unknown): void {
    checkNoPoolMemory(message);
    this.thread.postMessage(message);
  }
}

export interface WorkerExitInfo {
  /** the group was stopping it (stop(), a signal) */
  expected: boolean;
  /** sockets it left open that the group reset (connections end with ECONNRESET) */
  socketsReset: number;
  /** it will be replaced in this many ms, or null */
  restartIn: number | null;
}

export interface WorkerGroupEvents {
  /** a worker thread runs (pinned, if asked) and is loading the module */
  online: [worker: MaioWorker];
  /** a worker's server listens */
  listening: [worker: MaioWorker, port: number];
  /** a worker is ready (its first listen, or ready()) */
  ready: [worker: MaioWorker];
  /** a worker's uncaught error (emitted only when there is a listener; 'exit' follows) */
  error: [worker: MaioWorker, err: Error];
  exit: [worker: MaioWorker, code: number, info: WorkerExitInfo];
  /** a worker's message: currentWorker().send() or parentPort.postMessage() */
  message: [worker: MaioWorker, message: unknown];
  /** every worker has ended after stop() */
  stopped: [];
}

export interface GroupStats {
  /** numbers summed over the workers that answered */
  total: Record<string, unknown>;
  workers: WorkerStats[];
  /** indexes of workers that did not answer in time (exited, busy) */
  missing: number[];
}

export interface StopResult {
  /** workers that drained and ended by themselves */
  drained: number;
  /** workers terminated at the timeout (their connections were reset) */
  terminated: number;
}

interface Pending {
  resolve(v: unknown): void;
}

export class WorkerGroup extends TypedEmitter<WorkerGroupEvents> {
  readonly count: number;
  /** CPU of each index when pinned, else null */
  readonly cpus: readonly number[] | null;
  readonly #module: string;
  readonly #opts: StartWorkersOptions;
  readonly #restart: Required<RestartOptions> | null;
  readonly #steer: boolean;
  readonly #fdTable: FdTableMemory;
  readonly #ports = new Int32Array(new SharedArrayBuffer(SHARED_LISTENS * 2 * 4));
  readonly #slots: (MaioWorker | null)[];
  readonly #failures: number[];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #nextReq = 1;
  #stopping: Promise<StopResult> | null = null;
  #steering: SteeringState;
  /** with CPU steering: the worker index of each socket of the reuseport group, in the kernel's order */
  #kernelSlots: number[] | null = null;
  #signalHandler: (() => void) | null = null;
  #started = false;

  /**
   * A group not started yet: attach listeners ('online', 'message' ...) and call start().
   * startWorkers(options) does both at once. Bad options throw here (typed errors).
   */
  constructor(options: StartWorkersOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    this.#opts = { ...options };
    this.#module = resolveModule(options.module);
    this.cpus = options.cpus === undefined ? null : parseCpuList(options.cpus);
    const count = options.count ?? 'auto';
    if (count === 'auto') this.count = this.cpus ? this.cpus.length : allowedCpus().length;
    else if (typeof count !== 'number' || !Number.isInteger(count)) throw new InvalidArgumentError(`count must be an integer or 'auto', got ${String(count)}`);
    else if (count < 1 || count > MAX_WORKERS) throw new OutOfRangeError(`count must be in 1..${MAX_WORKERS}, got ${count}`);
    else this.count = count;
    const steer = options.steer ?? (this.cpus ? 'cpu' : 'hash');
    if (steer !== 'cpu' && steer !== 'hash') throw new InvalidArgumentError(`steer must be 'cpu' or 'hash', got ${String(steer)}`);
    this.#steer = steer === 'cpu';
    this.#steering = { mode: 'hash', attached: false, reason: this.#steer ? 'not attached yet (no worker listens)' : "steer: 'hash' (the kernel's 4-tuple hash)" };
    const r = options.restart ?? true;
    if (typeof r !== 'boolean' && (typeof r !== 'object' || r === null)) throw new InvalidArgumentError('restart must be a boolean or { minDelay, maxDelay, resetAfter }');
    this.#restart = r === false ? null : { minDelay: 100, maxDelay: 10_000, resetAfter: 10_000, ...(r === true ? {} : r) };
    if (this.#restart) for (const [k, v] of Object.entries(this.#restart)) checkMs(`restart.${k}`, v);
    checkMs('readyTimeout', options.readyTimeout ?? 10_000);
    checkMs('stopTimeout', options.stopTimeout ?? 10_000);
    this.#fdTable = createFdTable();
    this.#slots = new Array<MaioWorker | null>(this.count).fill(null);
    this.#failures = new Array<number>(this.count).fill(0);
  }

  /** The workers alive now, by index (a slot being restarted is absent). */
  get workers(): MaioWorker[] {
    return this.#slots.filter((w): w is MaioWorker => w !== null);
  }

  /** CPU steering of the group's reuseport set: attached, or why not. */
  get steering(): SteeringState {
    return this.#steering;
  }

  /** The port the workers' first listener shares (0 before any listens). */
  get port(): number {
    return Atomics.load(this.#ports, 0);
  }

  /** Starts every worker; resolves when all are ready, rejects (WorkerStartError) after stopping them if one is not. Once. */
  async start(): Promise<this> {
    if (this.#started) throw new InvalidArgumentError('the group was started already');
    this.#started = true;
    const timeout = this.#opts.readyTimeout ?? 10_000;
    const all = Array.from({ length: this.count }, (_, i) => this.#spawn(i, true));
    const ready = all.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          const onReady = (x: MaioWorker) => x === w && done(null);
          const onExit = (x: MaioWorker, code: number) => x === w && done(new WorkerStartError(`worker ${w.index} exited with code ${code} before it was ready`, { cause: lastError.get(w) }));
          const timer = setTimeout(() => done(new WorkerStartError(`worker ${w.index} was not ready within ${timeout} ms (no listen, no ready())`)), timeout);
          const done = (err: Error | null) => {
            clearTimeout(timer);
            this.off('ready', onReady);
            this.off('exit', onExit);
            if (err) reject(err);
            else resolve();
          };
          this.on('ready', onReady);
          this.on('exit', onExit);
        }),
    );
    const lastError = new Map<MaioWorker, Error>();
    const onError = (w: MaioWorker, err: Error) => lastError.set(w, err);
    this.on('error', onError);
    try {
      await Promise.all(ready);
    } catch (err) {
      await this.stop({ timeout: 0 });
      throw err;
    } finally {
      this.off('error', onError);
    }
    // The first start joined the group in index order (runtime.ts prepare()).
    if (this.#steer) this.#kernelSlots = Array.from({ length: this.count }, (_, i) => i);
    if (this.#opts.signals) this.#installSignals();
    return this;
  }

  #spawn(index: number, initial: boolean): MaioWorker {
    const id = this.#nextId++;
    const boot: WorkerBoot = {
      index,
      id,
      count: this.count,
      module: this.#module,
      cpus: this.cpus ? [this.cpus[index % this.cpus.length]!] : null,
      steer: this.#steer,
      groupCpus: this.cpus ? [...this.cpus] : null,
      fdTable: this.#fdTable,
      ports: this.#ports,
      initial,
    };
    const thread = new Worker(path.join(__dirname, 'bootstrap.js'), {
      workerData: { [TAG]: boot, data: this.#opts.workerData },
      ...(this.#opts.env !== undefined ? { env: this.#opts.env } : {}),
      ...(this.#opts.execArgv ? { execArgv: this.#opts.execArgv } : {}),
      ...(this.#opts.resourceLimits ? { resourceLimits: this.#opts.resourceLimits } : {}),
    });
    const w = new MaioWorker(index, id, thread);
    this.#slots[index] = w;
    thread.on('message', (msg: unknown) => this.#onMessage(w, msg));
    thread.on('error', (err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', w, err);
    });
    thread.on('exit', (code: number) => this.#onExit(w, code));
    return w;
  }

  #onMessage(w: MaioWorker, msg: unknown): void {
    if (!isInternal(msg)) {
      this.emit('message', w, msg);
      return;
    }
    const m = msg as ToGroup;
    switch (m[TAG]) {
      case 'boot':
        w.threadId = m.threadId;
        w.cpus = m.cpus;
        w.pinError = m.pinError;
        if (w.state === 'starting') w.state = 'online';
        this.emit('online', w);
        break;
      case 'listening':
        w.ports.push(m.port);
        if (m.steering) this.#steering = m.steering;
        if (m.k === 0 && this.#kernelSlots && !this.#kernelSlots.includes(w.index)) {
          // A replacement joined at the end of the kernel's list: steer to it again.
          this.#kernelSlots.push(w.index);
          this.#resteer(w);
        }
        this.emit('listening', w, m.port);
        break;
      case 'steering':
        this.#steering = m.steering;
        break;
      case 'ready':
        if (w.state === 'starting' || w.state === 'online') w.state = 'ready';
        this.emit('ready', w);
        break;
      case 'stats':
      case 'metrics': {
        const p = this.#pending.get(m.req);
        if (p) p.resolve(m[TAG] === 'stats' ? m.stats : m.text);
        break;
      }
      case 'drained':
        break;
    }
  }

  #onExit(w: MaioWorker, code: number): void {
    const expected = w.state === 'stopping' || this.#stopping !== null;
    w.state = 'exited';
    w.exitCode = code;
    // Its sockets outlive the thread: reset them, so peers learn and the listener leaves the group.
    const socketsReset = resetOwnedBy(this.#fdTable, w.id);
    if (this.#slots[w.index] === w) this.#slots[w.index] = null;
    const slots = this.#kernelSlots;
    const at = slots ? slots.indexOf(w.index) : -1;
    if (slots && at >= 0 && !this.#stopping) {
      // Its listener closed: the kernel moved its last socket into the hole.
      slots[at] = slots[slots.length - 1]!;
      slots.pop();
      const live = this.workers.find((x) => x.ports.length > 0 && x.state !== 'stopping');
      if (live) this.#resteer(live);
    }
    let restartIn: number | null = null;
    if (!expected && this.#restart) {
      const r = this.#restart;
      if (performance.now() - w.startedAt >= r.resetAfter) this.#failures[w.index] = 0;
      restartIn = Math.min(r.maxDelay, r.minDelay * 2 ** this.#failures[w.index]!);
      this.#failures[w.index]!++;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (!this.#stopping) this.#spawn(w.index, false);
      }, restartIn);
      this.#timers.add(timer);
    }
    this.emit('exit', w, code, { expected, socketsReset, restartIn });
  }

  /** Sends `via` (a worker with a listener in the group) the steering table for the current order. */
  #resteer(via: MaioWorker): void {
    const slots = this.#kernelSlots!;
    const cpus = this.cpus ?? Array.from({ length: this.count }, (_, i) => i);
    via.thread.postMessage({ [TAG]: 'steer', table: Array.from(steeringTable(cpus, this.count, slots)) } satisfies ToWorker);
  }

  /** A message to every live worker. */
  broadcast(message: unknown): void {
    checkNoPoolMemory(message);
    for (const w of this.workers) w.thread.postMessage(message);
  }

  #ask<T>(w: MaioWorker, kind: 'stats' | 'metrics', timeout: number): Promise<T | undefined> {
    const req = this.#nextReq++;
    return new Promise<T | undefined>((resolve) => {
      const finish = (v: unknown) => {
        clearTimeout(timer);
        w.thread.off('exit', gone);
        this.#pending.delete(req);
        resolve(v as T | undefined);
      };
      const gone = () => finish(undefined);
      const timer = setTimeout(gone, timeout);
      this.#pending.set(req, { resolve: finish });
      w.thread.once('exit', gone);
      w.thread.postMessage({ [TAG]: kind, req } satisfies ToWorker);
    });
  }

  /** Each worker's stats and their sum (a worker that does not answer within `timeout` ms is listed in `missing`). */
  async stats(timeout = 2000): Promise<GroupStats> {
    const live = this.workers;
    const answers = await Promise.all(live.map((w) => this.#ask<WorkerStats>(w, 'stats', timeout)));
    const workers = answers.filter((a): a is WorkerStats => a !== undefined);
    const missing = new Set(Array.from({ length: this.count }, (_, i) => i));
    for (const s of workers) missing.delete(s.index);
    return { total: sumNumbers(workers), workers, missing: [...missing] };
  }

  /** The workers' Prometheus text (currentWorker().onMetrics()), samples summed over workers. */
  async metrics(timeout = 2000): Promise<string> {
    const texts = await Promise.all(this.workers.map((w) => this.#ask<string>(w, 'metrics', timeout)));
    return sumPrometheus(texts.filter((t): t is string => typeof t === 'string'));
  }

  /**
   * Graceful stop: every worker closes its listeners (new connections are
   * refused once all have), waits for its open connections to end and its
   * onStop hooks, then ends. After `timeout` ms (default 10000) the rest are
   * terminated and their connections reset. No restarts from here on.
   */
  stop(options: { timeout?: number } = {}): Promise<StopResult> {
    if (this.#stopping) return this.#stopping;
    const timeout = options.timeout ?? 10_000;
    checkMs('timeout', timeout);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#removeSignals();
    const live = this.workers;
    this.#stopping = (async () => {
      let drained = 0;
      let terminated = 0;
      await Promise.all(
        live.map(async (w) => {
          if (w.state === 'exited') return;
          const exited = new Promise<void>((resolve) => w.thread.once('exit', () => resolve()));
          w.state = 'stopping';
          w.thread.postMessage({ [TAG]: 'stop' } satisfies ToWorker);
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeout)));
          const how = await Promise.race([exited.then(() => 'exited' as const), late]);
          clearTimeout(timer);
          if (how === 'late') {
            terminated++;
            await w.thread.terminate();
            await exited;
          } else drained++;
        }),
      );
      this.emit('stopped');
      return { drained, terminated };
    })();
    return this.#stopping;
  }

  #installSignals(): void {
    let signalled = false;
    const handler = () => {
      if (signalled) {
        for (const w of this.workers) void w.thread.terminate();
        return;
      }
      signalled = true;
      void this.stop({ timeout: this.#opts.stopTimeout ?? 10_000 });
    };
    this.#signalHandler = handler;
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  }

  #removeSignals(): void {
    // Kept until the group ends, so that a second signal still terminates: removed in 'stopped'.
    const h = this.#signalHandler;
    if (!h) return;
    this.once('stopped', () => {
      process.off('SIGTERM', h);
      process.off('SIGINT', h);
    });
  }
}

function checkMs(what: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer (ms), got ${String(v)}`);
}

function resolveModule(m: unknown): string {
  let p: string;
  if (m instanceof URL) p = fileURLToPath(m);
  else if (typeof m === 'string' && m.startsWith('file:')) p = fileURLToPath(m);
  else if (typeof m === 'string' && m.length > 0) p = path.resolve(m);
  else throw new InvalidArgumentError('module must be a path or a file: URL');
  if (!fs.existsSync(p)) throw new InvalidArgumentError(`module ${p} does not exist`);
  return p;
}

/**
 * Starts `count` worker threads running `module`, each with its own ring and
 * pool; their servers share one address (SO_REUSEPORT; listen(0) shares one
 * port). Resolves when every worker is ready (listening, or ready() called);
 * rejects with WorkerStartError (and stops the others) if one is not.
 */
export function startWorkers(options: StartWorkersOptions): Promise<WorkerGroup> {
  let group: WorkerGroup;
  try {
    group = new WorkerGroup(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return group.start();
}
