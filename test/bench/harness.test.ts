// The benchmark harness on a tiny run: real servers, real loadgen, real files. No speed assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ccSkip } from './helpers';
import { buildCTools, detectEnv, findRoot, runBench } from '../../bench/run';
import { pidAlive, startedPids } from '../../bench/lib/proc';
import { markdown, replaceSection, MD_END, MD_START } from '../../bench/lib/report';
import type { BenchResult, Scenario } from '../../bench/lib/types';
import { scenario as echo1 } from '../../bench/scenarios/echo-64b-1c';
import { scenario as steady } from '../../bench/scenarios/steady-10m';
import { scenario as proxyScenario } from '../../bench/scenarios/proxy';
import { scenario as fileSend } from '../../bench/scenarios/file-send';
import { scenario as http64 } from '../../bench/scenarios/http-64c';
import { scenario as httpsBulk } from '../../bench/scenarios/https-bulk';


const skip = ccSkip;
const root = findRoot(__dirname);
const TINY = { rounds: 1, warmup: 0.2, duration: 1 };

async function tinyRun(scenario: Scenario, envPatch: Partial<ReturnType<typeof detectEnv>> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maio-bench-test-'));
  const buildDir = path.join(dir, 'build');
  buildCTools(root, buildDir);
  const env = { ...detectEnv(root, buildDir), ...envPatch };
  const before = startedPids.length;
  const log: string[] = [];
  const out = await runBench({
    scenarios: [scenario],
    timing: TINY,
    env,
    outDir: path.join(dir, 'results'),
    mode: 'custom',
    command: 'test',
    log: (l) => log.push(l),
  });
  return { dir, out, log, pids: startedPids.slice(before) };
}

test('harness: node:net and C echo, measured, written, and nothing left running', { skip, timeout: 60000 }, async () => {
  const scenario: Scenario = { ...echo1, contenders: ['node', 'c'] };
  const { dir, out, log, pids } = await tinyRun(scenario);
  try {
    // Each contender: one server and one loadgen, all gone now.
    assert.equal(pids.length, 4, `started pids: ${pids.join(', ')}`);
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} is still alive`);

    const s = out.result.scenarios[0];
    assert.deepEqual(s.contenders.map((c) => c.id), ['node', 'c']);
    for (const c of s.contenders) {
      assert.equal(c.status, 'ok', `${c.id}: ${c.reason ?? ''} ${c.errors.join('; ')}`);
      assert.equal(c.samples.length, 1);
      assert.ok(c.value!.median > 0, `${c.id} round trips/s`);
      assert.ok(c.p50! > 0 && c.p99! >= c.p50!, `${c.id} latency ${c.p50} / ${c.p99}`);
      assert.ok(c.rssPeakMiB! > 0, `${c.id} RSS`);
      assert.ok(Number.isFinite(c.cpuPerUnit) && c.cpuPerUnit! >= 0, `${c.id} CPU`);
      assert.ok(c.ratio! > 0);
    }
    assert.equal(s.contenders[0].ratio, 1, 'the peer is 1.00x of itself');
    for (const g of s.goals) assert.equal(g.status, 'maio not measured');
    assert.equal(log.filter((l) => / round 1\/1 /.test(l)).length, 2, log.join('\n'));

    const json = JSON.parse(readFileSync(out.files.json, 'utf8')) as BenchResult;
    assert.deepEqual(json, JSON.parse(readFileSync(out.files.latest, 'utf8')));
    assert.equal(json.scenarios[0].contenders[1].value!.median, s.contenders[1].value!.median);
    assert.ok(json.machine.cores >= 1 && json.machine.kernel.length > 0);
    const svg = readFileSync(out.files.svg, 'utf8');
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal((svg.match(/<rect /g) ?? []).length >= 3, true);

    const md = markdown(json, null);
    assert.match(md, /\| echo 64 B, 1 connection \(rt\/s\) \| C epoll \| [\d,]+ \|/);
    assert.match(md, /maio not measured/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('harness: a contender that exits at once is skipped with its reason, not failed', { skip, timeout: 30000 }, async () => {
  const fake = path.join(mkdtempSync(path.join(os.tmpdir(), 'maio-bench-cli-')), 'main.js');
  writeFileSync(fake, "process.stderr.write('not yet\\n'); process.exit(3);\n");
  const scenario: Scenario = { ...echo1, contenders: ['maio', 'c'] };
  const { dir, out, pids } = await tinyRun(scenario, { maioCli: fake });
  try {
    const maio = out.result.scenarios[0].contenders.find((c) => c.id === 'maio')!;
    assert.equal(maio.status, 'skipped');
    assert.match(maio.reason!, /maio CLI not built yet/);
    assert.equal(out.result.scenarios[0].goals[0].status, 'maio not measured');
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} is still alive`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.dirname(fake), { recursive: true, force: true });
  }
});

test('harness: a missing maio CLI is reported as not built, without starting it', { skip, timeout: 10000 }, async () => {
  const scenario: Scenario = { ...echo1, contenders: ['maio'] };
  const { dir, out, pids } = await tinyRun(scenario, { maioCli: path.join(os.tmpdir(), 'no-such-maio-cli.js') });
  try {
    assert.equal(pids.length, 0);
    assert.equal(out.result.scenarios[0].contenders[0].reason, 'maio CLI not built yet');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('harness: steady state on a tiny run: the maio server reports heap, GC, RSS and pool stats', { skip, timeout: 60000 }, async (t) => {
  if (!existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js'))) return t.skip('maio is not built');
  const scenario: Scenario = {
    ...steady,
    contenders: ['maio'],
    loadgen: () => ['echo', '--conns', '4', '--depth', '2', '--size', '64', '--warmup', '0.2', '--duration', '30', '--messages', '20000'],
    serverArgs: ['--warmup-messages', '2000', '--sample-every', '5000'],
  };
  const { dir, out, pids } = await tinyRun(scenario);
  try {
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} is still alive`);
    const maio = out.result.scenarios[0].contenders[0];
    assert.equal(maio.status, 'ok', `${maio.reason ?? ''} ${maio.errors.join('; ')}`);
    const sample = maio.samples[0];
    const r = sample.raw!.server as Record<string, any>;
    assert.ok(r.measuredMessages > 0 && r.warmupMessages >= 2000, JSON.stringify(r));
    assert.ok(r.heapWarmMiB > 0 && r.heapEndMiB > 0);
    assert.equal(sample.value, r.heapRatio, 'the figure is the server\'s heap ratio');
    assert.ok(r.heapSamples.length >= 2);
    assert.ok(Number.isInteger(r.gcCount) && r.gcMs >= 0);
    assert.ok(r.rssPeakMiB > 0);
    assert.equal(r.pool.residency, 'lazy', 'an echo over loopback never sends zero-copy');
    assert.ok(['pass', 'fail'].includes(out.result.scenarios[0].goals[0].status));
    assert.match(out.result.scenarios[0].goals[0].detail, /vs limit 1\.05/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('harness: proxies between iperf3 ends and file senders, measured, and nothing left running', { skip, timeout: 120000 }, async (t) => {
  const env = detectEnv(root);
  if (!env.iperf3) return t.skip('iperf3 not installed');
  const maioBuilt = existsSync(env.maioCli);
  const proxies = [...(maioBuilt ? ['maio'] : []), 'node', ...(env.haproxy ? ['haproxy'] : []), 'iperf3'];
  const senders = [...(maioBuilt ? ['maio'] : []), 'node', 'c-sendfile', 'iperf3'];
  const runs = [
    { scenario: { ...proxyScenario, contenders: proxies }, ids: proxies },
    { scenario: { ...fileSend, contenders: senders, fileBytes: 8 << 20 }, ids: senders },
  ];
  for (const { scenario, ids } of runs) {
    const { dir, out, pids } = await tinyRun(scenario);
    try {
      assert.ok(pids.length >= ids.length * 2, `started pids: ${pids.join(', ')}`);
      for (const pid of pids) assert.equal(pidAlive(pid), false, `${scenario.id}: pid ${pid} is still alive`);
      const s = out.result.scenarios[0];
      for (const c of s.contenders) {
        assert.equal(c.status, 'ok', `${scenario.id} ${c.id}: ${c.reason ?? ''} ${c.errors.join('; ')}`);
        assert.ok(c.value!.median > 0, `${scenario.id} ${c.id} Gbit/s`);
        // iperf3 direct has no process in between, so no CPU figure.
        if (!(scenario.id === 'proxy' && c.id === 'iperf3')) assert.ok(c.cpuPerUnit! > 0, `${scenario.id} ${c.id} CPU`);
      }
      for (const g of s.goals) assert.notEqual(g.status, maioBuilt ? 'maio not measured' : 'pass', g.label);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // The scenario's file is gone.
  assert.deepEqual(readdirSync(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()).filter((f) => f === `maio-bench-file-${process.pid}`), []);
});

test('harness: HTTP and HTTPS servers driven by wrk, measured, and nothing left running', { skip, timeout: 120000 }, async (t) => {
  const env = detectEnv(root);
  if (!env.wrk || !env.openssl) return t.skip('wrk or openssl not installed (scripts/bench-setup.sh installs them)');
  const ids = [...(existsSync(env.maioCli) ? ['maio'] : []), 'node'];
  const tmp = () => readdirSync(os.tmpdir()).filter((f) => f.startsWith('maio-bench-tls-'));
  const certsBefore = tmp();
  for (const scenario of [{ ...http64, contenders: ids }, { ...httpsBulk, contenders: ids }]) {
    const { dir, out, pids } = await tinyRun(scenario);
    try {
      // Each contender: one server and two wrk runs (warm-up, measured), all gone now.
      assert.equal(pids.length, ids.length * 3, `${scenario.id}: started pids: ${pids.join(', ')}`);
      for (const pid of pids) assert.equal(pidAlive(pid), false, `${scenario.id}: pid ${pid} is still alive`);
      const s = out.result.scenarios[0];
      for (const c of s.contenders) {
        assert.equal(c.status, 'ok', `${scenario.id} ${c.id}: ${c.reason ?? ''} ${c.errors.join('; ')}`);
        assert.ok(c.value!.median > 0, `${scenario.id} ${c.id} figure`);
        assert.ok(c.p50! > 0 && c.p99! >= c.p50!, `${scenario.id} ${c.id} latency ${c.p50} / ${c.p99}`);
        assert.ok(c.cpuPerUnit! > 0 && c.rssPeakMiB! > 0, `${scenario.id} ${c.id} CPU, RSS`);
        const raw = c.samples[0].raw as { requests: number; bodyBytes: number; gbps: number };
        assert.ok(raw.requests > 0);
        if (scenario.id === 'https-bulk') {
          assert.equal(raw.bodyBytes, 1 << 20);
          assert.equal(c.value!.median, raw.gbps, 'the figure is bodies delivered, in Gbit/s');
        }
      }
      if (ids.includes('maio')) assert.match(s.contenders[0].label, /on maio\/net/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.deepEqual(tmp(), certsBefore, 'the throwaway certificate is removed after its scenario');
});

test('harness: without wrk the HTTP scenarios are skipped with the reason, nothing started', { skip, timeout: 10000 }, async () => {
  const { dir, out, pids } = await tinyRun({ ...http64, contenders: ['node'] }, { wrk: null });
  try {
    assert.equal(pids.length, 0);
    assert.match(out.result.scenarios[0].skipped!, /wrk not installed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BENCHMARKS.md: only the marked section is replaced', () => {
  const doc = `# B\n\nintro\n\n${MD_START}\nold\n${MD_END}\n\nafter\n`;
  const next = replaceSection(doc, 'new table');
  assert.equal(next, `# B\n\nintro\n\n${MD_START}\nnew table\n${MD_END}\n\nafter\n`);
  assert.equal(replaceSection(next, 'again'), `# B\n\nintro\n\n${MD_START}\nagain\n${MD_END}\n\nafter\n`);
  assert.ok(replaceSection('# B\n', 'x').endsWith(`${MD_START}\nx\n${MD_END}\n`));
  assert.ok(existsSync(path.join(root, 'bench', 'c', 'loadgen.c')));
});
