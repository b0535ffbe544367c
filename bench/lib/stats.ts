// Summaries of per-round figures, ratios to the peer, the A/A control and the goals.
import type { ContenderResult, ControlResult, Field, Goal, GoalResult, RunSample, Scenario, Summary } from './types';

export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summary(xs: number[]): Summary | undefined {
  const s = xs.filter(Number.isFinite);
  if (!s.length) return undefined;
  return { median: median(s), min: Math.min(...s), max: Math.max(...s) };
}

function pick(samples: RunSample[], f: (s: RunSample) => number | undefined): number | undefined {
  const m = median(samples.map((s) => f(s) ?? NaN));
  return Number.isFinite(m) ? m : undefined;
}

/** Fills the medians of a contender's samples. */
export function summarize(r: ContenderResult): void {
  if (r.status === 'skipped') return;
  r.status = r.samples.length ? 'ok' : 'failed';
  if (!r.samples.length && !r.reason) r.reason = r.errors[0] ?? 'no sample';
  r.value = summary(r.samples.map((s) => s.value));
  r.p50 = pick(r.samples, (s) => s.p50);
  r.p99 = pick(r.samples, (s) => s.p99);
  r.cpuPerUnit = pick(r.samples, (s) => s.cpuPerUnit);
  r.rssPeakMiB = pick(r.samples, (s) => s.rssPeakMiB);
}

/** a relative to b, turned so that > 1 means a is better. */
export function better(a: number, b: number, higherIsBetter: boolean): number {
  return higherIsBetter ? a / b : b / a;
}

export function addRatios(results: ContenderResult[], scenario: Scenario): void {
  const peer = results.find((r) => r.id === scenario.peer);
  const hib = scenario.metric.higherIsBetter;
  if (!peer?.value) return;
  for (const r of results) {
    if (!r.value) continue;
    r.ratio = better(r.value.median, peer.value.median, hib);
    const lo = better(hib ? r.value.min : r.value.max, peer.value.median, hib);
    const hi = better(hib ? r.value.max : r.value.min, peer.value.median, hib);
    r.ratioMin = Math.min(lo, hi);
    r.ratioMax = Math.max(lo, hi);
  }
}

/** How far off the best other contender a figure must be to count as a broken set-up, not a result. */
export const ANOMALY_FACTOR = 20;

/**
 * Marks contenders whose median throughput is under 1/ANOMALY_FACTOR of the best other
 * contender's, or whose median latency (p50) is over ANOMALY_FACTOR times the best other's.
 * Nothing measured on one machine in one run is that far apart for a sound reason: the last
 * time it happened, maio's wake-ups were 16 ms late on one kernel build (maio doctor).
 * Figures where lower is better and that are not latencies (memory: a C server's 2 MiB against
 * any JavaScript runtime's 50) are honestly that far apart and are not judged.
 */
/** The median of the samples' raw.loss (UDP scenarios), or undefined. */
function medianLoss(r: ContenderResult): number | undefined {
  const xs = r.samples.map((s) => (s.raw as { loss?: unknown } | undefined)?.loss).filter((x): x is number => typeof x === 'number');
  return xs.length ? summary(xs)?.median : undefined;
}

export function flagAnomalies(results: ContenderResult[], scenario: Scenario): void {
  const ok = results.filter((r) => r.status === 'ok' && r.value);
  const hib = scenario.metric.higherIsBetter;
  for (const r of ok) {
    const others = ok.filter((o) => o !== r);
    if (!others.length) continue;
    const best = others.reduce((a, b) => (better(b.value!.median, a.value!.median, hib) > 1 ? b : a));
    const why: string[] = [];
    const factor = scenario.anomalyFactor ?? ANOMALY_FACTOR;
    if (hib && better(r.value!.median, best.value!.median, hib) < 1 / factor) {
      why.push(`${scenario.metric.label} ${fmt(r.value!.median)} ${scenario.metric.unit} against ${best.label}'s ${fmt(best.value!.median)}`);
    }
    const p50s = others.filter((o) => o.p50 !== undefined && o.p50 > 0);
    if (r.p50 !== undefined && p50s.length) {
      const low = p50s.reduce((a, b) => (b.p50! < a.p50! ? b : a));
      if (r.p50 > ANOMALY_FACTOR * low.p50!) why.push(`median latency ${fmt(r.p50)} us against ${low.label}'s ${fmt(low.p50)} us`);
    }
    const loss = medianLoss(r);
    if (scenario.maxLoss !== undefined && loss !== undefined && loss > scenario.maxLoss) {
      why.push(`median loss ${fmt(loss * 100)}% over ${fmt(scenario.maxLoss * 100)}%: the other end, not this contender, set the figure`);
    }
    if (why.length) r.anomaly = why.join('; ');
  }
}

/** Per-round ratio of the two copies of the same program: the noise floor of this run. */
export function control(results: ContenderResult[], scenario: Scenario): ControlResult {
  const [a, b] = scenario.control;
  if (a === b) return { a, b, ratios: [] }; // no A/A pair here: nothing to compare
  const ra = results.find((r) => r.id === a);
  const rb = results.find((r) => r.id === b);
  const ratios: number[] = [];
  for (const sa of ra?.samples ?? []) {
    const sb = rb?.samples.find((s) => s.round === sa.round);
    if (sb) ratios.push(better(sb.value, sa.value, scenario.metric.higherIsBetter));
  }
  return { a, b, ratios, spread: summary(ratios) };
}

function field(r: ContenderResult, f: Field): number | undefined {
  switch (f) {
    case 'value':
      return r.value?.median;
    case 'p50':
      return r.p50;
    case 'p99':
      return r.p99;
    case 'cpuPerUnit':
      return r.cpuPerUnit;
    case 'rssPeakMiB':
      return r.rssPeakMiB;
  }
}

export function evaluateGoal(goal: Goal, results: ContenderResult[]): GoalResult {
  const maio = results.find((r) => r.id === 'maio');
  const mv = maio?.status === 'ok' ? field(maio, goal.field) : undefined;
  if (mv === undefined) return { label: goal.label, status: 'maio not measured', detail: maio?.reason ?? 'maio not in this run' };
  if (maio!.anomaly) return { label: goal.label, status: 'anomaly', detail: `maio's figure is an anomaly, not a result (${maio!.anomaly}): run maio doctor` };
  if (goal.limit !== undefined) {
    const pass = goal.cmp === '>=' ? mv >= goal.limit : mv <= goal.limit;
    return { label: goal.label, status: pass ? 'pass' : 'fail', ratio: mv / goal.limit, detail: `maio ${fmt(mv)} vs limit ${fmt(goal.limit)}` };
  }
  const refs = results
    .filter((r) => goal.refs.includes(r.id) && r.status === 'ok')
    .map((r) => ({ r, v: field(r, goal.field) }))
    .filter((x): x is { r: ContenderResult; v: number } => x.v !== undefined);
  if (!refs.length) return { label: goal.label, status: 'no reference measured', detail: `none of ${goal.refs.join(', ')} measured` };
  const best = refs.reduce((x, y) => ((goal.cmp === '>=' ? y.v > x.v : y.v < x.v) ? y : x));
  const limit = goal.factor * best.v;
  const pass = goal.cmp === '>=' ? mv >= limit : mv <= limit;
  const ratio = mv / best.v;
  return {
    label: goal.label,
    status: pass ? 'pass' : 'fail',
    ratio,
    detail: `maio ${fmt(mv)} vs ${best.r.label} ${fmt(best.v)} (${ratio.toFixed(2)}x)`,
  };
}

export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
