/**
 * `--workers N|auto` and `--cpus LIST` for the server commands: the main
 * thread starts a worker group whose workers each run the same command's
 * server (one ring and pool per thread, one port through SO_REUSEPORT), prints
 * `listening <port>` once, and drains the group on SIGTERM/SIGINT.
 */
import { InvalidArgumentError } from '../core/errors';
import { parseCpuList } from '../workers/cpus';
import { WorkerGroup } from '../workers/group';
import { currentWorker } from '../workers/runtime';

export const workersHelp = `  --workers N|auto  run N worker threads (auto: one per CPU this process may use), each with its own ring and pool, on one port (SO_REUSEPORT)
  --cpus LIST       with --workers: pin worker i to the i-th CPU of LIST (e.g. 0-3,8); connections are then steered by arrival CPU`;

export interface WorkerFlags {
  workers: number | 'auto' | null;
  cpus: string | null;
  /** the group's steering, when the command needs one (default: 'cpu' with --cpus, else 'hash') */
  steer?: 'cpu' | 'hash';
  /** the other arguments, for the command itself */
  rest: string[];
}

/** Takes --workers and --cpus out of argv (the command parses the rest). */
export function takeWorkerFlags(argv: string[]): WorkerFlags {
  const out: WorkerFlags = { workers: null, cpus: null, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(workers|cpus)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) {
      out.rest.push(argv[i]!);
      continue;
    }
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new InvalidArgumentError(`--${m[1]} needs a value`);
    if (m[1] === 'cpus') {
      parseCpuList(raw, '--cpus');
      out.cpus = raw;
    } else if (raw === 'auto') out.workers = 'auto';
    else {
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || n < 1 || n > 1024) throw new InvalidArgumentError(`--workers must be 'auto' or a whole number in 1..1024, got '${raw}'`);
      out.workers = n;
    }
  }
  if (out.cpus !== null && out.workers === null) throw new InvalidArgumentError('--cpus needs --workers');
  return out;
}

/** True inside a worker started by runInWorkers (the command then prints no `listening` line of its own). */
export function inCliWorker(): boolean {
  return currentWorker() !== null;
}

/**
 * Runs `command` in a worker group. `onReady` runs once every worker listens
 * (e.g. a metrics server in this thread); the port is the first listener's.
 */
export function runInWorkers(
  command: string,
  flags: WorkerFlags,
  onReady?: (group: WorkerGroup) => Promise<void> | void,
  beforeStop?: (group: WorkerGroup) => Promise<void> | void,
  /** more workerData for each worker, asked at its start (a replacement gets what is current then) */
  extraData?: () => Record<string, unknown>,
  /** the group before it starts (to listen for its messages from the first one on) */
  onGroup?: (group: WorkerGroup) => void,
): void {
  const fail = (err: Error) => {
    process.stderr.write(`maio ${command}: ${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}\n`);
    process.exit(1);
  };
  let group: WorkerGroup;
  try {
    group = new WorkerGroup({
      module: require.resolve('./worker-command'),
      count: flags.workers ?? 'auto',
      ...(flags.cpus !== null ? { cpus: flags.cpus } : {}),
      ...(flags.steer !== undefined ? { steer: flags.steer } : {}),
      workerData: () => ({ command, argv: flags.rest, ...extraData?.() }),
    });
  } catch (err) {
    return fail(err as Error);
  }
  onGroup?.(group);
  group.start().then(async (group) => {
    const pins = group.cpus ? `, pinned to CPUs ${group.workers.map((w) => w.cpus.join('+')).join(' ')}` : '';
    process.stderr.write(`maio ${command}: ${group.count} workers${pins}; steering: ${group.steering.mode}${group.steering.attached ? '' : ` (${group.steering.reason})`}\n`);
    group.on('exit', (w, code, info) => {
      if (!info.expected) process.stderr.write(`maio ${command}: worker ${w.index} exited (code ${code}); ${info.socketsReset} sockets reset; restart in ${info.restartIn} ms\n`);
    });
    group.on('error', (w, err) => process.stderr.write(`maio ${command}: worker ${w.index}: ${err.message}\n`));
    if (onReady) await onReady(group);
    process.stdout.write(`listening ${group.port}\n`);
    let stopping = false;
    const stop = async () => {
      if (stopping) {
        for (const w of group.workers) void w.thread.terminate();
        process.exit(0);
      }
      stopping = true;
      if (beforeStop) await beforeStop(group);
      await group.stop({ timeout: 10_000 });
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop());
    process.on('SIGINT', () => void stop());
  }, fail);
}
