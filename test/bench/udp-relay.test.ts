// The udp-relay scenario in the harness: its figures from the receiver's window and the sender's
// totals; its contenders (direct, the ceiling, is no goal reference); a tiny real run through
// each relay and direct; and a relay that dies mid-run, which must fail the sample with its own
// output and leave nothing running. No speed assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ccSkip, tinyRun, withBuiltTools } from './helpers';
import { contenderById } from '../../bench/contenders';
import { measureOnce } from '../../bench/lib/measure';
import { BenchProcessError, pidAlive, startedPids } from '../../bench/lib/proc';
import { relayFigures } from '../../bench/lib/udp-relay';
import type { Contender } from '../../bench/lib/types';
import { scenarios } from '../../bench/scenarios/index';
import { scenario as udpRelay } from '../../bench/scenarios/udp-relay';


test('relayFigures: delivered in the window, loss over the whole run; nothing delivered or more than sent is refused', () => {
  const r = { datagrams: 1_000_000, bytes: 1_400_000_000, seconds: 2, total_datagrams: 1_500_000, total_bytes: 2_100_000_000 };
  const f = relayFigures(r, { datagrams: 2_000_000, bytes: 2_800_000_000 }, '');
  assert.equal(f.dps, 500_000);
  assert.equal(f.gbps, 5.6);
  assert.equal(f.windowGB, 1.4);
  assert.equal(f.loss, 0.25);
  assert.deepEqual([f.sent, f.received], [2_000_000, 1_500_000]);
  assert.throws(() => relayFigures(r, { datagrams: 1_000_000, bytes: 0 }, ''), /counts are wrong/);
  assert.throws(() => relayFigures({ ...r, datagrams: 0, bytes: 0 }, { datagrams: 2_000_000, bytes: 0 }, ''), /datagrams\/s delivered is 0/);
  assert.throws(() => relayFigures({ ...r, seconds: 0 }, { datagrams: 2_000_000, bytes: 0 }, ''), /window is 0 s/);
});

test('udp-relay: registered; maio and both node relays have a relay command, direct has none and is no goal reference', () => {
  assert.ok(scenarios.includes(udpRelay));
  for (const id of ['maio', 'node', 'node-b']) assert.ok(contenderById(id).cmd[udpRelay.role], id);
  assert.equal(contenderById('direct').cmd[udpRelay.role], undefined);
  assert.ok(udpRelay.contenders.includes('direct'));
  for (const g of udpRelay.goals) assert.ok(!g.refs.includes('direct'), g.label);
  assert.deepEqual(udpRelay.goals.map((g) => [g.refs, g.factor]), [[['node'], 3]]);
});


const skip = ccSkip;

test('udp-relay on a tiny run: datagrams delivered through each relay and direct, relay CPU measured, nothing left running', { skip, timeout: 60000 }, async () => {
  await withBuiltTools('maio-bench-relay-', async (env, dir) => {
    const ids = [...(existsSync(env.maioCli) ? ['maio'] : []), 'node', 'direct'];
    const out = await tinyRun({ ...udpRelay, contenders: ids, control: ['node', 'node'] }, env, dir);
    for (const c of out.result.scenarios[0].contenders) {
      assert.equal(c.status, 'ok', `${c.id}: ${c.reason ?? ''} ${c.errors.join('; ')}`);
      const s = c.samples[0];
      const raw = s.raw as Record<string, number>;
      assert.ok(raw.sent > 0 && raw.received > 0 && raw.received <= raw.sent, `${c.id}: ${JSON.stringify(raw)}`);
      assert.ok(raw.loss >= 0 && raw.loss < 1);
      assert.ok(s.value > 0);
      if (c.id === 'direct') assert.equal(s.cpuPerUnit, undefined, 'no relay, no relay CPU');
      else assert.ok(s.cpuPerUnit! > 0, `${c.id}: relay CPU ${s.cpuPerUnit}`);
    }
  });
});

test('udp-relay: a relay that dies mid-run fails the sample with its output, and every process is gone', { skip, timeout: 30000 }, async () => {
  await withBuiltTools('maio-bench-relay-', async (env, dir) => {
    // Binds, says it listens, passes nothing on, and exits with code 3 after 300 ms.
    const js =
      "const s=require('dgram').createSocket('udp4');s.bind(0,'127.0.0.1',()=>console.log('listening '+s.address().port));" +
      "setTimeout(()=>{console.error('relay gave up on purpose');process.exit(3)},300)";
    const dying: Contender = { id: 'dying', label: 'dying relay', family: 'node', unavailable: () => null, cmd: { 'udp-relay': () => [process.execPath, '-e', js] } };
    const before = startedPids.length;
    await assert.rejects(
      measureOnce({ env, timing: { rounds: 1, warmup: 0.2, duration: 0.5 }, scenario: udpRelay, round: 0 }, dying),
      (err: unknown) => err instanceof BenchProcessError && /dying relay exited \(code 3\)/.test(err.message) && /gave up on purpose/.test(err.message),
    );
    const started = startedPids.slice(before);
    assert.equal(started.length, 3, 'receiver, relay and sender');
    for (const pid of started) assert.equal(pidAlive(pid), false, `pid ${pid} is still alive`);
  });
});
