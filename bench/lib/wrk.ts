// wrk's text report (wrk 4.x, `--latency`), read into numbers. wrk has no machine-readable
// output without a Lua script; its text is stable across 4.x and is what the HTTP scenarios parse.
//
//   Running 4s test @ http://127.0.0.1:41000/
//     1 threads and 64 connections
//     ...
//     Latency Distribution
//        50%    4.11ms
//        99%  560.35ms
//     22024 requests in 2.04s, 2.67MB read
//     Socket errors: connect 0, read 1, write 0, timeout 0     (only when there are some)
//     Non-2xx or 3xx responses: 12                             (only when there are some)
//   Requests/sec:  10796.93
//   Transfer/sec:      1.31MB

export interface WrkResult {
  requests: number;
  /** wrk's measured run time (printed to 10 ms) */
  seconds: number;
  /** completed requests per second, as wrk computes it (requests / its exact run time) */
  rps: number;
  /** response bytes read, from the human-readable figure (3 significant digits) */
  bytesRead: number;
  /** latency percentiles in microseconds, keyed by percentile (50, 75, 90, 99) */
  latencyUs: Record<number, number>;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
}

const TIME_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };
const BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4, PB: 1024 ** 5 };

function time(v: string, unit: string): number {
  const k = TIME_US[unit];
  if (k === undefined) throw new Error(`wrk: unknown time unit '${unit}'`);
  return Number(v) * k;
}

/** Parses wrk's report; throws when a line the scenarios need is missing. */
export function parseWrk(text: string): WrkResult {
  const done = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB|PB) read\s*$/m.exec(text);
  const rps = /^Requests\/sec:\s*([\d.]+)\s*$/m.exec(text);
  if (!done || !rps) throw new Error(`wrk: no result in its output:\n${text.trim().split('\n').slice(-6).join('\n')}`);
  const latencyUs: Record<number, number> = {};
  const dist = text.indexOf('Latency Distribution');
  if (dist >= 0) {
    for (const m of text.slice(dist).matchAll(/^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$/gm)) latencyUs[Number(m[1])] = time(m[2], m[3]);
  }
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const status = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requests: Number(done[1]),
    seconds: time(done[2], done[3]) / 1e6,
    rps: Number(rps[1]),
    bytesRead: Number(done[4]) * BYTES[done[5]],
    latencyUs,
    errors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
      status: Number(status?.[1] ?? 0),
    },
  };
}

/** A one-line account of wrk's errors, or null when there were none. */
export function wrkErrors(r: WrkResult): string | null {
  const e = r.errors;
  const parts = [
    ...(['connect', 'read', 'write', 'timeout'] as const).filter((k) => e[k] > 0).map((k) => `${e[k]} ${k} errors`),
    ...(e.status > 0 ? [`${e.status} non-2xx/3xx responses`] : []),
  ];
  return parts.length ? parts.join(', ') : null;
}
