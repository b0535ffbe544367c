import type { Scenario } from '../lib/types';
import { scenario as loopback } from './udp-send';

// udp-send across a veth pair between two network namespaces (made per measurement, deleted
// after it): the contender's sender in one, the C receiver in the other. Needs root and `ip`;
// skipped with the reason otherwise.
export const scenario: Scenario = {
  ...loopback,
  id: 'udp-send-veth',
  title: 'UDP send, 1,400 B datagrams, one flow, over veth',
  veth: true,
};
