/**
 * TLS over maio/net with real peers: node's tls.connect({ socket }) over a
 * maio/net socket to `openssl s_server -WWW`, and node's https server fed
 * maio/net sockets (emit('connection')) fetched by curl. Bodies of 1 B to
 * 64 MiB (and a 64 MiB upload from curl, echoed) are checked by sha256
 * against the file or payload, and the whole responses (headers too)
 * against the same run over node:net. Each test ends with maio's pool as it
 * began (no pool buffer kept by a closed socket).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as mnet from '../../../src/net/compat/index';
import { bounded, poolGuard } from '../helpers';
import { closeServer, connectOn, freePort, impls, listen, skip as netSkip, type NetLike } from './common';
import { makeCert, payload, run, sha256, startChild, tempDir, toolSkip, waitForPort, type Child } from './real-common';

const SIZES = [1, 1000, 64 << 10, 1 << 20, 64 << 20];
const BIG = Math.max(...SIZES);
const opensslSkip = netSkip || toolSkip('openssl');
const curlSkip = opensslSkip || toolSkip('curl');

let tmp: ReturnType<typeof tempDir> | null = null;
let certs: ReturnType<typeof makeCert>;
/** payload(BIG): each body is a prefix of it (AES-CTR) */
let data: Buffer;
let sServer: Child | null = null;
let sPort = 0;

before(async () => {
  if (opensslSkip) return;
  tmp = tempDir('tls');
  certs = makeCert(tmp.dir);
  data = payload(BIG, 7);
  for (const n of SIZES) fs.writeFileSync(path.join(tmp.dir, `f${n}`), data.subarray(0, n));
  sPort = await freePort();
  // -WWW: `GET /name HTTP/1.0` answers the file `name` from the cwd, one connection at a time
  sServer = startChild('openssl', ['s_server', '-accept', `127.0.0.1:${sPort}`, '-cert', certs.cert, '-key', certs.key, '-WWW', '-quiet'], { cwd: tmp.dir });
  await waitForPort(sPort, 'openssl s_server');
});

after(async () => {
  await sServer?.stop();
  tmp?.remove();
});

/** One TLS request over a connected socket of `impl`; resolves with every byte the server sent. */
async function tlsGet(impl: NetLike, port: number, file: string, early = false): Promise<Buffer> {
  const raw = connectOn(impl, { port, host: '127.0.0.1' });
  try {
    // early: TLS starts on a socket still connecting (its ClientHello waits for the connection)
    if (!early) await once(raw, 'connect');
    const t = tls.connect({ socket: raw, ca: certs.certPem, servername: 'localhost' });
    try {
      await once(t, 'secureConnect');
      const chunks: Buffer[] = [];
      t.on('data', (d: Buffer) => chunks.push(d));
      t.end(`GET /${file} HTTP/1.0\r\n\r\n`);
      await once(t, 'end');
      return Buffer.concat(chunks);
    } finally {
      t.destroy();
    }
  } finally {
    raw.destroy();
  }
}

test('tls.connect({ socket }) over node:net and maio/net to openssl s_server: bodies of 1 B to 64 MiB byte-exact', { skip: opensslSkip, timeout: 60000 }, async () => {
  const guard = poolGuard();
  const responses: Record<string, string[]> = {};
  for (const [name, impl] of impls) {
    responses[name] = [];
    for (const n of SIZES) {
      const res = await bounded(tlsGet(impl, sPort, `f${n}`), `${name}: GET /f${n} over TLS from openssl s_server`, 30000);
      const head = Buffer.from('HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n');
      assert.equal(res.length, head.length + n, `${name}: /f${n} length (server said: ${sServer!.output().slice(-500)})`);
      assert.deepEqual(res.subarray(0, head.length), head, `${name}: /f${n} status line and headers`);
      assert.equal(sha256(res.subarray(head.length)), sha256(data.subarray(0, n)), `${name}: /f${n} body sha256`);
      responses[name].push(sha256(res));
    }
    const res = await bounded(tlsGet(impl, sPort, `f${1 << 20}`, true), `${name}: GET /f${1 << 20} over TLS started while connecting`, 30000);
    assert.equal(sha256(res.subarray(res.length - (1 << 20))), sha256(data.subarray(0, 1 << 20)), `${name}: TLS started while connecting: body`);
    responses[name].push(sha256(res));
  }
  assert.deepEqual(responses['maio/net'], responses['node:net']);
  await guard.check('the pool after the maio/net runs');
});

test('https server fed maio/net sockets (emit connection), fetched by curl --cacert over one keep-alive connection, and a 64 MiB upload echoed: same bytes as over node:net', { skip: curlSkip, timeout: 60000 }, async () => {
  const guard = poolGuard();
  const results: Record<string, { bodies: string[]; headers: string; writeOut: string }> = {};
  for (const [name, impl] of impls) {
    const srv = https.createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
      res.sendDate = false; // the bytes must not depend on the second
      if (req.method === 'POST') {
        // the upload streamed back as it comes
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': req.headers['content-length'] });
        req.pipe(res);
        return;
      }
      const n = Number((req.url ?? '/').slice(1));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-size': String(n) });
      res.end(data.subarray(0, n));
    });
    let feeder: mnet.Server | null = null;
    let port: number;
    if (impl === mnet) {
      // the https server gets its connections from a maio/net server, not from listen()
      feeder = mnet.createServer((s) => srv.emit('connection', s));
      port = await listen(feeder);
    } else {
      port = await listen(srv);
    }
    const out = fs.mkdtempSync(path.join(tmp!.dir, 'curl-'));
    try {
      const args = ['-sS', '--fail', '--http1.1', '--cacert', certs.cert, '-D', path.join(out, 'headers'), '-w', '%{http_code} %{num_connects} %{size_download}\\n'];
      for (const n of SIZES) args.push(`https://127.0.0.1:${port}/${n}`, '-o', path.join(out, `b${n}`));
      const { stdout } = await run('curl', args, { limitMs: 40000 });
      const bodies = SIZES.map((n) => sha256(fs.readFileSync(path.join(out, `b${n}`))));
      assert.deepEqual(
        bodies,
        SIZES.map((n) => sha256(data.subarray(0, n))),
        `${name}: bodies`,
      );
      const writeOut = stdout.toString('utf8');
      // one TLS connection for all five requests (keep-alive), then none
      assert.deepEqual(
        writeOut.trim().split('\n'),
        SIZES.map((n, i) => `200 ${i === 0 ? 1 : 0} ${n}`),
        `${name}: curl's status, connects and sizes`,
      );
      // upload: 64 MiB from curl through the TLS server on maio/net, echoed back
      const up = await run(
        'curl',
        ['-sS', '--fail', '--http1.1', '--cacert', certs.cert, '-H', 'content-type: application/octet-stream', '--data-binary', `@${path.join(tmp!.dir, `f${BIG}`)}`, '-o', path.join(out, 'echo'), '-w', '%{http_code} %{size_upload} %{size_download}', `https://127.0.0.1:${port}/echo`],
        { limitMs: 40000 },
      );
      assert.equal(up.stdout.toString('utf8'), `200 ${BIG} ${BIG}`, `${name}: curl's upload`);
      assert.equal(sha256(fs.readFileSync(path.join(out, 'echo'))), sha256(data), `${name}: the 64 MiB upload echoed`);
      results[name] = { bodies, headers: fs.readFileSync(path.join(out, 'headers'), 'utf8'), writeOut };
    } finally {
      srv.closeAllConnections();
      if (feeder) await bounded(closeServer(feeder), `${name}: the maio/net server closed`);
      else await bounded(closeServer(srv), `${name}: the https server closed`);
    }
  }
  assert.deepEqual(results['maio/net'], results['node:net']);
  await guard.check('the pool after the maio/net runs');
});
