/**
 * docs/api/ is generated from the TypeScript (TypeDoc, typedoc.json) and
 * committed so that it reads on any forge; this test generates it again into
 * a temporary folder and fails on any difference, so it cannot go stale.
 * Fix: `npm run docs:api` and commit docs/api/.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');
const TYPEDOC = path.join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');

/** Every file below `dir`, as relative paths. */
function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

// Reads sources only: once per suite, in the default backend's run.
const skip = process.env.MAIO_BACKEND === 'epoll' ? 'no backend involved: checked in the default-backend run' : false;

test('docs/api/ is what TypeDoc makes of the current sources', { skip, timeout: 180_000 }, (t) => {
  if (!fs.existsSync(TYPEDOC)) return t.skip('typedoc is not installed (a devDependency)');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-api-docs-'));
  try {
    const r = spawnSync(process.execPath, [TYPEDOC, '--out', out, '--logLevel', 'Error'], { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
    assert.equal(r.status, 0, `typedoc failed:\n${r.stderr}\n${r.stdout}`);
    const committed = path.join(ROOT, 'docs', 'api');
    const want = files(out);
    const have = files(committed);
    assert.ok(want.length > 10, `typedoc wrote ${want.length} pages`);
    const missing = want.filter((f) => !have.includes(f));
    const extra = have.filter((f) => !want.includes(f));
    const changed = want.filter((f) => have.includes(f) && !fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(committed, f))));
    assert.deepEqual(
      { missing, extra, changed },
      { missing: [], extra: [], changed: [] },
      'docs/api/ is stale: run `npm run docs:api` and commit docs/api/',
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
