/** Shared by the fallback ring tests: loopback socket pairs, pools, waiting. */
import * as assert from 'node:assert/strict';
import { native } from '../../src/core/native';
import { sockaddr } from '../../src/net/address';
import type { CompletionTarget } from '../../src/ring/ring';

export const ECANCELED = -125;
export const ENOBUFS = -105;
export const ECONNREFUSED = -111;
export const EPIPE = -32;
export const EINVAL = -22;
export const ENOENT = -2;

export const tick = () => new Promise((r) => setImmediate(r));

export async function until(cond: () => boolean, what: string): Promise<void> {
  let ok = cond();
  for (let i = 0; i < 20000 && !ok; i++) {
    await new Promise((r) => setTimeout(r, i < 100 ? 0 : 5));
    ok = cond();
  }
  assert.ok(ok, `timed out waiting for ${what}`);
}

export class Collector implements CompletionTarget {
  events: [number, number, number][] = [];
  onCompletion(opId: number, res: number, flags: number): void {
    this.events.push([opId, res, flags]);
  }
}

export function portOf(addr: Uint8Array): number {
  return (addr[2] << 8) | addr[3];
}

/** A listening socket on 127.0.0.1, port chosen by the kernel. */
export function listener(backlog = 64): { fd: number; port: number } {
  const n = native();
  const fd = n.sockOpen(4, 'tcp');
  n.sockBind(fd, sockaddr('127.0.0.1', 0));
  n.sockListen(fd, backlog);
  return { fd, port: portOf(n.sockName(fd, false)) };
}

/** A connected loopback pair of nonblocking sockets made with the native set-up calls. */
export async function socketPair(): Promise<{ a: number; b: number; close: () => void }> {
  const n = native();
  const l = listener();
  const a = n.sockOpen(4, 'tcp');
  const r = n.sockConnectSync(a, sockaddr('127.0.0.1', l.port));
  assert.ok(r === 0 || r === -115, `connect: ${r}`);
  let b = -11;
  await until(() => (b = n.sockAccept(l.fd)) >= 0, 'accept');
  n.sockClose(l.fd);
  await until(() => n.sockError(a) === 0 && safePeer(a), 'connected');
  return {
    a,
    b,
    close() {
      for (const fd of [a, b]) {
        try {
          n.sockClose(fd);
        } catch {
          // closed by the test already
        }
      }
    },
  };
}

function safePeer(fd: number): boolean {
  try {
    native().sockName(fd, true);
    return true;
  } catch {
    return false;
  }
}
