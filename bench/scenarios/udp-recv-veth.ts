import type { Scenario } from '../lib/types';
import { scenario as loopback } from './udp-recv';

// udp-recv across a veth pair between two network namespaces (made per measurement, deleted
// after it): the C sender in one, the contender's receiver in the other. Needs root and `ip`;
// skipped with the reason otherwise.
export const scenario: Scenario = {
  ...loopback,
  id: 'udp-recv-veth',
  title: 'UDP receive, 1,400 B datagrams, one flow, over veth',
  veth: true,
};
