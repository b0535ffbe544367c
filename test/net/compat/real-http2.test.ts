/**
 * HTTP/2 (cleartext, prior knowledge) over maio/net: node:http2's server
 * (nghttp2) fed maio/net sockets, node:http2's client with createConnection
 * returning a maio/net socket (concurrent streams on one connection), and
 * curl --http2-prior-knowledge. Each workload runs over node:net first and
 * over maio/net; statuses, headers and bodies must match.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as mnet from '../../../src/net/compat/index';
import { bounded, poolGuard } from '../helpers';
import { closeServer, connectOn, impls, listen, skip as netSkip, type NetLike } from './common';
import { payload, run, sha256, toolSkip } from './real-common';

const DATA = payload(8 << 20, 5);

/** GET /N: N bytes; POST: the body back. No date header. */
function onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  if (headers[':method'] === 'POST') {
    stream.respond({ ':status': 200, 'x-echo': 'yes' }, { sendDate: false } as http2.ServerStreamResponseOptions);
    stream.pipe(stream);
    return;
  }
  const n = Number(String(headers[':path']).slice(1));
  stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': n, 'x-size': String(n) }, { sendDate: false } as http2.ServerStreamResponseOptions);
  stream.end(DATA.subarray(0, n));
}

async function serve(impl: NetLike): Promise<{ port: number; close(): Promise<void> }> {
  const srv = http2.createServer();
  srv.on('stream', onStream);
  const sockets = new Set<net.Socket | mnet.Socket>();
  const track = (s: net.Socket | mnet.Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  let closer: () => Promise<void>;
  let port: number;
  if (impl === mnet) {
    const feeder = mnet.createServer((s) => {
      track(s);
      srv.emit('connection', s);
    });
    port = await listen(feeder);
    closer = () => closeServer(feeder);
  } else {
    srv.on('connection', track);
    port = await listen(srv as unknown as net.Server);
    closer = () => closeServer(srv as unknown as net.Server);
  }
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await bounded(closer(), 'the http2 server closed');
    },
  };
}

interface Answer {
  status: unknown;
  headers: Record<string, unknown>;
  length: number;
  sha256: string;
}

function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let head: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (head = h));
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const b = Buffer.concat(chunks);
      const { ':status': status, ...rest } = head;
      resolve({ status, headers: rest, length: b.length, sha256: sha256(b) });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('node:http2 client and server over maio/net (h2c, concurrent streams on one connection): same answers as over node:net', { skip: netSkip, timeout: 30000 }, async () => {
  const guard = poolGuard();
  const answers: Record<string, Answer[]> = {};
  for (const [name, impl] of impls) {
    const s = await serve(impl);
    let connects = 0;
    const session = http2.connect(`http://127.0.0.1:${s.port}`, {
      createConnection: () => {
        connects++;
        return connectOn(impl, { port: s.port, host: '127.0.0.1' }) as unknown as import('node:stream').Duplex;
      },
    });
    session.on('error', () => undefined); // shows in the requests
    try {
      const list = await bounded(
        Promise.all([
          h2request(session, { ':path': '/0' }),
          h2request(session, { ':path': '/1' }),
          h2request(session, { ':path': '/1000' }),
          h2request(session, { ':path': '/100000' }),
          h2request(session, { ':path': `/${8 << 20}` }),
          h2request(session, { ':method': 'POST', ':path': '/echo' }, DATA.subarray(0, 3 << 20)),
        ]),
        `${name}: six concurrent streams`,
      );
      assert.equal(list[4].sha256, sha256(DATA), `${name}: 8 MiB body`);
      assert.equal(list[5].sha256, sha256(DATA.subarray(0, 3 << 20)), `${name}: 3 MiB echo`);
      assert.equal(connects, 1, `${name}: one connection`);
      answers[name] = list;
    } finally {
      session.destroy();
      await s.close();
    }
  }
  assert.deepEqual(answers['maio/net'], answers['node:net']);
  await guard.check('the pool after the maio/net runs');
});

test('curl --http2-prior-knowledge against node:http2 on maio/net: same bytes as on node:net', { skip: netSkip || toolSkip('curl'), timeout: 30000 }, async () => {
  const guard = poolGuard();
  const got: Record<string, string[]> = {};
  for (const [name, impl] of impls) {
    const s = await serve(impl);
    try {
      got[name] = [];
      // (one URL per curl: curl 7.88 fails a second request on one h2c connection to node:http2, on node:net too)
      for (const n of [1, 65536, 8 << 20]) {
        const { stdout } = await run('curl', ['-sS', '--fail', '--http2-prior-knowledge', '-D', '-', `http://127.0.0.1:${s.port}/${n}`], { limitMs: 15000 });
        const text = stdout.toString('latin1');
        const end = text.indexOf('\r\n\r\n') + 4;
        assert.match(text.slice(0, end), /^HTTP\/2 200 \r\n/, `${name}: /${n} over HTTP/2`);
        assert.equal(sha256(stdout.subarray(end)), sha256(DATA.subarray(0, n)), `${name}: /${n} body`);
        got[name].push(sha256(stdout));
      }
    } finally {
      await s.close();
    }
  }
  assert.deepEqual(got['maio/net'], got['node:net']);
  await guard.check('the pool after the maio/net runs');
});
