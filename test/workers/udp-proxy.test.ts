/**
 * `maio proxy --udp --workers 2`: the UDP relay on every worker, one address
 * (SO_REUSEPORT). Flows from many client ports land on both workers (each
 * worker's own stats say so), replies come back byte-exact to the client
 * that sent, /metrics sums the workers; SIGHUP sends a new --config to every
 * worker and open flows keep their upstream while new ones take the new one;
 * SIGTERM drains and exits 0. A worker that dies has its sockets closed by the
 * group (its listener leaves the reuseport set) and a replacement serves.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WorkerGroup, type MaioWorker, type WorkerExitInfo } from '../../src/workers/group';
import { WorkerReloads } from '../../src/cli/proxy-worker-reload';
import type { UdpProxyOptions, UdpProxyStats } from '../../src/paths/udp-proxy';
import { bounded, netSkip as skip } from '../net/helpers';
import { tmpDir, until } from '../paths/helpers';
import { cli, httpGet, metricsPort, parsePrometheus, sampleOf } from '../paths/proxy-helpers';

interface Echo {
  sock: dgram.Socket;
  port: number;
  /** source ports seen (one per session socket of the relay) */
  sources: Set<number>;
  count(): number;
  close(): Promise<void>;
}

async function echoUpstream(): Promise<Echo> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  const sources = new Set<number>();
  let n = 0;
  sock.on('message', (m, r) => {
    n++;
    sources.add(r.port);
    sock.send(m, r.port, r.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { sock, port: sock.address().port, sources, count: () => n, close: () => new Promise<void>((r) => sock.close(r)) };
}

/** A datagram that names its client and sequence number, with a pattern the reply must match. */
function payload(id: number, seq: number): Buffer {
  const b = Buffer.alloc(40 + ((id * 131 + seq * 17) % 1200));
  b.writeUInt32BE(id, 0);
  b.writeUInt32BE(seq, 4);
  for (let i = 8; i < b.length; i++) b[i] = (id * 7 + seq * 29 + i * 3) & 0xff;
  return b;
}

interface Client {
  sock: dgram.Socket;
  id: number;
  /** replies that matched what this client sent */
  good: number;
  /** replies that did not (another client's, corrupt) */
  bad: number;
}

async function clients(ids: number[]): Promise<Client[]> {
  return Promise.all(
    ids.map(async (id) => {
      const sock = dgram.createSocket('udp4');
      const c: Client = { sock, id, good: 0, bad: 0 };
      const sent = new Map<number, Buffer>();
      (sock as unknown as { sent: Map<number, Buffer> }).sent = sent;
      sock.on('message', (m) => {
        const want = m.length >= 8 && m.readUInt32BE(0) === id ? sent.get(m.readUInt32BE(4)) : undefined;
        if (want && want.equals(m)) c.good++;
        else c.bad++;
      });
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      return c;
    }),
  );
}

/** Each client sends `n` datagrams (sequence from `from`); resolves when every reply is back. */
async function round(cs: Client[], port: number, from: number, n: number): Promise<void> {
  const want = cs.map((c) => c.good + n);
  for (let seq = from; seq < from + n; seq++) {
    for (const c of cs) {
      const b = payload(c.id, seq);
      (c.sock as unknown as { sent: Map<number, Buffer> }).sent.set(seq, b);
      c.sock.send(b, port, '127.0.0.1');
    }
  }
  await until(() => cs.every((c, i) => c.good >= want[i]!), `every reply (${cs.map((c) => c.good).join(',')} of ${want.join(',')})`, 10_000);
  for (const c of cs) assert.equal(c.bad, 0, `client ${c.id}: no foreign or corrupt reply`);
}

interface WorkerEntry {
  index: number;
  app: UdpProxyStats;
}

test('maio proxy --udp --workers 2: flows spread over both workers, byte-exact; SIGHUP keeps flows; metrics summed; SIGTERM exits 0', { skip, timeout: 60_000 }, async () => {
  const A = await echoUpstream();
  const B = await echoUpstream();
  const file = path.join(tmpDir(), 'udp.json');
  const config = (port: number) => JSON.stringify({ listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${port}`], metrics: '127.0.0.1:0', udpIdleTimeout: 60 });
  fs.writeFileSync(file, config(A.port));
  const p = cli(['--udp', '--workers', '2', '--config', file]);
  const all: Client[] = [];
  try {
    const port = await p.port;
    const old = await clients([...Array(16).keys()].map((i) => i + 1));
    all.push(...old);
    await round(old, port, 0, 4);
    const per = JSON.parse((await httpGet(metricsPort(p), '/sessions')).body) as { stats: { app: { sessions: { open: number } } }; workers: WorkerEntry[] };
    assert.equal(per.workers.length, 2);
    const created = per.workers.map((w) => w.app.sessions.created);
    // The kernel's reuseport hash: 16 client ports on one worker only is a 1 in 32,768 chance.
    for (const [i, n] of created.entries()) assert.ok(n >= 1, `worker ${per.workers[i]!.index} has sessions: ${created}`);
    assert.equal(created[0]! + created[1]!, 16, 'one session per client port, on one worker only');
    assert.equal(per.stats.app.sessions.open, 16, '/sessions sums the workers');
    assert.equal(A.sources.size, 16);

    // SIGHUP: the new file's upstream is B; the 16 open flows stay on A, new flows go to B.
    fs.writeFileSync(file, config(B.port));
    p.child.kill('SIGHUP');
    const reloaded = () => p.lines().filter((l) => l.includes('reload'));
    await until(() => reloaded().length === 1, 'the reload line', 10_000);
    assert.match(reloaded()[0]!, /^maio proxy: reloaded in 2\/2 worker\(s\): worker \d ok \(1 upstream\(s\), \d+ open session\(s\) kept\); worker \d ok/, p.stderr());
    const aBefore = A.count();
    await round(old, port, 4, 4);
    assert.equal(A.count(), aBefore + 16 * 4, 'open flows kept their upstream');
    assert.equal(B.count(), 0);
    const fresh = await clients([...Array(8).keys()].map((i) => i + 100));
    all.push(...fresh);
    await round(fresh, port, 0, 2);
    assert.equal(B.sources.size, 8, 'new flows took the new upstream');
    assert.equal(A.sources.size, 16);

    // A new listen address needs a restart: refused once, by the main thread.
    fs.writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:1', upstreams: [`127.0.0.1:${B.port}`], metrics: '127.0.0.1:0' }));
    p.child.kill('SIGHUP');
    await until(() => reloaded().length === 2, 'the refusal line', 10_000);
    assert.match(reloaded()[1]!, /^maio proxy: reload refused: listen cannot change on reload/);

    const m = parsePrometheus((await httpGet(metricsPort(p), '/metrics')).body);
    assert.equal(sampleOf(m, 'maio_udp_proxy_sessions_open'), 24, 'summed over the workers');
    assert.equal(sampleOf(m, 'maio_udp_proxy_datagrams_total', '{direction="up"}'), 16 * 8 + 8 * 2);
    assert.equal(sampleOf(m, 'maio_udp_proxy_datagrams_total', '{direction="down"}'), 16 * 8 + 8 * 2);
    assert.equal(sampleOf(m, 'maio_udp_proxy_reloads_total', '{result="ok"}'), 2, 'one taken reload in each of 2 workers');
    assert.equal(sampleOf(m, 'maio_proxy_reloads_total', '{result="refused"}'), 1, 'the refusal, counted by the main thread');
  } finally {
    for (const c of all) c.sock.close();
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.stderr());
    await A.close();
    await B.close();
  }
  assert.match(p.stderr(), /maio proxy: stopping: draining 2 workers/);
});

test('a UDP relay worker that dies: the group closes its sockets, a replacement serves every new flow', { skip, timeout: 60_000 }, async () => {
  const A = await echoUpstream();
  const options: UdpProxyOptions = { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: A.port }] };
  let reloads: WorkerReloads<UdpProxyOptions> | null = null;
  const group = new WorkerGroup({
    module: require.resolve('../../src/cli/worker-command'),
    count: 2,
    restart: { minDelay: 50 },
    workerData: () => ({ command: 'proxy', argv: ['--udp', '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${A.port}`], ...reloads!.data() }),
  });
  reloads = new WorkerReloads(options, group, 'session');
  const all: Client[] = [];
  try {
    await group.start();
    const port = group.port;
    const first = await clients([...Array(16).keys()].map((i) => i + 1));
    all.push(...first);
    await round(first, port, 0, 2);
    const victim = group.workers[0]!;
    const exited = new Promise<WorkerExitInfo>((resolve) => group.on('exit', (w, _code, info) => w === victim && resolve(info)));
    const replaced = new Promise<MaioWorker>((resolve) => group.on('ready', (w) => w.index === victim.index && w !== victim && resolve(w)));
    await victim.thread.terminate();
    const info = await bounded(exited, 'the exit', 10_000);
    assert.equal(info.expected, false);
    // Its listening socket and its session sockets (at least one flow hashed to it, as above).
    assert.ok(info.socketsReset >= 2, `sockets of the dead worker closed: ${info.socketsReset}`);
    const fresh = await bounded(replaced, 'the replacement', 10_000);
    assert.equal(group.port, port);
    // New client ports: every one answered, none lost to a socket nobody reads.
    const later = await clients([...Array(16).keys()].map((i) => i + 200));
    all.push(...later);
    await round(later, port, 0, 2);
    const st = await group.stats();
    const mine = st.workers.find((w) => w.id === fresh.id) as unknown as WorkerEntry | undefined;
    assert.ok(mine, 'the replacement answers');
    assert.ok(mine.app.sessions.created >= 1, 'the replacement took flows');
  } finally {
    for (const c of all) c.sock.close();
    await group.stop({ timeout: 5000 });
    await A.close();
  }
});
