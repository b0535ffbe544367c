// The UDP scenarios: one flow of datagrams over loopback, counted at both ends.
//   udp-recv: the contender receives (role udp-sink, on the server CPU); the C sender
//             (udp_send --mode gso, the fastest sender) on the load CPU marks the window.
//   udp-send: the contender sends (role udp-send, on the server CPU) into the C receiver
//             (udp_recv --mode gro, the fastest receiver) on the load CPU, which marks the window
//             and counts what arrived in it.
// Every program prints its totals as "<name>: N datagrams, B bytes ..." on stderr when it stops
// (SIGTERM or its own end); loss is 1 - received / sent over the whole run.
import * as path from 'node:path';
import { BenchProcessError, Child, sleep } from './proc';
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

/**
 * The contender receives for warm-up + duration seconds of the C sender. Figures: datagrams
 * received over the sender's whole run / its seconds (the receiver's own counter has no window);
 * CPU is the receiver's over the sender's measured window, per GB received in that window at
 * the run's mean rate.
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
    load = new Child(
      where.sender([udpTool(ctx, 'udp_send'), '--port', String(port), '--host', where.host, '--mode', 'gso', '--warmup', String(timing.warmup), '--duration', String(timing.duration)]),
      spawnOpts(ctx, 'udp_send (load)', LOAD_CPU),
    );
    const r0 = recv;
    const marks = watchPhases(load, () => r0.pid);
    const code = await load.waitExit(runBudgetMs(ctx));
    if (code !== 0) throw new BenchProcessError(`udp_send exited with code ${code}`, load.output());
    if (!recv.alive) throw new BenchProcessError(`${c.id} receiver died during the run`, recv.output());
    const r = json(load, 'udp_send');
    await sleep(DRAIN_MS);
    const m0 = marks.get('measure');
    const m1 = marks.get('done');
    if (!m0 || !m1) throw new BenchProcessError('udp_send did not mark its measured window', load.output());
    const got = await stopAndCount(recv, c.id);
    const sent = { datagrams: r.sent_datagrams, bytes: r.sent_bytes };
    const loss = lossOf(sent, got, recv.output());
    const dps = got.datagrams / r.seconds;
    positive('datagrams/s', dps, recv.output());
    const windowBytes = (got.bytes * r.window_seconds) / r.seconds;
    return sampleFrom(ctx, dps, windowBytes / 1e9, m1.cpu - m0.cpu, m1.peak, {
      raw: { dps, gbps: (got.bytes * 8) / r.seconds / 1e9, sent: sent.datagrams, received: got.datagrams, loss, seconds: r.seconds },
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
