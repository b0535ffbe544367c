/**
 * Anomalies: a contender whose figure is more than 20x off the best other contender of the same
 * run is flagged, not reported as a result, its goals say so, and the summary line points to
 * maio doctor. Pure data: results shaped as the harness makes them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flagAnomalies, evaluateGoal } from '../../bench/lib/stats';
import { markdown, summaryLine, terminalTable } from '../../bench/lib/report';
import type { BenchResult, ContenderResult, Scenario, ScenarioResult } from '../../bench/lib/types';

function contender(id: string, median: number, p50?: number): ContenderResult {
  return { id, label: id, status: 'ok', samples: [], errors: [], value: { median, min: median, max: median }, p50, p99: p50 };
}

const echo = {
  id: 'echo', title: 'echo', kind: 'client', role: 'echo', contenders: [], peer: 'node', control: ['node', 'node-b'],
  metric: { key: 'rps', label: 'round trips/s', unit: 'rt/s', higherIsBetter: true }, cpuPer: 'Mmsg',
  goals: [{ label: 'maio >= 1.3x C', field: 'value', refs: ['c'], cmp: '>=', factor: 1.3 }],
} as Scenario;
const rss = { ...echo, metric: { key: 'rss', label: 'RSS', unit: 'MiB', higherIsBetter: false }, goals: [] } as Scenario;

test('flagAnomalies: throughput under 1/20 or median latency over 20x of the best other contender; memory is not judged', () => {
  const cases: [string, Scenario, ContenderResult[], string[]][] = [
    // [what, scenario, results, ids flagged]
    ['the issue\'s case: 63 rt/s at p50 16 ms against 28,000', echo, [contender('maio', 63, 16000), contender('node', 28000, 35), contender('c', 27000, 33)], ['maio']],
    ['within 20x is a result, however bad', echo, [contender('maio', 1500, 600), contender('node', 28000, 35)], []],
    ['latency alone', echo, [contender('maio', 20000, 900), contender('node', 28000, 35)], ['maio']],
    // Memory is not a throughput: a C server's 2 MiB against a runtime's 50 is real, not broken.
    ['memory, 25x apart: not judged', rss, [contender('maio', 50), contender('c', 2)], []],
    ['memory, but a latency 20x off still is', rss, [contender('maio', 50, 30000), contender('c', 2, 900)], ['maio']],
    ['one contender: nothing to compare', echo, [contender('maio', 1)], []],
  ];
  for (const [what, s, results, flagged] of cases) {
    flagAnomalies(results, s);
    assert.deepEqual(results.filter((r) => r.anomaly).map((r) => r.id), flagged, what);
  }
});

test('an anomaly is not a result: goals, table, Markdown and the summary line say so and name maio doctor', () => {
  const results = [contender('maio', 63, 16000), contender('node', 28000, 35), contender('c', 27000, 33)];
  flagAnomalies(results, echo);
  const goal = evaluateGoal(echo.goals[0]!, results);
  assert.equal(goal.status, 'anomaly');
  assert.match(goal.detail, /maio doctor/);
  const sr: ScenarioResult = { id: 'echo', title: 'echo', metric: echo.metric, cpuPer: 'Mmsg', peer: 'node', contenders: results, control: { a: 'node', b: 'node-b', ratios: [] }, goals: [goal] };
  const result = {
    startedAt: '', finishedAt: '', command: 'x', mode: 'short', timing: { rounds: 1, warmup: 0, duration: 1 },
    machine: { cpu: 'x', cores: 2, kernel: 'k', node: 'v20', bun: null, iperf3: null, pinned: false }, scenarios: [sr],
  } as BenchResult;
  const table = terminalTable(result);
  assert.match(table, /ANOMALY maio: round trips\/s 63.0 rt\/s against node's 28,000.*not a result \(run: npx maio doctor\)/);
  assert.doesNotMatch(table, /0\.00x/, 'no ratio printed for the anomaly');
  assert.match(markdown(result, null), /\*\*anomaly\*\*/);
  assert.match(summaryLine(result), /ANOMALY in echo\/maio: those figures are not results, run `npx maio doctor`/);
  // And a clean run says so too.
  const clean = [contender('maio', 30000, 30), contender('node', 28000, 35)];
  flagAnomalies(clean, echo);
  const ok = { ...result, scenarios: [{ ...sr, contenders: clean, goals: [] }] } as BenchResult;
  assert.equal(summaryLine(ok), 'summary: maio ahead of node:net in 1 of 1 scenarios; goals 0 pass, 0 fail; no anomaly');
});
