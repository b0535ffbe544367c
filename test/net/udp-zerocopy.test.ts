// Proof that the zero-copy send path is really taken: UDP datagrams sent with
// SEND_ZC from a registered pool buffer over a veth whose peer is down leave
// without local delivery, and the kernel reports them as NOT copied. The
// control, the same sends delivered to a peer namespace, reports them copied
// (every packet delivered locally has its pages copied: kernel-facts.md).
// Then the same proof for UdpSocket's own zero-copy UDP_SEGMENT batches
// (SENDMSG_ZC on io_uring, sendmsg with MSG_ZEROCOPY on epoll), on both
// engines; test/dgram/udp-zerocopy.test.ts has the loopback side.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { backend } from '../../src/backend';
import type { ZeroCopyStats } from '../../src/net/zc-policy';

const CHILD = path.join(__dirname, 'fixtures', 'udp-zc-child.js');
const SOCKET_CHILD = path.join(__dirname, 'fixtures', 'udp-zc-socket-child.js');

function netnsSkip(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs `ip` from iproute2';
  return false;
}

function skipReason(): string | false {
  const ns = netnsSkip();
  if (ns) return ns;
  if (backend().mode !== 'io_uring') return 'SEND_ZC is an io_uring operation; this run uses the fallback backend';
  return false;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

interface Verdict {
  results: number;
  notifications: number;
  copied: number;
  registered: boolean;
}

function sendIn(ns: string, count: number, size: number): Verdict {
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, CHILD, '198.18.0.2', String(count), String(size)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Verdict;
}

// 198.18.0.0/15 is the benchmarking range; these addresses exist only inside
// the namespaces this test creates and removes.
test('SEND_ZC over a veth with its peer down: the kernel reports the sends as not copied', { skip: skipReason() }, () => {
  const ns = `maio-zc-${process.pid}`;
  ip('netns', 'add', ns);
  try {
    ip('-n', ns, 'link', 'add', 'va', 'mtu', '65535', 'type', 'veth', 'peer', 'name', 'vb', 'mtu', '65535');
    ip('-n', ns, 'addr', 'add', '198.18.0.1/24', 'dev', 'va');
    ip('-n', ns, 'link', 'set', 'va', 'up');
    // A static neighbour: no ARP, so every datagram goes straight to the device.
    ip('-n', ns, 'neigh', 'add', '198.18.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'va', 'nud', 'permanent');
    for (const size of [1400, 16384, 60000]) {
      const v = sendIn(ns, 32, size);
      assert.equal(v.results, 32, `${size} B: every send completed`);
      assert.equal(v.notifications, 32, `${size} B: every send got its notification`);
      assert.equal(v.copied, 0, `${size} B: the kernel sent the pool pages without copying`);
      assert.equal(v.registered, true, 'the pool was a registered (fixed) buffer');
    }
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
});

test('control: the same sends delivered to a peer namespace are reported copied', { skip: skipReason() }, () => {
  const a = `maio-zca-${process.pid}`;
  const b = `maio-zcb-${process.pid}`;
  ip('netns', 'add', a);
  ip('netns', 'add', b);
  try {
    ip('-n', a, 'link', 'add', 'va', 'mtu', '65535', 'type', 'veth', 'peer', 'name', 'vb', 'mtu', '65535', 'netns', b);
    ip('-n', a, 'addr', 'add', '198.18.0.1/24', 'dev', 'va');
    ip('-n', b, 'addr', 'add', '198.18.0.2/24', 'dev', 'vb');
    ip('-n', a, 'link', 'set', 'va', 'up');
    ip('-n', b, 'link', 'set', 'vb', 'up');
    ip('-n', a, 'neigh', 'add', '198.18.0.2', 'lladdr', execFileSync('ip', ['-n', b, '-j', 'link', 'show', 'vb'], { encoding: 'utf8' }).match(/"address":"([0-9a-f:]+)"/)![1], 'dev', 'va', 'nud', 'permanent');
    const v = sendIn(a, 32, 16384);
    assert.equal(v.notifications, 32);
    assert.ok(v.copied > 0, `local delivery copies: ${v.copied} of 32 reported copied`);
  } finally {
    spawnSync('ip', ['netns', 'del', a]);
    spawnSync('ip', ['netns', 'del', b]);
  }
});

interface SocketVerdict {
  engine: string;
  errors: number;
  gsoBatches: number;
  datagramsOut: number;
  zeroCopy: ZeroCopyStats;
  registered: boolean;
  inUse: number;
}

/** A unique-local prefix that exists only inside the namespaces these tests make. */
const V6_PREFIX = 'fd00:198:18::';

/** The namespace of the first test: a veth whose peer is down, static neighbours for 198.18.0.2 and fd00:198:18::2. */
function withLonelyVeth(fn: (ns: string) => void): void {
  const ns = `maio-uzc-${process.pid}`;
  ip('netns', 'add', ns);
  try {
    ip('-n', ns, 'link', 'add', 'va', 'mtu', '65535', 'type', 'veth', 'peer', 'name', 'vb', 'mtu', '65535');
    ip('-n', ns, 'addr', 'add', '198.18.0.1/24', 'dev', 'va');
    ip('-n', ns, 'link', 'set', 'va', 'up');
    ip('-n', ns, 'neigh', 'add', '198.18.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'va', 'nud', 'permanent');
    // IPv6 the same way: no duplicate address detection to wait for, a static neighbour.
    ip('-n', ns, 'addr', 'add', `${V6_PREFIX}1/64`, 'dev', 'va', 'nodad');
    ip('-n', ns, 'neigh', 'add', `${V6_PREFIX}2`, 'lladdr', '02:00:00:00:00:02', 'dev', 'va', 'nud', 'permanent');
    fn(ns);
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

/** Runs the UdpSocket child in `ns` on this run's engine (MAIO_BACKEND is inherited). */
function socketSendIn(ns: string, mode: 'always' | 'auto', how: 'segments' | 'send', rounds: number, batches: number, dest = '198.18.0.2'): SocketVerdict {
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, SOCKET_CHILD, dest, mode, how, String(rounds), String(batches)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as SocketVerdict;
}

const thisEngine = (): string => (backend().mode === 'io_uring' ? 'SEND_ZC' : 'MSG_ZEROCOPY');

test("UdpSocket zeroCopy 'always' over a veth with its peer down: every GSO batch went zero-copy and is reported not copied", { skip: netnsSkip() }, () => {
  withLonelyVeth((ns) => {
    const v = socketSendIn(ns, 'always', 'segments', 2, 16);
    assert.equal(v.engine, thisEngine(), 'the child ran on the same engine as this run');
    assert.equal(v.errors, 0);
    assert.equal(v.gsoBatches, 32, 'each sendSegments() buffer left as one UDP_SEGMENT send');
    assert.equal(v.datagramsOut, 32 * 40);
    const z = v.zeroCopy;
    assert.equal(z.state, 'forced-zero-copy');
    assert.equal(z.zcSends, 32, 'every batch was sent zero-copy');
    assert.equal(z.notCopiedSends, 32, `every notification said not copied: ${JSON.stringify(z)}`);
    assert.equal(z.copiedSends, 0);
    assert.equal(z.notCopiedBytes, 32 * 40 * 1400);
    // io_uring: the pool was registered at the first SENDMSG_ZC and passed as a fixed buffer.
    assert.equal(v.registered, backend().mode === 'io_uring');
    assert.equal(v.inUse, 0, 'every buffer back in the pool');
    // send()'s datagrams, one pool buffer each, batched by the socket: each batch
    // cut to the kernel's 17 page fragments, and every one went zero-copy.
    const w = socketSendIn(ns, 'always', 'send', 1, 8);
    assert.equal(w.errors, 0);
    assert.equal(w.datagramsOut, 8 * 40);
    assert.ok(w.gsoBatches >= Math.ceil((8 * 40) / 17), `${w.gsoBatches} batches of at most 17 datagrams`);
    assert.equal(w.zeroCopy.zcSends, w.gsoBatches, `every batch went zero-copy: ${JSON.stringify(w.zeroCopy)}`);
    assert.equal(w.zeroCopy.notCopiedSends, w.gsoBatches);
    assert.equal(w.zeroCopy.copiedSends, 0);
    assert.equal(w.inUse, 0);
  });
});

test("UdpSocket zeroCopy 'auto' over a veth with its peer down: the probe sees no copies and the socket stays zero-copy", { skip: netnsSkip() }, () => {
  withLonelyVeth((ns) => {
    // Round 1 is the probe (8 batches); rounds 2 and 3 go zero-copy by the verdict.
    const v = socketSendIn(ns, 'auto', 'segments', 3, 8);
    assert.equal(v.engine, thisEngine());
    assert.equal(v.errors, 0);
    assert.equal(v.gsoBatches, 24);
    const z = v.zeroCopy;
    assert.equal(z.state, 'zero-copy', z.reason);
    assert.equal(z.zcSends, 24, `every batch went zero-copy: ${JSON.stringify(z)}`);
    assert.equal(z.notCopiedSends, 24);
    assert.equal(z.copiedSends, 0);
    assert.equal(z.plainSends, 0);
    assert.equal(v.inUse, 0, 'every buffer back in the pool');
  });
});

test("UdpSocket zeroCopy 'always' over IPv6 on the same veth: every GSO batch reported not copied", { skip: netnsSkip() }, () => {
  withLonelyVeth((ns) => {
    const v = socketSendIn(ns, 'always', 'segments', 1, 8, `${V6_PREFIX}2`);
    assert.equal(v.engine, thisEngine());
    assert.equal(v.errors, 0);
    assert.equal(v.gsoBatches, 8, 'each buffer one UDP_SEGMENT send over IPv6');
    assert.equal(v.datagramsOut, 8 * 40);
    assert.equal(v.zeroCopy.zcSends, 8, `every batch went zero-copy: ${JSON.stringify(v.zeroCopy)}`);
    assert.equal(v.zeroCopy.notCopiedSends, 8);
    assert.equal(v.zeroCopy.copiedSends, 0);
    assert.equal(v.inUse, 0, 'every buffer back in the pool');
  });
});
