/**
 * The worker side of a group: what a module running in a maio worker sees as
 * currentWorker(), the listen hook that puts its servers in the group's
 * reuseport set, and the answers to the group's stats and stop requests.
 */
import { parentPort } from 'node:worker_threads';
import { backend } from '../backend';
import { TypedEmitter } from '../core/typed-events';
import { setListenHook, type DatagramListener } from '../net/listen-hook';
import type { Server } from '../net/server';
import type { Socket } from '../net/socket';
import { stats as netStats } from '../net/stats';
import { FdRecorder } from './fd-table';
import { TAG, checkNoPoolMemory, isInternal, type ToGroup, type ToWorker, type WorkerBoot, type WorkerStats } from './protocol';
import { attachCpuSteering, steeringTable, type SteeringState } from './steering';
import { threadAffinity, threadId } from './cpus';

/** How long a listen waits for the group's port or its turn to join (then goes on alone). */
const JOIN_WAIT_MS = 5000;

export interface WorkerContextEvents {
  /** a message the group sent with group.send() / worker.send() */
  message: [message: unknown];
  /** the group asked this worker to stop: its listeners are closing */
  stop: [];
}

/** What a module running in a maio worker thread knows about itself (currentWorker()). */
export class WorkerContext extends TypedEmitter<WorkerContextEvents> {
  /** this worker's place in the group, 0..count-1 (kept by its replacement) */
  readonly index: number;
  /** unique per start: a replacement gets a new id */
  readonly id: number;
  /** workers in the group */
  readonly count: number;
  /** the kernel's id of this thread (/proc/self/task/<threadId>) */
  readonly threadId: number;
  /** CPUs this worker was pinned to, or null */
  readonly pinned: number[] | null;
  /** CPU steering as this worker attached it (worker 0), else null */
  steering: SteeringState | null = null;
  readonly #boot: WorkerBoot;
  readonly #fds: FdRecorder;
  readonly #servers = new Set<Server>();
  /** datagram sockets that serve for the group (a UDP relay's listening socket) */
  readonly #datagrams = new Set<DatagramListener>();
  /** listener fds of the group's main port (the first listen call), for steering */
  readonly #steerFds: number[] = [];
  #listenCalls = 0;
  #accepted = 0;
  #ready = false;
  #stopping = false;
  #onStats: (() => unknown) | null = null;
  #onMetrics: (() => string | Promise<string>) | null = null;
  readonly #onStop: (() => unknown)[] = [];

  /** @internal */
  constructor(boot: WorkerBoot, pinned: number[] | null) {
    super();
    this.#boot = boot;
    this.index = boot.index;
    this.id = boot.id;
    this.count = boot.count;
    this.threadId = threadId();
    this.pinned = pinned;
    this.#fds = new FdRecorder(boot.fdTable, boot.id);
  }

  /** Tells the group this worker is ready (a listen does it too): startWorkers() waits for every worker. */
  ready(): void {
    if (this.#ready) return;
    this.#ready = true;
    post({ [TAG]: 'ready' });
  }

  /** A message to the group ('message' event there). Pool buffers are refused (BufferCrossThreadError). */
  send(message: unknown): void {
    checkNoPoolMemory(message);
    parentPort!.postMessage(message);
  }

  /** What this worker adds to group.stats() (any structured-cloneable value; numbers are summed). */
  onStats(provider: () => unknown): void {
    this.#onStats = provider;
  }

  /** Prometheus text this worker adds to group.metrics() (samples are summed over workers). */
  onMetrics(provider: () => string | Promise<string>): void {
    this.#onMetrics = provider;
  }

  /** Runs when the group stops this worker, as its listeners close; awaited (with them) before the worker ends. */
  onStop(fn: () => unknown): void {
    this.#onStop.push(fn);
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  // ---- the listen hook -------------------------------------------------

  /** @internal */
  prepare(port: number): { port: number; reusePort: boolean } {
    const k = this.#listenCalls++;
    const ports = this.#boot.ports;
    if (2 * k + 1 >= ports.length) return { port, reusePort: true };
    const deadline = Date.now() + JOIN_WAIT_MS;
    // Join in index order on a first start, so that socket i of the group is worker i (CPU steering).
    if (this.#boot.initial && this.#boot.steer) {
      for (let seen; (seen = Atomics.load(ports, 2 * k + 1)) < this.index && Date.now() < deadline; ) {
        Atomics.wait(ports, 2 * k + 1, seen, Math.max(1, deadline - Date.now()));
      }
    }
    if (port !== 0) return { port, reusePort: true };
    // Port 0: worker 0 picks it, the others (and replacements) take the same one, as node:cluster does.
    const shared = Atomics.load(ports, 2 * k);
    if (shared !== 0 || (this.index === 0 && this.#boot.initial)) return { port: shared, reusePort: true };
    while (Atomics.load(ports, 2 * k) === 0 && Date.now() < deadline) Atomics.wait(ports, 2 * k, 0, Math.max(1, deadline - Date.now()));
    return { port: Atomics.load(ports, 2 * k), reusePort: true };
  }

  /** @internal */
  listened(server: Server, fd: number, port: number): void {
    this.#joined(fd, port, () => this.#track(server, fd));
  }

  /** @internal */
  listenedDatagram(socket: DatagramListener | null, fd: number, port: number): void {
    this.#joined(fd, port, () => {
      if (!socket) return;
      this.#datagrams.add(socket);
      socket.once('close', () => {
        this.#fds.forget(fd);
        const at = this.#steerFds.indexOf(fd);
        if (at >= 0) this.#steerFds.splice(at, 1);
        this.#datagrams.delete(socket);
      });
    });
  }

  /** @internal */
  ownSocket(fd: number): void {
    this.#fds.record(fd);
  }

  /** @internal */
  disownSocket(fd: number): void {
    this.#fds.forget(fd);
  }

  /** After a listen call's bind: share its port, record its fd, steer, say so to the group. */
  #joined(fd: number, port: number, track: () => void): void {
    const k = this.#listenCalls - 1;
    const ports = this.#boot.ports;
    if (fd >= 0) {
      if (k >= 0 && 2 * k + 1 < ports.length) {
        Atomics.compareExchange(ports, 2 * k, 0, port);
        Atomics.notify(ports, 2 * k);
      }
      this.#fds.record(fd);
      track();
      if (this.#boot.steer && k === 0) {
        this.#steerFds.push(fd);
        // First start: the workers joined in index order, socket i is worker i. A replacement
        // waits for the group's table (the kernel moved sockets when the old one closed).
        if (this.index === 0 && this.#boot.initial) {
          const slots = Array.from({ length: this.count }, (_, i) => i);
          this.steering = attachCpuSteering(fd, this.count, steeringTable(this.#boot.groupCpus ?? slots, this.count, slots));
        }
      }
      post({ [TAG]: 'listening', port, k, steering: this.steering });
      this.ready();
    }
    if (k >= 0 && 2 * k + 1 < ports.length) {
      Atomics.add(ports, 2 * k + 1, 1);
      Atomics.notify(ports, 2 * k + 1);
    }
  }

  /** @internal a connect() in this worker opened `fd` (a proxy's upstream): reset with the others if the thread dies */
  connecting(socket: Socket, fd: number): void {
    const fds = this.#fds;
    fds.record(fd);
    socket.once('close', () => fds.forget(fd));
  }

  #track(server: Server, fd: number): void {
    this.#servers.add(server);
    const fds = this.#fds;
    // Before the application's handlers: a handler that throws must not leave the fd unrecorded.
    server.prependListener('connection', (socket: Socket) => {
      this.#accepted++;
      const sfd = socket.fd;
      fds.record(sfd);
      socket.once('close', () => fds.forget(sfd));
    });
    server.once('close', () => {
      fds.forget(fd);
      const at = this.#steerFds.indexOf(fd);
      if (at >= 0) this.#steerFds.splice(at, 1);
      this.#servers.delete(server);
    });
  }

  // ---- requests from the group -------------------------------------------

  /** @internal */
  async handle(msg: ToWorker): Promise<void> {
    switch (msg[TAG]) {
      case 'stats': {
        const stats = await this.#stats();
        try {
          post({ [TAG]: 'stats', req: msg.req, stats });
        } catch (err) {
          // onStats gave something structured clone refuses (a function, a socket ...).
          post({ [TAG]: 'stats', req: msg.req, stats: { ...stats, app: { error: (err as Error).message } } });
        }
        break;
      }
      case 'metrics': {
        // A provider that throws gives no samples, not a dead worker.
        const text = await Promise.resolve()
          .then(() => (this.#onMetrics ? this.#onMetrics() : ''))
          .catch(() => '');
        post({ [TAG]: 'metrics', req: msg.req, text: typeof text === 'string' ? text : '' });
        break;
      }
      case 'stop':
        await this.#stop();
        break;
      case 'steer':
        for (const fd of this.#steerFds) this.steering = attachCpuSteering(fd, this.count, Int32Array.from(msg.table));
        if (this.steering) post({ [TAG]: 'steering', steering: this.steering });
        break;
    }
  }

  async #stats(): Promise<WorkerStats> {
    const s = netStats();
    const net: Record<string, number> = {};
    for (const [k, v] of Object.entries(s)) if (typeof v === 'number') net[k] = v;
    let connections = 0;
    for (const server of this.#servers) connections += server.connections;
    return {
      index: this.index,
      id: this.id,
      threadId: this.threadId,
      cpus: threadAffinity(),
      backend: backend().mode,
      listeners: [...this.#servers].filter((x) => x.listening).length + this.#datagrams.size,
      connections,
      accepted: this.#accepted,
      net,
      app: await Promise.resolve()
        .then(() => (this.#onStats ? this.#onStats() : null))
        .catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) })),
    };
  }

  /** Stop accepting, let open connections finish, run onStop hooks, end the thread. */
  async #stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.emit('stop');
    // Hooks first (a Proxy closes its own server and waits for its connections), then the rest.
    const hooks = this.#onStop.map((fn) => Promise.resolve().then(fn));
    const closed = [...this.#servers].map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));
    await Promise.allSettled([...hooks, ...closed]);
    post({ [TAG]: 'drained' });
    process.exit(0);
  }
}

function post(msg: ToGroup): void {
  parentPort!.postMessage(msg);
}

let current: WorkerContext | null = null;

/** In a maio worker thread: this worker. Elsewhere (main thread, a plain worker_threads Worker): null. */
export function currentWorker(): WorkerContext | null {
  return current;
}

/** @internal The bootstrap's set-up, before the user's module loads. */
export function installWorker(boot: WorkerBoot, pinned: number[] | null): WorkerContext {
  const ctx = new WorkerContext(boot, pinned);
  current = ctx;
  setListenHook(ctx);
  parentPort!.on('message', (msg: unknown) => {
    if (isInternal(msg)) void ctx.handle(msg as ToWorker);
    else ctx.emit('message', msg);
  });
  return ctx;
}
