/**
 * maio proxy's gateway flags as a command: a config file with dns upstreams,
 * PROXY protocol and limits means what the flags mean; each bad gateway value
 * is one line on stderr and exit code 1.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir, until } from '../paths/helpers';
import { bufferSkip } from '../paths/maio-helpers';
import { cli, httpGet, metricsPort, parsePrometheus, sampleOf } from '../paths/proxy-helpers';
import { dnsServer, headerUpstream, textClient } from './helpers';

test('CLI: a config with a dns upstream, sendProxy per upstream and limits; the metrics show them', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  const dns = await dnsServer();
  const up = await headerUpstream();
  dns.table.set('backend.test', { a: ['127.0.0.1'], ttl: 1 });
  const file = path.join(dir, 'gw.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      listen: '127.0.0.1:0',
      upstreams: [{ address: `dns:backend.test:${up.port}`, sendProxy: 'v1' }],
      dnsServers: [dns.address],
      dnsMinInterval: 0.2,
      maxConnectionsPerClient: 1,
      metrics: '127.0.0.1:0',
    }),
  );
  const p = cli(['--config', file]);
  try {
    const port = await p.port;
    const c = await textClient(port);
    c.s.write('x');
    await until(() => c.text().endsWith('x'), 'echo');
    assert.equal(c.text(), `saw 127.0.0.1 ${c.s.localPort} -> 127.0.0.1 ${port}\nx`);
    assert.equal(up.headers[0]!.version, 1);
    const second = await textClient(port);
    await second.closed;
    const m = parsePrometheus((await httpGet(metricsPort(p), '/metrics')).body);
    assert.equal(sampleOf(m, 'maio_proxy_limit_refusals_total', '{limit="per_client"}'), 1);
    assert.equal(sampleOf(m, 'maio_proxy_dns_upstreams', `{source="dns:backend.test:${up.port}"}`), 1);
    assert.equal(sampleOf(m, 'maio_proxy_proxy_headers_sent_total'), 1);
    c.s.destroy();
  } finally {
    p.child.kill('SIGKILL');
    await up.close();
    await dns.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: bad gateway values are one line on stderr and exit 1', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  const conf = (name: string, o: unknown) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, JSON.stringify(o));
    return f;
  };
  const base = ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1'];
  const ok = { listen: '127.0.0.1:0', upstreams: ['127.0.0.1:1'] };
  const cases: [string[], RegExp][] = [
    [[...base, '--send-proxy', 'v3'], /--send-proxy must be v1 or v2, got "v3"/],
    [[...base, '--rate-limit', 'fast'], /--rate-limit must be a number >= 0/],
    [[...base, '--client-rate-burst', '1.5'], /--client-rate-burst must be a whole number/],
    [[...base, '--accept-proxy=yes'], /--accept-proxy takes no value/],
    [[...base, '--dns-server', 'resolver.local'], /dnsServers must be IP addresses/],
    [['--listen', '127.0.0.1:0', '--upstream', 'srv:backend.test'], /srv must be a name like _service\._tcp\.example\.com/],
    [['--listen', '127.0.0.1:0', '--upstream', 'dns:10.0.0.1:80'], /dns must be a host name/],
    [[...base, '--dns-min-interval', '10', '--dns-max-interval', '5'], /dnsMinInterval \(10 s\) must not exceed dnsMaxInterval \(5 s\)/],
    [['--config', conf('ap.json', { ...ok, acceptProxy: 'yes' })], /acceptProxy must be true or false/],
    [['--config', conf('up.json', { ...ok, upstreams: [{ address: '127.0.0.1:1', weigth: 2 }] })], /unknown key 'weigth' \(address, weight, sendProxy\)/],
    [['--config', conf('w.json', { ...ok, upstreams: [{ address: '127.0.0.1:1', weight: 0 }] })], /weight must be a number > 0/],
  ];
  try {
    for (const [args, re] of cases) {
      const p = cli(args);
      const code = await p.exited;
      assert.equal(code, 1, `${args.join(' ')}: ${p.stderr()}`);
      const lines = p.stderr().trim().split('\n');
      assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${p.stderr()}`);
      assert.match(lines[0]!, re);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
