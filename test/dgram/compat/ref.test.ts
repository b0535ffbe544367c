/**
 * ref()/unref() as node:dgram has them, proved on node:dgram first: each
 * test runs a child process (node:dgram's or maio/dgram's) and watches from
 * outside whether it exits on its own. A bound socket holds the process;
 * unref() (before or after bind) lets it go while datagrams still arrive
 * as long as something else holds it; ref() holds it again; close() frees it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as nodeDgram from 'node:dgram';
import { Child } from '../../net/keep-alive';
import { impls, skip } from './common';

const dgramJs = path.join(__dirname, '..', '..', '..', 'src', 'dgram', 'compat', 'index.js');

for (const [name] of impls) {
  const head = `const dgram = require(${JSON.stringify(name === 'node:dgram' ? 'node:dgram' : dgramJs)});\n`;

  test(`a bound socket keeps the process alive (${name})`, { skip }, async () => {
    const c = new Child(head + `
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));`);
    await c.line('port ');
    await c.staysAlive('a bound socket');
  });

  test(`unref() before bind: the bound socket lets the process exit (${name})`, { skip }, async () => {
    const c = new Child(head + `
      const s = dgram.createSocket('udp4').unref();
      s.bind(0, '127.0.0.1', () => console.log('listening'));`);
    await c.exitsOnItsOwn("an unref'd bound socket");
    assert.match(c.stdout, /^listening$/m, "'listening' still came");
  });

  test(`unref() after bind: datagrams arrive while a timer holds the process, then it exits (${name})`, { skip }, async () => {
    const c = new Child(head + `
      const s = dgram.createSocket('udp4');
      s.on('message', (m) => console.log('got ' + m));
      s.bind(0, '127.0.0.1', () => {
        s.unref();
        console.log('port ' + s.address().port);
        setTimeout(() => console.log('timer done'), 1500);
      });`);
    const port = Number(await c.line('port '));
    const tx = nodeDgram.createSocket('udp4');
    tx.send('hello', port, '127.0.0.1');
    assert.equal(await c.line('got '), 'hello');
    await c.exitsOnItsOwn("an unref'd socket once the timer ran");
    assert.match(c.stdout, /^timer done$/m);
    tx.close();
  });

  test(`unref() then ref(): the bound socket holds the process again; close() lets it go (${name})`, { skip }, async () => {
    const c = new Child(head + `
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        s.unref().ref();
        console.log('ready');
      });`);
    await c.line('ready');
    await c.staysAlive("a socket ref()'d again");
    const d = new Child(head + `
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => s.close(() => console.log('closed')));`);
    await d.exitsOnItsOwn('a closed socket');
    assert.match(d.stdout, /^closed$/m);
  });
}
