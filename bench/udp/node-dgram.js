// node:dgram sink or blast with the shape of maio udp-sink / udp-blast (the reference of bench/udp/run.sh).
// usage: node node-dgram.js sink | node node-dgram.js blast <port> [seconds]
const dgram = require('node:dgram');
const [mode, portArg, durArg] = process.argv.slice(2);
if (mode === 'sink') {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  let n = 0, bytes = 0, first = 0, last = 0;
  s.on('message', (m) => { n++; bytes += m.length; last = performance.now(); if (!first) first = last; });
  s.bind(0, '127.0.0.1', () => console.log('listening', s.address().port));
  process.on('SIGINT', () => { const secs = (last - first) / 1000; console.error(`node sink: ${n} datagrams in ${secs.toFixed(2)} s (${Math.round(n / secs)} datagrams/s)`); process.exit(0); });
} else {
  const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 8 << 20 });
  const port = Number(portArg), end = performance.now() + Number(durArg || 3) * 1000;
  const buf = Buffer.alloc(1400);
  let inflight = 0, sent = 0; const start = performance.now();
  const done = () => { inflight--; sent++; };
  const pump = () => {
    if (performance.now() > end) { const secs = (performance.now() - start) / 1000; console.error(`node blast: ${sent} datagrams in ${secs.toFixed(2)} s (${Math.round(sent / secs)} datagrams/s)`); return s.close(); }
    while (inflight < 256) { inflight++; s.send(buf, port, '127.0.0.1', done); }
    setImmediate(pump);
  };
  pump();
}
