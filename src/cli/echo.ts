/** maio echo: every received buffer is sent straight back (send(): no copy in JS, ownership to the kernel). */
import { createServer, type Server } from '../net/server';
import type { Socket } from '../net/socket';
import { onSignals, parseArgs } from './args';

export const usage = 'maio echo --port P [--host H]';

export function run(argv: string[]): Server {
  const o = parseArgs(argv, { port: 'number', host: 'string' }, { port: 0 as number, host: '127.0.0.1' as string });
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('data', (buf) => {
      // Peer not reading: stop reading until what we sent has gone.
      if (!s.send(buf)) s.pause();
    });
    s.on('drain', () => s.resume());
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  server.on('error', (err: Error) => {
    process.stderr.write(`maio echo: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(o.port, o.host, () => {
    process.stdout.write(`listening ${server.address()!.port}\n`);
  });
  onSignals(() => {
    server.close(() => process.exit(0));
    for (const s of sockets) s.destroy();
  });
  return server;
}
