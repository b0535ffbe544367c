'use strict';
// node:net echo server on N node:cluster workers (processes; the primary hands out connections
// round-robin, node's default on Linux): the node side of the echo2 scenario.
const cluster = require('node:cluster');
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', workers: 2 });

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < opt.workers; i++) cluster.fork();
  cluster.on('listening', (_w, address) => {
    if (++listening === opt.workers) process.stdout.write(`listening ${address.port}\n`);
  });
  cluster.on('exit', () => process.exit(1));
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  server.listen({ port: opt.port, host: opt.host, backlog: 4096 });
}
