/** maio echo: every received buffer is sent straight back (send(): no copy in JS, ownership to the kernel). */
import { createServer, type Server } from '../net/server';
import type { Socket } from '../net/socket';
import type { IoBuffer } from '../pool/buffer';
import { announce, onSignals, parseArgs, printListening } from './args';
import { inCliWorker, runInWorkers, takeWorkerFlags, workersHelp } from './workers';
import type { AddressInfo } from 'node:net';

export const usage = 'maio echo [--port P] [--host H] [--workers N|auto] [--cpus LIST]';
export const help = `  --port P   port to listen on (default 0: any free port; the one taken is printed as "listening <port>")
  --host H   address to listen on (default 127.0.0.1)
${workersHelp}`;

// One set of handlers for every connection (`this` is the socket): no closures per connection,
// which a server holding 10,000 idle ones pays for in heap.
function onData(this: Socket, buf: IoBuffer): void {
  // Peer not reading: stop reading until what we sent has gone.
  if (!this.send(buf)) this.pause();
}
function onDrain(this: Socket): void {
  this.resume();
}
function onError(): void {}

export function run(argv: string[]): Server | null {
  const w = takeWorkerFlags(argv);
  const o = parseArgs(w.rest, { port: 'number', host: 'string' }, { port: 0 as number, host: '127.0.0.1' as string });
  announce();
  if (w.workers !== null && !inCliWorker()) {
    runInWorkers('echo', w);
    return null;
  }
  const sockets = new Set<Socket>();
  function onClose(this: Socket): void {
    sockets.delete(this);
  }
  const server = createServer((s) => {
    sockets.add(s);
    s.on('data', onData);
    s.on('drain', onDrain);
    s.on('error', onError);
    s.on('close', onClose);
  });
  server.on('error', (err: Error) => {
    process.stderr.write(`maio echo: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(o.port, o.host, () => {
    printListening((server.address() as AddressInfo).port);
  });
  onSignals(() => {
    server.close(() => process.exit(0));
    for (const s of sockets) s.destroy();
  });
  return server;
}
