// Two network namespaces joined by a veth pair, for the UDP scenarios' veth variant: the sender
// runs in one, the receiver in the other, so datagrams cross a real (virtual) link instead of
// loopback. Made per measurement, deleted after it, and on the harness's exit whatever happens.
import { execFileSync } from 'node:child_process';

const live = new Set<string>();
let guarded = false;

export interface VethPair {
  /** namespace and address of the sending side */
  a: { ns: string; addr: string };
  /** namespace and address of the receiving side */
  b: { ns: string; addr: string };
}

/** Why the veth variant cannot run here, or null. */
export function vethProblem(ip: string | null): string | null {
  if (!ip) return '`ip` (iproute2) not installed: no network namespaces';
  if (process.getuid?.() !== 0) return 'not root: cannot create network namespaces';
  return null;
}

function run(ip: string, ...args: string[]): void {
  execFileSync(ip, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Deletes a pair's namespaces (the veth goes with them); quiet when they are gone already. */
export function deleteVeth(ip: string, pair: VethPair): void {
  for (const ns of [pair.a.ns, pair.b.ns]) {
    try {
      run(ip, 'netns', 'del', ns);
    } catch {
      // already gone
    }
    live.delete(ns);
  }
}

let serial = 0;
/** Namespaces <tag>-a and <tag>-b, veth between them, 10.201.<n>.1/30 and .2/30, links up. */
export function makeVeth(ip: string): VethPair {
  if (!guarded) {
    guarded = true;
    process.on('exit', () => {
      for (const ns of live) {
        try {
          run(ip, 'netns', 'del', ns);
        } catch {
          // gone
        }
      }
    });
  }
  const n = serial++ % 250;
  const tag = `maio-bench-${process.pid}-${n}`;
  const pair: VethPair = { a: { ns: `${tag}-a`, addr: `10.201.${n}.1` }, b: { ns: `${tag}-b`, addr: `10.201.${n}.2` } };
  try {
    for (const ns of [pair.a.ns, pair.b.ns]) {
      run(ip, 'netns', 'add', ns);
      live.add(ns);
    }
    // interface names are at most 15 bytes: short, unique within the namespaces only
    run(ip, 'link', 'add', 'mbva', 'netns', pair.a.ns, 'type', 'veth', 'peer', 'name', 'mbvb', 'netns', pair.b.ns);
    for (const [side, dev] of [[pair.a, 'mbva'], [pair.b, 'mbvb']] as const) {
      run(ip, '-n', side.ns, 'addr', 'add', `${side.addr}/30`, 'dev', dev);
      run(ip, '-n', side.ns, 'link', 'set', dev, 'up');
      run(ip, '-n', side.ns, 'link', 'set', 'lo', 'up');
    }
  } catch (err) {
    deleteVeth(ip, pair);
    throw err;
  }
  return pair;
}

/** argv run inside namespace `ns` (ip netns exec execs it: the pid stays the program's). */
export function inNs(ip: string, ns: string, argv: string[]): string[] {
  return [ip, 'netns', 'exec', ns, ...argv];
}
