'use strict';
// The node:cluster primary of the *-cluster.js servers: forks `workers` processes, prints
// `listening <port>` once all of them listen, and kills them on SIGTERM/SIGINT. Returns false in
// a worker, which then runs the server itself.
const cluster = require('node:cluster');

module.exports = function runPrimary(workers) {
  if (!cluster.isPrimary) return false;
  let listening = 0;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('listening', (_w, address) => {
    if (++listening === workers) process.stdout.write(`listening ${address.port}\n`);
  });
  cluster.on('exit', () => process.exit(1));
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return true;
};
