/** The module each worker of `maio <command> --workers N` runs: the command's own run(). */
import { workerData } from 'node:worker_threads';

const { command, argv } = workerData as { command: string; argv: string[] };
const commands: Record<string, () => { run(argv: string[]): unknown }> = {
  echo: () => require('./echo'),
  sink: () => require('./sink'),
  proxy: () => require('./proxy'),
};
const load = commands[command];
if (!load) throw new Error(`maio: no worker mode for '${command}'`);
load().run(argv);
