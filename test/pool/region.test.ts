// The pool's region as the kernel sees it (/proc/self/smaps, /proc/self/maps),
// its lifetime (unmapped only after the last reference), and the native
// entry points' argument validation.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createPool } from '../../src/index';
import { native, type PoolHandle } from '../../src/core/native';
import { smapsEntry, smapsField } from '../../src/pool/pool';

const MiB = 1 << 20;
const DIST_SRC = path.join(__dirname, '..', '..', 'src');

function vmFlags(address: string): string[] {
  const entry = smapsEntry(address);
  assert.ok(entry, `mapping ${address} is in /proc/self/smaps`);
  const m = entry.match(/^VmFlags:(.*)$/m);
  assert.ok(m, 'VmFlags line');
  return m[1].trim().split(/\s+/);
}

function thpMode(): string {
  try {
    return fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').match(/\[(\w+)\]/)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

test('smaps: an eager region is DONTFORK (dc), huge-page advised (hg), locked as root (lo), 2 MiB aligned', () => {
  const pool = createPool({ size: 4 * MiB, register: false, eager: true });
  const st = pool.stats({ smaps: true });
  assert.equal(BigInt('0x' + pool.address) % BigInt(2 * MiB), 0n, '2 MiB aligned');
  const flags = vmFlags(pool.address);
  // MADV_DONTFORK sets VM_DONTCOPY, which smaps prints as "dc" ("dd" is MADV_DONTDUMP).
  assert.ok(flags.includes('dc'), `dc in ${flags.join(' ')}`);
  assert.equal(st.dontFork, true);
  assert.ok(flags.includes('hg'), `hg in ${flags.join(' ')}`);
  assert.equal(st.hugePages, true);
  if (process.getuid?.() === 0) {
    assert.equal(st.locked, true, `locked as root (lockError ${st.lockError})`);
    assert.ok(flags.includes('lo'), `lo in ${flags.join(' ')}`);
    assert.equal(smapsField(pool.address, 'Locked'), 4 * MiB);
  }
  // Prefaulted: every page is resident before any I/O.
  assert.equal(smapsField(pool.address, 'Rss'), 4 * MiB);
  assert.equal(st.residentBytes, 4 * MiB);
  assert.equal(st.residency, 'resident');
  assert.equal(st.eager, true);
  pool.close();
});

test('smaps: transparent huge pages back the region when THP is madvise/always', (t) => {
  const mode = thpMode();
  if (mode !== 'madvise' && mode !== 'always') return t.skip(`THP mode is ${mode}`);
  const pool = createPool({ size: 4 * MiB, register: false, lock: false, eager: true });
  const huge = pool.stats({ smaps: true }).anonHugePages;
  assert.ok(huge !== null && huge > 0, `AnonHugePages ${huge}`);
  pool.close();
});

test('smaps: hugePages: false and lock: false leave hg and lo off (eager: prefaulted anyway)', () => {
  const pool = createPool({ size: 4 * MiB, register: false, lock: false, hugePages: false, eager: true });
  const flags = vmFlags(pool.address);
  assert.ok(!flags.includes('hg'), flags.join(' '));
  assert.ok(!flags.includes('lo'), flags.join(' '));
  assert.ok(flags.includes('dc'));
  const st = pool.stats();
  assert.equal(st.locked, false);
  assert.equal(st.lockError, '');
  assert.equal(st.hugePages, false);
  assert.equal(smapsField(pool.address, 'Rss'), 4 * MiB, 'prefaulted without mlock too');
  pool.close();
});

test('a lazy pool (the default) is mapped only: nothing resident, locked or huge-page advised until pinned; RSS follows the bytes written', () => {
  const pool = createPool({ size: 4 * MiB, register: false });
  const st = pool.stats({ smaps: true });
  assert.equal(st.eager, false);
  assert.equal(st.residency, 'lazy');
  assert.equal(st.registerPending, false, 'not attached: nothing to register later');
  assert.equal(st.residentBytes, 0);
  assert.equal(smapsField(pool.address, 'Rss'), 0);
  assert.equal(st.locked, false);
  assert.equal(st.lockError, '', 'no mlock was tried');
  assert.equal(st.hugePages, false, 'advised only when pinned');
  const flags = vmFlags(pool.address);
  assert.ok(flags.includes('dc'), `DONTFORK from the start: ${flags.join(' ')}`);
  assert.ok(!flags.includes('lo') && !flags.includes('hg'), flags.join(' '));
  // One 64 KiB buffer written in its first byte: one 4 KiB page, not the buffer, not 2 MiB.
  const buf = pool.alloc(65536);
  buf.bytes[0] = 1;
  assert.equal(pool.stats().residentBytes, 4096);
  assert.equal(smapsField(pool.address, 'Rss'), 4096);
  buf.bytes.fill(2);
  assert.equal(pool.stats().residentBytes, 65536);
  buf.release();
  pool.close();
});

// Lifetime needs gc(): run it in a child with --expose-gc.
const lifetimeScript = `
const fs = require('fs');
const { createPool } = require(${JSON.stringify(path.join(DIST_SRC, 'index.js'))});
const { native } = require(${JSON.stringify(path.join(DIST_SRC, 'core', 'native.js'))});
const mapped = (a) => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').some((l) => l.startsWith(a + '-'));
const settle = async () => { for (let i = 0; i < 5; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); } };
(async () => {
  const out = {};
  // A view kept past close keeps the region mapped; it goes with the last view.
  let pool = createPool({ size: 1 << 20, lock: false, register: false });
  const a1 = pool.address;
  let b = pool.alloc(100);
  let view = b.bytes;
  view[0] = 9;
  b.release(); pool.close(); b = null; pool = null;
  await settle();
  out.viewKeepsMapping = mapped(a1) && view[0] === 9;
  view = null;
  await settle();
  out.unmappedAfterLastView = !mapped(a1);
  // A strict view holds a reference of its own.
  const n = native();
  let r = n.poolCreate({ size: 1 << 20, lock: false });
  const a2 = r.address;
  let v = n.poolStrictView(r.handle, 4096, 4096);
  n.poolClose(r.handle); r = null;
  await settle();
  new Uint8Array(v)[0] = 1;
  out.strictViewKeepsMapping = mapped(a2);
  n.poolDetachView(v); v = null;
  await settle();
  out.unmappedAfterDetach = !mapped(a2);
  // A handle collected without close unmaps too.
  let r3 = n.poolCreate({ size: 1 << 20, lock: false });
  const a3 = r3.address; r3 = null;
  await settle();
  out.unmappedAfterHandleGc = !mapped(a3);
  // An open pool that is simply dropped also goes.
  let p4 = createPool({ size: 1 << 20, lock: false, register: false });
  const a4 = p4.address; p4 = null;
  await settle();
  out.unmappedAfterPoolGc = !mapped(a4);
  console.log(JSON.stringify(out));
})();
`;

test('lifetime: unmapped only after the last handle, region view and strict view are gone', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', lifetimeScript], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.deepEqual(out, {
    viewKeepsMapping: true,
    unmappedAfterLastView: true,
    strictViewKeepsMapping: true,
    unmappedAfterDetach: true,
    unmappedAfterHandleGc: true,
    unmappedAfterPoolGc: true,
  });
});

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code ?? 'no code';
  }
  return 'no throw';
}

test('native: every pool entry point validates its arguments with typed errors', () => {
  const n = native();
  const bad = (v: unknown) => v as never;
  assert.equal(code(() => n.poolCreate(bad(undefined))), 'ERR_MAIO_INVALID_ARG');
  assert.equal(code(() => n.poolCreate(bad({}))), 'ERR_MAIO_INVALID_ARG');
  assert.equal(code(() => n.poolCreate({ size: 4096 })), 'ERR_MAIO_OUT_OF_RANGE');
  assert.equal(code(() => n.poolCreate({ size: 65537 })), 'ERR_MAIO_OUT_OF_RANGE');
  assert.equal(code(() => n.poolCreate({ size: 2 ** 31 })), 'ERR_MAIO_OUT_OF_RANGE');
  assert.equal(code(() => n.poolCreate({ size: NaN })), 'ERR_MAIO_INVALID_ARG');
  assert.equal(code(() => n.poolCreate({ size: 65536, lock: bad(1) })), 'ERR_MAIO_INVALID_ARG');
  assert.equal(code(() => n.poolCreate({ size: 65536, hugePages: bad('yes') })), 'ERR_MAIO_INVALID_ARG');
  const r = n.poolCreate({ size: 65536, lock: false });
  assert.equal(r.region.byteLength, 65536);
  assert.equal(code(() => n.poolStrictView(bad({}), 0, 1)), 'ERR_MAIO_INVALID_HANDLE');
  assert.equal(code(() => n.poolStrictView(bad(null), 0, 1)), 'ERR_MAIO_INVALID_HANDLE');
  assert.equal(code(() => n.poolStrictView(r.handle, -1, 1)), 'ERR_MAIO_OUT_OF_RANGE');
  assert.equal(code(() => n.poolStrictView(r.handle, 0, 0)), 'ERR_MAIO_OUT_OF_RANGE');
  assert.equal(code(() => n.poolStrictView(r.handle, 65535, 2)), 'ERR_MAIO_OUT_OF_RANGE');
  assert.equal(code(() => n.poolStrictView(r.handle, 0, 65537)), 'ERR_MAIO_OUT_OF_RANGE');
  assert.equal(code(() => n.poolStrictView(r.handle, 0.5, 1)), 'ERR_MAIO_INVALID_ARG');
  assert.equal(code(() => (n.poolStrictView as (...a: unknown[]) => unknown)(r.handle, 0)), 'ERR_MAIO_INVALID_ARG');
  // Only views made by poolStrictView can be detached: not the region, not a user's buffer.
  assert.equal(code(() => n.poolDetachView(r.region)), 'ERR_MAIO_INVALID_HANDLE');
  assert.equal(code(() => n.poolDetachView(new ArrayBuffer(8))), 'ERR_MAIO_INVALID_HANDLE');
  assert.equal(code(() => n.poolDetachView(bad(new Uint8Array(8)))), 'ERR_MAIO_INVALID_HANDLE');
  assert.equal(code(() => n.poolDetachView(bad(r.handle))), 'ERR_MAIO_INVALID_HANDLE');
  assert.equal(r.region.byteLength, 65536);
  const v = n.poolStrictView(r.handle, 0, 100);
  n.poolDetachView(v);
  assert.equal(code(() => n.poolDetachView(v)), 'no throw', 'detaching twice is a no-op');
  assert.equal(code(() => n.poolClose(bad({}))), 'ERR_MAIO_INVALID_HANDLE');
  n.poolClose(r.handle);
  n.poolClose(r.handle);
  assert.equal(code(() => n.poolStrictView(r.handle, 0, 1)), 'ERR_MAIO_CLOSED');
  // Still mapped: the region ArrayBuffer holds a reference.
  new Uint8Array(r.region)[0] = 1;
  assert.equal(new Uint8Array(r.region)[0], 1);
  // A ring handle is not a pool handle.
  assert.equal(code(() => n.poolClose(bad(r.region))), 'ERR_MAIO_INVALID_HANDLE');
  void (null as unknown as PoolHandle);
});

test('the region cannot be transferred away (postMessage copies external memory)', () => {
  const pool = createPool({ size: 65536, lock: false, register: false });
  const b = pool.alloc(10);
  const region = b.bytes.buffer;
  const copy = structuredClone(region, { transfer: [region as ArrayBuffer] });
  assert.equal(region.byteLength, 65536, 'not detached');
  assert.equal(b.bytes.length, 10);
  assert.notEqual(copy, region);
  b.release();
  pool.close();
});
