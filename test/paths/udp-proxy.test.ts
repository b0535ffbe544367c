// UdpProxy and `maio proxy --udp` on real loopback sockets, both backends:
// sequence-numbered datagrams from several clients through the relay to echo
// upstreams and back, byte-exact, each client getting only its own; each
// flow sticks to one upstream and flows spread; idle sessions expire; the
// session limit drops new flows and counts them; relayed datagrams are sent
// from the buffers they arrived in; bad options are typed errors, and the
// command's are one line on stderr.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createUdpSocket, defaultPool, UdpProxy, type UdpSocket } from '../../src/index';
import { bounded, netSkip as skip, poolGuard, until } from '../net/helpers';
import { tmpDir } from './helpers';

const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** An echo upstream on maio (send(msg): the reply is the request's own buffer); records the source port of every datagram. */
async function echoUpstream(): Promise<{ sock: UdpSocket; port: number; sources: Set<number>; count: () => number }> {
  // A large receive buffer: bursts through the relay must not overflow it (loopback would drop).
  const sock = createUdpSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  const { port } = await sock.bind(0, '127.0.0.1');
  const sources = new Set<number>();
  let n = 0;
  sock.on('message', (m, from) => {
    n++;
    sources.add(from.port);
    sock.send(m, from.port, from.address);
  });
  return { sock, port, sources, count: () => n };
}

/** A node:dgram client: datagram = [client id u32][seq u32][pattern]. */
function payload(id: number, seq: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  b.writeUInt32BE(id, 0);
  b.writeUInt32BE(seq, 4);
  for (let i = 8; i < len; i++) b[i] = (id * 13 + seq * 31 + i * 7) & 0xff;
  return b;
}

function parse(b: Buffer): { id: number; seq: number } | null {
  const id = b.readUInt32BE(0);
  const seq = b.readUInt32BE(4);
  return payload(id, seq, b.length).equals(b) ? { id, seq } : null;
}

async function client(): Promise<dgram.Socket> {
  const c = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  await new Promise<void>((r) => c.bind(0, '127.0.0.1', r));
  return c;
}

/** Sends `total` datagrams of client `id`, at most `window` unanswered; resolves with what came back. */
async function exchange(c: dgram.Socket, id: number, port: number, total: number, window = 16): Promise<{ seqs: number[]; foreign: number; corrupt: number }> {
  const seqs: number[] = [];
  let foreign = 0;
  let corrupt = 0;
  c.on('message', (b) => {
    const p = parse(b);
    if (!p) corrupt++;
    else if (p.id !== id) foreign++;
    else seqs.push(p.seq);
  });
  let sent = 0;
  while (sent < total) {
    while (sent < total && sent - seqs.length < window) c.send(payload(id, sent, 64 + ((id * 97 + sent * 13) % 1300)), port, '127.0.0.1'), sent++;
    await until(() => seqs.length >= sent - window / 2 || seqs.length === sent, `client ${id} replies (${seqs.length}/${sent})`, 10000);
  }
  await until(() => seqs.length === total, `client ${id}: all replies (${seqs.length}/${total})`, 10000);
  return { seqs, foreign, corrupt };
}

test('several clients through the relay: byte-exact replies, each to its own client, flows stick to one upstream and spread, no copy', { skip, timeout: 30000 }, async () => {
  const guard = poolGuard(defaultPool());
  const ups = [await echoUpstream(), await echoUpstream()];
  const proxy = new UdpProxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: ups.map((u) => ({ host: '127.0.0.1', port: u.port })), recvBufferSize: 4 << 20 });
  const { port } = await proxy.listen();
  const clients = await Promise.all([0, 1, 2, 3].map(() => client()));
  const total = 300;
  const results = await Promise.all(clients.map((c, id) => exchange(c, id + 1, port, total)));
  for (const [i, r] of results.entries()) {
    assert.equal(r.corrupt, 0, `client ${i + 1}: no corrupt reply`);
    assert.equal(r.foreign, 0, `client ${i + 1}: no other client's reply`);
    assert.deepEqual([...r.seqs].sort((a, b) => a - b), [...Array(total).keys()], `client ${i + 1}: every reply once`);
  }
  const s = proxy.stats();
  assert.equal(s.sessions.created, 4);
  assert.equal(s.sessions.open, 4);
  assert.equal(s.datagrams.up, 4 * total);
  assert.equal(s.datagrams.down, 4 * total);
  assert.equal(s.bytes.up, s.bytes.down);
  // Affinity: each session's port was seen by exactly one upstream; round-robin spread four flows two and two.
  const sessions = proxy.sessionStats();
  for (const sess of sessions) {
    const seenBy = ups.filter((u) => u.sources.has(sess.localPort));
    assert.equal(seenBy.length, 1, `flow ${sess.client} went to one upstream`);
    assert.equal(`127.0.0.1:${seenBy[0]!.port}`, sess.upstream);
  }
  assert.deepEqual(ups.map((u) => u.sources.size), [2, 2]);
  assert.deepEqual(s.upstreams.map((u) => u.sessions), [2, 2]);
  // Every relayed datagram (up and down) left from the buffer it arrived in.
  assert.equal(s.sockets.messagesSent, 2 * 4 * total);
  assert.equal(s.drops.sessionLimit + s.drops.sendErrors, 0);
  assert.match(proxy.metrics(), /maio_udp_proxy_datagrams_total\{direction="up"\} 1200/);
  for (const c of clients) c.close();
  await bounded(proxy.close(), 'proxy close');
  assert.equal(proxy.stats().sessions.open, 0);
  await Promise.all(ups.map((u) => new Promise<void>((r) => u.sock.close(r))));
  await guard.check('every relayed buffer');
});

test('hash balance: a flow keeps its upstream across sessions; several flows spread', { skip, timeout: 30000 }, async () => {
  const ups = [await echoUpstream(), await echoUpstream(), await echoUpstream()];
  const proxy = new UdpProxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: ups.map((u) => ({ host: '127.0.0.1', port: u.port })), balance: 'hash', idleTimeout: 0.1 });
  const { port } = await proxy.listen();
  const clients = await Promise.all([...Array(8)].map(() => client()));
  const first = new Map<number, string>();
  proxy.on('session', (c, u) => {
    const p = Number(/:(\d+)$/.exec(c)![1]);
    if (!first.has(p)) first.set(p, u);
    else assert.equal(u, first.get(p), `client port ${p} hashed to the same upstream again`);
  });
  for (const [i, c] of clients.entries()) await exchange(c, i + 1, port, 5);
  await until(() => proxy.stats().sessions.open === 0, 'sessions expired');
  for (const c of clients) c.removeAllListeners('message');
  for (const [i, c] of clients.entries()) await exchange(c, i + 1, port, 5);
  assert.equal(proxy.stats().sessions.created, 16);
  assert.ok(new Set(first.values()).size >= 2, `8 flows over 3 upstreams use at least 2 (${[...first.values()]})`);
  for (const c of clients) c.close();
  await proxy.close();
  await Promise.all(ups.map((u) => new Promise<void>((r) => u.sock.close(r))));
});

test('idle sessions expire; the session limit drops new flows and counts them', { skip, timeout: 30000 }, async () => {
  const guard = poolGuard(defaultPool());
  const up = await echoUpstream();
  const proxy = new UdpProxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: up.port }], idleTimeout: 0.2, maxSessions: 1 });
  const { port } = await proxy.listen();
  const closes: string[] = [];
  proxy.on('sessionClose', (info, reason) => closes.push(reason));
  const a = await client();
  const b = await client();
  await exchange(a, 1, port, 3);
  // The one session is a's: b's datagrams are dropped, counted, and never reach the upstream.
  let bGot = 0;
  b.on('message', () => bGot++);
  for (let i = 0; i < 5; i++) b.send(payload(2, i, 100), port, '127.0.0.1');
  await until(() => proxy.stats().drops.sessionLimit === 5, 'b dropped at the limit');
  const s = proxy.stats();
  assert.equal(s.sessions.refused, 1, 'one flow refused');
  assert.equal(s.sessions.open, 1);
  assert.equal(up.count(), 3);
  assert.equal(bGot, 0);
  // Idle: a's session closes after 0.2 to 0.3 s (polled, so give it room), then b gets one.
  await until(() => proxy.stats().sessions.expired === 1, 'a expired');
  assert.deepEqual(closes, ['idle']);
  assert.equal(proxy.stats().sessions.open, 0);
  b.removeAllListeners('message');
  await exchange(b, 2, port, 3);
  assert.equal(proxy.stats().sessions.created, 2);
  assert.match(proxy.metrics(), /maio_udp_proxy_sessions_total\{event="expired"\} 1/);
  assert.match(proxy.metrics(), /maio_udp_proxy_drops_total\{reason="session_limit"\} 5/);
  a.close();
  b.close();
  await proxy.close();
  assert.deepEqual(closes, ['idle', 'close']);
  await new Promise<void>((r) => up.sock.close(r));
  await guard.check('every buffer, dropped datagrams too');
});

test('a GRO batch from a client reaches the upstream as a GSO batch', { skip, timeout: 20000 }, async () => {
  const up = await echoUpstream();
  const proxy = new UdpProxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: up.port }] });
  const { port } = await proxy.listen();
  const tx = createUdpSocket({ type: 'udp4' });
  await tx.bind(0, '127.0.0.1');
  if (!tx.stats().gso.enabled) {
    await new Promise<void>((r) => tx.close(r));
    await proxy.close();
    await new Promise<void>((r) => up.sock.close(r));
    return;
  }
  let got = 0;
  tx.on('message', () => got++);
  const pool = tx.pool;
  for (let i = 0; i < 20; i++) {
    const buf = pool.alloc(1000);
    buf.setLength(1000);
    buf.bytes.fill(i);
    tx.send(buf, port, '127.0.0.1');
  }
  await until(() => got === 20, 'the echoes');
  const s = proxy.stats();
  assert.ok(s.sockets.groBatches >= 1, 'the relay received GRO batches');
  assert.ok(s.sockets.gsoBatches >= 1, 'and sent GSO batches');
  await new Promise<void>((r) => tx.close(r));
  await proxy.close();
  await new Promise<void>((r) => up.sock.close(r));
});

test('an upstream with no socket: its ICMP errors are counted, the relay keeps serving the others', { skip, timeout: 20000 }, async () => {
  const gone = createUdpSocket({ type: 'udp4' });
  const { port: deadPort } = await gone.bind(0, '127.0.0.1');
  await new Promise<void>((r) => gone.close(r)); // nothing listens there now: port unreachable
  const up = await echoUpstream();
  const proxy = new UdpProxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: deadPort }, { host: '127.0.0.1', port: up.port }] });
  const { port } = await proxy.listen();
  const dead = await client();
  for (let i = 0; i < 3; i++) dead.send(payload(1, i, 100), port, '127.0.0.1'); // round-robin: the first flow goes to the dead one
  await until(() => proxy.stats().upstreams[0]!.errors >= 1, 'the dead upstream\'s ICMP error counted');
  const live = await client();
  const r = await exchange(live, 2, port, 20);
  assert.equal(r.foreign + r.corrupt, 0);
  assert.deepEqual(proxy.stats().upstreams.map((u) => u.sessions), [1, 1]);
  dead.close();
  live.close();
  await proxy.close();
  await new Promise<void>((r) => up.sock.close(r));
});

test('300 flows at once (more than a socket caches destinations for): each reply reaches its own client', { skip, timeout: 30000 }, async () => {
  const up = await echoUpstream();
  const proxy = new UdpProxy({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: up.port }], recvBufferSize: 4 << 20 });
  const { port } = await proxy.listen();
  const clients = await Promise.all([...Array(300)].map(() => client()));
  const got = new Array<number>(clients.length).fill(0);
  let wrong = 0;
  clients.forEach((c, id) =>
    c.on('message', (b) => {
      const p = parse(b);
      if (p && p.id === id) got[id]!++;
      else wrong++;
    }),
  );
  // Two rounds, each client one datagram per round, 50 clients at a time (a burst of 300 would
  // overflow a socket buffer on the way: loopback drops, and this test wants every reply).
  for (let round = 0; round < 2; round++) {
    for (let from = 0; from < clients.length; from += 50) {
      for (let id = from; id < from + 50; id++) clients[id]!.send(payload(id, round, 200), port, '127.0.0.1');
      await until(() => got.slice(from, from + 50).every((n) => n === round + 1), `round ${round}: replies of clients ${from}..${from + 49}`, 20000);
    }
  }
  assert.equal(wrong, 0);
  assert.equal(proxy.stats().sessions.created, 300);
  for (const c of clients) c.close();
  await proxy.close();
  await new Promise<void>((r) => up.sock.close(r));
});

test('reload(): open sessions keep their upstream (listed as retired until they end), new flows take the new set; listen cannot change', { skip, timeout: 30000 }, async () => {
  const A = await echoUpstream();
  const B = await echoUpstream();
  const listen = { host: '127.0.0.1', port: 0 };
  const proxy = new UdpProxy({ listen, upstreams: [{ host: '127.0.0.1', port: A.port }], idleTimeout: 0.3 });
  const { port } = await proxy.listen();
  const old = await client();
  await exchange(old, 1, port, 5);
  proxy.reload({ listen, upstreams: [{ host: '127.0.0.1', port: B.port }], idleTimeout: 0.3 });
  let s = proxy.stats();
  assert.deepEqual(s.upstreams.map((u) => [u.port, u.active, u.retired ?? false]), [[B.port, 0, false], [A.port, 1, true]]);
  old.removeAllListeners('message');
  await exchange(old, 1, port, 5);
  assert.equal(A.count(), 10, 'the open flow stayed on A');
  const fresh = await client();
  await exchange(fresh, 2, port, 5);
  assert.equal(B.count(), 5, 'the new flow went to B');
  // Refused: nothing changes, and it is counted.
  assert.throws(() => proxy.reload({ listen: { host: '127.0.0.1', port: 1 }, upstreams: [{ host: '127.0.0.1', port: A.port }] }), { code: 'ERR_MAIO_CONFIG' });
  assert.throws(() => proxy.reload(() => ({ listen, upstreams: [] })), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.deepEqual(proxy.stats().reloads, { ok: 1, refused: 2 });
  assert.equal(proxy.upstreamCount, 1);
  // A's last session expires: it is no longer listed.
  await until(() => proxy.stats().upstreams.length === 1, 'the retired upstream dropped after its last session');
  s = proxy.stats();
  assert.equal(s.upstreams[0]!.port, B.port);
  old.close();
  fresh.close();
  await proxy.close();
  await Promise.all([A, B].map((u) => new Promise<void>((r) => u.sock.close(r))));
});

test('bad options are typed errors', () => {
  const ok = { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: 9 }] };
  assert.throws(() => new UdpProxy({ ...ok, listen: { host: 'localhost', port: 0 } }), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => new UdpProxy({ ...ok, upstreams: [] }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => new UdpProxy({ ...ok, upstreams: [{ host: '127.0.0.1', port: 0 }] }), { code: 'ERR_MAIO_INVALID_ADDRESS' });
  assert.throws(() => new UdpProxy({ ...ok, balance: 'least-connections' as 'hash' }), { code: 'ERR_MAIO_INVALID_ARG' });
  assert.throws(() => new UdpProxy({ ...ok, idleTimeout: 0 }), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  assert.throws(() => new UdpProxy({ ...ok, maxSessions: 1.5 }), { code: 'ERR_MAIO_OUT_OF_RANGE' });
  assert.throws(() => new UdpProxy(null as never), { code: 'ERR_MAIO_INVALID_ARG' });
});

function runCli(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 10000 });
  return { code: r.status, stderr: r.stderr };
}

test('maio proxy --udp: bad flags are one line on stderr, exit 1', { skip }, () => {
  const dir = tmpDir();
  const conf = (name: string, o: unknown) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, JSON.stringify(o));
    return f;
  };
  const tcpKey = conf('tcp-key.json', { listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9'], mode: 'buffers' });
  const badIdle = conf('bad-idle.json', { listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9'], udpIdleTimeout: -1 });
  for (const [args, want] of [
    [['--udp', '--config', tcpKey], /config .*tcp-key.json: unknown key 'mode' for a UDP proxy/],
    [['--udp', '--config', badIdle], /config .*bad-idle.json: udpIdleTimeout must be a number > 0, got '-1'/],
    [['--udp', '--listen', '127.0.0.1:0'], /at least one --upstream/],
    [['--udp', '--upstream', '127.0.0.1:9'], /--listen HOST:PORT is required/],
    [['--udp', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--udp-max-sessions', '0'], /--udp-max-sessions must be a whole number > 0/],
    [['--udp', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--udp-idle-timeout', 'x'], /--udp-idle-timeout must be a number > 0/],
    [['--udp', '--listen', '127.0.0.1:0', '--upstream', 'localhost:9'], /--upstream: host must be an IP address/],
    [['--udp', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--balance', 'least-connections'], /--balance must be round-robin or hash/],
    [['--udp', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--workers', '0'], /--workers must be 'auto' or a whole number/],
    [['--udp', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--cpus', '0'], /--cpus needs --workers/],
    [['--udp', '--config', '/nonexistent/udp.json'], /cannot read config \/nonexistent\/udp.json/],
    [['--udp', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--mode', 'splice'], /unknown option --mode for a UDP proxy/],
  ] as const) {
    const r = runCli(['proxy', ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});

test('maio proxy --udp relays datagrams both ways and serves its metrics', { skip, timeout: 30000 }, async () => {
  const up = await echoUpstream();
  const child = spawn(process.execPath, [cli, 'proxy', '--udp', '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up.port}`, '--metrics', '127.0.0.1:0', '--udp-idle-timeout', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const line = await bounded(
    new Promise<string>((resolve) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
    }),
    'listening line',
  );
  const port = Number(/^listening (\d+)$/.exec(line)![1]);
  const c = await client();
  const r = await exchange(c, 7, port, 50);
  assert.equal(r.foreign + r.corrupt, 0);
  const mport = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1]);
  const text = await (await fetch(`http://127.0.0.1:${mport}/metrics`)).text();
  assert.match(text, /maio_udp_proxy_datagrams_total\{direction="down"\} 50/);
  assert.match(text, /maio_udp_proxy_sessions_open 1/);
  const json = (await (await fetch(`http://127.0.0.1:${mport}/sessions`)).json()) as { sessions: { datagramsUp: number }[] };
  assert.equal(json.sessions[0]!.datagramsUp, 50);
  child.kill('SIGHUP'); // the same flags again, no --config: a reload that changes nothing, not an exit
  await until(() => err.includes('maio proxy: reloaded: 1 upstream(s) for new flows, 1 open session(s) kept'), 'the SIGHUP line');
  c.removeAllListeners('message');
  const again = await exchange(c, 7, port, 5);
  assert.equal(again.foreign + again.corrupt, 0, 'still relaying after SIGHUP');
  c.close();
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0, err);
  await new Promise<void>((r) => up.sock.close(r));
});
