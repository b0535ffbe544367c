/**
 * sendFileFd in both modes, checked byte for byte by a node:net receiver:
 * 'sendfile' (readiness-driven sendfile(2), the default; both backends) and
 * 'splice' (file -> pipe -> socket with linked SPLICE pairs; io_uring only).
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { BackendUnavailableError, FileShrunkError, InvalidArgumentError, OutOfRangeError, ClosedError } from '../../src/core/errors';
import { Ring } from '../../src/ring/ring';
import { currentRing } from '../../src/ring/current';
import { sendFile, sendFileFd, sendFilePath, type SendFileMode, type SendFileTarget } from '../../src/net/send-file';
import { bufferSkip } from './maio-helpers';
import {
  closeFd,
  fileDigest,
  listen,
  randomFile,
  rawConnection,
  receive,
  skip,
  tmpDir,
  until,
  zerosDigest,
  tick,
} from './helpers';

const MiB = 1 << 20;
const MODES: SendFileMode[] = ['sendfile', 'splice'];
/** sendfile needs sockets only; splice needs io_uring's SPLICE. */
const skipFor = (mode: SendFileMode): string | false => (mode === 'splice' ? skip : bufferSkip);
const dir = bufferSkip ? '' : tmpDir();
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** One connection: the raw fd sends, a node:net socket receives. */
async function connection() {
  const c = await rawConnection();
  const got = receive(c.peer);
  return {
    ...c,
    /** closes the sending side and waits for what the receiver got */
    async finish() {
      closeFd(c.fd);
      const r = await got;
      c.peer.destroy();
      c.server.close();
      return r;
    },
  };
}

async function roundTrip(mode: SendFileMode, file: string, size: number, digest: string, range: { offset?: number; length?: number } = {}) {
  const ring = currentRing();
  const c = await connection();
  const ffd = fs.openSync(file, 'r');
  let progress = 0;
  let last = 0;
  try {
    const sent = await sendFile(ring, c.fd, ffd, {
      ...range,
      mode,
      onProgress(s, total) {
        assert.ok(s > last && s <= total, `progress ${s} of ${total} after ${last}`);
        last = s;
        progress++;
      },
    });
    assert.equal(sent, size);
  } finally {
    fs.closeSync(ffd);
  }
  const got = await c.finish();
  assert.equal(got.bytes, size);
  assert.equal(got.digest, digest);
  if (size > 0) assert.ok(progress >= 1);
  return { progress };
}

for (const mode of MODES) {
test(`${mode}: files of 0, 1, 1,000,003 and 64 MiB bytes arrive intact`, { skip: skipFor(mode) }, async () => {
  for (const size of [0, 1, 1_000_003, 64 * MiB]) {
    const file = path.join(dir, `f${size}`);
    const digest = randomFile(file, size);
    await roundTrip(mode, file, size, digest);
    fs.rmSync(file);
  }
  assert.equal(currentRing().pending, 0);
});

test(`${mode}: offset/length subranges, and many small steps (a small pipe or budget)`, { skip: skipFor(mode) }, async () => {
  const file = path.join(dir, 'ranges');
  const size = 3 * MiB + 12345;
  randomFile(file, size);
  const ranges: [number, number][] = [
    [0, 1],
    [1, 4095],
    [4095, 4097],
    [size - 1, 1],
    [777_777, 2 * MiB + 3],
    [MiB, MiB],
    [0, size],
  ];
  for (const [offset, length] of ranges) {
    await roundTrip(mode, file, length, fileDigest(file, offset, length), { offset, length });
  }
  // Small pipe (splice): many chains of several pairs each. Small budget
  // (sendfile): at most 64 KiB per wakeup, so many wakeups.
  const ring = currentRing();
  const c = await connection();
  const ffd = fs.openSync(file, 'r');
  let stats;
  await new Promise<void>((resolve, reject) => {
    const t: SendFileTarget = {
      onSendFileDone(err, sent) {
        if (err) return reject(err);
        assert.equal(sent, size - 10);
        resolve();
      },
    };
    const send = sendFileFd(ring, c.fd, ffd, 10, size - 10, t, { mode, pipeSize: 64 * 1024, chunksInFlight: 8, budget: 64 * 1024 });
    t.onSendFileDone = ((done) => (err, sent) => {
      stats = send.stats;
      done.call(t, err, sent);
    })(t.onSendFileDone);
  });
  fs.closeSync(ffd);
  const got = await c.finish();
  assert.equal(got.digest, fileDigest(file, 10, size - 10));
  assert.equal(stats!.mode, mode);
  if (mode === 'splice') {
    assert.equal(stats!.pipeSize, 64 * 1024);
    assert.ok(stats!.rounds >= Math.ceil((size - 10) / (64 * 1024 * 8)), JSON.stringify(stats));
  } else {
    assert.ok(stats!.rounds >= Math.ceil((size - 10) / (64 * 1024)), JSON.stringify(stats));
    assert.ok(stats!.splices >= stats!.rounds, JSON.stringify(stats));
  }
});

test(`${mode}: a sparse file past 2^31 bytes, and a range past 4 GiB`, { skip: skipFor(mode) }, async () => {
  // Big by hand: MAIO_TEST_SPARSE_BYTES=8589934592 (8 GiB).
  const size = Number(process.env.MAIO_TEST_SPARSE_BYTES ?? 2 ** 31 + 4096 + 1);
  const file = path.join(dir, 'sparse');
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
  const t0 = Date.now();
  await roundTrip(mode, file, size, zerosDigest(size));
  const secs = (Date.now() - t0) / 1000;
  // Recorded, not asserted: the machine is shared.
  console.log(`# ${mode}: sparse ${size} bytes in ${secs.toFixed(1)} s`);

  // Real bytes at 5 GiB + 7: the offset's high half reaches the kernel.
  const hi = path.join(dir, 'high');
  const hfd = fs.openSync(hi, 'w');
  const at = 5 * 2 ** 30 + 7;
  const data = Buffer.from('x'.repeat(1000) + 'the end');
  fs.writeSync(hfd, data, 0, data.length, at);
  fs.closeSync(hfd);
  await roundTrip(mode, hi, data.length, fileDigest(hi, at, data.length), { offset: at, length: data.length });
  await roundTrip(mode, hi, 4096, zerosDigest(4096), { offset: 2 ** 32 - 2048, length: 4096 });
  fs.rmSync(file);
  fs.rmSync(hi);
});

test(`${mode}: a missing file is ENOENT in node:fs shape; a directory or a write-only fd is refused`, { skip: skipFor(mode) }, async () => {
  const ring = currentRing();
  const c = await connection();
  await assert.rejects(sendFilePath(ring, c.fd, path.join(dir, 'nope'), { mode }), (e: any) => {
    return e.code === 'ENOENT' && e.errno === -2 && e.syscall === 'open';
  });
  const dfd = fs.openSync(dir, 'r');
  assert.throws(() => sendFileFd(ring, c.fd, dfd, 0, 1, { onSendFileDone() {} }, { mode }), InvalidArgumentError);
  fs.closeSync(dfd);
  // Write-only: the splice or sendfile itself fails with EBADF, in node:net's error shape.
  const file = path.join(dir, 'wo');
  randomFile(file, 10000);
  const wfd = fs.openSync(file, 'a');
  await assert.rejects(sendFile(ring, c.fd, wfd, { offset: 0, length: 10000, mode }), (e: any) => {
    return e.code === 'EBADF' && e.errno === -9 && e.syscall === mode;
  });
  fs.closeSync(wfd);
  const got = await c.finish();
  assert.equal(got.bytes, 0);
  assert.equal(ring.pending, 0);
});

test(`${mode}: a file truncated during the transfer ends it with FileShrunkError`, { skip: skipFor(mode) }, async () => {
  const ring = currentRing();
  const c = await connection();
  c.peer.pause(); // the receiver stops reading: the sender fills the socket and the pipe, then waits
  const file = path.join(dir, 'shrinks');
  const size = 64 * MiB;
  randomFile(file, size);
  const ffd = fs.openSync(file, 'r');
  let sent = 0;
  const done = sendFile(ring, c.fd, ffd, { mode, onProgress: (s) => (sent = s) });
  done.catch(() => {});
  await until(() => sent > 0, 'first progress');
  fs.truncateSync(file, 2 * MiB);
  c.peer.resume();
  await assert.rejects(done, (e: unknown) => {
    assert.ok(e instanceof FileShrunkError, String(e));
    assert.equal((e as FileShrunkError).code, 'ERR_MAIO_FILE_SHRUNK');
    assert.match((e as Error).message, /shrank/);
    return true;
  });
  fs.closeSync(ffd);
  const got = await c.finish();
  assert.ok(got.bytes < size, `${got.bytes}`);
  assert.equal(ring.pending, 0);
});

}

test('splice: a receiver that stops reading: the transfer waits without submitting, then completes', { skip }, async () => {
  const ring = Ring.current()!;
  const c = await connection();
  c.peer.pause();
  const file = path.join(dir, 'slow');
  const size = 48 * MiB;
  const digest = randomFile(file, size);
  const ffd = fs.openSync(file, 'r');
  let sent = 0;
  let finished = false;
  const done = sendFile(ring, c.fd, ffd, { mode: 'splice', onProgress: (s) => (sent = s) }).then((n) => {
    finished = true;
    return n;
  });
  // Wait until progress stops: socket buffers and the pipe are full.
  let seen = -1;
  for (let stable = 0; stable < 20; ) {
    await tick(25);
    if (sent === seen) stable++;
    else {
      seen = sent;
      stable = 0;
    }
  }
  assert.ok(sent < size, 'a paused receiver cannot take 48 MiB');
  const before = ring.stats();
  await tick(300);
  const after = ring.stats();
  assert.equal(finished, false);
  assert.equal(after.submitted - before.submitted, 0, 'no submissions while the receiver is stalled');
  assert.equal(after.enters - before.enters, 0, 'no io_uring_enter while stalled');
  assert.ok(ring.pending > 0, 'the chain waits in the kernel');
  c.peer.resume();
  assert.equal(await done, size);
  fs.closeSync(ffd);
  const got = await c.finish();
  assert.equal(got.digest, digest);
  fs.rmSync(file);
});

test('sendfile: a receiver that stops reading: no wakeup and no progress while stalled, then completes', { skip: bufferSkip }, async () => {
  const ring = currentRing();
  const c = await connection();
  c.peer.pause();
  const file = path.join(dir, 'slow-sf');
  const size = 48 * MiB;
  const digest = randomFile(file, size);
  const ffd = fs.openSync(file, 'r');
  let progress = 0;
  let result: [Error | null, number] | undefined;
  const send = sendFileFd(ring, c.fd, ffd, 0, size, {
    onSendFileProgress: () => progress++,
    onSendFileDone: (err, n) => (result = [err, n]),
  });
  let seen = -1;
  for (let stable = 0; stable < 20; ) {
    await tick(25);
    if (send.sent === seen) stable++;
    else {
      seen = send.sent;
      stable = 0;
    }
  }
  assert.ok(send.sent < size, 'a paused receiver cannot take 48 MiB');
  const before = send.stats;
  const p0 = progress;
  await tick(300);
  const after = send.stats;
  assert.equal(result, undefined);
  // Level-triggered readiness on a full socket would spin: it must not.
  assert.equal(after.rounds - before.rounds, 0, `no wakeups while the receiver is stalled (${JSON.stringify(after)})`);
  assert.equal(after.splices - before.splices, 0, 'no sendfile calls while stalled');
  assert.equal(progress, p0);
  assert.ok(after.shortOrCanceled >= 1, 'the socket filled up (EAGAIN)');
  c.peer.resume();
  await until(() => result !== undefined, 'the end');
  assert.deepEqual(result, [null, size]);
  fs.closeSync(ffd);
  const got = await c.finish();
  assert.equal(got.digest, digest);
  fs.rmSync(file);
});

for (const mode of MODES) {
test(`${mode}: abort() stops the waiting transfer; the target hears AbortError once`, { skip: skipFor(mode) }, async () => {
  const ring = currentRing();
  const c = await connection();
  c.peer.pause();
  const file = path.join(dir, 'abort');
  randomFile(file, 32 * MiB);
  const ffd = fs.openSync(file, 'r');
  const ac = new AbortController();
  let sent = 0;
  const done = sendFile(ring, c.fd, ffd, { mode, signal: ac.signal, onProgress: (s) => (sent = s) });
  done.catch(() => {});
  await until(() => sent > 0, 'progress');
  ac.abort();
  await assert.rejects(done, (e: any) => e.code === 'ABORT_ERR');
  await until(() => ring.pending === 0, 'ops to finish');
  fs.closeSync(ffd);
  c.peer.resume();
  // The receiver sees the end: the transfer kept no reference to the socket
  // (sendfile mode holds a dup of it until stopped).
  const got = await c.finish();
  assert.ok(got.bytes < 32 * MiB, `${got.bytes}`);
});
}

test('arguments are validated with typed errors before anything is submitted', { skip: bufferSkip }, async () => {
  const ring = currentRing();
  const file = path.join(dir, 'args');
  randomFile(file, 1000);
  const ffd = fs.openSync(file, 'r');
  const t = { onSendFileDone() {} };
  const before = ring.stats().submitted;
  const bad: [() => unknown, Function][] = [
    [() => sendFileFd(ring, -1, ffd, 0, 1, t), OutOfRangeError],
    [() => sendFileFd(ring, 1.5, ffd, 0, 1, t), InvalidArgumentError],
    [() => sendFileFd(ring, '3' as any, ffd, 0, 1, t), InvalidArgumentError],
    [() => sendFileFd(ring, 5, -2, 0, 1, t), OutOfRangeError],
    [() => sendFileFd(ring, 5, ffd, -1, 1, t), OutOfRangeError],
    [() => sendFileFd(ring, 5, ffd, 0, -1, t), OutOfRangeError],
    [() => sendFileFd(ring, 5, ffd, 0, NaN, t), InvalidArgumentError],
    [() => sendFileFd(ring, 5, ffd, 0, 2 ** 53, t), InvalidArgumentError],
    [() => sendFileFd(ring, 5, ffd, 999, 2, t), OutOfRangeError],
    [() => sendFileFd(ring, 5, ffd, 0, 1, {} as any), InvalidArgumentError],
    [() => sendFileFd({} as any, 5, ffd, 0, 1, t), InvalidArgumentError],
    [() => sendFileFd(ring, 5, ffd, 0, 1, t, { mode: 'splice', chunksInFlight: 0 }), skip ? BackendUnavailableError : OutOfRangeError],
    [() => sendFileFd(ring, 5, ffd, 0, 1, t, { mode: 'bogus' as any }), InvalidArgumentError],
    [() => sendFileFd(ring, 5, ffd, 0, 1, t, { budget: 100 }), OutOfRangeError],
    [() => sendFileFd(ring, 5, ffd, 0, 1, t, { budget: 1.5 }), OutOfRangeError],
  ];
  for (const [fn, cls] of bad) assert.throws(fn, (e: unknown) => e instanceof cls, String(fn));
  // A bad pipe size comes back from native as the typed error.
  const c = await connection();
  if (!skip) assert.throws(() => sendFileFd(ring, c.fd, ffd, 0, 1, t, { mode: 'splice', pipeSize: 100 }), OutOfRangeError);
  // sendfile into something that is not a socket: refused by the poll set-up.
  assert.throws(() => sendFileFd(ring, ffd, ffd, 0, 1, t), (e: any) => typeof e.code === 'string' && e.syscall === 'uv_poll_init');
  assert.throws(() => fs.fstatSync(123456), (e: any) => e.code === 'EBADF');
  assert.throws(() => sendFileFd(ring, 5, 123456, 0, 1, t), (e: any) => e.code === 'EBADF');
  await tick();
  assert.equal(ring.stats().submitted, before, 'nothing submitted');
  fs.closeSync(ffd);
  await c.finish();
  void ClosedError;
});

test('sendfile: a worker terminated mid-transfer: no crash, its dups of the socket and the file are closed', { skip: bufferSkip }, async () => {
  const file = path.join(dir, 'worker');
  randomFile(file, 32 * MiB);
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listen(server);
  let peer: net.Socket | undefined;
  server.on('connection', (s) => {
    peer = s;
    s.pause(); // the transfer fills the socket and waits
  });
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  const dist = path.resolve(__dirname, '..', '..', 'src');
  const w = new Worker(
    `
    const { parentPort } = require('node:worker_threads');
    const fs = require('node:fs');
    const { native } = require(${JSON.stringify(path.join(dist, 'core', 'native.js'))});
    const { sockaddr } = require(${JSON.stringify(path.join(dist, 'net', 'address.js'))});
    const { currentRing } = require(${JSON.stringify(path.join(dist, 'ring', 'current.js'))});
    const { sendFileFd } = require(${JSON.stringify(path.join(dist, 'net', 'send-file.js'))});
    const n = native();
    const sock = n.sockOpen(4, 'tcp');
    n.sockConnectSync(sock, sockaddr('127.0.0.1', ${port}));
    const f = fs.openSync(${JSON.stringify(file)}, 'r');
    const t = setInterval(() => {
      try { n.sockName(sock, true); } catch { return; }
      clearInterval(t);
      sendFileFd(currentRing(), sock, f, 0, ${32 * MiB}, {
        onSendFileProgress() { parentPort.postMessage({ sock, f }); },
        onSendFileDone() {},
      });
    }, 1);
    `,
    { eval: true },
  );
  const [fdsOfWorker] = (await once(w, 'message')) as [{ sock: number; f: number }];
  await w.terminate();
  // The worker's own fds are process-wide: close them here. What is left over
  // would be the transfer's dups, which its env cleanup must have closed.
  for (const fd of [fdsOfWorker.sock, fdsOfWorker.f]) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed at the worker's exit already
    }
  }
  // One more than before: the accepted peer, in this process.
  await until(() => peer !== undefined, 'accept');
  await until(() => fds() <= before + 1, `fds back to ${before} + the peer (now ${fds()})`);
  const ended = new Promise<void>((resolve) => {
    peer!.on('end', resolve);
    peer!.on('close', () => resolve());
  });
  peer!.resume();
  await ended; // only once no dup of the socket is left open
  peer!.destroy();
  server.close();
  fs.rmSync(file);
});
