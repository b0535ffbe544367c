// The adaptive zero-copy policy on its own, driven by scripted notifications.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ZeroCopyPolicy } from '../../src/net/zc-policy';

const BIG = 64 * 1024;

/** Issues `n` sends of `len`, returning how many went zero-copy. */
function sends(p: ZeroCopyPolicy, n: number, len = BIG): number {
  let zc = 0;
  for (let i = 0; i < n; i++) if (p.useZeroCopy(len)) zc++;
  return zc;
}

test('auto: copied notifications switch the socket to plain sends, and stats say why', () => {
  const p = new ZeroCopyPolicy({ probeSends: 4, reprobeAfter: 100 });
  assert.equal(p.state, 'probing');
  assert.equal(sends(p, 10), 4, 'only the probe sends go zero-copy while notifications are due');
  for (let i = 0; i < 4; i++) p.onNotification(BIG, true);
  const s = p.stats();
  assert.equal(s.state, 'plain');
  assert.match(s.reason, /copied 4 of 4/);
  assert.equal(s.copiedSends, 4);
  assert.equal(s.copiedBytes, 4 * BIG);
  assert.equal(s.zcSends, 4);
  assert.equal(s.plainSends, 6);
  assert.equal(sends(p, 50), 0);
});

test('auto: sends the kernel did not copy keep the socket zero-copy above the threshold', () => {
  const p = new ZeroCopyPolicy({ probeSends: 4, minBytes: 16384 });
  assert.equal(sends(p, 4), 4);
  for (let i = 0; i < 4; i++) p.onNotification(BIG, false);
  assert.equal(p.state, 'zero-copy');
  assert.equal(sends(p, 20), 20);
  assert.equal(sends(p, 20, 1000), 0, 'small sends stay plain');
  assert.equal(p.stats().notCopiedSends, 4);
});

test('auto: a zero-copy socket whose route starts copying falls back to plain', () => {
  const p = new ZeroCopyPolicy({ probeSends: 4 });
  sends(p, 4);
  for (let i = 0; i < 4; i++) p.onNotification(BIG, false);
  assert.equal(p.state, 'zero-copy');
  sends(p, 4);
  for (let i = 0; i < 4; i++) p.onNotification(BIG, i !== 0);
  assert.equal(p.state, 'plain');
  assert.equal(p.stats().switches, 2);
});

test('auto: plain mode probes again after reprobeAfter eligible sends', () => {
  const p = new ZeroCopyPolicy({ probeSends: 2, reprobeAfter: 10 });
  sends(p, 2);
  p.onNotification(BIG, true);
  p.onNotification(BIG, true);
  assert.equal(p.state, 'plain');
  assert.equal(sends(p, 9), 0);
  assert.equal(sends(p, 1), 1, 'the 10th eligible send is a probe');
  assert.equal(p.state, 'probing');
  assert.match(p.stats().reason, /again/);
  p.onNotification(BIG, false);
  p.onNotification(BIG, false);
  assert.equal(p.state, 'zero-copy');
});

test('forced modes ignore notifications', () => {
  const always = new ZeroCopyPolicy({ mode: 'always' });
  assert.equal(sends(always, 5, 10), 5);
  for (let i = 0; i < 20; i++) always.onNotification(10, true);
  assert.equal(always.state, 'forced-zero-copy');
  const never = new ZeroCopyPolicy({ mode: 'never' });
  assert.equal(sends(never, 5), 0);
  assert.equal(never.state, 'forced-plain');
});

test('wouldUseZeroCopy answers as the next useZeroCopy would, without counting or changing state', () => {
  const p = new ZeroCopyPolicy({ probeSends: 2, reprobeAfter: 3 });
  const script: [number, boolean | null][] = [
    // [length, then a notification for the send (copied?) or none]
    [100, null], [BIG, null], [BIG, null], [BIG, null], [BIG, true], [BIG, true],
    [BIG, null], [BIG, null], [BIG, null], [BIG, null], [100, null],
  ];
  const zcSends: number[] = [];
  for (const [len, copied] of script) {
    const before = p.stats();
    const predicted = p.wouldUseZeroCopy(len);
    assert.deepEqual(p.stats(), before, 'asking changes nothing');
    assert.equal(p.useZeroCopy(len), predicted, `${len} bytes in state ${before.state}`);
    if (predicted) zcSends.push(len);
    // The notifications of the sends made so far, as the script says.
    if (copied !== null) p.onNotification(BIG, copied);
  }
  assert.ok(zcSends.length >= 3, 'the script went through probing, plain and a re-probe');
  assert.equal(new ZeroCopyPolicy({ mode: 'always' }).wouldUseZeroCopy(1), true);
  assert.equal(new ZeroCopyPolicy({ mode: 'never' }).wouldUseZeroCopy(BIG), false);
});
