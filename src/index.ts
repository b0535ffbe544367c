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
