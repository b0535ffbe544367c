// maio's benchmark harness: scenarios and contenders are data (bench/scenarios/, bench/contenders.ts);
// this file runs every contender of every scenario for several rounds, each in fresh processes,
// in rotated order, and writes the results (JSON, SVG, optionally BENCHMARKS.md).
//
//   node dist/bench/run.js [--short] [--rounds N] [--warmup S] [--duration S] [--only a,b]
//                          [--contenders a,b] [--out DIR] [--write-md] [--list]
//   node dist/bench/run.js --render results.json [--write-md]   (a finished run, judged again)
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { contenderById } from './contenders';
import { measureOnce, rolesNeeded, SkipContender, type RunContext } from './lib/measure';
import { capture, guardProcessExit, killAllSync } from './lib/proc';
import { vethProblem } from './lib/netns';
import { backend } from '../src/backend';
import { markdown, replaceSection, svgChart, terminalTable, controlText, summaryLine } from './lib/report';
import { addRatios, flagAnomalies, control, evaluateGoal, fmt, summarize } from './lib/stats';
import type { BenchResult, ContenderResult, Env, Machine, Scenario, ScenarioResult, Timing } from './lib/types';
import { scenarios as allScenarios } from './scenarios/index';

export const SHORT: Timing = { rounds: 2, warmup: 0.5, duration: 1.5 };
/** `npm start` (--short) measures for at most this long; the build and first-time set-up come on top. */
export const SHORT_BUDGET_S = 50;
/** Starting and stopping one contender's server and load generator, measured here: about 0.6 s. */
const RUN_OVERHEAD_S = 0.7;

/**
 * The short run's timing: SHORT, shortened so that `runs` contender runs per round fit
 * SHORT_BUDGET_S (a quarter of each run warms up). Never below 0.5 s measured per run.
 */
export function shortTiming(runsPerRound: number, budget = SHORT_BUDGET_S): Timing {
  const perRun = budget / (SHORT.rounds * Math.max(1, runsPerRound)) - RUN_OVERHEAD_S;
  const active = Math.min(SHORT.warmup + SHORT.duration, Math.max(perRun, 0.7));
  const round = (x: number): number => Math.round(x * 100) / 100;
  return { rounds: SHORT.rounds, warmup: round(Math.max(0.2, active * 0.25)), duration: round(Math.max(0.5, active * 0.75)) };
}

/** Seconds a run of these scenarios and timing takes, by the same estimate. */
export function estimateSeconds(runsPerRound: number, t: Timing): number {
  return Math.round(t.rounds * runsPerRound * (t.warmup + t.duration + RUN_OVERHEAD_S));
}
export const FULL: Timing = { rounds: 5, warmup: 1, duration: 4 };
export const C_TOOLS = ['loadgen', 'echo_epoll', 'sink', 'sendfile', 'udp_send', 'udp_recv'];

export interface BenchOptions {
  scenarios: Scenario[];
  timing: Timing;
  env: Env;
  /** Only these contender ids (the scenario's order is kept). */
  contenders?: string[];
  outDir: string;
  mode: BenchResult['mode'];
  command: string;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

export interface BenchOutput {
  result: BenchResult;
  files: { json: string; latest: string; svg: string };
}

/** The repository root: the nearest folder above this file whose package.json is maio's. */
export function findRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'maio') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no maio package.json above ${from}`);
  }
}

function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export function detectEnv(root: string, buildDir = path.join(root, 'bench', 'build')): Env {
  const bunLink = path.join(root, 'bench', 'node_modules', '.bin', 'bun');
  // Resolve the link: the measured pid must be Bun itself, not a wrapper.
  const bun = existsSync(bunLink) ? realpathSync(bunLink) : null;
  return {
    root,
    buildDir,
    bun,
    iperf3: which('iperf3'),
    haproxy: which('haproxy'),
    wrk: which('wrk'),
    openssl: which('openssl'),
    ip: which('ip'),
    maioCli: path.join(root, 'dist', 'src', 'cli', 'main.js'),
    taskset: which('taskset') !== null && os.cpus().length >= 2,
    prlimit: which('prlimit') !== null,
  };
}

/** Compiles the C tools into buildDir when missing or older than their source. */
export function buildCTools(root: string, buildDir: string): void {
  mkdirSync(buildDir, { recursive: true });
  for (const t of C_TOOLS) {
    const src = path.join(root, 'bench', 'c', `${t}.c`);
    const out = path.join(buildDir, t);
    if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) continue;
    execFileSync('cc', ['-O2', '-Wall', '-o', out, src], { stdio: 'inherit' });
  }
}

async function machine(env: Env): Promise<Machine> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpu: cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    kernel: os.release(),
    node: process.version,
    bun: env.bun ? ((await capture([env.bun, '--version']))?.trim() ?? null) : null,
    iperf3: env.iperf3 ? ((await capture([env.iperf3, '--version']))?.split('\n')[0].trim() ?? null) : null,
    pinned: env.taskset,
  };
}

async function fdLimitProblem(s: Scenario, env: Env): Promise<string | null> {
  if (!s.fdLimit || env.prlimit) return null;
  const soft = Number((await capture(['sh', '-c', 'ulimit -n']))?.trim());
  if (Number.isFinite(soft) && soft >= s.fdLimit) return null;
  return `needs ${s.fdLimit} file descriptors, the limit is ${soft} and prlimit is missing`;
}

/** A scenario driven by wrk needs wrk (and openssl for HTTPS). */
function toolProblem(s: Scenario, env: Env): string | null {
  if (s.veth) return vethProblem(env.ip);
  if (s.kind !== 'wrk') return null;
  if (!env.wrk) return 'wrk not installed (apt-get install wrk; scripts/bench-setup.sh does)';
  if (s.wrk?.tls && !env.openssl) return 'openssl not installed: no certificate for HTTPS (apt-get install openssl)';
  return null;
}

/**
 * A throwaway self-signed certificate (P-256, CN 127.0.0.1, 1 day) in a fresh temporary folder,
 * for one scenario; the caller removes the folder. wrk does not verify it.
 */
export function makeCert(openssl: string): { dir: string; cert: string; key: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maio-bench-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  try {
    execFileSync(
      openssl,
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, cert, key };
}

function progressLine(s: Scenario, i: number, n: number, round: number, t: Timing, r: ContenderResult, text: string): string {
  return `[${i + 1}/${n}] ${s.id.padEnd(16)} round ${round + 1}/${Math.min(t.rounds, s.rounds ?? Infinity)}  ${r.label.padEnd(24)} ${text}`;
}

async function runScenario(s: Scenario, idx: number, opts: BenchOptions): Promise<ScenarioResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const ids = s.contenders.filter((id) => !opts.contenders || opts.contenders.includes(id));
  const results: ContenderResult[] = ids.map((id) => {
    const c = contenderById(id);
    const roles = rolesNeeded(s);
    const label = (s.kind !== 'pair' && c.roleLabel?.[s.role]) || c.label;
    const missingRole = roles.find((r) => !c.cmd[r]);
    const reason = missingRole ? `no ${missingRole} role` : c.unavailable(opts.env);
    return { id, label, status: reason ? 'skipped' : 'ok', reason: reason ?? undefined, samples: [], errors: [] };
  });
  const base: ScenarioResult = {
    id: s.id,
    title: s.title,
    metric: s.metric,
    cpuPer: s.cpuPer,
    peer: s.peer,
    contenders: results,
    control: { a: s.control[0], b: s.control[1], ratios: [] },
    goals: [],
  };
  const problem = (await fdLimitProblem(s, opts.env)) ?? toolProblem(s, opts.env);
  if (problem) {
    log(`[${idx + 1}/${opts.scenarios.length}] ${s.id}: skipped: ${problem}`);
    return { ...base, skipped: problem };
  }
  const rounds = Math.min(opts.timing.rounds, s.rounds ?? Infinity);
  const tls = s.wrk?.tls ? makeCert(opts.env.openssl!) : undefined;
  const file = s.fileBytes ? makeFile(s.fileBytes) : undefined;
  try {
    for (let round = 0; round < rounds; round++) {
      const runnable = results.filter((r) => r.status !== 'skipped');
      const k = runnable.length ? round % runnable.length : 0;
      const order = [...runnable.slice(k), ...runnable.slice(0, k)];
      for (const r of order) {
        if (r.status === 'skipped') continue;
        const ctx: RunContext = { env: opts.env, timing: opts.timing, scenario: s, round, file, tls };
        try {
          const sample = await measureOnce(ctx, contenderById(r.id));
          r.samples.push(sample);
          let extra = sample.p99 !== undefined ? `  p99 ${fmt(sample.p99)} us` : '';
          const srv = sample.raw?.server as Record<string, number> | undefined;
          const raw = sample.raw as Record<string, number> | undefined;
          if (raw && typeof raw.lossWhole === 'number') {
            extra +=
              `  ${fmt(raw.gbps)} Gbit/s  window loss ${fmt(raw.loss * 100)}% (${raw.windowSent} sent, ${raw.windowReceived} received)` +
              `  whole run ${fmt(raw.dpsWhole)} ${s.metric.unit}, loss ${fmt(raw.lossWhole * 100)}% (${raw.sent} sent, ${raw.received} received)`;
          } else if (raw && typeof raw.loss === 'number') {
            extra += `  ${fmt(raw.gbps)} Gbit/s  loss ${fmt(raw.loss * 100)}% (${raw.sent} sent, ${raw.received} received)`;
          }
          if (srv) extra += `  heap ${fmt(srv.heapWarmMiB)} -> ${fmt(srv.heapEndMiB)} MiB  GC ${fmt(srv.gcMsPerMmsg)} ms/M msg  RSS ${fmt(srv.rssPeakMiB)} MiB`;
          const cpu = sample.cpuPerUnit !== undefined ? `  cpu ${fmt(sample.cpuPerUnit)} s/${s.cpuPer === 'GB' ? 'GB' : 'M msg'}` : '';
          log(progressLine(s, idx, opts.scenarios.length, round, opts.timing, r, `${fmt(sample.value)} ${s.metric.unit}${extra}${cpu}`));
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          if (err instanceof SkipContender) {
            r.status = 'skipped';
            r.reason = msg;
            log(progressLine(s, idx, opts.scenarios.length, round, opts.timing, r, `skipped: ${msg}`));
          } else {
            r.errors.push(msg);
            log(progressLine(s, idx, opts.scenarios.length, round, opts.timing, r, `FAILED: ${msg}`));
          }
        }
      }
    }
  } finally {
    if (file) rmSync(file, { force: true });
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  }
  for (const r of results) summarize(r);
  addRatios(results, s);
  flagAnomalies(results, s);
  const out: ScenarioResult = { ...base, control: control(results, s), goals: s.goals.map((g) => evaluateGoal(g, results)) };
  log(`[${idx + 1}/${opts.scenarios.length}] ${s.id}: ${controlText(out)}`);
  return out;
}

/** A file of `bytes` pseudo-random bytes in /dev/shm (tmpfs: the disk is not measured), else tmp. */
function makeFile(bytes: number): string {
  const dir = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const file = path.join(dir, `maio-bench-file-${process.pid}`);
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  const fd = openSync(file, 'w');
  try {
    for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  } finally {
    closeSync(fd);
  }
  return file;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

export async function runBench(opts: BenchOptions): Promise<BenchOutput> {
  const started = new Date();
  const scenarios: ScenarioResult[] = [];
  try {
    for (let i = 0; i < opts.scenarios.length; i++) scenarios.push(await runScenario(opts.scenarios[i], i, opts));
  } finally {
    killAllSync(); // nothing may outlive the run, whatever happened
  }
  const result: BenchResult = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    command: opts.command,
    mode: opts.mode,
    timing: opts.timing,
    machine: await machine(opts.env),
    scenarios,
  };
  mkdirSync(opts.outDir, { recursive: true });
  const name = stamp(started);
  const files = {
    json: path.join(opts.outDir, `${name}.json`),
    latest: path.join(opts.outDir, 'latest.json'),
    svg: path.join(opts.outDir, `${name}.svg`),
  };
  const json = JSON.stringify(result, null, 2) + '\n';
  writeFileSync(files.json, json);
  writeFileSync(files.latest, json);
  const svg = svgChart(result);
  writeFileSync(files.svg, svg);
  writeFileSync(path.join(opts.outDir, 'latest.svg'), svg);
  return { result, files };
}

interface Cli {
  timing: Timing;
  mode: BenchResult['mode'];
  only?: string[];
  contenders?: string[];
  out?: string;
  writeMd: boolean;
  list: boolean;
  /** a results JSON to render again instead of running */
  render?: string;
}

function parseCli(argv: string[]): Cli {
  const cli: Cli = { timing: { ...FULL }, mode: 'full', writeMd: false, list: false };
  const num = (v: string | undefined, name: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`);
    return n;
  };
  let custom = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--short':
        cli.timing = { ...SHORT };
        cli.mode = 'short';
        break;
      case '--rounds':
        cli.timing.rounds = Math.round(num(argv[++i], a));
        custom = true;
        break;
      case '--warmup':
        cli.timing.warmup = num(argv[++i], a);
        custom = true;
        break;
      case '--duration':
        cli.timing.duration = num(argv[++i], a);
        custom = true;
        break;
      case '--only':
        cli.only = (argv[++i] ?? '').split(',');
        break;
      case '--contenders':
        cli.contenders = (argv[++i] ?? '').split(',');
        break;
      case '--out':
        cli.out = argv[++i];
        break;
      case '--write-md':
        cli.writeMd = true;
        break;
      case '--list':
        cli.list = true;
        break;
      case '--render':
        cli.render = argv[++i];
        break;
      default:
        throw new Error(`unknown option ${a} (see the head of bench/run.ts)`);
    }
  }
  if (custom) cli.mode = 'custom';
  return cli;
}

/**
 * A finished run judged again by the current scenario definitions: the figures are the run's,
 * the anomaly flags and goals are recomputed (a goal raised after the run is read off it).
 */
export function rejudge(result: BenchResult): BenchResult {
  const scenarios = result.scenarios.map((sr) => {
    const def = allScenarios.find((s) => s.id === sr.id);
    if (!def || sr.skipped) return sr;
    const contenders = sr.contenders.map((c) => ({ ...c, anomaly: undefined }));
    flagAnomalies(contenders, def);
    return { ...sr, contenders, goals: def.goals.map((g) => evaluateGoal(g, contenders)) };
  });
  const command = `${result.command}\`, judged again by \`node dist/bench/run.js --render bench/results/${stamp(new Date(result.startedAt))}.json`;
  return { ...result, command, scenarios };
}

function writeMarkdown(root: string, result: BenchResult, svgFile: string): string {
  const svgName = 'bench/benchmarks.svg';
  if (path.resolve(svgFile) !== path.join(root, svgName)) copyFileSync(svgFile, path.join(root, svgName));
  const mdPath = path.join(root, 'BENCHMARKS.md');
  const doc = existsSync(mdPath) ? readFileSync(mdPath, 'utf8') : '# Benchmarks\n\nRegenerated by `node dist/bench/run.js --write-md`; see bench/README.md for the method.\n';
  writeFileSync(mdPath, replaceSection(doc, markdown(result, svgName)));
  return mdPath;
}

async function main(): Promise<void> {
  guardProcessExit();
  const cli = parseCli(process.argv.slice(2));
  const root = findRoot();
  if (cli.render) {
    const result = rejudge(JSON.parse(readFileSync(cli.render, 'utf8')) as BenchResult);
    process.stdout.write(terminalTable(result) + '\n\n' + summaryLine(result) + '\n');
    if (cli.writeMd) process.stdout.write(`updated: ${writeMarkdown(root, result, cli.render.replace(/\.json$/, '.svg'))}\n`);
    return;
  }
  const env = detectEnv(root);
  let scenarios = allScenarios;
  if (cli.only) {
    for (const id of cli.only) if (!allScenarios.some((s) => s.id === id)) throw new Error(`unknown scenario '${id}'`);
    scenarios = allScenarios.filter((s) => cli.only!.includes(s.id));
  } else if (cli.mode === 'short') {
    scenarios = allScenarios.filter((s) => s.short);
  }
  if (cli.list) {
    for (const s of allScenarios) process.stdout.write(`${s.id.padEnd(22)} ${s.short ? 'short ' : '      '}${s.title}\n`);
    return;
  }
  if (C_TOOLS.some((t) => !existsSync(path.join(env.buildDir, t)))) {
    process.stderr.write('bench: C tools missing, building them with cc (scripts/bench-setup.sh does the rest)\n');
    buildCTools(root, env.buildDir);
  }
  const command = ['node', 'dist/bench/run.js', ...process.argv.slice(2)].join(' ');
  const runs = scenarios.reduce((n, s) => n + s.contenders.filter((id) => !cli.contenders || cli.contenders.includes(id)).length, 0);
  if (cli.mode === 'short') cli.timing = shortTiming(runs);
  const t = cli.timing;
  process.stderr.write(
    `bench: ${scenarios.length} scenarios (${scenarios.map((s) => s.id).join(', ')}), ${runs} servers, ${t.rounds} rounds, ` +
      `${t.warmup} s warm-up + ${t.duration} s each: about ${estimateSeconds(runs, t)} s; ` +
      `${env.taskset ? 'servers on CPU 1, load on CPU 0' : 'no CPU pinning'}` +
      `${env.taskset && scenarios.some((s) => s.unpinned) ? ` (not in ${scenarios.filter((s) => s.unpinned).map((s) => s.id).join(', ')}: servers on several CPUs)` : ''}\n` +
      `bench: ${backend().summary}; if a figure looks wrong, \`npx maio doctor\` says why\n`,
  );
  const t0 = Date.now();
  const { result, files } = await runBench({
    scenarios,
    timing: t,
    env,
    contenders: cli.contenders,
    outDir: cli.out ?? path.join(root, 'bench', 'results'),
    mode: cli.mode,
    command,
  });
  process.stdout.write(terminalTable(result) + '\n\n');
  process.stdout.write(`results: ${files.json}\nchart:   ${files.svg}\nmeasured in ${Math.round((Date.now() - t0) / 1000)} s\n`);
  process.stdout.write(`${summaryLine(result)}\n`);
  if (cli.writeMd) process.stdout.write(`updated: ${writeMarkdown(root, result, files.svg)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    killAllSync();
    process.exit(1);
  });
}
