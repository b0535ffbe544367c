// sockaddr encoding and decoding in TypeScript, checked against node:net's own
// parser and printer (net.isIP, net.SocketAddress: libuv's inet_pton/inet_ntop).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import fc from 'fast-check';
import {
  AF_INET,
  AF_INET6,
  SOCKADDR_IN6_LEN,
  SOCKADDR_IN_LEN,
  addressFamily,
  decodeSockaddr,
  encodeSockaddr,
  resolveAddress,
  sockaddr,
  validatePort,
} from '../../src/net/address';
import { InvalidAddressError, InvalidPortError, MaioError } from '../../src/core/errors';

/** What node:net prints for an IPv6 literal (uv_inet_pton then uv_inet_ntop). */
function nodeV6(address: string): string {
  return new net.SocketAddress({ address, family: 'ipv6' }).address;
}
function nodeAccepts(address: string, family: 'ipv4' | 'ipv6'): boolean {
  try {
    new net.SocketAddress({ address, family });
    return true;
  } catch {
    return false;
  }
}
function roundTrip(host: string, port: number) {
  return decodeSockaddr(sockaddr(host, port));
}
function lo(): number {
  return Number(fs.readFileSync('/sys/class/net/lo/ifindex', 'latin1').trim());
}

test('IPv4: exact sockaddr_in bytes and a round trip', () => {
  const b = sockaddr('127.0.0.1', 8080);
  assert.equal(b.length, SOCKADDR_IN_LEN);
  assert.deepEqual([...b], [AF_INET, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeSockaddr(b), { address: '127.0.0.1', family: 'IPv4', port: 8080 });
  for (const [host, port] of [
    ['0.0.0.0', 0],
    ['255.255.255.255', 65535],
    ['10.0.0.1', 1],
    ['192.168.100.200', 443],
  ] as const) {
    assert.deepEqual(roundTrip(host, port), { address: host, family: 'IPv4', port });
  }
});

test('IPv6: exact sockaddr_in6 bytes (family, port BE, flowinfo, address, scope id)', () => {
  const b = sockaddr('2001:db8::ff:1', '443');
  assert.equal(b.length, SOCKADDR_IN6_LEN);
  const v = new DataView(b.buffer);
  assert.equal(v.getUint16(0, true), AF_INET6);
  assert.equal(v.getUint16(2, false), 443);
  assert.equal(v.getUint32(4, false), 0, 'flowinfo');
  assert.deepEqual([...b.subarray(8, 24)], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 1]);
  assert.equal(v.getUint32(24, true), 0, 'scope id');
});

test('IPv6: canonical text like node:net prints it, for edge cases', () => {
  const cases: [string, string][] = [
    ['::1', '::1'],
    ['::', '::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['FE80::ABCD', 'fe80::abcd'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:0:1:0:0:1:1', '1::1:0:0:1:1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['::ffff:127.0.0.1', '::ffff:127.0.0.1'],
    ['::FFFF:7f00:1', '::ffff:127.0.0.1'],
    ['0:0:0:0:0:ffff:0:1', '::ffff:0.0.0.1'],
    ['::1.2.3.4', '::1.2.3.4'],
    ['::0.0.1.2', '::102'],
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['0001:0002:000a::', '1:2:a::'],
  ];
  for (const [input, want] of cases) {
    assert.equal(nodeV6(input), want, `oracle agrees for ${input}`);
    assert.deepEqual(roundTrip(input, 9), { address: want, family: 'IPv6', port: 9 }, input);
    // The canonical text encodes to the same bytes.
    assert.deepEqual(sockaddr(want, 9), sockaddr(input, 9), input);
  }
});

test('IPv6 zones: %name and %index become the scope id; decoding prints the interface name', () => {
  const idx = lo();
  for (const host of ['fe80::1%lo', `fe80::1%${idx}`]) {
    const b = sockaddr(host, 80);
    assert.equal(new DataView(b.buffer).getUint32(24, true), idx, host);
    assert.deepEqual(decodeSockaddr(b), { address: 'fe80::1%lo', family: 'IPv6', port: 80 });
  }
  // An index no interface has stays numeric.
  const b = sockaddr('fe80::1%4000000000', 80);
  assert.equal(decodeSockaddr(b).address, 'fe80::1%4000000000');
  for (const bad of ['fe80::1%', 'fe80::1%nosuchif0', 'fe80::1%../lo', 'fe80::1%4294967296', '127.0.0.1%lo', 'fe80::1%a b']) {
    assert.throws(() => sockaddr(bad, 80), InvalidAddressError, bad);
  }
});

test('encodeSockaddr writes at an offset, reports the length without a buffer, refuses short buffers', () => {
  assert.equal(encodeSockaddr('127.0.0.1', 1), 16);
  assert.equal(encodeSockaddr('::1', 1), 28);
  const aux = new Uint8Array(64).fill(0xee);
  assert.equal(encodeSockaddr('::1', 5000, aux, 30), 28);
  assert.equal(aux[29], 0xee, 'byte before untouched');
  assert.equal(aux[58], 0xee, 'byte after untouched');
  assert.deepEqual(decodeSockaddr(aux, 30), { address: '::1', family: 'IPv6', port: 5000 });
  // A view with a nonzero byteOffset.
  const sub = aux.subarray(30, 58);
  assert.deepEqual(decodeSockaddr(sub), { address: '::1', family: 'IPv6', port: 5000 });
  assert.throws(() => encodeSockaddr('::1', 1, new Uint8Array(27)), InvalidAddressError);
  assert.throws(() => encodeSockaddr('::1', 1, aux, 37), InvalidAddressError);
  assert.throws(() => encodeSockaddr('::1', 1, aux, -1), InvalidAddressError);
  assert.throws(() => encodeSockaddr('::1', 1, aux, 1.5), InvalidAddressError);
  assert.throws(() => encodeSockaddr('::1', 1, [] as unknown as Uint8Array), InvalidAddressError);
});

test('decodeSockaddr refuses unknown families, truncated bytes and non-arrays', () => {
  assert.throws(() => decodeSockaddr(new Uint8Array([1, 0, 0, 0])), /unsupported address family 1/);
  assert.throws(() => decodeSockaddr(sockaddr('::1', 1).subarray(0, 27)), /truncated/);
  assert.throws(() => decodeSockaddr(sockaddr('1.2.3.4', 1).subarray(0, 15)), /truncated/);
  assert.throws(() => decodeSockaddr(new Uint8Array(1)), InvalidAddressError);
  assert.throws(() => decodeSockaddr(sockaddr('1.2.3.4', 1), 15), InvalidAddressError);
  assert.throws(() => decodeSockaddr('x' as unknown as Uint8Array), InvalidAddressError);
});

test('ports: 0..65535 as numbers or decimal strings; anything else is InvalidPortError naming the value', () => {
  for (const [p, want] of [
    [0, 0],
    [65535, 65535],
    ['80', 80],
    ['00080', 80],
    ['65535', 65535],
  ] as const) {
    assert.equal(validatePort(p), want);
    assert.equal(decodeSockaddr(sockaddr('1.2.3.4', p)).port, want);
  }
  const bad: unknown[] = [-1, 65536, 1.5, NaN, Infinity, -0.5, '', ' 80', '80 ', '0x50', '1e3', '-1', '65536', '123456', null, undefined, {}, [80], 80n, true];
  for (const p of bad) {
    const err = (() => {
      try {
        sockaddr('127.0.0.1', p as number);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof InvalidPortError, `port ${String(p)} must be refused`);
    assert.ok(err instanceof MaioError);
    assert.equal((err as InvalidPortError).code, 'ERR_MAIO_BAD_PORT');
    assert.match((err as Error).message, /got /);
    if (typeof p === 'number' && Number.isFinite(p)) assert.ok((err as Error).message.includes(String(p)), (err as Error).message);
  }
  assert.match((() => { try { validatePort('0x50'); } catch (e) { return (e as Error).message; } return ''; })(), /"0x50"/);
});

test('malformed addresses are InvalidAddressError, and node:net refuses them too', () => {
  const bad = [
    '', 'localhost', 'example.com', '256.0.0.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4 ',
    '1::2::3', ':::', ':', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', '[::1]', 'g::1', '::ffff:1.2.3.256',
    '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4::', '::1.2.3', '1:2:3:4::5:6:7:8', ':1::2', '1::2:', '::1:', '0x7f.0.0.1',
  ];
  for (const host of bad) {
    assert.throws(() => sockaddr(host, 1), InvalidAddressError, host);
    assert.equal(addressFamily(host), 0, host);
    assert.equal(net.isIP(host), 0, `node agrees ${host} is not an IP`);
  }
  assert.throws(() => sockaddr('localhost', 1), /"localhost".*resolveAddress/);
  assert.throws(() => sockaddr(42 as unknown as string, 1), InvalidAddressError);
  assert.throws(() => sockaddr('x'.repeat(1000), 1), (e: Error) => e instanceof InvalidAddressError && e.message.length < 300);
});

test('property: decode(encode(x)) == x for random IPv4 addresses and ports', () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.integer({ min: 0, max: 65535 }), (host, port) => {
      assert.deepEqual(roundTrip(host, port), { address: host, family: 'IPv4', port });
    }),
    { numRuns: 2000 },
  );
});

test('property: random IPv6 literals decode to what node:net prints, and that text re-encodes to the same bytes', () => {
  fc.assert(
    fc.property(fc.ipV6(), fc.integer({ min: 0, max: 65535 }), (host, port) => {
      const bytes = sockaddr(host, port);
      const info = decodeSockaddr(bytes);
      assert.deepEqual(info, { address: nodeV6(host), family: 'IPv6', port });
      assert.deepEqual(sockaddr(info.address, info.port), bytes);
    }),
    { numRuns: 2000 },
  );
});

test('property: decode(encode(x)) == x for canonical IPv6 text from random bytes (zero runs favoured)', () => {
  const word = fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 65535 }), (words, port) => {
      const raw = words.map((w) => w.toString(16)).join(':');
      const canonical = nodeV6(raw);
      assert.deepEqual(roundTrip(canonical, port), { address: canonical, family: 'IPv6', port });
    }),
    { numRuns: 3000 },
  );
});

test('property: maio accepts exactly the literals node:net accepts (zone-free strings)', () => {
  const ch = fc.constantFrom(...'0123456789abcdefABCDEF:.:.:'.split(''));
  fc.assert(
    fc.property(fc.array(ch, { minLength: 0, maxLength: 42 }).map((a) => a.join('')), (s) => {
      const expect = nodeAccepts(s, 'ipv4') ? 4 : nodeAccepts(s, 'ipv6') ? 6 : 0;
      assert.equal(addressFamily(s), expect, JSON.stringify(s));
    }),
    { numRuns: 5000 },
  );
  // And near-misses of valid addresses (one character changed, inserted or dropped).
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.nat(), ch, fc.integer({ min: 0, max: 2 }), (ip, at, c, how) => {
      const i = at % (ip.length + 1);
      const s = how === 0 ? ip.slice(0, i) + c + ip.slice(i + 1) : how === 1 ? ip.slice(0, i) + c + ip.slice(i) : ip.slice(0, i) + ip.slice(i + 1);
      const expect = nodeAccepts(s, 'ipv4') ? 4 : nodeAccepts(s, 'ipv6') ? 6 : 0;
      assert.equal(addressFamily(s), expect, JSON.stringify(s));
    }),
    { numRuns: 5000 },
  );
});

test('resolveAddress: literals pass through, names go through node:dns lookup', async () => {
  assert.deepEqual(decodeSockaddr(await resolveAddress('127.0.0.1', 80)), { address: '127.0.0.1', family: 'IPv4', port: 80 });
  assert.deepEqual(decodeSockaddr(await resolveAddress('::1', '81', 6)), { address: '::1', family: 'IPv6', port: 81 });
  const any = decodeSockaddr(await resolveAddress('localhost', 82));
  assert.ok(any.address === '127.0.0.1' || any.address === '::1', any.address);
  assert.equal(any.port, 82);
  assert.deepEqual(decodeSockaddr(await resolveAddress('localhost', 83, 4)), { address: '127.0.0.1', family: 'IPv4', port: 83 });
  await assert.rejects(resolveAddress('127.0.0.1', 80, 6), InvalidAddressError);
  await assert.rejects(resolveAddress('localhost', 65536), InvalidPortError);
  await assert.rejects(resolveAddress('', 80), InvalidAddressError);
  await assert.rejects(resolveAddress('fe80::1%nosuchif0', 80), InvalidAddressError);
  await assert.rejects(resolveAddress('bad host', 80), InvalidAddressError);
  await assert.rejects(resolveAddress('localhost', 80, 5 as 4), InvalidAddressError);
  // A name that cannot exist: node:dns's own error shape (ENOTFOUND, or EAI_AGAIN without a resolver).
  await assert.rejects(resolveAddress('no-such-host.invalid', 80), (e: NodeJS.ErrnoException) => {
    assert.ok(typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code), String(e.code));
    assert.equal(e.syscall, 'getaddrinfo');
    return true;
  });
});
