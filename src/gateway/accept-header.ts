/**
 * Reads the PROXY protocol header a load balancer in front sends first on
 * each connection. The bytes are copied out of the pool buffers as they come
 * (a header is at most a few hundred bytes; the buffers go back at once);
 * once the header is complete the 'data' listener is removed, so later
 * buffers wait in the socket for whoever forwards it, and the bytes that came
 * after the header in the same reads are handed back as `rest`.
 */
import { ProxyProtocolError } from '../core/errors';
import type { IoBuffer } from '../pool/buffer';
import type { Socket } from '../net/socket';
import { decodeProxyHeader, type ProxyHeader } from './proxy-protocol';

export interface AcceptHeaderOptions {
  /** ms for the whole header to arrive */
  timeout: number;
  /** bound on a v2 header (v1 has the specification's 107) */
  maxLength: number;
}

export type AcceptHeaderResult = { header: ProxyHeader; rest: Uint8Array } | { error: ProxyProtocolError; timedOut: boolean };

/** Calls `done` once: with the header, or with why there is none. Returns a cancel function (the socket closed). */
export function readProxyHeader(s: Socket, o: AcceptHeaderOptions, done: (r: AcceptHeaderResult) => void): () => void {
  let got = Buffer.alloc(0);
  let finished = false;
  const finish = (r: AcceptHeaderResult | null) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    s.off('data', onData);
    s.off('end', onEnd);
    if (r) done(r);
  };
  const onData = (buf: IoBuffer) => {
    got = Buffer.concat([got, buf.bytes]);
    let r;
    try {
      r = decodeProxyHeader(got, o.maxLength);
    } catch (err) {
      return finish({ error: err as ProxyProtocolError, timedOut: false });
    }
    if (r.done) finish({ header: r.header, rest: got.subarray(r.length) });
  };
  const onEnd = () => finish({ error: new ProxyProtocolError(`the client ended after ${got.length} bytes, before a complete PROXY header`), timedOut: false });
  const timer = setTimeout(() => finish({ error: new ProxyProtocolError(`no complete PROXY header within ${o.timeout} ms (${got.length} bytes came)`), timedOut: true }), o.timeout);
  s.on('data', onData);
  s.on('end', onEnd);
  return () => finish(null);
}
