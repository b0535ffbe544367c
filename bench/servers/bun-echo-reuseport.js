'use strict';
// Bun echo server on N processes sharing one port through SO_REUSEPORT (Bun.listen's reusePort):
// the Bun side of the echo2 scenario. The first process starts the others (`--workers`), prints
// `listening <port>` once all of them listen, and kills them on SIGTERM/SIGINT. The handlers are
// bun-echo.js's.
const { spawn } = require('node:child_process');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', workers: 2, child: 0 });

if (!opt.child) {
  if (!opt.port) throw new Error('--port is required (the processes must agree on it)');
  const kids = [];
  let listening = 0;
  for (let i = 0; i < opt.workers; i++) {
    const kid = spawn(process.execPath, [__filename, '--port', String(opt.port), '--host', opt.host, '--child', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    kids.push(kid);
    kid.stdout.on('data', (d) => {
      if (String(d).includes('listening') && ++listening === opt.workers) process.stdout.write(`listening ${opt.port}\n`);
    });
    kid.on('exit', () => process.exit(1));
  }
  const stop = () => {
    for (const k of kids) k.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const server = Bun.listen({
    hostname: opt.host,
    port: opt.port,
    reusePort: true,
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
}
