/**
 * maio udp-sink: bind and discard datagrams. It listens to 'batch': one event
 * per receive buffer (with GRO, up to 46 datagrams of 1,400 B), released when
 * the handler returns; no object or call per datagram (--event message: one
 * 'message' per datagram, for comparison).
 */
import { InvalidArgumentError } from '../core/errors';
import { createUdpSocket } from '../dgram/udp-socket';
import { announce, gbits, onSignals, parseArgs } from './args';

export const usage = 'maio udp-sink [--port P] [--host H] [--gro 1] [--read-size B] [--event batch]';
export const help = `  --port P       port to bind (default 0: any free port; the one taken is printed as "listening <port>")
  --host H       address to bind (default 127.0.0.1; an IPv6 literal binds a udp6 socket)
  --gro 0|1      UDP_GRO: several datagrams of a flow per receive buffer (default 1)
  --read-size B  receive buffer size (default 65536; a longer datagram is truncated)
  --event E      batch: one event per receive buffer (default); message: one per datagram
  On SIGINT/SIGTERM it prints the datagrams and bytes received, the rate and the socket's stats on stderr.
  SIGUSR2: prints the running totals (the same line) and goes on.`;

export function run(argv: string[]): void {
  const o = parseArgs(argv, { port: 'number', host: 'string', gro: 'number', 'read-size': 'number', event: 'string' }, {
    port: 0 as number,
    host: '127.0.0.1' as string,
    gro: 1 as number,
    'read-size': 0 as number,
    event: 'batch' as string,
  });
  if (o.event !== 'batch' && o.event !== 'message') throw new InvalidArgumentError(`--event must be batch or message, got '${o.event}'`);
  announce();
  const sock = createUdpSocket({
    type: o.host.includes(':') ? 'udp6' : 'udp4',
    gro: o.gro !== 0,
    recvBufferSize: 8 << 20,
    ...(o['read-size'] ? { readBufferSize: o['read-size'] } : {}),
  });
  let first = 0;
  let last = 0;
  // The clock is read once per wake-up (a microtask runs after the batches one wake-up delivers),
  // not per batch: as the C receiver reads it once per recvmmsg call.
  let stamping = false;
  const stamp = (): void => {
    stamping = false;
    last = performance.now();
    if (!first) first = last;
  };
  const seen = (): void => {
    if (stamping) return;
    stamping = true;
    queueMicrotask(stamp);
  };
  if (o.event === 'batch') sock.on('batch', seen);
  else sock.on('message', seen);
  sock.on('error', (err) => process.stderr.write(`maio udp-sink: ${err.message}\n`));
  sock.bind(o.port, o.host).then(
    (a) => process.stdout.write(`listening ${a.port}\n`),
    (err: Error) => {
      process.stderr.write(`maio udp-sink: ${err.message}\n`);
      process.exit(1);
    },
  );
  const totals = (): string => {
    const s = sock.stats();
    const secs = first ? (last - first) / 1000 : 0;
    const rate = secs > 0 ? Math.round(s.datagramsIn / secs) : 0;
    return (
      `maio udp-sink: ${s.datagramsIn} datagrams, ${s.bytesIn} bytes in ${secs.toFixed(2)} s (${rate} datagrams/s, ${gbits(s.bytesIn, secs)} Gbit/s); ` +
      `gro batches ${s.groBatches} (gro ${s.gro.enabled ? 'on' : `off: ${s.gro.reason}`}), truncated ${s.truncated}, no-buffer events ${s.noBufferEvents}\n`
    );
  };
  // Running totals without stopping: a benchmark reads them at the edges of its measured window.
  process.on('SIGUSR2', () => process.stderr.write(totals()));
  onSignals(() => {
    process.stderr.write(totals());
    sock.close(() => process.exit(0));
  });
}
