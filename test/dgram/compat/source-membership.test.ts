/**
 * Source-specific multicast (SSM) joins on both families, on node:dgram
 * first, then maio/dgram. IPv6 multicast is not delivered over lo here (a
 * send to the group is ENETUNREACH), so what is checked is the kernel's own
 * record of the join: /proc/net/mcfilter6 (and mcfilter for IPv4) lists the
 * interface, group and source after add and not after drop. The errors are
 * node's, whether libuv or the kernel gives them: a second join
 * (EADDRNOTAVAIL), a leave of what was never joined, a bad or mismatched
 * address, a group that is not multicast (EINVAL), an IPv6 group on a udp4
 * socket (ENOPROTOOPT); an IPv4 group on a udp6 socket joins.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { close, impls, skip, thrown, type Sock } from './common';

const SOURCE6 = '::1';
const SOURCE4 = '127.0.0.1';

/** The /proc rows (device, group, source) of source filters, as hex the kernel prints them. */
function filters(file: '/proc/net/mcfilter6' | '/proc/net/mcfilter'): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/).slice(1, 4).join(' '))
    .filter((l) => l.length > 0);
}

const hex6 = (groupTail: string) => `ff3e${'0'.repeat(24)}${groupTail}`;
const LO6 = (groupTail: string) => `lo ${hex6(groupTail)} ${'0'.repeat(31)}1`;

function bindAny(s: Sock): Promise<void> {
  return new Promise((r) => s.bind(0, () => r()));
}

/** What f throws: node's errno exception fields, or null. */
function errOf(f: () => void): { code?: string; errno?: number; syscall?: string; message: string } | null {
  try {
    f();
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { code: e.code, errno: e.errno, syscall: e.syscall, message: e.message };
  }
}

for (const [name, dgram] of impls) {
  // A group per module and process: neither the two runs nor another test process see each other's joins.
  const tail = ((process.pid * 2 + (name === 'node:dgram' ? 0 : 1)) & 0xffff).toString(16).padStart(4, '0');
  const group = `ff3e::${tail}`;

  test(`udp6 addSourceSpecificMembership on lo: the kernel lists (lo, group, source) until dropSourceSpecificMembership (${name})`, { skip }, async () => {
    const rx = dgram.createSocket({ type: 'udp6', reuseAddr: true });
    await bindAny(rx);
    assert.ok(!filters('/proc/net/mcfilter6').includes(LO6(tail)));
    rx.addSourceSpecificMembership(SOURCE6, group, '::%lo');
    assert.ok(filters('/proc/net/mcfilter6').includes(LO6(tail)), `joined: ${filters('/proc/net/mcfilter6')}`);
    assert.deepEqual(errOf(() => rx.addSourceSpecificMembership(SOURCE6, group, '::%lo')), {
      code: 'EADDRNOTAVAIL',
      errno: -99,
      syscall: 'addSourceSpecificMembership',
      message: 'addSourceSpecificMembership EADDRNOTAVAIL',
    });
    rx.dropSourceSpecificMembership(SOURCE6, group, '::%lo');
    assert.ok(!filters('/proc/net/mcfilter6').includes(LO6(tail)), 'left');
    assert.deepEqual(errOf(() => rx.dropSourceSpecificMembership(SOURCE6, group, '::%lo')), {
      code: 'EINVAL',
      errno: -22,
      syscall: 'dropSourceSpecificMembership',
      message: 'dropSourceSpecificMembership EINVAL',
    });
    // The interface by index, as a zone number, is the same join.
    const lo = Number(fs.readFileSync('/sys/class/net/lo/ifindex', 'utf8'));
    if (name === 'maio/dgram') {
      // libuv reads a zone as a name only ('%1' is no interface: the kernel's choice); maio takes the number.
      rx.addSourceSpecificMembership(SOURCE6, group, `::%${lo}`);
      assert.ok(filters('/proc/net/mcfilter6').includes(LO6(tail)));
      rx.dropSourceSpecificMembership(SOURCE6, group, `::%${lo}`);
    }
    await close(rx);
    assert.ok(!filters('/proc/net/mcfilter6').includes(LO6(tail)), 'closing leaves every group');
  });

  test(`source-specific errors: bad and mismatched addresses, non-multicast groups, the other family (${name})`, { skip }, async () => {
    const u6 = dgram.createSocket('udp6');
    await bindAny(u6);
    const EINVAL = { code: 'EINVAL', errno: -22, syscall: 'addSourceSpecificMembership', message: 'addSourceSpecificMembership EINVAL' };
    assert.deepEqual(errOf(() => u6.addSourceSpecificMembership('not an address', group)), EINVAL);
    assert.deepEqual(errOf(() => u6.addSourceSpecificMembership(SOURCE4, group)), EINVAL, 'an IPv4 source for an IPv6 group');
    assert.deepEqual(errOf(() => u6.addSourceSpecificMembership(SOURCE6, '::2')), EINVAL, 'not a multicast group (the kernel)');
    assert.deepEqual(errOf(() => u6.addSourceSpecificMembership(SOURCE6, group, 'not an interface')), EINVAL);
    assert.deepEqual(thrown(() => u6.addSourceSpecificMembership(SOURCE6, 5 as never)), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'The "groupAddress" argument must be of type string. Received type number (5)',
    });
    // An IPv4 group on a udp6 socket: IP_ADD_SOURCE_MEMBERSHIP, and the kernel takes it.
    u6.addSourceSpecificMembership(SOURCE4, '232.1.2.3', SOURCE4);
    assert.ok(filters('/proc/net/mcfilter').includes('lo 0xe8010203 0x7f000001'));
    u6.dropSourceSpecificMembership(SOURCE4, '232.1.2.3', SOURCE4);
    await close(u6);
    const u4 = dgram.createSocket('udp4');
    await bindAny(u4);
    assert.deepEqual(errOf(() => u4.addSourceSpecificMembership(SOURCE6, group)), {
      code: 'ENOPROTOOPT',
      errno: -92,
      syscall: 'addSourceSpecificMembership',
      message: 'addSourceSpecificMembership ENOPROTOOPT',
    });
    assert.deepEqual(errOf(() => u4.dropSourceSpecificMembership(SOURCE4, '232.1.2.4', SOURCE4)), {
      code: 'EINVAL',
      errno: -22,
      syscall: 'dropSourceSpecificMembership',
      message: 'dropSourceSpecificMembership EINVAL',
    });
    await close(u4);
  });
}
