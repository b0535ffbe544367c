/**
 * SIGHUP for `maio proxy --workers N`: the main thread re-reads the
 * configuration, checks it once, and sends it to every worker, each of which
 * hands it to its own Proxy's reload(); one stderr line says how each worker
 * took it. A worker carries the generation of the configuration it runs: a
 * replacement starts with the one in force (workerData at its start), and one
 * that started while a reload was under way says so and is sent the new one.
 * The TCP proxy and the UDP relay (`--udp`) share it: options are whatever
 * the relay's reload() takes, with a `listen` that cannot change.
 */
import { workerData } from 'node:worker_threads';
import type { MaioWorker, WorkerGroup } from '../workers/group';
import type { WorkerContext } from '../workers/runtime';
import { fmtHostPort } from '../gateway/proxy-options';

/** The key of this protocol's messages (the group passes on messages without maio's own tag). */
const KEY = 'maioProxyReload';

/** What a reload carries: a proxy's options, of which listen cannot change. */
export interface ReloadableOptions {
  listen: Parameters<typeof fmtHostPort>[0];
}

/** What a worker of the group is started with (workerData.proxy). */
export interface ProxyWorkerData<O = ReloadableOptions> {
  options: O;
  generation: number;
}

/** The worker's relay as reloads see it (a Proxy, a UdpProxy). */
export interface ReloadTarget<O> {
  reload(options: O): void;
  /** upstreams new connections (flows) are given */
  upstreams(): number;
  /** connections (sessions) open now */
  open(): number;
}

type ToWorker = { [KEY]: 'reload'; seq: number; generation: number; options: ReloadableOptions };
type ToMain =
  | { [KEY]: 'hello'; generation: number }
  | { [KEY]: 'reloaded'; seq: number; ok: boolean; error: string; upstreams: number; connections: number };

const isOurs = (m: unknown): m is Record<string, unknown> => typeof m === 'object' && m !== null && typeof (m as Record<string, unknown>)[KEY] === 'string';

/** In a worker: the configuration the main thread started it with, or null (not started by `maio proxy --workers`). */
export function workerProxyData<O = ReloadableOptions>(): ProxyWorkerData<O> | null {
  const d = (workerData as { proxy?: ProxyWorkerData<O> } | null)?.proxy;
  return d && typeof d === 'object' ? d : null;
}

/** In a worker: take reloads from the main thread, answer each, and say which configuration this worker runs. */
export function serveWorkerReloads<O>(proxy: ReloadTarget<O>, worker: WorkerContext, generation: number): void {
  worker.on('message', (m) => {
    if (!isOurs(m) || m[KEY] !== 'reload') return;
    const r = m as ToWorker;
    let error = '';
    try {
      proxy.reload(r.options as O);
    } catch (err) {
      error = (err as Error).message;
    }
    worker.send({ [KEY]: 'reloaded', seq: r.seq, ok: error === '', error, upstreams: proxy.upstreams(), connections: proxy.open() } satisfies ToMain);
  });
  worker.send({ [KEY]: 'hello', generation } satisfies ToMain);
}

/** ms a worker has to answer a reload before the report calls it silent. */
const ANSWER_MS = 5000;

/** The main thread's side: the configuration in force, its generation, and the reload to every worker. */
export class WorkerReloads<O extends ReloadableOptions = ReloadableOptions> {
  #options: O;
  #generation = 1;
  #seq = 1;
  /** workers that said which configuration they run, and its generation */
  readonly #announced = new Map<MaioWorker, number>();
  readonly #waiting = new Map<number, Map<MaioWorker, (a: ToMain & { [KEY]: 'reloaded' }) => void>>();
  /** reloads the main thread refused (never sent to a worker), for the summed metrics */
  refused = 0;

  constructor(
    options: O,
    readonly group: WorkerGroup,
    /** what an open unit is called in the report line ('connection', 'session') */
    readonly openNoun = 'connection',
  ) {
    this.#options = options;
    group.on('message', (w, m) => this.#onMessage(w, m));
    group.on('exit', (w) => {
      this.#announced.delete(w);
      for (const waiting of this.#waiting.values()) waiting.get(w)?.({ [KEY]: 'reloaded', seq: 0, ok: false, error: 'exited', upstreams: 0, connections: 0 });
    });
  }

  /** workerData.proxy for a worker starting now. */
  data(): { proxy: ProxyWorkerData<O> } {
    return { proxy: { options: this.#options, generation: this.#generation } };
  }

  #onMessage(w: MaioWorker, m: unknown): void {
    if (!isOurs(m)) return;
    const msg = m as ToMain;
    if (msg[KEY] === 'hello') {
      this.#announced.set(w, msg.generation);
      // Started with an older configuration than the one in force: it gets this one now.
      if (msg.generation < this.#generation) void this.#send(w, this.#seq++).then((a) => this.#report([[w, a]]));
    } else if (msg[KEY] === 'reloaded') {
      this.#waiting.get(msg.seq)?.get(w)?.(msg);
    }
  }

  #send(w: MaioWorker, seq: number): Promise<ToMain & { [KEY]: 'reloaded' }> {
    const generation = this.#generation;
    let waiting = this.#waiting.get(seq);
    if (!waiting) this.#waiting.set(seq, (waiting = new Map()));
    const table = waiting;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ [KEY]: 'reloaded', seq, ok: false, error: `no answer within ${ANSWER_MS} ms`, upstreams: 0, connections: 0 }), ANSWER_MS);
      const done = (a: ToMain & { [KEY]: 'reloaded' }) => {
        clearTimeout(timer);
        table.delete(w);
        if (table.size === 0) this.#waiting.delete(seq);
        if (a.ok) this.#announced.set(w, generation);
        resolve(a);
      };
      table.set(w, done);
      w.send({ [KEY]: 'reload', seq, generation, options: this.#options } satisfies ToWorker);
    });
  }

  /**
   * Takes `next` (already checked by the caller's build, as at start) for
   * every worker, or refuses it with one stderr line if it changes what a
   * reload cannot change. Resolves when every worker has answered.
   */
  async reload(build: () => O): Promise<void> {
    let next: O;
    try {
      next = build();
      if (fmtHostPort(next.listen) !== fmtHostPort(this.#options.listen)) {
        throw new Error(`listen cannot change on reload (${fmtHostPort(this.#options.listen)} -> ${fmtHostPort(next.listen)}); restart the proxy for a new address`);
      }
    } catch (err) {
      this.refused++;
      process.stderr.write(`maio proxy: reload refused: ${(err as Error).message} (the running configuration stays in every worker)\n`);
      return;
    }
    this.#options = next;
    this.#generation++;
    const seq = this.#seq++;
    // Workers that have not said hello yet started with the old generation or the new one: the hello settles it.
    const live = this.group.workers.filter((w) => this.#announced.has(w));
    const answers = await Promise.all(live.map(async (w) => [w, await this.#send(w, seq)] as const));
    this.#report(answers, this.group.count);
  }

  #report(answers: readonly (readonly [MaioWorker, ToMain & { [KEY]: 'reloaded' }])[], count?: number): void {
    const ok = answers.filter(([, a]) => a.ok);
    const each = answers.map(([w, a]) => (a.ok ? `worker ${w.index} ok (${a.upstreams} upstream(s), ${a.connections} open ${this.openNoun}(s) kept)` : `worker ${w.index} refused: ${a.error}`));
    const starting = count !== undefined && answers.length < count ? `; ${count - answers.length} starting with it` : '';
    process.stderr.write(`maio proxy: reloaded in ${ok.length}/${answers.length} worker(s)${starting}: ${each.join('; ')}\n`);
  }

  /** Prometheus text of what the main thread counts itself (summed with the workers'). */
  metrics(): string {
    return [
      '# HELP maio_proxy_reloads_total Configuration reloads, taken or refused.',
      '# TYPE maio_proxy_reloads_total counter',
      `maio_proxy_reloads_total{result="refused"} ${this.refused}`,
      '',
    ].join('\n');
  }
}
