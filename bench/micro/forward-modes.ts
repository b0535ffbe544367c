/**
 * forward() 'buffers' vs 'splice': node:net client -> maio a ==forward== maio b -> node:net sink,
 * one direction; the sender is a child process, the forwarder and the sink share this one.
 * Rounds alternate the modes.  node dist/bench/micro/forward-modes.js [MiB] [rounds]
 *
 * Measured 2026-11-25, Linux 6.18, 2 vCPUs, io_uring, `node dist/bench/micro/forward-modes.js 1024 4`:
 *   buffers: median 13.45 Gbit/s (11.49, 13.45, 11.34, 14.47)
 *   splice:  median 14.47 Gbit/s (14.47, 14.57, 12.65, 14.10)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { connect, createServer } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { forward, type ForwardMode } from '../../src/paths/forward';

async function run(mode: ForwardMode, bytes: number): Promise<number> {
  const sink = net.createServer((s) => s.resume());
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const server = createServer({ allowHalfOpen: true });
  const addr = await server.listenAsync(0, '127.0.0.1');
  const acc = once(server, 'connection') as Promise<[Socket]>;
  // The sender in its own process (as a proxy's client would be); the sink stays here.
  const sender = spawn(process.execPath, ['-e', `const c=require('net').connect(${addr.port},'127.0.0.1');const b=Buffer.alloc(1<<20,7);let n=${bytes >> 20};(function w(){while(n>0){n--;if(!c.write(b))return c.once('drain',w)}c.end()})()`], { stdio: 'inherit' });
  const [a] = await acc;
  const b = connect({ port: (sink.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await once(b, 'connect');
  const t0 = process.hrtime.bigint();
  const fwd = forward(a, b, { mode });
  await fwd.finished();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  a.destroy();
  b.destroy();
  sender.kill();
  sink.close();
  server.close();
  return (bytes * 8) / secs / 1e9;
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 512);
  const rounds = Number(process.argv[3] ?? 4);
  const res: Record<string, number[]> = { buffers: [], splice: [] };
  for (let r = 0; r < rounds; r++) {
    for (const m of (r % 2 ? ['splice', 'buffers'] : ['buffers', 'splice']) as ForwardMode[]) res[m]!.push(await run(m, mib << 20));
  }
  for (const [m, v] of Object.entries(res)) {
    const s = [...v].sort((x, y) => x - y);
    console.log(`${m}: median ${s[s.length >> 1]!.toFixed(2)} Gbit/s  (${v.map((x) => x.toFixed(2)).join(', ')})`);
  }
}

void main();
