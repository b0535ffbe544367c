/** The I/O page pool: one region for all network buffers, ownership enforced. */
export { IoPool, createPool, defaultPool } from './pool';
export type { AllocWaitOptions, PoolStats, PoolClassStats, PoolResidency } from './pool';
export { IoBuffer } from './buffer';
export { PoolQuota } from './quota';
export type { QuotaOptions, QuotaStats } from './quota';
export { DEFAULT_CLASSES, defaultPoolSize } from './config';
export type { PoolOptions, SizeClassOption } from './config';
