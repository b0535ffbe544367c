/**
 * forward() in mode 'auto': a direction starts on buffers and moves to splice
 * once it has forwarded spliceAfterBytes within a window (io_uring only):
 *
 *   node:net client C  ->  maio a  ==forward==  maio b  ->  node:net peer U
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { OutOfRangeError } from '../../src/core/errors';
import { backend } from '../../src/backend';
import { defaultPool } from '../../src/pool/pool';
import { forward, forwardBoth, type Forwarder } from '../../src/paths/forward';
import { receive, until } from './helpers';
import { bufferSkip, maioPair, sendChunks, spliceSkip } from './maio-helpers';
import { countImmediates } from '../net/helpers';

const MiB = 1 << 20;
const BYTES = Number(process.env.MAIO_TEST_BYTES ?? 64 * MiB);

/** Counts the forwarder's 'end' and 'done' events. */
function events(f: Forwarder): { end: number; done: number } {
  const n = { end: 0, done: 0 };
  f.on('end', () => n.end++);
  f.on('done', () => n.done++);
  return n;
}

test('auto: random chunks both ways are byte-exact; each bulk direction switches to splice; counters add up; end/done once', { skip: spliceSkip }, async () => {
  const p = await maioPair();
  const pool = () => defaultPool().stats();
  const before = pool();
  const relay = forwardBoth(p.a, p.b, { mode: 'auto', spliceAfterBytes: MiB });
  const errors: Error[] = [];
  relay.on('error', (e) => errors.push(e));
  const evA = events(relay.aToB);
  const evB = events(relay.bToA);
  assert.equal(relay.aToB.mode, 'buffers', 'starts on buffers');
  const atU = receive(p.U);
  const atC = receive(p.C);
  const [sentCU, sentUC] = await Promise.all([sendChunks(p.C, BYTES, 11), sendChunks(p.U, BYTES + 777, 12)]);
  const [gotU, gotC] = await Promise.all([atU, atC]);
  assert.equal(gotU.bytes, BYTES);
  assert.equal(gotU.digest, sentCU);
  assert.equal(gotC.bytes, BYTES + 777);
  assert.equal(gotC.digest, sentUC);
  assert.deepEqual(await relay.finished, [BYTES, BYTES + 777]);
  assert.deepEqual(errors, []);
  for (const f of [relay.aToB, relay.bToA]) {
    const s = f.stats();
    assert.equal(s.requested, 'auto');
    assert.equal(s.mode, 'splice', 'switched to splice');
    assert.equal(f.mode, 'splice');
    assert.equal(s.switched, true);
    assert.ok(s.bytesBeforeSwitch >= MiB && s.bytesBeforeSwitch < s.bytes, `switched after ${s.bytesBeforeSwitch} of ${s.bytes}`);
  }
  await until(() => p.a.destroyed && p.b.destroyed, 'both maio sockets to close after both ends');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(evA, { end: 1, done: 1 });
  assert.deepEqual(evB, { end: 1, done: 1 });
  await until(() => pool().inUse <= before.inUse && pool().lent <= before.lent, 'pool back to its start (no buffer lost in the switch)');
  p.close();
});

test("auto: the switch waits on the sockets' signals (receive stopped, sends drained), never on setImmediate polling", { skip: spliceSkip }, async () => {
  const p = await maioPair();
  const [, immediates] = await countImmediates(async () => {
    const f = forward(p.a, p.b, { mode: 'auto', spliceAfterBytes: 256 * 1024 });
    const atU = receive(p.U);
    p.C.write(Buffer.alloc(2 * MiB, 5));
    await until(() => f.mode === 'splice', 'a -> b switched to splice');
    p.C.end('tail');
    assert.equal((await atU).bytes, 2 * MiB + 4);
    assert.equal(await f.finished(), 2 * MiB + 4);
  });
  assert.equal(immediates, 0);
  p.close();
});

test('auto: half-close after the switch is forwarded; the other direction keeps working', { skip: spliceSkip }, async () => {
  const p = await maioPair();
  const relay = forwardBoth(p.a, p.b, { mode: 'auto', spliceAfterBytes: 256 * 1024 });
  const ev = events(relay.aToB);
  const atU = receive(p.U);
  p.C.write(Buffer.alloc(2 * MiB, 7));
  await until(() => relay.aToB.mode === 'splice', 'a -> b switched to splice');
  p.C.write('after the switch');
  p.C.end('tail');
  const got = await atU;
  assert.equal(got.bytes, 2 * MiB + 16 + 4);
  assert.equal(await relay.aToB.finished(), 2 * MiB + 20);
  assert.equal(relay.bToA.done, false, 'the other direction is still open');
  assert.equal(relay.bToA.mode, 'buffers', 'a direction that carried nothing did not switch');
  const atC = receive(p.C);
  p.U.end('late reply');
  assert.equal((await atC).bytes, 10);
  assert.deepEqual(await relay.finished, [2 * MiB + 20, 10]);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(ev, { end: 1, done: 1 });
  p.close();
});

test('auto: a reset after the switch destroys both sockets; one error, done once', { skip: spliceSkip }, async () => {
  const p = await maioPair();
  p.C.on('error', () => {});
  p.U.on('error', () => {});
  const relay = forwardBoth(p.a, p.b, { mode: 'auto', spliceAfterBytes: 256 * 1024 });
  const ev = events(relay.aToB);
  const errs: Error[] = [];
  relay.on('error', (e) => errs.push(e));
  p.U.resume();
  const uEnded = once(p.U, 'end'); // U is half-open capable: it sees the close as an 'end'
  p.C.write(Buffer.alloc(2 * MiB, 1));
  await until(() => relay.aToB.mode === 'splice', 'a -> b switched to splice');
  await until(() => relay.aToB.bytes === 2 * MiB, 'all bytes forwarded');
  p.C.resetAndDestroy();
  await assert.rejects(relay.finished, (e: any) => {
    assert.ok(['ECONNRESET', 'EPIPE'].includes(e.code), `${e.code}: ${e.message}`);
    assert.equal(typeof e.errno, 'number');
    return true;
  });
  await uEnded;
  await until(() => p.a.destroyed && p.b.destroyed, 'both sockets destroyed');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(errs.length, 1, 'one error on the relay');
  assert.deepEqual(ev, { end: 0, done: 1 });
  assert.equal(relay.aToB.stats().bytes, 2 * MiB);
  p.close();
});

test('auto: a small, then idle connection never switches (default threshold)', { skip: spliceSkip }, async () => {
  const p = await maioPair();
  const relay = forwardBoth(p.a, p.b);
  const atU = receive(p.U);
  const atC = receive(p.C);
  for (let i = 0; i < 20; i++) {
    p.C.write('x'.repeat(1000));
    p.U.write('y'.repeat(500));
  }
  await until(() => relay.aToB.bytes === 20000 && relay.bToA.bytes === 10000, 'small exchange forwarded');
  await new Promise((r) => setTimeout(r, 200)); // idle
  for (const f of [relay.aToB, relay.bToA]) {
    assert.equal(f.mode, 'buffers');
    assert.equal(f.stats().switched, false);
    assert.equal(f.stats().requested, 'auto');
  }
  p.C.end();
  p.U.end();
  assert.equal((await atU).bytes, 20000);
  assert.equal((await atC).bytes, 10000);
  assert.deepEqual(await relay.finished, [20000, 10000]);
  p.close();
});

test('auto stays on buffers on epoll (any threshold) and with spliceAfterBytes 0 or Infinity', { skip: bufferSkip }, async () => {
  const epoll = backend().mode !== 'io_uring';
  for (const after of epoll ? [1, 0] : [0, Infinity]) {
    const p = await maioPair();
    const fwd = forward(p.a, p.b, { spliceAfterBytes: after });
    const atU = receive(p.U);
    const digest = await sendChunks(p.C, 4 * MiB, 5);
    const got = await atU;
    assert.equal(got.bytes, 4 * MiB);
    assert.equal(got.digest, digest);
    assert.equal(await fwd.finished(), 4 * MiB);
    assert.equal(fwd.mode, 'buffers');
    assert.equal(fwd.stats().switched, false);
    p.close();
  }
});

test('spliceAfterBytes is validated', { skip: bufferSkip }, async () => {
  const p = await maioPair();
  for (const bad of [-1, 1.5, NaN, '8' as any]) {
    assert.throws(() => forward(p.a, p.b, { spliceAfterBytes: bad }), OutOfRangeError);
  }
  p.close();
});
