// Output of a run: the terminal table, the SVG chart and the Markdown section.
import { better, fmt } from './stats';
import type { BenchResult, ContenderResult, ScenarioResult } from './types';

const PCT = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : `${v.toFixed(2)}x`);

function cpuUnit(s: ScenarioResult): string {
  return s.cpuPer === 'GB' ? 'CPU s/GB' : 'CPU s/M msg';
}

function latency(r: ContenderResult): string {
  return r.p50 === undefined ? '-' : `${fmt(r.p50)} / ${fmt(r.p99)}`;
}

function range(r: ContenderResult): string {
  return r.value ? `${fmt(r.value.min)}-${fmt(r.value.max)}` : '-';
}

export function controlText(s: ScenarioResult): string {
  const c = s.control.spread;
  if (s.control.a === s.control.b) return 'no A/A pair in this scenario';
  if (!c) return 'A/A control not measured';
  return `A/A ${s.control.b} / ${s.control.a}: ${PCT(c.median)} (${PCT(c.min)}-${PCT(c.max)} over ${s.control.ratios.length} rounds)`;
}

function pad(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

/** The table printed at the end of a run. */
export function terminalTable(result: BenchResult): string {
  const out: string[] = [];
  for (const s of result.scenarios) {
    const peer = s.contenders.find((c) => c.id === s.peer)?.label ?? s.peer;
    out.push('', `${s.title}: ${s.metric.label} (${s.metric.unit}); ratio > 1 is better than ${peer}`);
    if (s.skipped) {
      out.push(`  skipped: ${s.skipped}`);
      continue;
    }
    const rows = [['  contender', 'median', 'min-max', `vs ${peer}`, 'p50/p99 us', cpuUnit(s), 'RSS MiB']];
    for (const r of s.contenders) {
      if (r.status !== 'ok') {
        rows.push([`  ${r.label}`, `${r.status}: ${r.reason ?? ''}`, '', '', '', '', '']);
        continue;
      }
      rows.push([`  ${r.label}`, fmt(r.value?.median), range(r), r.anomaly ? 'ANOMALY' : PCT(r.ratio), latency(r), fmt(r.cpuPerUnit), fmt(r.rssPeakMiB)]);
    }
    // Skipped rows would stretch the median column: print them after the table instead.
    const ok = rows.filter((r) => r[2] !== '' || r === rows[0]);
    out.push(pad(ok));
    for (const r of rows) if (r[2] === '' && r !== rows[0]) out.push(`${r[0]}  ${r[1]}`);
    for (const r of s.contenders) if (r.anomaly) out.push(`  ANOMALY ${r.label}: ${r.anomaly}; not a result (run: npx maio doctor)`);
    out.push(`  ${controlText(s)}`);
    for (const g of s.goals) out.push(`  goal: ${g.label}: ${g.status.toUpperCase()}${g.status === 'pass' || g.status === 'fail' ? ` (${g.detail})` : ''}`);
  }
  return out.join('\n');
}

const COLORS: Record<string, string> = {
  maio: '#d62728',
  node: '#2ca02c',
  'node-b': '#98df8a',
  bun: '#ff7f0e',
  c: '#1f77b4',
  'c-512k': '#6baed6',
  iperf3: '#9467bd',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Grouped bars: each contender's ratio to the peer per scenario, whiskers min-max, grey band = A/A spread. */
export function svgChart(result: BenchResult): string {
  const scen = result.scenarios.filter((s) => !s.skipped);
  const ids: string[] = [];
  for (const s of scen) for (const c of s.contenders) if (!ids.includes(c.id)) ids.push(c.id);
  const bar = 16;
  const gap = 28;
  const groupW = (s: ScenarioResult): number => s.contenders.length * bar + gap;
  const left = 56;
  const top = 48;
  const plotH = 260;
  const width = Math.max(480, left + scen.reduce((w, s) => w + groupW(s), 0) + 20);
  const height = top + plotH + 90;
  let maxR = 1.5;
  for (const s of scen) {
    for (const c of s.contenders) if (c.ratioMax !== undefined) maxR = Math.max(maxR, c.ratioMax);
    if (s.control.spread) maxR = Math.max(maxR, s.control.spread.max);
  }
  // Clip the scale so that one outlier (C's RSS is 50x smaller) does not flatten the rest.
  maxR = Math.min(3, Math.ceil(maxR * 2) / 2);
  const y = (r: number): number => top + plotH - (Math.min(r, maxR) / maxR) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  const peerLabel = scen[0]?.contenders.find((c) => c.id === scen[0].peer)?.label ?? 'peer';
  parts.push(`<text x="${left}" y="16" font-size="13" font-weight="bold">Ratio to ${esc(peerLabel)} (median of rounds; higher is better)</text>`);
  // Legend.
  let lx = left;
  for (const id of ids) {
    const label = scen.flatMap((s) => s.contenders).find((c) => c.id === id)?.label ?? id;
    parts.push(`<rect x="${lx}" y="26" width="10" height="10" fill="${COLORS[id] ?? '#888'}"/><text x="${lx + 14}" y="35">${esc(label)}</text>`);
    lx += 24 + label.length * 6;
  }
  parts.push(`<rect x="${lx}" y="26" width="10" height="10" fill="#ddd"/><text x="${lx + 14}" y="35">A/A spread</text>`);
  // Axis and grid.
  for (let r = 0; r <= maxR + 1e-9; r += 0.5) {
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${y(r)}" y2="${y(r)}" stroke="${r === 1 ? '#444' : '#eee'}"/>`);
    parts.push(`<text x="${left - 6}" y="${y(r) + 4}" text-anchor="end">${r.toFixed(1)}x</text>`);
  }
  let x = left + gap / 2;
  for (const s of scen) {
    const w = s.contenders.length * bar;
    const sp = s.control.spread;
    if (sp) parts.push(`<rect x="${x - 4}" y="${y(sp.max)}" width="${w + 8}" height="${Math.max(1, y(sp.min) - y(sp.max))}" fill="#ddd" opacity="0.8"/>`);
    s.contenders.forEach((c, i) => {
      const bx = x + i * bar;
      if (c.ratio === undefined) {
        parts.push(`<text x="${bx + bar / 2}" y="${y(0) - 4}" text-anchor="middle" fill="#999" font-size="9">n/m</text>`);
        return;
      }
      parts.push(`<rect x="${bx + 1}" y="${y(c.ratio)}" width="${bar - 2}" height="${y(0) - y(c.ratio)}" fill="${COLORS[c.id] ?? '#888'}"><title>${esc(`${c.label}: ${c.ratio.toFixed(2)}x`)}</title></rect>`);
      if (c.ratio > maxR) {
        parts.push(`<text x="${bx + bar / 2}" y="${y(maxR) - 3}" text-anchor="middle" font-size="9">${c.ratio.toFixed(0)}x</text>`);
      }
      if (c.ratioMin !== undefined && c.ratioMax !== undefined) {
        const cx = bx + bar / 2;
        parts.push(`<line x1="${cx}" x2="${cx}" y1="${y(c.ratioMax)}" y2="${y(c.ratioMin)}" stroke="#333"/>`);
      }
    });
    const words = s.id;
    parts.push(`<text transform="translate(${x + w / 2},${top + plotH + 14}) rotate(20)" font-size="10">${esc(words)}</text>`);
    x += groupW(s);
  }
  parts.push(`<text x="${left}" y="${height - 8}" font-size="9" fill="#666">${esc(`${result.machine.cpu}, ${result.machine.cores} cores, Linux ${result.machine.kernel}, ${result.startedAt}`)}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The Markdown that goes between the markers in BENCHMARKS.md. */
export function markdown(result: BenchResult, svgName: string | null): string {
  const m = result.machine;
  const lines: string[] = [];
  lines.push(`Run ${result.startedAt} (${result.mode}: ${result.timing.rounds} rounds, ${result.timing.warmup} s warm-up, ${result.timing.duration} s measured; fresh server per round, order rotated).`);
  lines.push('');
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, Bun ${m.bun ?? 'n/a'}, ${m.iperf3 ?? 'iperf3 n/a'}; ${m.pinned ? 'servers pinned to CPU 1, load generators to CPU 0' : 'not pinned (taskset missing)'}.`);
  lines.push('');
  lines.push(`Command: \`${result.command}\``);
  lines.push('');
  if (svgName) lines.push(`![ratios](${svgName})`, '');
  lines.push('| scenario | contender | median | min-max | vs peer | p50 / p99 us | server CPU | peak RSS MiB |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const s of result.scenarios) {
    if (s.skipped) {
      lines.push(`| ${cell(s.title)} | skipped: ${cell(s.skipped)} | | | | | | |`);
      continue;
    }
    for (const r of s.contenders) {
      const name = `${cell(s.title)} (${s.metric.unit})`;
      if (r.status !== 'ok') {
        lines.push(`| ${name} | ${cell(r.label)} | ${r.status}: ${cell(r.reason ?? '')} | | | | | |`);
        continue;
      }
      lines.push(`| ${name} | ${cell(r.label)} | ${fmt(r.value?.median)} | ${range(r)} | ${r.anomaly ? `**anomaly**: ${cell(r.anomaly)}` : PCT(r.ratio)} | ${latency(r)} | ${fmt(r.cpuPerUnit)} ${s.cpuPer === 'GB' ? 's/GB' : 's/M msg'} | ${fmt(r.rssPeakMiB)} |`);
    }
  }
  lines.push('');
  lines.push('| scenario | A/A control (same program twice) | goal | result |');
  lines.push('|---|---|---|---|');
  for (const s of result.scenarios) {
    if (s.skipped) continue;
    for (const g of s.goals) {
      const res = g.status === 'pass' || g.status === 'fail' || g.status === 'anomaly' ? `${g.status.toUpperCase()}: ${g.detail}` : g.status;
      lines.push(`| ${cell(s.title)} | ${cell(controlText(s))} | ${cell(g.label)} | ${cell(res)} |`);
    }
  }
  return lines.join('\n');
}

export const MD_START = '<!-- bench:start -->';
export const MD_END = '<!-- bench:end -->';

/** Replaces the marked section of a Markdown document (appends one when the markers are missing). */
export function replaceSection(doc: string, body: string): string {
  const block = `${MD_START}\n${body}\n${MD_END}`;
  const a = doc.indexOf(MD_START);
  const b = doc.indexOf(MD_END);
  if (a >= 0 && b > a) return doc.slice(0, a) + block + doc.slice(b + MD_END.length);
  return `${doc.replace(/\s*$/, '')}\n\n${block}\n`;
}

/**
 * The closing line of a run: where maio stands against node:net, the goals, and any anomaly
 * (a figure too far off to be a result), with the command that diagnoses it.
 */
export function summaryLine(result: BenchResult): string {
  const scen = result.scenarios.filter((s) => !s.skipped);
  let ahead = 0;
  let compared = 0;
  for (const s of scen) {
    const maio = s.contenders.find((c) => c.id === 'maio');
    const node = s.contenders.find((c) => c.id === 'node');
    if (!maio?.value || !node?.value || maio.anomaly) continue;
    compared++;
    if (better(maio.value.median, node.value.median, s.metric.higherIsBetter) > 1) ahead++;
  }
  const goals = scen.flatMap((s) => s.goals);
  const count = (st: string) => goals.filter((g) => g.status === st).length;
  const anomalies = scen.flatMap((s) => s.contenders.filter((c) => c.anomaly).map((c) => `${s.id}/${c.id}`));
  const head = `summary: maio ahead of node:net in ${ahead} of ${compared} scenarios; goals ${count('pass')} pass, ${count('fail')} fail`;
  if (!anomalies.length) return `${head}; no anomaly`;
  return `${head}; ANOMALY in ${anomalies.join(', ')}: those figures are not results, run \`npx maio doctor\``;
}
