// The UDP relay scenario: one flow of datagrams through a relay over loopback.
//   C sender (udp_send --mode gso, load CPU) -> the contender's relay (role udp-relay, server
//   CPU) -> C receiver (udp_recv --mode gro, load CPU).
// The receiver marks the window (from its first datagram: warm-up, then duration) and counts
// what arrives in it: that is the figure. The relay's CPU is sampled at the receiver's marks.
// When the window is over the harness stops the sender (its totals give the loss); the receiver
// ends by itself once nothing came for --idle-ms. A contender without a relay command is the
// direct reference: the sender straight into the receiver, no process in between.
import * as path from 'node:path';
import { BenchProcessError, Child, sleep } from './proc';
import { HOST, LOAD_CPU, SERVER_CPU, positive, runBudgetMs, sampleFrom, spawnOpts, startServer, watchPhases, type RunContext } from './measure';
import { lossOf, parseTotals, type Totals } from './udp';
import type { Contender, RunSample } from './types';

const READY_TIMEOUT_MS = 15000;
/** A relay that passes nothing on within this long after the sender started is broken. */
const FIRST_DATAGRAM_MS = 5000;
/** The receiver's end: no datagram for this long after its window (the sender has stopped). */
const IDLE_MS = 500;

/** What udp_recv prints at the end of a windowed run (one JSON line). */
export interface ReceiverResult {
  /** datagrams and bytes in the window, and its length */
  datagrams: number;
  bytes: number;
  seconds: number;
  /** everything it got, from the first datagram to the end */
  total_datagrams: number;
  total_bytes: number;
}

/** The figures of one run: delivered in the receiver's window, loss over the whole run. */
export interface RelayFigures {
  dps: number;
  gbps: number;
  /** GB delivered in the window (the relay's CPU is divided by it) */
  windowGB: number;
  sent: number;
  received: number;
  loss: number;
}

/**
 * Datagrams/s and Gbit/s delivered in the receiver's window; loss = 1 - all it received / all
 * the sender sent. Nothing delivered, or more received than sent, is a broken run.
 */
export function relayFigures(r: ReceiverResult, sent: Totals, tail: string): RelayFigures {
  if (!(r.seconds > 0)) throw new BenchProcessError(`the receiver's window is ${r.seconds} s`, tail);
  const loss = lossOf(sent, { datagrams: r.total_datagrams, bytes: r.total_bytes }, tail);
  const dps = positive('datagrams/s delivered', r.datagrams / r.seconds, tail);
  return { dps, gbps: (r.bytes * 8) / r.seconds / 1e9, windowGB: r.bytes / 1e9, sent: sent.datagrams, received: r.total_datagrams, loss };
}

function receiverResult(child: Child): ReceiverResult {
  const line = [...child.stdout].reverse().find((l) => l.trim().startsWith('{'));
  if (!line) throw new BenchProcessError('udp_recv printed no JSON result', child.output());
  return JSON.parse(line) as ReceiverResult;
}

/** The sender (udp_send --mode gso, one flow of 1,400 B datagrams) until stopped; `rate` paces it. */
function senderArgv(ctx: RunContext, port: number): string[] {
  const rate = ctx.scenario.rate;
  return [path.join(ctx.env.buildDir, 'udp_send'), '--port', String(port), '--host', HOST, '--mode', 'gso', '--size', '1400', ...(rate ? ['--rate', String(rate)] : [])];
}

export async function runUdpRelay(ctx: RunContext, c: Contender): Promise<RunSample> {
  const { env, timing, scenario } = ctx;
  let recv: Child | undefined;
  let relay: Child | undefined;
  let sender: Child | undefined;
  try {
    const argv = [path.join(env.buildDir, 'udp_recv'), '--port', '0', '--host', HOST, '--mode', 'gro', '--warmup', String(timing.warmup), '--duration', String(timing.duration), '--idle-ms', String(IDLE_MS)];
    recv = new Child(argv, spawnOpts(ctx, 'udp_recv (load)', LOAD_CPU));
    const r = recv;
    const recvPort = Number((await r.waitLine(/^listening (\d+)/, READY_TIMEOUT_MS))[1]);
    let target = recvPort;
    const relayCmd = c.cmd[scenario.role];
    if (relayCmd) {
      const started = await startServer(ctx, c, relayCmd(env, { port: 0, host: HOST, upstream: recvPort }), SERVER_CPU);
      relay = started.child;
      if (!Number.isFinite(started.port)) throw new BenchProcessError(`${c.id} did not print its port`, relay.output());
      target = started.port;
    }
    const rl = relay;
    // The receiver's marks: the relay's CPU there (none for direct), and whether the window began and ended.
    const marks = watchPhases(r, () => rl?.pid);
    const phases = new Set<string>();
    r.onStderrLine((line) => {
      const m = /^phase (\w+)/.exec(line);
      if (m) phases.add(m[1]);
    });
    sender = new Child(senderArgv(ctx, target), spawnOpts(ctx, 'udp_send (load)', LOAD_CPU));
    const s = sender;
    const started = Date.now();
    const deadline = started + runBudgetMs(ctx);
    const relayOut = () => (rl ? `\n${rl.output()}` : '');
    while (!phases.has('done')) {
      if (rl && !rl.alive) throw new BenchProcessError(`${c.id} relay exited (code ${rl.exitCode}) during the run`, rl.output());
      if (!s.alive) throw new BenchProcessError(`udp_send exited (code ${s.exitCode}) before the window ended`, s.output());
      if (!r.alive) throw new BenchProcessError(`udp_recv exited (code ${r.exitCode}) before the window ended`, r.output());
      if (!phases.has('warmup') && Date.now() - started > FIRST_DATAGRAM_MS) {
        throw new BenchProcessError(`${c.id}: no datagram reached the receiver within ${FIRST_DATAGRAM_MS} ms`, s.output() + relayOut());
      }
      if (Date.now() > deadline) throw new BenchProcessError(`${c.id}: the window did not end in time`, r.output() + relayOut());
      await sleep(20);
    }
    await s.kill(3000);
    const sent = parseTotals(s.stderr);
    if (!sent) throw new BenchProcessError('udp_send printed no totals', s.output());
    // What the relay still holds drains into the receiver, which ends after IDLE_MS of quiet.
    const code = await r.waitExit(READY_TIMEOUT_MS);
    if (code !== 0) throw new BenchProcessError(`udp_recv exited with code ${code}`, r.output());
    if (rl && !rl.alive) throw new BenchProcessError(`${c.id} relay exited (code ${rl.exitCode}) during the run`, rl.output());
    const f = relayFigures(receiverResult(r), sent, r.output() + relayOut());
    const m0 = marks.get('measure');
    const m1 = marks.get('done');
    const raw = { dps: f.dps, gbps: f.gbps, sent: f.sent, received: f.received, loss: f.loss, ...(scenario.rate ? { offeredDps: scenario.rate } : {}) };
    if (!rl) return { round: ctx.round, value: f.dps, raw }; // direct: no relay, so no relay CPU or memory
    if (!m0 || !m1) throw new BenchProcessError('udp_recv did not mark its measured window', r.output());
    return sampleFrom(ctx, f.dps, f.windowGB, m1.cpu - m0.cpu, m1.peak, { raw });
  } finally {
    await sender?.kill();
    await relay?.kill();
    await recv?.kill();
  }
}
