// The steady-state contender: `maio echo` itself (dist/src/cli/echo.js) plus measurements, run with
// node --expose-gc. Nothing is added to the data path: messages are counted from maio's own
// stats() (bytes read / --size), polled every 100 ms.
//
//   node --expose-gc maio-steady.js --maio DIST_SRC --port P [--host H] [--size 64]
//        [--warmup-messages 1000000] [--sample-every 1000000]
//
// After --warmup-messages it forces a full GC and takes the live heap as the reference, then does
// the same every --sample-every messages. GC time counts every collection after warm-up except the
// forced ones (perf_hooks 'gc' entries, NODE_PERFORMANCE_GC_FLAGS_FORCED). When the last connection
// closes after traffic (the load generator is done), or on SIGTERM, it prints one line
// `report {json}` on stdout. The end figure is the last sample taken under load (connections open);
// the heap after every connection closed is reported apart (heapAfterCloseMiB).
'use strict';
const { PerformanceObserver, constants } = require('node:perf_hooks');
const fs = require('node:fs');
const path = require('node:path');
const args = require('./args');

const o = args({
  maio: '',
  port: 0,
  host: '127.0.0.1',
  size: 64,
  'warmup-messages': 1e6,
  'sample-every': 1e6,
});
if (typeof global.gc !== 'function') {
  process.stderr.write('maio-steady: run with node --expose-gc\n');
  process.exit(2);
}
const dist = o.maio || path.join(__dirname, '..', '..', 'dist', 'src');
const { run } = require(path.join(dist, 'cli', 'echo.js'));
const { stats } = require(path.join(dist, 'net', 'stats.js'));
const { defaultPool } = require(path.join(dist, 'pool', 'pool.js'));

const MiB = 1024 * 1024;
const FORCED = constants.NODE_PERFORMANCE_GC_FLAGS_FORCED;
const gcTotals = { ms: 0, count: 0, major: 0, majorMs: 0, forced: 0 };
let counting = false;
new PerformanceObserver((list) => {
  if (!counting) return;
  for (const e of list.getEntries()) {
    if ((e.detail?.flags ?? e.flags ?? 0) & FORCED) {
      gcTotals.forced++;
      continue;
    }
    gcTotals.ms += e.duration;
    gcTotals.count++;
    if ((e.detail?.kind ?? e.kind) === constants.NODE_PERFORMANCE_GC_MAJOR) {
      gcTotals.major++;
      gcTotals.majorMs += e.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });

const messages = () => Math.floor(stats().bytesRead / o.size);
/** Live heap after a full collection. */
function liveHeap() {
  global.gc();
  return process.memoryUsage().heapUsed;
}
function vm(field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
}

const samples = []; // { messages, heapMiB, at }
let warm = null; // { messages, heap, at }
let nextSample = o['warmup-messages'];
let seenTraffic = false;
let reported = false;
const t0 = performance.now();

function sample() {
  const m = messages();
  const heap = liveHeap();
  const at = (performance.now() - t0) / 1000;
  if (!warm) {
    warm = { messages: m, heap, at };
    counting = true;
  }
  samples.push({ messages: m, heapMiB: +(heap / MiB).toFixed(3), at: +at.toFixed(2) });
  return heap;
}

function report(why) {
  if (reported) return;
  reported = true;
  clearInterval(poll);
  const afterClose = liveHeap();
  const end = samples.length ? samples[samples.length - 1].heapMiB * MiB : afterClose;
  const m = messages();
  const measured = warm ? m - warm.messages : 0;
  const p = defaultPool().stats();
  const out = {
    why,
    messages: m,
    warmupMessages: warm ? warm.messages : null,
    measuredMessages: measured,
    seconds: warm ? +((performance.now() - t0) / 1000 - warm.at).toFixed(2) : null,
    heapWarmMiB: warm ? +(warm.heap / MiB).toFixed(3) : null,
    heapEndMiB: +(end / MiB).toFixed(3),
    heapAfterCloseMiB: +(afterClose / MiB).toFixed(3),
    heapRatio: warm ? +(end / warm.heap).toFixed(4) : null,
    heapMaxRatio: warm ? +(Math.max(...samples.map((s) => s.heapMiB)) / (warm.heap / MiB)).toFixed(4) : null,
    heapSamples: samples,
    gcMs: +gcTotals.ms.toFixed(1),
    gcCount: gcTotals.count,
    gcMajor: gcTotals.major,
    gcMajorMs: +gcTotals.majorMs.toFixed(1),
    gcMsPerMmsg: measured > 0 ? +((gcTotals.ms / measured) * 1e6).toFixed(1) : null,
    forcedGcs: gcTotals.forced,
    rssMiB: vm('VmRSS'),
    rssPeakMiB: vm('VmHWM'),
    heapTotalMiB: +(process.memoryUsage().heapTotal / MiB).toFixed(1),
    pool: {
      residency: p.residency,
      residentMiB: +(p.residentBytes / MiB).toFixed(2),
      inUse: p.inUse,
      lent: p.lent,
      failedAllocs: p.failedAllocs,
      highWater: Object.fromEntries(p.classes.map((c) => [c.size, c.highWater])),
    },
    recvGroups: stats().recvGroups.map((g) => ({ bufferSize: g.bufferSize, buffers: g.buffers, noBufferEvents: g.noBufferEvents })),
  };
  process.stdout.write(`report ${JSON.stringify(out)}\n`);
}

const poll = setInterval(() => {
  const s = stats();
  if (s.socketsOpen > 0) seenTraffic = true;
  if (messages() >= nextSample) {
    sample();
    while (nextSample <= messages()) nextSample += o['sample-every'];
  }
  if (seenTraffic && s.socketsOpen === 0) report('connections closed');
}, 100);

const server = run(['--port', String(o.port), '--host', o.host]);
void server;
// The echo CLI exits on SIGTERM; report first.
process.prependListener('SIGTERM', () => report('SIGTERM'));
