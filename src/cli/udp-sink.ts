/** maio udp-sink: bind and discard datagrams (each message is released when the handler returns). */
import { createUdpSocket } from '../dgram/udp-socket';
import { announce, gbits, onSignals, parseArgs } from './args';

export const usage = 'maio udp-sink [--port P] [--host H] [--gro 1] [--read-size B]';
export const help = `  --port P       port to bind (default 0: any free port; the one taken is printed as "listening <port>")
  --host H       address to bind (default 127.0.0.1; an IPv6 literal binds a udp6 socket)
  --gro 0|1      UDP_GRO: several datagrams of a flow per receive buffer (default 1)
  --read-size B  receive buffer size (default 65536; a longer datagram is truncated)
  On SIGINT/SIGTERM it prints the datagrams and bytes received, the rate and the socket's stats on stderr.`;

export function run(argv: string[]): void {
  const o = parseArgs(argv, { port: 'number', host: 'string', gro: 'number', 'read-size': 'number' }, {
    port: 0 as number,
    host: '127.0.0.1' as string,
    gro: 1 as number,
    'read-size': 0 as number,
  });
  announce();
  const sock = createUdpSocket({
    type: o.host.includes(':') ? 'udp6' : 'udp4',
    gro: o.gro !== 0,
    recvBufferSize: 8 << 20,
    ...(o['read-size'] ? { readBufferSize: o['read-size'] } : {}),
  });
  let first = 0;
  let last = 0;
  sock.on('message', () => {
    last = performance.now();
    if (!first) first = last;
  });
  sock.on('error', (err) => process.stderr.write(`maio udp-sink: ${err.message}\n`));
  sock.bind(o.port, o.host).then(
    (a) => process.stdout.write(`listening ${a.port}\n`),
    (err: Error) => {
      process.stderr.write(`maio udp-sink: ${err.message}\n`);
      process.exit(1);
    },
  );
  onSignals(() => {
    const s = sock.stats();
    const secs = first ? (last - first) / 1000 : 0;
    const rate = secs > 0 ? Math.round(s.datagramsIn / secs) : 0;
    process.stderr.write(
      `maio udp-sink: ${s.datagramsIn} datagrams, ${s.bytesIn} bytes in ${secs.toFixed(2)} s (${rate} datagrams/s, ${gbits(s.bytesIn, secs)} Gbit/s); ` +
        `gro batches ${s.groBatches} (gro ${s.gro.enabled ? 'on' : `off: ${s.gro.reason}`}), truncated ${s.truncated}, no-buffer events ${s.noBufferEvents}\n`,
    );
    sock.close(() => process.exit(0));
  });
}
