/**
 * Property-based fuzz of the public API against real loopback sockets
 * (fast-check): random sequences of allocate, release (also twice, also of a
 * buffer already sent), retain, send (also of a buffer already sent), write,
 * end, destroy, connect, server close, pause/resume, sendFile of a small file,
 * forward. Each step's model knows whether its call is legal and which error
 * an illegal one gives; any other error fails the run. After every step:
 * each buffer the test holds is OWNED by it alone (live, not lent, no two
 * live handles on one slot) and the pool's per-class counts are consistent.
 * After every sequence: no crash, every 'error' carried a stable code, every
 * socket emitted 'close', the pool is back to nothing in use or lent, and
 * /proc/self/fd has as many entries as before.
 *
 * CI: MAIO_FUZZ_RUNS (default 60) sequences of up to MAIO_FUZZ_STEPS (default
 * 30) steps; set MAIO_FUZZ_RUNS=2000 for a long run, MAIO_FUZZ_SEED to replay.
 * Runs on both backends (npm test runs the suite once per backend).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import * as maio from '../../src/index';
import { forward } from '../../src/paths/forward';
import { fanOut } from '../../src/paths/fan-out';
import { netSkip } from '../net/helpers';

type Socket = maio.Socket;

const RUNS = Number(process.env.MAIO_FUZZ_RUNS ?? 60);
const STEPS = Number(process.env.MAIO_FUZZ_STEPS ?? 30);
const SEED = process.env.MAIO_FUZZ_SEED === undefined ? undefined : Number(process.env.MAIO_FUZZ_SEED);
const CODE = /^(ERR_MAIO_[A-Z_]+|ERR_[A-Z_]+|ABORT_ERR|E[A-Z0-9]+)$/;

type Op =
  | { t: 'alloc'; size: number }
  | { t: 'release'; i: number }
  | { t: 'releaseTwice'; i: number }
  | { t: 'releaseSent'; i: number }
  | { t: 'retain'; i: number }
  | { t: 'send'; s: number; i: number }
  | { t: 'sendSent'; s: number; i: number }
  | { t: 'write'; s: number; n: number }
  | { t: 'end'; s: number }
  | { t: 'destroy'; s: number }
  | { t: 'connect'; wait: boolean }
  | { t: 'closeServer' }
  | { t: 'pause'; s: number }
  | { t: 'resume'; s: number }
  | { t: 'sendFile'; s: number }
  | { t: 'forward'; s: number; s2: number }
  | { t: 'sendShared'; s: number; i: number }
  | { t: 'fanOut'; i: number; mask: number; release: boolean }
  | { t: 'releaseHeld' }
  | { t: 'wait'; ms: number };

const idx = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('alloc' as const), size: fc.constantFrom(1, 100, 2048, 4096, 5000, 65536) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('release' as const), i: idx }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('releaseTwice' as const), i: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('releaseSent' as const), i: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('retain' as const), i: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('send' as const), s: idx, i: idx }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('sendSent' as const), s: idx, i: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('write' as const), s: idx, n: fc.integer({ min: 1, max: 300_000 }) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('end' as const), s: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('destroy' as const), s: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('connect' as const), wait: fc.boolean() }), weight: 3 },
  { arbitrary: fc.constant({ t: 'closeServer' as const }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('pause' as const), s: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('resume' as const), s: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('sendFile' as const), s: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('forward' as const), s: idx, s2: idx }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('sendShared' as const), s: idx, i: idx }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('fanOut' as const), i: idx, mask: fc.nat({ max: 255 }), release: fc.boolean() }), weight: 2 },
  { arbitrary: fc.constant({ t: 'releaseHeld' as const }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.constantFrom(0, 0, 1, 5) }), weight: 2 },
);
/** What the server does with received buffers in one run. */
const serverMode = fc.constantFrom('sink', 'echo', 'hold');

/** What the runs did, for MAIO_FUZZ_REPORT. */
const counts = new Map<string, number>();
function tally(k: string): void {
  counts.set(k, (counts.get(k) ?? 0) + 1);
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DEBUG = !!process.env.MAIO_FUZZ_DEBUG;

/** p, or a problem after limitMs: a step that never settles is a hang, reported, not waited for forever. */
async function bounded<T>(p: Promise<T>, limitMs: number, what: string, w: { check(what: string, ok: boolean): void }): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), limitMs);
  });
  const r = await Promise.race([p, timeout]);
  clearTimeout(timer);
  w.check(`${what} did not settle within ${limitMs} ms`, r !== 'timeout');
}
const tick = () => new Promise((r) => setImmediate(r));

async function until(cond: () => boolean, limitMs: number): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(2);
  }
  return true;
}

/** One fuzz run's world: a pool, a server, the sockets and the buffers the test holds. */
class World {
  readonly pool = maio.createPool({ size: 4 << 20, lock: false, classes: [{ size: 4096 }, { size: 65536 }] });
  server: maio.Server | null = null;
  port = 0;
  readonly sockets: Socket[] = [];
  readonly closed = new Set<Socket>();
  /** allocated, still the test's */
  owned: maio.IoBuffer[] = [];
  /** handed to send(): the test may no longer touch them */
  sent: maio.IoBuffer[] = [];
  /** lent with sendShared() or fanOut(release: false): still the test's, back OWNED when the sends are done */
  shared: maio.IoBuffer[] = [];
  /** received by the server and kept with retain() */
  held: maio.IoBuffer[] = [];
  readonly problems: string[] = [];
  readonly pending: Promise<unknown>[] = [];
  readonly serverCloses: Promise<void>[] = [];
  readonly forwarded = new Set<Socket>();
  /** source -> its forwarder: a second forward() of a source is refused while the first runs */
  readonly forwarders = new Map<Socket, { done: boolean }>();

  constructor(readonly mode: string, readonly file: string) {}

  check(what: string, cond: boolean): void {
    if (!cond) this.problems.push(what);
  }

  /** The model said this call fails with `code`: check it did, with that code. */
  expect(what: string, e: unknown, code: string): void {
    this.typed(what, e);
    this.check(`${what}: expected ${code}, got ${String((e as { code?: unknown })?.code)}: ${String(e)}`, (e as { code?: unknown })?.code === code);
  }

  /** A thrown or emitted error must carry a stable code. */
  typed(what: string, e: unknown): void {
    const code = (e as { code?: unknown })?.code;
    tally(`error ${String(code)}${typeof code === "string" && /^E[A-Z]/.test(code) ? ` (${what})` : ""}`);
    this.check(`${what}: error without a stable code: ${String(e)}`, typeof code === 'string' && CODE.test(code));
  }

  track(s: Socket, side: string): void {
    this.sockets.push(s);
    s.on('error', (e) => this.typed(`${side} 'error'`, e));
    s.on('close', () => this.closed.add(s));
  }

  async listen(): Promise<void> {
    const srv = maio.createServer({ pool: this.pool });
    srv.on('connection', (s: Socket) => {
      this.track(s, 'server socket');
      s.on('data', (buf: maio.IoBuffer) => {
        tally('server data');
        // A forwarded socket's buffers go to forward(): keeping them too would be two owners
        // by the application's own doing (retain, then another handler sends), not maio's.
        if (this.mode === 'hold' && !this.forwarded.has(s)) {
          buf.retain();
          this.held.push(buf);
        } else if (this.mode === 'echo' && !s.destroyed && !s.writableEnded) {
          // A received buffer sent back on its live socket: legal, so nothing may be thrown.
          try {
            s.send(buf);
          } catch (e) {
            this.check(`echo send threw on a live socket: ${String(e)}`, false);
          }
        }
      });
    });
    srv.on('error', (e) => this.typed("server 'error'", e));
    const addr = await srv.listenAsync(0, '127.0.0.1');
    this.server = srv;
    this.port = addr.port;
  }

  pick<T>(list: T[], i: number): T | undefined {
    return list.length ? list[i % list.length] : undefined;
  }

  async step(op: Op): Promise<void> {
    switch (op.t) {
      case 'alloc': {
        try {
          this.owned.push(this.pool.alloc(op.size));
        } catch (e) {
          this.check(`alloc(${op.size}): ${String(e)}`, e instanceof maio.PoolExhaustedError);
        }
        break;
      }
      case 'release': {
        const b = this.pick(this.owned, op.i);
        if (!b) break;
        b.release();
        this.owned = this.owned.filter((x) => x !== b);
        break;
      }
      case 'releaseTwice': {
        const b = this.pick(this.owned, op.i);
        if (!b) break;
        b.release();
        this.owned = this.owned.filter((x) => x !== b);
        try {
          b.release();
          this.check('a second release did not throw', false);
        } catch (e) {
          this.check(`second release: ${String(e)}`, e instanceof maio.BufferReleasedError);
        }
        break;
      }
      case 'releaseSent': {
        // The buffer belongs to the kernel or is back in the pool (maybe with a new owner).
        const b = this.pick(this.sent, op.i);
        if (!b) break;
        try {
          b.release();
          this.check('release of a sent buffer did not throw', false);
        } catch (e) {
          this.check(`release of a sent buffer: ${String(e)}`, e instanceof maio.BufferLentError || e instanceof maio.BufferReleasedError);
        }
        break;
      }
      case 'retain': {
        const b = this.pick(this.owned, op.i);
        if (b) b.retain();
        break;
      }
      case 'send': {
        const s = this.pick(this.sockets, op.s);
        const b = this.pick(this.owned, op.i);
        if (!s || !b) break;
        const dead = s.destroyed || s.writableEnded;
        try {
          s.send(b);
          tally('send accepted');
          this.check('send on a destroyed or ended socket did not throw', !dead);
          this.owned = this.owned.filter((x) => x !== b);
          this.sent.push(b);
        } catch (e) {
          this.expect('send on a destroyed or ended socket', e, 'ERR_MAIO_CLOSED');
          this.check(`send threw on a live socket: ${String(e)}`, dead);
          this.check('a refused send took the buffer', !b.released && !b.lent);
        }
        break;
      }
      case 'sendSent': {
        // The natural mistake: a buffer given away already, sent again. On a live
        // socket that send fails: false, and the socket is destroyed with
        // ERR_MAIO_BUFFER_RELEASED (its 'error'); never a throw, never a send of
        // whatever now lives in the buffer's slot. On a dead socket: ERR_MAIO_CLOSED.
        const s = this.pick(this.sockets, op.s);
        const b = this.pick(this.sent, op.i);
        if (!s || !b) break;
        const dead = s.destroyed || s.writableEnded;
        let emitted: unknown;
        const onErr = (e: unknown) => (emitted ??= e);
        s.on('error', onErr);
        try {
          const ok = s.send(b);
          tally('sendSent refused');
          this.check('send of a sent buffer on a destroyed or ended socket did not throw', !dead);
          this.check('send of a sent buffer returned true', ok === false);
          this.check('send of a sent buffer left its socket open', s.destroyed);
          await bounded(until(() => emitted !== undefined, 5_000), 6_000, "the refused send's 'error'", this);
          this.expect("'error' of a send of a sent buffer", emitted, 'ERR_MAIO_BUFFER_RELEASED');
        } catch (e) {
          this.expect('send of a sent buffer on a destroyed or ended socket', e, 'ERR_MAIO_CLOSED');
          this.check(`send of a sent buffer threw on a live socket: ${String(e)}`, dead);
        } finally {
          s.off('error', onErr);
        }
        break;
      }
      case 'write': {
        const s = this.pick(this.sockets, op.s);
        if (!s) break;
        try {
          s.write(Buffer.alloc(op.n, 0x61), (e) => {
            if (e) this.typed('write callback', e);
          });
        } catch (e) {
          // Data of the right kind: write() reports a dead socket through its callback, never by a throw.
          this.check(`write threw: ${String(e)}`, false);
        }
        break;
      }
      case 'end': {
        const s = this.pick(this.sockets, op.s);
        if (s) s.end();
        break;
      }
      case 'destroy': {
        const s = this.pick(this.sockets, op.s);
        if (s) s.destroy();
        break;
      }
      case 'connect': {
        if (!this.server) await this.listen();
        const c = maio.connect({ port: this.port, host: '127.0.0.1', pool: this.pool });
        tally('connect');
        this.track(c, 'client');
        c.on('data', () => {}); // released when the handler returns
        // Half the time, wait until connected and accepted, so later steps act on live pairs.
        if (op.wait) {
          const n = this.sockets.length;
          await bounded(new Promise<void>((r) => {
            c.once('connect', () => r());
            c.once('close', () => r());
          }), 10_000, 'connect', this);
          await until(() => this.sockets.length > n || c.destroyed, 2_000);
        }
        break;
      }
      case 'closeServer': {
        // Accepted sockets stay open and 'close' waits for them (node:net semantics);
        // the next connect listens again. Teardown waits for the 'close'.
        if (this.server) {
          const srv = this.server;
          this.server = null;
          this.serverCloses.push(new Promise<void>((r) => srv.close(() => r())));
        }
        break;
      }
      case 'pause': {
        this.pick(this.sockets, op.s)?.pause();
        break;
      }
      case 'resume': {
        this.pick(this.sockets, op.s)?.resume();
        break;
      }
      case 'sendFile': {
        const s = this.pick(this.sockets, op.s);
        if (!s) break;
        this.pending.push(
          s.sendFile(this.file).then(
            (n) => {
              tally('sendFile done');
              this.check(`sendFile sent ${n} of 3000 bytes`, n === 3000);
            },
            (e) => this.typed('sendFile', e),
          ),
        );
        break;
      }
      case 'forward': {
        const a = this.pick(this.sockets, op.s);
        const b = this.pick(this.sockets, op.s2);
        if (!a || !b) break;
        // The model: the same socket twice or a source already forwarded is an
        // invalid argument; a destroyed socket is closed; anything else starts.
        const running = this.forwarders.get(a);
        const expected = a === b ? 'ERR_MAIO_INVALID_ARG' : a.destroyed || b.destroyed ? 'ERR_MAIO_CLOSED' : running && !running.done ? 'ERR_MAIO_INVALID_ARG' : null;
        try {
          const fw = forward(a, b, { mode: 'buffers' });
          this.forwarded.add(a);
          this.forwarders.set(a, fw);
          tally('forward started');
          this.check(`forward started where the model expected ${expected}`, expected === null);
          fw.on('error', (e) => this.typed("forward 'error'", e));
        } catch (e) {
          if (expected === null) this.check(`forward of two live sockets threw: ${String(e)}`, false);
          else this.expect('forward', e, expected);
        }
        break;
      }
      case 'sendShared': {
        const s = this.pick(this.sockets, op.s);
        const b = this.pick([...this.owned, ...this.shared], op.i);
        if (!s || !b) break;
        const dead = s.destroyed || s.writableEnded;
        try {
          s.sendShared(b);
          tally('sendShared accepted');
          this.check('sendShared on a destroyed or ended socket did not throw', !dead);
          this.owned = this.owned.filter((x) => x !== b);
          if (!this.shared.includes(b)) this.shared.push(b);
        } catch (e) {
          this.expect('sendShared on a destroyed or ended socket', e, 'ERR_MAIO_CLOSED');
          this.check(`sendShared threw on a live socket: ${String(e)}`, dead);
        }
        break;
      }
      case 'fanOut': {
        const b = this.pick(this.owned, op.i);
        if (!b) break;
        const targets = this.sockets.filter((_, k) => k < 8 && op.mask & (1 << k));
        try {
          const r = fanOut(b, targets, { release: op.release });
          tally(`fanOut queued ${Math.min(r.queued, 2)}+`);
          this.owned = this.owned.filter((x) => x !== b);
          if (op.release) this.sent.push(b);
          else this.shared.push(b);
        } catch (e) {
          // An owned buffer to sockets of its pool: legal (dead sockets are skipped, not refused).
          this.check(`fanOut of an owned buffer threw: ${String(e)}`, false);
          this.check('a refused fanOut took the buffer', !b.released && !b.lent);
        }
        break;
      }
      case 'releaseHeld': {
        for (const b of this.held) b.release();
        this.held = [];
        break;
      }
      case 'wait': {
        if (op.ms === 0) await tick();
        else await sleep(op.ms);
        break;
      }
    }
  }

  /** After each step: the buffers the test holds are its alone; the pool's counts add up. */
  invariants(after: string): void {
    // Shared buffers come back to the test when their last send is done.
    for (const b of this.shared) this.check(`${after}: a buffer lent with sendShared/fanOut(release: false) was released`, !b.released);
    const back = this.shared.filter((b) => !b.lent && !b.released);
    this.shared = this.shared.filter((b) => b.lent);
    this.owned.push(...back);
    const mine = [...this.owned, ...this.held];
    const offsets = new Set<number>();
    for (const b of mine) {
      this.check(`${after}: a held buffer is released`, !b.released);
      this.check(`${after}: a held buffer is lent`, !b.lent);
      this.check(`${after}: two live handles on the slot at ${b.offset}`, !offsets.has(b.offset));
      offsets.add(b.offset);
    }
    const st = this.pool.stats();
    let inUse = 0;
    for (const c of st.classes) {
      this.check(`${after}: class ${c.size}: ${JSON.stringify(c)}`, c.inUse >= 0 && c.lent >= 0 && c.lent <= c.inUse && c.inUse <= c.total);
      inUse += c.inUse;
    }
    // Everything the test holds is in use; lent buffers are not the test's.
    this.check(`${after}: pool inUse ${st.inUse} < ${mine.length} buffers the test holds`, st.inUse >= mine.length && st.inUse === inUse);
    this.check(`${after}: inUse - lent (${st.inUse - st.lent}) < owned by the test (${mine.length})`, st.inUse - st.lent >= mine.length);
  }

  async teardown(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    // Shared buffers: back with the test once their sends complete (destroy cancels them).
    const back = await until(() => this.shared.every((b) => !b.lent), 30_000);
    this.check(`${this.shared.filter((b) => b.lent).length} buffers lent with sendShared/fanOut never came back`, back);
    for (const b of this.shared) {
      this.check('a shared buffer was released by someone else', !b.released);
      if (!b.released && !b.lent) b.release();
    }
    this.shared = [];
    for (const [list, name] of [[this.owned, 'allocated'], [this.held, 'retained received']] as const) {
      for (const b of list) {
        // A buffer the application holds stays its own through destroy().
        this.check(`a ${name} buffer was released by destroy()`, !b.released);
        if (!b.released) b.release();
      }
    }
    this.owned = [];
    this.held = [];
    if (this.server) {
      const srv = this.server;
      this.server = null;
      this.serverCloses.push(new Promise<void>((r) => srv.close(() => r())));
    }
    const allClosed = await until(() => this.sockets.every((s) => this.closed.has(s)), 30_000);
    this.check(`${this.sockets.filter((s) => !this.closed.has(s)).length} of ${this.sockets.length} sockets never emitted 'close'`, allClosed);
    await bounded(Promise.all(this.serverCloses), 10_000, "servers' 'close' after their connections closed", this);
    await bounded(Promise.all(this.pending), 10_000, 'sendFile promises', this);
    const idle = await until(() => this.pool.stats().inUse === 0 && this.pool.stats().lent === 0, 30_000);
    const st = this.pool.stats();
    this.check(`pool not back to idle: inUse ${st.inUse}, lent ${st.lent}`, idle);
    for (const b of this.sent) this.check('a sent buffer is not back', b.released);
    this.pool.close();
  }
}

test('fuzz: random API call sequences on loopback sockets keep the pool exact and leak nothing', { skip: netSkip, timeout: 30 * 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-fuzz-'));
  const file = path.join(dir, 'small');
  fs.writeFileSync(file, Buffer.alloc(3000, 0x62));
  // Warm up: the thread's ring, its eventfd and the default pool exist before the baseline.
  {
    const w = new World('sink', file);
    await w.step({ t: 'connect', wait: true });
    await w.step({ t: 'write', s: 0, n: 10 });
    await w.teardown();
  }
  const baseline = fdCount();
  let runs = 0;
  let steps = 0;
  try {
    await fc.assert(
      fc.asyncProperty(serverMode, fc.array(opArb, { minLength: 1, maxLength: STEPS, size: 'max' }), async (mode, ops) => {
        runs++;
        const w = new World(mode, file);
        for (const [k, op] of ops.entries()) {
          if (DEBUG) console.error(k, JSON.stringify(op), w.pool.stats().inUse);
          try {
            await w.step(op);
          } catch (e) {
            // Each step catches and checks the errors its model expects (a send on a
            // dead socket, a second release, ...); one that gets here came from a call
            // the model says is legal (release of an owned buffer, end, pause, ...).
            w.check(`step ${k} ${JSON.stringify(op)}: a legal call threw ${String(e)}`, false);
          }
          w.invariants(`after step ${k} ${op.t}`);
          steps++;
        }
        if (DEBUG) console.error('teardown');
        await w.teardown();
        const fdsBack = await until(() => fdCount() === baseline, 10_000);
        w.check(`fds: ${fdCount()} open, ${baseline} before`, fdsBack);
        if (w.problems.length) throw new Error(`${w.problems.length} problems (server ${mode}):\n${[...new Set(w.problems)].slice(0, 20).join('\n')}`);
      }),
      { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}), endOnFailure: true },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(runs >= RUNS, true);
  if (process.env.MAIO_FUZZ_REPORT) {
    console.log(`fuzz: ${runs} runs, ${steps} steps, backend ${maio.backend().mode}`);
    console.log(JSON.stringify(Object.fromEntries([...counts].sort())));
  }
});
