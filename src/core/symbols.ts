/** Private hooks shared across files (inside one file, use #private fields). */

/** IoPool: mark a buffer lent to the kernel / take it back. */
export const kLend = Symbol('maio.lend');
export const kReturn = Symbol('maio.return');
/** IoBuffer: slot, generation and pool-relative offset, for the ring. */
export const kSlot = Symbol('maio.slot');
export const kPoolId = Symbol('maio.poolId');
