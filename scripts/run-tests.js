#!/usr/bin/env node
// Runs the compiled test suite (dist/test) with Node's built-in runner, once
// per backend: the default one (io_uring where the kernel allows it), then the
// epoll fallback (MAIO_BACKEND=epoll). With MAIO_BACKEND set, one run in that
// mode. Ends with one line summed over the runs, `N passed, N failed, N skipped`
// (failed counts cancelled tests too), and exits non-zero if any run failed.
// Usage: node scripts/run-tests.js [test files or folders under dist/test]
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const TEST_FILE = /\.test\.[cm]?js$/;

/** Test files only: helpers and fixtures under dist/test are not tests. */
function collect(target, out) {
  const p = path.resolve(root, target);
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    out.push(p); // let node --test report it
    return;
  }
  if (!st.isDirectory()) {
    out.push(p);
    return;
  }
  for (const e of fs.readdirSync(p, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.isDirectory()) collect(path.join(p, e.name), out);
    else if (TEST_FILE.test(e.name)) out.push(path.join(p, e.name));
  }
}

const targets = process.argv.slice(2);
const files = [];
for (const t of targets.length ? targets : [path.join('dist', 'test')]) collect(t, files);

function defaultSummary() {
  try {
    return require(path.join(root, 'dist', 'src', 'backend.js')).backend().summary;
  } catch (e) {
    return `backend unknown: ${e.message}`;
  }
}

function run(label, env) {
  return new Promise((resolve) => {
    process.stdout.write(`\n== maio tests: ${label}\n`);
    const args = ['--test', '--test-reporter=tap', '--test-concurrency=1', '--test-timeout=120000', ...files];
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    const counts = {};
    let rest = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      const lines = (rest + d.toString('utf8')).split('\n');
      rest = lines.pop();
      for (const line of lines) {
        // The runner's closing summary: unindented "# pass N" lines.
        const m = /^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
        if (m) counts[m[1]] = Number(m[2]);
      }
    });
    child.on('close', (code, signal) => {
      const found = counts.pass !== undefined && counts.fail !== undefined;
      const r = {
        passed: counts.pass ?? 0,
        failed: (counts.fail ?? 0) + (counts.cancelled ?? 0),
        skipped: counts.skipped ?? 0,
        ok: code === 0 && found,
      };
      if (!found) process.stdout.write(`== no test summary from node --test (exit ${code ?? signal})\n`);
      process.stdout.write(`== ${label}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped${r.ok ? '' : ' (FAILED)'}\n`);
      resolve(r);
    });
  });
}

async function main() {
  const forced = process.env.MAIO_BACKEND;
  const runs = [];
  if (forced) {
    runs.push([`MAIO_BACKEND=${forced}`, process.env]);
  } else {
    const summary = defaultSummary();
    runs.push([`default backend (${summary})`, process.env]);
    if (/^maio backend: epoll/.test(summary)) {
      process.stdout.write('== the default backend is epoll already: one run\n');
    } else {
      runs.push(['MAIO_BACKEND=epoll (the fallback)', { ...process.env, MAIO_BACKEND: 'epoll' }]);
    }
  }
  const total = { passed: 0, failed: 0, skipped: 0, ok: true };
  for (const [label, env] of runs) {
    const r = await run(label, env);
    total.passed += r.passed;
    total.failed += r.failed;
    total.skipped += r.skipped;
    total.ok = total.ok && r.ok;
  }
  process.stdout.write(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
  process.exit(total.ok ? 0 : 1);
}

main();
