/**
 * Faults: zero-copy sends that the kernel cannot pin memory for. As `nobody`
 * under a 1 MiB RLIMIT_MEMLOCK, a 16 MiB pool can be neither locked nor
 * registered, so io_uring's SEND_ZC charges every send's pages to the memlock
 * limit and fails with ENOMEM once about 1 MiB is in flight; maio must lose
 * no byte: it resends what did not leave as plain sends and turns the socket
 * to plain mode (src/net/socket.ts #resend). On epoll the fault does not
 * happen here: MSG_ZEROCOPY over loopback is copied and unpinned at local
 * delivery, so neither the memlock limit nor net.core.optmem_max 0 fails a
 * send (checked: every send reports copied, none went plain); the tests then
 * show only that nothing is lost (docs/FAULTS.md, Limits). The same for a
 * UdpSocket's zero-copy UDP_SEGMENT batches (SENDMSG_ZC): a batch that fails
 * with ENOMEM goes again as a plain SENDMSG (src/dgram/udp-send.ts).
 *
 * Existing coverage: test/pool/nobody.test.ts (pools under the memlock limit
 * as nobody: locked, registered or why not); test/net/zerocopy.test.ts
 * ('always' and 'auto' on loopback, notifications before close).
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backend } from '../../src/backend';
import { netnsSkip } from './helpers';

const ROOT = path.join(__dirname, '..', '..', '..'); // the repo, above dist/
const NOBODY = 65534;
const TOTAL = 32 << 20;

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to run a child as nobody under a chosen memlock limit';
  for (const tool of ['prlimit', 'setpriv']) if (spawnSync(tool, ['--version']).status !== 0) return `needs ${tool} (util-linux)`;
  try {
    backend();
  } catch (e) {
    return String(e);
  }
  return false;
}
const skip = skipReason();

let staged: string | undefined;
after(() => {
  if (staged) fs.rmSync(staged, { recursive: true, force: true });
});

/** What the child needs, in a directory nobody can read. */
function stage(): string {
  if (staged) return staged;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-zc-memlock-'));
  fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'dist', 'test', 'hardening', 'fixtures'), { recursive: true });
  for (const f of ['zc-memlock.js', 'udp-zc-memlock.js']) {
    fs.copyFileSync(path.join(__dirname, 'fixtures', f), path.join(dir, 'dist', 'test', 'hardening', 'fixtures', f));
  }
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'build', 'Release', 'maio.node'), path.join(dir, 'build', 'Release', 'maio.node'));
  const open = (p: string): void => {
    const dirp = fs.statSync(p).isDirectory();
    fs.chmodSync(p, dirp ? 0o755 : 0o644);
    if (dirp) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(dir);
  staged = dir;
  return dir;
}

function runChild(opts: { memlock: number; optmem?: number; fixture?: string }): any {
  const dir = stage();
  const fixture = path.join(dir, 'dist', 'test', 'hardening', 'fixtures', opts.fixture ?? 'zc-memlock.js');
  const asNobody = ['prlimit', `--memlock=${opts.memlock}:${opts.memlock}`, 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, fixture, String(TOTAL)];
  const cmd = opts.optmem === undefined
    ? asNobody
    : ['unshare', '-n', 'sh', '-c', `ip link set lo up && sysctl -qw net.core.optmem_max=${opts.optmem} && exec "$@"`, 'sh', ...asNobody];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', ...(process.env.MAIO_BACKEND ? { MAIO_BACKEND: process.env.MAIO_BACKEND } : {}) } });
  assert.equal(r.status, 0, `child failed (${r.status ?? r.signal}): ${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function assertNoLoss(v: any): void {
  assert.deepEqual(v.errs, [], 'no error surfaced: the sends went again');
  assert.equal(v.bad, -1, `byte ${v.bad} is wrong`);
  assert.equal(v.recvd, TOTAL, 'every byte arrived');
  assert.equal(v.written, TOTAL);
  assert.equal(v.poolBack, true);
}

test('as nobody under a 1 MiB memlock limit: zero-copy sends that cannot be pinned go again as plain sends; no byte lost, pool back', { skip }, (t) => {
  const v = runChild({ memlock: 1 << 20 });
  t.diagnostic(JSON.stringify(v));
  assert.equal(v.locked, false);
  assertNoLoss(v);
  if (v.backend === 'io_uring') {
    assert.equal(v.registered, false, 'the pool is too large to register under the limit');
    assert.equal(v.zeroCopy.state, 'plain', 'SEND_ZC failed, the socket went plain');
    assert.match(v.zeroCopy.reason, /zero-copy send failed \((ENOMEM|ENOBUFS|a short send)\)/);
    assert.ok(v.zeroCopy.zcSends > 0 && v.zeroCopy.plainSends > 0);
  } else {
    t.diagnostic('epoll: MSG_ZEROCOPY over loopback is copied at delivery; the memlock fault is not provoked (docs/FAULTS.md, Limits)');
  }
});

test('in a namespace with net.core.optmem_max 0, as nobody: no byte lost, pool back', { skip: skip || netnsSkip() }, (t) => {
  const v = runChild({ memlock: 1 << 20, optmem: 0 });
  t.diagnostic(JSON.stringify(v));
  assertNoLoss(v);
  if (v.backend === 'epoll') t.diagnostic('epoll: MSG_ZEROCOPY over loopback is copied at delivery; the ENOBUFS fault is not provoked (docs/FAULTS.md, Limits)');
});

test('as nobody under a 64 KiB memlock limit (too little for the ring itself): epoll is chosen and says why; no byte lost, pool back', { skip }, (t) => {
  const v = runChild({ memlock: 64 << 10 });
  t.diagnostic(v.summary);
  assert.equal(v.backend, 'epoll', 'io_uring_setup of a full-size ring fails with ENOMEM here: the probe must see it too');
  if (!process.env.MAIO_BACKEND) assert.match(v.summary, /io_uring_setup failed with ENOMEM: not enough locked memory for the ring \(RLIMIT_MEMLOCK\)/);
  assertNoLoss(v);
});

test('UDP, as nobody under a 1 MiB memlock limit: zero-copy batches that cannot be pinned go again as plain sends; none lost to the sender, pool back', { skip }, (t) => {
  const v = runChild({ memlock: 1 << 20, fixture: 'udp-zc-memlock.js' });
  t.diagnostic(JSON.stringify(v));
  assert.deepEqual(v.errs, [], 'no error surfaced: the batches went again');
  assert.equal(v.datagramsOut, v.sent, 'the kernel took every datagram');
  assert.equal(v.wrong, 0, 'what arrived is byte-exact');
  assert.ok(v.arrived > 0);
  assert.equal(v.poolBack, true);
  if (v.backend === 'io_uring') {
    assert.equal(v.registered, false, 'the pool is too large to register under the limit');
    assert.equal(v.zeroCopy.state, 'plain', 'SENDMSG_ZC failed, the socket went plain');
    assert.match(v.zeroCopy.reason, /zero-copy send failed \((ENOMEM|ENOBUFS)\)/);
    assert.ok(v.zeroCopy.zcSends > 0 && v.zeroCopy.plainSends > 0);
  } else {
    t.diagnostic('epoll: MSG_ZEROCOPY over loopback is copied at delivery; the memlock fault is not provoked (docs/FAULTS.md, Limits)');
  }
});
