/**
 * Type tests, checked by `tsc` with the rest of the project (npm run build:ts,
 * so by every test run): each `@ts-expect-error` line must fail to compile;
 * if it compiles (an event map lost its types), tsc reports the unused
 * directive and the build fails. The same checks run against the installed
 * package in test/package/pack.test.ts.
 */
import type { ConnectionStats, IoBuffer, Proxy, Relay, Forwarder, Server, Socket, UdpMessage, UdpSocket } from '../../src/index';

export function socketEvents(s: Socket): void {
  s.on('data', (buf) => {
    const b: IoBuffer = buf;
    void b;
    // @ts-expect-error an IoBuffer is not a string
    const text: string = buf;
    // @ts-expect-error IoBuffer has no such member
    void buf.nope;
    void text;
  });
  s.on('close', (hadError) => {
    const h: boolean = hadError;
    void h;
  });
  s.once('error', (err) => void err.message);
  s.on('sendFileProgress', (sent, total) => void (sent + total));
  // Events without arguments take any listener, as a Promise's resolve.
  void new Promise((resolve) => s.once('drain', resolve));
  // @ts-expect-error no such event
  s.on('dat', () => {});
  // @ts-expect-error 'data' gives an IoBuffer, not a number
  s.on('data', (n: number) => void n);
}

export function serverEvents(server: Server): void {
  server.on('connection', (socket) => socket.send.bind(socket));
  // @ts-expect-error a Server emits no 'data'
  server.on('data', () => {});
}

export function pathEvents(p: Proxy, f: Forwarder, r: Relay): void {
  p.on('connectionClose', (info, err) => {
    const i: ConnectionStats = info;
    void i;
    void err?.message;
  });
  p.on('upstream', (u, healthy) => void (u.host + String(healthy)));
  // @ts-expect-error the client address is a string
  p.on('connectionError', (_err: Error, client: number) => void client);
  f.on('done', (err, bytes) => void (err ?? bytes.toFixed()));
  r.on('done', (err, bytes) => void (err ?? bytes?.[0]));
  // @ts-expect-error a Forwarder emits no 'connection'
  f.on('connection', () => {});
}

export function udpEvents(s: UdpSocket): void {
  s.on('message', (msg, from) => {
    const m: UdpMessage = msg;
    const port: number = from.port;
    const bytes: Uint8Array = msg.bytes;
    void [m, port, bytes];
    // @ts-expect-error a UdpMessage is not an IoBuffer
    const b: IoBuffer = msg;
    void b;
  });
  s.once('error', (err) => void err.message);
  // @ts-expect-error no such event
  s.on('data', () => {});
}
