/**
 * maio/net with node:net and node:http, byte-exact: a maio/net echo server
 * with a node:net client, a node:net echo server with a maio/net client
 * (64 MiB each way), and http.request over a maio/net connection.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as mnet from '../../src/net/compat/index';
import { SOURCE, TEST_BYTES, closed, nodeDrain, nodePump, poolGuard, until } from './helpers';
import { backend } from '../../src/backend';
import { Server as MaioServer } from '../../src/net/server';

/** Runs wherever maio's sockets run: on io_uring, and on the epoll fallback once the socket layer supports it. */
const skip: string | false = (() => {
  try {
    backend();
    new MaioServer({});
    return false;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
})();
const BYTES = Math.min(TEST_BYTES, 64 << 20);

test(`maio/net echo server (s.pipe(s)) with a node:net client, ${BYTES} bytes byte-exact`, { skip }, async () => {
  const guard = poolGuard();
  const server = mnet.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(c, 'connect');
  const back = nodeDrain(c);
  const sent = await nodePump(c, BYTES, 31);
  const got = await back;
  assert.equal(got.bytes, BYTES);
  assert.equal(got.hash, sent);
  await closed(c);
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test(`node:net echo server with a maio/net client, ${BYTES} bytes byte-exact`, { skip }, async () => {
  const guard = poolGuard();
  const server = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const c = mnet.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(c, 'connect');
  // The helpers take node:net sockets; a maio/net socket is one as far as they can tell.
  const back = nodeDrain(c as unknown as net.Socket);
  const sent = await nodePump(c as unknown as net.Socket, BYTES, 33);
  const got = await back;
  assert.equal(got.bytes, BYTES);
  assert.equal(got.hash, sent);
  assert.equal(c.bytesRead, BYTES);
  assert.equal(c.bytesWritten, BYTES);
  await closed(c);
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('http.request({ createConnection: maio/net connect }) to a node:http server: POST 3 MiB, 5 MiB back, byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const reqBody = SOURCE.subarray(0, 3 << 20);
  const resBody = SOURCE.subarray(1 << 20, 6 << 20);
  const server = http.createServer((req, res) => {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    req.on('end', () => {
      res.setHeader('x-request-sha256', h.digest('hex'));
      res.setHeader('x-request-bytes', String(n));
      res.end(resBody);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  let sock: mnet.Socket | undefined;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(
      {
        method: 'POST',
        host: '127.0.0.1',
        port,
        path: '/upload',
        headers: { 'content-length': reqBody.length, connection: 'close' },
        createConnection: () => (sock = mnet.connect(port, '127.0.0.1')) as unknown as net.Socket,
      },
      resolve,
    );
    req.on('error', reject);
    req.end(reqBody);
  });
  assert.ok(sock instanceof mnet.Socket);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-request-bytes'], String(reqBody.length));
  assert.equal(res.headers['x-request-sha256'], createHash('sha256').update(reqBody).digest('hex'));
  const h = createHash('sha256');
  let n = 0;
  for await (const d of res) {
    h.update(d as Buffer);
    n += (d as Buffer).length;
  }
  assert.equal(n, resBody.length);
  assert.equal(h.digest('hex'), createHash('sha256').update(resBody).digest('hex'));
  await until(() => sock!.destroyed, 'the connection closed');
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});

test('http keep-alive: two requests over one maio/net connection', { skip }, async () => {
  const guard = poolGuard();
  const server = http.createServer((req, res) => res.end(`${req.method} ${req.url}`));
  server.keepAliveTimeout = 60000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const made: mnet.Socket[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: unknown }).createConnection = (o: { port: number; host: string }, cb?: () => void) => {
    const s = mnet.connect({ port: o.port, host: o.host }, cb);
    made.push(s);
    return s;
  };
  const get = (path: string) =>
    new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  assert.equal(await get('/one'), 'GET /one');
  assert.equal(await get('/two'), 'GET /two');
  assert.equal(made.length, 1);
  agent.destroy();
  await closed(made[0]);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await guard.check();
});
