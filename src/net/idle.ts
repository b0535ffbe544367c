/**
 * IdleWatch: idle timeouts for every socket of this thread (module state is
 * per thread, like the ring) with one coarse interval timer, not a timer per
 * socket re-armed per read.
 *
 * Activity is read, not recorded: a socket's bytesRead + bytesWritten (both
 * updated by its completions anyway) is compared with what the last check
 * saw, so the data path pays nothing. Bytes count when they moved: a receive
 * completion, or a send completion (bytes handed to the kernel). A write()
 * into a peer that never reads therefore does not keep a socket alive.
 *
 * A check every `granularity` ms (a quarter of the shortest timeout, between
 * 10 ms and 1 s) sees a socket idle between `ms` and `ms + granularity` after
 * its last activity; never before. `minBytes` (server option `idleMinBytes`)
 * makes a trickle count as idle: fewer than minBytes moved within `ms`.
 *
 * Re-arming allocates nothing: node:http turns a keep-alive socket's timeout
 * on after each response and off at the next request, so setTimeout(ms) and
 * setTimeout(0) run once per request. Each socket keeps its entry (watch()
 * restarts it); unwatch() only marks it, and the check drops unwatched entries
 * from the set and stops the interval when the set is empty. A fresh entry per
 * request, a Set add and delete per request (a long-lived Set's rehashed
 * tables are allocated in old space) and a new interval per request made each
 * maio/net HTTP response leave garbage that outlived two scavenges (old-space
 * growth, 1-7 ms scavenges and a mark-compact every ~1.5 s at one connection).
 */
import type { Socket } from './socket';

export interface IdleEntry {
  readonly socket: Socket;
  ms: number;
  minBytes: number;
  /** destroy the socket after 'timeout' (server idleTimeout) */
  close: boolean;
  /** bytes moved when the current window started */
  windowBytes: number;
  /** performance.now() at the start of the window */
  windowStart: number;
  /** fired in this window: fires again only after activity */
  fired: boolean;
  onIdle: (e: IdleEntry) => void;
  /** watched now (counts for 'timeout') */
  watched: boolean;
  /** in the set the check scans (an unwatched entry stays until the next check) */
  listed: boolean;
}

const MIN_GRANULARITY = 10;
const MAX_GRANULARITY = 1000;

const entries = new Set<IdleEntry>();
/** entries watched now (the set also holds unwatched ones until the next check) */
let watchedCount = 0;
let timer: NodeJS.Timeout | null = null;
let granularity = MAX_GRANULARITY;

export const idleTotals = {
  /** 'timeout' events emitted */
  timeouts: 0,
  /** connections a server's idleTimeout closed */
  closed: 0,
  /** checks run (one per tick, not per socket) */
  ticks: 0,
  /** times the check interval was started (again) */
  timerStarts: 0,
};

function moved(s: Socket): number {
  return s.bytesRead + s.bytesWritten;
}

function tick(): void {
  idleTotals.ticks++;
  const now = performance.now();
  const due: IdleEntry[] = [];
  let minMs = Infinity;
  for (const e of entries) {
    const s = e.socket;
    if (!e.watched || s.destroyed) {
      entries.delete(e);
      e.listed = false;
      if (e.watched) {
        e.watched = false;
        watchedCount--;
      }
      continue;
    }
    if (e.ms < minMs) minMs = e.ms;
    const b = moved(s);
    if (b - e.windowBytes >= e.minBytes) {
      e.windowBytes = b;
      e.windowStart = now;
      e.fired = false;
    } else if (!e.fired && now - e.windowStart >= e.ms) {
      e.fired = true;
      // a trickle starts a new window after firing, so it is measured again
      e.windowBytes = b;
      e.windowStart = now;
      due.push(e);
    }
  }
  for (const e of due) {
    if (!e.watched || e.socket.destroyed) continue;
    idleTotals.timeouts++;
    e.onIdle(e);
  }
  if (entries.size === 0) stop();
  else if (granularityFor(minMs) > granularity) {
    // the short timeouts are gone: check less often (found by this scan, no extra one)
    stop();
    retime(minMs);
  }
}

function granularityFor(ms: number): number {
  return Math.max(MIN_GRANULARITY, Math.min(MAX_GRANULARITY, Math.floor(ms / 4)));
}

function stop(): void {
  if (timer) {
    clearInterval(timer);
    timer = null;
  }
}

/** Starts the timer, or shortens its interval for a shorter timeout (never scans the set). */
function retime(ms: number): void {
  const g = granularityFor(ms);
  if (timer && g >= granularity) return;
  stop();
  granularity = g;
  idleTotals.timerStarts++;
  timer = setInterval(tick, g);
  // like node:net's socket timeouts: an idle timer alone never keeps the process alive
  timer.unref();
}

/** An entry for `socket`, not watched yet: the socket keeps it and passes it to watch() each time. */
export function idleEntry(socket: Socket, ms: number, minBytes: number, close: boolean, onIdle: (e: IdleEntry) => void): IdleEntry {
  return { socket, ms, minBytes, close, onIdle, windowBytes: 0, windowStart: 0, fired: false, watched: false, listed: false };
}

/** Watches `e` (again) with its current ms and minBytes: its window starts now. */
export function watch(e: IdleEntry): void {
  e.windowBytes = moved(e.socket);
  e.windowStart = performance.now();
  e.fired = false;
  if (!e.watched) {
    e.watched = true;
    watchedCount++;
  }
  if (!e.listed) {
    e.listed = true;
    entries.add(e);
  }
  retime(e.ms);
}

/** Stops watching; the next check drops the entry (and stops the interval if nothing else is watched). */
export function unwatch(e: IdleEntry | null): void {
  if (!e || !e.watched) return;
  e.watched = false;
  watchedCount--;
}

/** Sockets watched, and the check interval now in use (ms; 0 when no timer runs). */
export function idleStats(): { watched: number; granularity: number; timeouts: number; closed: number; ticks: number; timerStarts: number } {
  return { watched: watchedCount, granularity: timer ? granularity : 0, ...idleTotals };
}
