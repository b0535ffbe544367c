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
  PoolResidency,
} from './pool/index';
export { backend } from './backend';
export type { Backend, BackendMode, BackendCapabilities, DeferVerdict, RingSetup, RingSetupMode } from './backend';
// Advanced: this thread's ring (Ring.current()), on either engine; `capabilities` says what it can do.
export { Ring } from './ring/ring';
export type { CompletionTarget, RingStats, PoolAttachment, PreFlush, ProvideOwner } from './ring/ring';
export type { IoRing, RingCapabilities } from './ring/io-ring';
export type { Op, PoolHandle } from './core/native';
// TCP over the I/O pool (src/net/).
export { createServer, connect, Server, Socket, stats } from './net/index';
export type { SocketEvents } from './net/socket';
export type { ServerEvents } from './net/server';
export type { EventMap, Listener, TypedEvents, TypedEmitterOf, TypedMethods } from './core/typed-events';
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
export type { ZeroCopyState } from './net/zc-policy';
export type { SocketZeroCopyStats } from './net/socket-zc';
export type { WriteCallback } from './net/send-item';
export type { SocketOptions as SocketOptionValues } from './net/sockopt';
// Socket-to-socket paths (src/paths/): one buffer to many sockets, forwarding
// one or both directions (the proxy's core), and the proxy as a library.
export { fanOut } from './paths/fan-out';
export type { FanOutOptions, FanOutResult } from './paths/fan-out';
export { forward, forwardBoth, Forwarder, Relay } from './paths/forward';
export type { ForwardMode, SocketForwardOptions, ForwarderStats, ForwarderEvents, RelayEvents } from './paths/forward';
export { Proxy } from './paths/proxy';
export type { ProxyEvents } from './paths/proxy';
export type { ProxyOptions, HostPort, Upstream, UpstreamStats, ConnectionStats, GatewayStats } from './paths/proxy';
export type { UpstreamSpec, StaticUpstreamSpec, UnixUpstreamSpec, UnixPath, DnsUpstreamSpec, SrvUpstreamSpec, SendProxy } from './paths/proxy';
// The PROXY protocol codec the proxy uses (src/gateway/), for a backend that reads the header.
export { decodeProxyHeader, encodeProxyHeader, encodeUnixProxyHeader } from './gateway/proxy-protocol';
export type { ProxyHeader, ProxyAddresses, ProxyProtocolVersion, DecodeResult as ProxyHeaderDecodeResult } from './gateway/proxy-protocol';
export type { LimitRefusal } from './gateway/limits';
export type { SocketSendFileOptions } from './net/socket-file';
export type { SendFileOptions, SendFileMode, SendFileStats } from './net/send-file';
// UDP over the I/O pool (src/dgram/).
export { UdpSocket, UdpMessage, UdpBatch, createUdpSocket } from './dgram/index';
export { forwardUdp, UdpForwarder } from './paths/forward-udp';
export type { UdpForwardOptions, UdpForwardStats, UdpForwarderEvents } from './paths/forward-udp';
export { UdpProxy, resolveUdpProxyOptions } from './paths/udp-proxy';
export type { UdpProxyOptions, ResolvedUdpProxyOptions, UdpProxyHostPort, UdpBalance, UdpProxyStats, UdpSessionStats, UdpUpstreamStats, UdpProxyEvents } from './paths/udp-proxy';
export type { UdpSocketEvents, RemoteInfo, UdpSocketOptions, UdpType, OffloadState, UdpStats, SendCallback, UdpLookupFunction } from './dgram/index';
// Worker groups (src/workers/): N threads, one ring and pool each, servers on one port (SO_REUSEPORT).
export {
  startWorkers,
  WorkerGroup,
  MaioWorker,
  currentWorker,
  WorkerContext,
  allowedCpus,
  parseCpuList,
  formatCpuList,
  setThreadAffinity,
  threadAffinity,
  threadId,
  probeCpuSteering,
} from './workers/index';
export type {
  StartWorkersOptions,
  RestartOptions,
  WorkerState,
  WorkerExitInfo,
  WorkerGroupEvents,
  GroupStats,
  StopResult,
  WorkerContextEvents,
  WorkerStats,
  SteeringState,
} from './workers/index';
