/**
 * npm run load:10k: 10,000 concurrent connections to a maio echo server (a
 * child process), held and echoing 64-byte messages for --duration seconds
 * (loadgen, bench/build/loadgen). Both processes get RLIMIT_NOFILE raised to
 * --nofile (20,000 here) with prlimit. Reports connection errors (loadgen's
 * exit and the server's socket errors), connections reached, throughput,
 * latency, the server's RSS and the pool's use. PASS when all connections
 * were held with no error.
 *
 *   node dist/bench/load/load-10k.js [--conns 10000] [--duration 20] [--nofile 20000]
 */
import { guardProcessExit } from '../lib/proc';
import { arg, ensureLoadgen, loadgen, MiB, startServer } from './common';

async function main(): Promise<number> {
  guardProcessExit();
  ensureLoadgen();
  const conns = arg('conns', 10_000);
  const duration = arg('duration', 20);
  const nofile = arg('nofile', 20_000);
  // 64-byte messages need small receive buffers: 2 KiB buffers, enough of them for every
  // connection to have one in flight (the thread's group grows on ENOBUFS up to this).
  const t0 = Date.now();
  const server = await startServer(['--sample-ms', '1000', '--read-buffer-size', '2048', '--read-buffers-max', '8192'], nofile);
  let r;
  let loadgenEnd = Infinity;
  try {
    r = await loadgen(
      ['echo', '--port', String(server.port), '--conns', String(conns), '--size', '64', '--depth', '1', '--duration', String(duration), '--warmup', '2', '--batch', '256'],
      (duration + 120) * 1000,
      nofile,
    );
    loadgenEnd = (Date.now() - t0) / 1000;
    await new Promise((res) => setTimeout(res, 1500));
  } finally {
    await server.child.kill();
  }
  const samples = server.samples;
  const end = samples[samples.length - 1];
  const peakRss = Math.max(...samples.map((s) => s.rss));
  const peakPool = Math.max(...samples.map((s) => s.pool.bytesInUse));
  const peakConns = Math.max(...samples.map((s) => s.peakConns));
  // Errors while loadgen ran; at its exit it closes everything (resets included), which is not a failure.
  const during = samples.filter((x) => x.t < loadgenEnd - 1);
  const errorsDuringRun = during.length ? during[during.length - 1].errors : 0;
  const pass = r.code === 0 && r.result !== null && r.result.conns === conns && peakConns >= conns && errorsDuringRun === 0;
  const report = {
    script: 'load-10k',
    pass,
    conns,
    loadgenExit: r.code,
    loadgenError: r.code === 0 ? '' : r.stderr.trim().split('\n').slice(-2).join(' / '),
    connectSeconds: r.result?.connect_s,
    serverPeakConnections: peakConns,
    serverAccepted: end?.accepted,
    serverSocketErrorsDuringRun: errorsDuringRun,
    serverSocketErrorsAtTeardown: end?.errors,
    serverErrorCodesAtTeardown: end?.errorCodes,
    roundTripsPerSecond: r.result ? Math.round(r.result.rtps) : null,
    p50_us: r.result?.p50_us,
    p99_us: r.result?.p99_us,
    measuredSeconds: r.result?.seconds,
    peakRss,
    rssPerConnection: Math.round(peakRss / conns),
    peakPoolBytesInUse: peakPool,
    poolAtEnd: end?.pool,
    recvGroupsAtEnd: (end as unknown as { recvGroups?: unknown })?.recvGroups,
  };
  process.stdout.write(JSON.stringify(report) + '\n');
  process.stderr.write(
    `load:10k: ${pass ? 'PASS' : 'FAIL'}: ${peakConns} connections held (accepted ${end?.accepted}), errors: loadgen exit ${r.code}, server ${errorsDuringRun} during the run (${end?.errors} at teardown); ` +
      `${report.roundTripsPerSecond} round trips/s (p99 ${report.p99_us} us), connect ${report.connectSeconds} s; RSS peak ${MiB(peakRss)}, pool peak ${MiB(peakPool)} in use\n`,
  );
  return pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`load:10k: ${String(err)}\n`);
    process.exit(2);
  },
);
