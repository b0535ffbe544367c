/**
 * ref()/unref() as node:net has them, proved on node:net first: each test
 * runs a child process (node:net's or maio/net's) and watches from outside
 * whether it exits on its own. An unref'd server's listening and an unref'd
 * socket's reading hold nothing; a connect in progress and unsent writes
 * still hold the process (libuv's requests); accepted connections of an
 * unref'd server are ref'd; ref() after unref() holds it again.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Child, compatJs } from '../keep-alive';
import { closeServer, impls, listen, silentListener, skip } from './common';

/** A node:net server in this process: accepts, holds each connection open (reading or not) until the test ends. */
async function peer(read = true): Promise<{ port: number; accepted: net.Socket[]; close(): Promise<void> }> {
  const accepted: net.Socket[] = [];
  const srv = net.createServer({ pauseOnConnect: !read }, (s) => {
    accepted.push(s);
    s.on('error', () => {});
  });
  const port = await listen(srv);
  return {
    port,
    accepted,
    async close() {
      for (const s of accepted) s.destroy();
      await closeServer(srv);
    },
  };
}

for (const [name] of impls) {
  const head = `const net = require(${JSON.stringify(name === 'node:net' ? 'node:net' : compatJs)});\n`;

  test(`server.unref() before listen(): the listening server lets the process exit (${name})`, { skip }, async () => {
    const c = new Child(head + `
      const s = net.createServer().unref();
      s.listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port));`);
    await c.exitsOnItsOwn("an unref'd listening server");
    assert.match(c.stdout, /^listening \d+$/m, "'listening' still came");
  });

  test(`server.unref() then ref(): the listening server keeps the process alive (${name})`, { skip }, async () => {
    const c = new Child(head + `
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        s.unref();
        s.ref();
        console.log('ready');
      });`);
    await c.line('ready');
    await c.staysAlive('a server ref()ed again');
  });

  test(`server.unref() with an open accepted connection: alive until it closes (${name})`, { skip }, async () => {
    // The timer holds the child until the connection comes; from then on only the connection may.
    const c = new Child(head + `
      const hold = setTimeout(() => {}, 60000);
      const srv = net.createServer((s) => {
        clearTimeout(hold);
        console.log('accepted');
        s.on('end', () => console.log('end'));
        s.resume();
      });
      srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
      srv.unref();`);
    try {
      const port = Number(await c.line('port '));
      const client = net.connect(port, '127.0.0.1');
      client.on('error', () => {});
      await c.line('accepted');
      await c.stillRunning('an accepted connection of an unref\'d server');
      client.end(); // the child's socket ends too (no allowHalfOpen) and closes: nothing holds it then
      await c.exitsOnItsOwn('the accepted connection closed');
      assert.match(c.stdout, /^end$/m);
      client.destroy();
    } finally {
      c.proc.kill('SIGKILL');
    }
  });

  test(`socket.unref() on an open connection (the peer keeps it open): the process exits (${name})`, { skip }, async () => {
    const p = await peer();
    try {
      // setTimeout(): the idle timer must not hold the process either
      const c = new Child(head + `
        const s = net.connect(${p.port}, '127.0.0.1', () => {
          s.setTimeout(60000);
          s.unref();
          console.log('connected');
        });
        s.on('error', (e) => console.log('error ' + e.code));`);
      await c.exitsOnItsOwn("an unref'd connected socket");
      assert.match(c.stdout, /^connected$/m);
      assert.equal(p.accepted.length, 1);
    } finally {
      await p.close();
    }
  });

  test(`socket.unref() before the connection is made: the connect holds, the open connection does not (${name})`, { skip }, async () => {
    const p = await peer();
    try {
      const c = new Child(head + `
        const s = net.connect(${p.port}, '127.0.0.1', () => console.log('connected')).unref();
        s.on('error', (e) => console.log('error ' + e.code));`);
      await c.exitsOnItsOwn("a socket unref'd while connecting");
      assert.match(c.stdout, /^connected$/m, 'the connect in progress held the process');
    } finally {
      await p.close();
    }
  });

  test(`socket.unref() then ref(): the open connection keeps the process alive (${name})`, { skip }, async () => {
    const p = await peer();
    try {
      const c = new Child(head + `
        const s = net.connect(${p.port}, '127.0.0.1', () => {
          s.unref();
          s.ref();
          console.log('ready');
        });`);
      await c.line('ready');
      await c.staysAlive('a socket ref()ed again');
    } finally {
      await p.close();
    }
  });

  test(`socket.unref() with a connect in progress: the connect holds the process until it ends (${name})`, { skip }, async () => {
    const silent = await silentListener(); // drops the SYN: the connect stays in progress
    try {
      // The unref'd timer fires only if something else holds the process: the connect.
      const c = new Child(head + `
        const s = net.connect(${silent.port}, '127.0.0.1');
        s.on('error', (e) => console.log('error ' + e.code));
        s.unref();
        setTimeout(() => {
          console.log('connecting ' + s.connecting);
          s.destroy();
        }, 500).unref();`);
      await c.exitsOnItsOwn('an unref\'d socket whose connect was destroyed');
      assert.match(c.stdout, /^connecting true$/m, 'the connect in progress held the process for the timer');
    } finally {
      silent.close();
    }
  });

  test(`socket.unref() with writes the peer does not read: they hold the process until destroy() (${name})`, { skip }, async () => {
    const p = await peer(false);
    try {
      // 32 MiB: more than the kernel's buffers on both sides hold, so writes stay unsent.
      const c = new Child(head + `
        const s = net.connect(${p.port}, '127.0.0.1', () => {
          const chunk = Buffer.alloc(1 << 20, 7);
          for (let i = 0; i < 32; i++) s.write(chunk);
          s.unref();
          setTimeout(() => {
            console.log('unsent ' + s.writableLength);
            s.destroy();
          }, 500).unref();
        });
        s.on('error', (e) => console.log('error ' + e.code));`);
      await c.exitsOnItsOwn('an unref\'d socket with unsent writes, destroyed');
      assert.match(c.stdout, /^unsent [1-9]\d*$/m, 'the unsent writes held the process for the timer');
    } finally {
      await p.close();
    }
  });
}
