/**
 * Runs the micro-benchmarks of the core (pool, and ring when bench/micro/ring
 * exists), prints a table and writes bench/results/micro.json.
 * Usage: npm run bench:micro
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchPool } from './pool';

type Bench = () => Promise<object>;

/** bench/micro/ring.ts is written separately; run it when it is there. */
function optional(name: string, exportName: string): Bench | null {
  let file: string;
  try {
    file = require.resolve(`./${name}`);
  } catch {
    return null;
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const fn = (require(file) as Record<string, unknown>)[exportName];
  return typeof fn === 'function' ? (fn as Bench) : null;
}

/** Prints any array of flat records found in a result as a table. */
function printTables(title: string, result: object): void {
  console.log(`\n== ${title} ==`);
  let printed = false;
  for (const [key, value] of Object.entries(result)) {
    if (Array.isArray(value) && value.length && typeof value[0] === 'object') {
      console.log(`-- ${key}`);
      console.table(value);
      printed = true;
    }
  }
  if (!printed) console.log(JSON.stringify(result, null, 2));
}

async function main(): Promise<void> {
  const benches: [string, Bench][] = [['pool', benchPool]];
  const ring = optional('ring', 'benchRing');
  if (ring) benches.push(['ring', ring]);
  else console.log('(bench/micro/ring not present: ring micro-benchmark skipped)');

  const results: Record<string, object> = {};
  for (const [name, fn] of benches) {
    const r = await fn();
    results[name] = r;
    printTables(name, r);
  }
  const out = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: os.release(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    results,
  };
  // dist/bench/micro -> repo root
  const root = path.resolve(__dirname, '..', '..', '..');
  const dir = path.join(root, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'micro.json');
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), file) || file}`);
}

main().then(
  () => process.exit(0), // a ring created by a benchmark must not keep the process alive
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
