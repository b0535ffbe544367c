/**
 * HTTP/1.1 over maio/net with real clients: node:http's server fed maio/net
 * sockets, driven by wrk (keep-alive and Connection: close), by curl giving up
 * mid-body, by a raw pipelined request burst,
 * by undici (its `connect` option returns a maio/net socket; pipelining 4)
 * and by http.request({ createConnection }). Each workload runs over node:net
 * first and over maio/net, and the statuses, headers and bodies must match.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import type * as net from 'node:net';
import { Client } from 'undici';
import * as mnet from '../../../src/net/compat/index';
import { bounded, poolGuard } from '../helpers';
import { closeServer, connectOn, impls, listen, skip as netSkip, type NetLike } from './common';
import { payload, run, sha256, toolSkip } from './real-common';

const DATA = payload(16 << 20, 3);

/**
 * GET /size/N: N bytes (content-length); GET /chunked/N: N bytes in chunks
 * of 10000 (no content-length); POST /echo: the body back with its sha256.
 * No Date header, so that runs compare byte for byte.
 */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.sendDate = false;
  const [, kind, arg] = (req.url ?? '/').split('/');
  const n = Number(arg);
  if (req.method === 'GET' && kind === 'size') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-kind': 'size' });
    res.end(DATA.subarray(0, n));
  } else if (req.method === 'GET' && kind === 'chunked') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-kind': 'chunked' });
    for (let at = 0; at < n; at += 10000) res.write(DATA.subarray(at, Math.min(n, at + 10000)));
    res.end();
  } else if (req.method === 'POST' && kind === 'echo') {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.writeHead(201, { 'content-length': body.length, 'x-sha256': sha256(body) });
      res.end(body);
    });
  } else {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  }
}

/** node:http's server on `impl`: listening itself (node:net) or fed by a maio/net server. */
async function serve(impl: NetLike, keepAliveTimeout?: number): Promise<{ port: number; close(): Promise<void> }> {
  const srv = http.createServer(handler);
  if (keepAliveTimeout !== undefined) srv.keepAliveTimeout = keepAliveTimeout;
  const sockets = new Set<net.Socket | mnet.Socket>();
  const track = (s: net.Socket | mnet.Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  if (impl === mnet) {
    const feeder = mnet.createServer((s) => {
      track(s);
      srv.emit('connection', s);
    });
    const port = await listen(feeder);
    return {
      port,
      close: async () => {
        for (const s of sockets) s.destroy();
        await bounded(closeServer(feeder), 'the maio/net server closed');
      },
    };
  }
  srv.on('connection', track);
  const port = await listen(srv);
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await bounded(closeServer(srv), 'the node:net http server closed');
    },
  };
}

test('wrk -c 8 -d 1s against node:http on node:net and on maio/net, keep-alive and Connection: close: requests, no socket errors, no non-2xx', { skip: netSkip || toolSkip('wrk'), timeout: 30000 }, async (t) => {
  const guard = poolGuard();
  for (const [name, impl] of impls) {
    const s = await serve(impl);
    try {
      // keep-alive (wrk's default), then a new connection per request (accept and close churn)
      for (const extra of [[], ['-H', 'Connection: close']]) {
        const what = `${name}${extra.length ? ' (Connection: close)' : ''}`;
        const { stdout } = await run('wrk', ['-t', '2', '-c', '8', '-d', '1s', ...extra, `http://127.0.0.1:${s.port}/size/16384`], { limitMs: 15000 });
        const out = stdout.toString('utf8');
        const m = /(\d+) requests in/.exec(out);
        assert.ok(m && Number(m[1]) > 100, `${what}: wrk made requests:\n${out}`);
        assert.doesNotMatch(out, /Socket errors/, `${what}: wrk saw socket errors:\n${out}`);
        assert.doesNotMatch(out, /Non-2xx/, `${what}: wrk saw non-2xx answers:\n${out}`);
        t.diagnostic(`${what}: ${m[1]} requests of 16 KiB in 1 s`);
      }
    } finally {
      await s.close();
    }
  }
  await guard.check('the pool after the maio/net runs');
});

test('curl gives up in the middle of a 16 MiB response (-m with --limit-rate): the server on maio/net serves the next request whole and frees everything, as on node:net', { skip: netSkip || toolSkip('curl'), timeout: 30000 }, async () => {
  const guard = poolGuard();
  for (const [name, impl] of impls) {
    const s = await serve(impl);
    try {
      const url = `http://127.0.0.1:${s.port}/size/${16 << 20}`;
      const cut = await run('curl', ['-sS', '-m', '0.4', '--limit-rate', '1M', '-o', '/dev/null', '-w', '%{size_download}', url], { limitMs: 10000 }).then(
        () => null,
        (e: Error) => e.message,
      );
      assert.match(String(cut), /exited 28/, `${name}: curl timed out mid-body (exit 28)`);
      const whole = await run('curl', ['-sS', '--fail', '-w', '%{size_download}', url], { limitMs: 15000 });
      // (-w's text follows the body on stdout)
      const body = whole.stdout.subarray(0, whole.stdout.length - String(16 << 20).length);
      assert.equal(whole.stdout.subarray(body.length).toString('utf8'), String(16 << 20), `${name}: the next download's size`);
      assert.equal(sha256(body), sha256(DATA), `${name}: the next download's bytes`);
    } finally {
      await s.close();
    }
  }
  await guard.check('the pool after the maio/net runs');
});

/** The raw burst: requests written at once, the last one closing; keep-alive in between. */
function burst(): Buffer {
  const parts: Buffer[] = [];
  const get = (p: string): Buffer => Buffer.from(`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
  for (const n of [0, 1, 1000, 65536, 1 << 20]) parts.push(get(`/size/${n}`));
  parts.push(get('/chunked/100000'));
  const body = DATA.subarray(100, 100 + 300000);
  parts.push(Buffer.from(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body);
  parts.push(Buffer.from(`POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`));
  parts.push(get('/nope'));
  parts.push(Buffer.from('GET /size/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
  return Buffer.concat(parts);
}

test('a pipelined burst of 10 requests in one write, every client x server pairing of node:net and maio/net: identical response bytes', { skip: netSkip, timeout: 30000 }, async () => {
  const guard = poolGuard();
  const req = burst();
  const got: Record<string, Buffer> = {};
  for (const [serverName, serverImpl] of impls) {
    const s = await serve(serverImpl);
    try {
      for (const [clientName, clientImpl] of impls) {
        const c = connectOn(clientImpl, { port: s.port, host: '127.0.0.1' });
        try {
          const chunks: Buffer[] = [];
          c.on('data', (d: Buffer) => chunks.push(d));
          c.write(req);
          await bounded(once(c, 'end'), `${clientName} -> ${serverName}: the server's FIN after Connection: close`);
          got[`${clientName} -> ${serverName}`] = Buffer.concat(chunks);
        } finally {
          c.destroy();
        }
      }
    } finally {
      await s.close();
    }
  }
  const ref = got['node:net -> node:net'];
  const statuses = ref.toString('latin1').match(/HTTP\/1\.1 \d{3}(?= )/g);
  assert.deepEqual(statuses, [...Array(6).fill('HTTP/1.1 200'), 'HTTP/1.1 201', 'HTTP/1.1 201', 'HTTP/1.1 404', 'HTTP/1.1 200']);
  for (const [k, v] of Object.entries(got)) {
    assert.equal(v.length, ref.length, `${k}: response length`);
    assert.equal(sha256(v), sha256(ref), `${k}: response bytes`);
  }
  await guard.check('the pool after the maio/net runs');
});

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  length: number;
  sha256: string;
}

test('undici Client with connect() returning a maio/net socket (pipelining 4, keep-alive): same answers as over node:net, one connection', { skip: netSkip, timeout: 30000 }, async () => {
  const guard = poolGuard();
  const answers: Record<string, Answer[]> = {};
  for (const [name, impl] of impls) {
    const s = await serve(impl);
    let connects = 0;
    const client = new Client(`http://127.0.0.1:${s.port}`, {
      pipelining: 4,
      connect: (opts, cb) => {
        connects++;
        const sock = connectOn(impl, { host: opts.hostname, port: Number(opts.port) });
        const onError = (err: Error): void => cb(err, null);
        sock.once('error', onError);
        sock.once('connect', () => {
          sock.off('error', onError);
          cb(null, sock as net.Socket);
        });
      },
    });
    try {
      const one = async (method: 'GET' | 'POST', path: string, body?: Buffer): Promise<Answer> => {
        const r = await client.request({ method, path, body });
        const b = Buffer.from(await r.body.arrayBuffer());
        return { status: r.statusCode, headers: r.headers, length: b.length, sha256: sha256(b) };
      };
      // concurrent: undici pipelines them on its one connection
      const list: Answer[] = await bounded(
        Promise.all([
          one('GET', '/size/1'),
          one('GET', '/size/1000'),
          one('GET', '/size/65536'),
          one('GET', '/chunked/250000'),
          one('GET', '/size/4194304'),
          one('GET', '/nope'),
        ]),
        `${name}: undici's pipelined GETs`,
      );
      list.push(await bounded(one('POST', '/echo', DATA.subarray(0, 8 << 20)), `${name}: undici POST 8 MiB`));
      list.push(await bounded(one('GET', '/size/16777216'), `${name}: undici GET 16 MiB`));
      assert.equal(list[4].sha256, sha256(DATA.subarray(0, 4 << 20)), `${name}: 4 MiB body`);
      assert.equal(list[6].sha256, sha256(DATA.subarray(0, 8 << 20)), `${name}: 8 MiB echo`);
      assert.equal(list[7].sha256, sha256(DATA), `${name}: 16 MiB body`);
      assert.equal(connects, 1, `${name}: one connection for all requests`);
      answers[name] = list;
    } finally {
      // destroy, not close: close() would wait for a request that hangs
      await client.destroy().catch(() => undefined);
      await s.close();
    }
  }
  assert.deepEqual(answers['maio/net'], answers['node:net']);
  await guard.check('the pool after the maio/net runs');
});

/** One request with createConnection from `impl` (no agent: one connection each). */
/** `stall`: after the first chunk the response is paused that many ms (the socket's backpressure), then read on. */
function request(impl: NetLike, port: number, method: string, path: string, body?: Buffer[], stall = 0): Promise<Answer & { rawHeaders: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        createConnection: (opts: net.NetConnectOpts, cb?: () => void) => (impl.createConnection as typeof net.createConnection)(opts, cb),
      } as unknown as http.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => {
          chunks.push(d);
          if (stall > 0 && chunks.length === 1) {
            res.pause();
            setTimeout(() => res.resume(), stall);
          }
        });
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, length: b.length, sha256: sha256(b) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // several writes without content-length: a chunked request body
    for (const b of body ?? []) req.write(b);
    req.end();
  });
}

test('http.request({ createConnection }) from maio/net to node:http on maio/net (a 16 MiB response paused mid-way): same statuses, raw headers and bodies as over node:net', { skip: netSkip, timeout: 30000 }, async () => {
  const guard = poolGuard();
  const answers: Record<string, unknown[]> = {};
  for (const [name, impl] of impls) {
    const s = await serve(impl);
    try {
      const list = [];
      for (const p of ['/size/0', '/size/1', '/size/100000', '/chunked/1000000', '/size/16777216', '/nope']) {
        // the 16 MiB response stalls 300 ms after its first chunk: both ends see backpressure
        list.push(await bounded(request(impl, s.port, 'GET', p, undefined, p === '/size/16777216' ? 300 : 0), `${name}: GET ${p}`));
      }
      const pieces = [DATA.subarray(0, 1), DATA.subarray(1, 70000), DATA.subarray(70000, 3 << 20)];
      const echo = await bounded(request(impl, s.port, 'POST', '/echo', pieces), `${name}: POST /echo (chunked)`);
      assert.equal(echo.sha256, sha256(DATA.subarray(0, 3 << 20)), `${name}: echo body`);
      list.push(echo);
      assert.equal(list[4].sha256, sha256(DATA), `${name}: 16 MiB body`);
      answers[name] = list;
    } finally {
      await s.close();
    }
  }
  assert.deepEqual(answers['maio/net'], answers['node:net']);
  await guard.check('the pool after the maio/net runs');
});

test("node:http's keepAliveTimeout (300 ms) closes an idle keep-alive connection on maio/net as on node:net, and undici reconnects", { skip: netSkip, timeout: 30000 }, async (t) => {
  const guard = poolGuard();
  for (const [name, impl] of impls) {
    const s = await serve(impl, 300);
    try {
      // a raw keep-alive client: one request, then silence; the server's idle timer ends it
      const c = connectOn(impl, { port: s.port, host: '127.0.0.1' });
      try {
        const chunks: Buffer[] = [];
        c.on('data', (d: Buffer) => chunks.push(d));
        const t0 = Date.now();
        c.write('GET /size/5 HTTP/1.1\r\nHost: x\r\n\r\n');
        await bounded(once(c, 'end'), `${name}: the server closing the idle connection`, 5000);
        const took = Date.now() - t0;
        assert.ok(took >= 250 && took < 3000, `${name}: closed after ${took} ms (keepAliveTimeout 300 ms)`);
        t.diagnostic(`${name}: the idle keep-alive connection closed after ${took} ms`);
        assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[^]*Keep-Alive: timeout=0\r\n/);
      } finally {
        c.destroy();
      }
      // undici: a request, an idle spell past the timeout, another request on a new connection
      let connects = 0;
      const client = new Client(`http://127.0.0.1:${s.port}`, {
        connect: (opts, cb) => {
          connects++;
          const sock = connectOn(impl, { host: opts.hostname, port: Number(opts.port) });
          sock.once('error', (err) => cb(err, null));
          sock.once('connect', () => cb(null, sock as net.Socket));
        },
      });
      const t1 = Date.now();
      try {
        for (let i = 0; i < 2; i++) {
          const r = await bounded(client.request({ method: 'GET', path: '/size/1000' }), `${name}: undici request ${i}`);
          assert.equal(sha256(Buffer.from(await r.body.arrayBuffer())), sha256(DATA.subarray(0, 1000)));
          if (i === 0) await new Promise((r) => setTimeout(r, 800));
        }
        assert.equal(connects, 2, `${name}: undici connected again after the server closed the idle connection`);
        t.diagnostic(`${name}: undici done after ${Date.now() - t1} ms`);
      } finally {
        await client.destroy().catch(() => undefined);
      }
    } finally {
      const t2 = Date.now();
      await s.close();
      t.diagnostic(`${name}: server closed in ${Date.now() - t2} ms`);
    }
  }
  await guard.check('the pool after the maio/net runs');
});
