'use strict';
// node:net pipe proxy (servers/node-proxy.js's `a.pipe(b); b.pipe(a)`) on N node:cluster workers
// (processes; the primary hands connections out round-robin): the node side of the proxy-2w scenario.
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', upstream: 0, 'upstream-host': '127.0.0.1', workers: 2 });

if (!require('./cluster-primary.js')(opt.workers)) {
  const server = net.createServer({ allowHalfOpen: true }, (a) => {
    const b = net.connect({ port: opt.upstream, host: opt['upstream-host'], allowHalfOpen: true });
    a.pipe(b);
    b.pipe(a);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  server.listen({ port: opt.port, host: opt.host, backlog: 1024 });
}
