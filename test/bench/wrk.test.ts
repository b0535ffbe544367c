/**
 * wrk's text report read into numbers (bench/lib/wrk.ts). The samples are real wrk 4.1.0
 * (Debian) output captured on the project machine while it was busy (the figures mean nothing;
 * the format is what is tested): node:http at 64 and 1 connection, node:https with 1 MiB bodies,
 * and a server answering 404 to everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWrk, wrkErrors } from '../../bench/lib/wrk';
import { wrkSeconds } from '../../bench/lib/measure';

const C64 = `Running 2s test @ http://127.0.0.1:43139/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    34.97ms   95.48ms 769.95ms   91.95%
    Req/Sec    11.42k     7.53k   19.57k    57.89%
  Latency Distribution
     50%    4.11ms
     75%    9.39ms
     90%   99.31ms
     99%  560.35ms
  22024 requests in 2.04s, 2.67MB read
Requests/sec:  10796.93
Transfer/sec:      1.31MB
`;

const C1 = `Running 1s test @ http://127.0.0.1:43139/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   666.95us    3.27ms  34.30ms   97.14%
    Req/Sec    12.34k     4.39k   17.39k    63.64%
  Latency Distribution
     50%   70.00us
     75%   91.00us
     90%  393.00us
     99%   21.91ms
  13489 requests in 1.10s, 1.63MB read
Requests/sec:  12266.90
Transfer/sec:      1.49MB
`;

const TLS_1MIB = `Running 2s test @ https://127.0.0.1:35879/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    25.72ms   22.96ms 184.10ms   92.41%
    Req/Sec   181.84     52.46   260.00     84.21%
  Latency Distribution
     50%   21.15ms
     75%   27.34ms
     90%   37.01ms
     99%  149.42ms
  358 requests in 2.07s, 358.09MB read
Requests/sec:    172.72
Transfer/sec:    172.76MB
`;

const ALL_404 = `Running 1s test @ http://127.0.0.1:35727/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   712.12us    2.12ms  28.24ms   94.56%
    Req/Sec     9.04k     5.56k   18.74k    72.73%
  Latency Distribution
     50%  163.00us
     75%  315.00us
     90%    1.67ms
     99%   10.95ms
  9895 requests in 1.10s, 1.24MB read
  Non-2xx or 3xx responses: 9895
Requests/sec:   8995.99
Transfer/sec:      1.12MB
`;

test('parseWrk: 64 connections, latencies in ms', () => {
  const r = parseWrk(C64);
  assert.equal(r.requests, 22024);
  assert.equal(r.seconds, 2.04);
  assert.equal(r.rps, 10796.93);
  assert.equal(r.bytesRead, 2.67 * 1024 ** 2);
  assert.deepEqual(r.latencyUs, { 50: 4110, 75: 9390, 90: 99310, 99: 560350 });
  assert.equal(wrkErrors(r), null);
});

test('parseWrk: 1 connection, latencies in us and ms', () => {
  const r = parseWrk(C1);
  assert.equal(r.requests, 13489);
  assert.equal(r.rps, 12266.9);
  assert.equal(r.latencyUs[50], 70);
  assert.equal(r.latencyUs[90], 393);
  assert.equal(r.latencyUs[99], 21910);
  assert.deepEqual(r.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
});

test('parseWrk: HTTPS, 1 MiB bodies', () => {
  const r = parseWrk(TLS_1MIB);
  assert.equal(r.requests, 358);
  assert.equal(r.rps, 172.72);
  assert.ok(Math.abs(r.bytesRead - 358 * 2 ** 20) / r.bytesRead < 0.001, 'MB is MiB in wrk, headers included');
  assert.equal(r.latencyUs[99], 149420);
});

test('parseWrk: non-2xx responses and socket errors are counted and reported', () => {
  const r = parseWrk(ALL_404);
  assert.equal(r.errors.status, 9895);
  assert.equal(wrkErrors(r), '9895 non-2xx/3xx responses');
  const sock = parseWrk(C64.replace('2.67MB read\n', '2.67MB read\n  Socket errors: connect 0, read 3, write 0, timeout 12\n'));
  assert.deepEqual(sock.errors, { connect: 0, read: 3, write: 0, timeout: 12, status: 0 });
  assert.equal(wrkErrors(sock), '3 read errors, 12 timeout errors');
});

test('parseWrk: output without a result (wrk failed to connect, say) throws with its tail', () => {
  assert.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n'), /no result.*\n.*Connection refused/s);
});

test('wrkSeconds: wrk -d takes whole seconds, at least one', () => {
  assert.deepEqual([0.2, 0.5, 1, 1.5, 4].map(wrkSeconds), [1, 1, 1, 2, 4]);
});
