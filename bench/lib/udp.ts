// The UDP scenarios: one flow of datagrams over loopback, counted at both ends.
//   udp-recv: the contender receives (role udp-sink, on the server CPU); the C sender
//             (udp_send --mode gso, the fastest sender, paced by Scenario.rate if set) on the
//             load CPU marks the window, and the receiver's running totals are read at its edges.
//   udp-send: the contender sends (role udp-send, on the server CPU) into the C receiver
//             (udp_recv --mode gro, the fastest receiver) on the load CPU, which marks the window
//             and counts what arrived in it.
// Every program prints its totals as "<name>: N datagrams, B bytes ..." on stderr when it stops
// (SIGTERM or its own end); a receiver also prints them on SIGUSR2 and goes on.
import * as path from 'node:path';
import { BenchProcessError, Child, programPid, sleep } from './proc';
import {
  HOST,
  LOAD_CPU,
  SERVER_CPU,
  SkipContender,
  positive,
  runBudgetMs,
  sampleFrom,
  spawnOpts,
  startServer,
  watchPhases,
  type RunContext,
} from './measure';
import { deleteVeth, inNs, makeVeth, type VethPair } from './netns';
import type { Contender, RunSample } from './types';

const READY_TIMEOUT_MS = 15000;
/** Time the receiver gets to drain its queue after the sender stopped. */
const DRAIN_MS = 300;
/** Time a receiver gets to print its running totals after SIGUSR2. */
const TOTALS_TIMEOUT_MS = 5000;

export interface Totals {
  datagrams: number;
  bytes: number;
  /** the program's own running time, when it prints one ("in S s") */
  seconds?: number;
}

/** The last "N datagrams, B bytes[ in S s]" in a program's output (its totals), or null. */
export function parseTotals(text: string): Totals | null {
  const all = [...text.matchAll(/(\d+) datagrams, (\d+) bytes(?: in ([\d.]+) s)?/g)];
  const m = all[all.length - 1];
  if (!m) return null;
  return { datagrams: Number(m[1]), bytes: Number(m[2]), ...(m[3] !== undefined ? { seconds: Number(m[3]) } : {}) };
}

/** 1 - received / sent; a receiver that got more than was sent means the counting is broken. */
export function lossOf(sent: Totals, received: Totals, tail: string): number {
  if (sent.datagrams <= 0) throw new BenchProcessError('the sender sent nothing', tail);
  if (received.datagrams > sent.datagrams) {
    throw new BenchProcessError(`received ${received.datagrams} datagrams but only ${sent.datagrams} were sent: the counts are wrong`, tail);
  }
  return 1 - received.datagrams / sent.datagrams;
}

/**
 * Where the two ends run: both on loopback, or (Scenario.veth) the sender in namespace a and the
 * receiver in namespace b of a fresh veth pair. `host` is the receiver's address.
 */
interface Ends {
  host: string;
  sender(argv: string[]): string[];
  receiver(argv: string[]): string[];
  close(): void;
}

function ends(ctx: RunContext): Ends {
  const ip = ctx.env.ip;
  if (!ctx.scenario.veth) return { host: HOST, sender: (a) => a, receiver: (a) => a, close: () => undefined };
  if (!ip) throw new SkipContender('`ip` (iproute2) not installed: no network namespaces');
  const pair: VethPair = makeVeth(ip);
  return {
    host: pair.b.addr,
    sender: (a) => inNs(ip, pair.a.ns, a),
    receiver: (a) => inNs(ip, pair.b.ns, a),
    close: () => deleteVeth(ip, pair),
  };
}

function udpTool(ctx: RunContext, name: string): string {
  return path.join(ctx.env.buildDir, name);
}

function json(child: Child, what: string): Record<string, number> {
  const line = [...child.stdout].reverse().find((l) => l.trim().startsWith('{'));
  if (!line) throw new BenchProcessError(`${what} printed no JSON result`, child.output());
  return JSON.parse(line) as Record<string, number>;
}

async function stopAndCount(child: Child, who: string): Promise<Totals> {
  await child.kill(3000);
  const t = parseTotals(child.stderr);
  if (!t) throw new BenchProcessError(`${who} printed no totals`, child.output());
  return t;
}

/** A receiver's totals lines as they come: one per SIGUSR2 (running totals), one when it stops. */
class TotalsLines {
  readonly seen: Array<Totals & { at: number }> = [];
  private waiters: Array<() => void> = [];

  constructor(
    private readonly child: Child,
    private readonly who: string,
  ) {
    child.onStderrLine((line) => {
      const t = parseTotals(line);
      if (!t) return;
      this.seen.push({ ...t, at: performance.now() });
      this.wake();
    });
    void child.exited.then(() => this.wake());
  }

  /** Totals line number `index` (from 0), waited for up to TOTALS_TIMEOUT_MS. */
  async at(index: number): Promise<Totals & { at: number }> {
    const deadline = Date.now() + TOTALS_TIMEOUT_MS;
    while (this.seen.length <= index) {
      if (!this.child.alive) {
        throw new BenchProcessError(`${this.who} exited (code ${this.child.exitCode}) instead of printing its running totals on SIGUSR2`, this.child.output());
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new BenchProcessError(`${this.who} printed no running totals within ${TOTALS_TIMEOUT_MS} ms of SIGUSR2`, this.child.output());
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.seen[index];
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}

interface Asked {
  /** which of the receiver's totals lines answers */
  index: number;
  /** when the signal went out (performance.now()) */
  at: number;
}

/**
 * At the sender's "phase measure" and "phase done": SIGUSR2 to the receiver (the program's own
 * pid, not a wrapper's), remembering which of its totals lines will be the answer. Registered
 * after watchPhases, so the receiver's CPU is sampled first.
 */
function askAtEdges(load: Child, pid: number, lines: TotalsLines): Map<string, Asked> {
  const asked = new Map<string, Asked>();
  let next = 0;
  load.onStderrLine((line) => {
    const m = /^phase (measure|done)\b/.exec(line);
    if (!m) return;
    const index = Math.max(next, lines.seen.length);
    next = index + 1;
    asked.set(m[1], { index, at: performance.now() });
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      // gone: TotalsLines.at says so
    }
  });
  return asked;
}

/**
 * The contender receives for warm-up + duration seconds of the C sender (at Scenario.rate
 * datagrams/s, or as fast as it sends). At the sender's window edges the harness sends the
 * receiver SIGUSR2 and reads its running totals: the figure is what it received between the two
 * / the sender's window seconds, and CPU is the receiver's over the same window per GB received
 * in it, as every other scenario measures after its warm-up. A receiver that drops while its code
 * is still cold (a JIT) is not charged for it in the figure; raw keeps the whole run too (loss,
 * received, rate), so start-up loss stays visible.
 */
export async function runUdpRecv(ctx: RunContext, c: Contender): Promise<RunSample> {
  const { env, timing, scenario } = ctx;
  const where = ends(ctx);
  let recv: Child | undefined;
  let load: Child | undefined;
  try {
    const started = await startServer(ctx, c, where.receiver(c.cmd[scenario.role]!(env, { port: 0, host: where.host })), SERVER_CPU);
    recv = started.child;
    const port = started.port;
    if (!Number.isFinite(port)) throw new BenchProcessError(`${c.id} did not print its port`, recv.output());
    // Ready, so past its wrappers (taskset, `ip netns exec`): the pid to sample and to signal.
    const pid = programPid(recv.pid);
    const lines = new TotalsLines(recv, c.id);
    const pace = scenario.rate ? ['--rate', String(scenario.rate)] : [];
    load = new Child(
      where.sender([udpTool(ctx, 'udp_send'), '--port', String(port), '--host', where.host, '--mode', 'gso', ...pace, '--warmup', String(timing.warmup), '--duration', String(timing.duration)]),
      spawnOpts(ctx, 'udp_send (load)', LOAD_CPU),
    );
    const marks = watchPhases(load, () => pid);
    const asked = askAtEdges(load, pid, lines);
    const code = await load.waitExit(runBudgetMs(ctx));
    if (code !== 0) throw new BenchProcessError(`udp_send exited with code ${code}`, load.output());
    const r = json(load, 'udp_send');
    const m0 = marks.get('measure');
    const m1 = marks.get('done');
    const a0 = asked.get('measure');
    const a1 = asked.get('done');
    if (!m0 || !m1 || !a0 || !a1) throw new BenchProcessError('udp_send did not mark its measured window', load.output());
    const w0 = await lines.at(a0.index);
    const w1 = await lines.at(a1.index);
    if (!recv.alive) throw new BenchProcessError(`${c.id} receiver died during the run`, recv.output());
    await sleep(DRAIN_MS);
    const got = await stopAndCount(recv, c.id);
    const sent = { datagrams: r.sent_datagrams, bytes: r.sent_bytes };
    const lossWhole = lossOf(sent, got, recv.output());
    const windowReceived = w1.datagrams - w0.datagrams;
    const windowBytes = w1.bytes - w0.bytes;
    if (windowReceived < 0 || got.datagrams < w1.datagrams) throw new BenchProcessError(`${c.id}'s running totals went backwards`, recv.output());
    // Within the window the counts can be off by what crossed while a signal was on its way
    // (totalsLatencyMs): datagrams queued when it opened count in it, so loss may dip under 0.
    const loss = 1 - windowReceived / r.window_datagrams;
    const dps = positive('datagrams/s', windowReceived / r.window_seconds, recv.output());
    return sampleFrom(ctx, dps, windowBytes / 1e9, m1.cpu - m0.cpu, m1.peak, {
      raw: {
        dps,
        gbps: (windowBytes * 8) / r.window_seconds / 1e9,
        loss,
        windowSent: r.window_datagrams,
        windowReceived,
        windowSeconds: r.window_seconds,
        // the sender's own pace in the window: under Scenario.rate when its CPU is short
        sentDps: r.window_datagrams / r.window_seconds,
        ...(scenario.rate ? { rate: scenario.rate } : {}),
        sent: sent.datagrams,
        received: got.datagrams,
        receivedBytes: got.bytes,
        lossWhole,
        dpsWhole: got.datagrams / r.seconds,
        seconds: r.seconds,
        totalsLatencyMs: Math.max(w0.at - a0.at, w1.at - a1.at),
      },
    });
  } finally {
    await load?.kill();
    await recv?.kill();
    where.close();
  }
}

/**
 * The contender sends into the C receiver, which marks the window (from its first datagram:
 * warm-up, then duration) and counts what arrives. The figure is the sender's own: datagrams it
 * sent over its whole run / its own seconds (what the receiver got depends on the receiver too;
 * it is in raw.deliveredDps and the loss). CPU is the sender's over the window, per GB sent in
 * it at the run's mean rate.
 */
export async function runUdpSend(ctx: RunContext, c: Contender): Promise<RunSample> {
  const { env, timing, scenario } = ctx;
  const where = ends(ctx);
  let load: Child | undefined;
  let sender: Child | undefined;
  try {
    load = new Child(
      where.receiver([udpTool(ctx, 'udp_recv'), '--port', '0', '--host', where.host, '--mode', 'gro', '--warmup', String(timing.warmup), '--duration', String(timing.duration), '--idle-ms', '500']),
      spawnOpts(ctx, 'udp_recv (load)', LOAD_CPU),
    );
    const port = Number((await load.waitLine(/^listening (\d+)/, READY_TIMEOUT_MS))[1]);
    // The harness stops the sender when the window is over; its own duration is a safety net.
    const argv = where.sender(c.cmd[scenario.role]!(env, { port, host: where.host, duration: timing.warmup + timing.duration + (scenario.slack ?? 0) + 15 }));
    sender = new Child(argv, spawnOpts(ctx, `${c.id} sender`, SERVER_CPU));
    const s = sender;
    const marks = watchPhases(load, () => s.pid);
    const deadline = Date.now() + runBudgetMs(ctx);
    while (!marks.has('done')) {
      if (!s.alive) {
        if (!marks.has('warmup') && c.earlyExitReason) throw new SkipContender(c.earlyExitReason);
        throw new BenchProcessError(`${c.id} sender exited (code ${s.exitCode}) before the window ended`, s.output());
      }
      if (!load.alive) throw new BenchProcessError('udp_recv exited before the window ended', load.output());
      if (Date.now() > deadline) throw new BenchProcessError(`${c.id}: the window did not end in time`, load.output() + '\n' + s.output());
      await sleep(20);
    }
    const sent = await stopAndCount(s, c.id);
    const code = await load.waitExit(READY_TIMEOUT_MS);
    if (code !== 0) throw new BenchProcessError(`udp_recv exited with code ${code}`, load.output());
    const r = json(load, 'udp_recv');
    const got = { datagrams: r.total_datagrams, bytes: r.total_bytes };
    const loss = lossOf(sent, got, load.output());
    if (!sent.seconds) throw new BenchProcessError(`${c.id} printed no running time with its totals`, s.output());
    const dps = positive('datagrams/s', sent.datagrams / sent.seconds, s.output());
    const m0 = marks.get('measure')!;
    const m1 = marks.get('done')!;
    const windowBytes = (sent.bytes / sent.seconds) * r.seconds;
    return sampleFrom(ctx, dps, windowBytes / 1e9, m1.cpu - m0.cpu, m1.peak, {
      raw: { dps, gbps: (sent.bytes * 8) / sent.seconds / 1e9, sent: sent.datagrams, received: got.datagrams, loss, seconds: sent.seconds, deliveredDps: r.dps, deliveredGbps: r.gbps },
    });
  } finally {
    await sender?.kill();
    await load?.kill();
    where.close();
  }
}
