/**
 * The splice paths switch sockets to blocking mode only while they splice:
 * afterwards each socket has the mode it had before (src/net/blocking.ts).
 * O_NONBLOCK is read from /proc/self/fdinfo, not through maio.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackendUnavailableError } from '../../src/core/errors';
import { native } from '../../src/core/native';
import { forward } from '../../src/paths/forward';
import { sendFile, sendFileFd } from '../../src/net/send-file';
import { forwardFd } from '../../src/paths/splice-forward';
import { Ring } from '../../src/ring/ring';
import { currentRing } from '../../src/ring/current';
import { closeFd, randomFile, rawConnection, rawPair, receive, skip, tmpDir, until } from './helpers';
import { bufferSkip, maioPair, spliceSkip } from './maio-helpers';

const O_NONBLOCK = 0o4000;

function nonblocking(fd: number): boolean {
  const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m, `flags of fd ${fd}`);
  return (parseInt(m[1], 8) & O_NONBLOCK) !== 0;
}

const dir = bufferSkip ? '' : tmpDir();
const file = dir ? path.join(dir, 'data') : '';
if (file) randomFile(file, 4 << 20);
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});


test("sendFile mode 'splice': the socket is blocking during the transfer and has its mode back after it, done or aborted", { skip }, async () => {
  const ring = currentRing();
  const c = await rawConnection();
  c.peer.resume();
  const ffd = fs.openSync(file, 'r');
  try {
    assert.equal(nonblocking(c.fd), true, 'maio sockets start nonblocking');
    let settle!: (v: [Error | null, number]) => void;
    const done = new Promise<[Error | null, number]>((r) => (settle = r));
    const t = sendFileFd(ring, c.fd, ffd, 0, 4 << 20, { onSendFileDone: (err, sent) => settle([err, sent]) }, { mode: 'splice' });
    assert.equal(nonblocking(c.fd), false, 'blocking while the splices run');
    assert.deepEqual(await done, [null, 4 << 20]);
    assert.equal(t.done, true);
    assert.equal(nonblocking(c.fd), true, 'nonblocking again after the transfer');

    // Aborted at once: the mode comes back too.
    const ac = new AbortController();
    const p = sendFile(ring, c.fd, ffd, { mode: 'splice', signal: ac.signal });
    ac.abort();
    await assert.rejects(p, { code: 'ABORT_ERR' });
    assert.equal(nonblocking(c.fd), true, 'nonblocking again after an abort');

    // A socket its owner made blocking stays blocking.
    native().fdSetBlocking(c.fd, true);
    assert.equal(await sendFile(ring, c.fd, ffd, { mode: 'splice', length: 1 << 20 }), 1 << 20);
    assert.equal(nonblocking(c.fd), false, 'a blocking socket stays blocking');
  } finally {
    fs.closeSync(ffd);
    c.close();
  }
});

test('forwardFd both ways: both sockets stay blocking while either direction runs, and are nonblocking once both ended', { skip }, async () => {
  const ring = Ring.current()!;
  const p = await rawPair();
  try {
    assert.equal(nonblocking(p.a), true);
    assert.equal(nonblocking(p.b), true);
    const ab = forwardFd(ring, p.a, p.b);
    const ba = forwardFd(ring, p.b, p.a);
    assert.equal(nonblocking(p.a), false);
    assert.equal(nonblocking(p.b), false);
    const atB = receive(p.B);
    p.A.end('hello');
    assert.equal((await atB).bytes, 5);
    assert.equal(await ab.finished(), 5);
    // B -> A still splices on both fds: an early restore would fail it with EAGAIN.
    assert.equal(ba.done, false);
    assert.equal(nonblocking(p.a), false, 'a held by the running direction');
    assert.equal(nonblocking(p.b), false, 'b held by the running direction');
    const atA = receive(p.A);
    p.B.end('late reply');
    assert.equal((await atA).bytes, 10);
    assert.equal(await ba.finished(), 10);
    assert.equal(nonblocking(p.a), true, 'a nonblocking again');
    assert.equal(nonblocking(p.b), true, 'b nonblocking again');
  } finally {
    p.close();
  }
});

test('a direction that ends after its fd was closed and the number reused leaves the new file alone', { skip }, async () => {
  const ring = Ring.current()!;
  const p = await rawPair();
  const extra: number[] = [];
  try {
    const ab = forwardFd(ring, p.a, p.b);
    assert.equal(nonblocking(p.b), false);
    // The reader still holds its own reference to a's socket; the number is free.
    fs.closeSync(p.a);
    for (let i = 0; i < 256; i++) {
      const fd = fs.openSync('/dev/null', 'r');
      extra.push(fd);
      if (fd === p.a) break;
    }
    assert.equal(extra[extra.length - 1], p.a, 'the closed number was reused');
    assert.equal(nonblocking(p.a), false, '/dev/null opened blocking');
    ab.abort();
    await assert.rejects(ab.finished(), { code: 'ABORT_ERR' });
    assert.equal(nonblocking(p.a), false, 'the reused number is not touched');
    assert.equal(nonblocking(p.b), true, 'b, still open, is nonblocking again');
  } finally {
    for (const fd of extra) closeFd(fd);
    p.close();
  }
});

test("forward() mode 'splice' of maio sockets: once the end is forwarded, both (still open) sockets have their mode back", { skip: spliceSkip }, async () => {
  const p = await maioPair();
  try {
    // An accepted maio socket is blocking from the start (accept without
    // SOCK_NONBLOCK; maio's ops do not need it); a connected one is not.
    const before = { a: nonblocking(p.a.fd), b: nonblocking(p.b.fd) };
    assert.equal(before.b, true, 'the connected socket starts nonblocking');
    const fwd = forward(p.a, p.b, { mode: 'splice' });
    const atU = receive(p.U);
    p.C.write('x'.repeat(1000));
    await until(() => fwd.bytes === 1000, 'the first bytes forwarded');
    // Bytes a's recv had already taken go out as buffers before the splice takes over (with
    // COOP_TASKRUN they often arrive that early): wait for the splice, not for the bytes.
    await until(() => !nonblocking(p.a.fd) && !nonblocking(p.b.fd), 'a and b blocking while spliced');
    p.C.end('y');
    assert.equal(await fwd.finished(), 1001);
    assert.equal((await atU).bytes, 1001);
    assert.ok(p.a.fd >= 0 && p.b.fd >= 0, 'both sockets still open (half-open)');
    assert.deepEqual({ a: nonblocking(p.a.fd), b: nonblocking(p.b.fd) }, before, 'the modes they had before');
    // The sockets go on working: a still sends to its client.
    const atC = receive(p.C);
    p.a.end('bye');
    assert.equal((await atC).bytes, 3);
  } finally {
    p.close();
  }
});

test("epoll: sendFile mode 'splice' is refused before the socket's mode is touched", { skip: Ring.current().capabilities.splice ? 'io_uring backend: the splice tests above cover it' : bufferSkip }, async () => {
  const ring = currentRing();
  const c = await rawConnection();
  const ffd = fs.openSync(file, 'r');
  try {
    assert.throws(() => sendFileFd(ring, c.fd, ffd, 0, 10, { onSendFileDone() {} }, { mode: 'splice' }), BackendUnavailableError);
    assert.equal(nonblocking(c.fd), true);
  } finally {
    fs.closeSync(ffd);
    c.close();
  }
});
