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
