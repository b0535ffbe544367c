/**
 * Upstreams by DNS name against a local DNS server (test/gateway/helpers.ts,
 * node:dgram on 127.0.0.1): A records with a 1 s TTL, the answer changed,
 * new connections reach the new address once the TTL has run out while the
 * open one stays; a failed resolution keeps the last good set and is counted;
 * SRV targets with their ports and weights; the minimum interval bounds how
 * often a TTL of 0 is asked again.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Proxy } from '../../src/paths/proxy';
import { until } from '../paths/helpers';
import { bufferSkip } from '../paths/maio-helpers';
import { parsePrometheus, sampleOf } from '../paths/proxy-helpers';
import { dnsServer, echoUpstream, echoes, type EchoUpstream } from './helpers';

const local = (port: number) => ({ host: '127.0.0.1', port });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rawClient(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
}

/** Two echo upstreams on one port, at 127.0.0.2 and 127.0.0.3 (A records carry no port). */
async function twoHosts(): Promise<[EchoUpstream, EchoUpstream]> {
  for (let i = 0; ; i++) {
    const a = await echoUpstream('127.0.0.2');
    try {
      return [a, await echoUpstream('127.0.0.3', a.port)];
    } catch (err) {
      await a.close();
      if (i > 5) throw err;
    }
  }
}

test('dns: the A answer changes; after its TTL new connections reach the new address, the open one stays; failures keep the set', { skip: bufferSkip }, async () => {
  const dns = await dnsServer();
  const [X, Y] = await twoHosts();
  dns.table.set('svc.test', { a: ['127.0.0.2'], ttl: 1 });
  const proxy = new Proxy({ listen: local(0), upstreams: [{ dns: 'svc.test', port: X.port }], dnsServers: [dns.address], dnsMinInterval: 0.1, dnsTimeout: 500 });
  const changes: string[][] = [];
  proxy.on('resolved', (_src, ups) => changes.push(ups.map((u) => u.host)));
  const sockets: net.Socket[] = [];
  try {
    const addr = await proxy.listen();
    assert.deepEqual(
      proxy.upstreams.map((u) => [u.host, u.port, u.source]),
      [['127.0.0.2', X.port, `dns:svc.test:${X.port}`]],
      'listen() waited for the first answer',
    );
    const first = await rawClient(addr.port);
    sockets.push(first);
    assert.ok(await echoes(first, Buffer.from('to X')));
    assert.equal(X.conns.length, 1);

    dns.table.set('svc.test', { a: ['127.0.0.3'], aaaa: [], ttl: 1 });
    await until(() => proxy.upstreams.some((u) => u.host === '127.0.0.3'), 'the new address', 40000);
    // The TTL is honoured: the name was not asked again before its 1 s ran out (minus 50 ms of timer rounding).
    const asked = dns.times.filter((_, i) => dns.queries[i] === 'svc.test A');
    assert.ok(asked.length >= 2);
    for (let i = 1; i < asked.length; i++) assert.ok(asked[i]! - asked[i - 1]! >= 950, `asked again after ${(asked[i]! - asked[i - 1]!).toFixed(0)} ms, TTL 1 s`);
    assert.deepEqual(changes.at(-1), ['127.0.0.3']);
    const second = await rawClient(addr.port);
    sockets.push(second);
    assert.ok(await echoes(second, Buffer.from('to Y')));
    assert.equal(Y.conns.length, 1, 'the new connection reached the new address');
    assert.ok(await echoes(first, Buffer.from('X still')), 'the open connection kept its upstream');
    assert.equal(X.conns.length, 1);

    // SERVFAIL: counted, the last good set stays.
    const before = proxy.stats().gateway.dns[0]!;
    dns.table.set('svc.test', { a: ['127.0.0.2'], ttl: 1, fail: true });
    await until(() => proxy.stats().gateway.dns[0]!.failures > before.failures, 'a failed resolution', 40000);
    assert.deepEqual(
      proxy.upstreams.map((u) => u.host),
      ['127.0.0.3'],
    );
    const third = await rawClient(addr.port);
    sockets.push(third);
    assert.ok(await echoes(third, Buffer.from('Y again')));
    assert.equal(Y.conns.length, 2);
    // NXDOMAIN (the name gone) is a failure too, not "no upstreams".
    dns.table.delete('svc.test');
    const f = proxy.stats().gateway.dns[0]!.failures;
    await until(() => proxy.stats().gateway.dns[0]!.failures > f, 'NXDOMAIN counted', 40000);
    assert.equal(proxy.upstreams.length, 1);
    const m = parsePrometheus(proxy.metrics());
    const src = `source="dns:svc.test:${X.port}"`;
    assert.ok(sampleOf(m, 'maio_proxy_dns_resolutions_total', `{${src},result="ok"}`) >= 2);
    assert.ok(sampleOf(m, 'maio_proxy_dns_resolutions_total', `{${src},result="failed"}`) >= 2);
    assert.equal(sampleOf(m, 'maio_proxy_dns_upstreams', `{${src}}`), 1);
    assert.equal(sampleOf(m, 'maio_proxy_upstream_up', `{upstream="127.0.0.3:${X.port}",${src}}`), 1);
  } finally {
    sockets.forEach((s) => s.destroy());
    await proxy.close();
    await Promise.all([X.close(), Y.close(), dns.close()]);
  }
});

test('srv: targets with their own ports and weights; lower priority only when the better one is gone', { skip: bufferSkip }, async () => {
  const dns = await dnsServer();
  const P = await echoUpstream();
  const Q = await echoUpstream();
  const R = await echoUpstream();
  dns.table.set('_echo._tcp.svc.test', {
    ttl: 1,
    srv: [
      { priority: 10, weight: 3, port: P.port, target: 'p.svc.test' },
      { priority: 10, weight: 1, port: Q.port, target: 'q.svc.test' },
      { priority: 20, weight: 1, port: R.port, target: 'r.svc.test' },
    ],
  });
  for (const n of ['p', 'q', 'r']) dns.table.set(`${n}.svc.test`, { a: ['127.0.0.1'], ttl: 1 });
  const proxy = new Proxy({ listen: local(0), upstreams: [{ srv: '_echo._tcp.svc.test' }], dnsServers: [dns.address], dnsMinInterval: 0.1 });
  const sockets: net.Socket[] = [];
  try {
    const addr = await proxy.listen();
    assert.deepEqual(proxy.upstreams.map((u) => [u.port, u.weight, u.priority]).sort((a, b) => a[2]! - b[2]! || b[1]! - a[1]!), [
      [P.port, 3, 10],
      [Q.port, 1, 10],
      [R.port, 1, 20],
    ]);
    for (let i = 0; i < 8; i++) {
      const s = await rawClient(addr.port);
      sockets.push(s);
      assert.ok(await echoes(s, Buffer.from(`c${i}`)));
    }
    // Smooth weighted round-robin over the priority-10 pair: exactly 3:1.
    assert.deepEqual([P.conns.length, Q.conns.length, R.conns.length], [6, 2, 0]);
    // The priority-10 records disappear: the priority-20 target takes over.
    dns.table.set('_echo._tcp.svc.test', { ttl: 1, srv: [{ priority: 20, weight: 1, port: R.port, target: 'r.svc.test' }] });
    await until(() => proxy.upstreams.length === 1, 'the new SRV answer', 40000);
    const s = await rawClient(addr.port);
    sockets.push(s);
    assert.ok(await echoes(s, Buffer.from('to R')));
    assert.equal(R.conns.length, 1);
  } finally {
    sockets.forEach((x) => x.destroy());
    await proxy.close();
    await Promise.all([P.close(), Q.close(), R.close(), dns.close()]);
  }
});

test('dns: a TTL of 0 is asked again no more often than the minimum interval', { skip: bufferSkip }, async () => {
  const dns = await dnsServer();
  dns.table.set('zero.test', { a: ['127.0.0.1'], ttl: 0 });
  const proxy = new Proxy({ listen: local(0), upstreams: [{ dns: 'zero.test', port: 9 }], dnsServers: [dns.address], dnsMinInterval: 0.3 });
  try {
    const t0 = performance.now();
    await proxy.listen();
    await sleep(1000);
    const elapsed = performance.now() - t0;
    const rounds = dns.queries.filter((q) => q === 'zero.test A').length;
    // At most one round per 300 ms, plus the first one (one-sided: a slow machine asks less often).
    assert.ok(rounds <= Math.floor(elapsed / 300) + 1, `${rounds} A questions in ${elapsed.toFixed(0)} ms`);
    assert.ok(rounds >= 2, `asked again after the TTL of 0 (${rounds} rounds)`);
  } finally {
    await proxy.close();
    await dns.close();
  }
});
