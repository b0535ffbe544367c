'use strict';
// node:dgram receiver of the UDP scenarios: counts and discards datagrams; prints
// "listening <port>" when bound, and its totals on stderr on SIGINT/SIGTERM.
const dgram = require('node:dgram');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1' });

const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
let n = 0;
let bytes = 0;
let first = 0;
let last = 0;
s.on('message', (m) => {
  n++;
  bytes += m.length;
  last = performance.now();
  if (!first) first = last;
});
s.bind(opt.port, opt.host, () => process.stdout.write(`listening ${s.address().port}\n`));
const stop = () => {
  process.stderr.write(`node dgram sink: ${n} datagrams, ${bytes} bytes in ${((last - first) / 1000).toFixed(3)} s\n`);
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
