/**
 * Micro-benchmark: NOPs through the ring in batches of 1, 16 and 256, on
 * the engine this run's backend picks (MAIO_BACKEND=epoll for the epoll one).
 *
 * Each round queues `batch` NOPs in one turn and waits for all of them, so
 * the numbers show what one flush per turn buys: operations per second and
 * how many submissions and completions each enter (io_uring_enter, or
 * epoll's system calls) carries.
 * Run alone: `node dist/bench/micro/ring.js`.
 */
import { Ring, type CompletionTarget } from '../../src/ring/ring';
import { backend } from '../../src/backend';

export interface RingBenchRow {
  batch: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  enters: number;
  submittedPerEnter: number;
  completionsPerEnter: number;
  completionsPerBatch: number;
}

class Countdown implements CompletionTarget {
  left = 0;
  done: (() => void) | null = null;
  onCompletion(): void {
    if (--this.left === 0 && this.done) {
      const d = this.done;
      this.done = null;
      d();
    }
  }
}

async function run(ring: Ring, batch: number, ops: number): Promise<RingBenchRow> {
  const target = new Countdown();
  const rounds = Math.max(1, Math.floor(ops / batch));
  const round = (): Promise<void> =>
    new Promise((resolve) => {
      target.left = batch;
      target.done = resolve;
      for (let i = 0; i < batch; i++) ring.nop(target);
    });
  for (let i = 0; i < Math.min(rounds, 50); i++) await round(); // warm-up
  const before = ring.stats();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) await round();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = ring.stats();
  const enters = after.enters - before.enters;
  const submitted = after.submitted - before.submitted;
  const completed = after.completed - before.completed;
  const batches = after.reapBatches - before.reapBatches;
  return {
    batch,
    ops: rounds * batch,
    seconds,
    opsPerSec: (rounds * batch) / seconds,
    enters,
    submittedPerEnter: enters ? submitted / enters : 0,
    completionsPerEnter: enters ? completed / enters : 0,
    completionsPerBatch: batches ? completed / batches : 0,
  };
}

export async function benchRing(): Promise<object> {
  const b = backend();
  const ring = Ring.current();
  const rows: RingBenchRow[] = [];
  for (const [batch, ops] of [
    [1, 20000],
    [16, 100000],
    [256, 200000],
  ] as const) {
    rows.push(await run(ring, batch, ops));
  }
  return { name: 'ring', backend: b.summary, rows };
}

if (require.main === module) {
  benchRing().then(
    (r) => {
      const res = r as { backend: string; rows?: RingBenchRow[]; skipped?: string };
      console.log(res.backend);
      if (!res.rows) {
        console.log(`skipped: ${res.skipped}`);
        return;
      }
      console.log('batch      ops/s   enters  submitted/enter  completed/enter  completions/JS call');
      for (const row of res.rows) {
        console.log(
          `${String(row.batch).padStart(5)} ${Math.round(row.opsPerSec).toLocaleString('en-US').padStart(10)} ` +
            `${String(row.enters).padStart(8)} ${row.submittedPerEnter.toFixed(1).padStart(16)} ` +
            `${row.completionsPerEnter.toFixed(1).padStart(16)} ${row.completionsPerBatch.toFixed(1).padStart(20)}`,
        );
      }
    },
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
