// The UDP scenarios and the worker scenarios in the harness: every scenario's contenders exist
// and can play its role; the totals parser and the loss check on the programs' real output
// format; the loss and anomaly-factor flags; and a tiny real UDP run of each side, with nothing
// left running. No speed assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ccSkip, tinyRun, withBuiltTools } from './helpers';
import { detectEnv, findRoot } from '../../bench/run';
import { contenderById } from '../../bench/contenders';
import { rolesNeeded } from '../../bench/lib/measure';
import { BenchProcessError, pidAlive, startedPids } from '../../bench/lib/proc';
import { flagAnomalies } from '../../bench/lib/stats';
import { lossOf, parseTotals, runUdpRecv } from '../../bench/lib/udp';
import { deleteVeth, makeVeth, vethProblem } from '../../bench/lib/netns';
import type { Contender, ContenderResult, Scenario } from '../../bench/lib/types';
import { scenarios } from '../../bench/scenarios/index';
import { scenario as udpRecv } from '../../bench/scenarios/udp-recv';
import { scenario as udpSend } from '../../bench/scenarios/udp-send';
import { scenario as udpRecv2m } from '../../bench/scenarios/udp-recv-2m';
import { scenario as udpRecvVeth } from '../../bench/scenarios/udp-recv-veth';

const root = findRoot(__dirname);

test('every scenario: unique id, known contenders that can play its role, peer and control among them', () => {
  const ids = scenarios.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ['udp-recv', 'udp-send', 'udp-recv-2m', 'proxy-2w', 'echo-64b-1000c-scale', 'echo-64b-1000c-2w']) assert.ok(ids.includes(id), id);
  for (const s of scenarios) {
    for (const id of [s.peer, ...s.control]) assert.ok(s.contenders.includes(id), `${s.id}: ${id} is not a contender`);
    for (const id of s.contenders) {
      const c = contenderById(id);
      for (const role of rolesNeeded(s)) assert.ok(c.cmd[role], `${s.id}: ${id} has no ${role} command`);
    }
  }
});

test('parseTotals reads the last totals line of every UDP program; lossOf refuses more received than sent', () => {
  const maio = 'maio udp-blast: 1543744 datagrams, 2161241600 bytes in 2.02 s (764230 datagrams/s, 8.56 Gbit/s); gso batches 35085 (gso on), errors 0';
  assert.deepEqual(parseTotals(maio), { datagrams: 1543744, bytes: 2161241600, seconds: 2.02 });
  assert.deepEqual(parseTotals('phase done\nnode dgram sink: 10 datagrams, 14000 bytes in 0.500 s\n'), { datagrams: 10, bytes: 14000, seconds: 0.5 });
  assert.deepEqual(parseTotals('udp_recv: 5 datagrams, 7000 bytes'), { datagrams: 5, bytes: 7000 });
  assert.equal(parseTotals('maio udp-sink: bind failed'), null);
  assert.equal(lossOf({ datagrams: 100, bytes: 0 }, { datagrams: 75, bytes: 0 }, ''), 0.25);
  assert.throws(() => lossOf({ datagrams: 10, bytes: 0 }, { datagrams: 11, bytes: 0 }, ''), /counts are wrong/);
  assert.throws(() => lossOf({ datagrams: 0, bytes: 0 }, { datagrams: 0, bytes: 0 }, ''), /sent nothing/);
});

function result(id: string, median: number, loss: number): ContenderResult {
  return {
    id,
    label: id,
    status: 'ok',
    errors: [],
    value: { median, min: median, max: median },
    samples: [{ round: 0, value: median, raw: { loss } }],
  };
}

test('UDP flags: a sender whose datagrams mostly never arrived is an anomaly; a GRO receiver 50x a per-datagram one is not', () => {
  const send = [result('maio', 800000, 0.95), result('node', 90000, 0), result('c', 200000, 0.1)];
  flagAnomalies(send, udpSend);
  assert.deepEqual(send.filter((r) => r.anomaly).map((r) => r.id), ['maio']);
  assert.match(send[0].anomaly!, /median loss 95/);
  const recv = [result('maio', 1000000, 0.6), result('node', 50000, 0.9), result('c-seg', 2500000, 0.3)];
  flagAnomalies(recv, udpRecv);
  assert.deepEqual(recv.filter((r) => r.anomaly).map((r) => r.id), [], 'loss is the receiver\'s own result here');
  const broken = [result('maio', 10000, 0.99), result('c-seg', 2500000, 0.3)];
  flagAnomalies(broken, udpRecv);
  assert.deepEqual(broken.filter((r) => r.anomaly).map((r) => r.id), ['maio'], '250x apart is still broken');
});


test('udp-recv (loopback, paced, veth) and udp-send on a tiny run: counted at both ends, the receive window from SIGUSR2 totals, nothing left running', { skip: ccSkip, timeout: 90000 }, async () => {
  await withBuiltTools('maio-bench-udp-', async (env, dir) => {
    const ids = [...(existsSync(env.maioCli) ? ['maio'] : []), 'c', 'c-seg'];
    // paced well under what any receiver here takes; veth: the receivers run under `ip netns exec`
    const paced: Scenario = { ...udpRecv2m, rate: 200000 };
    const runs: Array<[Scenario, string[]]> = [
      [udpRecv, ids],
      [udpSend, ids],
      [paced, ['c-seg']],
      ...(vethProblem(env.ip) ? [] : [[udpRecvVeth, [ids[0]]] as [Scenario, string[]]]),
    ];
    for (const [s, only] of runs) {
      const scenario: Scenario = { ...s, contenders: only, peer: only[0], control: [only[0], only[0]] };
      const out = await tinyRun(scenario, env, dir);
      for (const c of out.result.scenarios[0].contenders) {
        assert.equal(c.status, 'ok', `${s.id}/${c.id}: ${c.reason ?? ''} ${c.errors.join('; ')}`);
        assert.equal(c.errors.length, 0, `${s.id}/${c.id}: ${c.errors.join('; ')}`);
        const raw = c.samples[0].raw as Record<string, number>;
        assert.ok(raw.sent > 0 && raw.received > 0 && raw.received <= raw.sent, `${s.id}/${c.id}: ${JSON.stringify(raw)}`);
        assert.ok(c.samples[0].value > 0 && c.samples[0].cpuPerUnit! > 0);
        if (s === udpSend) {
          assert.ok(raw.loss >= 0 && raw.loss < 1);
          continue;
        }
        // udp-recv: the window's count came from the receiver's running totals (SIGUSR2) at the
        // sender's window edges: a part of the whole run, over the sender's window seconds.
        assert.ok(raw.lossWhole >= 0 && raw.lossWhole < 1, JSON.stringify(raw));
        assert.ok(raw.windowReceived > 0 && raw.windowReceived < raw.received, JSON.stringify(raw));
        assert.ok(raw.windowSent > 0 && raw.windowSent < raw.sent, JSON.stringify(raw));
        assert.ok(raw.loss < 1, JSON.stringify(raw));
        assert.equal(c.samples[0].value, raw.windowReceived / raw.windowSeconds);
        if (s === paced) assert.ok(raw.sentDps <= 200000 * 1.05 && raw.rate === 200000, `--rate paces the sender: ${JSON.stringify(raw)}`);
      }
    }
  });
});

test('a receiver that does not print its totals on SIGUSR2 fails the sample with a BenchProcessError, nothing left running', { skip: ccSkip, timeout: 30000 }, async () => {
  await withBuiltTools('maio-bench-udp-', async (env, dir) => {
    // a node:dgram sink without a SIGUSR2 handler: the signal's default action ends it
    const deafJs = `const s=require('dgram').createSocket('udp4');s.on('message',()=>{});s.bind(0,process.argv[1],()=>console.log('listening '+s.address().port))`;
    const deaf: Contender = {
      id: 'deaf',
      label: 'deaf sink',
      family: 'node',
      unavailable: () => null,
      cmd: { 'udp-sink': (_env, p) => [process.execPath, '-e', deafJs, p.host] },
    };
    const before = startedPids.length;
    const ctx = { env, timing: { rounds: 1, warmup: 0.2, duration: 0.3 }, scenario: udpRecv, round: 0 };
    await assert.rejects(runUdpRecv(ctx, deaf), (err: Error) => {
      assert.ok(err instanceof BenchProcessError, String(err));
      assert.match(err.message, /deaf exited .* instead of printing its running totals on SIGUSR2/);
      return true;
    });
    for (const pid of startedPids.slice(before)) assert.equal(pidAlive(pid), false, `pid ${pid} is still alive`);
  });
});

test('makeVeth: two namespaces joined by a veth pair that carries a datagram; deleteVeth removes both', { skip: vethProblem(detectEnv(root).ip) ?? false, timeout: 20000 }, async () => {
  const ip = detectEnv(root).ip!;
  const pair = makeVeth(ip);
  try {
    const list = execFileSync(ip, ['netns', 'list'], { encoding: 'utf8' });
    assert.ok(list.includes(pair.a.ns) && list.includes(pair.b.ns), list);
    // a datagram from namespace a reaches a socket bound in namespace b
    const recvJs = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log('got '+m);process.exit(0)});s.bind(0,'${pair.b.addr}',()=>console.log('port '+s.address().port));setTimeout(()=>process.exit(3),10000)`;
    const recv = spawn(ip, ['netns', 'exec', pair.b.ns, process.execPath, '-e', recvJs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    recv.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => recv.on('exit', resolve));
    while (!/port (\d+)/.test(out)) await new Promise((r) => setTimeout(r, 20));
    const port = /port (\d+)/.exec(out)![1];
    const sendJs = `const s=require('dgram').createSocket('udp4');s.send('over veth',${port},'${pair.b.addr}',()=>s.close())`;
    execFileSync(ip, ['netns', 'exec', pair.a.ns, process.execPath, '-e', sendJs]);
    assert.equal(await exited, 0);
    assert.match(out, /got over veth/);
  } finally {
    deleteVeth(ip, pair);
  }
  const after = execFileSync(ip, ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!after.includes(pair.a.ns) && !after.includes(pair.b.ns), after);
});
