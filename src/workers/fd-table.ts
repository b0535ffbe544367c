/**
 * Which worker owns which socket, in memory shared by the group and its
 * workers. A worker thread that dies (process.exit, an uncaught throw,
 * terminate()) leaves its socket fds open: they belong to the process, not
 * the thread. Its listener would stay in the reuseport group and take
 * connections nobody accepts, and its peers would wait forever. So each
 * worker records its listeners, accepted sockets and the sockets it connects
 * (a proxy's upstream connections) here, and the group resets what a dead
 * worker still owned.
 *
 * Indexed by fd (unique in the process at any moment). Each entry holds the
 * owner's worker id and the socket's inode: a number the worker closed and
 * another thread reused has another inode, and is left alone.
 */
import * as fs from 'node:fs';
import { native } from '../core/native';
import { setLinger } from '../net/sockopt';

export interface FdTableMemory {
  owner: Int32Array;
  inode: Uint32Array;
}

/** Size from RLIMIT_NOFILE's soft limit (/proc/self/limits), capped: fds above it cannot exist. */
export function fdTableSize(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') return Math.min(Math.max(Number(m[1]), 1024), 1 << 20);
  } catch {
    /* fall through */
  }
  return 1 << 16;
}

export function createFdTable(size = fdTableSize()): FdTableMemory {
  return {
    owner: new Int32Array(new SharedArrayBuffer(size * 4)),
    inode: new Uint32Array(new SharedArrayBuffer(size * 4)),
  };
}

/** The worker side: record on accept/listen, forget on close. */
export class FdRecorder {
  constructor(
    private readonly mem: FdTableMemory,
    private readonly id: number,
  ) {}

  record(fd: number): void {
    if (fd < 0 || fd >= this.mem.owner.length) return; // beyond the table: not cleaned up after a crash
    let ino = 0;
    try {
      ino = fs.fstatSync(fd).ino >>> 0;
    } catch {
      return;
    }
    this.mem.inode[fd] = ino;
    Atomics.store(this.mem.owner, fd, this.id);
  }

  forget(fd: number): void {
    if (fd >= 0 && fd < this.mem.owner.length) Atomics.compareExchange(this.mem.owner, fd, this.id, 0);
  }
}

function inodeOf(fd: number): number {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
    return m ? Number(m[1]) >>> 0 : -1;
  } catch {
    return -1;
  }
}

/**
 * The group side, after worker `id` has exited: resets (SO_LINGER 0, then
 * close) every socket it still owned, so its peers get ECONNRESET and its
 * listener leaves the reuseport group. Returns how many were closed.
 */
export function resetOwnedBy(mem: FdTableMemory, id: number): number {
  let closed = 0;
  for (let fd = 0; fd < mem.owner.length; fd++) {
    if (mem.owner[fd] !== id) continue;
    Atomics.compareExchange(mem.owner, fd, id, 0);
    if (inodeOf(fd) !== mem.inode[fd]) continue;
    try {
      setLinger(fd, 0);
    } catch {
      /* a listener or a dead socket: close anyway */
    }
    try {
      native().sockClose(fd);
      closed++;
    } catch {
      /* closed meanwhile */
    }
  }
  return closed;
}
