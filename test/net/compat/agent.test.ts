/**
 * http.Agent over maio/net: the Agent hands createConnection its own options
 * (path: null, keepAlive, _agentKey, ...); with keepAlive several requests
 * share one socket. Run with node:net's createConnection first, then maio's.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import type * as net from 'node:net';
import { bounded, poolGuard } from '../helpers';
import { closeServer, impls, listen, skip } from './common';

/** One GET on the agent; resolves with the body and whether the socket was reused. */
function get(agent: http.Agent, port: number, path: string): Promise<{ body: string; reused: boolean; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ agent, host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ body, reused: req.reusedSocket, socket: req.socket }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

for (const [name, impl] of impls) {
  test(`http.Agent({ keepAlive }) with createConnection from ${name}: three requests over one socket`, { skip }, async () => {
    const guard = poolGuard();
    const connections: net.Socket[] = [];
    const srv = http.createServer((req, res) => res.end(`you asked for ${req.url}`));
    srv.on('connection', (s) => connections.push(s));
    const port = await listen(srv);
    const seen: Record<string, unknown>[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    (agent as unknown as { createConnection: (o: Record<string, unknown>, cb?: () => void) => net.Socket }).createConnection = (options, cb) => {
      seen.push(options);
      return (impl.createConnection as typeof net.createConnection)(options as unknown as net.NetConnectOpts, cb);
    };
    try {
      const results = [];
      for (const path of ['/a', '/b', '/c']) results.push(await bounded(get(agent, port, path), `GET ${path}`));
      assert.deepEqual(
        results.map((r) => r.body),
        ['you asked for /a', 'you asked for /b', 'you asked for /c'],
      );
      assert.deepEqual(
        results.map((r) => r.reused),
        [false, true, true],
      );
      assert.equal(results[1].socket, results[0].socket);
      assert.equal(connections.length, 1, 'one connection on the server');
      // what the Agent passes: maio/net must take all of it as node:net does
      assert.equal(seen.length, 1);
      assert.equal(seen[0].path, null);
      assert.equal(seen[0].keepAlive, true);
    } finally {
      agent.destroy();
    }
    srv.closeAllConnections();
    await bounded(closeServer(srv), 'the server closed');
    await guard.check();
  });
}
