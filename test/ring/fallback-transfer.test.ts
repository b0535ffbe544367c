/**
 * 64 MiB through the epoll engine, checksummed: plain and zero-copy sends of
 * 1 MiB chunks on one side, a multishot recv with a recycled buffer group on
 * the other, as the socket layer will run them.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { CQE_F_BUFFER, CQE_F_MORE, CQE_F_NOTIF, native } from '../../src/core/native';
import { backend } from '../../src/backend';
import { currentRing } from '../../src/ring/current';
import type { CompletionTarget } from '../../src/ring/ring';
import { ENOBUFS, socketPair, until } from './helpers';

const TOTAL = 64 << 20;
const CHUNK = 1 << 20;
const BUFS = 16;
const BUF = 64 << 10;
const GROUP = 3;

// io_uring may complete a 1 MiB SEND short (a normal result the socket layer resends);
// the epoll engine completes a send whole (MSG_WAITALL semantics), which this test relies on.
const skip = backend().mode === 'epoll' ? false : 'sends that complete whole are the epoll engine\'s (io_uring may complete a SEND short)';

test('64 MiB checksummed through the epoll engine (SEND + SEND_ZC -> multishot recv)', { skip }, async () => {
  const ring = currentRing();
  const n = native();
  // [0, CHUNK): the sender's chunk; then BUFS receive buffers.
  const pool = n.poolCreate({ size: 4 << 20 });
  const { index } = ring.attachPool(pool.handle);
  const bytes = new Uint8Array(pool.region);
  const s = await socketPair();
  const sent = createHash('sha256');
  const received = createHash('sha256');
  let sentBytes = 0;
  let receivedBytes = 0;
  let zcSends = 0;
  let notifications = 0;
  let rearms = 0;
  let recvId = -1;
  let recvDone = false;
  let failure: string | null = null;
  const provideFailures: number[] = [];

  const sender: CompletionTarget & { next(): void } = {
    next() {
      if (sentBytes === TOTAL) return;
      const chunk = bytes.subarray(0, CHUNK);
      randomFillSync(chunk);
      sent.update(chunk);
      // Every other chunk zero-copy: the buffer is reused only after its notification.
      if ((sentBytes / CHUNK) % 2 === 1) {
        zcSends++;
        ring.sendZc(sender, s.a, index, 0, CHUNK);
      } else {
        ring.send(sender, s.a, index, 0, CHUNK);
      }
    },
    onCompletion(_id, res, flags) {
      if (flags & CQE_F_NOTIF) {
        notifications++;
        this.next();
        return;
      }
      if (res !== CHUNK) failure = `send completed with ${res}`;
      sentBytes += CHUNK;
      if (!(flags & CQE_F_MORE)) this.next();
    },
  };

  const receiver: CompletionTarget = {
    onCompletion(_id, res, flags) {
      if (res > 0) {
        assert.ok(flags & CQE_F_BUFFER);
        const bid = flags >>> 16;
        const off = CHUNK + bid * BUF;
        received.update(bytes.subarray(off, off + res));
        receivedBytes += res;
        ring.provide(index, off, BUF, GROUP, bid);
      } else if (res !== ENOBUFS) {
        if (receivedBytes !== TOTAL) failure = `recv ended with ${res} after ${receivedBytes} bytes`;
      }
      if (flags & CQE_F_MORE) return;
      recvDone = true;
      // The group ran dry (the kernel ends the multishot the same way): re-arm.
      if ((res > 0 || res === ENOBUFS) && receivedBytes < TOTAL) {
        rearms++;
        recvDone = false;
        recvId = ring.recvMulti(receiver, s.b, GROUP);
      }
    },
  };

  ring.registerBufRing(GROUP, BUFS, { onProvideFailed: (bid) => provideFailures.push(bid) });
  try {
    for (let bid = 0; bid < BUFS; bid++) ring.provide(index, CHUNK + bid * BUF, BUF, GROUP, bid);
    recvId = ring.recvMulti(receiver, s.b, GROUP);
    sender.next();
    await until(() => failure !== null || (receivedBytes === TOTAL && sentBytes === TOTAL && notifications === zcSends), '64 MiB');
    assert.equal(failure, null);
    assert.deepEqual(provideFailures, []);
    assert.equal(receivedBytes, TOTAL);
    assert.equal(received.digest('hex'), sent.digest('hex'));
    assert.equal(zcSends, 32);
    assert.equal(notifications, 32);
    const st = ring.stats();
    assert.ok(st.reapBatches > 0 && st.completed >= 64 + TOTAL / BUF);
    // Multishot: far fewer arms than buffers received.
    assert.ok(rearms < TOTAL / BUF, `re-armed ${rearms} times`);
    // The multishot recv is still armed: cancel it before the socket goes.
    if (!recvDone) assert.equal(ring.cancel(recvId), true);
    await until(() => recvDone, 'the recv ended');
  } finally {
    ring.unregisterBufRing(GROUP);
    s.close();
    ring.detachPool(index);
    n.poolClose(pool.handle);
  }
  await until(() => ring.pending === 0, 'all ops done');
});
