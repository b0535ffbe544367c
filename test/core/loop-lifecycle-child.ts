/**
 * Child process of loop-lifecycle.test.ts: drives one engine's native loop
 * (native/loop.c, behind ring.c and fallback.c) through one order of the
 * close funnel, prints "OK" and exits. A crash, a hang or a double free here
 * fails the parent's test instead of killing the runner.
 *
 * usage: node --expose-gc loop-lifecycle-child.js <ring|fallback> <scenario>
 */
import { Worker } from 'node:worker_threads';
import { native } from '../../src/core/native';
import { sockaddr } from '../../src/net/address';

type Engine = 'ring' | 'fallback';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const turn = () => new Promise((r) => setImmediate(r));

/** One engine handle with what the scenarios need; `cb` is its JS callback. */
function open(engine: Engine, cb: () => void) {
  const n = native();
  if (engine === 'ring') {
    const submit = new Int32Array(16 * 8);
    const h = n.ringCreate({
      entries: 8,
      submit,
      completions: new Int32Array(4 * 32),
      aux: new Uint8Array(1024),
      stats: new Float64Array(16),
      onCompletions: cb,
    });
    return {
      /** Something that completes soon (a NOP). */
      kick: () => {
        n.ringRef(h, true); // as the Ring does while referenced ops are live
        submit.fill(0, 0, 16);
        submit[2] = 1; // user data
        n.ringSubmit(h, 1);
      },
      /** Something that stays in flight: the poll handle is referenced. */
      hold: () => {
        n.ringRef(h, true);
        const l = n.sockOpen(4, 'tcp');
        n.sockBind(l, sockaddr('127.0.0.1', 0));
        n.sockListen(l, 4);
        submit.fill(0, 0, 16);
        submit[0] = 5; // ACCEPT
        submit[1] = l;
        submit[2] = 2;
        submit[4] = -1;
        n.ringSubmit(h, 1);
      },
      close: () => n.ringClose(h),
      poke: () => n.ringSubmit(h, 0),
    };
  }
  const h = n.fallbackCreate({ events: new Int32Array(64), aux: new Uint8Array(256), notes: new Int32Array(24), onEvents: cb });
  return {
    kick: () => {
      n.fallbackRef(h, true); // as the TS engine does while ops are live
      n.fallbackWake(h);
    },
    hold: () => n.fallbackRef(h, true),
    close: () => n.fallbackClose(h),
    poke: () => n.fallbackWake(h),
  };
}

function expectClosed(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MAIO_CLOSED') return;
    throw e;
  }
  throw new Error('a call on a closed handle did not throw ERR_MAIO_CLOSED');
}

const scenarios: Record<string, (engine: Engine) => Promise<void>> = {
  /** JS close, then the handle is collected. */
  async 'close-then-gc'(engine) {
    for (let i = 0; i < 20; i++) {
      const e = open(engine, () => {});
      e.close();
      e.close(); // idempotent
      expectClosed(e.poke);
    }
    for (let i = 0; i < 3; i++) {
      gc();
      await turn();
    }
  },
  /** Collected without a close: the finalizer alone shuts it down. */
  async 'gc-without-close'(engine) {
    for (let i = 0; i < 20; i++) open(engine, () => {}).kick();
    for (let i = 0; i < 3; i++) {
      gc();
      await turn();
    }
  },
  /** Close from inside the engine's own callback, which then returns into native code. */
  async 'close-in-callback'(engine) {
    let calls = 0;
    let e: ReturnType<typeof open> | undefined;
    const done = new Promise<void>((resolve) => {
      e = open(engine, () => {
        calls++;
        e!.close();
        resolve();
      });
    });
    e!.kick();
    await done;
    await turn();
    if (calls !== 1) throw new Error(`callback ran ${calls} times`);
    expectClosed(e!.poke);
    e = undefined;
    gc();
    await turn();
  },
  /** A worker exits (process.exit inside it) with its handle open and referenced: the env cleanup hook closes it. */
  async 'worker-exit-open'(engine) {
    await inWorker(engine, 'exit');
  },
  /** A worker terminated from outside with its handle open and referenced. */
  async 'worker-terminate-open'(engine) {
    await inWorker(engine, 'terminate');
  },
};

function inWorker(engine: Engine, how: 'exit' | 'terminate'): Promise<void> {
  const w = new Worker(__filename, { argv: [engine, 'worker-body', how] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the worker did not exit within 10 s')), 10_000);
    w.on('message', () => {
      if (how === 'terminate') void w.terminate();
    });
    w.on('error', reject);
    w.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function workerBody(engine: Engine, how: string): Promise<void> {
  const { parentPort } = await import('node:worker_threads');
  const e = open(engine, () => {});
  e.hold(); // referenced: this worker's loop would never end by itself
  const e2 = open(engine, () => {});
  void e2; // a second one, unreferenced
  parentPort!.postMessage('ready');
  if (how === 'exit') {
    await turn();
    process.exit(0);
  }
}

async function main(): Promise<void> {
  const [engine, scenario, how] = process.argv.slice(2) as [Engine, string, string];
  if (scenario === 'worker-body') return workerBody(engine, how);
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  await run(engine);
  console.log('OK');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
