/**
 * maio/net's receive chunks: a chunk a consumer keeps stays valid and never
 * changes (on node:net and maio/net alike), and pipe() between maio/net
 * sockets passes pool buffers without a copy (stats().streamPooledChunks),
 * byte-exact, with every pool buffer back at the end; with the
 * transientChunks opt-in, chunks over pool buffers reach 'data' listeners
 * (stats().streamLentChunks) and the stream's own buffering still gets copies.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as nodeNet from 'node:net';
import { Writable, pipeline } from 'node:stream';
import { promisify } from 'node:util';
import * as mnet from '../../../src/net/compat/index';
import { stats } from '../../../src/net/stats';
import { SOURCE, bounded, poolGuard, until } from '../helpers';
import { type NetLike, closeServer, impls, listen, skip } from './common';

const pipelineP = promisify(pipeline);
const HALF = SOURCE.length / 2;

/** A node:net server that sends `bytes` to each connection, in uneven writes, then ends. */
async function sender(bytes: Buffer): Promise<{ port: number; server: nodeNet.Server }> {
  const server = nodeNet.createServer((s) => {
    s.on('error', () => s.destroy());
    let at = 0;
    const go = (): void => {
      while (at < bytes.length) {
        const n = Math.min(37_000 + (at % 50_000), bytes.length - at);
        const ok = s.write(bytes.subarray(at, at + n));
        at += n;
        if (!ok) return void s.once('drain', go);
      }
      s.end();
    };
    go();
  });
  return { port: await listen(server), server };
}

/** A node:net server that collects what each connection sends; `got` resolves at its end. */
async function collector(): Promise<{ port: number; server: nodeNet.Server; got: Promise<Buffer> }> {
  let resolve!: (b: Buffer) => void;
  const got = new Promise<Buffer>((r) => (resolve = r));
  const server = nodeNet.createServer((s) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      resolve(Buffer.concat(parts));
      s.end();
    });
  });
  return { port: await listen(server), server, got };
}

function connect(impl: NetLike, port: number, writableHighWaterMark?: number): nodeNet.Socket {
  return (impl.connect as typeof nodeNet.connect)({ port, host: '127.0.0.1', ...(writableHighWaterMark ? { writableHighWaterMark } : {}) });
}

for (const [name, impl] of impls) {
  test(`${name}: 'data' chunks a listener keeps stay intact after more traffic through the same buffers, also while pipe() runs`, { skip }, async () => {
    const guard = poolGuard();
    const before = stats().streamPooledChunks;
    const first = await sender(SOURCE.subarray(0, HALF));
    const sink = await collector();
    const c = connect(impl, first.port);
    // two consumers: a listener that keeps every chunk, and pipe() into another socket of the same kind
    const kept: Buffer[] = [];
    c.on('data', (d: Buffer) => kept.push(d));
    const out = connect(impl, sink.port);
    c.pipe(out);
    await bounded(once(c, 'end'), 'the first transfer');
    assert.ok(kept.length > 1, 'the bytes came in several chunks');
    assert.ok(Buffer.concat(kept).equals(SOURCE.subarray(0, HALF)), 'the kept chunks as received');
    assert.ok((await bounded(sink.got, 'the piped copy')).equals(SOURCE.subarray(0, HALF)), 'the piped copy byte-exact');

    // More traffic, other bytes: on maio/net it lands in the receive buffers the first chunks came in.
    const second = await sender(SOURCE.subarray(HALF));
    const d = connect(impl, second.port);
    let n = 0;
    d.on('data', (b: Buffer) => (n += b.length));
    await bounded(once(d, 'end'), 'the second transfer');
    assert.equal(n, SOURCE.length - HALF);
    assert.ok(Buffer.concat(kept).equals(SOURCE.subarray(0, HALF)), 'the kept chunks unchanged after more traffic');
    if (impl === mnet) assert.equal(stats().streamPooledChunks, before, 'with a second consumer, no chunk passed as a pool buffer');

    for (const s of [c, out, d]) s.destroy();
    await Promise.all([closeServer(first.server), closeServer(sink.server), closeServer(second.server)]);
    await guard.check();
  });
}

test('maio/net echo with s.pipe(s): pool buffers go back out without a copy, byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const before = stats();
  const server = mnet.createServer((s) => s.pipe(s));
  const port = await listen(server);
  const c = nodeNet.connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  c.on('data', (d: Buffer) => parts.push(d));
  let got = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
    if (got === SOURCE.length) c.end();
  });
  c.write(SOURCE);
  await bounded(once(c, 'close'), 'the echo');
  assert.ok(Buffer.concat(parts).equals(SOURCE), 'the echo byte-exact');
  const after = stats();
  assert.ok(after.streamPooledChunks > before.streamPooledChunks, 'chunks passed as pool buffers');
  assert.equal(after.streamPooledStranded, before.streamPooledStranded);
  await closeServer(server);
  await guard.check();
});

test('maio/net proxy with stream.pipeline(a, b): pool buffers pass from one socket to the other, byte-exact', { skip }, async () => {
  const guard = poolGuard();
  const before = stats();
  const sink = await collector();
  const proxy = mnet.createServer((a) => {
    const b = mnet.connect({ port: sink.port, host: '127.0.0.1' });
    pipelineP(a, b).catch(() => a.destroy());
  });
  const port = await listen(proxy);
  const c = nodeNet.connect(port, '127.0.0.1');
  c.on('error', () => {});
  c.end(SOURCE);
  assert.ok((await bounded(sink.got, 'the proxied bytes')).equals(SOURCE), 'byte-exact through the proxy');
  const after = stats();
  assert.ok(after.streamPooledChunks > before.streamPooledChunks, 'chunks passed as pool buffers');
  assert.equal(after.streamPooledStranded, before.streamPooledStranded);
  c.destroy();
  await Promise.all([closeServer(proxy), closeServer(sink.server)]);
  await guard.check();
});

test('maio/net pipe(): pool buffers queued in a corked destination are sent at uncork, and go back when it is destroyed', { skip }, async () => {
  const guard = poolGuard();
  const before = stats().streamPooledChunks;
  // corked, then uncorked: the queued chunks leave through _writev, byte-exact
  const sink = await collector();
  const first = await sender(SOURCE.subarray(0, 1 << 20));
  // a high-water mark above the transfer: pipe() does not pause, several chunks queue
  const out = connect(mnet, sink.port, 4 << 20);
  await once(out, 'connect');
  out.cork();
  const c = connect(mnet, first.port);
  c.pipe(out);
  await until(() => stats().streamPooledChunks >= before + 2, 'chunks queued in the corked socket');
  out.uncork();
  assert.ok((await bounded(sink.got, 'the piped bytes')).equals(SOURCE.subarray(0, 1 << 20)), 'byte-exact after uncork');

  // corked and destroyed: nobody will send the queued chunks, their pool buffers go back
  const second = await sender(SOURCE.subarray(0, 1 << 20));
  const sink2 = await collector();
  const out2 = connect(mnet, sink2.port, 4 << 20);
  await once(out2, 'connect');
  out2.cork();
  const mark = stats().streamPooledChunks;
  const c2 = connect(mnet, second.port);
  c2.pipe(out2);
  await until(() => stats().streamPooledChunks >= mark + 2, 'chunks queued in the second corked socket');
  out2.destroy();
  c2.destroy();
  for (const s of [c, out]) s.destroy();
  await Promise.all([closeServer(first.server), closeServer(second.server), closeServer(sink.server), closeServer(sink2.server)]);
  await guard.check();
});

test('transientChunks: chunks over pool buffers while the listener runs, byte-exact; copies where the stream would keep them', { skip }, async () => {
  const guard = poolGuard();
  const bytes = SOURCE.subarray(0, HALF);
  const before = stats().streamLentChunks;
  const a = await sender(bytes);
  const c = mnet.connect({ port: a.port, host: '127.0.0.1', transientChunks: true });
  const h = createHash('sha256');
  let n = 0;
  // a parser-like listener: it reads each chunk and keeps nothing
  c.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  await bounded(once(c, 'end'), 'the transfer');
  assert.equal(n, bytes.length);
  assert.equal(h.digest('hex'), createHash('sha256').update(bytes).digest('hex'), 'byte-exact');
  const lent = stats().streamLentChunks - before;
  assert.ok(lent > 0, 'chunks were handed out over pool buffers');

  // The stream keeps chunks: setEncoding (a decoder) and pipe() into a node Writable get copies.
  const b = await sender(bytes);
  const d = mnet.connect({ port: b.port, host: '127.0.0.1', transientChunks: true });
  const kept: Buffer[] = [];
  d.pipe(new Writable({ write: (chunk: Buffer, _e, cb) => (kept.push(chunk), cb()) }));
  await bounded(once(d, 'end'), 'the piped transfer');
  const e = await sender(bytes);
  const f = mnet.connect({ port: e.port, host: '127.0.0.1', transientChunks: true });
  f.setEncoding('latin1');
  let text = '';
  f.on('data', (s: string) => (text += s));
  await bounded(once(f, 'end'), 'the decoded transfer');
  assert.equal(stats().streamLentChunks - before, lent, 'no chunk of the piped or decoded streams was lent');
  assert.ok(Buffer.concat(kept).equals(bytes), 'the piped chunks kept, unchanged after more traffic');
  assert.ok(Buffer.from(text, 'latin1').equals(bytes), 'the decoded text');

  for (const s of [c, d, f]) s.destroy();
  await Promise.all([closeServer(a.server), closeServer(b.server), closeServer(e.server)]);
  await guard.check();
});

test('transientChunks: a chunk a listener gives back with unshift() stays intact until it is read again', { skip }, async () => {
  const guard = poolGuard();
  const bytes = SOURCE.subarray(0, 4 << 20);
  const a = await sender(bytes);
  // a high-water mark above the transfer: while paused, everything arrives (through every receive buffer)
  const c = mnet.connect({ port: a.port, host: '127.0.0.1', transientChunks: true, readableHighWaterMark: 8 << 20 });
  const seen: Buffer[] = [];
  let unshifted = false;
  c.on('data', (d: Buffer) => {
    if (!unshifted && d.length >= 4096) {
      unshifted = true;
      // back into the paused stream (a flowing one would emit it again at once), read again
      // only after more bytes came (into reused receive buffers)
      c.pause();
      c.unshift(d);
      setTimeout(() => c.resume(), 100);
      return;
    }
    seen.push(Buffer.from(d)); // the test keeps copies, as the contract asks
  });
  await bounded(once(c, 'end'), 'the transfer');
  assert.ok(unshifted);
  assert.ok(Buffer.concat(seen).equals(bytes), 'byte-exact, the unshifted chunk included');
  c.destroy();
  await closeServer(a.server);
  await guard.check();
});

test("maio/net pipe() paused by its destination: the source holds a few receive buffers, not its read quota", { skip }, async () => {
  const guard = poolGuard();
  const bytes = SOURCE; // 8 MiB, under the 16 MiB read quota below
  const a = await sender(bytes);
  const sink = await collector();
  const out = connect(mnet, sink.port);
  await once(out, 'connect');
  out.cork(); // never drains: pipe() pauses the source at its first chunk
  const c = mnet.connect({ port: a.port, host: '127.0.0.1', maio: { readQuota: 16 << 20 } });
  c.pipe(out);
  // wait until the source stops reading (its bytesRead stays put for 100 ms)
  for (let last = -1, now = 0, limit = Date.now() + 20_000; now === 0 || now !== last; ) {
    assert.ok(Date.now() < limit, 'the source stops reading');
    last = now;
    await new Promise((r) => setTimeout(r, 100));
    now = c.bytesRead ?? 0;
  }
  const held = c.maioSocket!.stats().receiveBytesHeld;
  // 256 KiB, plus what the kernel delivered before the cancel landed; the whole transfer without the bound
  assert.ok(held < 4 << 20, `held ${held} bytes`);
  assert.ok((c.bytesRead ?? 0) < bytes.length, 'the rest waits in the kernel');
  out.uncork();
  assert.ok((await bounded(sink.got, 'the piped bytes')).equals(bytes), 'byte-exact once the destination drains');
  for (const s of [c, out]) s.destroy();
  await Promise.all([closeServer(a.server), closeServer(sink.server)]);
  await guard.check();
});

test('transientChunks that is not a boolean: ERR_INVALID_ARG_TYPE from new Socket and createServer', { skip }, () => {
  for (const make of [() => new mnet.Socket({ transientChunks: 1 as unknown as boolean }), () => mnet.createServer({ transientChunks: 'yes' as unknown as boolean })]) {
    assert.throws(make, { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  }
});
