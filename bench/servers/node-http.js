'use strict';
// node:http server answering every request with a fixed body (keep-alive), or node:https with
// --cert/--key. `--net node`: the server listens itself (node:net). `--net maio`: a maio/net server
// accepts the connections and hands them to the same node:http server, the way README's "Add maio
// to your app" shows: net.createServer((socket) => httpServer.emit('connection', socket)).
const path = require('node:path');
const fs = require('node:fs');
const opt = require('./args.js')({ port: 0, host: '127.0.0.1', net: 'node', size: 13, cert: '', key: '' });

const body = opt.size === 13 ? Buffer.from('hello, world\n') : Buffer.alloc(opt.size, 'x');
const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) };
const handler = (req, res) => {
  res.writeHead(200, headers);
  res.end(body);
};
const tls = opt.cert ? { cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key) } : null;
const httpServer = tls ? require('node:https').createServer(tls, handler) : require('node:http').createServer(handler);
const ready = (server) => () => process.stdout.write(`listening ${server.address().port}\n`);

if (opt.net === 'maio') {
  const net = require(path.join(__dirname, '..', '..', 'dist', 'src', 'net', 'compat', 'index.js'));
  const server = net.createServer((socket) => httpServer.emit('connection', socket));
  server.listen({ port: opt.port, host: opt.host, backlog: 4096 }, ready(server));
} else if (opt.net === 'node') {
  httpServer.listen({ port: opt.port, host: opt.host, backlog: 4096 }, ready(httpServer));
} else {
  throw new Error(`--net node|maio, not ${opt.net}`);
}
