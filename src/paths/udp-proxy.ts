/**
 * A UDP relay on maio's UdpSockets: one bound socket takes the clients'
 * datagrams; each flow (client address:port) gets a session, a connected
 * socket towards the upstream the flow was given (round-robin, or a hash of
 * the client's address and port), so the upstream's replies come back on the
 * session's own socket and go out of the listening socket to that client
 * only. Datagrams are passed on in the pool buffers they arrived in (send(msg):
 * no copy in user space); a GRO buffer's datagrams leave as one UDP_SEGMENT
 * batch. A session with no datagram either way for `idleTimeout` seconds is
 * closed (after between 1x and 1.5x of it); at `maxSessions` open sessions a
 * new flow's datagrams are dropped and counted, as a full relay would.
 * reload() swaps upstreams, balance and limits for new flows; open sessions
 * keep their upstream. Inside a maio worker the listening socket joins the
 * group's SO_REUSEPORT set (src/net/listen-hook.ts), as a TCP server does.
 */
import type { AddressInfo } from 'node:net';
import { ConfigError, InvalidAddressError, InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { TypedEmitter } from '../core/typed-events';
import { addressFamily } from '../net/address';
import { listenHook, type ListenHook } from '../net/listen-hook';
import type { IoPool } from '../pool/pool';
import { createUdpSocket, type UdpSocket } from '../dgram/udp-socket';
import type { RemoteInfo, UdpMessage } from '../dgram/udp-message';
import type { UdpStats } from '../dgram/udp-stats';
import { forwardUdp, type UdpForwarder } from './forward-udp';
import { writeMetric, type MetricRows } from './metrics-text';

export interface UdpProxyHostPort {
  host: string;
  port: number;
}

export type UdpBalance = 'round-robin' | 'hash';

export interface UdpProxyOptions {
  /** Where clients send (an IP address; port 0: the kernel picks). */
  listen: UdpProxyHostPort;
  /** Where flows go (IP addresses), at least one. */
  upstreams: UdpProxyHostPort[];
  /** 'round-robin' (default): each new flow the next upstream; 'hash': the client's address:port picks it, the same after the session expired. */
  balance?: UdpBalance;
  /** Seconds without a datagram either way before a session closes (default 60). */
  idleTimeout?: number;
  /** Open sessions at most; datagrams of further new flows are dropped (default: no limit). */
  maxSessions?: number;
  /** Pool for every socket of the relay (default: the thread's default pool). */
  pool?: IoPool;
  /** Read quota of the listening socket and of each session's socket (bytes, default 1 MiB). */
  readQuota?: number;
  /** SO_RCVBUF of the listening socket (bytes; default: the kernel's). */
  recvBufferSize?: number;
}

export interface UdpUpstreamStats extends UdpProxyHostPort {
  /** sessions open to it now */
  active: number;
  /** sessions it was given */
  sessions: number;
  /** ICMP errors (port unreachable, ...) and send errors on its sessions */
  errors: number;
  /** removed by a reload, listed while sessions still use it */
  retired?: boolean;
}

export interface UdpSessionStats {
  client: string;
  upstream: string;
  /** the session socket's local port (what the upstream sees) */
  localPort: number;
  datagramsUp: number;
  bytesUp: number;
  datagramsDown: number;
  bytesDown: number;
  since: number;
}

export interface UdpProxyStats {
  /** refused: flows turned away at maxSessions (counted once until a session closes; drops.sessionLimit counts their datagrams) */
  sessions: { open: number; created: number; expired: number; refused: number };
  datagrams: { up: number; down: number };
  bytes: { up: number; down: number };
  drops: { sessionLimit: number; sendErrors: number; closing: number };
  /** the relay's sockets together (listening + sessions, closed ones included) */
  sockets: { gsoBatches: number; groBatches: number; messagesSent: number; errors: number; truncated: number };
  upstreams: UdpUpstreamStats[];
  /** reload() calls taken and refused */
  reloads: { ok: number; refused: number };
}

export interface UdpProxyEvents {
  listening: [address: AddressInfo];
  /** a flow got a session (client "host:port", upstream "host:port") */
  session: [client: string, upstream: string];
  /** a session ended: 'idle' or 'close' (the proxy closed) */
  sessionClose: [info: UdpSessionStats, reason: 'idle' | 'close'];
  /** a new flow was dropped at the session limit (once per flow until a session closes) */
  refused: [client: string];
  /** errors of the listening socket, only while someone listens (counted either way) */
  error: [err: Error];
  /** reload() took a new configuration */
  reload: [options: ResolvedUdpProxyOptions];
}

class UdpUpstream implements UdpUpstreamStats {
  active = 0;
  sessions = 0;
  errors = 0;
  readonly family: 4 | 6;
  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    this.family = addressFamily(host) as 4 | 6;
  }
}

interface Session {
  key: string;
  client: RemoteInfo;
  upstream: UdpUpstream;
  sock: UdpSocket;
  down: UdpForwarder;
  datagramsUp: number;
  bytesUp: number;
  /** datagrams either way at the last idle tick, and when they last changed (coarse clock) */
  seen: number;
  activeAt: number;
  since: number;
}

const fmt = (h: { host: string; port: number }) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);
const fmtFrom = (r: RemoteInfo) => fmt({ host: r.address, port: r.port });

function checkHostPort(v: unknown, what: string, allowPort0: boolean): UdpProxyHostPort {
  if (v === null || typeof v !== 'object') throw new InvalidAddressError(`${what} must be { host, port }`);
  const { host, port } = v as { host: unknown; port: unknown };
  if (typeof host !== 'string' || addressFamily(host) === 0) throw new InvalidAddressError(`${what}: host must be an IP address, got ${JSON.stringify(host)}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowPort0 ? 0 : 1) || port > 65535) {
    throw new InvalidAddressError(`${what}: port must be in ${allowPort0 ? 0 : 1}..65535, got ${JSON.stringify(port)}`);
  }
  return { host, port };
}

export interface ResolvedUdpProxyOptions {
  listen: UdpProxyHostPort;
  upstreams: UdpProxyHostPort[];
  balance: UdpBalance;
  idleTimeout: number;
  maxSessions: number;
  readQuota: number | undefined;
  recvBufferSize: number | undefined;
}

/** Checks every option (typed errors naming the option); what UdpProxy and `maio proxy --udp` refuse. */
export function resolveUdpProxyOptions(o: UdpProxyOptions): ResolvedUdpProxyOptions {
  if (o === null || typeof o !== 'object') throw new InvalidArgumentError('options must be an object with listen and upstreams');
  const listen = checkHostPort(o.listen, 'listen', true);
  if (!Array.isArray(o.upstreams) || o.upstreams.length === 0) throw new InvalidArgumentError('upstreams must be a non-empty array of { host, port }');
  const upstreams = o.upstreams.map((u, i) => checkHostPort(u, `upstreams[${i}]`, false));
  const balance = o.balance ?? 'round-robin';
  if (balance !== 'round-robin' && balance !== 'hash') throw new InvalidArgumentError(`balance must be 'round-robin' or 'hash', got ${JSON.stringify(balance)}`);
  const idleTimeout = o.idleTimeout ?? 60;
  if (typeof idleTimeout !== 'number' || !(idleTimeout > 0) || !Number.isFinite(idleTimeout)) throw new OutOfRangeError(`idleTimeout must be a number of seconds > 0, got ${JSON.stringify(idleTimeout)}`);
  const maxSessions = o.maxSessions ?? Infinity;
  if (typeof maxSessions !== 'number' || !(maxSessions >= 1) || (maxSessions !== Infinity && !Number.isInteger(maxSessions))) {
    throw new OutOfRangeError(`maxSessions must be a whole number >= 1, got ${JSON.stringify(maxSessions)}`);
  }
  for (const [k, v] of [['readQuota', o.readQuota], ['recvBufferSize', o.recvBufferSize]] as const) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw new OutOfRangeError(`${k} must be a whole number of bytes >= 1, got ${JSON.stringify(v)}`);
  }
  return { listen, upstreams, balance, idleTimeout, maxSessions, readQuota: o.readQuota, recvBufferSize: o.recvBufferSize };
}

/** FNV-1a over the flow's key: the same client address:port always picks the same upstream. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** refused flows remembered at most (a flood of new source ports must not grow memory) */
const REFUSED_REMEMBERED = 4096;

type SocketTotals = UdpProxyStats['sockets'];

const hostPortKey = (h: UdpProxyHostPort) => `${h.host}|${h.port}`;

export class UdpProxy extends TypedEmitter<UdpProxyEvents> {
  #o: ResolvedUdpProxyOptions;
  readonly #pool: IoPool | undefined;
  #upstreams: UdpUpstream[];
  /** upstreams a reload removed while sessions still use them */
  readonly #retired = new Set<UdpUpstream>();
  /** the worker group's hook when the relay runs in a maio worker (else undefined) */
  #hook: ListenHook | undefined;
  readonly #sessions = new Map<string, Session>();
  /** flows turned away while the table is full: each counted (and emitted) once until a session closes */
  #refusedFlows = new Set<string>();
  #listener: UdpSocket | null = null;
  #rr = 0;
  #timer: NodeJS.Timeout | null = null;
  #now = 0;
  #closing = false;
  #lastFrom: RemoteInfo | null = null;
  #lastSession: Session | null = null;
  readonly #t = { reloads: 0, reloadsRefused: 0, created: 0, expired: 0, refused: 0, datagramsUp: 0, bytesUp: 0, datagramsDown: 0, bytesDown: 0, dropLimit: 0, dropSend: 0, dropClosing: 0 };
  /** counters of session sockets already closed */
  readonly #closedSockets: SocketTotals = { gsoBatches: 0, groBatches: 0, messagesSent: 0, errors: 0, truncated: 0 };

  constructor(options: UdpProxyOptions) {
    super();
    this.#o = resolveUdpProxyOptions(options);
    this.#pool = options.pool;
    this.#upstreams = this.#o.upstreams.map((u) => new UdpUpstream(u.host, u.port));
  }

  /** The options in force (the constructor's, or the last reload's). */
  get options(): ResolvedUdpProxyOptions {
    return this.#o;
  }

  /**
   * Takes new upstreams, balance, idle timeout and session limit for flows
   * from now on; open sessions keep their upstream (a removed one is listed
   * as retired until its last session ends), and an upstream that stays keeps
   * its counters. `listen`, `readQuota` and `recvBufferSize` cannot change
   * (ConfigError); a bad option throws as in the constructor and nothing
   * changes. A function is called for the options (its throw is a refusal).
   */
  reload(next: UdpProxyOptions | (() => UdpProxyOptions)): void {
    let o: ResolvedUdpProxyOptions;
    try {
      o = resolveUdpProxyOptions(typeof next === 'function' ? next() : next);
      const cur = this.#o;
      if (hostPortKey(o.listen) !== hostPortKey(cur.listen)) throw new ConfigError(`listen cannot change on reload (${fmt(cur.listen)} -> ${fmt(o.listen)}); restart the relay for a new address`);
      for (const k of ['readQuota', 'recvBufferSize'] as const) {
        if (o[k] !== cur[k]) throw new ConfigError(`${k} cannot change on reload (${String(cur[k])} -> ${String(o[k])})`);
      }
    } catch (err) {
      this.#t.reloadsRefused++;
      throw err;
    }
    const kept = new Map(this.#upstreams.map((u) => [hostPortKey(u), u]));
    for (const r of this.#retired) kept.set(hostPortKey(r), r);
    const ups = o.upstreams.map((u) => kept.get(hostPortKey(u)) ?? new UdpUpstream(u.host, u.port));
    const now = new Set(ups);
    for (const u of [...this.#upstreams, ...this.#retired]) {
      if (now.has(u)) this.#retired.delete(u);
      else if (u.active > 0) this.#retired.add(u);
      else this.#retired.delete(u);
    }
    this.#upstreams = ups;
    this.#rr = 0;
    const idleChanged = o.idleTimeout !== this.#o.idleTimeout;
    this.#o = o;
    if (idleChanged && this.#timer) this.#startTimer();
    this.#refusedFlows.clear();
    this.#t.reloads++;
    this.emit('reload', o);
  }

  /** Upstreams new flows are given (a reload's retired ones are not among them). */
  get upstreamCount(): number {
    return this.#upstreams.length;
  }

  #startTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    const idleMs = this.#o.idleTimeout * 1000;
    // A quarter of the timeout, at most a second: a session closes after 1x to 1.5x of it.
    const tickMs = Math.max(5, Math.min(1000, idleMs / 4));
    this.#timer = setInterval(() => this.#tick(idleMs), tickMs);
    this.#timer.unref();
  }

  /** Binds the listening socket; resolves with its address. */
  async listen(): Promise<AddressInfo> {
    if (this.#listener) throw new InvalidArgumentError('the UDP proxy is listening already');
    const o = this.#o;
    // Inside a maio worker: the group's port and SO_REUSEPORT; the kernel's reuseport hash of the
    // client's address keeps each flow on one worker, so sessions stay per worker.
    const hook = listenHook();
    const at = hook ? hook.prepare(o.listen.port) : { port: o.listen.port, reusePort: false };
    let l: UdpSocket;
    try {
      l = createUdpSocket({
        type: addressFamily(o.listen.host) === 6 ? 'udp6' : 'udp4',
        pool: this.#pool,
        readQuota: o.readQuota,
        recvBufferSize: o.recvBufferSize,
        reusePort: at.reusePort,
      });
    } catch (err) {
      hook?.listenedDatagram(null, -1, at.port);
      throw err;
    }
    l.on('error', (err) => {
      this.#t.dropSend++;
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    let addr: AddressInfo;
    try {
      addr = await l.bind(at.port, o.listen.host);
    } catch (err) {
      hook?.listenedDatagram(l, -1, at.port);
      l.close();
      throw err;
    }
    this.#listener = l;
    this.#hook = hook;
    hook?.listenedDatagram(l, l.fd, addr.port);
    l.on('message', (msg, from) => this.#up(msg, from));
    this.#now = performance.now();
    this.#startTimer();
    this.emit('listening', addr);
    return addr;
  }

  address(): AddressInfo | null {
    return this.#listener && !this.#closing ? this.#listener.address() : null;
  }

  /** Open sessions. */
  get sessions(): number {
    return this.#sessions.size;
  }

  #up(msg: UdpMessage, from: RemoteInfo): void {
    // Consecutive datagrams of one flow share one rinfo object: no key built for them.
    let s = from === this.#lastFrom ? this.#lastSession : null;
    if (s === null || s.sock.fd < 0) {
      const key = fmtFrom(from);
      s = this.#sessions.get(key) ?? this.#open(key, from);
      if (s === null) return; // dropped (limit or closing): the message is released when we return
      this.#lastFrom = from;
      this.#lastSession = s;
    }
    const len = msg.length;
    try {
      s.sock.send(msg);
    } catch {
      this.#t.dropSend++;
      return;
    }
    s.datagramsUp++;
    s.bytesUp += len;
    this.#t.datagramsUp++;
    this.#t.bytesUp += len;
  }

  #pick(key: string): UdpUpstream {
    const ups = this.#upstreams;
    if (this.#o.balance === 'hash') return ups[hash(key) % ups.length]!;
    return ups[this.#rr++ % ups.length]!;
  }

  #open(key: string, from: RemoteInfo): Session | null {
    if (this.#closing) {
      this.#t.dropClosing++;
      return null;
    }
    if (this.#sessions.size >= this.#o.maxSessions) {
      this.#t.dropLimit++;
      if (!this.#refusedFlows.has(key)) {
        if (this.#refusedFlows.size >= REFUSED_REMEMBERED) this.#refusedFlows.clear();
        this.#refusedFlows.add(key);
        this.#t.refused++;
        this.emit('refused', key);
      }
      return null;
    }
    const u = this.#pick(key);
    const sock = createUdpSocket({ type: u.family === 6 ? 'udp6' : 'udp4', pool: this.#pool, readQuota: this.#o.readQuota });
    // A UDP connect only sets the peer: done when connect() returns (its promise just reports it).
    sock.connect(u.port, u.host).catch(() => {});
    if (!sock.connected) {
      sock.close();
      u.errors++;
      this.#t.dropSend++;
      return null;
    }
    // In a worker: the group closes it if this thread dies (src/workers/fd-table.ts).
    this.#hook?.ownSocket(sock.fd);
    const down = forwardUdp(sock, this.#listener!, { port: from.port, host: from.address });
    down.on('error', () => u.errors++);
    const s: Session = { key, client: from, upstream: u, sock, down, datagramsUp: 0, bytesUp: 0, seen: 0, activeAt: this.#now, since: Date.now() };
    this.#sessions.set(key, s);
    u.active++;
    u.sessions++;
    this.#t.created++;
    this.emit('session', key, fmt(u));
    return s;
  }

  #tick(idleMs: number): void {
    this.#now = performance.now();
    for (const s of this.#sessions.values()) {
      const seen = s.datagramsUp + s.down.datagrams;
      if (seen !== s.seen) {
        s.seen = seen;
        s.activeAt = this.#now;
      } else if (this.#now - s.activeAt >= idleMs) {
        this.#t.expired++;
        this.#end(s, 'idle');
      }
    }
  }

  #info(s: Session): UdpSessionStats {
    let localPort = 0;
    try {
      localPort = s.sock.address().port;
    } catch {
      // closed
    }
    return {
      client: s.key,
      upstream: fmt(s.upstream),
      localPort,
      datagramsUp: s.datagramsUp,
      bytesUp: s.bytesUp,
      datagramsDown: s.down.datagrams,
      bytesDown: s.down.bytes,
      since: s.since,
    };
  }

  #end(s: Session, reason: 'idle' | 'close'): Promise<void> {
    const info = this.#info(s);
    this.#sessions.delete(s.key);
    this.#refusedFlows.clear(); // room again: a flow refused before is a new refusal next time
    if (this.#lastSession === s) {
      this.#lastSession = null;
      this.#lastFrom = null;
    }
    s.upstream.active--;
    if (s.upstream.active === 0) this.#retired.delete(s.upstream);
    this.#hook?.disownSocket(s.sock.fd);
    this.#t.datagramsDown += s.down.datagrams;
    this.#t.bytesDown += s.down.bytes;
    this.#t.dropSend += s.down.dropped;
    s.down.stop();
    s.sock.on('error', () => {}); // a late ICMP error while closing
    const closed = new Promise<void>((resolve) =>
      s.sock.close(() => {
        const st = s.sock.stats();
        this.#addSocket(this.#closedSockets, st);
        resolve();
      }),
    );
    this.emit('sessionClose', info, reason);
    return closed;
  }

  #addSocket(into: SocketTotals, st: UdpStats): void {
    into.gsoBatches += st.gsoBatches;
    into.groBatches += st.groBatches;
    into.messagesSent += st.messagesSent;
    into.errors += st.errors;
    into.truncated += st.truncated;
  }

  /** Per-session figures of the open sessions. */
  sessionStats(): UdpSessionStats[] {
    return [...this.#sessions.values()].map((s) => this.#info(s));
  }

  stats(): UdpProxyStats {
    const t = this.#t;
    let down = t.datagramsDown;
    let bytesDown = t.bytesDown;
    let dropSend = t.dropSend;
    const sockets = { ...this.#closedSockets };
    for (const s of this.#sessions.values()) {
      down += s.down.datagrams;
      bytesDown += s.down.bytes;
      dropSend += s.down.dropped;
      this.#addSocket(sockets, s.sock.stats());
    }
    if (this.#listener && this.#listener.fd >= 0) this.#addSocket(sockets, this.#listener.stats());
    return {
      sessions: { open: this.#sessions.size, created: t.created, expired: t.expired, refused: t.refused },
      datagrams: { up: t.datagramsUp, down },
      bytes: { up: t.bytesUp, down: bytesDown },
      drops: { sessionLimit: t.dropLimit, sendErrors: dropSend, closing: t.dropClosing },
      sockets,
      upstreams: [
        ...this.#upstreams.map((u) => ({ host: u.host, port: u.port, active: u.active, sessions: u.sessions, errors: u.errors })),
        ...[...this.#retired].map((u) => ({ host: u.host, port: u.port, active: u.active, sessions: u.sessions, errors: u.errors, retired: true })),
      ],
      reloads: { ok: t.reloads, refused: t.reloadsRefused },
    };
  }

  /** Prometheus text exposition format (0.0.4), in the style of the TCP proxy's. */
  metrics(): string {
    const s = this.stats();
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, rows: MetricRows): void => writeMetric(out, name, type, help, rows);
    metric('maio_udp_proxy_sessions_open', 'gauge', 'Open sessions (client flows).', [['', s.sessions.open]]);
    metric('maio_udp_proxy_sessions_total', 'counter', 'Sessions by event.', [
      ['{event="created"}', s.sessions.created],
      ['{event="expired"}', s.sessions.expired],
      ['{event="refused"}', s.sessions.refused],
    ]);
    metric('maio_udp_proxy_datagrams_total', 'counter', 'Datagrams relayed.', [
      ['{direction="up"}', s.datagrams.up],
      ['{direction="down"}', s.datagrams.down],
    ]);
    metric('maio_udp_proxy_bytes_total', 'counter', 'Payload bytes relayed.', [
      ['{direction="up"}', s.bytes.up],
      ['{direction="down"}', s.bytes.down],
    ]);
    metric('maio_udp_proxy_drops_total', 'counter', 'Datagrams dropped, by reason.', [
      ['{reason="session_limit"}', s.drops.sessionLimit],
      ['{reason="send_error"}', s.drops.sendErrors],
      ['{reason="closing"}', s.drops.closing],
    ]);
    metric('maio_udp_proxy_gso_batches_total', 'counter', 'UDP_SEGMENT sends (several datagrams each).', [['', s.sockets.gsoBatches]]);
    metric('maio_udp_proxy_gro_batches_total', 'counter', 'Receive buffers that carried several datagrams (UDP_GRO).', [['', s.sockets.groBatches]]);
    metric('maio_udp_proxy_zero_copy_datagrams_total', 'counter', 'Datagrams sent from the pool buffer they arrived in.', [['', s.sockets.messagesSent]]);
    const lab = (u: UdpUpstreamStats) => `{upstream="${fmt(u)}"}`;
    metric('maio_udp_proxy_upstream_sessions_open', 'gauge', 'Open sessions per upstream.', s.upstreams.map((u) => [lab(u), u.active]));
    metric('maio_udp_proxy_upstream_sessions_total', 'counter', 'Sessions per upstream.', s.upstreams.map((u) => [lab(u), u.sessions]));
    metric('maio_udp_proxy_upstream_errors_total', 'counter', 'ICMP and send errors per upstream.', s.upstreams.map((u) => [lab(u), u.errors]));
    metric('maio_udp_proxy_reloads_total', 'counter', 'Configuration reloads, taken or refused.', [
      ['{result="ok"}', s.reloads.ok],
      ['{result="refused"}', s.reloads.refused],
    ]);
    return out.join('\n') + '\n';
  }

  /** Closes every session and the listening socket; resolves once all are closed. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const all = [...this.#sessions.values()].map((s) => this.#end(s, 'close'));
    const l = this.#listener;
    if (l) {
      all.push(
        new Promise<void>((resolve) =>
          l.close(() => {
            this.#addSocket(this.#closedSockets, l.stats());
            resolve();
          }),
        ),
      );
    }
    await Promise.all(all);
  }
}
