'use strict';
// node:net echo server on N node:cluster workers (processes; the primary hands out connections
// round-robin, node's default on Linux): the node side of the echo2 scenario.
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', workers: 2 });

if (!require('./cluster-primary.js')(opt.workers)) {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  server.listen({ port: opt.port, host: opt.host, backlog: 4096 });
}
