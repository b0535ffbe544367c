// Before/after in one run: the same benchmarks on two built checkouts of maio, interleaved round by
// round on this machine, so that a refactoring's cost is read as a ratio, not across days.
//
//   node dist/bench/ab.js --base /path/to/other/checkout [--rounds 3] [--only echo-64b-1c,bulk-recv]
//                         [--duration 3] [--no-micro]
//
// Each round runs, for base then this checkout (the order alternates by round): the micro-benchmarks
// (bench/micro/run.js, their numeric fields) and maio alone in each scenario of --only
// (bench/run.js --contenders maio, one round each). The table gives the median per side and
// this/base: read it with the unit in the name (ns and s/GB: lower is better; /s: higher).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findRoot } from './run';

interface Options {
  base: string;
  rounds: number;
  only: string[];
  duration: number;
  micro: boolean;
}

function parse(argv: string[]): Options {
  const o: Options = { base: '', rounds: 3, only: ['echo-64b-1c', 'bulk-recv'], duration: 3, micro: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--base') o.base = path.resolve(v());
    else if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--only') o.only = v().split(',').filter(Boolean);
    else if (a === '--duration') o.duration = Number(v());
    else if (a === '--no-micro') o.micro = false;
    else throw new Error(`unknown option ${a} (see the head of bench/ab.ts)`);
  }
  if (!o.base || !existsSync(path.join(o.base, 'dist', 'bench', 'run.js'))) throw new Error('--base must be a built maio checkout (dist/bench/run.js)');
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a positive integer');
  if (!(o.duration > 0)) throw new Error('--duration must be positive');
  return o;
}

type Figures = Map<string, number>;

/** Every numeric field of every record the micro-benchmarks wrote, keyed "bench/table/label/field". */
function microFigures(checkout: string): Figures {
  execFileSync(process.execPath, [path.join(checkout, 'dist', 'bench', 'micro', 'run.js')], { cwd: checkout, stdio: ['ignore', 'ignore', 'inherit'] });
  const data = JSON.parse(readFileSync(path.join(checkout, 'bench', 'results', 'micro.json'), 'utf8')) as { results: Record<string, Record<string, unknown>> };
  const out: Figures = new Map();
  for (const [bench, tables] of Object.entries(data.results)) {
    for (const [table, rows] of Object.entries(tables)) {
      if (!Array.isArray(rows)) continue;
      for (const row of rows as Record<string, unknown>[]) {
        // A row is named by its first text field, else by its first field and value (batch=16).
        const [firstKey, firstValue] = Object.entries(row)[0] ?? ['', ''];
        const label = (Object.values(row).find((x) => typeof x === 'string') as string | undefined) ?? `${firstKey}=${String(firstValue)}`;
        for (const [field, x] of Object.entries(row)) if (typeof x === 'number') out.set(`${bench}/${table}/${label}/${field}`, x);
      }
    }
  }
  return out;
}

/** maio's median (and CPU per unit, where measured) in one scenario, one round. */
function scenarioFigures(checkout: string, id: string, duration: number): Figures {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maio-ab-'));
  try {
    execFileSync(
      process.execPath,
      [path.join(checkout, 'dist', 'bench', 'run.js'), '--only', id, '--contenders', 'maio', '--rounds', '1', '--warmup', '1', '--duration', String(duration), '--out', dir],
      { cwd: checkout, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const r = JSON.parse(readFileSync(path.join(dir, 'latest.json'), 'utf8')) as {
      scenarios: { id: string; cpuPer: string; metric: { unit: string }; contenders: { id: string; value?: { median: number }; cpuPerUnit?: number; p99?: number }[] }[];
    };
    const s = r.scenarios.find((x) => x.id === id);
    const c = s?.contenders.find((x) => x.id === 'maio');
    const out: Figures = new Map();
    if (s === undefined || c?.value === undefined) throw new Error(`${checkout}: no maio figure in scenario ${id}`);
    out.set(`${id}/maio/${s.metric.unit}`, c.value.median);
    if (c.p99 !== undefined) out.set(`${id}/maio/p99`, c.p99);
    if (c.cpuPerUnit !== undefined) out.set(`${id}/maio/cpu s per ${s.cpuPer}`, c.cpuPerUnit);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function main(): void {
  const o = parse(process.argv.slice(2));
  const sides = { base: o.base, this: findRoot() };
  const samples = { base: new Map<string, number[]>(), this: new Map<string, number[]>() };
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 ? (['base', 'this'] as const) : (['this', 'base'] as const);
    for (const side of order) {
      process.stderr.write(`ab: round ${round + 1}/${o.rounds}, ${side} (${sides[side]})\n`);
      const figs: Figures[] = [];
      if (o.micro) figs.push(microFigures(sides[side]));
      for (const id of o.only) figs.push(scenarioFigures(sides[side], id, o.duration));
      for (const f of figs) for (const [k, x] of f) samples[side].set(k, [...(samples[side].get(k) ?? []), x]);
    }
  }
  const rows = [...samples.this.keys()].filter((k) => samples.base.has(k));
  const width = Math.max(...rows.map((k) => k.length), 10);
  process.stdout.write(`${'figure'.padEnd(width)}  ${'base'.padStart(12)}  ${'this'.padStart(12)}  this/base\n`);
  for (const k of rows) {
    const b = median(samples.base.get(k)!);
    const t = median(samples.this.get(k)!);
    const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(4));
    process.stdout.write(`${k.padEnd(width)}  ${fmt(b).padStart(12)}  ${fmt(t).padStart(12)}  ${b ? (t / b).toFixed(3) : '-'}\n`);
  }
  process.stdout.write(`\n${o.rounds} rounds, medians; base ${sides.base}, this ${sides.this}; kernel ${os.release()}\n`);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`ab: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
