'use strict';
// node:net bulk sender: connects and writes one reused buffer for as long as the receiver reads,
// honouring backpressure. Exits quietly when the receiver goes away.
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', size: 65536 });

const chunk = Buffer.alloc(opt.size, 'm');
const socket = net.connect({ port: opt.port, host: opt.host }, () => {
  process.stdout.write('ready\n');
  pump();
});
function pump() {
  while (socket.write(chunk)) {
    if (socket.destroyed) return;
  }
}
socket.on('drain', pump);
socket.on('error', () => process.exit(0));
socket.on('close', () => process.exit(0));
