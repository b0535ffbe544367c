/**
 * PostgreSQL over maio/net: the `pg` client (unmodified) with its `stream`
 * option returning a maio/net Socket, against a real PostgreSQL server that
 * this file initdb's into a temp dir and starts (as the postgres user when
 * run as root) on a free port, and stops in `after`. The same workload
 * (queries, a transaction rolled back, a savepoint, a prepared statement,
 * an error the connection survives, LISTEN/NOTIFY, 20000 rows, 8 MiB bytea
 * and text values) runs over node:net and over maio/net; the results must
 * match. Then again with ssl: pg's SSLRequest on the maio/net socket, then
 * tls.connect({ socket }) over it (the server runs with a throwaway cert).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodeNet from 'node:net';
import * as path from 'node:path';
import { Client, Pool, type QueryResult } from 'pg';
import * as mnet from '../../../src/net/compat/index';
import { bounded, poolGuard } from '../helpers';
import { freePort, impls, skip as netSkip } from './common';
import { makeCert, payload, run, sha256, startChild, tempDir, toolSkip, which, type Child } from './real-common';

/** Debian keeps initdb and postgres under /usr/lib/postgresql/<version>/bin: the newest one. */
function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(root).sort((a, b) => Number(b) - Number(a));
  } catch {
    // not there
  }
  const dirs = versions.map((v) => path.join(root, v, 'bin'));
  const initdb = which('initdb', dirs);
  return initdb && which('postgres', [path.dirname(initdb)]) ? path.dirname(initdb) : null;
}

/** Who runs the server: postgres refuses root, so as root the `postgres` user's uid and gid. */
function pgUser(): { uid: number; gid: number } | null | string {
  if (process.getuid?.() !== 0) return null;
  try {
    const line = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    if (line) {
      const [, , uid, gid] = line.split(':');
      return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: ask id(1)
  }
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return 'running as root and there is no postgres user to run the server as (the postgresql package makes one)';
  }
}

const BIN = pgBin();
const USER = pgUser();
const skip =
  netSkip ||
  (BIN === null ? 'PostgreSQL (initdb, postgres under /usr/lib/postgresql/<version>/bin) is not installed (scripts/test-setup.sh installs it with apt-get as root)' : false) ||
  (typeof USER === 'string' ? USER : false);

const sslSkip = skip || toolSkip('openssl');

let tmp: ReturnType<typeof tempDir> | null = null;
/** the server's certificate (when openssl is there: the server runs with ssl=on) */
let certs: ReturnType<typeof makeCert> | null = null;
let server: Child | null = null;
let port = 0;

before(async () => {
  if (skip) return;
  const as: { uid?: number; gid?: number } = USER && typeof USER === 'object' ? USER : {};
  tmp = tempDir('pg');
  if (as.uid !== undefined) fs.chownSync(tmp.dir, as.uid, as.gid!);
  const data = path.join(tmp.dir, 'data');
  await run(path.join(BIN!, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { ...as, cwd: tmp.dir, limitMs: 60000 });
  port = await freePort();
  const args = ['-D', data, '-p', String(port), '-k', tmp.dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];
  if (!sslSkip) {
    // the key must be the server user's and private, or postgres refuses it
    certs = makeCert(tmp.dir);
    fs.chmodSync(certs.key, 0o600);
    if (as.uid !== undefined) for (const f of [certs.key, certs.cert]) fs.chownSync(f, as.uid, as.gid!);
    args.push('-c', 'ssl=on', '-c', `ssl_cert_file=${certs.cert}`, '-c', `ssl_key_file=${certs.key}`);
  }
  server = startChild(path.join(BIN!, 'postgres'), args, { ...as, cwd: tmp.dir });
  // ready once a query answers (before that: refused, or 'the database system is starting up')
  const end = Date.now() + 30000;
  for (;;) {
    const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (Date.now() > end) throw new Error(`PostgreSQL did not start: ${String(e)}\n${server.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

after(async () => {
  await server?.stop('SIGINT'); // fast shutdown
  tmp?.remove();
});

/** What a result says, made comparable (big values by length and sha256). */
function norm(r: QueryResult | QueryResult[]): unknown {
  if (Array.isArray(r)) return r.map(norm);
  const cell = (v: unknown): unknown => {
    if (Buffer.isBuffer(v)) return v.length > 64 ? { bytes: v.length, sha256: sha256(v) } : v.toString('hex');
    if (typeof v === 'string' && v.length > 1000) return { chars: v.length, sha256: sha256(v) };
    return v;
  };
  const rows = r.rows.map((row: Record<string, unknown>) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, cell(v)])));
  return {
    command: r.command,
    rowCount: r.rowCount,
    fields: r.fields.map((f) => [f.name, f.dataTypeID]),
    rows: rows.length > 100 ? { count: rows.length, sha256: sha256(JSON.stringify(rows)), first: rows[0], last: rows[rows.length - 1] } : rows,
  };
}

async function workload(c: Client, name: string): Promise<[string, unknown][]> {
  const out: [string, unknown][] = [];
  const q = async (what: string, text: string | { name?: string; text: string; values?: unknown[] }, values?: unknown[]): Promise<unknown> => {
    const r = await bounded(typeof text === 'string' ? c.query(text, values) : c.query(text), `${name}: ${what}`, 30000);
    const v = norm(r as QueryResult);
    out.push([what, v]);
    return v;
  };
  await q('select', "SELECT 1 AS one, 'maio'::text AS t, 2.5::float8 AS f, true AS b, NULL::int AS n, '{1,2,3}'::int[] AS a");
  await q('two statements', 'SELECT 1 AS x; SELECT 2 AS y');
  await q('create', 'CREATE TEMP TABLE items (id int PRIMARY KEY, name text NOT NULL, data bytea)');
  await q('insert', "INSERT INTO items SELECT g, 'item ' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 1000) g");

  // a transaction rolled back, with a savepoint inside
  await q('begin', 'BEGIN');
  await q('insert in tx', "INSERT INTO items VALUES (5000, 'temp', NULL)");
  await q('savepoint', 'SAVEPOINT sp');
  await q('delete in tx', 'DELETE FROM items WHERE id <= 500');
  await q('rollback to savepoint', 'ROLLBACK TO SAVEPOINT sp');
  await q('count in tx', 'SELECT count(*)::int AS n FROM items');
  await q('rollback', 'ROLLBACK');
  await q('count after rollback', 'SELECT count(*)::int AS n FROM items');

  // a prepared statement (Parse once, then Bind/Execute), used several times
  for (const id of [1, 42, 999, 1234]) {
    await q(`prepared ${id}`, { name: 'item-by-id', text: 'SELECT id, name, data, $2::text AS tag FROM items WHERE id = $1', values: [id, `tag é ${id}`] });
  }

  // an error: the connection stays usable
  const err = await bounded(
    c.query('SELECT 1/0').then(
      () => null,
      (e: Error & { code?: string }) => ({ code: e.code, message: e.message }),
    ),
    `${name}: division by zero`,
  );
  out.push(['error', err]);
  await q('after the error', 'SELECT 2 AS still_here');

  // LISTEN/NOTIFY: a message the server sends on its own
  await q('listen', 'LISTEN maio_channel');
  const note = new Promise<unknown>((resolve) => c.once('notification', (m) => resolve({ channel: m.channel, payload: m.payload })));
  await q('notify', "NOTIFY maio_channel, 'hello from maio'");
  out.push(['notification', await bounded(note, `${name}: the notification`)]);

  // many rows
  await q('20000 rows', "SELECT g AS id, md5(g::text) AS h, repeat('x', g % 200) AS pad FROM generate_series(1, 20000) g");

  // large values: 8 MiB bytea as a parameter and back, 9 MB of text from the server
  const big = payload(8 << 20, 11);
  const r = (await bounded(c.query('SELECT $1::bytea AS b, length($1::bytea) AS n, md5($1::bytea) AS md5', [big]), `${name}: 8 MiB bytea`, 30000)) as QueryResult;
  assert.equal((r.rows[0].b as Buffer).length, big.length, `${name}: 8 MiB bytea length`);
  assert.equal(sha256(r.rows[0].b as Buffer), sha256(big), `${name}: 8 MiB bytea sha256`);
  out.push(['8 MiB bytea', norm(r)]);
  await q('9 MB text', "SELECT repeat('abc', 3000000) AS t");
  await q('8 MiB text parameter', 'SELECT length($1::text) AS n, md5($1::text) AS md5', [big.toString('base64')]);
  return out;
}

/** The workload over node:net, then over maio/net (pg's stream option either way); maio/net's results must equal node:net's. */
async function compare(ssl: false | { ca: Buffer }): Promise<void> {
  const guard = poolGuard();
  const results: Record<string, [string, unknown][]> = {};
  for (const [name, impl] of impls) {
    const made: unknown[] = [];
    const c = new Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      database: 'postgres',
      ssl,
      stream: () => {
        const s = impl === mnet ? new mnet.Socket() : new nodeNet.Socket();
        made.push(s);
        return s;
      },
    });
    c.on('error', () => undefined); // a failure shows in the query that hit it
    try {
      await bounded(c.connect(), `${name}: pg connected${ssl ? ' (ssl)' : ''}`);
      assert.equal(made.length, 1);
      assert.equal(made[0] instanceof mnet.Socket, impl === mnet, `${name}: pg's stream is ${name}'s socket`);
      const inUse = (await bounded(c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'), `${name}: pg_stat_ssl`)).rows[0].ssl;
      assert.equal(inUse, Boolean(ssl), `${name}: the server says ssl is ${inUse}`);
      results[name] = await workload(c, name);
      await bounded(c.end(), `${name}: pg ended`);
    } finally {
      (made[0] as nodeNet.Socket | undefined)?.destroy();
    }
  }
  // the workload did what it says (on node:net; maio/net's results must equal them)
  const r = Object.fromEntries(results['node:net']) as Record<string, { rows: Record<string, unknown>[] }>;
  assert.deepEqual(r['count in tx'].rows, [{ n: 1001 }]);
  assert.deepEqual(r['count after rollback'].rows, [{ n: 1000 }]);
  assert.equal(r['prepared 42'].rows[0].name, 'item 42');
  assert.deepEqual(r['prepared 1234'].rows, []);
  assert.equal((r['error'] as unknown as { code: string }).code, '22012');
  assert.deepEqual(r['notification'], { channel: 'maio_channel', payload: 'hello from maio' });
  assert.equal((r['20000 rows'].rows as unknown as { count: number }).count, 20000);
  assert.deepEqual(r['8 MiB text parameter'].rows[0].n, Math.ceil((8 << 20) / 3) * 4);
  assert.deepEqual(results['maio/net'], results['node:net']);
  await guard.check('the pool after the maio/net runs');
}

test('pg over node:net and over maio/net (its stream option) against PostgreSQL: the same results, 8 MiB values intact', { skip, timeout: 60000 }, async () => {
  await compare(false);
});

test('pg with ssl over maio/net (SSLRequest, then tls.connect({ socket }) on the same socket): the same results as over node:net', { skip: sslSkip, timeout: 60000 }, async () => {
  await compare({ ca: certs!.certPem });
});

test('pg.Pool of 8 maio/net connections (its stream option), 400 queries at once: the same answers as over node:net', { skip, timeout: 60000 }, async () => {
  const guard = poolGuard();
  const answers: Record<string, unknown[]> = {};
  for (const [name, impl] of impls) {
    const made: nodeNet.Socket[] = [];
    const pool = new Pool({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      database: 'postgres',
      max: 8,
      stream: () => {
        const s = (impl === mnet ? new mnet.Socket() : new nodeNet.Socket()) as nodeNet.Socket;
        made.push(s);
        return s;
      },
    });
    pool.on('error', () => undefined);
    try {
      const list = await bounded(
        Promise.all(
          Array.from({ length: 400 }, (_, i) =>
            pool.query('SELECT $1::int AS i, md5($1::text) AS h, repeat($2::text, $1::int % 300) AS pad', [i, 'ab']).then((r) => r.rows[0]),
          ),
        ),
        `${name}: 400 queries on the pool`,
      );
      assert.equal(made.length, 8, `${name}: the pool opened 8 connections`);
      assert.ok(made.every((s) => (s instanceof mnet.Socket) === (impl === mnet)), `${name}: the pool's sockets are ${name}'s`);
      answers[name] = list;
    } finally {
      await bounded(pool.end(), `${name}: the pool ended`).catch(() => undefined);
      for (const s of made) s.destroy();
    }
  }
  assert.equal(answers['node:net'].length, 400);
  assert.deepEqual(answers['maio/net'], answers['node:net']);
  await guard.check('the pool after the maio/net runs');
});
