// Proof that the zero-copy send path is really taken: UDP datagrams sent with
// SEND_ZC from a registered pool buffer over a veth whose peer is down leave
// without local delivery, and the kernel reports them as NOT copied. The
// control, the same sends delivered to a peer namespace, reports them copied
// (every packet delivered locally has its pages copied: kernel-facts.md).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { backend } from '../../src/backend';

const CHILD = path.join(__dirname, 'fixtures', 'udp-zc-child.js');

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs `ip` from iproute2';
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
