/**
 * The PROXY protocol through the proxy, real sockets: towards upstreams (the
 * CLI with --send-proxy v2; an upstream that parses the header echoes the
 * client address it saw), and from a load balancer in front (--accept-proxy:
 * v1 and v2 headers name the client the upstream then sees; bytes after the
 * header in the same segment are kept; a malformed or late header closes the
 * connection and is counted).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Proxy } from '../../src/paths/proxy';
import { encodeV1, encodeV2 } from '../../src/gateway/proxy-protocol';
import { until } from '../paths/helpers';
import { bufferSkip, spliceSkip } from '../paths/maio-helpers';
import { cli, httpGet, metricsPort, parsePrometheus, sampleOf } from '../paths/proxy-helpers';
import { headerUpstream, textClient } from './helpers';

const local = (port: number) => ({ host: '127.0.0.1', port });

test('CLI --send-proxy v2: the upstream reads the client address from the header, then the bytes follow unchanged', { skip: bufferSkip }, async () => {
  const up = await headerUpstream();
  const p = cli(['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up.port}`, '--send-proxy', 'v2', '--metrics', '127.0.0.1:0']);
  try {
    const port = await p.port;
    const c = await textClient(port);
    c.s.write('hello through v2');
    const me = `saw 127.0.0.1 ${c.s.localPort} -> 127.0.0.1 ${port}\n`;
    await until(() => c.text().length >= me.length + 16, 'the header line and the echo');
    assert.equal(c.text(), `${me}hello through v2`);
    const proxied = up.headers.filter((h) => h.command === 'proxy');
    assert.equal(proxied.length, 1);
    assert.equal(proxied[0]!.version, 2, 'a v2 header');
    // The start-up health check sent a LOCAL header (no addresses): a well-formed check for the backend.
    assert.ok(up.headers.some((h) => h.command === 'local' && h.addresses === null), 'the health check carried a LOCAL header');
    c.s.destroy();
    const m = parsePrometheus((await httpGet(metricsPort(p), '/metrics')).body);
    assert.equal(sampleOf(m, 'maio_proxy_proxy_headers_sent_total'), 1);
  } finally {
    p.child.kill('SIGKILL');
    await up.close();
  }
});

test('accept v1 and v2 from the front, send v1 on: the upstream sees the client the header named; early bytes kept', { skip: bufferSkip }, async () => {
  const up = await headerUpstream();
  const proxy = new Proxy({ listen: local(0), upstreams: [local(up.port)], acceptProxy: true, sendProxy: 'v1', mode: 'buffers' });
  try {
    const addr = await proxy.listen();
    // v2 from the load balancer, the client's first bytes in the same write.
    const a = await textClient(addr.port);
    a.s.write(Buffer.concat([encodeV2({ family: 'IPv4', sourceAddress: '203.0.113.7', sourcePort: 4242, destinationAddress: '198.51.100.1', destinationPort: 443 }), Buffer.from('GET /a')]));
    await until(() => a.text().includes('GET /a'), 'the v2 client echoed');
    assert.equal(a.text(), 'saw 203.0.113.7 4242 -> 198.51.100.1 443\nGET /a');
    // v1 in two pieces (the header split mid-address), IPv6 client.
    const b = await textClient(addr.port);
    const line = encodeV1({ family: 'IPv6', sourceAddress: '2001:db8::7', sourcePort: 5353, destinationAddress: '2001:db8::1', destinationPort: 80 });
    b.s.write(line.subarray(0, 17));
    await new Promise((r) => setTimeout(r, 30));
    b.s.write(Buffer.concat([line.subarray(17), Buffer.from('hi')]));
    await until(() => b.text().endsWith('hi'), 'the v1 client echoed');
    assert.equal(b.text(), 'saw 2001:db8::7 5353 -> 2001:db8::1 80\nhi');
    assert.deepEqual(
      up.headers.map((h) => h.version),
      [1, 1],
      'what goes upstream is v1 whatever came in',
    );
    // A LOCAL header (the balancer's own health check): the connection's own address is the client.
    const c = await textClient(addr.port);
    c.s.write(Buffer.concat([encodeV2(null), Buffer.from('x')]));
    await until(() => c.text().endsWith('x'), 'the LOCAL client echoed');
    assert.equal(c.text(), `saw 127.0.0.1 ${c.s.localPort} -> 127.0.0.1 ${addr.port}\nx`);
    const conns = proxy.connectionStats().map((s) => s.client);
    assert.ok(conns.includes('203.0.113.7:4242') && conns.includes('[2001:db8::7]:5353'), `stats name the real clients: ${conns.join(', ')}`);
    assert.deepEqual(proxy.stats().gateway.proxyHeaders, { sent: 3, accepted: 3, malformed: 0, timedOut: 0 });
    for (const x of [a, b, c]) x.s.destroy();
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('accept-proxy: a malformed header, one too long, an early end and a late one close the connection; each is counted', { skip: bufferSkip }, async () => {
  const up = await headerUpstream();
  const proxy = new Proxy({ listen: local(0), upstreams: [local(up.port)], acceptProxy: true, acceptProxyTimeout: 300, sendProxy: 'v2' });
  const refused: string[] = [];
  proxy.on('refused', (why, who) => refused.push(`${why} ${who}`));
  try {
    const addr = await proxy.listen();
    const closedAfter = async (bytes: Buffer | string | null, end = false) => {
      const c = await textClient(addr.port);
      if (bytes !== null) c.s.write(bytes);
      if (end) c.s.end();
      await c.closed;
      c.s.destroy();
      return c.text();
    };
    assert.equal(await closedAfter('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), '', 'no header: closed, nothing forwarded');
    assert.equal(await closedAfter('PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n'), '');
    assert.equal(await closedAfter(`PROXY TCP4 ${'1'.repeat(120)}`), '', 'longer than 107 bytes without CRLF');
    const big = Buffer.concat([encodeV2(null).subarray(0, 14), Buffer.from([0x10, 0x00])]);
    assert.equal(await closedAfter(big), '', 'a v2 length over the limit is refused before its bytes come');
    assert.equal(await closedAfter('PROXY TCP4 1.2.3.4', true), '', 'the client ended mid-header');
    const t0 = performance.now();
    assert.equal(await closedAfter('PROXY '), '', 'half a header, then nothing: the timeout');
    assert.ok(performance.now() - t0 >= 290, 'closed by the 300 ms timeout, not before');
    await until(() => proxy.connections === 0, 'every refused connection gone');
    assert.equal(up.conns.length, 0, 'no upstream connection was made for any of them');
    const g = proxy.stats().gateway.proxyHeaders;
    assert.deepEqual(g, { sent: 0, accepted: 0, malformed: 5, timedOut: 1 });
    assert.equal(refused.length, 6);
    assert.match(refused[1]!, /^proxyHeader 127\.0\.0\.1:\d+ \(v1 header: "99999" is not a port/);
    const m = parsePrometheus(proxy.metrics());
    assert.equal(sampleOf(m, 'maio_proxy_proxy_headers_received_total', '{result="malformed"}'), 5);
    assert.equal(sampleOf(m, 'maio_proxy_proxy_headers_received_total', '{result="timeout"}'), 1);
    assert.equal(sampleOf(m, 'maio_proxy_connections_accepted_total'), 0);
    // A good one still goes through.
    const ok = await textClient(addr.port);
    ok.s.write(Buffer.concat([encodeV1({ family: 'IPv4', sourceAddress: '10.9.8.7', sourcePort: 1000, destinationAddress: '10.0.0.1', destinationPort: 443 }), Buffer.from('fine')]));
    await until(() => ok.text().endsWith('fine'), 'the good client echoed');
    assert.equal(ok.text(), 'saw 10.9.8.7 1000 -> 10.0.0.1 443\nfine');
    ok.s.destroy();
  } finally {
    await proxy.close();
    await up.close();
  }
});

test('accept and send with mode splice: the header bytes go first, the early bytes and the stream follow byte-exact', { skip: spliceSkip }, async () => {
  const up = await headerUpstream();
  const proxy = new Proxy({ listen: local(0), upstreams: [local(up.port)], acceptProxy: true, sendProxy: 'v2', mode: 'splice' });
  try {
    const addr = await proxy.listen();
    const c = await textClient(addr.port);
    const body = randomBytes(2 << 20).toString('latin1');
    c.s.write(Buffer.concat([encodeV1({ family: 'IPv4', sourceAddress: '192.0.2.5', sourcePort: 7, destinationAddress: '192.0.2.1', destinationPort: 80 }), Buffer.from('early|')]));
    c.s.write(Buffer.from(body, 'latin1'));
    const want = `saw 192.0.2.5 7 -> 192.0.2.1 80\nearly|${body}`;
    await until(() => c.text().length >= want.length, 'the whole echo', 40000);
    assert.ok(c.text() === want, 'byte-exact through splice');
    assert.equal(proxy.connectionStats()[0]!.modeUp, 'splice');
    c.s.destroy();
  } finally {
    await proxy.close();
    await up.close();
  }
});
