#!/usr/bin/env node
/**
 * The maio command: `maio echo | sink | blast | udp-sink | udp-blast | proxy | doctor | self-check`. Each prints the backend on
 * stderr and, when ready, `listening <port>` (servers) or `ready` (blast) on
 * stdout, as the benchmark harness in bench/ expects. Errors: one line, exit 1.
 */
import * as blast from './blast';
import * as doctor from './doctor';
import * as echo from './echo';
import * as proxy from './proxy';
import * as selfCheck from './self-check';
import * as sink from './sink';
import * as udpBlast from './udp-blast';
import * as udpSink from './udp-sink';

const commands: Record<string, { usage: string; help: string; run(argv: string[]): unknown }> = {
  echo, sink, blast, proxy, doctor, 'self-check': selfCheck, 'udp-sink': udpSink, 'udp-blast': udpBlast,
};

const help = `usage: maio <command> [options]

  ${echo.usage}
      echo server on the zero-copy path: received buffers are sent straight back
  ${sink.usage}
      accept connections and discard what arrives
  ${blast.usage}
      connect and send pool buffers as fast as the peer takes them
  ${udpSink.usage}
      bind a UDP port and discard the datagrams that arrive
  ${udpBlast.usage}
      send datagrams from pool buffers (UDP_SEGMENT batches) as fast as the socket takes them
  ${proxy.usage}
      TCP proxy: each connection forwarded to an upstream (pool buffers, no copy in JS);
      with --udp a UDP relay, one session per client flow
  ${doctor.usage}
      what this machine gives maio, and a self-check of every backend (exit 1: degraded)
  ${selfCheck.usage}
      one loopback connection in this process: 64 B ping-pong, then a bulk stream (JSON)

Servers print "listening <port>" on stdout when ready (--port 0 picks a port);
blast and udp-blast print "ready" once connected. SIGINT/SIGTERM end gracefully.
\`maio <command> --help\` explains each command's options.
`;

function main(argv: string[]): void {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(help);
    return;
  }
  const c = commands[cmd];
  if (!c) throw new Error(`unknown command '${cmd}' (try maio --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${c.usage}\n\n${c.help}\n`);
    return;
  }
  // Each command prints the backend line itself once its arguments passed (args.ts announce()).
  c.run(rest);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`maio: ${(err as Error).message}\n`);
  process.exit(1);
}
