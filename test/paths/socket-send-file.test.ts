/**
 * socket.sendFile() on both backends (mode 'sendfile' needs no ring op): bytes in order after
 * earlier writes, and a socket destroyed mid-transfer stops it (the transfer's dup of the
 * socket must not keep the connection open).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ClosedError } from '../../src/core/errors';
import { connect } from '../../src/net/server';
import { fileDigest, listen, randomFile, receive, tmpDir, until } from './helpers';
import { bufferSkip } from './maio-helpers';

const MiB = 1 << 20;

async function pair() {
  let peer: net.Socket | undefined;
  const server = net.createServer({ allowHalfOpen: true }, (s) => (peer = s));
  const port = await listen(server);
  const sock = connect({ port, host: '127.0.0.1' });
  await once(sock, 'connect');
  await until(() => peer !== undefined, 'accept');
  return { sock, peer: peer!, server };
}

test('socket.sendFile(): after a write, a range arrives intact, with progress', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'f');
    randomFile(file, 9 * MiB + 7);
    const { sock, peer, server } = await pair();
    const got = receive(peer);
    let last = 0;
    sock.on('sendFileProgress', (sent: number, total: number) => {
      assert.ok(sent > last && sent <= total);
      last = sent;
    });
    sock.write('head');
    const sent = await sock.sendFile(file, { offset: 3, length: 9 * MiB });
    assert.equal(sent, 9 * MiB);
    assert.equal(last, 9 * MiB);
    sock.end();
    const r = await got;
    assert.equal(r.bytes, 4 + 9 * MiB);
    const fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(9 * MiB);
    fs.readSync(fd, b, 0, b.length, 3);
    fs.closeSync(fd);
    assert.equal(r.digest, createHash('sha256').update('head').update(b).digest('hex'));
    assert.ok(fileDigest(file, 0, 1) !== '');
    peer.destroy();
    sock.destroy();
    server.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('socket.sendFile(): destroy() mid-transfer rejects with ClosedError and the peer sees the end', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'big');
    randomFile(file, 64 * MiB);
    const { sock, peer, server } = await pair();
    peer.pause(); // the transfer fills the socket and waits
    let sent = 0;
    sock.on('sendFileProgress', (s: number) => (sent = s));
    const done = sock.sendFile(file);
    done.catch(() => {});
    await until(() => sent > 0, 'first progress');
    const peerClosed = new Promise<void>((resolve) => {
      peer.on('end', resolve);
      peer.on('error', () => resolve());
      peer.on('close', () => resolve());
    });
    sock.destroy();
    await assert.rejects(done, (e: unknown) => e instanceof ClosedError);
    peer.resume();
    await peerClosed; // would hang if the transfer still held the socket open
    assert.ok(sent < 64 * MiB);
    peer.destroy();
    server.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('socket.sendFile({ signal }): abort mid-transfer rejects with ABORT_ERR; the socket stays open, what left is a prefix, and later writes follow it', { skip: bufferSkip }, async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'big');
    randomFile(file, 64 * MiB);
    const { sock, peer, server } = await pair();
    peer.pause(); // the transfer fills the socket buffers and waits for room
    let sent = 0;
    sock.on('sendFileProgress', (s: number) => (sent = s));
    const ac = new AbortController();
    const done = sock.sendFile(file, { offset: 1, signal: ac.signal });
    done.catch(() => {});
    await until(() => sent > 0, 'first progress');
    ac.abort();
    await assert.rejects(done, (e: unknown) => (e as { code?: string }).code === 'ABORT_ERR');
    assert.equal(sock.destroyed, false, 'an aborted sendFile() leaves the socket open');
    // The socket goes on: a write after the abort arrives right after the file's prefix.
    const chunks: Buffer[] = [];
    peer.on('data', (d: Buffer) => chunks.push(d));
    const ended = once(peer, 'end');
    sock.end('tail');
    peer.resume();
    await ended;
    const got = Buffer.concat(chunks);
    const n = got.length - 4;
    assert.equal(got.subarray(n).toString(), 'tail', 'the write after the abort comes last');
    assert.ok(n > 0 && n < 64 * MiB - 1, `${n} bytes of the file left before the abort`);
    assert.ok(n >= sent, `at least what progress reported (${sent}) reached the peer`);
    const fd = fs.openSync(file, 'r');
    const want = Buffer.alloc(n);
    fs.readSync(fd, want, 0, n, 1);
    fs.closeSync(fd);
    assert.ok(got.subarray(0, n).equals(want), 'the bytes before the abort are the range from its offset, in order');
    peer.destroy();
    sock.destroy();
    server.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
