'use strict';
// Bun echo server on N processes sharing one port through SO_REUSEPORT (Bun.listen's reusePort):
// the Bun side of the echo2 scenario. The first process starts the others (`--workers`), prints
// `listening <port>` once all of them listen, and kills them on SIGTERM/SIGINT. Each process is
// bun-echo.js with --reusePort 1.
const { spawn } = require('node:child_process');
const path = require('node:path');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', workers: 2 });

if (!opt.port) throw new Error('--port is required (the processes must agree on it)');
const kids = [];
let listening = 0;
for (let i = 0; i < opt.workers; i++) {
  const kid = spawn(process.execPath, [path.join(__dirname, 'bun-echo.js'), '--port', String(opt.port), '--host', opt.host, '--reusePort', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  kids.push(kid);
  kid.stdout.on('data', (d) => {
    if (String(d).includes('listening') && ++listening === opt.workers) process.stdout.write(`listening ${opt.port}\n`);
  });
  kid.on('exit', () => process.exit(1));
}
const stop = () => {
  for (const k of kids) k.kill('SIGKILL');
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
