/**
 * ref()/unref() on maio's own Server and Socket (src/index.ts), on the
 * backend this run uses (the child inherits MAIO_BACKEND): an unref'd
 * server's accept and an unref'd socket's armed receive do not keep the
 * process alive; accepted sockets are ref'd; ref() holds it again. The
 * node:net comparison of the same rules is test/net/compat/ref.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { netSkip as skip } from './helpers';
import { Child, maioJs } from './keep-alive';

const head = `const maio = require(${JSON.stringify(maioJs)});\n`;

test('server.unref(): a listening maio server lets the process exit; ref() and unref() return the server', { skip }, async () => {
  const c = new Child(head + `
    const s = maio.createServer();
    if (s.unref() !== s || s.ref() !== s) throw new Error('ref()/unref() must return the server');
    s.unref().listen(0, '127.0.0.1', () => console.log('listening ' + s.address().port));`);
  await c.exitsOnItsOwn("an unref'd maio server");
  assert.match(c.stdout, /^listening \d+$/m);
});

test('server.unref() then ref(): the listening maio server keeps the process alive', { skip }, async () => {
  const c = new Child(head + `
    const s = maio.createServer().listen(0, '127.0.0.1', () => {
      s.unref();
      s.ref();
      console.log('ready');
    });`);
  await c.line('ready');
  await c.staysAlive('a maio server ref()ed again');
});

test('an unref\'d server and client: the accepted socket holds the process until it is unref\'d too', { skip }, async () => {
  // The unref'd timer fires only while something else holds the process: the accepted socket.
  const c = new Child(head + `
    const hold = setTimeout(() => {}, 60000);
    const srv = maio.createServer((s) => {
      clearTimeout(hold);
      console.log('accepted');
      setTimeout(() => {
        console.log('unref accepted');
        if (s.unref() !== s) throw new Error('unref() must return the socket');
      }, 500).unref();
    });
    srv.unref().listen(0, '127.0.0.1', () => {
      const c = maio.connect(srv.address().port, '127.0.0.1', () => {
        c.setTimeout(60000); // the idle check must not hold the process either
        c.unref();
      });
    });`);
  await c.exitsOnItsOwn('every maio socket and the server unref\'d');
  assert.match(c.stdout, /^accepted$/m);
  assert.match(c.stdout, /^unref accepted$/m, 'the accepted socket held the process until its unref()');
});

test('socket.unref() then ref(): an open maio socket keeps the process alive', { skip }, async () => {
  const accepted: net.Socket[] = [];
  const srv = net.createServer((s) => accepted.push(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const c = new Child(head + `
      const s = maio.connect(${port}, '127.0.0.1', () => {
        s.unref();
        if (s.ref() !== s) throw new Error('ref() must return the socket');
        console.log('ready');
      });`);
    await c.line('ready');
    await c.staysAlive('a maio socket ref()ed again');
  } finally {
    for (const s of accepted) s.destroy();
    await new Promise((r) => srv.close(r));
  }
});
