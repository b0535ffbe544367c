'use strict';
// node:net file sender: `fs.createReadStream(file).pipe(socket)` over and over (default
// highWaterMark, as a user would write it) until the receiver goes away.
const fs = require('node:fs');
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', file: '' });

const socket = net.connect({ port: opt.port, host: opt.host }, () => {
  process.stdout.write('ready\n');
  again();
});
function again() {
  const rs = fs.createReadStream(opt.file);
  rs.pipe(socket, { end: false });
  rs.on('end', again);
}
socket.on('error', () => process.exit(0));
socket.on('close', () => process.exit(0));
