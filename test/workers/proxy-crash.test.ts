/**
 * `maio proxy --workers 2`: a worker thread that dies leaves both ends of its
 * connections open (fds belong to the process). The group resets what it
 * owned: the clients it accepted and the upstream connections it made, so
 * the upstream server sees each of them end at once, not when some timeout
 * notices. The other worker's connections echo on.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { WorkerGroup, type MaioWorker, type WorkerExitInfo } from '../../src/workers/group';
import { bounded, netSkip } from '../net/helpers';
import { echoUpstream, echoes } from '../gateway/helpers';
import { ending, proxyGroup } from './helpers';

/** Which worker accepted since `before` (worker id -> accepted count): the one whose count went up. */
async function newlyAccepted(group: WorkerGroup, before: Map<number, number>): Promise<number> {
  const st = await group.stats();
  let who = -1;
  for (const w of st.workers) {
    if (w.accepted > (before.get(w.id) ?? 0)) who = w.id;
    before.set(w.id, w.accepted);
  }
  assert.notEqual(who, -1, 'a worker accepted the connection');
  return who;
}

const skip = netSkip;

test('a dead proxy worker: its clients and its upstream connections are reset; the other worker proxies on', { skip }, async () => {
  const up = await echoUpstream();
  // Each upstream connection's end (null: FIN, else the error, ECONNRESET for a reset).
  const upEnds = new Map<net.Socket, Promise<NodeJS.ErrnoException | null>>();
  const seen = up.conns.length;
  const { group, reloads } = proxyGroup(up.port);
  const clients: { s: net.Socket; worker: number; upstream: net.Socket }[] = [];
  const accepted = new Map<number, number>();
  try {
    await group.start();
    for (let i = 0; i < 24; i++) {
      const s = net.connect({ port: group.port, host: '127.0.0.1' });
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      assert.ok(await echoes(s, randomBytes(1024)), `client ${i} echoes through the proxy`);
      // The upstream connection this client made is the newest one the upstream accepted.
      assert.equal(up.conns.length, seen + i + 1);
      const upstream = up.conns[up.conns.length - 1]!;
      upEnds.set(upstream, ending(upstream));
      clients.push({ s, worker: await newlyAccepted(group, accepted), upstream });
    }
    const victim = group.workers[0]!;
    const mine = clients.filter((c) => c.worker === victim.id);
    const others = clients.filter((c) => c.worker !== victim.id);
    assert.ok(mine.length > 0 && others.length > 0, `spread: ${mine.length} / ${others.length}`);
    const clientEnds = mine.map((c) => ending(c.s));
    const exited = new Promise<WorkerExitInfo>((resolve) =>
      group.on('exit', (w: MaioWorker, _code: number, info: WorkerExitInfo) => w === victim && resolve(info)),
    );
    // Not a stop: the thread ends at once, its JS never runs again.
    await victim.thread.terminate();
    const info = await bounded(exited, 'the exit', 10_000);
    // Its listener, its clients and their upstream connections.
    assert.equal(info.socketsReset, 1 + 2 * mine.length);
    for (const err of await bounded(Promise.all(clientEnds), 'the clients reset', 5000)) assert.equal(err?.code, 'ECONNRESET');
    const upstreamEnds = await bounded(Promise.all(mine.map((c) => upEnds.get(c.upstream)!)), 'the upstream connections end', 5000);
    for (const err of upstreamEnds) assert.equal(err?.code, 'ECONNRESET');
    // The other worker's clients and their upstream connections go on.
    for (const c of others) {
      assert.ok(!c.upstream.destroyed, 'the live worker\'s upstream connection is open');
      assert.ok(await echoes(c.s, randomBytes(4096)), 'the live worker still proxies');
    }
  } finally {
    for (const c of clients) c.s.destroy();
    await group.stop({ timeout: 5000 });
    await up.close();
  }
});
