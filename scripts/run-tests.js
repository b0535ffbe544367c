#!/usr/bin/env node
// Runs the compiled test suite (dist/test) with Node's built-in runner.
// Usage: node scripts/run-tests.js [test files or folders under dist/test]
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const targets = process.argv.slice(2);
const args = [
  '--test',
  '--test-concurrency=1',
  '--test-timeout=300000',
  ...(targets.length ? targets : [path.join('dist', 'test')]),
];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
