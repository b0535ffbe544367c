/**
 * Broadcast, TTLs and multicast on loopback, on node:dgram first: a
 * broadcast send is EACCES until setBroadcast(true), then reaches a socket
 * on 127.255.255.255 (lo's broadcast address); a group joined on the
 * 127.0.0.1 interface gets a datagram sent there with the multicast
 * interface set, and not after dropMembership.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { bindLocal, close, impls, sent, skip, until, type Sock } from './common';

const GROUP = '239.255.77.7';

function collect(s: Sock): string[] {
  const got: string[] = [];
  s.on('message', (m) => got.push(m.toString()));
  return got;
}

for (const [name, dgram] of impls) {
  test(`setBroadcast(): EACCES before, delivered to lo's broadcast address after (${name})`, { skip }, async () => {
    const rx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, () => r())); // all addresses: broadcasts arrive
    const port = rx.address().port;
    const got = collect(rx);
    const tx = dgram.createSocket('udp4');
    await bindLocal(tx);
    const [err] = await sent((cb) => tx.send('no', port, '127.255.255.255', cb));
    assert.equal((err as NodeJS.ErrnoException | null)?.code, 'EACCES');
    assert.equal(err!.message, `send EACCES 127.255.255.255:${port}`);
    tx.setBroadcast(true);
    const [err2] = await sent((cb) => tx.send('yes', port, '127.255.255.255', cb));
    assert.equal(err2, null);
    await until(() => got.length > 0, 'the broadcast', 5000);
    assert.deepEqual(got, ['yes']);
    tx.setBroadcast(false);
    const [err3] = await sent((cb) => tx.send('no again', port, '127.255.255.255', cb));
    assert.equal((err3 as NodeJS.ErrnoException | null)?.code, 'EACCES');
    await close(tx);
    await close(rx);
  });

  test(`multicast on the 127.0.0.1 interface: addMembership, setMulticastInterface/TTL/Loopback; dropMembership stops it (${name})`, { skip }, async () => {
    const rx = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => rx.bind(0, () => r()));
    const port = rx.address().port;
    const got = collect(rx);
    rx.addMembership(GROUP, '127.0.0.1');
    const tx = dgram.createSocket('udp4');
    await bindLocal(tx);
    tx.setMulticastInterface('127.0.0.1');
    assert.equal(tx.setMulticastTTL(1), 1);
    assert.equal(tx.setMulticastLoopback(true), true);
    const [err] = await sent((cb) => tx.send('to the group', port, GROUP, cb));
    assert.equal(err, null);
    await until(() => got.length > 0, 'the group datagram', 5000);
    assert.deepEqual(got, ['to the group']);
    rx.dropMembership(GROUP, '127.0.0.1');
    assert.throws(() => rx.dropMembership(GROUP, '127.0.0.1'), { code: 'EADDRNOTAVAIL', syscall: 'dropMembership' }, 'not a member any more');
    await sent((cb) => tx.send('after the drop', port, GROUP, cb));
    // a datagram to ourselves behind it: once it is here, the group datagram would have been too
    const [err2] = await sent((cb) => tx.send('marker', port, '127.0.0.1', cb));
    assert.equal(err2, null);
    await until(() => got.length > 1, 'the marker', 5000);
    assert.deepEqual(got, ['to the group', 'marker']);
    await close(tx);
    await close(rx);
  });

  test(`source-specific membership on udp4: join and leave for the 127.0.0.1 source (${name})`, { skip }, async () => {
    const rx = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => rx.bind(0, () => r()));
    const port = rx.address().port;
    const got = collect(rx);
    rx.addSourceSpecificMembership('127.0.0.1', '232.1.2.3', '127.0.0.1');
    const tx = dgram.createSocket('udp4');
    await bindLocal(tx);
    tx.setMulticastInterface('127.0.0.1');
    await sent((cb) => tx.send('ssm', port, '232.1.2.3', cb));
    await until(() => got.length > 0, 'the source-specific datagram', 5000);
    assert.deepEqual(got, ['ssm']);
    rx.dropSourceSpecificMembership('127.0.0.1', '232.1.2.3', '127.0.0.1');
    assert.throws(() => rx.addSourceSpecificMembership(5 as never, '232.1.2.3'), { code: 'ERR_INVALID_ARG_TYPE' });
    await close(tx);
    await close(rx);
  });
}
