/**
 * Micro-benchmark of maio/dgram against node:dgram: a sender and a receiver
 * of the same implementation in this process on 127.0.0.1, 1,200-byte
 * datagrams sent 32 per turn with at most 256 not yet received (paced by
 * the receiver, so the kernel drops none), for MAIO_BENCH_SECONDS (default
 * 2) per round, MAIO_BENCH_ROUNDS rounds (default 3) in rotated order.
 * Prints datagrams/s and this process's CPU µs per datagram (both ends),
 * median with lowest and highest round. node:dgram runs twice (A/A): the
 * spread between them is the noise of the run.
 * Run: `npm run build:ts && node dist/bench/micro/dgram-compat.js`
 */
import * as nodeDgram from 'node:dgram';
import * as mdgram from '../../src/dgram/compat/index';

type Impl = typeof nodeDgram;
const contenders: [string, Impl][] = [
  ['node:dgram', nodeDgram],
  ['maio/dgram', mdgram as unknown as Impl],
  ['node:dgram (A/A)', nodeDgram],
];
const SECONDS = Number(process.env.MAIO_BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.MAIO_BENCH_ROUNDS ?? 3);
const SIZE = 1200;
const BURST = 32;
const WINDOW = 256;

async function round(impl: Impl): Promise<{ rate: number; cpuUs: number }> {
  const rx = impl.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  const tx = impl.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
  let got = 0;
  rx.on('message', () => got++);
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
  const port = rx.address().port;
  const payload = Buffer.alloc(SIZE, 7);
  let sent = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = Date.now() + SECONDS * 1000;
  await new Promise<void>((done) => {
    const pump = (): void => {
      if (Date.now() >= end) return done();
      for (let i = 0; i < BURST && sent - got < WINDOW; i++, sent++) tx.send(payload, port, '127.0.0.1');
      setImmediate(pump);
    };
    pump();
  });
  const until = Date.now() + 2000;
  while (got < sent && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await new Promise<void>((r) => tx.close(() => r()));
  await new Promise<void>((r) => rx.close(() => r()));
  if (got < sent) console.log(`  (${sent - got} of ${sent} datagrams lost)`);
  return { rate: got / secs, cpuUs: (cpu.user + cpu.system) / got };
}

async function main(): Promise<void> {
  const results = new Map<string, { rate: number; cpuUs: number }[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const [name, impl] = contenders[(k + r) % contenders.length];
      const res = await round(impl);
      (results.get(name) ?? results.set(name, []).get(name)!).push(res);
    }
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`${SIZE}-byte datagrams, ${BURST} per turn, window ${WINDOW}, ${ROUNDS} rounds x ${SECONDS} s`);
  for (const [name] of contenders) {
    const rs = results.get(name)!;
    const rates = rs.map((x) => x.rate);
    const cpus = rs.map((x) => x.cpuUs);
    console.log(
      `${name.padEnd(18)} ${Math.round(med(rates)).toLocaleString('en').padStart(9)} datagrams/s [${Math.round(Math.min(...rates))}-${Math.round(Math.max(...rates))}]` +
        `  ${med(cpus).toFixed(2)} CPU µs/datagram [${Math.min(...cpus).toFixed(2)}-${Math.max(...cpus).toFixed(2)}]`,
    );
  }
}

void main();
