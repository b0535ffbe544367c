/** Loopback plumbing for the path tests: raw fds on one side, node:net on the other. */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { backend } from '../../src/backend';
import { native } from '../../src/core/native';
import { decodeSockaddr, sockaddr } from '../../src/net/address';

/** For the raw-fd splice paths, which need io_uring: the skip says why this process runs without it. */
export const skip: string | false = (() => {
  try {
    const b = backend();
    // b.reason: 'forced by MAIO_BACKEND=epoll' when forced off, else what the probe found.
    return b.mode === 'io_uring' ? false : `needs the io_uring backend; this process runs on ${b.mode}: ${b.reason}`;
  } catch (e) {
    return `no backend: ${String(e)}`;
  }
})();
export const uring = skip === false;

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

export async function until(cond: () => boolean, what: string, rounds = 20000): Promise<void> {
  for (let i = 0; i < rounds && !cond(); i++) await tick(i < 100 ? 0 : 5);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'maio-paths-'));
}

/** Writes `size` random bytes to `file`; returns their sha256. */
export function randomFile(file: string, size: number): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < size; ) {
      const chunk = randomBytes(Math.min(1 << 20, size - done));
      fs.writeSync(fd, chunk);
      h.update(chunk);
      done += chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** sha256 of `size` zero bytes (what a sparse file reads as). */
export function zerosDigest(size: number): string {
  const h = createHash('sha256');
  const z = Buffer.alloc(1 << 20);
  for (let done = 0; done < size; done += z.length) h.update(z.subarray(0, Math.min(z.length, size - done)));
  return h.digest('hex');
}

export function fileDigest(file: string, offset: number, length: number): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let done = 0; done < length; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, length - done), offset + done);
      assert.ok(n > 0);
      h.update(buf.subarray(0, n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** What a node:net socket received until 'end': byte count and sha256. */
export function receive(sock: net.Socket): Promise<{ bytes: number; digest: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  sock.on('data', (d: Buffer) => {
    bytes += d.length;
    h.update(d);
  });
  return new Promise((resolve, reject) => {
    sock.once('end', () => resolve({ bytes, digest: h.digest('hex') }));
    sock.once('error', reject);
  });
}

/** Writes `size` random bytes to `sock` with backpressure, then ends it; returns their sha256. */
export async function sendRandom(sock: net.Socket, size: number): Promise<string> {
  const h = createHash('sha256');
  for (let done = 0; done < size; ) {
    const chunk = randomBytes(Math.min(1 << 20, size - done));
    h.update(chunk);
    done += chunk.length;
    if (!sock.write(chunk)) await once(sock, 'drain');
  }
  sock.end();
  return h.digest('hex');
}

export async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** A raw (native) socket connected to a node:net server; `peer` is the server's side. */
export async function rawClient(server: net.Server, port: number): Promise<{ fd: number; peer: net.Socket }> {
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  const accepted = once(server, 'connection');
  n.sockConnectSync(fd, sockaddr('127.0.0.1', port));
  const [peer] = (await accepted) as [net.Socket];
  await until(() => {
    try {
      n.sockName(fd, true);
      return true;
    } catch {
      return false;
    }
  }, 'connect');
  assert.equal(n.sockError(fd), 0);
  return { fd, peer };
}

/** A raw (native) listening socket; accept() waits for a node:net client. */
export function rawListener(): { fd: number; port: number; accept(): Promise<number>; close(): void } {
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  n.sockBind(fd, sockaddr('127.0.0.1', 0));
  n.sockListen(fd, 16);
  const port = decodeSockaddr(n.sockName(fd, false)).port;
  return {
    fd,
    port,
    async accept() {
      let c = -1;
      await until(() => c >= 0 || (c = n.sockAccept(fd)) >= 0, 'accept');
      return c;
    },
    close() {
      n.sockClose(fd);
    },
  };
}

export function closeFd(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

/** One raw fd connected to a node:net server whose side is `peer`; close() ends all three. */
export async function rawConnection(): Promise<{ fd: number; peer: net.Socket; server: net.Server; close(): void }> {
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listen(server);
  const { fd, peer } = await rawClient(server, port);
  return {
    fd,
    peer,
    server,
    close() {
      closeFd(fd);
      peer.destroy();
      server.close();
    },
  };
}

/** raw fd a (accepted from node:net client A), raw fd b (connected to node:net server peer B) */
export async function rawPair(): Promise<{ a: number; b: number; A: net.Socket; B: net.Socket; close(): void }> {
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listen(server);
  const { fd: b, peer: B } = await rawClient(server, port);
  const l = rawListener();
  const A = net.connect({ port: l.port, host: '127.0.0.1', allowHalfOpen: true });
  const connected = once(A, 'connect');
  const a = await l.accept();
  await connected;
  l.close();
  return {
    a,
    b,
    A,
    B,
    close() {
      closeFd(a);
      closeFd(b);
      A.destroy();
      B.destroy();
      server.close();
    },
  };
}
