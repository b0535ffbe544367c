'use strict';
// Bun echo server (Bun.listen). Bun's write() may take only part of the data: the rest is kept
// and written on 'drain', and reading the connection's data stays in order. `--reusePort 1`:
// one of several processes on one port (bun-echo-reuseport.js starts them).
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', reusePort: 0 });

const server = Bun.listen({
  hostname: opt.host,
  port: opt.port,
  reusePort: opt.reusePort === 1,
  socket: {
    open(socket) { socket.data = { pending: null }; },
    data(socket, data) {
      const st = socket.data;
      if (st.pending) { st.pending = Buffer.concat([st.pending, data]); return; }
      const n = socket.write(data);
      if (n < data.length) st.pending = Buffer.from(data.subarray(Math.max(n, 0)));
    },
    drain(socket) {
      const st = socket.data;
      if (!st.pending) return;
      const n = socket.write(st.pending);
      st.pending = n < st.pending.length ? st.pending.subarray(Math.max(n, 0)) : null;
    },
    error(socket) { socket.end(); },
  },
});
process.stdout.write(`listening ${server.port}\n`);
