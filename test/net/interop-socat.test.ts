/**
 * maio against a C program: socat (installed by scripts/test-setup.sh) as
 * client and server, byte-exact with sha256, for maio's own sockets and for
 * maio/net. Skips with a reason when socat is not installed.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as mnet from '../../src/net/compat/index';
import { Server as MaioServer, createServer } from '../../src/net/server';
import { SOURCE, TEST_BYTES, closed, maioDrain, poolGuard, until } from './helpers';
import { backend } from '../../src/backend';

const socatSkip: string | false = (() => {
  const r = spawnSync('socat', ['-V'], { stdio: 'ignore' });
  return r.error || r.status !== 0 ? 'socat is not installed (scripts/test-setup.sh installs it with apt-get as root)' : false;
})();
/** Runs wherever maio's sockets run: on io_uring, and on the epoll fallback once the socket layer supports it. */
const netSkip: string | false = (() => {
  try {
    backend();
    new MaioServer({});
    return false;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
})();
const skip = netSkip || socatSkip;
const BYTES = Math.min(TEST_BYTES, 32 << 20);

let file = '';
let fileHash = '';
function dataFile(): { file: string; hash: string } {
  if (!file) {
    file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'maio-socat-')), 'data');
    const fd = fs.openSync(file, 'w');
    const h = createHash('sha256');
    for (let left = BYTES, at = 0; left > 0; ) {
      const n = Math.min(left, SOURCE.length - at, 3 << 20);
      const chunk = SOURCE.subarray(at, at + n);
      fs.writeSync(fd, chunk);
      h.update(chunk);
      left -= n;
      at = (at + n) % (SOURCE.length - 1);
    }
    fs.closeSync(fd);
    fileHash = h.digest('hex');
  }
  return { file, hash: fileHash };
}

function sha256File(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

function run(args: string[], stdin?: string): Promise<{ code: number | null; stdoutHash: string; stdoutBytes: number; stderr: string }> {
  const child = spawn('socat', args, { stdio: [stdin ? fs.openSync(stdin, 'r') : 'ignore', 'pipe', 'pipe'] });
  const h = createHash('sha256');
  let bytes = 0;
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdoutHash: h.digest('hex'), stdoutBytes: bytes, stderr })));
}

test('socat -u FILE TCP: -> maio server (IoBuffer data), byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const { file: f, hash } = dataFile();
  let got: Promise<{ hash: string; bytes: number }> | undefined;
  const server = createServer((s) => {
    got = maioDrain(s);
  });
  const { port } = await server.listenAsync(0, '127.0.0.1');
  const r = await run(['-u', `FILE:${f}`, `TCP:127.0.0.1:${port}`]);
  assert.equal(r.code, 0, r.stderr);
  await until(() => got !== undefined, 'the connection');
  const g = await got!;
  assert.equal(g.bytes, BYTES);
  assert.equal(g.hash, hash);
  await new Promise<void>((res) => server.close(() => res()));
  await guard.check();
});

test('socat TCP: STDIO round trip through a maio/net echo server (s.pipe(s)), byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const { file: f, hash } = dataFile();
  const server = mnet.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  // -t: after stdin's EOF, wait (up to 60 s) for the echo to finish instead of socat's 0.5 s.
  const r = await run(['-t', '60', '-b', '131072', `TCP:127.0.0.1:${port}`, 'STDIO'], f);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdoutBytes, BYTES);
  assert.equal(r.stdoutHash, hash);
  await new Promise<void>((res) => server.close(() => res()));
  await guard.check();
});

test('maio/net client: fs.createReadStream(file) -> socket -> socat TCP-LISTEN -> file, byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const { file: f, hash } = dataFile();
  const out = path.join(path.dirname(f), 'received');
  // A port that was free a moment ago; socat binds it.
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  const port = (tmp.address() as net.AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
  const socat = run(['-u', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, `CREATE:${out}`]);
  let c: mnet.Socket;
  for (let tries = 0; ; tries++) {
    c = mnet.connect(port, '127.0.0.1');
    // events.once rejects on 'error': a refused connect lands in the second handler.
    const res = await once(c, 'connect').then(() => null, (e: unknown) => e as NodeJS.ErrnoException);
    if (res === null) break;
    await closed(c).catch(() => {});
    if (res.code !== 'ECONNREFUSED' || tries > 500) throw res;
    await new Promise((r) => setTimeout(r, 10));
  }
  await pipeline(fs.createReadStream(f, { highWaterMark: 256 << 10 }), c);
  const r = await socat;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.statSync(out).size, BYTES);
  assert.equal(sha256File(out), hash);
  fs.unlinkSync(out);
  await until(() => c.destroyed, 'the client closed');
  await guard.check();
});

test.after(() => {
  if (file) fs.rmSync(path.dirname(file), { recursive: true, force: true });
});
