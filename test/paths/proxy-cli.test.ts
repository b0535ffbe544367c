/**
 * maio proxy as a command (child processes): a JSON config means what the
 * flags mean, every bad input is one line on stderr and exit code 1,
 * unreachable upstreams are reported without stopping the proxy, and the
 * metrics endpoint is valid Prometheus text whose counters follow the traffic.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { tmpDir, until } from './helpers';
import { silentListener } from '../net/helpers';
import { bufferSkip, spliceSkip } from './maio-helpers';
import { cli, client, closed, deadPort, httpGet, metricsPort, parsePrometheus, sampleOf, upstream, type Cli } from './proxy-helpers';

async function stop(p: Cli): Promise<void> {
  if (p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  const code = await p.exited;
  assert.equal(code, 0, p.stderr());
}

test('CLI: a JSON config means what the flags mean; flags override it', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  const a = await upstream('a');
  const b = await upstream('b');
  const file = path.join(dir, 'proxy.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      listen: '127.0.0.1:0',
      upstreams: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`],
      balance: 'least-connections',
      maxConnections: 1,
      idleTimeout: 60,
      healthInterval: 5,
      connectTimeout: 2000,
      metrics: '127.0.0.1:0',
      mode: 'buffers',
    }),
  );
  const p = cli(['--config', file]);
  try {
    const port = await p.port;
    const m = parsePrometheus((await httpGet(metricsPort(p), '/metrics')).body);
    assert.equal(sampleOf(m, 'maio_proxy_upstream_up', `{upstream="127.0.0.1:${a.port}"}`), 1);
    assert.equal(sampleOf(m, 'maio_proxy_upstream_up', `{upstream="127.0.0.1:${b.port}"}`), 1);
    // maxConnections 1: the second client is closed at accept.
    const c1 = await client(port);
    c1.write('one');
    await until(() => a.busy().length + b.busy().length === 1, 'the first client forwarded');
    const c2 = await client(port);
    await closed(c2);
    const m2 = parsePrometheus((await httpGet(metricsPort(p), '/metrics')).body);
    assert.equal(sampleOf(m2, 'maio_proxy_connections_rejected_total'), 1);
    assert.equal(sampleOf(m2, 'maio_proxy_connections_active'), 1);
    c1.destroy();
    // SIGTERM drains: the upstream side must end too.
    [...a.conns, ...b.conns].forEach((s) => s.destroy());
    await stop(p);
  } finally {
    p.child.kill('SIGKILL');
  }

  // The same file with --max-connections 2 on the command line: two clients at once.
  const q = cli(['--config', file, '--max-connections', '2']);
  try {
    const port = await q.port;
    const c1 = await client(port);
    const c2 = await client(port);
    c1.write('one');
    c2.write('two');
    await until(() => a.busy().length + b.busy().length === 3, 'both clients forwarded');
    // least-connections with one open connection on each: one each.
    const m = parsePrometheus((await httpGet(metricsPort(q), '/metrics')).body);
    assert.equal(sampleOf(m, 'maio_proxy_connections_rejected_total'), 0);
    assert.equal(sampleOf(m, 'maio_proxy_upstream_connections_active', `{upstream="127.0.0.1:${a.port}"}`), 1);
    assert.equal(sampleOf(m, 'maio_proxy_upstream_connections_active', `{upstream="127.0.0.1:${b.port}"}`), 1);
    c1.destroy();
    c2.destroy();
    [...a.conns, ...b.conns].forEach((s) => s.destroy());
    await stop(q);
  } finally {
    q.child.kill('SIGKILL');
    await Promise.all([a.close(), b.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: bad JSON, bad keys and values, bad addresses and ports in use: one line on stderr, exit 1', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  const busy = net.createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  const busyPort = (busy.address() as net.AddressInfo).port;
  const conf = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const ok = { listen: '127.0.0.1:0', upstreams: ['127.0.0.1:1'] };
  const cases: [string[], RegExp][] = [
    [['--config', conf('bad.json', '{"listen": "127.0.0.1:0",')], /config .*bad\.json is not valid JSON/],
    [['--config', conf('array.json', '["127.0.0.1:0"]')], /must hold a JSON object/],
    [['--config', conf('key.json', JSON.stringify({ ...ok, upstream: ['x'] }))], /unknown key 'upstream'/],
    [['--config', conf('ups.json', JSON.stringify({ ...ok, upstreams: '127.0.0.1:1' }))], /upstreams must be an array of "HOST:PORT" strings/],
    [['--config', conf('listen.json', JSON.stringify({ ...ok, listen: 7300 }))], /listen must be a string, got 7300/],
    [['--config', conf('up0.json', JSON.stringify({ ...ok, upstreams: ['127.0.0.1:0'] }))], /upstreams '127\.0\.0\.1:0': port must be in 1\.\.65535/],
    [['--config', conf('maxc.json', JSON.stringify({ ...ok, maxConnections: -1 }))], /maxConnections must be a number >= 0/],
    [['--config', conf('busy.json', JSON.stringify({ ...ok, listen: `127.0.0.1:${busyPort}` }))], /cannot listen on 127\.0\.0\.1:\d+ \(proxy\): address in use/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--max-connections', '1.5'], /--max-connections must be a whole number/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--idle-timeout', 'soon'], /--idle-timeout must be a number >= 0/],
    [['--listen', '127.0.0.1:0', '--upstream', 'localhost'], /--upstream must be HOST:PORT/],
    [['--listen', '10.255.255.1:0', '--upstream', '127.0.0.1:1'], /cannot listen on 10\.255\.255\.1:0 \(proxy\): address not available on this host/],
    [['--listen', 'no-such-host.invalid:0', '--upstream', '127.0.0.1:1'], /cannot listen on no-such-host\.invalid:0 \(proxy\): .*ENOTFOUND/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--metrics', `127.0.0.1:${busyPort}`], /cannot listen on 127\.0\.0\.1:\d+ \(metrics\): address in use/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--mode', 'fast'], /--mode must be auto, buffers or splice/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--splice-after', '1.5'], /--splice-after must be a whole number of bytes/],
    [['--config', conf('splice.json', JSON.stringify({ ...ok, spliceAfterBytes: 'soon' }))], /spliceAfterBytes must be a number >= 0/],
  ];
  try {
    // Four at a time: each is a node process.
    for (let i = 0; i < cases.length; i += 4) {
      await Promise.all(
        cases.slice(i, i + 4).map(async ([args, re]) => {
          const p = cli(args);
          const code = await p.exited;
          assert.equal(code, 1, `${args.join(' ')}: ${p.stderr()}`);
          // The metrics case also says, before failing, that upstream 127.0.0.1:1 is down; the error is the last line.
          const lines = p.lines().filter((l) => !/upstream .* is down|no upstream is reachable/.test(l));
          assert.equal(lines.length, 1, `${args.join(' ')}: ${p.stderr()}`);
          assert.match(lines[0]!, re, args.join(' '));
        }),
      );
    }
  } finally {
    busy.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: unreachable upstreams are reported in one line each and the proxy keeps running; a client is closed with the reason logged', { skip: bufferSkip }, async () => {
  const dead = await deadPort();
  const p = cli(['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${dead}`]);
  try {
    const port = await p.port;
    assert.deepEqual(p.lines(), [`maio proxy: upstream 127.0.0.1:${dead} is down (connect ECONNREFUSED 127.0.0.1:${dead})`, 'maio proxy: warning: no upstream is reachable right now']);
    const c = await client(port);
    await closed(c);
    await until(() => /connection from/.test(p.stderr()), 'the connection error line');
    assert.match(p.lines()[2]!, new RegExp(`^maio proxy: connection from 127\\.0\\.0\\.1:\\d+: no upstream reachable \\(127\\.0\\.0\\.1:${dead}: ECONNREFUSED\\)$`));
    await stop(p);
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('CLI: /metrics is valid Prometheus text and its counters follow the traffic; /connections; 404 elsewhere', { skip: bufferSkip }, async () => {
  const up = await upstream('u');
  const p = cli(['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up.port}`, '--metrics', '127.0.0.1:0']);
  try {
    const port = await p.port;
    const mport = metricsPort(p);
    const first = await httpGet(mport, '/metrics');
    assert.equal(first.status, 200);
    assert.match(first.type, /^text\/plain; version=0\.0\.4/);
    const m0 = parsePrometheus(first.body);
    const label = `{upstream="127.0.0.1:${up.port}"}`;
    for (const name of ['maio_proxy_connections_accepted_total', 'maio_proxy_connections_completed_total', 'maio_proxy_connection_errors_total', 'maio_proxy_connections_active']) {
      assert.equal(sampleOf(m0, name), 0, name);
    }
    assert.equal(m0.get('maio_proxy_bytes_total')!.type, 'counter');
    assert.equal(m0.get('maio_proxy_connections_active')!.type, 'gauge');
    assert.equal(sampleOf(m0, 'maio_proxy_bytes_total', '{direction="up"}'), 0);
    assert.equal(sampleOf(m0, 'maio_proxy_upstream_up', label), 1);

    // One connection, 1000 bytes up and 2500 down, still open.
    const c = await client(port);
    c.write(Buffer.alloc(1000, 1));
    await until(() => up.busy().length === 1 && up.busy()[0]!.bytesRead === 1000, 'the bytes upstream');
    const U = up.busy()[0]!;
    let down = 0;
    c.on('data', (d: Buffer) => (down += d.length));
    U.write(Buffer.alloc(2500, 2));
    await until(() => down === 2500, 'the bytes down');
    const m1 = parsePrometheus((await httpGet(mport, '/metrics')).body);
    assert.equal(sampleOf(m1, 'maio_proxy_connections_accepted_total'), 1);
    assert.equal(sampleOf(m1, 'maio_proxy_connections_active'), 1);
    assert.equal(sampleOf(m1, 'maio_proxy_bytes_total', '{direction="up"}'), 1000);
    assert.equal(sampleOf(m1, 'maio_proxy_bytes_total', '{direction="down"}'), 2500);
    assert.equal(sampleOf(m1, 'maio_proxy_upstream_connections_active', label), 1);
    assert.equal(sampleOf(m1, 'maio_proxy_upstream_connections_total', label), 1);
    const conns = JSON.parse((await httpGet(mport, '/connections')).body);
    assert.equal(conns.connections.length, 1);
    assert.equal(conns.connections[0].bytesUp, 1000);
    assert.equal(conns.connections[0].bytesDown, 2500);
    assert.equal(conns.connections[0].upstream, `127.0.0.1:${up.port}`);

    // It ends (both sides), and a reset connection counts as an error.
    c.end();
    U.end();
    await closed(c);
    const r = await client(port);
    r.write('x');
    await until(() => up.busy().length === 2, 'the second connection upstream');
    r.resetAndDestroy();
    let m2 = parsePrometheus((await httpGet(mport, '/metrics')).body);
    for (let i = 0; i < 200 && sampleOf(m2, 'maio_proxy_connections_completed_total') < 2; i++) {
      await new Promise((res) => setTimeout(res, 20));
      m2 = parsePrometheus((await httpGet(mport, '/metrics')).body);
    }
    assert.equal(sampleOf(m2, 'maio_proxy_connections_completed_total'), 2);
    assert.equal(sampleOf(m2, 'maio_proxy_connection_errors_total'), 1);
    assert.equal(sampleOf(m2, 'maio_proxy_connections_active'), 0);
    assert.equal(sampleOf(m2, 'maio_proxy_bytes_total', '{direction="up"}'), 1001);
    assert.equal(sampleOf(m2, 'maio_proxy_upstream_connections_active', label), 0);
    assert.equal(sampleOf(m2, 'maio_proxy_upstream_connections_total', label), 2);
    // Counters never go down between scrapes.
    for (const [name, fam] of m2) {
      if (fam.type !== 'counter') continue;
      for (const [labels, v] of fam.samples) assert.ok(v >= (m1.get(name)?.samples.get(labels) ?? 0), `${name}${labels} went down`);
    }
    assert.equal((await httpGet(mport, '/nope')).status, 404);
    await stop(p);
  } finally {
    p.child.kill('SIGKILL');
    await up.close();
  }
});

test('CLI: --splice-after moves a bulk direction to splice; /connections and /metrics say which', { skip: spliceSkip }, async () => {
  const up = await upstream('u');
  const p = cli(['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up.port}`, '--metrics', '127.0.0.1:0', '--splice-after', String(1 << 20)]);
  try {
    const port = await p.port;
    const mport = metricsPort(p);
    const c = await client(port);
    const total = 8 << 20;
    c.write(Buffer.alloc(total, 7));
    await until(() => up.busy().length === 1, 'the connection upstream');
    const U = up.busy()[0]!;
    U.resume(); // the recording upstream does not read on its own
    await until(() => U.bytesRead === total, 'every byte upstream');
    U.write('ok');
    await once(c, 'data');
    const conns = JSON.parse((await httpGet(mport, '/connections')).body);
    assert.equal(conns.connections.length, 1);
    assert.equal(conns.connections[0].bytesUp, total);
    assert.equal(conns.connections[0].modeUp, 'splice', '8 MiB at once crossed the 1 MiB threshold');
    assert.equal(conns.connections[0].modeDown, 'buffers', '2 bytes did not');
    const m = parsePrometheus((await httpGet(mport, '/metrics')).body);
    assert.equal(m.get('maio_proxy_directions_spliced')!.type, 'gauge');
    assert.equal(sampleOf(m, 'maio_proxy_directions_spliced'), 1);
    c.destroy();
    U.destroy();
    await stop(p);
  } finally {
    p.child.kill('SIGKILL');
    await up.close();
  }
});

test('CLI: --connect-timeout bounds connects to a silent upstream (ETIMEDOUT at start and for a client), and the value is the one given', { skip: bufferSkip }, async () => {
  const silent = await silentListener();
  const up = `127.0.0.1:${silent.port}`;
  // Two proxies on the same silent upstream: 300 ms and 60 s. The short one must time out,
  // report, and close a client while the long one is still waiting: with the flag ignored
  // both would use the default (3 s) and report together. No clock is read here.
  const fast = cli(['--listen', '127.0.0.1:0', '--upstream', up, '--connect-timeout', '300']);
  const slow = cli(['--listen', '127.0.0.1:0', '--upstream', up, '--connect-timeout', '60000']);
  try {
    const port = await fast.port;
    assert.deepEqual(fast.lines().slice(0, 2), [`maio proxy: upstream ${up} is down (connect ETIMEDOUT 127.0.0.1:${silent.port})`, 'maio proxy: warning: no upstream is reachable right now']);
    const c = await client(port);
    await closed(c);
    await until(() => /connection from/.test(fast.stderr()), 'the connection error line');
    assert.match(fast.lines()[2]!, new RegExp(`^maio proxy: connection from 127\\.0\\.0\\.1:\\d+: no upstream reachable \\(127\\.0\\.0\\.1:${silent.port}: ETIMEDOUT\\)$`));
    assert.equal(slow.child.exitCode, null, slow.stderr());
    assert.deepEqual(slow.lines(), [], 'the 60 s proxy is still connecting (no report yet)');
    await stop(fast);
  } finally {
    fast.child.kill('SIGKILL');
    slow.child.kill('SIGKILL');
    silent.close();
  }
});
