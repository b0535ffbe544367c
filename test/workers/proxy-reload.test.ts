/**
 * SIGHUP with `maio proxy --workers 2 --config FILE`: the main thread re-reads
 * the file, checks it once and sends it to every worker. An open connection
 * keeps echoing byte-exact on its old upstream; new connections, on both
 * workers, reach the new upstream; a bad file is refused with one stderr line
 * and the old configuration stays; /metrics sums the reload counts. A worker
 * that replaces a crashed one starts with the configuration in force.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { MaioWorker } from '../../src/workers/group';
import { bounded, netSkip } from '../net/helpers';
import { tmpDir, until } from '../paths/helpers';
import { cli, httpGet, metricsPort, parsePrometheus, sampleOf } from '../paths/proxy-helpers';
import { echoUpstream, echoes } from '../gateway/helpers';
import { proxyGroup } from './helpers';

const skip = netSkip;

async function rawClient(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
}

interface WorkerStatsLike {
  index: number;
  id: number;
  accepted: number;
  app: { gateway: { reloads: number } };
}

test('maio proxy --workers 2: SIGHUP reaches every worker; open connections keep their upstream; a bad config is refused once', { skip }, async () => {
  const A = await echoUpstream();
  const B = await echoUpstream();
  const dir = tmpDir();
  const file = path.join(dir, 'proxy.json');
  const config = (port: number) => JSON.stringify({ listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${port}`], metrics: '127.0.0.1:0', mode: 'buffers' });
  fs.writeFileSync(file, config(A.port));
  const p = cli(['--workers', '2', '--config', file]);
  const sockets: net.Socket[] = [];
  const reloadedLines = () => p.lines().filter((l) => l.includes('reload'));
  try {
    const port = await p.port;
    const old = await rawClient(port);
    sockets.push(old);
    assert.ok(await echoes(old, randomBytes(64 * 1024)), 'the first connection echoes');
    assert.equal(A.conns.length, 1);

    fs.writeFileSync(file, config(B.port));
    p.child.kill('SIGHUP');
    await until(() => reloadedLines().length === 1, 'the reload line');
    assert.match(reloadedLines()[0]!, /^maio proxy: reloaded in 2\/2 worker\(s\): worker \d ok .*; worker \d ok /, p.stderr());
    // The open connection: still A, byte-exact.
    assert.ok(await echoes(old, randomBytes(256 * 1024)), 'the open connection echoes across the reload');
    assert.equal(B.conns.length, 0);
    // New connections: all to B, over both workers.
    for (let i = 0; i < 16; i++) {
      const s = await rawClient(port);
      sockets.push(s);
      assert.ok(await echoes(s, randomBytes(4096)), `new connection ${i} echoes`);
    }
    assert.equal(B.conns.length, 16);
    assert.equal(A.conns.length, 1);
    const per = JSON.parse((await httpGet(metricsPort(p), '/connections')).body) as { workers: WorkerStatsLike[] };
    assert.equal(per.workers.length, 2);
    for (const w of per.workers) assert.ok(w.accepted >= 1, `worker ${w.index} took new connections: ${JSON.stringify(per.workers.map((x) => x.accepted))}`);

    // A bad file: one line, the old configuration stays.
    fs.writeFileSync(file, '{ not json');
    p.child.kill('SIGHUP');
    await until(() => reloadedLines().length === 2, 'the refusal line');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reloadedLines().length, 2, p.stderr());
    assert.match(reloadedLines()[1]!, /^maio proxy: reload refused: config .* is not valid JSON/);
    // A new listen address needs a restart: refused by the main thread too, in one line.
    fs.writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:1', upstreams: [`127.0.0.1:${A.port}`], metrics: '127.0.0.1:0', mode: 'buffers' }));
    p.child.kill('SIGHUP');
    await until(() => reloadedLines().length === 3, 'the second refusal line');
    assert.match(reloadedLines()[2]!, /^maio proxy: reload refused: listen cannot change on reload/);
    const after = await rawClient(port);
    sockets.push(after);
    assert.ok(await echoes(after, randomBytes(4096)));
    assert.equal(B.conns.length, 17, 'still B after the refused reload');
    assert.ok(await echoes(old, randomBytes(4096)), 'the first connection still echoes');

    const m = parsePrometheus((await httpGet(metricsPort(p), '/metrics')).body);
    assert.equal(sampleOf(m, 'maio_proxy_reloads_total', '{result="ok"}'), 2, 'one taken reload in each of 2 workers, summed');
    assert.equal(sampleOf(m, 'maio_proxy_reloads_total', '{result="refused"}'), 2, 'each refused once, by the main thread');
  } finally {
    for (const s of sockets) s.destroy();
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.stderr());
    await A.close();
    await B.close();
  }
});

test('a worker that replaces a crashed one starts with the configuration in force, not the first one', { skip }, async () => {
  const A = await echoUpstream();
  const B = await echoUpstream();
  const { group, reloads } = proxyGroup(A.port);
  const sockets: net.Socket[] = [];
  try {
    await group.start();
    await reloads.reload(() => ({ listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: B.port }], mode: 'buffers' }));
    const victim = group.workers[0]!;
    const replaced = new Promise<MaioWorker>((resolve) => group.on('ready', (w) => w.index === victim.index && w !== victim && resolve(w)));
    // Not a stop: the group sees an unexpected exit and starts a replacement.
    await victim.thread.terminate();
    const fresh = await bounded(replaced, 'the replacement', 10_000);
    for (let i = 0; i < 16; i++) {
      const s = await rawClient(group.port);
      sockets.push(s);
      assert.ok(await echoes(s, randomBytes(4096)), `connection ${i} echoes`);
    }
    assert.equal(A.conns.length, 0, 'no new connection reached the first configuration');
    assert.equal(B.conns.length, 16);
    const st = await group.stats();
    const mine = st.workers.find((w) => w.id === fresh.id) as unknown as WorkerStatsLike;
    assert.ok(mine, 'the replacement answers');
    assert.ok(mine.accepted >= 1, 'the replacement took connections');
    assert.equal(mine.app.gateway.reloads, 0, 'it started with the new configuration (no reload needed)');
  } finally {
    for (const s of sockets) s.destroy();
    await group.stop({ timeout: 5000 });
    await A.close();
    await B.close();
  }
});
