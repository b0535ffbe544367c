/**
 * Summing what workers report: numbers field by field (nested objects too),
 * and Prometheus text sample by sample (same name and labels).
 */

/** Fields that identify a worker rather than count something. */
const IDENTITY = new Set(['index', 'id', 'threadId', 'cpus', 'backend']);

/** Sums the numeric fields of like-shaped objects; arrays, strings and identities are left out. */
export function sumNumbers(items: readonly unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const objs = items.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x));
  const keys = new Set<string>();
  for (const o of objs) for (const k of Object.keys(o)) keys.add(k);
  for (const k of keys) {
    if (IDENTITY.has(k)) continue;
    const vals = objs.map((o) => o[k]).filter((v) => v !== undefined && v !== null);
    if (vals.length === 0) continue;
    if (vals.every((v) => typeof v === 'number')) out[k] = (vals as number[]).reduce((a, b) => a + b, 0);
    else if (vals.every((v) => typeof v === 'object' && !Array.isArray(v))) {
      const nested = sumNumbers(vals);
      if (Object.keys(nested).length) out[k] = nested;
    }
  }
  return out;
}

/**
 * Prometheus text exposition from several workers as one: samples with the
 * same metric name and labels are added (counters and gauges of a server
 * spread over workers both sum); # HELP / # TYPE lines are kept once.
 */
export function sumPrometheus(texts: readonly string[]): string {
  const meta = new Map<string, string[]>();
  const samples = new Map<string, number>();
  const order: string[] = [];
  const family = (name: string) => name.replace(/_(bucket|sum|count|total)$/, '');
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const t = line.trim();
      if (!t) continue;
      const m = /^#\s+(HELP|TYPE)\s+(\S+)/.exec(t);
      if (m) {
        const lines = meta.get(m[2]!) ?? [];
        if (!lines.some((l) => l.startsWith(`# ${m[1]} `))) lines.push(t.replace(/^#\s+/, '# '));
        meta.set(m[2]!, lines);
        continue;
      }
      if (t.startsWith('#')) continue;
      const s = /^([^\s{]+(?:\{[^}]*\})?)\s+(\S+)/.exec(t);
      if (!s) continue;
      const v = Number(s[2]);
      if (!samples.has(s[1]!)) order.push(s[1]!);
      samples.set(s[1]!, (samples.get(s[1]!) ?? 0) + (Number.isFinite(v) ? v : 0));
    }
  }
  const out: string[] = [];
  const written = new Set<string>();
  for (const key of order) {
    const name = key.replace(/\{.*$/, '');
    for (const fam of [name, family(name)]) {
      if (!written.has(fam) && meta.has(fam)) {
        written.add(fam);
        out.push(...meta.get(fam)!);
      }
    }
    out.push(`${key} ${samples.get(key)}`);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}
