/**
 * maio blast: connect and send pool buffers as fast as the peer takes them
 * (send(): each buffer's ownership goes to the kernel, back to the pool after).
 * Stops after --duration seconds or --bytes bytes (0: until the peer closes).
 */
import { connect } from '../net/server';
import { defaultPool } from '../pool/pool';
import { announce, gbits, onSignals, parseArgs } from './args';

export const usage = 'maio blast --port P [--host H] [--size 65536] [--duration S] [--bytes N]';
export const help = `  --port P       port to connect to (required)
  --host H       host to connect to (default 127.0.0.1)
  --size B       bytes per pool buffer sent (default 65536, at most the pool's largest class)
  --duration S   stop after S seconds (default 0: until --bytes, or until interrupted)
  --bytes N      stop after N bytes (default 0: no limit)
  Prints "ready" once connected, and the bytes sent and the rate on stderr at the end.`;

export function run(argv: string[]): void {
  const o = parseArgs(
    argv,
    { port: 'number', host: 'string', size: 'number', duration: 'number', bytes: 'number' },
    { port: 0 as number, host: '127.0.0.1' as string, size: 65536 as number, duration: 0 as number, bytes: 0 as number },
  );
  if (!o.port) throw new Error('--port is required');
  const pool = defaultPool();
  if (!Number.isInteger(o.size) || o.size < 1 || o.size > pool.maxAllocSize) {
    throw new Error(`--size must be an integer in [1, ${pool.maxAllocSize}]`);
  }
  announce();
  const socket = connect({ port: o.port, host: o.host });
  let sent = 0;
  let start = 0;
  let done = false;
  const report = () => {
    const secs = start ? (performance.now() - start) / 1000 : 0;
    const zc = socket.stats().zeroCopy;
    process.stderr.write(
      `maio blast: ${sent} bytes in ${secs.toFixed(2)} s (${gbits(socket.bytesWritten, secs)} Gbit/s); zero-copy ${zc.state}: ${zc.reason}\n`,
    );
  };
  const finish = () => {
    if (done) return;
    done = true;
    socket.end();
  };
  const pump = () => {
    while (!done) {
      if (o.bytes && sent >= o.bytes) return finish();
      const n = o.bytes ? Math.min(o.size, o.bytes - sent) : o.size;
      const buf = pool.tryAlloc(n);
      if (!buf) {
        // Every buffer is in flight: continue when one comes back.
        pool.allocWait(n).then((b) => {
          b.release();
          pump();
        }, () => {});
        return;
      }
      sent += n;
      if (!socket.send(buf)) return; // 'drain' resumes
    }
  };
  socket.on('connect', () => {
    process.stdout.write('ready\n');
    start = performance.now();
    if (o.duration) setTimeout(finish, o.duration * 1000).unref();
    pump();
  });
  socket.on('drain', pump);
  socket.on('data', () => {});
  socket.on('error', (err: Error) => {
    if (!start) {
      process.stderr.write(`maio blast: ${err.message}\n`);
      process.exit(1);
    }
  });
  socket.on('close', () => {
    report();
    process.exit(0);
  });
  onSignals(() => {
    done = true;
    socket.destroy();
  });
}
