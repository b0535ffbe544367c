'use strict';
// node:net echo server: the peer every ratio is taken against (and, run twice, the A/A control).
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1' });

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen({ port: opt.port, host: opt.host, backlog: 4096 }, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
