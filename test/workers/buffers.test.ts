/**
 * Pool buffers never cross threads: maio's worker messages refuse an IoBuffer
 * or a view of pool memory (BufferCrossThreadError) both ways; a raw
 * structured clone of an IoBuffer gives a plain object that reaches no
 * memory; a pool region in a postMessage transfer list is copied, never
 * detached from this thread's pool.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { BufferCrossThreadError, IoBuffer, createPool, defaultPool, startWorkers } from '../../src/index';
import { bounded, netSkip } from '../net/helpers';
import { ECHO_WORKER } from './helpers';

test('group and worker messages refuse pool memory with BufferCrossThreadError; copies pass', { skip: netSkip }, async () => {
  const group = await startWorkers({ module: ECHO_WORKER, count: 1 });
  const buf = defaultPool().alloc(64);
  try {
    const w = group.workers[0]!;
    for (const bad of [buf, [buf], { a: { b: buf } }, buf.bytes, new Map([['k', buf]])]) {
      assert.throws(() => w.send(bad), BufferCrossThreadError);
      assert.throws(() => group.broadcast(bad), BufferCrossThreadError);
    }
    const reply = once(group, 'message');
    w.send('send-buffer');
    const [, msg] = (await bounded(reply, 'the reply', 10_000)) as [unknown, { codes: string[] }];
    assert.deepEqual(msg.codes, ['ERR_MAIO_BUFFER_CROSS_THREAD', 'ERR_MAIO_BUFFER_CROSS_THREAD', 'ERR_MAIO_BUFFER_CROSS_THREAD']);
    // A copy of the bytes is an ordinary message.
    buf.bytes.fill(9);
    const echoed = once(group, 'message');
    w.send('hi');
    await bounded(echoed, 'the answer', 10_000);
    assert.doesNotThrow(() => w.send(Buffer.from(buf.bytes)));
  } finally {
    buf.release();
    await group.stop({ timeout: 5000 });
  }
});

test('structured clone of an IoBuffer is a plain object without memory; a transferred region stays with its pool', async () => {
  const pool = createPool({ size: 1 << 20 });
  const buf = pool.alloc(64);
  buf.bytes.fill(7);
  const clone = structuredClone(buf) as unknown as Record<string, unknown>;
  assert.ok(!(clone instanceof IoBuffer));
  assert.equal(clone.bytes, undefined);
  assert.equal(typeof clone.release, 'undefined');
  // Listed for transfer, the pool's region is copied instead: ours is not detached.
  const { port1, port2 } = new MessageChannel();
  const got = once(port2, 'message');
  port1.postMessage(buf.bytes, [buf.bytes.buffer as ArrayBuffer]);
  const [copy] = (await got) as [Uint8Array];
  port1.close();
  assert.equal(buf.bytes.length, 64);
  assert.equal(buf.bytes[0], 7);
  copy[0] = 1; // the receiver's copy is its own memory
  assert.equal(buf.bytes[0], 7);
  const other = pool.alloc(64);
  other.bytes[0] = 5;
  assert.equal(other.bytes[0], 5);
  other.release();
  buf.release();
  // Strict views too.
  const strict = createPool({ size: 1 << 20, strict: true });
  const s = strict.alloc(64);
  s.bytes[0] = 3;
  const { port1: a, port2: b } = new MessageChannel();
  const got2 = once(b, 'message');
  a.postMessage(s.bytes, [s.bytes.buffer as ArrayBuffer]);
  await got2;
  a.close();
  assert.equal(s.bytes[0], 3);
  s.release();
  pool.close();
  strict.close();
});
