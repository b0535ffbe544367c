'use strict';
// Bun sink (Bun.listen): accepts connections and discards what it reads.
const opt = require('./args.js')({ port: 0, host: '127.0.0.1' });

const server = Bun.listen({
  hostname: opt.host,
  port: opt.port,
  socket: { data() {}, error(socket) { socket.end(); } },
});
process.stdout.write(`listening ${server.port}\n`);
