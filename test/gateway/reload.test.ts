/**
 * Configuration reload without dropping connections: an open connection keeps
 * its upstream and keeps echoing byte-exact across a reload that changes the
 * upstreams; new connections go to the new upstream; a bad configuration is
 * refused with a typed error (API) or one stderr line (SIGHUP) and the old one
 * stays. Both outcomes are counted in the metrics.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { Proxy } from '../../src/paths/proxy';
import { tmpDir, until } from '../paths/helpers';
import { bufferSkip } from '../paths/maio-helpers';
import { cli, httpGet, metricsPort, parsePrometheus, sampleOf } from '../paths/proxy-helpers';
import { echoUpstream, echoes } from './helpers';

const local = (port: number) => ({ host: '127.0.0.1', port });

async function rawClient(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
}

test('reload(): open connections keep their upstream and echo byte-exact; new ones use the new upstreams; a bad config is refused', { skip: bufferSkip }, async () => {
  const A = await echoUpstream();
  const B = await echoUpstream();
  const proxy = new Proxy({ listen: local(0), upstreams: [local(A.port)], mode: 'buffers' });
  const sockets: net.Socket[] = [];
  try {
    const addr = await proxy.listen();
    const old = await rawClient(addr.port);
    sockets.push(old);
    assert.ok(await echoes(old, randomBytes(64 * 1024)));
    assert.equal(A.conns.length, 1);

    // A stream in flight while the reload happens: its bytes must come back exact.
    const big = randomBytes(4 << 20);
    const during = echoes(old, big, 60000);
    proxy.reload({ listen: local(0), upstreams: [local(B.port)], mode: 'buffers', idleTimeout: 30 });
    assert.equal(await during, true, 'the open connection echoed 4 MiB byte-exact across the reload');
    assert.ok(await echoes(old, Buffer.from('still A')));
    assert.equal(A.conns.length, 1);
    assert.equal(B.conns.length, 0, 'the open connection did not move');

    const fresh = await rawClient(addr.port);
    sockets.push(fresh);
    assert.ok(await echoes(fresh, Buffer.from('to B')));
    assert.equal(B.conns.length, 1, 'a new connection goes to the new upstream');

    // The retired upstream is still reported while its connection lasts.
    const st = proxy.stats();
    assert.deepEqual(
      st.upstreams.map((u) => [u.port, u.retired, u.active]),
      [
        [B.port, false, 1],
        [A.port, true, 1],
      ],
    );

    // Refused: no upstream, a bad value, a new listen address, a function that throws.
    const bad: [() => void, RegExp][] = [
      [() => proxy.reload({ listen: local(0), upstreams: [] }), /at least one upstream/],
      [() => proxy.reload({ listen: local(0), upstreams: [local(B.port)], rateLimit: -1 }), /rateLimit must be a number >= 0/],
      [() => proxy.reload({ listen: local(addr.port + 1), upstreams: [local(B.port)] }), /listen cannot change on reload/],
      [() => proxy.reload(null as never), /options must be an object/],
      [() => proxy.reload({ listen: local(0), upstreams: [{ dns: '10.0.0.1', port: 80 }] }), /dns must be a host name/],
      [() => proxy.reload({ listen: local(0), upstreams: [{ srv: 'backend.test' }] }), /srv must be a name like _service\._tcp/],
      [() => proxy.reload({ listen: local(0), upstreams: [local(B.port)], sendProxy: 'v3' as never }), /sendProxy must be 'v1', 'v2' or false/],
      [() => proxy.reload({ listen: local(0), upstreams: [{ ...local(B.port), weight: 0 }] }), /weight must be a number > 0/],
      [
        () =>
          proxy.reload(() => {
            throw new Error('config file unreadable');
          }),
        /config file unreadable/,
      ],
    ];
    for (const [f, re] of bad) assert.throws(f, (e: unknown) => e instanceof ConfigError && e.code === 'ERR_MAIO_CONFIG' && re.test(e.message));
    const again = await rawClient(addr.port);
    sockets.push(again);
    assert.ok(await echoes(again, Buffer.from('B again')));
    assert.equal(B.conns.length, 2, 'the refused reloads left B in force');
    assert.equal(proxy.options.idleTimeout, 30);

    old.destroy();
    await until(() => proxy.stats().upstreams.length === 1, 'the retired upstream gone with its last connection');
    const m = parsePrometheus(proxy.metrics());
    assert.equal(sampleOf(m, 'maio_proxy_reloads_total', '{result="ok"}'), 1);
    assert.equal(sampleOf(m, 'maio_proxy_reloads_total', '{result="refused"}'), 9);
    assert.equal(proxy.stats().gateway.lastReloadError, 'config file unreadable');
  } finally {
    sockets.forEach((s) => s.destroy());
    await proxy.close();
    await Promise.all([A.close(), B.close()]);
  }
});

test('CLI: SIGHUP re-reads --config; the open connection stays on its upstream; bad JSON is one line on stderr and the old config stays', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  const A = await echoUpstream();
  const B = await echoUpstream();
  const file = path.join(dir, 'proxy.json');
  const write = (o: unknown) => fs.writeFileSync(file, typeof o === 'string' ? o : JSON.stringify(o));
  write({ listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${A.port}`], metrics: '127.0.0.1:0', mode: 'buffers' });
  const p = cli(['--config', file]);
  const sockets: net.Socket[] = [];
  try {
    const port = await p.port;
    const old = await rawClient(port);
    sockets.push(old);
    assert.ok(await echoes(old, randomBytes(100_000)));

    write({ listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${B.port}`], metrics: '127.0.0.1:0', mode: 'buffers', maxConnectionsPerClient: 10 });
    p.child.kill('SIGHUP');
    await until(() => p.lines().some((l) => l.includes('reloaded')), 'the reload line');
    assert.ok(await echoes(old, randomBytes(1 << 20), 60000), 'the open connection echoes 1 MiB byte-exact after SIGHUP');
    const fresh = await rawClient(port);
    sockets.push(fresh);
    assert.ok(await echoes(fresh, Buffer.from('new')));
    // Health checks of the start-up connect to A too: count connections that carried bytes.
    const busy = (u: { conns: net.Socket[] }) => u.conns.filter((s) => s.bytesRead > 0).length;
    assert.equal(busy(A), 1);
    assert.equal(busy(B), 1);

    write('{"listen": "127.0.0.1:0", "upstreams": [');
    p.child.kill('SIGHUP');
    await until(() => p.lines().some((l) => l.includes('reload refused')), 'the refusal line');
    const refusal = p.lines().filter((l) => l.includes('reload refused'));
    assert.equal(refusal.length, 1);
    assert.match(refusal[0]!, /^maio proxy: reload refused: config .*proxy\.json is not valid JSON: .* \(the running configuration stays\)$/);
    write({ listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${A.port}`], metrics: '127.0.0.1:1' });
    p.child.kill('SIGHUP');
    await until(() => p.lines().filter((l) => l.includes('reload refused')).length === 2, 'the second refusal');
    assert.match(p.lines().filter((l) => l.includes('reload refused'))[1]!, /metrics cannot change on reload/);

    const after = await rawClient(port);
    sockets.push(after);
    assert.ok(await echoes(after, Buffer.from('still B')));
    assert.equal(busy(B), 2, 'the refused reloads kept B');
    assert.equal(p.child.exitCode, null, 'the proxy is still running');
    const m = parsePrometheus((await httpGet(metricsPort(p), '/metrics')).body);
    assert.equal(sampleOf(m, 'maio_proxy_reloads_total', '{result="ok"}'), 1);
    assert.equal(sampleOf(m, 'maio_proxy_reloads_total', '{result="refused"}'), 2);
  } finally {
    sockets.forEach((s) => s.destroy());
    p.child.kill('SIGKILL');
    await Promise.all([A.close(), B.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('reload(): new limits and timeouts apply to new connections; open ones keep what they started with', { skip: bufferSkip }, async () => {
  const A = await echoUpstream();
  const proxy = new Proxy({ listen: local(0), upstreams: [local(A.port)] });
  const sockets: net.Socket[] = [];
  try {
    const addr = await proxy.listen();
    const old = await rawClient(addr.port);
    sockets.push(old);
    assert.ok(await echoes(old, Buffer.from('before')));
    proxy.reload({ listen: local(0), upstreams: [local(A.port)], maxConnectionsPerClient: 1, idleTimeout: 0.3 });
    // The open connection counts against the new per-client limit: a second one is refused.
    const second = await rawClient(addr.port);
    sockets.push(second);
    await new Promise((r) => second.once('close', r));
    assert.equal(proxy.stats().gateway.refused.perClient, 1);
    // Room again once it ends; the new connection has the 0.3 s idle timeout, closed when idle.
    old.destroy();
    await until(() => proxy.connections === 0, 'the old connection gone');
    proxy.reload({ listen: local(0), upstreams: [local(A.port)], idleTimeout: 0.3 });
    const idle = await rawClient(addr.port);
    sockets.push(idle);
    assert.ok(await echoes(idle, Buffer.from('then idle')));
    const t0 = performance.now();
    await new Promise((r) => idle.once('close', r));
    assert.ok(performance.now() - t0 >= 250, 'closed by the idle timeout the reload set');
    assert.equal(proxy.stats().idleClosed, 1);
    // A connection from before a reload that sets an idle timeout keeps having none.
    proxy.reload({ listen: local(0), upstreams: [local(A.port)] });
    const keeps = await rawClient(addr.port);
    sockets.push(keeps);
    assert.ok(await echoes(keeps, Buffer.from('no timeout')));
    proxy.reload({ listen: local(0), upstreams: [local(A.port)], idleTimeout: 0.2 });
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(keeps.destroyed, false, 'still open after 3.5 of the new timeouts');
    assert.ok(await echoes(keeps, Buffer.from('still')));
  } finally {
    sockets.forEach((s) => s.destroy());
    await proxy.close();
    await A.close();
  }
});
