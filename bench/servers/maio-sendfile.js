'use strict';
// maio file sender: `socket.sendFile(file)` over and over until the receiver goes away.
// `--mode sendfile|splice` picks the kernel path (default: maio's default).
const path = require('node:path');
const maio = require(path.join(__dirname, '..', '..', 'dist', 'src', 'index.js'));
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', file: '', mode: '' });

const socket = maio.connect({ port: opt.port, host: opt.host });
socket.on('error', () => process.exit(0));
socket.on('close', () => process.exit(0));
socket.on('connect', async () => {
  process.stdout.write('ready\n');
  const options = opt.mode ? { mode: opt.mode } : {};
  try {
    for (;;) await socket.sendFile(opt.file, options);
  } catch {
    process.exit(0); // the receiver closed
  }
});
