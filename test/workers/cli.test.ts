/**
 * The commands with --workers: `maio proxy --workers 2` forwards on both
 * workers and its /metrics sums them; `maio sink --workers 2` reports the
 * bytes of all workers; bad --workers / --cpus values fail in one line.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { netSkip } from '../net/helpers';
import { CLI, startCli as start } from '../net/child';
import { connectTo, exchange, payload } from './helpers';

const skip = netSkip;

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  return ((await exited) as [number | null])[0];
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('maio proxy --workers 2: connections forwarded by both workers, /metrics summed over them', { skip }, async () => {
  const upstream = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const up = (upstream.address() as net.AddressInfo).port;
  const proxy = start(['proxy', '--workers', '2', '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up}`, '--metrics', '127.0.0.1:0']);
  const socks: net.Socket[] = [];
  try {
    const port = await proxy.port;
    const metricsPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(proxy.err())![1]);
    assert.match(proxy.err(), /maio proxy: 2 workers/);
    for (let i = 0; i < 24; i++) socks.push(await connectTo(port));
    const echoes = await Promise.all(socks.map((s, i) => exchange(s, payload(i + 1, 2048))));
    echoes.forEach((e, i) => assert.ok(e.equals(payload(i + 1, 2048))));
    const text = await get(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.match(text, /^maio_proxy_connections_accepted_total 24$/m);
    assert.match(text, /^maio_proxy_connections_active 24$/m);
    assert.equal(text.match(/^# TYPE maio_proxy_connections_accepted_total counter$/gm)?.length, 1);
    const conns = JSON.parse(await get(`http://127.0.0.1:${metricsPort}/connections`)) as { workers: { index: number; accepted: number }[] };
    assert.equal(conns.workers.length, 2);
    assert.ok(conns.workers.every((w) => w.accepted > 0), `per worker: ${conns.workers.map((w) => w.accepted)}`);
    for (const s of socks) s.end();
    assert.equal(await stop(proxy.child), 0, proxy.err());
    assert.doesNotMatch(proxy.err(), /Warning:/, "no process warnings (a pipe fd closed through fs inside a worker warns)");
  } finally {
    for (const s of socks) s.destroy();
    proxy.child.kill('SIGKILL');
    upstream.close();
  }
});

test('maio sink --workers 2 reports the bytes every worker received', { skip }, async () => {
  const sink = start(['sink', '--workers', '2', '--port', '0']);
  try {
    const port = await sink.port;
    let sent = 0;
    for (let i = 0; i < 16; i++) {
      const s = await connectTo(port);
      const closed = once(s, 'close');
      s.end(payload(i + 1, 10000));
      sent += 10000;
      await closed;
    }
    // The workers count what they read; ask once every byte is in (the sockets closed after the FIN).
    assert.equal(await stop(sink.child), 0, sink.err());
    assert.equal(Number(/maio sink: (\d+) bytes/.exec(sink.err())?.[1]), sent, sink.err());
  } finally {
    sink.child.kill('SIGKILL');
  }
});

test('bad --workers and --cpus values fail in one line with exit 1', () => {
  for (const args of [['echo', '--workers', '0'], ['echo', '--workers', 'two'], ['sink', '--workers'], ['echo', '--cpus', '0'], ['echo', '--workers', '2', '--cpus', 'x'], ['proxy', '--workers', '-1', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1']]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--workers|--cpus/);
  }
});
