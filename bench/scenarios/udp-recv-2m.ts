import type { Scenario } from '../lib/types';
import { DPS, cpuAtMost } from './common';
import { scenario as loopback } from './udp-recv';

// udp-recv at one fixed offered load: the C sender paced to 2 M datagrams/s of 1,400 B (about
// 22 Gbit/s), so every receiver gets the same datagrams and CPU per GB received compares what
// each pays for them. The figure is still what arrived in the window (a receiver that keeps up
// reads about 2 M/s).
// Only GRO receivers take part: into a socket without UDP_GRO the kernel splits each 44-datagram
// send and delivers the pieces on the sender's CPU, which then offers some 0.4-0.7 M/s here, not
// the same load (raw.sentDps says what the sender reached). The C receiver runs twice: how far its
// two CPU figures differ is the yardstick for maio's.
export const scenario: Scenario = {
  ...loopback,
  id: 'udp-recv-2m',
  title: 'UDP receive at 2 M datagrams/s offered, 1,400 B datagrams, one flow',
  contenders: ['maio', 'c-seg', 'c-seg-b'],
  peer: 'c-seg',
  control: ['c-seg', 'c-seg-b'],
  metric: DPS,
  rate: 2_000_000,
  goals: [cpuAtMost(['c-seg'], 'C recvmmsg + UDP_GRO')],
};
