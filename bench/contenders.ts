// The contenders, as data: one entry per program, with the command it runs in each role.
// Servers take `--port P` and print `listening <port>` (or `ready`) on stdout when ready.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Contender, Env, RoleParams } from './lib/types';

const WRITE_SIZE = 65536;

const server = (env: Env, file: string): string => path.join(env.root, 'bench', 'servers', file);
const tool = (env: Env, name: string): string => path.join(env.buildDir, name);
const port = (p: RoleParams): string[] => ['--port', String(p.port), '--host', p.host];

function needTool(...names: string[]) {
  return (env: Env): string | null => {
    const missing = names.filter((n) => !existsSync(tool(env, n)));
    return missing.length ? `C tools not built (${missing.join(', ')}): run scripts/bench-setup.sh` : null;
  };
}

/** `maio echo` with heap and GC measurements (servers/maio-steady.js); the steady-state scenario. */
function maioSteady(env: Env, p: RoleParams): string[] {
  const dist = path.resolve(path.dirname(env.maioCli), '..');
  return [process.execPath, '--expose-gc', server(env, 'maio-steady.js'), '--maio', dist, ...port(p)];
}

/** servers/node-http.js: node:http (node:https when the scenario passes --cert/--key), fed by `net`. */
function nodeHttp(net: 'node' | 'maio') {
  return (env: Env, p: RoleParams): string[] => [process.execPath, server(env, 'node-http.js'), ...port(p), '--net', net];
}

function nodeNet(id: string, label: string): Contender {
  return {
    id,
    label,
    family: 'node',
    unavailable: () => null,
    cmd: {
      echo: (env, p) => [process.execPath, server(env, 'node-echo.js'), ...port(p)],
      echo2: (env, p) => [process.execPath, server(env, 'node-echo-cluster.js'), ...port(p), '--workers', '2'],
      sink: (env, p) => [process.execPath, server(env, 'node-sink.js'), ...port(p)],
      sender: (env, p) => [process.execPath, server(env, 'node-send.js'), ...port(p), '--size', String(WRITE_SIZE)],
      proxy: (env, p) => [process.execPath, server(env, 'node-proxy.js'), ...port(p), '--upstream', String(p.upstream)],
      proxy2: (env, p) => [process.execPath, server(env, 'node-proxy-cluster.js'), ...port(p), '--upstream', String(p.upstream), '--workers', '2'],
      'udp-sink': (env, p) => [process.execPath, server(env, 'node-dgram-sink.js'), ...port(p)],
      'udp-send': (env, p) => [process.execPath, server(env, 'node-dgram-send.js'), ...port(p), '--duration', String(p.duration ?? 5)],
      'udp-relay': (env, p) => [process.execPath, server(env, 'node-udp-relay.js'), ...port(p), '--upstream', String(p.upstream), '--upstream-host', p.host],
      file: (env, p) => [process.execPath, server(env, 'node-sendfile.js'), ...port(p), '--file', p.file!],
      http: nodeHttp('node'),
      https: nodeHttp('node'),
    },
    roleLabel: {
      echo2: `${label} on node:cluster, 2 worker processes`,
      proxy: `${label} pipe() proxy`,
      proxy2: `${label} pipe() proxy on node:cluster, 2 worker processes`,
      'udp-sink': label.replace('node:net', 'node:dgram'),
      'udp-send': label.replace('node:net', 'node:dgram'),
      'udp-relay': `${label.replace('node:net', 'node:dgram')} relay`,
      file: `${label} createReadStream().pipe()`,
      http: label.replace('node:net', 'node:http'),
      https: label.replace('node:net', 'node:https'),
    },
  };
}

/** `maio proxy` between the iperf3 ends; health checks effectively off (they would be iperf3 clients). */
function maioProxy(mode: string, extra: string[] = []) {
  return (env: Env, p: RoleParams): string[] => [
    process.execPath,
    env.maioCli,
    'proxy',
    '--listen',
    `${p.host}:${p.port}`,
    '--upstream',
    `${p.host}:${p.upstream}`,
    '--health-interval',
    '86400',
    '--mode',
    mode,
    ...extra,
  ];
}

/** `maio udp-sink` (GRO on or off; off also takes 2 KiB receive buffers, one datagram each). */
function maioUdpSink(gro: boolean) {
  return (env: Env, p: RoleParams): string[] => [
    process.execPath,
    env.maioCli,
    'udp-sink',
    ...port(p),
    '--gro',
    gro ? '1' : '0',
    ...(gro ? [] : ['--read-size', '2048']),
  ];
}

/**
 * `maio udp-blast`, 1,400-byte datagrams: GSO on (4 pool buffers of 46 datagrams, resent with
 * sendSegmentsShared(), as the C UDP_SEGMENT sender resends its 4 messages) or off; `zeroCopy`
 * passes --zerocopy.
 */
function maioUdpBlast(gso: boolean, zeroCopy?: 'always') {
  return (env: Env, p: RoleParams): string[] => [
    process.execPath,
    env.maioCli,
    'udp-blast',
    ...port(p),
    '--size',
    '1400',
    '--duration',
    String(p.duration ?? 5),
    '--gso',
    gso ? '1' : '0',
    ...(zeroCopy ? ['--zerocopy', zeroCopy] : []),
  ];
}

/** `maio proxy --udp`, one worker (the main thread), as the CLI sets it up. */
function maioUdpRelay(env: Env, p: RoleParams): string[] {
  return [process.execPath, env.maioCli, 'proxy', '--udp', '--listen', `${p.host}:${p.port}`, '--upstream', `${p.host}:${p.upstream}`];
}

/** The C UDP tools with UDP_GRO / UDP_SEGMENT, the fastest there are (`suffix` names an A/A copy). */
function cSegmented(id: string, suffix: string): Contender {
  return {
    id,
    label: `C, UDP_GRO / UDP_SEGMENT${suffix}`,
    family: 'c',
    roleLabel: { 'udp-sink': `C recvmmsg + UDP_GRO${suffix}`, 'udp-send': `C sendmmsg + UDP_SEGMENT${suffix}` },
    unavailable: needTool('udp_recv', 'udp_send'),
    cmd: cUdp({ recv: 'gro', send: 'gso' }),
  };
}

/** The C UDP tools: udp_recv (recvmmsg, or UDP_GRO) and udp_send (sendmmsg, or UDP_SEGMENT). */
function cUdp(mode: { recv: string; send: string }) {
  return {
    'udp-sink': (env: Env, p: RoleParams): string[] => [tool(env, 'udp_recv'), ...port(p), '--mode', mode.recv],
    'udp-send': (env: Env, p: RoleParams): string[] => [tool(env, 'udp_send'), ...port(p), '--mode', mode.send, '--size', '1400'],
  };
}

/** maio's file sender: socket.sendFile() in a loop (servers/maio-sendfile.js). */
function maioFile(mode: string) {
  return (env: Env, p: RoleParams): string[] => [process.execPath, server(env, 'maio-sendfile.js'), ...port(p), '--file', p.file!, '--mode', mode];
}

/** `maio echo --workers 1`: the one-worker end of the scaling scenario (the same code path as 2). */
function maioWorkers(id: string, label: string): Contender {
  return {
    id,
    label,
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: { echo2: (env, p) => [process.execPath, env.maioCli, 'echo', '--port', String(p.port), '--workers', '1'] },
    roleLabel: { echo2: label.replace('maio, 1 worker', 'maio echo --workers 1') },
  };
}

/** HAProxy 2.x in TCP mode, one thread (proxy2: two), no health checks; `splice` adds splice-auto. */
function haproxy(id: string, label: string, splice: boolean): Contender {
  return {
    id,
    label,
    family: 'c',
    unavailable: (env) => (env.haproxy ? null : 'HAProxy not installed (apt-get install haproxy; scripts/bench-setup.sh does)'),
    readyByListen: true,
    cmd: { proxy: haproxyCmd(id, splice, 1), proxy2: haproxyCmd(id, splice, 2) },
    roleLabel: { proxy2: `${label}, nbthread 2` },
  };
}

/** HAProxy's command line; its configuration is written to bench/build/<id>-<threads>t.cfg. */
function haproxyCmd(id: string, splice: boolean, threads: number) {
  return (env: Env, p: RoleParams): string[] => {
    const cfg = path.join(env.buildDir, `${id}-${threads}t.cfg`);
    const lines = [
      'global',
      `  nbthread ${threads}`,
      '  maxconn 1000',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 1h',
      '  timeout server 1h',
      ...(splice ? ['  option splice-auto'] : []),
      'frontend f',
      `  bind ${p.host}:${p.port}`,
      '  default_backend b',
      'backend b',
      `  server s ${p.host}:${p.upstream}`,
    ];
    mkdirSync(env.buildDir, { recursive: true });
    writeFileSync(cfg, lines.join('\n') + '\n');
    return [env.haproxy!, '-db', '-f', cfg];
  };
}

export const contenders: Contender[] = [
  {
    id: 'maio',
    label: 'maio',
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: {
      echo: (env, p) => [process.execPath, env.maioCli, 'echo', '--port', String(p.port)],
      echo2: (env, p) => [process.execPath, env.maioCli, 'echo', '--port', String(p.port), '--workers', '2'],
      sink: (env, p) => [process.execPath, env.maioCli, 'sink', '--port', String(p.port)],
      sender: (env, p) => [process.execPath, env.maioCli, 'blast', '--port', String(p.port)],
      steady: maioSteady,
      proxy: maioProxy('auto'),
      proxy2: maioProxy('auto', ['--workers', '2']),
      file: maioFile('sendfile'),
      http: nodeHttp('maio'),
      https: nodeHttp('maio'),
      'udp-sink': maioUdpSink(true),
      'udp-send': maioUdpBlast(true),
      'udp-relay': maioUdpRelay,
    },
    roleLabel: {
      echo2: 'maio echo --workers 2 (threads, SO_REUSEPORT)',
      proxy: 'maio proxy',
      proxy2: 'maio proxy --workers 2',
      'udp-sink': 'maio udp-sink, GRO on',
      'udp-send': 'maio udp-blast, GSO on (sendSegmentsShared, 4 buffers)',
      'udp-relay': 'maio proxy --udp',
      file: "maio socket.sendFile() (mode 'sendfile')",
      http: 'node:http on maio/net',
      https: 'node:https on maio/net',
    },
  },
  {
    id: 'maio-splice',
    label: 'maio, splice mode',
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: { proxy: maioProxy('splice'), file: maioFile('splice') },
    roleLabel: { proxy: 'maio proxy --mode splice', file: "maio socket.sendFile() (mode 'splice')" },
  },
  {
    id: 'maio-off',
    label: 'maio, GSO/GRO off',
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: { 'udp-sink': maioUdpSink(false), 'udp-send': maioUdpBlast(false) },
    roleLabel: { 'udp-sink': 'maio udp-sink, GRO off (2 KiB buffers)', 'udp-send': 'maio udp-blast, GSO off' },
  },
  {
    id: 'maio-zc',
    label: 'maio, zero-copy sends',
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: { 'udp-send': maioUdpBlast(true, 'always') },
    roleLabel: { 'udp-send': 'maio udp-blast --zerocopy always (SENDMSG_ZC; the peer namespace copies at delivery)' },
  },
  maioWorkers('maio-1w', 'maio, 1 worker'),
  maioWorkers('maio-1w-b', 'maio, 1 worker (A/A copy)'),
  {
    id: 'maio-b',
    label: 'maio (A/A copy)',
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: { steady: maioSteady },
  },
  nodeNet('node', 'node:net'),
  nodeNet('node-b', 'node:net (A/A copy)'),
  haproxy('haproxy', 'HAProxy', false),
  haproxy('haproxy-splice', 'HAProxy, splice-auto', true),
  {
    id: 'bun',
    label: 'Bun',
    family: 'bun',
    unavailable: (env) => (env.bun ? null : 'Bun not installed (npm install in bench/)'),
    cmd: {
      echo: (env, p) => [env.bun!, server(env, 'bun-echo.js'), ...port(p)],
      echo2: (env, p) => [env.bun!, server(env, 'bun-echo-reuseport.js'), ...port(p), '--workers', '2'],
      sink: (env, p) => [env.bun!, server(env, 'bun-sink.js'), ...port(p)],
      sender: (env, p) => [env.bun!, server(env, 'bun-send.js'), ...port(p), '--size', String(WRITE_SIZE)],
      http: (env, p) => [env.bun!, server(env, 'bun-http.js'), ...port(p)],
      https: (env, p) => [env.bun!, server(env, 'bun-http.js'), ...port(p)],
    },
    roleLabel: { echo2: 'Bun, 2 processes (reusePort)', http: 'Bun.serve', https: 'Bun.serve (TLS)' },
  },
  {
    id: 'c',
    label: 'C epoll',
    family: 'c',
    roleLabel: {
      sink: 'C sink, 64 KiB reads',
      sender: 'C sender (loadgen send)',
      echo2: 'C epoll, 2 threads (SO_REUSEPORT)',
      'udp-sink': 'C recvmmsg',
      'udp-send': 'C sendmmsg',
    },
    unavailable: needTool('echo_epoll', 'sink', 'loadgen', 'udp_recv', 'udp_send'),
    cmd: {
      echo: (env, p) => [tool(env, 'echo_epoll'), String(p.port)],
      echo2: (env, p) => [tool(env, 'echo_epoll'), String(p.port), '65536', '2'],
      sink: (env, p) => [tool(env, 'sink'), String(p.port), '65536'],
      sender: (env, p) => [tool(env, 'loadgen'), 'send', ...port(p), '--write', String(WRITE_SIZE), '--duration', '0', '--warmup', '0'],
      ...cUdp({ recv: 'mmsg', send: 'mmsg' }),
    },
  },
  cSegmented('c-seg', ''),
  // The UDP scenarios' A/A control: the best C program twice, so the same run shows how far two
  // runs of one program differ, next to maio's ratio to it.
  cSegmented('c-seg-b', ' (A/A copy)'),
  {
    // udp-relay: no relay command, so the C sender goes straight into the C receiver (the ceiling)
    id: 'direct',
    label: 'direct (no relay)',
    family: 'c',
    unavailable: needTool('udp_recv', 'udp_send'),
    cmd: {},
  },
  {
    id: 'c-512k',
    label: 'C sink, 512 KiB reads',
    family: 'c',
    unavailable: needTool('sink'),
    cmd: {
      sink: (env, p) => [tool(env, 'sink'), String(p.port), '524288'],
    },
  },
  {
    id: 'iperf3',
    label: 'iperf3',
    family: 'iperf3',
    unavailable: (env) => (env.iperf3 ? null : 'iperf3 not installed (apt-get install iperf3)'),
    ready: /listening on (\d+)/i,
    cmd: {
      sink: (env, p) => [env.iperf3!, '-s', '-1', '--forceflush', '-B', p.host, '-p', String(p.port)],
      sender: (env, p) => [env.iperf3!, '-c', p.host, '-p', String(p.port), '-t', '86400', '--forceflush'],
      // sendfile(2) from iperf3's own buffer file, sent over and over
      file: (env, p) => [env.iperf3!, '-c', p.host, '-p', String(p.port), '-t', '86400', '-Z'],
    },
    roleLabel: { proxy: 'iperf3 direct (no proxy)', file: 'iperf3 -Z (sendfile), into iperf3 -s' },
  },
  {
    id: 'c-sendfile',
    label: 'C sendfile(2), blocking socket',
    family: 'c',
    unavailable: needTool('sendfile'),
    cmd: {
      file: (env, p) => [tool(env, 'sendfile'), String(p.port), p.file!],
    },
  },
];

export function contenderById(id: string): Contender {
  const c = contenders.find((x) => x.id === id);
  if (!c) throw new Error(`unknown contender '${id}' (known: ${contenders.map((x) => x.id).join(', ')})`);
  return c;
}
