'use strict';
// Bun's HTTP server (Bun.serve) answering every request with a fixed body (keep-alive); HTTPS
// with --cert/--key. The same options and body as servers/node-http.js.
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', net: 'bun', size: 13, cert: '', key: '' });

const body = opt.size === 13 ? Buffer.from('hello, world\n') : Buffer.alloc(opt.size, 'x');
const headers = { 'Content-Type': 'application/octet-stream' };
const server = Bun.serve({
  hostname: opt.host,
  port: opt.port,
  ...(opt.cert ? { tls: { cert: Bun.file(opt.cert), key: Bun.file(opt.key) } } : {}),
  fetch() {
    return new Response(body, { headers });
  },
});
process.stdout.write(`listening ${server.port}\n`);
