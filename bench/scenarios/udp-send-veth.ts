import type { Scenario } from '../lib/types';
import { scenario as loopback } from './udp-send';

// udp-send across a veth pair between two network namespaces (made per measurement, deleted
// after it): the contender's sender in one, the C receiver in the other. Needs root and `ip`;
// skipped with the reason otherwise. maio-zc forces zero-copy sends: delivery into the peer
// namespace copies them anyway (kernel-facts.md), so it shows what zero-copy costs where it
// cannot pay, against 'maio' ('auto': plain after 8 copied probes).
export const scenario: Scenario = {
  ...loopback,
  id: 'udp-send-veth',
  title: 'UDP send, 1,400 B datagrams, one flow, over veth',
  contenders: [...loopback.contenders, 'maio-zc'],
  veth: true,
};
