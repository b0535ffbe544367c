/**
 * The entry of every maio worker thread: pin the thread (if asked), install
 * the worker context and listen hook, give the application its own
 * workerData, then load the application's module.
 */
import { syncBuiltinESMExports } from 'node:module';
import wt = require('node:worker_threads');
import { pathToFileURL } from 'node:url';
import { setThreadAffinity, threadAffinity } from './cpus';
import { TAG, type ToGroup, type WorkerBoot } from './protocol';
import { installWorker } from './runtime';

const raw = wt.workerData as { [TAG]: WorkerBoot; data: unknown };
const boot = raw[TAG];

let pinError: string | null = null;
let pinned: number[] | null = null;
if (boot.cpus) {
  try {
    setThreadAffinity(boot.cpus);
    pinned = boot.cpus;
  } catch (err) {
    pinError = (err as Error).message;
  }
}
const ctx = installWorker(boot, pinned);
wt.parentPort!.postMessage({ [TAG]: 'boot', threadId: ctx.threadId, cpus: threadAffinity(), pinError } satisfies ToGroup);

// The module sees the workerData it was given, as under worker_threads (require and import alike).
(wt as { workerData: unknown }).workerData = raw.data;
syncBuiltinESMExports();

// import() for ES modules and CommonJS alike; TypeScript would turn a plain import() into require().
const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<unknown>;
const url = boot.module.startsWith('file:') ? boot.module : pathToFileURL(boot.module).href;
importModule(url).catch((err: unknown) => {
  // As an uncaught error: the group sees 'error' and the exit.
  setImmediate(() => {
    throw err;
  });
});
