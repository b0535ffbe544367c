/**
 * Shared by the test/dgram/compat tests: each test runs one body against
 * node:dgram and then against maio/dgram (`impls`), so every assertion is
 * checked against node:dgram's real behaviour first.
 */
import type * as dgram from 'node:dgram';
import * as nodeDgram from 'node:dgram';
import * as mdgram from '../../../src/dgram/compat/index';
import { netSkip } from '../../net/helpers';

export type DgramLike = typeof nodeDgram;
/** node:dgram first: a failure there means the test, not maio, is wrong. */
export const impls: [string, DgramLike][] = [
  ['node:dgram', nodeDgram],
  ['maio/dgram', mdgram as unknown as DgramLike],
];
export const skip = netSkip;
export type Sock = dgram.Socket;

export { bounded, until } from '../../net/helpers';
export { shape, thrown } from '../../net/compat/common';

/** Binds to 127.0.0.1 (or ::1 for udp6) on a kernel-chosen port; resolves with the port. */
export function bindLocal(s: Sock, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => {
      s.removeListener('error', reject);
      resolve(s.address().port);
    });
  });
}

export function close(s: Sock): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

/** The next 'message' of `s`: its bytes as a string and rinfo. */
export function nextMessage(s: Sock): Promise<[string, dgram.RemoteInfo]> {
  return new Promise((r) => s.once('message', (m, rinfo) => r([m.toString(), rinfo])));
}

/** send() as a promise of the callback's (err, bytes). */
export function sent(f: (cb: (err: Error | null, bytes?: number) => void) => void): Promise<[Error | null, number | undefined]> {
  return new Promise((r) => f((err, bytes) => r([err, bytes])));
}

/** A UDP port nothing is bound to right now (bind, note it, close). */
export async function freePort(impl: DgramLike = nodeDgram): Promise<number> {
  const s = impl.createSocket('udp4');
  const port = await bindLocal(s);
  await close(s);
  return port;
}
