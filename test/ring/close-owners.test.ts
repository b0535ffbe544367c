// Ring.close() with servers and sockets still on the ring: their cancelled
// operations must not re-arm on the closed ring (that threw ERR_MAIO_CLOSED
// out of the completion, an uncaught exception). Each closes with the ring,
// quietly ('close', no 'error'), and the thread's next ring works.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { Ring, connect, createPool, createServer, createUdpSocket, defaultPool, type IoBuffer, type Socket } from '../../src/index';
import { until } from '../net/helpers';


/** The thread's (next) ring serves: one echo round trip from a node:net client. */
async function echoesOnThisRing(text: string): Promise<void> {
  const server = createServer((s) => s.on('data', (b: IoBuffer) => s.send(b)));
  await server.listenAsync(0, '127.0.0.1');
  const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  c.write(text);
  const [echo] = await once(c, 'data');
  assert.equal(String(echo), text);
  c.destroy();
  await until(() => server.connections === 0, 'the echo connection closed');
  server.close();
  await once(server, 'close');
}

test('Ring.close() closes the servers, TCP sockets and UDP sockets on it, without an error, and a new ring serves', async () => {
  const uncaught: Error[] = [];
  const onUncaught = (err: Error): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    const errors: Error[] = [];
    let accepted!: Socket;
    let held: IoBuffer | null = null;
    const server = createServer((s) => {
      accepted = s;
      s.on('error', (e) => errors.push(e));
      s.on('data', (b: IoBuffer) => {
        if (held === null) held = b.retain();
      });
    });
    server.on('error', (e) => errors.push(e));
    await server.listenAsync(0, '127.0.0.1');
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    client.write('held across the close');
    await until(() => held !== null, 'the first data');

    const udp = createUdpSocket({ type: 'udp4' });
    udp.on('error', (e) => errors.push(e));
    await udp.bind(0, '127.0.0.1');
    const sender = dgram.createSocket('udp4');
    sender.send('x', udp.address().port, '127.0.0.1');
    await once(udp, 'message');

    const closed = Promise.all([once(server, 'close'), once(accepted, 'close'), once(udp, 'close'), once(client, 'close')]);
    Ring.current()!.close();
    await closed;
    // A buffer released after its ring closed gives no error either.
    (held as IoBuffer | null)?.release();
    sender.close();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(errors, [], 'no error event');
    assert.deepEqual(uncaught.map((e) => String(e)), [], 'no uncaught exception');

    await echoesOnThisRing('again');
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});

test("a pool made on a ring that closed is refused by the thread's next ring with a typed error (its id there names another pool's memory)", async () => {
  const pool = createPool({ size: 4 << 20 });
  const held = pool.alloc(100);
  held.bytes.set(Buffer.from('still mine'));
  Ring.current()!.close();
  defaultPool(); // the thread's next ring, with its own pool in the id the old one had
  assert.throws(() => createServer({ pool }), { code: 'ERR_MAIO_CLOSED' });
  assert.throws(() => connect({ port: 9, host: '127.0.0.1', pool }), { code: 'ERR_MAIO_CLOSED' });
  assert.throws(() => createUdpSocket({ type: 'udp4', pool }), { code: 'ERR_MAIO_CLOSED' });
  // What the application holds stays readable and can be given back.
  assert.equal(Buffer.from(held.bytes.subarray(0, 10)).toString(), 'still mine');
  held.release();
  pool.close();
  await echoesOnThisRing('next ring');
});
