'use strict';
// node:dgram UDP relay, the bench's peer of `maio proxy --udp`: one listening socket, and per
// client address:port one socket connected to the upstream (so replies go back to that client).
// Each datagram arrives as a fresh Buffer and is sent on as it is (node:dgram's one copy each way).
const dgram = require('node:dgram');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', upstream: 0, 'upstream-host': '127.0.0.1', 'idle-timeout': 60 });

const listener = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const sessions = new Map();
listener.on('message', (msg, from) => {
  const key = `${from.address}:${from.port}`;
  let s = sessions.get(key);
  if (!s) {
    const sock = dgram.createSocket('udp4');
    s = { sock, last: Date.now() };
    sessions.set(key, s);
    sock.on('message', (reply) => {
      s.last = Date.now();
      listener.send(reply, from.port, from.address);
    });
    sock.on('error', () => {});
    sock.connect(opt.upstream, opt['upstream-host']);
    s.queue = [msg];
    sock.once('connect', () => {
      for (const m of s.queue) sock.send(m);
      s.queue = null;
    });
    return;
  }
  s.last = Date.now();
  if (s.queue) s.queue.push(msg);
  else s.sock.send(msg);
});
setInterval(() => {
  const now = Date.now();
  for (const [k, s] of sessions) if (now - s.last > opt['idle-timeout'] * 1000) { s.sock.close(); sessions.delete(k); }
}, 1000).unref();
listener.bind(opt.port, opt.host, () => console.log('listening', listener.address().port));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
