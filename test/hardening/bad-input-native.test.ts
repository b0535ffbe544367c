/**
 * Every native entry point (native/addon.c's export table) called with bad
 * arguments: wrong arity, wrong types, fractions, NaN, huge and negative
 * numbers, foreign and closed handles, hand-made descriptors with one bad
 * field, handles used after close, detached shared arrays. Each group runs in
 * a child process (native-args-child.ts), so a crash fails the test instead
 * of killing the runner. Every call must return or throw an Error with a
 * stable code: ERR_MAIO_* for validation, an errno name with errno and
 * syscall for kernel errors; where the value is of the wrong type or range
 * for the parameter, the code is the one that says so.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { errorClasses } from '../../src/core/errors';
import { native } from '../../src/core/native';
import { GROUPS, type CallRecord } from './native-args-child';

const child = path.join(__dirname, 'native-args-child.js');
const maioCodes = new Set<string>(errorClasses.map((c) => c.CODE));

function runGroup(group: string): CallRecord[] {
  const r = spawnSync(process.execPath, ['--expose-gc', child, group], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    timeout: 120_000,
  });
  const lines = r.stdout.split('\n').filter(Boolean);
  const done = lines[lines.length - 1] === 'DONE';
  assert.ok(
    r.status === 0 && r.signal === null && done,
    `group ${group}: child exited with status ${r.status}, signal ${r.signal}` +
      `${done ? '' : ' before DONE'}; last call: ${lines.filter((l) => l !== 'DONE').pop() ?? '(none)'}\n${r.stderr.slice(-2000)}`,
  );
  return lines.slice(0, -1).map((l) => JSON.parse(l) as CallRecord);
}

function check(records: CallRecord[]): void {
  const problems: string[] = [];
  for (const r of records) {
    const where = `${r.fn}(${r.pos < 0 ? '' : `arg ${r.pos} = `}${r.value})`;
    if (r.outcome === 'throw') {
      if (r.code === undefined) {
        problems.push(`${where} threw without a code: ${r.ctor}: ${r.message}`);
        continue;
      }
      const isMaio = maioCodes.has(r.code);
      const isErrno = /^E[A-Z0-9]+$/.test(r.code) && typeof r.errno === 'number' && r.errno < 0 && typeof r.syscall === 'string';
      if (!isMaio && !isErrno) problems.push(`${where} threw code ${r.code} (${r.ctor}: ${r.message}) that is neither ERR_MAIO_* nor an errno error`);
      if (r.code === 'EUNKNOWN') problems.push(`${where}: errno without a name: ${r.message}`);
    }
    if (r.mustThrow) {
      if (r.outcome !== 'throw') problems.push(`${where} returned; expected ${r.mustThrow.join(' or ')}`);
      else if (!r.mustThrow.includes(r.code!)) problems.push(`${where} threw ${r.code} (${r.message}); expected ${r.mustThrow.join(' or ')}`);
    }
  }
  if (problems.length) assert.fail(`${problems.length} of ${records.length} calls misbehaved:\n${problems.slice(0, 60).join('\n')}`);
}

test('the child covers every native entry point', () => {
  // Entry points only: `layout` is data (native/layout.c), checked by test/core/layout.test.ts.
  const n = native() as unknown as Record<string, unknown>;
  const exported = Object.keys(n).filter((k) => typeof n[k] === 'function').sort();
  const r = spawnSync(process.execPath, ['-e', `
    const c = require(${JSON.stringify(child)});
    process.stdout.write(JSON.stringify(c.GROUPS));`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // The specs list: every export appears in some group's calls (checked per group below).
  assert.ok(exported.length >= 45, `only ${exported.length} exports`);
  covered.expected = exported;
});

const covered: { expected: string[]; seen: Set<string> } = { expected: [], seen: new Set() };

for (const group of GROUPS) {
  test(`native ${group}: bad arguments throw typed errors, never crash`, () => {
    const records = runGroup(group);
    assert.ok(records.length > 0, 'no calls made');
    for (const r of records) covered.seen.add(r.fn);
    check(records);
  });
}

test('every export of the addon was called with bad arguments', () => {
  const missing = covered.expected.filter((f) => !covered.seen.has(f));
  assert.deepEqual(missing, []);
});
