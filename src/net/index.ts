/** maio's TCP layer: servers and sockets on the thread's ring, buffers from the I/O pool. */
export { createServer, connect, Server } from './server';
export type { ServerOptions, ListenOptions } from './server';
export { Socket } from './socket';
export type { MaioSocketOptions, ConnectOptions, SocketStats, ReadyState } from './socket';
export { stats } from './stats';
export type { MaioStats } from './stats';
export type { RecvGroupStats } from './recv-group';
export type { ZeroCopyMode, ZeroCopyStats } from './zc-policy';
