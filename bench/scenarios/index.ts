// The scenarios, in the order they run. One file per scenario.
import type { Scenario } from '../lib/types';
import { scenario as echo1 } from './echo-64b-1c';
import { scenario as echo64 } from './echo-64b-64c';
import { scenario as echo1000 } from './echo-64b-1000c';
import { scenario as echo1000w2 } from './echo-64b-1000c-2w';
import { scenario as echoScale } from './echo-64b-1000c-scale';
import { scenario as reqresp } from './reqresp-1k-256c';
import { scenario as bulkRecv } from './bulk-recv';
import { scenario as bulkSend } from './bulk-send';
import { scenario as bulkE2e } from './bulk-e2e';
import { scenario as idle } from './idle-10k';
import { scenario as steady } from './steady-10m';
import { scenario as proxy } from './proxy';
import { scenario as proxy2w } from './proxy-2w';
import { scenario as fileSend } from './file-send';
import { scenario as http64 } from './http-64c';
import { scenario as http1 } from './http-1c';
import { scenario as httpsBulk } from './https-bulk';
import { scenario as udpRecv } from './udp-recv';
import { scenario as udpSend } from './udp-send';
import { scenario as udpRecvVeth } from './udp-recv-veth';
import { scenario as udpRecv2m } from './udp-recv-2m';
import { scenario as udpSendVeth } from './udp-send-veth';
import { scenario as udpRelay } from './udp-relay';

export const scenarios: Scenario[] = [echo1, echo64, echo1000, echo1000w2, echoScale, reqresp, bulkRecv, bulkSend, bulkE2e, idle, steady, proxy, proxy2w, fileSend, http64, http1, httpsBulk, udpRecv, udpSend, udpRecvVeth, udpRecv2m, udpSendVeth, udpRelay];
