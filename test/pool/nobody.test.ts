// As a non-root user (nobody, memlock limit inherited, no CAP_IPC_LOCK): the
// default pool fits the memlock limit (lazy: nothing locked or registered until
// a zero-copy send; eager: locked and registered at once); a 64 MiB pool still
// works, unlocked and/or unregistered, and says why, also when its first
// zero-copy send cannot pin it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { defaultPoolSize, memlockLimit } from '../../src/pool/config';

const ROOT = path.join(__dirname, '..', '..', '..'); // repo root above dist/
const NOBODY = 65534;

const childScript = `
const { createPool, defaultPool, createServer, connect } = require('./dist/src/index.js');
const { defaultPoolSize } = require('./dist/src/pool/config.js');
const pick = (s) => ({ capacity: s.capacity, locked: s.locked, lockError: s.lockError, registered: s.registered,
  registerError: s.registerError, registerPending: s.registerPending, residency: s.residency, residentBytes: s.residentBytes,
  poolId: s.poolId, hugePages: s.hugePages, dontFork: s.dontFork });
(async () => {
const out = { uid: process.getuid() };
const d = defaultPool();
let b = d.alloc(1500); b.bytes.fill(1); out.defaultWorks = b.bytes[1499] === 1; b.release();
out.default = pick(d.stats());
const eager = createPool({ size: defaultPoolSize(), eager: true });
out.eager = pick(eager.stats());
eager.close();
const big = createPool({ size: 64 << 20, eager: true });
b = big.alloc(big.maxAllocSize); b.bytes.fill(2); out.bigWorks = b.bytes[b.length - 1] === 2; b.release();
out.big = pick(big.stats());
big.close();
// A lazy 64 MiB pool: its first zero-copy send tries to pin it; refused, the send still goes.
const lazy = createPool({ size: 64 << 20 });
let got = 0;
const server = createServer((s) => s.on('data', (x) => (got += x.length)));
const { port } = await server.listenAsync(0, '127.0.0.1');
const c = connect({ port, host: '127.0.0.1', pool: lazy, zeroCopy: 'always' });
await new Promise((r) => c.once('connect', r));
b = lazy.alloc(65536); b.bytes.fill(3); c.send(b);
while (got < 65536 || c.stats().sendsInFlight > 0) await new Promise((r) => setTimeout(r, 5));
out.lazyBig = pick(lazy.stats());
out.lazyZcSends = c.stats().zeroCopy.zcSends;
c.destroy(); server.close(); lazy.close(); d.close();
console.log(JSON.stringify(out));
process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Copies what the child needs to a directory nobody can read (the repo may not be). */
function stage(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-nobody-'));
  fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'build', 'Release', 'maio.node'), path.join(dir, 'build', 'Release', 'maio.node'));
  const open = (p: string) => {
    fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o755 : 0o644);
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(dir);
  fs.chmodSync(path.join(dir, 'build', 'Release', 'maio.node'), 0o755);
  return dir;
}

test('as nobody: the default pool fits the memlock limit; a 64 MiB pool works unlocked/unregistered with the errno', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to spawn a child as nobody');
  const limit = memlockLimit();
  if (limit === Infinity || limit >= 64 << 20) return t.skip(`memlock limit ${limit} lets nobody lock 64 MiB`);
  const dir = stage();
  try {
    const r = spawnSync(process.execPath, ['-e', childScript], {
      cwd: dir,
      uid: NOBODY,
      gid: NOBODY,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' },
    });
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    t.diagnostic(JSON.stringify(out));
    assert.equal(out.uid, NOBODY);
    assert.equal(out.defaultWorks, true);
    assert.equal(out.bigWorks, true);
    // Default: sized to the limit (4 MiB under 8 MiB), lazy: nothing locked yet.
    assert.equal(out.default.capacity, defaultPoolSize(limit, false));
    assert.ok(out.default.capacity <= limit / 2);
    assert.equal(out.default.residency, 'lazy');
    assert.equal(out.default.locked, false);
    assert.equal(out.default.lockError, '', 'no mlock tried yet');
    assert.equal(out.default.dontFork, true);
    // The same size, eager: locked at once (so the default size does fit the limit).
    assert.equal(out.eager.locked, true, `eager pool lockError ${out.eager.lockError}`);
    // 64 MiB: mlock refused with an errno; it still works.
    assert.equal(out.big.capacity, 64 << 20);
    assert.equal(out.big.locked, false);
    assert.match(out.big.lockError, /^E[A-Z]+$/);
    if (out.default.poolId >= 0) {
      // A ring exists (io_uring backend): the default pool will register at its first zero-copy
      // send, the eager one of the same size registers now, the 64 MiB one cannot.
      assert.equal(out.default.registerPending, true);
      assert.equal(out.eager.registered, true, `eager registerError ${out.eager.registerError}`);
      assert.equal(out.big.registered, false);
      assert.match(out.big.registerError, /^E[A-Z]+\b/);
      // Lazy 64 MiB: the first SEND_ZC could not pin it; it says why and the send went anyway.
      assert.equal(out.lazyZcSends, 1);
      assert.equal(out.lazyBig.registered, false);
      assert.equal(out.lazyBig.registerPending, false, 'tried once');
      assert.match(out.lazyBig.registerError, /^E[A-Z]+\b/);
      assert.equal(out.lazyBig.residency, 'lazy');
      // Refused before the kernel pinned (faulted in) anything: still only the pages written
      // (the 64 KiB buffer sent), in small pages.
      assert.ok(out.lazyBig.residentBytes <= 1 << 20, `resident ${out.lazyBig.residentBytes}`);
      assert.equal(out.lazyBig.hugePages, false);
    } else {
      t.diagnostic(`no io_uring ring in the child (registerError '${out.default.registerError}'): registration not checked`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
