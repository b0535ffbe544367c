/** maio sockets for the forwarding tests: a maio socket accepted from a node:net client, one connected to a node:net server. */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import { backend } from '../../src/backend';
import { connect, createServer } from '../../src/net/server';
import type { Socket } from '../../src/net/socket';
import { netSkip } from '../net/helpers';
import { listen } from './helpers';

/** Sockets need a working backend; splice needs io_uring. */
export const socketSkip: string | false = (() => {
  try {
    const b = backend();
    if (b.mode !== 'io_uring') return `forwarding tests run on io_uring; backend is ${b.mode} (${b.reason})`;
    return false;
  } catch (e) {
    return String(e);
  }
})();

/** Buffer forwarding and the proxy need sockets only: they run on io_uring and on the epoll fallback. */
export const bufferSkip: string | false = netSkip;

/** Splice forwarding needs io_uring's SPLICE op (not emulated by the epoll fallback). */
export const spliceSkip: string | false = (() => {
  try {
    const b = backend();
    return b.mode === 'io_uring' ? false : `splice forwarding needs io_uring (SPLICE ops); backend is ${b.mode} (${b.reason})`;
  } catch (e) {
    return String(e);
  }
})();

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SOURCE = (() => {
  const r = rng(777);
  const b = Buffer.alloc(4 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((r() * 4294967296) >>> 0, i);
  return b;
})();

/** Writes `size` pseudo-random bytes in random chunks (1 B .. 1 MiB, log-uniform) with backpressure, then ends. */
export async function sendChunks(sock: net.Socket, size: number, seed: number): Promise<string> {
  const r = rng(seed);
  const h = createHash('sha256');
  for (let done = 0; done < size; ) {
    const n = Math.min(size - done, Math.max(1, Math.floor(Math.exp(r() * Math.log(1 << 20)))));
    const off = Math.floor(r() * (SOURCE.length - n));
    const chunk = SOURCE.subarray(off, off + n);
    h.update(chunk);
    done += n;
    if (!sock.write(chunk)) await once(sock, 'drain');
  }
  sock.end();
  return h.digest('hex');
}

/**
 *   node:net client C  ->  maio a (accepted)  ==forward==  maio b (connected)  ->  node:net peer U
 */
export async function maioPair(options: { allowHalfOpen?: boolean } = {}) {
  const half = options.allowHalfOpen ?? true;
  const upstream = net.createServer({ allowHalfOpen: true });
  const uport = await listen(upstream);
  const server = createServer({ allowHalfOpen: half });
  const addr = await server.listenAsync(0, '127.0.0.1');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const C = net.connect({ port: addr.port, host: '127.0.0.1', allowHalfOpen: true });
  const [a] = await accepted;
  const gotU = once(upstream, 'connection') as Promise<[net.Socket]>;
  const b = connect({ port: uport, host: '127.0.0.1', allowHalfOpen: half });
  await once(b, 'connect');
  const [U] = await gotU;
  if (C.connecting) await once(C, 'connect');
  return {
    a,
    b,
    C,
    U,
    close() {
      a.destroy();
      b.destroy();
      C.destroy();
      U.destroy();
      upstream.close();
      server.close();
    },
  };
}
