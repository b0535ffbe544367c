'use strict';
// Bun bulk sender (Bun.connect): writes one reused buffer whenever the socket can take it.
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', size: 65536 });

const chunk = Buffer.alloc(opt.size, 'm');
let off = 0; // bytes of `chunk` already taken by a partial write

function pump(socket) {
  for (;;) {
    const n = socket.write(off ? chunk.subarray(off) : chunk);
    if (n <= 0) return;
    off = (off + n) % chunk.length;
    if (off !== 0) return; // partial write: wait for drain
  }
}
Bun.connect({
  hostname: opt.host,
  port: opt.port,
  socket: {
    open(socket) { process.stdout.write('ready\n'); pump(socket); },
    drain(socket) { pump(socket); },
    close() { process.exit(0); },
    error() { process.exit(0); },
  },
}).catch(() => process.exit(1));
