/**
 * The Prometheus text format, as the proxies write it: one HELP and one TYPE
 * line per metric, then one sample per label set.
 */
export type MetricRows = [labels: string, value: number][];

/** Appends `name`'s HELP, TYPE and sample lines to `out`. */
export function writeMetric(out: string[], name: string, type: 'counter' | 'gauge', help: string, rows: MetricRows): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, v] of rows) out.push(`${name}${labels} ${v}`);
}
