/**
 * native/maio.h is the one source of the layout JS and native share; the
 * addon exports it (native/layout.c) and src/core/native.ts checks its copy
 * against it at load. These tests fail when either side changes alone.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { NativeLoadError } from '../../src/core/errors';
import { EXPECTED_LAYOUT, GEN_MASK, SLOT_BITS, SLOT_MASK, checkLayout, native } from '../../src/core/native';

const clone = (o: object) => JSON.parse(JSON.stringify(o)) as Record<string, any>;

test("the addon's layout is exactly src/core/native.ts's copy (same keys, same values)", () => {
  assert.deepEqual(clone(native().layout), clone(EXPECTED_LAYOUT));
});

test('the layout is frozen, groups included', () => {
  const l = native().layout as Record<string, unknown>;
  assert.ok(Object.isFrozen(l));
  for (const [k, v] of Object.entries(l)) if (typeof v === 'object') assert.ok(Object.isFrozen(v), k);
});

test('op-id constants: SLOT_BITS/SLOT_MASK/GEN_MASK agree with maio.h and keep ids positive int32', () => {
  const l = native().layout as Record<string, number>;
  assert.equal(SLOT_BITS, l.opIdSlotBits);
  assert.equal(SLOT_MASK, 2 ** l.opIdSlotBits - 1);
  assert.equal(GEN_MASK, 2 ** l.opIdGenBits - 1);
  assert.ok(((GEN_MASK << SLOT_BITS) | SLOT_MASK) > 0);
});

test('checkLayout names the first value that differs, and a missing layout', () => {
  assert.doesNotThrow(() => checkLayout(native().layout));
  const cases: [(l: Record<string, any>) => void, RegExp][] = [
    [(l) => (l.desc.fdOut = 15), /layout\.desc\.fdOut is 15 in the addon .* but 14 in src\/core\/native\.ts/],
    [(l) => (l.opIdSlotBits = 21), /layout\.opIdSlotBits is 21/],
    [(l) => delete l.cqeFlags, /layout\.cqeFlags is missing/],
    [(l) => delete l.op.sendv, /layout\.op\.sendv is missing/],
    [(l) => (l.ringStat.batchWaits = 10), /layout\.ringStat\.batchWaits is 10/],
  ];
  for (const [change, re] of cases) {
    const l = clone(native().layout);
    change(l);
    assert.throws(() => checkLayout(l), (e: unknown) => e instanceof NativeLoadError && re.test((e as Error).message));
  }
  // A newer addon may report more than this copy knows.
  assert.doesNotThrow(() => checkLayout({ ...clone(native().layout), somethingNew: 1 }));
  assert.throws(() => checkLayout(undefined), (e: unknown) => e instanceof NativeLoadError && /exports no layout/.test((e as Error).message));
});

test('native() refuses an addon whose layout differs, loudly, at load', () => {
  const nativeJs = path.join(__dirname, '..', '..', 'src', 'core', 'native.js');
  const code = `
    const Module = require('node:module');
    const real = require(${JSON.stringify(nativeJs)}).native();
    // Find the addon's file as native() does, then plant a stale build in its place.
    const file = Object.keys(require.cache).find((f) => f.endsWith('maio.node'));
    const layout = JSON.parse(JSON.stringify(real.layout));
    layout.desc.pool = 5;
    const fake = new Module(file);
    fake.filename = file;
    fake.loaded = true;
    fake.exports = { ...real, layout };
    for (const k of Object.keys(require.cache)) if (k.endsWith('native.js')) delete require.cache[k];
    require.cache[file] = fake;
    try {
      require(${JSON.stringify(nativeJs)}).native();
      console.log('loaded');
    } catch (e) {
      console.log(e.code + ': ' + e.message);
    }`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ERR_MAIO_NATIVE_LOAD: .*layout\.desc\.pool is 5 in the addon/);
});
