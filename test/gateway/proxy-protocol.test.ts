/**
 * The PROXY protocol codec against the specification's own examples: v1 lines
 * for TCP4, TCP6 and UNKNOWN (the longest of each), v2 headers built byte by
 * byte from the specification's layout, TLVs skipped by length, and every
 * way a header can be malformed gives a typed error.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProxyProtocolError } from '../../src/core/errors';
import { addressesOf, decodeProxyHeader, encodeV1, encodeV2, V1_MAX_LENGTH, V2_SIGNATURE } from '../../src/gateway/proxy-protocol';

const b = (s: string) => Buffer.from(s, 'latin1');

function decodeAll(buf: Uint8Array) {
  const r = decodeProxyHeader(buf);
  assert.ok(r.done, 'complete header');
  return r;
}

test('v1: the specification examples decode, and each prefix of them asks for more bytes', () => {
  const tcp4 = 'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n';
  const tcp6 = 'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';
  const unknownLong = 'PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';
  // The specification's worst cases: 56, 104 and 107 bytes; 15 for the shortest.
  assert.equal(tcp4.length, 56);
  assert.equal(tcp6.length, 104);
  assert.equal(unknownLong.length, V1_MAX_LENGTH);

  const r4 = decodeAll(b(tcp4 + 'GET / HTTP/1.0\r\n'));
  assert.equal(r4.length, 56);
  assert.deepEqual(r4.header, {
    version: 1,
    command: 'proxy',
    addresses: { family: 'IPv4', sourceAddress: '255.255.255.255', destinationAddress: '255.255.255.255', sourcePort: 65535, destinationPort: 65535 },
    tlvs: [],
  });
  const r6 = decodeAll(b(tcp6));
  assert.equal(r6.length, 104);
  assert.equal(r6.header.addresses!.family, 'IPv6');
  assert.equal(r6.header.addresses!.sourceAddress, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  const ru = decodeAll(b(unknownLong));
  assert.equal(ru.length, 107);
  assert.equal(ru.header.addresses, null);
  assert.deepEqual(decodeAll(b('PROXY UNKNOWN\r\n')), { done: true, length: 15, header: { version: 1, command: 'proxy', addresses: null, tlvs: [] } });
  // The example of section 2.1 with a real client.
  const ex = decodeAll(b('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'));
  assert.deepEqual(ex.header.addresses, { family: 'IPv4', sourceAddress: '192.168.0.1', destinationAddress: '192.168.0.11', sourcePort: 56324, destinationPort: 443 });

  for (const whole of [tcp4, tcp6, unknownLong]) {
    for (let n = 0; n < whole.length; n++) assert.deepEqual(decodeProxyHeader(b(whole.slice(0, n))), { done: false }, `prefix of ${n} bytes`);
  }
});

test('v1: the encoder writes what the decoder reads, in the shortest address forms', () => {
  assert.equal(encodeV1({ family: 'IPv4', sourceAddress: '192.168.0.1', destinationAddress: '192.168.0.11', sourcePort: 56324, destinationPort: 443 }).toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
  const six = encodeV1({ family: 'IPv6', sourceAddress: '2001:db8:0:0:0:0:0:1', destinationAddress: '::1', sourcePort: 1, destinationPort: 0 }).toString('latin1');
  assert.equal(six, 'PROXY TCP6 2001:db8::1 ::1 1 0\r\n');
  assert.equal(encodeV1(null).toString('latin1'), 'PROXY UNKNOWN\r\n');
  assert.deepEqual(decodeAll(b(six)).header.addresses, { family: 'IPv6', sourceAddress: '2001:db8::1', destinationAddress: '::1', sourcePort: 1, destinationPort: 0 });
});

test('v1: malformed lines are refused with ProxyProtocolError', () => {
  const bad: [string, RegExp][] = [
    ['GET / HTTP/1.1\r\n', /no PROXY protocol header/],
    ['PROXX TCP4', /start like "PROXY "/],
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /TCP4, TCP6 or UNKNOWN/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /needs 4 fields/],
    ['PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n', /needs 4 fields/],
    ['PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', /not an IPv4 address/],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /not an IPv4 address/],
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', /not an IPv6 address/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /not a port/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n', /no leading zero/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /line feed without the carriage return/],
    [`PROXY UNKNOWN ${'x'.repeat(120)}`, /no CRLF within 107 bytes/],
  ];
  for (const [line, re] of bad) assert.throws(() => decodeProxyHeader(b(line)), (e: unknown) => e instanceof ProxyProtocolError && e.code === 'ERR_MAIO_PROXY_PROTOCOL' && re.test(e.message), line);
});

/** A v2 header written field by field from the specification's layout (section 2.2). */
function v2(verCmd: number, famProto: number, body: number[]): Buffer {
  return Buffer.from([...V2_SIGNATURE, verCmd, famProto, body.length >> 8, body.length & 0xff, ...body]);
}

test('v2: signature, PROXY over TCP/IPv4 and IPv6, LOCAL, UNSPEC, TLVs skipped by their length', () => {
  assert.deepEqual([...V2_SIGNATURE], [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a], '\\r\\n\\r\\n\\0\\r\\nQUIT\\n');
  // 0x21: version 2, PROXY; 0x11: AF_INET, STREAM; 12 bytes: src, dst, sport, dport.
  const four = v2(0x21, 0x11, [10, 0, 0, 1, 192, 168, 1, 2, 0xdc, 0x04, 0x01, 0xbb]);
  const r = decodeAll(Buffer.concat([four, b('payload')]));
  assert.equal(r.length, 28);
  assert.deepEqual(r.header, { version: 2, command: 'proxy', tlvs: [], addresses: { family: 'IPv4', sourceAddress: '10.0.0.1', destinationAddress: '192.168.1.2', sourcePort: 56324, destinationPort: 443 } });
  assert.deepEqual(encodeV2(r.header.addresses), four, 'the encoder writes the same bytes');

  // 0x21 / 0x21: AF_INET6, STREAM; 36 bytes.
  const src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const dst6 = [...Array(15).fill(0), 1];
  const six = v2(0x21, 0x21, [...src6, ...dst6, 0x30, 0x39, 0x00, 0x50]);
  const r6 = decodeAll(six);
  assert.equal(r6.length, 52);
  assert.deepEqual(r6.header.addresses, { family: 'IPv6', sourceAddress: '2001:db8::1', destinationAddress: '::1', sourcePort: 12345, destinationPort: 80 });
  assert.deepEqual(encodeV2(r6.header.addresses), six);

  // LOCAL (0x20) with UNSPEC (0x00) and no body: the connection's own addresses count.
  const local = v2(0x20, 0x00, []);
  assert.deepEqual(decodeAll(local), { done: true, length: 16, header: { version: 2, command: 'local', addresses: null, tlvs: [] } });
  assert.deepEqual(encodeV2(null), local);

  // TLVs after the addresses: ALPN (0x01) "h2", a NOOP (0x04) of 3 bytes, an empty one.
  const tlvs = [0x01, 0, 2, 0x68, 0x32, 0x04, 0, 3, 0, 0, 0, 0xe0, 0, 0];
  const withTlv = v2(0x21, 0x11, [127, 0, 0, 1, 127, 0, 0, 2, 0, 1, 0, 2, ...tlvs]);
  const rt = decodeAll(Buffer.concat([withTlv, b('x')]));
  assert.equal(rt.length, 16 + 12 + tlvs.length);
  assert.equal(rt.header.addresses!.destinationAddress, '127.0.0.2');
  assert.deepEqual(
    rt.header.tlvs.map((t) => [t.type, [...t.value]]),
    [
      [0x01, [0x68, 0x32]],
      [0x04, [0, 0, 0]],
      [0xe0, []],
    ],
  );
  assert.deepEqual(encodeV2(rt.header.addresses, rt.header.tlvs), withTlv);

  // PROXY over UDP or AF_UNIX: valid, but no TCP addresses to use.
  assert.equal(decodeAll(v2(0x21, 0x12, Array(12).fill(1))).header.addresses, null);
  assert.equal(decodeAll(v2(0x21, 0x31, Array(216).fill(0))).header.addresses, null);

  for (const whole of [four, six, withTlv]) {
    for (let n = 0; n < whole.length; n++) assert.deepEqual(decodeProxyHeader(whole.subarray(0, n)), { done: false }, `prefix of ${n} bytes`);
  }
});

test('v2: malformed headers are refused with ProxyProtocolError', () => {
  const sig = [...V2_SIGNATURE];
  const bad: [Uint8Array, RegExp][] = [
    [Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x53]), /like the v2 signature but differ/],
    [v2(0x11, 0x11, Array(12).fill(0)), /version must be 2/],
    [v2(0x22, 0x11, Array(12).fill(0)), /command must be LOCAL \(0\) or PROXY \(1\)/],
    [v2(0x21, 0x41, Array(12).fill(0)), /unknown family\/transport byte 0x41/],
    [v2(0x21, 0x13, Array(12).fill(0)), /unknown family\/transport/],
    [v2(0x21, 0x11, Array(8).fill(0)), /length 8 is too short for its addresses \(12 bytes\)/],
    [v2(0x21, 0x21, Array(20).fill(0)), /too short for its addresses \(36 bytes\)/],
    [v2(0x21, 0x11, [...Array(12).fill(0), 0x01, 0]), /TLV is cut short/],
    [v2(0x21, 0x11, [...Array(12).fill(0), 0x01, 0, 5, 1, 2]), /runs 3 bytes past the header/],
    [Buffer.from([...sig, 0x21, 0x11, 0xff, 0xff]), /65551 bytes is more than the limit/],
  ];
  for (const [buf, re] of bad) assert.throws(() => decodeProxyHeader(buf), (e: unknown) => e instanceof ProxyProtocolError && re.test(e.message), re.source);
  // The limit is the caller's.
  const big = v2(0x21, 0x11, [...Array(12).fill(0), 0x04, 0x01, 0x00, ...Array(256).fill(0)]);
  assert.throws(() => decodeProxyHeader(big, 100), /more than the limit of 100/);
  const within = decodeProxyHeader(big, 1000);
  assert.ok(within.done && within.length === big.length);
});

test('addressesOf: mapped IPv4 is unmapped, mixed families become IPv6, unknown ends give null', () => {
  assert.deepEqual(addressesOf('::ffff:10.1.2.3', 5, '::ffff:10.0.0.1', 80), { family: 'IPv4', sourceAddress: '10.1.2.3', sourcePort: 5, destinationAddress: '10.0.0.1', destinationPort: 80 });
  assert.deepEqual(addressesOf('10.1.2.3', 5, '2001:db8::1', 80), { family: 'IPv6', sourceAddress: '::ffff:10.1.2.3', sourcePort: 5, destinationAddress: '2001:db8::1', destinationPort: 80 });
  assert.equal(addressesOf(undefined, 5, '1.2.3.4', 80), null);
  // A mapped address travels as its 16 bytes.
  const v = encodeV2(addressesOf('10.1.2.3', 5, '2001:db8::1', 80));
  assert.deepEqual([...v.subarray(16, 32)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]);
  assert.equal(decodeAll(v).header.addresses!.sourceAddress, '::ffff:10.1.2.3', 'read back in its dotted form');
  assert.throws(() => encodeV1({ family: 'IPv4', sourceAddress: '::1', sourcePort: 1, destinationAddress: '1.2.3.4', destinationPort: 2 }), ProxyProtocolError);
  assert.throws(() => encodeV2({ family: 'IPv4', sourceAddress: '1.2.3.4', sourcePort: 70000, destinationAddress: '1.2.3.4', destinationPort: 2 }), /port must be in 0\.\.65535/);
});

test('decoder fuzz: random bytes and mutated headers give a header, "more", or ProxyProtocolError, nothing else', () => {
  const valid = [
    encodeV1({ family: 'IPv4', sourceAddress: '10.0.0.1', sourcePort: 1, destinationAddress: '10.0.0.2', destinationPort: 2 }),
    encodeV1({ family: 'IPv6', sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '::1', destinationPort: 2 }),
    encodeV2({ family: 'IPv6', sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '::1', destinationPort: 2 }, [{ type: 1, value: Buffer.from('h2') }]),
    encodeV2(null),
  ];
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat()).map(([v, flips, cut]) => {
      const b = Buffer.from(v);
      for (const [at, x] of flips) b[at % b.length] = x;
      return b.subarray(0, cut % (b.length + 1));
    }),
  );
  fc.assert(
    fc.property(input, (buf) => {
      try {
        const r = decodeProxyHeader(buf, 200);
        if (r.done) {
          assert.ok(r.length > 0 && r.length <= buf.length);
          if (r.header.addresses) assert.ok(r.header.addresses.sourcePort <= 65535);
        }
      } catch (e) {
        assert.ok(e instanceof ProxyProtocolError, `unexpected ${String(e)}`);
      }
    }),
    { numRuns: 3000, seed: 16 },
  );
});
