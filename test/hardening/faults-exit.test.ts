/**
 * Faults: the process exits while zero-copy sends are in flight. A child
 * process queues 8 MiB of zero-copy sends (zeroCopy 'always') to a node:net
 * receiver here that is not reading yet, so the sends sit in the kernel with
 * pool pages referenced, then leaves by process.exit(), by an uncaught
 * exception, or is killed with SIGKILL. The child must exit promptly (no hang
 * in the ring's or pool's teardown), and the receiver, reading afterwards,
 * must see a prefix of the stream (every byte the child meant to send, in
 * order) followed by an end or a reset: never garbage from a pool page that
 * was unmapped or reused under a send.
 *
 * Existing coverage: test/ring/ring.test.ts and test/ring/fallback.test.ts
 * (a worker thread that exits with NOPs in flight; terminate() with ops in
 * flight); test/pool/region.test.ts (the region unmapped after its last
 * reference).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { netSkip, until } from '../net/helpers';
import { INDEX, PrefixChecker, exited, nodeChild } from './helpers';

const HELPERS = path.join(__dirname, 'helpers.js');
const QUEUED = 8 << 20;

const child = (how: string): string => `
const maio = require(${JSON.stringify(INDEX)});
const { streamChunk } = require(${JSON.stringify(HELPERS)});
const c = maio.connect({ port: Number(process.argv[1]), host: '127.0.0.1', zeroCopy: 'always', writableHighWaterMark: 64 << 20 });
c.on('error', () => {});
c.on('connect', async () => {
  const pool = c.pool;
  for (let at = 0; at < ${QUEUED}; at += 65536) {
    const b = pool.tryAlloc(65536) ?? await pool.allocWait(65536);
    b.bytes.set(streamChunk(at, 65536));
    c.send(b);
  }
  // Wait until sends are with the kernel and some are still in flight.
  const t = setInterval(() => {
    const st = c.stats();
    if (st.bytesWritten === 0 && maio.defaultPool().stats().lent === 0) return;
    clearInterval(t);
    console.log('in flight: written ' + st.bytesWritten + ', lent ' + pool.stats().lent);
    ${how}
  }, 1);
});
`;

const cases: [string, string, number | string][] = [
  ['process.exit(0)', 'process.exit(0);', 0],
  ['an uncaught exception', "setImmediate(() => { throw new Error('boom with zero-copy sends in flight'); });", 1],
  ['SIGKILL', "process.kill(process.pid, 'SIGKILL');", 'SIGKILL'],
];

for (const [name, how, code] of cases) {
  test(`the process leaves by ${name} with zero-copy sends in flight: it exits, the peer sees a prefix of the stream then an end or a reset`, { skip: netSkip }, async (t) => {
    const check = new PrefixChecker();
    let peer: net.Socket | undefined;
    let ended = false;
    let error: (Error & { code?: string }) | undefined;
    const server = net.createServer((s) => {
      peer = s;
      s.pause();
      s.on('data', (d: Buffer) => check.push(d));
      s.on('end', () => (ended = true));
      s.on('error', (e) => (error = e));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const p = nodeChild(child(how), { argv: [String((server.address() as net.AddressInfo).port)] });
    try {
      await p.line(/^in flight/, 'the child to have sends in flight');
      const status = await exited(p.child);
      assert.equal(status, code, `exit status; stderr: ${p.stderr()}`);
      if (code === 1) assert.match(p.stderr(), /boom with zero-copy sends in flight/);
      await until(() => peer !== undefined, 'the connection');
      peer!.resume();
      await until(() => ended || error !== undefined || peer!.destroyed, 'an end or a reset at the receiver');
      check.assertClean('the receiver');
      if (error) assert.equal(error.code, 'ECONNRESET');
      assert.ok(check.bytes <= QUEUED);
      t.diagnostic(`${p.lines.join(' | ')}; the receiver got ${check.bytes} bytes, then ${error ? error.code : 'an end'}`);
      peer!.destroy();
    } finally {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
  });
}
