/**
 * Micro-benchmark of the in-kernel paths, all contenders in the same run,
 * in rotated order, against a receiver in another process (the C sink from
 * bench/c when built, else the node:net sink):
 *
 *   send file   maio sendFile, mode 'sendfile' (readiness-driven sendfile(2),
 *               the default) | mode 'splice' (SPLICE chains) | sendfile(2) on a
 *               blocking socket (synchronous; bench/build/sendfile in its own
 *               process, which times its sendfile loop and reports that
 *               loop's CPU, as this process did when the addon had a
 *               sendfileSync; skipped when the C tools are not built) |
 *               node:net createReadStream().pipe(socket)
 *   forward     a node:net sender process -> proxy -> sink, with the proxy
 *               being maio forwardFd | node:net a.pipe(b) | none (direct)
 *
 * The file lives in /dev/shm (tmpfs) so the disk is not measured. Besides
 * Gbit/s, each row has the CPU seconds per GB this process used during the
 * transfer (process.cpuUsage: all threads, io-wq workers included), which is
 * steadier than throughput on a busy machine.
 * Run: `node dist/bench/micro/paths.js` (MAIO_BENCH_BYTES, MAIO_BENCH_ROUNDS,
 * MAIO_BENCH_ONLY=file|forward, MAIO_BENCH_VERBOSE=1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { backend } from '../../src/backend';
import { native } from '../../src/core/native';
import { decodeSockaddr, sockaddr } from '../../src/net/address';
import { forwardFd } from '../../src/paths/splice-forward';
import { sendFile } from '../../src/net/send-file';
import { Ring } from '../../src/ring/ring';

const BYTES = Number(process.env.MAIO_BENCH_BYTES ?? 1 << 30);
const ROUNDS = Number(process.env.MAIO_BENCH_ROUNDS ?? 3);
/** 'file' or 'forward': only that half. */
const ONLY = process.env.MAIO_BENCH_ONLY;
const root = path.resolve(__dirname, '..', '..', '..');

interface Row {
  path: string;
  contender: string;
  gbitPerSec: number;
  /** this process's CPU s per GB, median over rounds */
  cpuSPerGB: number;
  /** every round, Gbit/s */
  rounds: string;
}

async function startSink(): Promise<{ port: number; kind: string; child: ChildProcess }> {
  const c = path.join(root, 'bench', 'build', 'sink');
  const useC = fs.existsSync(c);
  const child = useC
    ? spawn(c, ['0', String(512 << 10)], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, [path.join(root, 'bench', 'servers', 'node-sink.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const m = /listening (\d+)/.exec(line.toString());
  if (!m) throw new Error(`sink said ${line}`);
  return { port: Number(m[1]), kind: useC ? 'C sink, 512 KiB reads' : 'node:net sink', child };
}

async function rawConnect(port: number): Promise<number> {
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  n.sockConnectSync(fd, sockaddr('127.0.0.1', port));
  for (let i = 0; i < 1000; i++) {
    try {
      n.sockName(fd, true);
      if (n.sockError(fd) === 0) return fd;
    } catch {
      // not yet connected
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error('connect timed out');
}

function makeFile(): string {
  const file = path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', `maio-bench-paths-${process.pid}`);
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  const fd = fs.openSync(file, 'w');
  for (let done = 0; done < BYTES; done += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, BYTES - done));
  fs.closeSync(fd);
  return file;
}

const gbit = (bytes: number, ns: bigint) => (bytes * 8) / Number(ns);

/** Gbit/s, or Gbit/s and CPU s/GB measured by a contender in another process. */
type Outcome = number | { gbitPerSec: number; cpuSPerGB: number };
type Contender = [string, () => Promise<Outcome>];

/** bench/c/sendfile.c, `once`: sends the file once and reports its own wall and CPU time. */
async function cSendfile(tool: string, port: number, file: string): Promise<Outcome> {
  const child = spawn(tool, [String(port), file, 'once'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  const m = /^sent (\d+) (\d+) (\d+)/.exec(out);
  if (code !== 0 || !m) throw new Error(`${tool} exited with ${code}: ${out}`);
  const bytes = Number(m[1]);
  return { gbitPerSec: gbit(bytes, BigInt(m[2])), cpuSPerGB: Number(m[3]) / 1e9 / (bytes / 1e9) };
}

function fileContenders(ring: Ring, file: string, port: number): Contender[] {
  const sendfileTool = path.join(root, 'bench', 'build', 'sendfile');
  const contenders: Contender[] = [
    [
      "maio sendFile, mode 'sendfile' (default)",
      async () => {
        const sock = await rawConnect(port);
        const fd = fs.openSync(file, 'r');
        const t0 = process.hrtime.bigint();
        await sendFile(ring, sock, fd, { mode: 'sendfile' });
        const g = gbit(BYTES, process.hrtime.bigint() - t0);
        fs.closeSync(fd);
        fs.closeSync(sock);
        return g;
      },
    ],
    [
      "maio sendFile, mode 'splice' (SPLICE chains)",
      async () => {
        const sock = await rawConnect(port);
        const fd = fs.openSync(file, 'r');
        const t0 = process.hrtime.bigint();
        await sendFile(ring, sock, fd, { mode: 'splice', chunksInFlight: 8 });
        const g = gbit(BYTES, process.hrtime.bigint() - t0);
        fs.closeSync(fd);
        fs.closeSync(sock);
        return g;
      },
    ],
    [
      'node:net createReadStream().pipe()',
      async () => {
        const sock = net.connect(port, '127.0.0.1');
        await once(sock, 'connect');
        const t0 = process.hrtime.bigint();
        fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(sock);
        await once(sock, 'finish');
        const g = gbit(BYTES, process.hrtime.bigint() - t0);
        sock.destroy();
        return g;
      },
    ],
  ];
  if (fs.existsSync(sendfileTool)) contenders.splice(2, 0, ['sendfile(2), blocking socket', () => cSendfile(sendfileTool, port, file)]);
  return contenders;
}

/** A node:net sender in another process: connects to `port`, writes BYTES, ends. */
function sender(port: number): ChildProcess {
  const code = `
    const net = require('node:net');
    const buf = Buffer.alloc(1 << 20, 7);
    const s = net.connect(${port}, '127.0.0.1', () => {
      let left = ${BYTES};
      const go = () => { while (left > 0) { const n = Math.min(buf.length, left); left -= n; if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) return s.once('drain', go); } s.end(); };
      go();
    });
    s.on('finish', () => process.exit(0));`;
  return spawn(process.execPath, ['-e', code], { stdio: 'inherit' });
}

function forwardContenders(ring: Ring, sinkPort: number): Contender[] {
  const n = native();
  const rawListen = () => {
    const fd = n.sockOpen(4, 'tcp');
    n.sockBind(fd, sockaddr('127.0.0.1', 0));
    n.sockListen(fd, 8);
    return { fd, port: decodeSockaddr(n.sockName(fd, false)).port };
  };
  return [
    [
      'maio forwardFd (splice, two pipes)',
      async () => {
        const l = rawListen();
        const out = await rawConnect(sinkPort);
        const t0 = process.hrtime.bigint();
        const exited = once(sender(l.port), 'exit');
        let a = -1;
        while ((a = n.sockAccept(l.fd)) < 0) await new Promise((r) => setTimeout(r, 1));
        const fwd = forwardFd(ring, a, out);
        await fwd.finished();
        await exited;
        const g = gbit(BYTES, process.hrtime.bigint() - t0);
        for (const fd of [a, out, l.fd]) fs.closeSync(fd);
        return g;
      },
    ],
    [
      'node:net a.pipe(b) proxy',
      async () => {
        const server = net.createServer();
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        const t0 = process.hrtime.bigint();
        const exited = once(sender((server.address() as net.AddressInfo).port), 'exit');
        const [a] = (await once(server, 'connection')) as [net.Socket];
        const b = net.connect(sinkPort, '127.0.0.1');
        a.pipe(b);
        await once(b, 'finish');
        await exited;
        const g = gbit(BYTES, process.hrtime.bigint() - t0);
        b.destroy();
        server.close();
        return g;
      },
    ],
    [
      'direct (no proxy)',
      async () => {
        const t0 = process.hrtime.bigint();
        await once(sender(sinkPort), 'exit');
        return gbit(BYTES, process.hrtime.bigint() - t0);
      },
    ],
  ];
}

async function measure(pathName: string, contenders: Contender[]): Promise<Row[]> {
  const log = process.env.MAIO_BENCH_VERBOSE ? (s: string) => console.error(s) : () => {};
  const results = contenders.map(() => [] as number[]);
  const cpu = contenders.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length; // rotate the order
      log(`${pathName}: ${contenders[i][0]}...`);
      const c0 = process.cpuUsage();
      const out = await contenders[i][1]();
      const c = process.cpuUsage(c0);
      results[i].push(typeof out === 'number' ? out : out.gbitPerSec);
      cpu[i].push(typeof out === 'number' ? (c.user + c.system) / 1e6 / (BYTES / 1e9) : out.cpuSPerGB);
      log(`  ${results[i][results[i].length - 1].toFixed(1)} Gbit/s, ${cpu[i][cpu[i].length - 1].toFixed(3)} CPU s/GB`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  return contenders.map(([name], i) => {
    return {
      path: pathName,
      contender: name,
      gbitPerSec: Number(median(results[i]).toFixed(1)),
      cpuSPerGB: Number(median(cpu[i]).toFixed(3)),
      rounds: results[i].map((g) => g.toFixed(1)).join(' '),
    };
  });
}

export async function benchPaths(): Promise<object> {
  const b = backend();
  const ring = Ring.current();
  if (!ring.capabilities.splice) return { name: 'paths', skipped: `backend is ${b.mode}: ${b.reason}` };
  const sink = await startSink();
  const file = makeFile();
  try {
    const rows = [
      ...(ONLY === 'forward' ? [] : await measure('file -> socket', fileContenders(ring, file, sink.port))),
      ...(ONLY === 'file' ? [] : await measure('socket -> socket', forwardContenders(ring, sink.port))),
    ];
    return { name: 'paths', bytes: BYTES, rounds: ROUNDS, receiver: sink.kind, file, rows };
  } finally {
    fs.rmSync(file, { force: true });
    sink.child.kill();
  }
}

if (require.main === module) {
  benchPaths().then(
    (r) => {
      const { rows, ...rest } = r as { rows?: Row[] };
      console.log(JSON.stringify(rest));
      if (rows) console.table(rows);
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
