'use strict';
// node:dgram sender of the UDP scenarios: one connected socket, 1,400-byte datagrams, at most
// 256 sends in flight (send() is asynchronous: an unbounded loop would only queue memory).
// Stops after --duration seconds or on SIGINT/SIGTERM; prints its totals on stderr.
const dgram = require('node:dgram');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', size: 1400, duration: 86400 });

const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 8 << 20 });
const buf = Buffer.alloc(opt.size);
const start = performance.now();
const end = start + opt.duration * 1000;
let inflight = 0;
let sent = 0;
let errors = 0;
let stopped = false;
const done = (err) => {
  inflight--;
  if (err) errors++;
  else sent++;
};
const finish = () => {
  if (stopped) return;
  stopped = true;
  const secs = (performance.now() - start) / 1000;
  process.stderr.write(`node dgram send: ${sent} datagrams, ${sent * opt.size} bytes in ${secs.toFixed(3)} s (errors ${errors})\n`);
  process.exit(0);
};
const pump = () => {
  if (stopped) return;
  if (performance.now() > end) return finish();
  while (inflight < 256) {
    inflight++;
    s.send(buf, done);
  }
  setImmediate(pump);
};
s.connect(opt.port, opt.host, () => {
  process.stdout.write('ready\n');
  pump();
});
s.on('error', () => errors++);
process.on('SIGINT', finish);
process.on('SIGTERM', finish);
