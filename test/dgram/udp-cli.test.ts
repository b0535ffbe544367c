/** maio udp-sink / udp-blast: datagrams move from one process to another, both report and exit cleanly. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { netSkip as skip } from '../net/helpers';
import { startCli as start } from '../net/child';

for (const gso of [1, 0]) {
  test(`maio udp-blast --count to maio udp-sink (gso ${gso}): every datagram sent, the sink counts what arrived`, { skip, timeout: 30000 }, async () => {
    const sink = start(['udp-sink', '--port', '0']);
    const port = Number(/^listening (\d+)$/.exec(await sink.line)![1]);
    const blast = start(['udp-blast', '--port', String(port), '--count', '2000', '--duration', '0', '--gso', String(gso), '--size', '1200']);
    const [code] = (await once(blast.child, 'exit')) as [number];
    assert.equal(code, 0, blast.err());
    const sent = /udp-blast: (\d+) datagrams, (\d+) bytes/.exec(blast.err());
    assert.ok(sent, blast.err());
    assert.equal(Number(sent[1]), 2000);
    assert.equal(Number(sent[2]), 2000 * 1200);
    if (gso) assert.match(blast.err(), /gso batches [1-9]/);
    await new Promise((r) => setTimeout(r, 200));
    const exited = once(sink.child, 'exit');
    sink.child.kill('SIGTERM');
    const [sinkCode] = (await exited) as [number];
    assert.equal(sinkCode, 0, sink.err());
    const got = /udp-sink: (\d+) datagrams, (\d+) bytes/.exec(sink.err());
    assert.ok(got, sink.err());
    // Loopback may drop a burst when the sink's socket buffer is full: counted, not assumed away.
    assert.ok(Number(got[1]) > 0 && Number(got[1]) <= 2000, sink.err());
    assert.equal(Number(got[2]), Number(got[1]) * 1200);
  });
}

test('maio udp-blast --zerocopy always: every batch goes zero-copy and the end line says the kernel copied them (loopback)', { skip, timeout: 30000 }, async () => {
  const sink = start(['udp-sink', '--port', '0']);
  const port = Number(/^listening (\d+)$/.exec(await sink.line)![1]);
  const blast = start(['udp-blast', '--port', String(port), '--count', '2000', '--duration', '0', '--size', '1200', '--zerocopy', 'always']);
  const [code] = (await once(blast.child, 'exit')) as [number];
  assert.equal(code, 0, blast.err());
  assert.match(blast.err(), /udp-blast: 2000 datagrams/);
  const zc = /zero-copy forced-zero-copy: .*; (\d+) zero-copy sends, (\d+) reported not copied, (\d+) copied/.exec(blast.err());
  assert.ok(zc, blast.err());
  assert.ok(Number(zc[1]) > 0);
  assert.equal(Number(zc[3]), Number(zc[1]), 'local delivery copies every one');
  const exited = once(sink.child, 'exit');
  sink.child.kill('SIGTERM');
  await exited;
  const bad = start(['udp-blast', '--port', String(port), '--zerocopy', 'yes']);
  const [badCode] = (await once(bad.child, 'exit')) as [number];
  assert.notEqual(badCode, 0);
  assert.match(bad.err(), /--zerocopy must be auto, always or never/);
});

/** Resolves with the `n`th (from 1) totals line maio udp-sink printed on stderr, polling its output. */
async function totalsLine(sink: ReturnType<typeof start>, n: number): Promise<{ datagrams: number; bytes: number }> {
  for (;;) {
    const all = [...sink.err().matchAll(/udp-sink: (\d+) datagrams, (\d+) bytes in [\d.]+ s/g)];
    if (all.length >= n) return { datagrams: Number(all[n - 1]![1]), bytes: Number(all[n - 1]![2]) };
    if (sink.child.exitCode !== null) throw new Error(`udp-sink exited (${sink.child.exitCode}) with ${all.length} totals lines: ${sink.err()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function blastCount(port: number, count: number): Promise<void> {
  const blast = start(['udp-blast', '--port', String(port), '--count', String(count), '--duration', '0', '--size', '1200']);
  const [code] = (await once(blast.child, 'exit')) as [number];
  assert.equal(code, 0, blast.err());
}

test('maio udp-sink on SIGUSR2: prints its running totals in the end line\'s format and keeps receiving', { skip, timeout: 30000 }, async () => {
  const sink = start(['udp-sink', '--port', '0']);
  const port = Number(/^listening (\d+)$/.exec(await sink.line)![1]);
  await blastCount(port, 1000);
  await new Promise((r) => setTimeout(r, 200));
  sink.child.kill('SIGUSR2');
  const first = await totalsLine(sink, 1);
  assert.ok(first.datagrams > 0 && first.datagrams <= 1000, sink.err());
  assert.equal(first.bytes, first.datagrams * 1200);
  assert.equal(sink.child.exitCode, null, 'still running after SIGUSR2');
  // more datagrams after the signal are counted on top: the sink went on receiving
  await blastCount(port, 1000);
  await new Promise((r) => setTimeout(r, 200));
  sink.child.kill('SIGUSR2');
  const second = await totalsLine(sink, 2);
  assert.ok(second.datagrams > first.datagrams && second.datagrams <= 2000, sink.err());
  const exited = once(sink.child, 'exit');
  sink.child.kill('SIGTERM');
  const [code] = (await exited) as [number];
  assert.equal(code, 0, sink.err());
  const end = await totalsLine(sink, 3);
  assert.ok(end.datagrams >= second.datagrams, sink.err());
  assert.match(sink.err(), /udp-sink: \d+ datagrams, \d+ bytes in [\d.]+ s \(\d+ datagrams\/s, [\d.]+ Gbit\/s\); gro batches \d+/);
});

test('maio udp-sink --help names SIGUSR2', { skip, timeout: 30000 }, async () => {
  const help = start(['udp-sink', '--help']);
  await once(help.child, 'exit');
  assert.match(help.out() + help.err(), /SIGUSR2: prints the running totals/);
});
