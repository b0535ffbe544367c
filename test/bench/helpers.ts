/** What the bench tests share: whether the C tools can be built, a fresh build of them, and a tiny run that leaves nothing behind. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildCTools, detectEnv, findRoot, runBench } from '../../bench/run';
import { pidAlive, startedPids } from '../../bench/lib/proc';
import type { Scenario } from '../../bench/lib/types';

function hasCc(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A test's skip option: false where `cc` exists, else the reason. */
export const ccSkip: false | string = hasCc() ? false : 'cc not found: the C tools cannot be built';

/** One round of a scenario at tiny timing (results under `dir`); asserts that every process it started is gone. */
export async function tinyRun(scenario: Scenario, env: ReturnType<typeof detectEnv>, dir: string, duration = 0.5): ReturnType<typeof runBench> {
  const before = startedPids.length;
  const out = await runBench({
    scenarios: [scenario],
    timing: { rounds: 1, warmup: 0.2, duration },
    env,
    outDir: path.join(dir, 'results'),
    mode: 'custom',
    command: 'test',
    log: () => undefined,
  });
  for (const pid of startedPids.slice(before)) assert.equal(pidAlive(pid), false, `pid ${pid} is still alive`);
  return out;
}

/** Runs `fn` with the C tools built into a fresh temporary directory (removed after) and the env that uses them. */
export async function withBuiltTools(prefix: string, fn: (env: ReturnType<typeof detectEnv>, dir: string) => Promise<void>): Promise<void> {
  const root = findRoot(__dirname);
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    const buildDir = path.join(dir, 'build');
    buildCTools(root, buildDir);
    await fn(detectEnv(root, buildDir), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
