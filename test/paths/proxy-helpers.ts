/** Plumbing for the proxy tests: node:net upstreams and clients, the CLI as a child process, Prometheus text. */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { listen } from './helpers';

export const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

export interface Upstream {
  name: string;
  port: number;
  /** every accepted connection, health checks included */
  conns: net.Socket[];
  /** connections that sent at least one byte (health checks send none) */
  busy(): net.Socket[];
  server: net.Server;
  /** destroys the connections and stops listening; resolves when the port is free */
  close(): Promise<void>;
}

/** An upstream that records each connection (allowHalfOpen: it never ends on its own). */
export async function upstream(name: string, port = 0): Promise<Upstream> {
  const conns: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.push(s);
    s.on('error', () => {});
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    conns,
    busy: () => conns.filter((s) => s.bytesRead > 0),
    server,
    close: () => {
      conns.forEach((c) => c.destroy());
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port nothing listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

export function client(port: number): Promise<net.Socket> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => {});
  return once(c, 'connect').then(() => c);
}

/**
 * Resolves when the peer has closed `s` (its FIN: 'end', or a reset: 'error'),
 * or `s` closed; then destroys `s` (the clients here are half-open, so they would not close by themselves).
 */
export function closed(s: net.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      s.destroy();
      resolve();
    };
    if (s.readableEnded || s.destroyed) return done();
    s.once('end', done);
    s.once('error', done);
    s.once('close', done);
    s.resume();
  });
}

export interface Cli {
  child: ChildProcess;
  port: Promise<number>;
  exited: Promise<number | null>;
  stderr(): string;
  /** stderr lines that are maio's messages, without the backend banner */
  lines(): string[];
}

export function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Cli {
  const child = spawn(process.execPath, [CLI, 'proxy', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`proxy exited ${code}: ${err}`)));
  });
  port.catch(() => {});
  const lines = () =>
    err
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('maio') && !l.startsWith('maio backend'));
  return { child, port, exited, stderr: () => err, lines };
}

/** The CLI's metrics port, from its "metrics on http://host:port/metrics" line. */
export function metricsPort(c: Cli): number {
  const m = /metrics on http:\/\/[^ ]+:(\d+)\/metrics/.exec(c.stderr());
  assert.ok(m, `no metrics line in: ${c.stderr()}`);
  return Number(m[1]);
}

export function httpGet(port: number, p: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body: b }));
      })
      .on('error', reject);
  });
}

export interface Family {
  type: string;
  help: string;
  /** label set as written (`{a="b"}` or '') -> value */
  samples: Map<string, number>;
}

/**
 * Parses Prometheus text exposition (0.0.4) strictly enough to catch a
 * malformed line: every sample belongs to a family announced by # HELP and
 * # TYPE before it, names and labels have the allowed characters, values are
 * numbers, no sample is repeated, counters are named *_total.
 */
export function parsePrometheus(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const LABELS = `\\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*")*)?\\}`;
  const sample = new RegExp(`^(${NAME})(${LABELS})? (-?(?:[0-9]+(?:\\.[0-9]+)?(?:e[+-]?[0-9]+)?|\\+Inf|-Inf|NaN))$`);
  const pending = new Map<string, string>();
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${NAME}) (.+)$`).exec(line))) {
      pending.set(m[1]!, m[2]!);
    } else if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      assert.ok(!out.has(m[1]!), `family ${m[1]} announced twice`);
      out.set(m[1]!, { type: m[2]!, help: pending.get(m[1]!) ?? '', samples: new Map() });
    } else if ((m = sample.exec(line))) {
      const fam = out.get(m[1]!);
      assert.ok(fam, `sample before its # TYPE: ${line}`);
      const labels = m[2] ?? '';
      assert.ok(!fam.samples.has(labels), `sample repeated: ${line}`);
      fam.samples.set(labels, Number(m[3]));
    } else {
      assert.fail(`not Prometheus text: ${JSON.stringify(line)}`);
    }
  }
  for (const [name, fam] of out) {
    assert.ok(fam.help.length > 0, `${name} has a HELP line`);
    if (fam.type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
  }
  return out;
}

/** The value of one sample; fails if it is missing. */
export function sampleOf(m: Map<string, Family>, name: string, labels = ''): number {
  const v = m.get(name)?.samples.get(labels);
  assert.ok(v !== undefined, `no sample ${name}${labels}`);
  return v;
}
