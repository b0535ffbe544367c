/**
 * Admission limits of the proxy, real sockets: open connections per client
 * address, the overall connection rate and the per-client rate (token
 * buckets). A refused client is closed at once, before any upstream connect,
 * and counted by the limit that refused it. Rates are kept low (a token per
 * 10-20 s) so that a slow machine cannot refill a bucket during the test.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Proxy } from '../../src/paths/proxy';
import { encodeV1 } from '../../src/gateway/proxy-protocol';
import { ConnectionLimiter } from '../../src/gateway/limits';
import { until } from '../paths/helpers';
import { bufferSkip } from '../paths/maio-helpers';
import { parsePrometheus, sampleOf } from '../paths/proxy-helpers';
import { echoUpstream, echoes, textClient } from './helpers';

const local = (port: number) => ({ host: '127.0.0.1', port });

test('per-client limit: the third open connection from one address is closed at once; one closing makes room', { skip: bufferSkip }, async () => {
  const up = await echoUpstream();
  const proxy = new Proxy({ listen: local(0), upstreams: [local(up.port)], maxConnectionsPerClient: 2 });
  try {
    const addr = await proxy.listen();
    const a = await textClient(addr.port);
    const b = await textClient(addr.port);
    assert.ok(await echoes(a.s, Buffer.from('a1')));
    assert.ok(await echoes(b.s, Buffer.from('b1')));
    const c = await textClient(addr.port);
    c.s.write('refused');
    await c.closed;
    assert.equal(up.conns.length, 2, 'no upstream connection for the refused client');
    assert.equal(proxy.stats().gateway.refused.perClient, 1);
    a.s.destroy();
    await until(() => proxy.connections === 1, 'the first connection gone');
    const d = await textClient(addr.port);
    assert.ok(await echoes(d.s, Buffer.from('d1')), 'accepted again');
    // Another client address (a different loopback source) has its own count.
    const e = await new Promise<net.Socket>((resolve) => {
      const s: net.Socket = net.connect({ port: addr.port, host: '127.0.0.1', localAddress: '127.0.0.9' }, () => resolve(s));
    });
    assert.ok(await echoes(e, Buffer.from('e1')), 'another address is not limited by the first');
    const m = parsePrometheus(proxy.metrics());
    assert.equal(sampleOf(m, 'maio_proxy_limit_refusals_total', '{limit="per_client"}'), 1);
    assert.equal(sampleOf(m, 'maio_proxy_limit_clients_tracked', '{state="open"}'), 2);
    for (const s of [b.s, d.s, e]) s.destroy();
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('rate limits: overall burst then refusals; per client, counted on the address a PROXY header names', { skip: bufferSkip }, async () => {
  const up = await echoUpstream();
  // Overall: 3 at once, then one per 20 s.
  const p1 = new Proxy({ listen: local(0), upstreams: [local(up.port)], rateLimit: 0.05, rateBurst: 3 });
  try {
    const addr = await p1.listen();
    const ok = [];
    for (let i = 0; i < 3; i++) {
      const c = await textClient(addr.port);
      assert.ok(await echoes(c.s, Buffer.from(`c${i}`)), `connection ${i} within the burst`);
      ok.push(c);
    }
    const over = await textClient(addr.port);
    await over.closed;
    assert.equal(p1.stats().gateway.refused.rate, 1);
    assert.equal(p1.stats().rejected, 1);
    ok.forEach((c) => c.s.destroy());
  } finally {
    await p1.close();
  }

  // Per client, behind a load balancer: the client is who the header says.
  const p2 = new Proxy({ listen: local(0), upstreams: [local(up.port)], acceptProxy: true, clientRateLimit: 0.1, clientRateBurst: 2 });
  try {
    const addr = await p2.listen();
    const as = (ip: string, port: number) => encodeV1({ family: 'IPv4', sourceAddress: ip, sourcePort: port, destinationAddress: '10.0.0.1', destinationPort: 443 });
    const open = async (ip: string, port: number) => {
      const c = await textClient(addr.port);
      c.s.write(Buffer.concat([as(ip, port), Buffer.from('ping')]));
      // Either the echo comes back or the proxy closes the connection.
      await new Promise<void>((resolve) => {
        const check = () => {
          if (c.text() === 'ping') resolve();
        };
        c.s.on('data', check);
        void c.closed.then(() => resolve());
      });
      return c;
    };
    const x1 = await open('198.51.100.1', 1);
    const x2 = await open('198.51.100.1', 2);
    assert.equal(x1.text() + x2.text(), 'pingping', 'two from 198.51.100.1 within its burst');
    const x3 = await open('198.51.100.1', 3);
    await x3.closed;
    assert.equal(x3.text(), '', 'the third from 198.51.100.1 is refused');
    const y1 = await open('198.51.100.2', 1);
    assert.equal(y1.text(), 'ping', 'another client address has its own bucket');
    const g = p2.stats().gateway;
    assert.equal(g.refused.clientRate, 1);
    assert.equal(g.clientsTracked.buckets, 2);
    const m = parsePrometheus(p2.metrics());
    assert.equal(sampleOf(m, 'maio_proxy_limit_refusals_total', '{limit="client_rate"}'), 1);
    assert.equal(sampleOf(m, 'maio_proxy_limit_refusals_total', '{limit="rate"}'), 0);
    for (const c of [x1, x2, y1]) c.s.destroy();
  } finally {
    await p2.close();
    await up.close();
  }
});

test('ConnectionLimiter: a bucket refills at its rate up to its burst; settings change in place', async () => {
  const l = new ConnectionLimiter({ maxConnectionsPerClient: 0, rateLimit: 0, rateBurst: 1, clientRateLimit: 20, clientRateBurst: 1 });
  assert.equal(l.admitClient('a'), null);
  assert.equal(l.admitClient('a'), 'clientRate');
  // 20 per second: one token back after 50 ms (waited a little more: timers fire late, never early).
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(l.admitClient('a'), null);
  l.configure({ maxConnectionsPerClient: 2, rateLimit: 0, rateBurst: 1, clientRateLimit: 0, clientRateBurst: 1 });
  assert.equal(l.admitClient('a'), 'perClient', 'the two open from before count against the new per-client limit');
  l.release('a');
  assert.equal(l.admitClient('a'), null);
  assert.deepEqual(l.refused, { rate: 0, perClient: 1, clientRate: 1 });
  l.close();
});
