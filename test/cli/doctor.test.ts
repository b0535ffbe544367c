/**
 * maio doctor: its JSON shape, its exit code, and the verdicts that matter: io_uring forced off
 * is degraded (exit 1) with the fix named; a ring set-up that the wake-up probe found late,
 * forced, is degraded and its self-check line shows the stalls. Each run is a real child
 * process doing real loopback self-checks on every backend.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../../src/core/native';
import type { DoctorReport } from '../../src/cli/doctor';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const p = native().probe();

function doctor(env: Record<string, string | undefined>, args = ['--json', '--duration-ms', '300']): Promise<{ code: number; out: string; err: string }> {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'doctor', ...args], { env: e, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: stdout, err: stderr });
    });
  });
}

// The doctor runs every backend and set-up itself, whatever the suite's run forces.
const skip = process.env.MAIO_BACKEND === 'epoll' ? 'maio doctor checks every backend itself: it runs in the default run only' : false;
const uringSkip = skip || (p.uringUsable ? false : 'io_uring is not usable here: nothing to force off');
const lateSkip = uringSkip || (p.deferEventfd === 0 ? false
  : p.deferEventfd === 1 ? 'this kernel signals DEFER_TASKRUN\'s eventfd at once: nothing to flag'
  : 'this kernel has no DEFER_TASKRUN');

test('maio doctor --json: every fact and a self-check line per backend and set-up; exit code follows ok', { skip }, async () => {
  const r = await doctor({ MAIO_BACKEND: undefined, MAIO_RING_SETUP: undefined });
  const rep = JSON.parse(r.out) as DoctorReport;
  assert.equal(r.code, rep.ok ? 0 : 1, `exit code ${r.code} for ok=${rep.ok}: ${rep.summary}`);
  assert.equal(typeof rep.kernel, 'string');
  assert.equal(rep.node, process.version);
  assert.deepEqual(rep.findings.map((f) => f.name), [
    'backend', 'ring set-up', 'io_uring_disabled', 'seccomp', 'memlock', 'THP', 'zero-copy send', 'SO_REUSEPORT', 'worker CPUs', 'CPU steering', 'kernel TLS', 'socket buffers',
  ]);
  // kernel TLS: a kernel that lists the tls ULP has it; one without loadable modules that does not list it has not.
  const ulps = fs.readFileSync('/proc/sys/net/ipv4/tcp_available_ulp', 'utf8').trim().split(/\s+/);
  const ktls = rep.findings.find((f) => f.name === 'kernel TLS')!;
  if (ulps.includes('tls')) assert.equal(ktls.value, 'yes');
  else if (!fs.existsSync('/proc/modules')) assert.match(ktls.value, /^no \(TCP_ULP tls: ENOENT\)$/);
  for (const f of rep.findings) {
    assert.ok(['ok', 'note', 'degraded'].includes(f.verdict), `${f.name}: ${f.verdict}`);
    assert.equal(typeof f.value, 'string');
    if (f.verdict === 'degraded') assert.ok(f.why && f.fix, `${f.name} says why and how to fix`);
  }
  const names = rep.checks.map((c) => c.name);
  assert.equal(names[0], 'node:net (reference)');
  assert.ok(names.includes('epoll'));
  if (p.uringUsable) assert.ok(names.includes('io_uring, default set-up') && names.includes('io_uring, COOP_TASKRUN'));
  if (p.deferSetupFlags) assert.ok(names.includes('io_uring, DEFER_TASKRUN'));
  assert.equal(rep.checks.filter((c) => c.inUse).length, 1, 'exactly one line is the configuration in use');
  for (const c of rep.checks) {
    assert.ok(c.result, `${c.name} ran: ${c.error}`);
    const pp = c.result.pingPong;
    assert.ok(pp.roundTrips > 0 && pp.perSecond > 0 && pp.p50Us > 0 && pp.p99Us >= pp.p50Us, `${c.name}: ${JSON.stringify(pp)}`);
    assert.ok(c.result.bulk && c.result.bulk.bytes > 0, `${c.name} moved bulk bytes`);
  }
  const setup = rep.findings.find((f) => f.name === 'ring set-up')!;
  assert.equal(setup.data?.deferEventfd, p.deferEventfd === 1 ? 'prompt' : p.deferEventfd === 0 ? 'late' : 'unavailable');
});

test('maio doctor with io_uring forced off: backend degraded, fix named, exit 1', { skip: uringSkip }, async () => {
  const r = await doctor({ MAIO_BACKEND: 'epoll', MAIO_RING_SETUP: undefined });
  assert.equal(r.code, 1, r.err);
  const rep = JSON.parse(r.out) as DoctorReport;
  assert.equal(rep.ok, false);
  const b = rep.findings.find((f) => f.name === 'backend')!;
  assert.equal(b.verdict, 'degraded');
  assert.match(b.fix!, /unset MAIO_BACKEND/);
  assert.equal(rep.checks.find((c) => c.inUse)?.name, 'epoll');
  assert.match(rep.summary, /^degraded: backend: forced by MAIO_BACKEND=epoll/);
});

test('maio doctor with DEFER_TASKRUN forced where the probe found it late: degraded, stalls shown, exit 1', { skip: lateSkip }, async () => {
  const r = await doctor({ MAIO_BACKEND: undefined, MAIO_RING_SETUP: 'defer' });
  assert.equal(r.code, 1, r.err);
  const rep = JSON.parse(r.out) as DoctorReport;
  const setup = rep.findings.find((f) => f.name === 'ring set-up')!;
  assert.equal(setup.verdict, 'degraded');
  assert.match(setup.why!, /late/);
  assert.match(setup.fix!, /unset MAIO_RING_SETUP/);
  const line = rep.checks.find((c) => c.inUse)!;
  assert.equal(line.name, 'io_uring, DEFER_TASKRUN');
  assert.equal(line.verdict, 'degraded');
  assert.ok(line.result!.pingPong.stalls > line.result!.pingPong.roundTrips / 2, JSON.stringify(line.result!.pingPong));
  // The text form says the same to a person.
  const text = await doctor({ MAIO_BACKEND: undefined, MAIO_RING_SETUP: 'defer' }, ['--duration-ms', '200']);
  assert.equal(text.code, 1);
  assert.match(text.out, /ring set-up\s+degraded/);
  assert.match(text.out, /fix: unset MAIO_RING_SETUP/);
  assert.match(text.out, /^degraded: /m);
});

test('maio doctor refuses unknown options with one line and exit 1', { skip }, async () => {
  const r = await doctor({}, ['--bogus']);
  assert.equal(r.code, 1);
  assert.match(r.err, /unknown option --bogus/);
  const v = await doctor({}, ['--json=yes']);
  assert.equal(v.code, 1);
  assert.match(v.err, /--json takes no value/);
});
