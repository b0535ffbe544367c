// The contenders, as data: one entry per program, with the command it runs in each role.
// Servers take `--port P` and print `listening <port>` (or `ready`) on stdout when ready.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Contender, Env, RoleParams } from './lib/types';

const WRITE_SIZE = 65536;

const server = (env: Env, file: string): string => path.join(env.root, 'bench', 'servers', file);
const tool = (env: Env, name: string): string => path.join(env.buildDir, name);
const port = (p: RoleParams): string[] => ['--port', String(p.port), '--host', p.host];

function needTool(...names: string[]) {
  return (env: Env): string | null => {
    const missing = names.filter((n) => !existsSync(tool(env, n)));
    return missing.length ? `C tools not built (${missing.join(', ')}): run scripts/bench-setup.sh` : null;
  };
}

/** `maio echo` with heap and GC measurements (servers/maio-steady.js); the steady-state scenario. */
function maioSteady(env: Env, p: RoleParams): string[] {
  const dist = path.resolve(path.dirname(env.maioCli), '..');
  return [process.execPath, '--expose-gc', server(env, 'maio-steady.js'), '--maio', dist, ...port(p)];
}

function nodeNet(id: string, label: string): Contender {
  return {
    id,
    label,
    family: 'node',
    unavailable: () => null,
    cmd: {
      echo: (env, p) => [process.execPath, server(env, 'node-echo.js'), ...port(p)],
      sink: (env, p) => [process.execPath, server(env, 'node-sink.js'), ...port(p)],
      sender: (env, p) => [process.execPath, server(env, 'node-send.js'), ...port(p), '--size', String(WRITE_SIZE)],
    },
  };
}

export const contenders: Contender[] = [
  {
    id: 'maio',
    label: 'maio',
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: {
      echo: (env, p) => [process.execPath, env.maioCli, 'echo', '--port', String(p.port)],
      sink: (env, p) => [process.execPath, env.maioCli, 'sink', '--port', String(p.port)],
      sender: (env, p) => [process.execPath, env.maioCli, 'blast', '--port', String(p.port)],
      steady: maioSteady,
    },
  },
  {
    id: 'maio-b',
    label: 'maio (A/A copy)',
    family: 'maio',
    unavailable: (env) => (existsSync(env.maioCli) ? null : 'maio CLI not built yet'),
    earlyExitReason: 'maio CLI not built yet (it exits at once)',
    cmd: { steady: maioSteady },
  },
  nodeNet('node', 'node:net'),
  nodeNet('node-b', 'node:net (A/A copy)'),
  {
    id: 'bun',
    label: 'Bun',
    family: 'bun',
    unavailable: (env) => (env.bun ? null : 'Bun not installed (npm install in bench/)'),
    cmd: {
      echo: (env, p) => [env.bun!, server(env, 'bun-echo.js'), ...port(p)],
      sink: (env, p) => [env.bun!, server(env, 'bun-sink.js'), ...port(p)],
      sender: (env, p) => [env.bun!, server(env, 'bun-send.js'), ...port(p), '--size', String(WRITE_SIZE)],
    },
  },
  {
    id: 'c',
    label: 'C epoll',
    family: 'c',
    roleLabel: { sink: 'C sink, 64 KiB reads', sender: 'C sender (loadgen send)' },
    unavailable: needTool('echo_epoll', 'sink', 'loadgen'),
    cmd: {
      echo: (env, p) => [tool(env, 'echo_epoll'), String(p.port)],
      sink: (env, p) => [tool(env, 'sink'), String(p.port), '65536'],
      sender: (env, p) => [tool(env, 'loadgen'), 'send', ...port(p), '--write', String(WRITE_SIZE), '--duration', '0', '--warmup', '0'],
    },
  },
  {
    id: 'c-512k',
    label: 'C sink, 512 KiB reads',
    family: 'c',
    unavailable: needTool('sink'),
    cmd: {
      sink: (env, p) => [tool(env, 'sink'), String(p.port), '524288'],
    },
  },
  {
    id: 'iperf3',
    label: 'iperf3',
    family: 'iperf3',
    unavailable: (env) => (env.iperf3 ? null : 'iperf3 not installed (apt-get install iperf3)'),
    ready: /listening on (\d+)/i,
    cmd: {
      sink: (env, p) => [env.iperf3!, '-s', '-1', '--forceflush', '-B', p.host, '-p', String(p.port)],
      sender: (env, p) => [env.iperf3!, '-c', p.host, '-p', String(p.port), '-t', '86400', '--forceflush'],
    },
  },
];

export function contenderById(id: string): Contender {
  const c = contenders.find((x) => x.id === id);
  if (!c) throw new Error(`unknown contender '${id}' (known: ${contenders.map((x) => x.id).join(', ')})`);
  return c;
}
