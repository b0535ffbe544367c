/**
 * npm run soak: at least 10 million 64-byte echo messages through a maio
 * server (a child process), loadgen (bench/build/loadgen) driving it in runs
 * of --run-s seconds until --messages round trips are done and at least
 * --min-seconds have passed (so that memory is watched over time, not a burst). The server's RSS
 * and JS heap are sampled every second, each after a full GC (--expose-gc); after warm-up (the first
 * --warmup-pct of the messages) the median of the last tenth of the samples
 * must be within 5% of the median of the first tenth, for RSS and for the
 * heap: PASS or FAIL, and the exit code says the same.
 *
 *   node dist/bench/load/soak.js [--messages 10000000] [--conns 64] [--depth 8] [--run-s 10] [--min-seconds 120] [--warmup-pct 30]
 */
import { guardProcessExit } from '../lib/proc';
import { arg, ensureLoadgen, loadgen, median, MiB, startServer, type Sample } from './common';

async function main(): Promise<number> {
  guardProcessExit();
  ensureLoadgen();
  const target = arg('messages', 10_000_000);
  const conns = arg('conns', 64);
  const depth = arg('depth', 8);
  const runS = arg('run-s', 10);
  const minSeconds = arg('min-seconds', 120);
  const warmupPct = arg('warmup-pct', 30);
  // A full GC before each sample: the heap and RSS figures are the live set, comparable over time.
  const server = await startServer(['--sample-ms', '1000', '--gc'], undefined, ['--expose-gc']);
  let done = 0;
  let runs = 0;
  let failures = 0;
  let seconds = 0;
  const marks: { t: number; messages: number }[] = [];
  const started = Date.now();
  try {
    while (done < target || seconds < minSeconds) {
      const r = await loadgen(['echo', '--port', String(server.port), '--conns', String(conns), '--size', '64', '--depth', String(depth), '--duration', String(runS), '--warmup', '0'], (runS + 60) * 1000);
      runs++;
      if (r.code !== 0 || !r.result) {
        failures++;
        process.stderr.write(`soak: loadgen run ${runs} failed (code ${r.code}): ${r.stderr.trim().split('\n').slice(-2).join(' / ')}\n`);
        if (failures > 3) break;
        continue;
      }
      done += r.result.round_trips;
      seconds += r.result.seconds;
      marks.push({ t: (Date.now() - started) / 1000, messages: done });
      process.stderr.write(`soak: run ${runs}: ${r.result.round_trips} messages (${Math.round(r.result.rtps)}/s, p99 ${r.result.p99_us} us), total ${done}\n`);
    }
    await new Promise((r) => setTimeout(r, 1500)); // one more sample after the last run
  } finally {
    await server.child.kill();
  }
  const samples: Sample[] = server.samples;
  // Warm-up ends when warmupPct of the messages are done (by time of the run marks).
  const warmMsgs = (done * warmupPct) / 100;
  const warmT = marks.find((m) => m.messages >= warmMsgs)?.t ?? 0;
  const t0Server = samples.length ? samples[0].t : 0;
  const after = samples.filter((s) => s.t - t0Server >= warmT && s.conns > 0);
  const tenth = Math.max(3, Math.floor(after.length / 10));
  const first = after.slice(0, tenth);
  const last = after.slice(-tenth);
  const growth = (k: 'rss' | 'heapUsed'): number => median(last.map((s) => s[k])) / median(first.map((s) => s[k])) - 1;
  const spread = (k: 'rss' | 'heapUsed'): [number, number] => [Math.min(...after.map((s) => s[k])), Math.max(...after.map((s) => s[k]))];
  const rssG = growth('rss');
  const heapG = growth('heapUsed');
  const end = samples[samples.length - 1];
  const pass = done >= target && failures === 0 && after.length >= 6 && Math.abs(rssG) <= 0.05 && Math.abs(heapG) <= 0.05;
  const report = {
    script: 'soak',
    pass,
    messages: done,
    runs,
    loadgenFailures: failures,
    measuredSeconds: Number(seconds.toFixed(1)),
    messagesPerSecond: Math.round(done / seconds),
    samplesAfterWarmup: after.length,
    warmupSeconds: warmT,
    // RSS less V8's heap reservation: the native side (pool, rings, malloc), without V8's sizing
    nonHeapRss: {
      firstMedian: median(first.map((x) => x.rss - x.heapTotal)),
      lastMedian: median(last.map((x) => x.rss - x.heapTotal)),
      growthPct: Number(((median(last.map((x) => x.rss - x.heapTotal)) / median(first.map((x) => x.rss - x.heapTotal)) - 1) * 100).toFixed(2)),
    },
    rss: { firstMedian: median(first.map((s) => s.rss)), lastMedian: median(last.map((s) => s.rss)), growthPct: Number((rssG * 100).toFixed(2)), minMax: spread('rss') },
    heapUsed: { firstMedian: median(first.map((s) => s.heapUsed)), lastMedian: median(last.map((s) => s.heapUsed)), growthPct: Number((heapG * 100).toFixed(2)), minMax: spread('heapUsed') },
    // loadgen resets its connections at the end of each run: ECONNRESET there is expected
    // every 5th sample after warm-up: [s, RSS MiB, heapUsed MiB, heapTotal MiB, external MiB]
    series: after
      .filter((_, i) => i % 5 === 0)
      .map((x) => [Math.round(x.t), +(x.rss / 1048576).toFixed(1), +(x.heapUsed / 1048576).toFixed(1), +(x.heapTotal / 1048576).toFixed(1), +(x.external / 1048576).toFixed(1)]),
    serverErrors: end?.errors,
    serverErrorCodes: end?.errorCodes,
    poolAtEnd: end?.pool,
  };
  process.stdout.write(JSON.stringify(report) + '\n');
  process.stderr.write(
    `soak: ${pass ? 'PASS' : 'FAIL'}: ${done} messages in ${runs} runs (${report.messagesPerSecond}/s); RSS ${MiB(report.rss.firstMedian)} -> ${MiB(report.rss.lastMedian)} (${report.rss.growthPct}%), heap ${MiB(report.heapUsed.firstMedian)} -> ${MiB(report.heapUsed.lastMedian)} (${report.heapUsed.growthPct}%), server errors ${report.serverErrors}\n`,
  );
  return pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${String(err)}\n`);
    process.exit(2);
  },
);
