/**
 * maio doctor: what this machine gives maio, and whether maio runs as well as it allows.
 *
 * First the facts, each with a verdict (backend and why, ring set-up and the wake-up probe,
 * io_uring_disabled, seccomp, memlock and what a pool can lock and register, THP, zero-copy
 * sends, SO_REUSEPORT, the CPUs --workers auto takes and CPU steering, kernel TLS, socket buffer limits); then a loopback self-check (`maio self-check`, one
 * child process per backend and ring set-up, node:net as the reference). Exit code 0 when the
 * configuration this process would run is healthy, 1 when something slows or blocks it (each
 * such line says why and how to fix it), 2 when the doctor itself failed.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backend, type Backend } from '../backend';
import { native } from '../core/native';
import { createPool } from '../pool/index';
import { defaultPoolSize, hasIpcLock, memlockLimit } from '../pool/config';
import { parseArgs } from './args';
import { allowedCpus, formatCpuList } from '../workers/cpus';
import { probeCpuSteering } from '../workers/steering';
import type { SelfCheckResult } from './self-check';

export const usage = 'maio doctor [--json] [--duration-ms MS]';
export const help = `  --json             the report as JSON (facts, self-check lines, summary) instead of text
  --duration-ms MS   how long each self-check line's ping-pong runs (default 1000; the bulk stream half that)
  Exit code: 0 ok, 1 degraded (the configuration in use, or a fact that blocks or slows maio), 2 the doctor failed.`;

export type Verdict = 'ok' | 'note' | 'degraded';

export interface Finding {
  name: string;
  value: string;
  verdict: Verdict;
  /** why it is a note or degraded */
  why?: string;
  /** what to do about it */
  fix?: string;
  /** the raw figures behind the line */
  data?: Record<string, unknown>;
}

export interface CheckLine {
  name: string;
  /** environment of the child (what it forces) */
  env: Record<string, string>;
  /** the configuration this process runs with */
  inUse: boolean;
  result: SelfCheckResult | null;
  error?: string;
  verdict: Verdict;
  why?: string;
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  kernel: string;
  node: string;
  findings: Finding[];
  checks: CheckLine[];
  /** one sentence: the overall verdict */
  summary: string;
}

/** A share of stalled round trips above this is a broken wake-up path (test/ring/wakeup.test.ts). */
const MAX_STALL_SHARE = 0.01;
/** Slower than node:net on the same machine by this factor: a broken set-up, not a slow one. */
const ANOMALY_FACTOR = 20;

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function mib(n: number): string {
  return n === Infinity ? 'unlimited' : `${(n / (1 << 20)).toFixed(n < 1 << 20 ? 2 : 0)} MiB`;
}

function backendFinding(b: Backend): Finding {
  const p = native().probe();
  if (b.mode === 'io_uring') return { name: 'backend', value: 'io_uring', verdict: 'ok', data: { forced: b.forced } };
  if (b.forced) {
    return { name: 'backend', value: 'epoll', verdict: 'degraded', why: b.reason, fix: 'unset MAIO_BACKEND (io_uring is usable here)', data: { forced: true } };
  }
  const value = `epoll: ${b.reason}`;
  switch (p.setupError) {
    case 'EPERM':
      return {
        name: 'backend', value, verdict: 'degraded', why: 'io_uring is usable on this kernel but refused to this process',
        fix: p.ioUringDisabled > 0
          ? 'sysctl kernel.io_uring_disabled=0 (or add the user to kernel.io_uring_group)'
          : 'allow io_uring_setup/io_uring_enter/io_uring_register in the seccomp profile (e.g. a container runtime\'s)',
      };
    case 'ENOMEM':
      return { name: 'backend', value, verdict: 'degraded', why: 'the ring did not fit in the locked-memory limit', fix: 'raise RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK=, --ulimit memlock=)' };
    default:
      // No io_uring in this kernel, or too old: epoll is what it allows.
      return { name: 'backend', value, verdict: 'note', why: 'this kernel cannot do better', fix: 'Linux 6.1 or later for io_uring' };
  }
}

function setupFinding(b: Backend): Finding {
  const verdict = b.deferEventfd;
  const probe = verdict === 'prompt' ? 'DEFER_TASKRUN eventfd prompt' : verdict === 'late' ? 'DEFER_TASKRUN eventfd signalled late' : 'no DEFER_TASKRUN';
  if (!b.ringSetup) return { name: 'ring set-up', value: `none (epoll); wake-up probe: ${probe}`, verdict: 'ok', data: { deferEventfd: verdict } };
  const s = b.ringSetup;
  const value = `${s.mode}: ${s.flags.join('|') || 'no flags'}; wake-up probe: ${probe}`;
  const data = { mode: s.mode, flags: s.flags, forced: s.forced, reason: s.reason, deferEventfd: verdict };
  if (s.mode === 'defer' && verdict === 'late') {
    return {
      name: 'ring set-up', value, verdict: 'degraded', data,
      why: 'DEFER_TASKRUN is forced, and this kernel signals its eventfd one RCU grace period late: every wake-up waits 12-20 ms',
      fix: 'unset MAIO_RING_SETUP (auto picks COOP_TASKRUN here)',
    };
  }
  return { name: 'ring set-up', value, verdict: 'ok', why: s.reason, data };
}

function seccompFinding(): Finding {
  const status = read('/proc/self/status') ?? '';
  const mode = Number(/^Seccomp:\s*(\d)/m.exec(status)?.[1] ?? NaN);
  const p = native().probe();
  const blocked = !p.uringUsable && p.setupError === 'EPERM' && p.ioUringDisabled <= 0;
  const value = Number.isNaN(mode) ? 'unknown' : ['none', 'strict', 'filter'][mode] ?? String(mode);
  if (blocked) return { name: 'seccomp', value, verdict: 'degraded', why: `${p.failedSyscall || 'io_uring_setup'} refused with EPERM`, fix: 'allow the io_uring system calls in the seccomp profile' };
  return { name: 'seccomp', value: mode === 2 ? `${value} (io_uring allowed)` : value, verdict: 'ok', data: { mode } };
}

function memlockFinding(b: Backend): Finding {
  const limit = memlockLimit();
  const ipcLock = hasIpcLock();
  const size = defaultPoolSize(limit, ipcLock);
  const data: Record<string, unknown> = { limitBytes: limit === Infinity ? null : limit, capIpcLock: ipcLock, defaultPoolBytes: size };
  let pool;
  try {
    // The default pool, made resident and registered as the first zero-copy send would do.
    pool = createPool({ size, eager: true });
    const st = pool.stats();
    Object.assign(data, { locked: st.locked, lockError: st.lockError, registered: st.registered, registerError: st.registerError, hugePages: st.hugePages, dontFork: st.dontFork });
  } catch (err) {
    return { name: 'memlock', value: `${mib(limit)}`, verdict: 'degraded', why: `a ${mib(size)} pool could not be made: ${(err as Error).message}`, fix: 'raise RLIMIT_MEMLOCK', data };
  } finally {
    pool?.close();
  }
  const value = `${mib(limit)}${ipcLock ? ' + CAP_IPC_LOCK' : ''}; default pool ${mib(size)}: ${data.locked ? 'locked' : `not locked (${data.lockError})`}, ` +
    (b.mode === 'io_uring' ? (data.registered ? 'registered' : `not registered (${data.registerError})`) : 'no registration on epoll');
  if (b.mode === 'io_uring' && !data.registered) {
    return { name: 'memlock', value, verdict: 'degraded', why: 'zero-copy sends cannot use the pool as a fixed buffer', fix: 'raise RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK', data };
  }
  if (size < 64 << 20) return { name: 'memlock', value, verdict: 'note', why: 'the memlock limit keeps the default pool small', fix: 'raise RLIMIT_MEMLOCK for a 64 MiB pool', data };
  return { name: 'memlock', value, verdict: 'ok', data };
}

function thpFinding(): Finding {
  const raw = read('/sys/kernel/mm/transparent_hugepage/enabled');
  const mode = raw ? (/\[(\w+)\]/.exec(raw)?.[1] ?? raw) : 'unknown';
  if (mode === 'never') return { name: 'THP', value: mode, verdict: 'note', why: 'pools get no transparent huge pages', fix: 'echo madvise > /sys/kernel/mm/transparent_hugepage/enabled' };
  return { name: 'THP', value: mode, verdict: 'ok' };
}

function zeroCopyFinding(b: Backend): Finding {
  const how = b.mode === 'io_uring' ? 'SEND_ZC' : 'MSG_ZEROCOPY';
  if (!b.capabilities.sendZc) return { name: 'zero-copy send', value: `no ${how}`, verdict: 'note', why: 'large sends copy', fix: 'Linux 6.0+ for SEND_ZC' };
  return {
    name: 'zero-copy send', value: how, verdict: 'ok',
    why: 'to local peers (loopback, veth) the kernel copies anyway; sockets to them use plain sends (socket.stats().zeroCopy)',
  };
}

function reusePortFinding(): Finding {
  const n = native();
  let fd = -1;
  try {
    fd = n.sockOpen(4, 'tcp');
    n.sockSetInt(fd, 1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, 1);
    return { name: 'SO_REUSEPORT', value: 'yes', verdict: 'ok' };
  } catch (err) {
    return { name: 'SO_REUSEPORT', value: 'no', verdict: 'note', why: (err as Error).message, fix: 'workers cannot share a port' };
  } finally {
    if (fd >= 0) n.sockClose(fd);
  }
}

/** What --workers auto takes (the affinity mask, not os.cpus()) and whether connections can be steered by CPU. */
function workersFinding(): Finding {
  const cpus = allowedCpus();
  const all = os.cpus().length;
  return {
    name: 'worker CPUs', value: `${cpus.length} (${formatCpuList(cpus)})`, verdict: 'ok',
    ...(cpus.length < all ? { why: `the affinity mask allows ${cpus.length} of the ${all} CPUs: --workers auto starts ${cpus.length}` } : {}),
    data: { allowed: cpus, online: all },
  };
}

function steeringFinding(): Finding {
  const s = probeCpuSteering();
  return s.attached
    ? { name: 'CPU steering', value: 'yes', verdict: 'ok', why: 'SO_ATTACH_REUSEPORT_CBPF works: with --cpus, a connection goes to the worker pinned to the CPU its packets arrive on' }
    : { name: 'CPU steering', value: 'no', verdict: 'note', why: s.reason, fix: 'workers share connections by the kernel\'s 4-tuple hash instead' };
}

/**
 * Kernel TLS, probed rather than read from a config: attaching the "tls"
 * upper-layer protocol to an unconnected TCP socket fails with ENOTCONN when
 * the kernel has it (or can load it), ENOENT when it does not. maio offloads
 * no TLS records yet; the line says whether a kernel-TLS path could run here.
 */
function kernelTlsFinding(): Finding {
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  const why = 'TLS on maio/net sockets is node\'s TLS over a JavaScript stream, which copies each record: slower than node:https (README, "TLS on maio/net")';
  try {
    n.sockSetBytes(fd, 6 /* IPPROTO_TCP */, 31 /* TCP_ULP */, new TextEncoder().encode('tls'));
    return { name: 'kernel TLS', value: 'yes', verdict: 'ok', why };
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message;
    if (code === 'ENOTCONN') return { name: 'kernel TLS', value: 'yes', verdict: 'ok', why };
    return { name: 'kernel TLS', value: `no (TCP_ULP tls: ${code})`, verdict: 'note', why };
  } finally {
    n.sockClose(fd);
  }
}

function socketBufferFinding(): Finding {
  const data = {
    rmemMax: Number(read('/proc/sys/net/core/rmem_max')),
    wmemMax: Number(read('/proc/sys/net/core/wmem_max')),
    optmemMax: Number(read('/proc/sys/net/core/optmem_max')),
    tcpRmem: (read('/proc/sys/net/ipv4/tcp_rmem') ?? '').split(/\s+/).map(Number),
    tcpWmem: (read('/proc/sys/net/ipv4/tcp_wmem') ?? '').split(/\s+/).map(Number),
  };
  const value = `rmem_max ${data.rmemMax}, wmem_max ${data.wmemMax}, tcp_rmem ${data.tcpRmem.join(' ')}, tcp_wmem ${data.tcpWmem.join(' ')}, optmem_max ${data.optmemMax}`;
  // MSG_ZEROCOPY's completion notifications are charged to optmem.
  if (data.optmemMax < 10240) return { name: 'socket buffers', value, verdict: 'note', why: 'optmem_max is small: MSG_ZEROCOPY sends fall back to copies', fix: 'sysctl net.core.optmem_max=20480', data };
  return { name: 'socket buffers', value, verdict: 'ok', data };
}

/** The self-check lines: node:net as the reference, then every backend and ring set-up this machine has. */
function plannedChecks(b: Backend): Omit<CheckLine, 'result' | 'verdict'>[] {
  const p = native().probe();
  const envSetup = process.env.MAIO_RING_SETUP || 'auto';
  const lines: Omit<CheckLine, 'result' | 'verdict'>[] = [{ name: 'node:net (reference)', env: {}, inUse: false }];
  if (p.uringUsable) {
    lines.push({ name: 'io_uring, default set-up', env: { MAIO_BACKEND: 'io_uring', MAIO_RING_SETUP: 'auto' }, inUse: b.mode === 'io_uring' && envSetup === 'auto' });
    lines.push({ name: 'io_uring, COOP_TASKRUN', env: { MAIO_BACKEND: 'io_uring', MAIO_RING_SETUP: 'coop' }, inUse: b.mode === 'io_uring' && envSetup === 'coop' });
    if (p.deferSetupFlags) {
      lines.push({ name: 'io_uring, DEFER_TASKRUN', env: { MAIO_BACKEND: 'io_uring', MAIO_RING_SETUP: 'defer' }, inUse: b.mode === 'io_uring' && envSetup === 'defer' });
    }
  }
  lines.push({ name: 'epoll', env: { MAIO_BACKEND: 'epoll', MAIO_RING_SETUP: '' }, inUse: b.mode === 'epoll' });
  return lines;
}

function runSelfCheck(env: Record<string, string>, impl: 'maio' | 'node', durationMs: number): Promise<SelfCheckResult> {
  const cli = path.join(__dirname, 'main.js');
  const args = [cli, 'self-check', '--impl', impl, '--duration-ms', String(durationMs), '--bulk-ms', String(Math.round(durationMs / 2))];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: durationMs * 2 + 20_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error((stderr.trim().split('\n').pop() || err.message).replace(/^maio( self-check)?: /, '')));
      try {
        resolve(JSON.parse(stdout) as SelfCheckResult);
      } catch {
        reject(new Error(`unreadable self-check output: ${stdout.slice(0, 200)}`));
      }
    });
  });
}

function judge(line: CheckLine, reference: SelfCheckResult | null): void {
  const r = line.result;
  if (!r) {
    line.verdict = 'degraded';
    line.why = `the self-check failed: ${line.error}`;
    line.fix = 'run `maio self-check` with the same environment to see the error';
    return;
  }
  const pp = r.pingPong;
  if (pp.roundTrips === 0 || pp.stalls > pp.roundTrips * MAX_STALL_SHARE) {
    line.verdict = 'degraded';
    line.why = `${pp.stalls} of ${pp.roundTrips} round trips took 10 ms or more: wake-ups arrive late`;
    line.fix = r.setup === 'defer' ? 'do not force MAIO_RING_SETUP=defer on this kernel (auto picks COOP_TASKRUN)' : 'report this output with `uname -a`';
    return;
  }
  if (reference && line.name !== 'node:net (reference)') {
    const slowRt = pp.perSecond * ANOMALY_FACTOR < reference.pingPong.perSecond;
    const slowBulk = r.bulk && reference.bulk && r.bulk.gbits * ANOMALY_FACTOR < reference.bulk.gbits;
    if (slowRt || slowBulk) {
      line.verdict = 'degraded';
      line.why = `over ${ANOMALY_FACTOR}x slower than node:net on this machine (${slowRt ? 'round trips' : 'bulk'})`;
      line.fix = 'report this output with `uname -a`';
      return;
    }
  }
  line.verdict = 'ok';
}

export async function diagnose(durationMs = 1000): Promise<DoctorReport> {
  const b = backend();
  const findings: Finding[] = [
    backendFinding(b),
    setupFinding(b),
    { name: 'io_uring_disabled', value: String(b.ioUringDisabled), verdict: b.ioUringDisabled === 2 ? 'degraded' : 'ok', ...(b.ioUringDisabled === 2 ? { why: 'io_uring is disabled for everyone', fix: 'sysctl kernel.io_uring_disabled=0' } : {}) },
    seccompFinding(),
    memlockFinding(b),
    thpFinding(),
    zeroCopyFinding(b),
    reusePortFinding(),
    workersFinding(),
    steeringFinding(),
    kernelTlsFinding(),
    socketBufferFinding(),
  ];
  const checks: CheckLine[] = [];
  let reference: SelfCheckResult | null = null;
  for (const plan of plannedChecks(b)) {
    const line: CheckLine = { ...plan, result: null, verdict: 'ok' };
    try {
      line.result = await runSelfCheck(plan.env, plan.name.startsWith('node:net') ? 'node' : 'maio', durationMs);
      if (plan.name.startsWith('node:net')) reference = line.result;
    } catch (err) {
      line.error = (err as Error).message;
    }
    judge(line, reference);
    checks.push(line);
  }
  const bad = [...findings.filter((f) => f.verdict === 'degraded').map((f) => `${f.name}: ${f.why}`), ...checks.filter((c) => c.inUse && c.verdict !== 'ok').map((c) => `${c.name}: ${c.why}`)];
  const inUse = b.mode === 'io_uring' ? `io_uring with ${b.ringSetup!.mode === 'defer' ? 'DEFER_TASKRUN' : 'COOP_TASKRUN'}` : 'epoll';
  const summary = bad.length
    ? `degraded: ${bad.join('; ')}`
    : `ok: maio runs as well as this machine allows (${inUse})`;
  return { ok: bad.length === 0, kernel: b.kernel, node: process.version, findings, checks, summary };
}

function n(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function formatReport(r: DoctorReport): string {
  const out = [`maio doctor: kernel ${r.kernel}, node ${r.node}`, ''];
  const w = Math.max(...r.findings.map((f) => f.name.length));
  for (const f of r.findings) {
    out.push(`  ${f.name.padEnd(w)}  ${f.verdict.padEnd(8)}  ${f.value}`);
    if (f.why && f.verdict !== 'ok') out.push(`  ${''.padEnd(w)}            why: ${f.why}`);
    if (f.fix && f.verdict !== 'ok') out.push(`  ${''.padEnd(w)}            fix: ${f.fix}`);
  }
  out.push('', 'self-check: 1 loopback connection (server on the main thread, client on a worker): 64 B ping-pong, then a bulk stream');
  const cw = Math.max(...r.checks.map((c) => c.name.length + (c.inUse ? 9 : 0)));
  for (const c of r.checks) {
    const name = `${c.name}${c.inUse ? ' (in use)' : ''}`.padEnd(cw);
    const p = c.result?.pingPong;
    const figures = p
      ? `${n(p.perSecond).padStart(7)} rt/s  p50 ${n(p.p50Us).padStart(5)} us  p99 ${n(p.p99Us).padStart(6)} us  ${String(p.stalls).padStart(4)} stalls  ${c.result!.bulk ? n(c.result!.bulk.gbits, 1).padStart(5) : '    -'} Gbit/s`
      : `failed: ${c.error}`;
    out.push(`  ${name}  ${c.verdict.padEnd(8)}  ${figures}`);
    if (c.verdict !== 'ok') out.push(`  ${''.padEnd(cw)}            why: ${c.why}${c.fix ? `\n  ${''.padEnd(cw)}            fix: ${c.fix}` : ''}`);
  }
  out.push('', r.summary);
  return out.join('\n') + '\n';
}

export function run(argv: string[]): void {
  const o = parseArgs(argv, { json: 'flag', 'duration-ms': 'number' }, { json: false as boolean, 'duration-ms': 1000 as number });
  const json = o.json;
  diagnose(o['duration-ms']).then(
    (r) => {
      process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatReport(r));
      process.exit(r.ok ? 0 : 1);
    },
    (err: Error) => {
      process.stderr.write(`maio doctor failed: ${err.stack ?? err.message}\n`);
      process.exit(2);
    },
  );
}
