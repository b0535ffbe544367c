/**
 * Shared by the test/net/compat tests: each test runs one body against
 * node:net and against maio/net (`impls`), so every assertion is checked
 * against node:net's real behaviour first.
 */
import type * as net from 'node:net';
import * as nodeNet from 'node:net';
import * as mnet from '../../../src/net/compat/index';
import { netSkip } from '../helpers';

export type NetLike = typeof nodeNet | typeof mnet;
/** node:net first: a failure there means the test, not maio, is wrong. */
export const impls: [string, NetLike][] = [
  ['node:net', nodeNet],
  ['maio/net', mnet],
];
export const skip = netSkip;

export type AnyServer = net.Server | mnet.Server;
export type AnySocket = net.Socket | mnet.Socket;

/** A node:net server on 127.0.0.1 and its port. */
export function listen(server: AnyServer, host = '127.0.0.1'): Promise<number> {
  return new Promise((r) => server.listen(0, host, () => r((server.address() as net.AddressInfo).port)));
}

export function closeServer(server: AnyServer): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

/** node:net's typed connect() on either implementation. */
export function connectOn(impl: NetLike, options: net.NetConnectOpts, cb?: () => void): net.Socket {
  return (impl.connect as typeof nodeNet.connect)(options, cb);
}

/** A port nothing listens on right now (listen, note it, close). */
export async function freePort(): Promise<number> {
  const s = nodeNet.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

export { silentListener } from '../helpers';

/** What a thrown error looks like to code that inspects it. */
export function shape(e: unknown): { name: string; code: unknown; message: string } | string {
  if (!(e instanceof Error)) return `not an Error: ${String(e)}`;
  return { name: e.name, code: (e as NodeJS.ErrnoException).code, message: e.message };
}

/** Runs f; returns the shape of what it threw, or 'no throw'. */
export function thrown(f: () => unknown): ReturnType<typeof shape> | 'no throw' {
  try {
    const r = f() as { destroy?: () => void; close?: () => void } | undefined;
    // a call that did not throw made a socket or server: leave nothing open
    if (r && typeof r.destroy === 'function') r.destroy();
    else if (r && typeof r.close === 'function') r.close();
    return 'no throw';
  } catch (e) {
    return shape(e);
  }
}
