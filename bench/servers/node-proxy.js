'use strict';
// node:net TCP proxy: every accepted connection is piped both ways to the upstream
// (`a.pipe(b); b.pipe(a)`), half-close and errors passed on. The bench's node:net proxy peer.
const net = require('node:net');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', upstream: 0, 'upstream-host': '127.0.0.1' });

const server = net.createServer({ allowHalfOpen: true }, (a) => {
  const b = net.connect({ port: opt.upstream, host: opt['upstream-host'], allowHalfOpen: true });
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
});
server.listen(opt.port, opt.host, () => process.stdout.write(`listening ${server.address().port}\n`));
