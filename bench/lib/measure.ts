// One measurement: one contender, one round, in fresh processes that are gone afterwards.
import * as path from 'node:path';
import { BenchProcessError, capture, Child, cpuSeconds, freePort, treeCpuSeconds, memoryMiB, sleep } from './proc';
import type { Contender, Env, Role, RunSample, Scenario, Timing } from './types';
import { parseWrk, wrkErrors } from './wrk';
import { runUdpRecv, runUdpSend } from './udp';
import { runUdpRelay } from './udp-relay';

export const HOST = '127.0.0.1';
const READY = /^(?:listening(?: on)? (\d+)|ready)\b/i;
const READY_TIMEOUT_MS = 15000;
export const SERVER_CPU = 1;
export const LOAD_CPU = 0;

/** The contender cannot run here (not an error of the run): skip it for the rest of the scenario. */
export class SkipContender extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'SkipContender';
  }
}

export interface RunContext {
  env: Env;
  timing: Timing;
  scenario: Scenario;
  round: number;
  /** The scenario's file (Scenario.fileBytes), made by the runner. */
  file?: string;
  /** The scenario's throwaway certificate and key (Scenario.wrk.tls), made by the runner. */
  tls?: { cert: string; key: string };
}

interface Mark {
  cpu: number;
  at: number;
  rss: number;
  peak: number;
}

export function spawnOpts(ctx: RunContext, name: string, cpu: number | undefined) {
  return {
    name,
    cpu,
    nofile: ctx.scenario.fdLimit,
    cwd: ctx.env.root,
    taskset: ctx.env.taskset,
    prlimit: ctx.env.prlimit,
  };
}

export async function startServer(ctx: RunContext, c: Contender, argv: string[], cpu: number | undefined): Promise<{ child: Child; port: number }> {
  const child = new Child(argv, spawnOpts(ctx, `${c.id} (${path.basename(argv[1] ?? argv[0])})`, cpu));
  try {
    const m = await child.waitLine(c.ready ?? READY, READY_TIMEOUT_MS);
    return { child, port: m[1] ? Number(m[1]) : NaN };
  } catch (err) {
    const exitedByItself = !child.alive;
    await child.kill();
    if (exitedByItself && c.earlyExitReason) {
      const last = child.output().trim().split('\n').pop();
      throw new SkipContender(last ? `${c.earlyExitReason}: ${last}` : c.earlyExitReason);
    }
    throw err;
  }
}

function loadgenPath(env: Env): string {
  return path.join(env.buildDir, 'loadgen');
}

/** Samples the measured process at every "phase <name>" line loadgen prints on stderr. */
export function watchPhases(loadgen: Child, pid: () => number | undefined, cpuOf: (pid: number) => number = cpuSeconds): Map<string, Mark> {
  const marks = new Map<string, Mark>();
  loadgen.onStderrLine((line) => {
    const m = /^phase (\w+)/.exec(line);
    const p = pid();
    if (!m || p === undefined) return;
    const mem = memoryMiB(p);
    marks.set(m[1], { cpu: cpuOf(p), at: performance.now(), rss: mem.rss, peak: mem.peak });
  });
  return marks;
}

function lastJson(child: Child): Record<string, number> {
  for (let i = child.stdout.length - 1; i >= 0; i--) {
    const line = child.stdout[i].trim();
    if (line.startsWith('{')) return JSON.parse(line) as Record<string, number>;
  }
  throw new BenchProcessError('loadgen printed no JSON result', child.output());
}

export function runBudgetMs(ctx: RunContext): number {
  const t = ctx.timing;
  return (t.warmup + t.duration + (ctx.scenario.slack ?? 0) + 20) * 1000;
}

export function positive(name: string, v: number, tail: string): number {
  if (!Number.isFinite(v) || v <= 0) throw new BenchProcessError(`${name} is ${v}, expected a number > 0`, tail);
  return v;
}

/** Builds a sample from a window [measure, done] of the measured process. */
export function sampleFrom(ctx: RunContext, value: number, units: number, cpuS: number, peak: number, extra: Partial<RunSample>): RunSample {
  return {
    round: ctx.round,
    value,
    cpuS,
    cpuPerUnit: units > 0 ? cpuS / units : undefined,
    rssPeakMiB: peak,
    ...extra,
  };
}

async function runClient(ctx: RunContext, c: Contender): Promise<RunSample> {
  const { env, scenario } = ctx;
  const port = await freePort();
  const argv = [...c.cmd[scenario.role]!(env, { port, host: HOST }), ...(scenario.serverArgs ?? [])];
  // A server on several CPUs (echo2) is not pinned, and neither is its load.
  const { child: server, port: printed } = await startServer(ctx, c, argv, scenario.unpinned ? undefined : SERVER_CPU);
  let loadgen: Child | undefined;
  try {
    const realPort = Number.isFinite(printed) ? printed : port;
    loadgen = new Child([loadgenPath(env), ...scenario.loadgen!(ctx.timing), '--port', String(realPort)], spawnOpts(ctx, 'loadgen', scenario.unpinned ? undefined : LOAD_CPU));
    const marks = watchPhases(loadgen, () => server.pid, scenario.unpinned ? treeCpuSeconds : cpuSeconds);
    const code = await loadgen.waitExit(runBudgetMs(ctx));
    if (code !== 0) throw new BenchProcessError(`loadgen exited with code ${code}`, loadgen.output());
    if (!server.alive) throw new BenchProcessError(`${c.id} server died during the run`, server.output());
    const r = lastJson(loadgen);
    const report = scenario.serverReport ? await serverReport(server, c) : undefined;
    const mem = memoryMiB(server.pid);
    const m0 = marks.get('measure');
    const m1 = marks.get('done');
    if (!m0 || !m1) throw new BenchProcessError('loadgen did not mark its measured window', loadgen.output());
    const cpuS = m1.cpu - m0.cpu;
    const units = scenario.cpuPer === 'GB' ? (r.bytes ?? 0) / 1e9 : (r.round_trips ?? 0) / 1e6;
    const value =
      report !== undefined ? Number(report[scenario.metric.key]) : scenario.metric.key === 'rssPeakMiB' ? mem.peak : Number(r[scenario.metric.key]);
    positive(scenario.metric.label, value, loadgen.output());
    return sampleFrom(ctx, value, units, cpuS, mem.peak, {
      p50: r.p50_us,
      p99: r.p99_us,
      p999: r.p999_us,
      rssIdleMiB: marks.get('warmup')?.rss,
      raw: report !== undefined ? { ...r, server: report } : r,
    });
  } finally {
    await loadgen?.kill();
    await server.kill();
  }
}

/** The `report {json}` line a serverReport contender prints once the load generator is gone. */
async function serverReport(server: Child, c: Contender): Promise<Record<string, unknown>> {
  const m = await server.waitLine(/^report (\{.*\})\s*$/, 30000).catch((err: unknown) => {
    throw new BenchProcessError(`${c.id} printed no report: ${err instanceof Error ? err.message : String(err)}`, server.output());
  });
  return JSON.parse(m[1]) as Record<string, unknown>;
}

async function runSender(ctx: RunContext, c: Contender): Promise<RunSample> {
  const { env, scenario } = ctx;
  const loadgen = new Child([loadgenPath(env), ...scenario.loadgen!(ctx.timing), '--port', '0'], spawnOpts(ctx, 'loadgen recv', LOAD_CPU));
  let sender: Child | undefined;
  try {
    const m = await loadgen.waitLine(/^listening (\d+)/, READY_TIMEOUT_MS);
    sender = new Child(c.cmd[scenario.role]!(env, { port: Number(m[1]), host: HOST, file: ctx.file }), spawnOpts(ctx, `${c.id} sender`, SERVER_CPU));
    const s = sender;
    const marks = watchPhases(loadgen, () => s.pid);
    const first = await Promise.race([loadgen.exited.then(() => 'loadgen'), s.exited.then(() => 'sender')]);
    if (first === 'sender' && loadgen.alive && !marks.has('warmup')) {
      if (c.earlyExitReason) throw new SkipContender(c.earlyExitReason);
      throw new BenchProcessError(`${c.id} sender exited (code ${s.exitCode}) before sending`, s.output());
    }
    const code = await loadgen.waitExit(runBudgetMs(ctx));
    if (code !== 0) throw new BenchProcessError(`loadgen recv exited with code ${code}`, loadgen.output() + '\n' + s.output());
    const r = lastJson(loadgen);
    const m0 = marks.get('measure');
    const m1 = marks.get('done');
    if (!m0 || !m1) throw new BenchProcessError('loadgen did not mark its measured window', loadgen.output());
    // The sender may be gone already (the receiver closed): its peak was sampled at 'done'.
    const cpuS = m1.cpu - m0.cpu;
    positive('Gbit/s', r.gbps, loadgen.output());
    return sampleFrom(ctx, r.gbps, r.bytes / 1e9, cpuS, m1.peak, { raw: r });
  } finally {
    await sender?.kill();
    await loadgen.kill();
  }
}

/** Bytes the kernel has delivered to sockets whose local port is `port` (ss -ti bytes_received). */
async function receivedBytes(port: number): Promise<number> {
  const out = await capture(['ss', '-tinH', 'state', 'established', `( sport = :${port} )`]);
  if (out === null) throw new BenchProcessError('ss failed (is iproute2 installed?)', '');
  let sum = 0;
  for (const m of out.matchAll(/bytes_received:(\d+)/g)) sum += Number(m[1]);
  return sum;
}

async function runPair(ctx: RunContext, c: Contender): Promise<RunSample> {
  const { env, timing } = ctx;
  const port = await freePort();
  const { child: sink, port: printed } = await startServer(ctx, c, c.cmd.sink!(env, { port, host: HOST }), SERVER_CPU);
  let sender: Child | undefined;
  try {
    const realPort = Number.isFinite(printed) ? printed : port;
    sender = new Child(c.cmd.sender!(env, { port: realPort, host: HOST }), spawnOpts(ctx, `${c.id} sender`, LOAD_CPU));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await receivedBytes(realPort)) === 0) {
      if (!sender.alive || !sink.alive) {
        if (c.earlyExitReason) throw new SkipContender(c.earlyExitReason);
        throw new BenchProcessError(`${c.id}: a process exited before any byte arrived`, sender.output() + '\n' + sink.output());
      }
      if (Date.now() > deadline) throw new BenchProcessError(`${c.id}: no bytes within ${READY_TIMEOUT_MS} ms`, sender.output());
      await sleep(50);
    }
    await sleep(timing.warmup * 1000);
    const take = async () => {
      const t0 = performance.now();
      const bytes = await receivedBytes(realPort);
      const at = (t0 + performance.now()) / 2;
      return { bytes, at, cpu: cpuSeconds(sink.pid), senderCpu: cpuSeconds(sender!.pid) };
    };
    const a = await take();
    await sleep(timing.duration * 1000);
    const b = await take();
    if (!sink.alive || !sender.alive) throw new BenchProcessError(`${c.id}: a process died during the run`, sender.output() + '\n' + sink.output());
    const bytes = b.bytes - a.bytes;
    const gbps = (bytes * 8) / ((b.at - a.at) / 1000) / 1e9;
    positive('Gbit/s', gbps, sink.output());
    const mem = memoryMiB(sink.pid);
    return sampleFrom(ctx, gbps, bytes / 1e9, b.cpu - a.cpu, mem.peak, {
      senderCpuS: b.senderCpu - a.senderCpu,
      raw: { bytes, seconds: (b.at - a.at) / 1000, gbps },
    });
  } finally {
    await sender?.kill();
    await sink.kill();
  }
}

/** Waits until something listens on `port` (HAProxy prints nothing when ready). */
async function waitListening(port: number, child: Child, c: Contender): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const out = await capture(['ss', '-ltnH', `( sport = :${port} )`]);
    if (out !== null && out.trim() !== '') return;
    if (!child.alive) throw new BenchProcessError(`${c.id} exited (code ${child.exitCode}) before listening`, child.output());
    if (Date.now() > deadline) throw new BenchProcessError(`${c.id}: not listening on ${port} within ${READY_TIMEOUT_MS} ms`, child.output());
    await sleep(50);
  }
}

/**
 * iperf3 through a proxy (kind 'proxy'), or an iperf3 client contender (kind 'iperf'):
 * `iperf3 -s` on the load CPU, bytes counted by the kernel on the server's sockets (ss) over
 * the measured window, CPU of the measured process (the proxy, or the client) over the same
 * window. A proxy contender and the iperf3 ends: proxy on the server CPU, both iperf3 ends on
 * the load CPU; iperf3 direct (no proxy command): client on the server CPU.
 */
async function runIperf(ctx: RunContext, c: Contender, kind: 'proxy' | 'iperf'): Promise<RunSample> {
  const { env, timing, scenario } = ctx;
  // A proxy on several workers (proxy2) is not pinned, and neither are the iperf3 ends; its CPU
  // includes its child processes (node:cluster workers).
  const free = scenario.unpinned === true;
  const load = free ? undefined : LOAD_CPU;
  const serverCpu = free ? undefined : SERVER_CPU;
  const cpuOf = free ? treeCpuSeconds : cpuSeconds;
  if (!env.iperf3) throw new SkipContender('iperf3 not installed (apt-get install iperf3)');
  const iperfPort = await freePort();
  const server = new Child([env.iperf3, '-s', '--forceflush', '-B', HOST, '-p', String(iperfPort)], spawnOpts(ctx, 'iperf3 -s', load));
  let proxy: Child | undefined;
  let client: Child | undefined;
  try {
    await server.waitLine(/listening on/i, READY_TIMEOUT_MS);
    let target = iperfPort;
    const proxyCmd = kind === 'proxy' ? c.cmd[scenario.role] : undefined;
    if (proxyCmd) {
      const p = await freePort();
      const argv = proxyCmd(env, { port: p, host: HOST, upstream: iperfPort });
      if (c.readyByListen) {
        proxy = new Child(argv, spawnOpts(ctx, `${c.id} proxy`, serverCpu));
        await waitListening(p, proxy, c);
        target = p;
      } else {
        const started = await startServer(ctx, c, argv, serverCpu);
        proxy = started.child;
        target = Number.isFinite(started.port) ? started.port : p;
      }
    }
    const clientArgv =
      kind === 'iperf'
        ? c.cmd[scenario.role]!(env, { port: iperfPort, host: HOST, file: ctx.file })
        : [env.iperf3, '-c', HOST, '-p', String(target), '-t', '86400', ...(scenario.streams ? ['-P', String(scenario.streams)] : [])];
    client = new Child(clientArgv, spawnOpts(ctx, `iperf3 -c (${c.id})`, proxy ? load : serverCpu));
    const measured = kind === 'iperf' ? client : proxy;
    const cl = client;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await receivedBytes(iperfPort)) < 65536) {
      if (!cl.alive || !server.alive || (proxy && !proxy.alive)) {
        throw new BenchProcessError(`${c.id}: a process exited before any byte arrived`, cl.output() + '\n' + (proxy?.output() ?? ''));
      }
      if (Date.now() > deadline) throw new BenchProcessError(`${c.id}: no bytes within ${READY_TIMEOUT_MS} ms`, cl.output());
      await sleep(50);
    }
    await sleep(timing.warmup * 1000);
    const take = async () => {
      const t0 = performance.now();
      const bytes = await receivedBytes(iperfPort);
      return { bytes, at: (t0 + performance.now()) / 2, cpu: measured ? cpuOf(measured.pid) : 0 };
    };
    const a = await take();
    await sleep(timing.duration * 1000);
    const b = await take();
    if (!cl.alive || (proxy && !proxy.alive)) throw new BenchProcessError(`${c.id}: a process died during the run`, cl.output() + '\n' + (proxy?.output() ?? ''));
    const bytes = b.bytes - a.bytes;
    const gbps = (bytes * 8) / ((b.at - a.at) / 1000) / 1e9;
    positive('Gbit/s', gbps, cl.output());
    const sample = sampleFrom(ctx, gbps, bytes / 1e9, b.cpu - a.cpu, measured ? memoryMiB(measured.pid).peak : 0, {
      raw: { bytes, seconds: (b.at - a.at) / 1000, gbps },
    });
    // iperf3 direct: no process in between, so no CPU or RSS of one.
    if (!measured) {
      delete sample.cpuS;
      delete sample.cpuPerUnit;
      delete sample.rssPeakMiB;
    }
    return sample;
  } finally {
    await client?.kill();
    await proxy?.kill();
    await server.kill();
  }
}

/** wrk's -d takes whole seconds: a warm-up or duration is rounded up to one, at least 1 s. */
export function wrkSeconds(s: number): number {
  return Math.max(1, Math.ceil(s - 1e-9));
}

/**
 * An HTTP(S) server driven by wrk (kind 'wrk'): the server on the server CPU, one wrk thread on
 * the load CPU. The warm-up is a wrk run of its own (fresh connections, not counted); the
 * measured run is a second one, and the server's CPU is sampled when it starts and when it has
 * exited. Any socket error or non-2xx response fails the sample: a figure with errors in it is
 * not a result.
 */
async function runWrk(ctx: RunContext, c: Contender): Promise<RunSample> {
  const { env, scenario, timing } = ctx;
  const w = scenario.wrk!;
  if (!env.wrk) throw new SkipContender('wrk not installed (apt-get install wrk; scripts/bench-setup.sh does)');
  if (w.tls && !ctx.tls) throw new SkipContender('no certificate for HTTPS (openssl missing?)');
  const port = await freePort();
  const extra = [
    ...(w.bodyBytes !== undefined ? ['--size', String(w.bodyBytes)] : []),
    ...(w.tls ? ['--cert', ctx.tls!.cert, '--key', ctx.tls!.key] : []),
    ...(scenario.serverArgs ?? []),
  ];
  const { child: server, port: printed } = await startServer(ctx, c, [...c.cmd[scenario.role]!(env, { port, host: HOST }), ...extra], SERVER_CPU);
  let wrk: Child | undefined;
  try {
    const url = `${w.tls ? 'https' : 'http'}://${HOST}:${Number.isFinite(printed) ? printed : port}/`;
    const run = async (name: string, seconds: number): Promise<{ text: string; cpu: number }> => {
      const argv = [env.wrk!, '-t', '1', '-c', String(w.connections), '-d', `${wrkSeconds(seconds)}s`, '--timeout', '10s', '--latency', url];
      wrk = new Child(argv, spawnOpts(ctx, name, LOAD_CPU));
      const cpu = cpuSeconds(server.pid);
      const code = await wrk.waitExit(runBudgetMs(ctx));
      const text = wrk.stdout.join('\n');
      if (code !== 0) throw new BenchProcessError(`${name} exited with code ${code}`, wrk.output());
      if (!server.alive) throw new BenchProcessError(`${c.id} server died during the run`, server.output());
      return { text, cpu: cpuSeconds(server.pid) - cpu };
    };
    const warm = parseWrk((await run('wrk (warm-up)', timing.warmup)).text);
    const warmErrors = wrkErrors(warm);
    if (warmErrors) throw new BenchProcessError(`wrk (warm-up): ${warmErrors}`, server.output());
    const { text, cpu: cpuS } = await run('wrk', timing.duration);
    const r = parseWrk(text);
    const errors = wrkErrors(r);
    if (errors) throw new BenchProcessError(`wrk: ${errors}`, server.output());
    positive('requests/s', r.rps, text);
    const bodyBytes = w.bodyBytes ?? 13;
    const gbps = (r.rps * bodyBytes * 8) / 1e9;
    const value = scenario.metric.key === 'gbps' ? gbps : r.rps;
    const units = scenario.cpuPer === 'GB' ? (r.requests * bodyBytes) / 1e9 : r.requests / 1e6;
    return sampleFrom(ctx, value, units, cpuS, memoryMiB(server.pid).peak, {
      p50: r.latencyUs[50],
      p99: r.latencyUs[99],
      raw: { ...r, bodyBytes, gbps, connections: w.connections, warmupRequests: warm.requests },
    });
  } finally {
    await (wrk as Child | undefined)?.kill();
    await server.kill();
  }
}

export function measureOnce(ctx: RunContext, c: Contender): Promise<RunSample> {
  const kind = ctx.scenario.kindFor?.[c.id] ?? ctx.scenario.kind;
  if (kind === 'proxy' || kind === 'iperf') return runIperf(ctx, c, kind);
  switch (kind) {
    case 'client':
      return runClient(ctx, c);
    case 'sender':
      return runSender(ctx, c);
    case 'pair':
      return runPair(ctx, c);
    case 'wrk':
      return runWrk(ctx, c);
    case 'udp-recv':
      return runUdpRecv(ctx, c);
    case 'udp-send':
      return runUdpSend(ctx, c);
    case 'udp-relay':
      return runUdpRelay(ctx, c);
  }
}

/** The roles a contender needs for a scenario. */
export function rolesNeeded(s: Scenario): Role[] {
  // a contender without a proxy (relay) command is the direct reference
  if (s.kind === 'proxy' || s.kind === 'udp-relay') return [];
  return s.kind === 'pair' ? ['sink', 'sender'] : [s.role];
}
