/**
 * CPU steering of a SO_REUSEPORT group: the kernel gives a new connection to
 * socket (CPU its packets arrived on) % (group size) instead of a 4-tuple
 * hash, so a worker pinned to that CPU handles it where the kernel processed
 * it (native/reuseport.c). Refused (old kernel, seccomp, no BPF), the group
 * keeps the hash; the reason is reported, never thrown.
 */
import { native } from '../core/native';
import { sockaddr } from '../net/address';

export interface SteeringState {
  /** 'cpu': the CBPF program is attached; 'hash': the kernel's 4-tuple hash */
  mode: 'cpu' | 'hash';
  attached: boolean;
  /** why not attached (the errno name and what it means), or what was asked */
  reason: string;
}

const WHY: Record<string, string> = {
  EINVAL: 'the kernel refused the program (SO_ATTACH_REUSEPORT_CBPF needs Linux 4.5 and a listener in a reuseport group)',
  ENOPROTOOPT: 'this kernel has no SO_ATTACH_REUSEPORT_CBPF',
  EPERM: 'not permitted (seccomp or a BPF restriction)',
  ENOMEM: 'the kernel could not allocate the program',
};

/**
 * Which socket of the group each (CPU % count) goes to: the socket of the
 * worker pinned to that CPU. `slots` lists the worker index of each socket in
 * the kernel's order (join order, a closed socket's place taken by the last).
 */
export function steeringTable(cpus: readonly number[], count: number, slots: readonly number[]): Int32Array {
  const table = new Int32Array(count).fill(-1);
  for (let index = 0; index < count; index++) {
    const k = cpus[index % cpus.length]! % count;
    const socket = slots.indexOf(index);
    if (table[k] === -1 && socket >= 0) table[k] = socket;
  }
  return table;
}

/** Attaches the CPU program to the reuseport group of `fd` (a listening socket). */
export function attachCpuSteering(fd: number, groupSize: number, table?: Int32Array): SteeringState {
  try {
    native().sockAttachReuseportCpu(fd, groupSize, table);
    const mapped = table ? ` through [${Array.from(table).join(', ')}]` : '';
    return { mode: 'cpu', attached: true, reason: `socket = arrival CPU % ${groupSize}${mapped}` };
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    return { mode: 'hash', attached: false, reason: `${code}: ${WHY[code] ?? (err as Error).message}` };
  }
}

/**
 * Whether this kernel takes the program, tried on a throwaway reuseport
 * listener on 127.0.0.1 (for `maio doctor`).
 */
export function probeCpuSteering(): SteeringState {
  const n = native();
  let fd = -1;
  try {
    fd = n.sockOpen(4, 'tcp');
    n.sockSetInt(fd, 1, 15, 1); // SOL_SOCKET, SO_REUSEPORT
    n.sockBind(fd, sockaddr('127.0.0.1', 0));
    n.sockListen(fd, 1);
    return attachCpuSteering(fd, 2);
  } catch (err) {
    return { mode: 'hash', attached: false, reason: `probe listener failed: ${(err as Error).message}` };
  } finally {
    if (fd >= 0) n.sockClose(fd);
  }
}
