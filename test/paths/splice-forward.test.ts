/**
 * forwardFd: socket -> pipe -> socket between two loopback connections.
 *
 *   node:net client A  ->  raw fd a (accepted)  ==splice==  raw fd b (connected)  ->  node:net server peer B
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { InvalidArgumentError, OutOfRangeError } from '../../src/core/errors';
import { Ring } from '../../src/ring/ring';
import { forwardBoth, forwardFd } from '../../src/paths/splice-forward';
import { rawPair, receive, sendRandom, skip, until } from './helpers';

const MiB = 1 << 20;


test('random data is forwarded byte for byte in both directions at once, EOF becomes a half-close', { skip }, async () => {
  const bytes = Number(process.env.MAIO_TEST_BYTES ?? 128 * MiB);
  const ring = Ring.current()!;
  const p = await rawPair();
  const fwd = forwardBoth(ring, p.a, p.b);
  const atB = receive(p.B);
  const atA = receive(p.A);
  const t0 = Date.now();
  const [sentAB, sentBA] = await Promise.all([sendRandom(p.A, bytes), sendRandom(p.B, bytes + 12345)]);
  const [gotB, gotA] = await Promise.all([atB, atA]);
  const secs = (Date.now() - t0) / 1000;
  console.log(`# forwarded 2 x ${bytes} bytes in ${secs.toFixed(2)} s`);
  assert.equal(gotB.bytes, bytes);
  assert.equal(gotB.digest, sentAB);
  assert.equal(gotA.bytes, bytes + 12345);
  assert.equal(gotA.digest, sentBA);
  assert.deepEqual(await fwd.finished, [bytes, bytes + 12345]);
  assert.ok(fwd.aToB.pipeSize > 0 && fwd.aToB.pipeSize <= 1 << 20);
  assert.equal(ring.pending, 0);
  p.close();
});

test('EOF on one side is a half-close on the other; the other direction keeps working', { skip }, async () => {
  const ring = Ring.current()!;
  const p = await rawPair();
  const ab = forwardFd(ring, p.a, p.b);
  const ba = forwardFd(ring, p.b, p.a);
  const atB = receive(p.B);
  p.A.end('hello');
  const gotB = await atB;
  assert.equal(gotB.bytes, 5);
  assert.equal(await ab.finished(), 5);
  assert.equal(ba.done, false, 'B -> A still open');
  // B can still talk to A after A's half-close.
  const atA = receive(p.A);
  p.B.end('late reply');
  const gotA = await atA;
  assert.equal(gotA.bytes, 10);
  assert.equal(await ba.finished(), 10);
  assert.equal(ring.pending, 0);
  p.close();
});

test('a reset on one side surfaces as an error; the other direction is stopped', { skip }, async () => {
  const ring = Ring.current()!;
  const p = await rawPair();
  p.B.on('error', () => {});
  p.A.on('error', () => {});
  const fwd = forwardBoth(ring, p.a, p.b);
  p.A.write('x'.repeat(1000));
  await until(() => fwd.aToB.bytes === 1000, 'first bytes');
  p.A.resetAndDestroy();
  await assert.rejects(fwd.finished, (e: any) => {
    assert.ok(['ECONNRESET', 'EPIPE'].includes(e.code), `${e.code}: ${e.message}`);
    assert.equal(typeof e.errno, 'number');
    assert.equal(e.syscall, 'splice');
    return true;
  });
  await until(() => fwd.aToB.done && fwd.bToA.done, 'both directions to end');
  await until(() => ring.pending === 0, 'ops to finish');
  p.close();
});

test('a slow receiver: memory stays bounded by the pipe and nothing is resubmitted while it waits', { skip }, async () => {
  const ring = Ring.current()!;
  const p = await rawPair();
  const ab = forwardFd(ring, p.a, p.b);
  p.B.pause();
  const sent = sendRandom(p.A, 64 * MiB);
  let last = -1;
  for (let stable = 0; stable < 20; ) {
    await new Promise((r) => setTimeout(r, 25));
    if (ab.bytes === last) stable++;
    else {
      last = ab.bytes;
      stable = 0;
    }
  }
  const before = ring.stats();
  const splices = ab.splices;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(ring.stats().submitted - before.submitted, 0, 'no submissions while stalled');
  assert.equal(ab.splices, splices);
  assert.ok(ab.bytes < 64 * MiB);
  const atB = receive(p.B);
  p.B.resume();
  const digest = await sent;
  const got = await atB;
  assert.equal(got.digest, digest);
  assert.equal(await ab.finished(), 64 * MiB);
  ab.abort(); // after the end: no effect
  p.close();
});

test('forwardFd validates its arguments with typed errors', { skip }, () => {
  const ring = Ring.current()!;
  const before = ring.stats().submitted;
  assert.throws(() => forwardFd(ring, -1, 5), OutOfRangeError);
  assert.throws(() => forwardFd(ring, 5, 2 ** 31), OutOfRangeError);
  assert.throws(() => forwardFd(ring, 5, 5), InvalidArgumentError);
  assert.throws(() => forwardFd(ring, 'a' as any, 5), InvalidArgumentError);
  assert.throws(() => forwardFd(null as any, 4, 5), InvalidArgumentError);
  assert.throws(() => forwardFd(ring, 4, 5, { target: {} as any }), InvalidArgumentError);
  assert.throws(() => forwardFd(ring, 4, 5, { pipeSize: 1 }), OutOfRangeError);
  assert.throws(() => forwardFd(ring, 987654, 987655), (e: any) => e.code === 'EBADF');
  assert.equal(ring.stats().submitted, before);
});
