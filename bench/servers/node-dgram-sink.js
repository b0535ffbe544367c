'use strict';
// node:dgram receiver of the UDP scenarios: counts and discards datagrams; prints
// "listening <port>" when bound, and its totals on stderr on SIGINT/SIGTERM (and exits) or on
// SIGUSR2 (and goes on: the receive scenarios read the running totals at the window's edges).
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
const totals = () => process.stderr.write(`node dgram sink: ${n} datagrams, ${bytes} bytes in ${((last - first) / 1000).toFixed(3)} s\n`);
const stop = () => {
  totals();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.on('SIGUSR2', totals);
s.bind(opt.port, opt.host, () => process.stdout.write(`listening ${s.address().port}\n`));
