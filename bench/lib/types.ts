// Shapes shared by the harness, the scenario files and the contender registry.

/** What a contender process is asked to be. */
/** echo2: an echo server on two workers (threads, processes or a reuseport group: the contender's own way). */
/** proxy2: a proxy on two workers; udp-sink / udp-send: one UDP flow's receiver / sender. */
/** udp-relay: a UDP relay (`--port P --host H`, passes datagrams on to `upstream` on H). */
export type Role = 'echo' | 'echo2' | 'sink' | 'sender' | 'steady' | 'proxy' | 'proxy2' | 'file' | 'http' | 'https' | 'udp-sink' | 'udp-send' | 'udp-relay';

/**
 * How a scenario is driven:
 * - client: the contender is a server (echo or sink); loadgen drives it and reports the figure.
 * - sender: the contender is a bulk sender into `loadgen recv`, which reports the figure.
 * - pair: the contender is both ends (its sink and its sender); bytes are counted by the kernel (ss).
 * - proxy: iperf3 client -> the contender (role 'proxy') -> iperf3 server; a contender without a
 *   proxy command is iperf3 direct. iperf3 reports the figure; CPU is the proxy's.
 * - iperf: the contender's sender is an iperf3 client (e.g. -Z) into `iperf3 -s`; CPU is the client's.
 * - wrk: the contender is an HTTP(S) server (role http or https); wrk drives it (Scenario.wrk) and
 *   reports requests/s and latency percentiles; CPU is the server's over wrk's measured run.
 * - udp-recv: the contender is a UDP receiver (role udp-sink); the C sender (udp_send, UDP_SEGMENT,
 *   paced at Scenario.rate if set) is the load; the receiver's running totals (SIGUSR2) at the
 *   sender's window edges give the window's count. udp-send: the contender is a UDP sender (role udp-send) into the C receiver
 *   (udp_recv, UDP_GRO). Both count datagrams sent and received (bench/lib/udp.ts).
 * - udp-relay: C sender -> the contender (role udp-relay) -> C receiver, which counts what is
 *   delivered in its window; CPU is the relay's. A contender without a relay command is the
 *   direct reference, as for proxy (bench/lib/udp-relay.ts).
 */
export type Kind = 'client' | 'sender' | 'pair' | 'proxy' | 'iperf' | 'wrk' | 'udp-recv' | 'udp-send' | 'udp-relay';

/** Per-run quantity a scenario or goal can look at. */
export type Field = 'value' | 'p50' | 'p99' | 'cpuPerUnit' | 'rssPeakMiB';

export interface Timing {
  rounds: number;
  warmup: number; // seconds
  duration: number; // seconds
}

/** Locations and tools found on this machine. */
export interface Env {
  root: string;
  buildDir: string;
  bun: string | null;
  iperf3: string | null;
  haproxy: string | null;
  wrk: string | null;
  openssl: string | null;
  /** iproute2's ip (the UDP scenarios' veth variant) */
  ip: string | null;
  maioCli: string;
  taskset: boolean;
  prlimit: boolean;
}

export interface RoleParams {
  port: number;
  /** UDP senders: seconds to send for (the harness stops them earlier) */
  duration?: number;
  host: string;
  /** proxy role: the port to forward to (on host) */
  upstream?: number;
  /** the scenario's file (file-sending scenarios) */
  file?: string;
}

export interface Contender {
  id: string;
  label: string;
  family: 'maio' | 'node' | 'bun' | 'c' | 'iperf3';
  /** Per-role label when the role changes what is measured (e.g. a read size). */
  roleLabel?: Partial<Record<Role, string>>;
  /** A reason to skip this contender on this machine, or null. */
  unavailable(env: Env): string | null;
  /** Command line per role. */
  cmd: Partial<Record<Role, (env: Env, p: RoleParams) => string[]>>;
  /** Line on stdout that says the server is ready; a captured group is the port. */
  ready?: RegExp;
  /** Reason used when the process exits before it is ready (maio: CLI not there yet). */
  earlyExitReason?: string;
  /** Prints nothing when ready (HAProxy): ready once its port is listening (ss). */
  readyByListen?: boolean;
}

export interface Goal {
  label: string;
  field: Field;
  /** Contender ids; the best of those measured is the reference. */
  refs: string[];
  cmp: '>=' | '<=';
  factor: number;
  /** An absolute bound instead of a reference: maio's figure against `limit` (refs unused). */
  limit?: number;
}

export interface Metric {
  key: string; // name in the JSON output
  label: string;
  unit: string;
  higherIsBetter: boolean;
}

export interface Scenario {
  id: string;
  title: string;
  kind: Kind;
  /** Role the contenders play (client: echo or sink; sender: sender; pair: sink + sender). */
  role: Role;
  contenders: string[];
  /** Headline ratios are taken against this contender, measured in the same run. */
  peer: string;
  /** A/A control: the same program twice (one id twice: no A/A pair in this scenario). */
  control: [string, string];
  metric: Metric;
  /** What server CPU time is divided by. */
  cpuPer: 'Mmsg' | 'GB';
  /** Arguments of loadgen (client: its mode and load; sender: `recv ...`). */
  loadgen?(t: Timing): string[];
  /** Extra seconds a run may take besides warm-up and duration (connecting many sockets). */
  slack?: number;
  /** File descriptors each process needs. */
  fdLimit?: number;
  /** Part of the --short run. */
  short?: boolean;
  /** How a contender is driven when it differs from `kind` (the iperf3 reference of a sender scenario). */
  kindFor?: Record<string, Kind>;
  /** A file of this many bytes is made (in /dev/shm, else tmp) for the scenario and passed as RoleParams.file. */
  fileBytes?: number;
  /** At most this many rounds, whatever the timing says (long scenarios). */
  rounds?: number;
  /**
   * The server prints one line `report {json}` when the load generator is done (steady state):
   * the harness waits for it, keeps it in the sample's raw.server, and takes the scenario's
   * figure (metric.key) from it.
   */
  serverReport?: boolean;
  /** Extra arguments for the measured server (client kind), after the contender's own. */
  serverArgs?: string[];
  /**
   * Kind wrk: how wrk drives the server. One wrk thread (it runs pinned to the load CPU) with
   * this many keep-alive connections; the server answers every request with `bodyBytes` (its
   * `--size`, default its 13-byte hello); `tls`: HTTPS with a throwaway certificate made with
   * openssl for the scenario (a temporary folder, removed after it).
   */
  wrk?: { connections: number; bodyBytes?: number; tls?: boolean };
  /**
   * The servers use several CPUs (echo2): neither server nor load generator is pinned, and the
   * server's CPU time includes its child processes (a node:cluster primary's workers).
   */
  unpinned?: boolean;
  /** Kind proxy: parallel iperf3 streams (-P), default 1. */
  streams?: number;
  /**
   * A median loss (raw.loss: 1 - received / sent) above this is flagged as an anomaly: the other
   * end, not the contender, set the figure (the send scenario's C receiver fell behind).
   */
  maxLoss?: number;
  /**
   * Throughput this many times under the best other contender is an anomaly (default
   * ANOMALY_FACTOR, bench/lib/stats.ts). UDP raises it: a GRO receiver takes 45 datagrams of
   * 1,400 B per buffer, a per-datagram one takes one, and the gap is sound.
   */
  anomalyFactor?: number;
  /**
   * UDP scenarios: sender and receiver in two network namespaces joined by a veth pair (made per
   * measurement, deleted after it) instead of both on loopback. Needs root and `ip`.
   */
  veth?: boolean;
  /**
   * Kinds udp-recv and udp-relay: the C sender's offered load in datagrams/s (udp_send --rate), so
   * that every contender sees the same load and CPU per GB compares their cost; unset: as fast as
   * it sends.
   */
  rate?: number;
  goals: Goal[];
}

export interface RunSample {
  round: number;
  value: number;
  p50?: number;
  p99?: number;
  p999?: number;
  cpuS?: number;
  cpuPerUnit?: number;
  rssPeakMiB?: number;
  rssIdleMiB?: number;
  senderCpuS?: number;
  raw?: Record<string, unknown>;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export interface ContenderResult {
  id: string;
  label: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  samples: RunSample[];
  errors: string[];
  value?: Summary;
  p50?: number;
  p99?: number;
  cpuPerUnit?: number;
  rssPeakMiB?: number;
  /** median / peer median, turned so that > 1 is better than the peer. */
  ratio?: number;
  ratioMin?: number;
  ratioMax?: number;
  /**
   * Set when the figure is absurd next to the best other contender of the same run (a median
   * latency over ANOMALY_FACTOR times, or a throughput under 1/ANOMALY_FACTOR of, theirs): a
   * broken set-up, not a result (bench/lib/stats.ts flagAnomalies).
   */
  anomaly?: string;
}

export interface GoalResult {
  label: string;
  status: 'pass' | 'fail' | 'anomaly' | 'maio not measured' | 'no reference measured';
  ratio?: number;
  detail: string;
}

export interface ControlResult {
  a: string;
  b: string;
  /** Per-round b/a of the primary metric. */
  ratios: number[];
  spread?: Summary;
}

export interface ScenarioResult {
  id: string;
  title: string;
  metric: Metric;
  cpuPer: 'Mmsg' | 'GB';
  peer: string;
  contenders: ContenderResult[];
  control: ControlResult;
  goals: GoalResult[];
  skipped?: string;
}

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  bun: string | null;
  iperf3: string | null;
  pinned: boolean;
}

export interface BenchResult {
  startedAt: string;
  finishedAt: string;
  command: string;
  mode: 'short' | 'full' | 'custom';
  timing: Timing;
  machine: Machine;
  scenarios: ScenarioResult[];
}
