/**
 * Plumbing for the gateway tests: a tiny DNS server over node:dgram whose
 * answers (A, AAAA, SRV, with a TTL) the test changes, echo upstreams, and an
 * upstream that reads the PROXY header the proxy sends and says what it saw.
 */
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import * as net from 'node:net';
import { decodeProxyHeader, type ProxyHeader } from '../../src/gateway/proxy-protocol';

export interface SrvAnswer {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface DnsEntry {
  a?: string[];
  aaaa?: string[];
  srv?: SrvAnswer[];
  ttl: number;
  /** answer SERVFAIL instead */
  fail?: boolean;
}

export interface DnsServer {
  port: number;
  address: string;
  /** name (lower case, no trailing dot) -> answers; change it at will */
  table: Map<string, DnsEntry>;
  /** questions asked, as "name TYPE" */
  queries: string[];
  /** when each was asked (performance.now()), same order */
  times: number[];
  close(): Promise<void>;
}

const TYPE = { A: 1, AAAA: 28, SRV: 33 } as const;
const TYPE_NAME: Record<number, string> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };

function readName(msg: Buffer, at: number): [string, number] {
  const labels: string[] = [];
  for (;;) {
    const n = msg[at]!;
    if (n === 0) return [labels.join('.'), at + 1];
    if (n >= 0xc0) throw new Error('compressed names in a question are not expected');
    labels.push(msg.toString('latin1', at + 1, at + 1 + n));
    at += 1 + n;
  }
}

function writeName(name: string): Buffer {
  const parts = name.split('.').filter((p) => p.length > 0);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

function ip6(addr: string): Buffer {
  const [h, t] = addr.split('::') as [string, string | undefined];
  const head = h ? h.split(':') : [];
  const tail = t === undefined ? [] : t ? t.split(':') : [];
  const groups = t === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  return b;
}

/** Answers A/AAAA/SRV questions from `table`; unknown names get NXDOMAIN, known ones without the type an empty answer. */
export async function dnsServer(): Promise<DnsServer> {
  const sock = dgram.createSocket('udp4');
  const table = new Map<string, DnsEntry>();
  const queries: string[] = [];
  const times: number[] = [];
  sock.on('message', (msg, rinfo) => {
    let name: string;
    let end: number;
    try {
      [name, end] = readName(msg, 12);
    } catch {
      return;
    }
    const qtype = msg.readUInt16BE(end);
    const question = msg.subarray(12, end + 4);
    name = name.toLowerCase();
    queries.push(`${name} ${TYPE_NAME[qtype] ?? qtype}`);
    times.push(performance.now());
    const e = table.get(name);
    const answers: Buffer[] = [];
    let rcode = 0;
    if (!e) rcode = 3;
    else if (e.fail) rcode = 2;
    else {
      const rr = (type: number, data: Buffer) => {
        const h = Buffer.alloc(12);
        h.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
        h.writeUInt16BE(type, 2);
        h.writeUInt16BE(1, 4);
        h.writeUInt32BE(e.ttl, 6);
        h.writeUInt16BE(data.length, 10);
        answers.push(h, data);
      };
      if (qtype === TYPE.A) for (const a of e.a ?? []) rr(TYPE.A, Buffer.from(a.split('.').map(Number)));
      if (qtype === TYPE.AAAA) for (const a of e.aaaa ?? []) rr(TYPE.AAAA, ip6(a));
      if (qtype === TYPE.SRV) {
        for (const s of e.srv ?? []) {
          const head = Buffer.alloc(6);
          head.writeUInt16BE(s.priority, 0);
          head.writeUInt16BE(s.weight, 2);
          head.writeUInt16BE(s.port, 4);
          rr(TYPE.SRV, Buffer.concat([head, writeName(s.target)]));
        }
      }
    }
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // the query's id
    header.writeUInt16BE(0x8180 | rcode, 2); // a response, recursion desired and available
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length / 2, 6);
    sock.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  return {
    port: sock.address().port,
    address: `127.0.0.1:${sock.address().port}`,
    table,
    queries,
    times,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

export interface EchoUpstream {
  port: number;
  host: string;
  conns: net.Socket[];
  close(): Promise<void>;
}

/** Echoes every byte back; records its connections (health checks included). */
export async function echoUpstream(host = '127.0.0.1', port = 0): Promise<EchoUpstream> {
  const conns: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.push(s);
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(port, host);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    host,
    conns,
    close: () => {
      conns.forEach((c) => c.destroy());
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface HeaderUpstream extends EchoUpstream {
  /** the header of each connection that sent one (in arrival order) */
  headers: ProxyHeader[];
}

/**
 * Reads the PROXY header at the start of each connection, answers
 * "saw ADDRESS PORT\n" (or "saw local\n", or "bad MESSAGE\n" and closes), then echoes the rest.
 */
export async function headerUpstream(): Promise<HeaderUpstream> {
  const conns: net.Socket[] = [];
  const headers: ProxyHeader[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.push(s);
    s.on('error', () => {});
    let got = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      let r;
      try {
        r = decodeProxyHeader(got);
      } catch (err) {
        s.end(`bad ${(err as Error).message}\n`);
        return;
      }
      if (!r.done) return;
      s.off('data', onData);
      headers.push(r.header);
      const a = r.header.addresses;
      s.write(a ? `saw ${a.sourceAddress} ${a.sourcePort} -> ${a.destinationAddress} ${a.destinationPort}\n` : 'saw local\n');
      const rest = got.subarray(r.length);
      if (rest.length > 0) s.write(rest);
      s.pipe(s);
    };
    s.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    conns,
    headers,
    close: () => {
      conns.forEach((c) => c.destroy());
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A connected node:net client that collects what it receives as text. */
export async function textClient(port: number, host = '127.0.0.1'): Promise<{ s: net.Socket; text: () => string; closed: Promise<void> }> {
  const s = net.connect({ port, host, allowHalfOpen: true });
  let text = '';
  s.setEncoding('latin1');
  s.on('data', (d: string) => (text += d));
  s.on('error', () => {});
  const closed = new Promise<void>((r) => {
    s.once('end', () => r());
    s.once('close', () => r());
  });
  await once(s, 'connect');
  return { s, text: () => text, closed };
}

/** Sends `data` through `s` and resolves when the same bytes have come back (an echo on the other side). */
export async function echoes(s: net.Socket, data: Buffer, timeoutMs = 20000): Promise<boolean> {
  const chunks: Buffer[] = [];
  let n = 0;
  const done = new Promise<boolean>((resolve) => {
    const t = setTimeout(() => {
      s.off('data', on);
      resolve(false);
    }, timeoutMs);
    const on = (d: Buffer | string) => {
      if (typeof d === 'string') d = Buffer.from(d, 'latin1');
      chunks.push(d);
      n += d.length;
      if (n >= data.length) {
        clearTimeout(t);
        s.off('data', on);
        resolve(Buffer.concat(chunks).equals(data));
      }
    };
    s.on('data', on);
  });
  s.write(data);
  return done;
}
