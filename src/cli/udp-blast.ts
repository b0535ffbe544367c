/**
 * maio udp-blast: send datagrams from pool buffers as fast as the socket
 * takes them (each buffer's ownership goes to the kernel, back to the pool
 * after). With GSO (--gso 1) each pool buffer holds as many datagrams as one
 * UDP_SEGMENT send takes, sent with sendSegments() (--segments 1, as a C
 * sender with UDP_SEGMENT does), or one datagram per buffer batched by the
 * socket's per-turn GSO (--segments 0); --gso 0 sends them one by one.
 * With --segments 1 the blaster takes --buffers pool buffers once and sends
 * them again and again with sendSegmentsShared(), as the C sender resends its
 * one array: the kernel copies from memory in cache. A fresh pool buffer per
 * send (--buffers 0) rotates a turn's worth of 64 KiB buffers (90 of them,
 * out of L2), which made the kernel's copy a fifth slower per datagram.
 * --zerocopy is the socket's zeroCopy option (sends of 16 KiB or more go
 * SENDMSG_ZC / MSG_ZEROCOPY; 'auto' keeps that only while the kernel does
 * not copy); the end line says what the notifications reported.
 * The socket is connected to the receiver, as a C sender's is.
 */
import { createUdpSocket } from '../dgram/udp-socket';
import { GSO_MAX_BYTES } from '../dgram/udp-send';
import { SENDMSG_MAX_SEGS } from '../core/native';
import { defaultPool } from '../pool/pool';
import type { IoBuffer } from '../pool/buffer';
import type { ZeroCopyMode } from '../net/zc-policy';
import { announce, gbits, onSignals, parseArgs } from './args';

export const usage = 'maio udp-blast --port P [--host H] [--size 1400] [--duration 5] [--count N] [--gso 1] [--segments 1] [--buffers 4] [--batch 64] [--zerocopy auto]';
export const help = `  --port P       port to send to (required)
  --host H       host to send to (default 127.0.0.1)
  --size B       bytes per datagram (default 1400)
  --duration S   stop after S seconds (default 5)
  --count N      stop after N datagrams (default 0: no limit)
  --gso 0|1      UDP_SEGMENT batching (default 1)
  --segments 0|1 with GSO: one pool buffer of datagrams per send (sendSegments, default 1)
  --buffers N    with --segments 1: N pool buffers sent again and again (sendSegmentsShared,
                 default 4, as the C sender's 4 messages); 0: a fresh pool buffer per send
  --batch N      datagrams queued per event-loop turn (default 64; 4096 with --segments 1,
                 where a turn queues whole buffers and the pool bounds what is in flight)
  --zerocopy M   auto|always|never: zero-copy sends of 16 KiB or more (default auto: only
                 while the kernel reports it did not copy; loopback and veth peers copy)
  Prints "ready" once the socket is up, and the datagrams sent and the rate on stderr at the end.`;

const MAX_PENDING = 2048; // datagrams queued or with the kernel before the blaster waits a turn

export function run(argv: string[]): void {
  const o = parseArgs(
    argv,
    { port: 'number', host: 'string', size: 'number', duration: 'number', count: 'number', gso: 'number', segments: 'number', buffers: 'number', batch: 'number', zerocopy: 'string' },
    { port: 0 as number, host: '127.0.0.1' as string, size: 1400 as number, duration: 5 as number, count: 0 as number, gso: 1 as number, segments: 1 as number, buffers: 4 as number, batch: 0 as number, zerocopy: 'auto' as string },
  );
  if (o.zerocopy !== 'auto' && o.zerocopy !== 'always' && o.zerocopy !== 'never') throw new Error(`--zerocopy must be auto, always or never, got '${o.zerocopy}'`);
  if (!o.port) throw new Error('--port is required');
  if (!Number.isInteger(o.size) || o.size < 1 || o.size > 65507) throw new Error('--size must be an integer in [1, 65507]');
  if (!Number.isInteger(o.batch) || o.batch < 0) throw new Error('--batch must be a non-negative integer (0: the default)');
  if (!Number.isInteger(o.buffers) || o.buffers > 64) throw new Error('--buffers must be an integer in [0, 64]');
  const pool = defaultPool();
  announce();
  const sock = createUdpSocket({ type: o.host.includes(':') ? 'udp6' : 'udp4', gso: o.gso !== 0, sendBufferSize: 8 << 20, zeroCopy: o.zerocopy as ZeroCopyMode });
  sock.on('error', (err) => process.stderr.write(`maio udp-blast: ${err.message}\n`));
  let queued = 0;
  let done = false;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const finish = (): void => {
    if (done) return;
    done = true;
    const waitSent = (): void => {
      if (sock.sendsPending > 0) return void setTimeout(waitSent, 5);
      for (const b of warm) b.release();
      const s = sock.stats();
      const z = s.zeroCopy;
      const secs = (performance.now() - start) / 1000;
      const cpu = process.cpuUsage(cpu0);
      process.stderr.write(
        `maio udp-blast: ${s.datagramsOut} datagrams, ${s.bytesOut} bytes in ${secs.toFixed(2)} s (${Math.round(s.datagramsOut / secs)} datagrams/s, ` +
          `${gbits(s.bytesOut, secs)} Gbit/s); gso batches ${s.gsoBatches} (${s.socketSegmentSends} as SENDs with the socket's own segment size; gso ${s.gso.enabled ? 'on' : `off: ${s.gso.reason}`}), errors ${s.errors}; ` +
          `cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (user ${(cpu.user / 1e6).toFixed(2)})\n` +
          `maio udp-blast: zero-copy ${z.state}: ${z.reason}; ${z.zcSends} zero-copy sends, ${z.notCopiedSends} reported not copied, ${z.copiedSends} copied\n`,
      );
      sock.close(() => process.exit(0));
    };
    waitSent();
  };
  // Datagrams per pool buffer: 1, or what one UDP_SEGMENT send takes.
  const perBuffer = o.gso !== 0 && o.segments !== 0 && sock.stats().gso.enabled ? Math.max(1, Math.min(SENDMSG_MAX_SEGS, Math.floor(GSO_MAX_BYTES / o.size))) : 1;
  const batch = o.batch || (perBuffer > 1 ? 4096 : 64);
  // The buffers sent again and again (--buffers), taken once; none with --buffers 0.
  const warm: IoBuffer[] = [];
  if (perBuffer > 1) for (let i = 0; i < o.buffers; i++) warm.push(pool.alloc(perBuffer * o.size).setLength(perBuffer * o.size));
  let next = 0;
  const pumpSegments = (): void => {
    if (done) return;
    if (sock.sendsPending < MAX_PENDING / perBuffer) {
      for (let i = 0; i < Math.ceil(batch / perBuffer); i++) {
        if (o.count && queued >= o.count) return finish();
        const k = o.count ? Math.min(perBuffer, o.count - queued) : perBuffer;
        if (k === perBuffer && warm.length > 0) {
          sock.sendSegmentsShared(warm[next], o.size);
          next = next + 1 === warm.length ? 0 : next + 1;
        } else {
          // A fresh buffer per send (--buffers 0), or the shorter last one of --count.
          const buf = pool.tryAlloc(k * o.size);
          if (!buf) break; // every buffer is in flight: next turn
          buf.setLength(k * o.size);
          sock.sendSegments(buf, o.size);
        }
        queued += k;
      }
    }
    setImmediate(pumpSegments);
  };
  const pump = (): void => {
    if (done) return;
    if (sock.sendsPending < MAX_PENDING) {
      for (let i = 0; i < batch; i++) {
        if (o.count && queued >= o.count) return finish();
        const buf = pool.tryAlloc(o.size);
        if (!buf) break; // every buffer is in flight: next turn
        buf.setLength(o.size);
        sock.send(buf);
        queued++;
      }
    }
    setImmediate(pump);
  };
  // Connected, as the C sender: the kernel keeps the route, no lookup per send.
  sock.connect(o.port, o.host).then(
    () => {
      process.stdout.write('ready\n');
      if (o.duration) setTimeout(finish, o.duration * 1000);
      if (perBuffer > 1) pumpSegments();
      else pump();
    },
    (err: Error) => {
      process.stderr.write(`maio udp-blast: ${err.message}\n`);
      process.exit(1);
    },
  );
  onSignals(finish);
}
