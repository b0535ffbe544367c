/**
 * The entry points native/loop.c and the shared argument helpers now serve
 * (ring.c, fallback.c, pool.c): each refuses the other engine's handles,
 * closed handles and bad pool slots with the same typed errors, on either
 * engine, and never crashes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { native } from '../../src/core/native';

const n = native();
const any = n as unknown as Record<string, (...a: unknown[]) => unknown>;
const uring = (() => {
  try {
    return n.probe().uringUsable;
  } catch {
    return false;
  }
})();

function throwsCode(fn: () => unknown, code: string, re?: RegExp): void {
  assert.throws(fn, (e: any) => {
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  });
}

const ringOptions = () => ({
  entries: 8,
  submit: new Int32Array(16 * 8),
  completions: new Int32Array(4 * 32),
  aux: new Uint8Array(1024),
  stats: new Float64Array(16),
  onCompletions() {},
});
const fbOptions = () => ({ events: new Int32Array(64), aux: new Uint8Array(256), notes: new Int32Array(24), onEvents() {} });

/** Each engine's create / close / attach / detach, by the names JS calls. */
const engines = [
  { name: 'fallback', usable: true, create: 'fallbackCreate', close: 'fallbackClose', attach: 'fallbackAttachPool', detach: 'fallbackDetachPool', options: fbOptions },
  { name: 'ring', usable: uring, create: 'ringCreate', close: 'ringClose', attach: 'ringRegisterPool', detach: 'ringUnregisterPool', options: ringOptions },
] as const;

test('creates refuse a non-object, a missing or short array, and a missing callback', () => {
  for (const e of engines) {
    if (!e.usable) continue;
    for (const bad of [undefined, null, 1, 'x']) throwsCode(() => any[e.create](bad), 'ERR_MAIO_INVALID_ARG', /options must be an object/);
    throwsCode(() => any[e.create](), 'ERR_MAIO_INVALID_ARG', /expected 1 arguments/);
    const key = e.name === 'ring' ? 'submit' : 'events';
    throwsCode(() => any[e.create]({ ...e.options(), [key]: undefined }), 'ERR_MAIO_INVALID_ARG', new RegExp(`options\\.${key} must be a typed array`));
    const { [key]: _drop, ...rest } = e.options() as Record<string, unknown>;
    throwsCode(() => any[e.create](rest), 'ERR_MAIO_INVALID_ARG', new RegExp(`options\\.${key} is required`));
    throwsCode(() => any[e.create]({ ...e.options(), aux: new Uint8Array(16) }), 'ERR_MAIO_OUT_OF_RANGE', /options\.aux must have at least 128 elements/);
    const cb = e.name === 'ring' ? 'onCompletions' : 'onEvents';
    throwsCode(() => any[e.create]({ ...e.options(), [cb]: 1 }), 'ERR_MAIO_INVALID_ARG', new RegExp(`options\\.${cb} must be a function`));
  }
  throwsCode(() => any.poolCreate(7), 'ERR_MAIO_INVALID_ARG', /options must be an object/);
});

test("engines refuse each other's handles, pools and other values as handles; closed handles throw ERR_MAIO_CLOSED", () => {
  const pool = n.poolCreate({ size: 1 << 16, eager: false, lock: false, hugePages: false });
  const handles: Record<string, unknown> = {};
  for (const e of engines) if (e.usable) handles[e.name] = any[e.create](e.options());
  try {
    for (const e of engines) {
      if (!e.usable) continue;
      for (const [other, h] of Object.entries(handles)) {
        if (other === e.name) continue;
        throwsCode(() => any[e.close](h), 'ERR_MAIO_INVALID_HANDLE');
        throwsCode(() => any[e.detach](h, 0), 'ERR_MAIO_INVALID_HANDLE');
      }
      for (const bad of [pool.handle, {}, null, 1]) throwsCode(() => any[e.close](bad), 'ERR_MAIO_INVALID_HANDLE');
      throwsCode(() => any[e.close](), 'ERR_MAIO_INVALID_ARG');
      const h = any[e.create](e.options());
      any[e.close](h);
      any[e.close](h); // idempotent
      throwsCode(() => any[e.attach](h, pool.handle, 0), 'ERR_MAIO_CLOSED');
      throwsCode(() => any[e.detach](h, 0), 'ERR_MAIO_CLOSED');
    }
  } finally {
    for (const e of engines) if (handles[e.name]) any[e.close](handles[e.name]);
    n.poolClose(pool.handle);
  }
});

test('pool slots: the same checks and messages on both engines', () => {
  for (const e of engines) {
    if (!e.usable) continue;
    const pool = n.poolCreate({ size: 1 << 16, eager: false, lock: false, hugePages: false });
    const closedPool = n.poolCreate({ size: 1 << 16, eager: false, lock: false, hugePages: false });
    n.poolClose(closedPool.handle);
    const h = any[e.create](e.options());
    try {
      throwsCode(() => any[e.attach](h, closedPool.handle, 1), 'ERR_MAIO_CLOSED', /the pool is closed/);
      throwsCode(() => any[e.attach](h, h, 1), 'ERR_MAIO_INVALID_HANDLE', /pool is not a valid handle/);
      throwsCode(() => any[e.attach](h, pool.handle, 64), 'ERR_MAIO_OUT_OF_RANGE', /index must be in \[0, 63\]/);
      throwsCode(() => any[e.attach](h, pool.handle, 1.5), 'ERR_MAIO_INVALID_ARG', /index must be an integer/);
      any[e.attach](h, pool.handle, 5);
      throwsCode(() => any[e.attach](h, pool.handle, 5), 'ERR_MAIO_OUT_OF_RANGE', /pool slot 5 is in use/);
      throwsCode(() => any[e.detach](h, 6), 'ERR_MAIO_OUT_OF_RANGE', /pool slot 6 is empty/);
      throwsCode(() => any[e.detach](h, -1), 'ERR_MAIO_OUT_OF_RANGE');
      any[e.detach](h, 5);
      throwsCode(() => any[e.detach](h, 5), 'ERR_MAIO_OUT_OF_RANGE', /pool slot 5 is empty/);
      // Attached again, then the engine closes with the pool attached: its reference goes with it.
      any[e.attach](h, pool.handle, 5);
    } finally {
      any[e.close](h);
      n.poolClose(pool.handle);
    }
  }
});

test('layout is data, not an entry point', () => {
  assert.equal(typeof n.layout, 'object');
  assert.ok(Object.isFrozen(n.layout));
  assert.throws(() => {
    (n.layout as any).descInts = 15;
  }, TypeError);
});
