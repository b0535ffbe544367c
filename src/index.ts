/**
 * maio: zero-copy networking for Node.js.
 *
 * Loading this module does not touch the native addon; the first call that
 * needs it (backend(), createPool(), ...) loads it and probes the kernel.
 */
export * from './core/errors';
export { createPool, defaultPool, IoPool, IoBuffer, PoolQuota } from './pool/index';
export type {
  PoolOptions,
  SizeClassOption,
  PoolStats,
  PoolClassStats,
  AllocWaitOptions,
  QuotaOptions,
  QuotaStats,
} from './pool/index';
export { backend } from './backend';
export type { Backend, BackendMode, BackendCapabilities } from './backend';
// Advanced: this thread's io_uring (null on the epoll backend).
export { Ring } from './ring/ring';
export type { CompletionTarget, RingStats, PoolAttachment } from './ring/ring';
// TCP over the I/O pool (src/net/).
export { createServer, connect, Server, Socket, stats } from './net/index';
export type {
  ServerOptions,
  ListenOptions,
  MaioSocketOptions,
  ConnectOptions,
  SocketStats,
  ReadyState,
  MaioStats,
  RecvGroupStats,
  ZeroCopyMode,
  ZeroCopyStats,
} from './net/index';
// Socket-to-socket paths (src/paths/): one buffer to many sockets, forwarding
// one or both directions (the proxy's core), and the proxy as a library.
export { fanOut } from './paths/fan-out';
export type { FanOutOptions, FanOutResult } from './paths/fan-out';
export { forward, forwardBoth, Forwarder, Relay } from './paths/forward';
export type { ForwardMode, SocketForwardOptions, ForwarderStats } from './paths/forward';
export { Proxy } from './paths/proxy';
export type { ProxyOptions, HostPort, UpstreamStats, ConnectionStats } from './paths/proxy';
export type { SocketSendFileOptions } from './net/socket-file';
export type { SendFileOptions, SendFileMode, SendFileStats } from './net/send-file';
