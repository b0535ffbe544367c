'use strict';
// node:net sink: accepts connections and discards what it reads (libuv reads 64 KiB at a time).
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1' });

const server = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.on('data', () => {});
});
server.listen({ port: opt.port, host: opt.host, backlog: 4096 }, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
