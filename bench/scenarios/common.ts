// Pieces the scenario files share: metrics and the goals from the issue.
import type { Goal, Metric, Timing } from '../lib/types';

export const RTPS: Metric = { key: 'rtps', label: 'round trips/s', unit: 'rt/s', higherIsBetter: true };
export const GBPS: Metric = { key: 'gbps', label: 'Gbit/s', unit: 'Gbit/s', higherIsBetter: true };
export const DPS: Metric = { key: 'dps', label: 'datagrams/s', unit: 'dgram/s', higherIsBetter: true };
export const RPS: Metric = { key: 'rps', label: 'requests/s', unit: 'req/s', higherIsBetter: true };
export const RSS: Metric = { key: 'rssPeakMiB', label: 'server peak RSS', unit: 'MiB', higherIsBetter: false };

/** Every scenario: maio at least as good as the best of Bun and C. */
export function beatBunAndC(higherIsBetter: boolean, refs: string[] = ['bun', 'c']): Goal {
  // Lower-is-better figures (RSS) compare the other way round; the label says which.
  const cmp = higherIsBetter ? '>=' : '<=';
  return { label: `maio ${cmp} best of Bun, C`, field: 'value', refs, cmp, factor: 1 };
}

/** maio at least `factor` times the best of `refs` (the raised bars of the wake-up issue). */
export function atLeast(factor: number, refs: string[], names: string): Goal {
  return { label: `maio >= ${factor}x ${names}`, field: 'value', refs, cmp: '>=', factor };
}

/** maio's CPU per unit no more than the best of `refs`. */
export function cpuAtMost(refs: string[], names: string): Goal {
  return { label: `maio CPU <= ${names}`, field: 'cpuPerUnit', refs, cmp: '<=', factor: 1 };
}

export const P99_VS_NODE: Goal = { label: 'maio p99 <= node:net p99', field: 'p99', refs: ['node'], cmp: '<=', factor: 1 };

export const CPU_HALF_NODE: Goal = {
  label: 'maio CPU/GB <= 0.5x node:net',
  field: 'cpuPerUnit',
  refs: ['node'],
  cmp: '<=',
  factor: 0.5,
};

/** loadgen arguments common to the request/response modes. */
export function timingArgs(t: Timing): string[] {
  return ['--warmup', String(t.warmup), '--duration', String(t.duration)];
}
