export { UdpSocket, createUdpSocket } from './udp-socket';
export type { UdpSocketEvents } from './udp-socket';
export { UdpMessage } from './udp-message';
export { UdpBatch } from './udp-batch';
export type { RemoteInfo } from './udp-message';
export type { UdpSocketOptions, UdpType, OffloadState, UdpLookupFunction } from './udp-options';
export type { UdpStats } from './udp-stats';
export type { SendCallback } from './udp-send';
