/** Private hooks shared across files (inside one file, use #private fields). */

/** IoPool: mark a buffer lent to the kernel / take it back. */
export const kLend = Symbol('maio.lend');
export const kReturn = Symbol('maio.return');
/** IoPool: release a buffer now, or when its last lend returns (the 'data' lifetime rule). */
export const kReleaseWhenReturned = Symbol('maio.releaseWhenReturned');
/** IoBuffer: slot, generation and pool-relative offset, for the ring. */
export const kSlot = Symbol('maio.slot');
export const kPoolId = Symbol('maio.poolId');

/** IoBuffer: the slot generation the handle was made for. */
export const kGeneration = Symbol('maio.generation');
/** IoPool: its native PoolHandle (for native calls that address pool memory). */
export const kPoolHandle = Symbol('maio.poolHandle');
/** IoPool: (buf) => Uint8Array of the buffer's bytes even while LENT, for a
 * data path that copies through the syscall (fallback); never for users. */
export const kUncheckedBytes = Symbol('maio.uncheckedBytes');
/** IoPool: the whole region as one Uint8Array (null in strict mode, where views are per buffer), so a
 * receive path reads each buffer at its offset without making a view per buffer; never for users. */
export const kRegionBytes = Symbol('maio.regionBytes');
/** IoPool: quota-charged allocation entry points used by PoolQuota. */
export const kQuotaAlloc = Symbol('maio.quotaAlloc');
export const kQuotaAllocWait = Symbol('maio.quotaAllocWait');
/** PoolQuota: the pool charges a buffer's capacity to it / credits it back. */
export const kQuotaCharge = Symbol('maio.quotaCharge');
export const kQuotaCredit = Symbol('maio.quotaCredit');
/** IoPool: (buf, recycler | null) makes a slot's release hand it to the recycler
 * (a provided-buffer group) instead of the free list. */
export const kSetRecycler = Symbol('maio.setRecycler');
/** Socket: (ms, minBytes, onClosed?) a server's idle timeout that closes the connection (src/net/idle.ts). */
export const kIdleClose = Symbol('maio.idleClose');
/** Socket: (cb) calls cb once nothing is queued or in flight to send (at once if so; at destroy() too). */
export const kOnSendsDrained = Symbol('maio.onSendsDrained');
/** Socket: (cb(waiting, ended)) calls cb once no recv is in flight (after pause() or destroy()), with the
 * buffers waiting for 'data' and whether the peer's FIN came. */
export const kOnReceiveStopped = Symbol('maio.onReceiveStopped');
/** Socket: (hold) holds 'data' back without stopping the recv (true), or lets it flow again (false):
 * a pause that costs no cancel and no re-arm, for maio/net's pipe() (src/net/compat/socket.ts). */
export const kHoldData = Symbol('maio.holdData');
/** UdpSocket: a destination's sockaddr, encoded once (a forwarder keeps it per flow). */
export const kUdpDestination = Symbol('maio.udpDestination');
/** UdpSocket: send(msg) to a destination kUdpDestination encoded. */
export const kUdpSendTo = Symbol('maio.udpSendTo');
/** write() that sends a large Uint8Array from the caller's memory (held until the send completes) instead of copying it: maio/net's _write. */
export const kWriteHeld = Symbol('maio.writeHeld');
/** IoPool: whether the ring it was attached to is closed (defaultPool() then makes a new one). */
export const kRingClosed = Symbol('maio.ringClosed');
/** IoPool: its descriptor id on a given ring, or a typed error when it cannot be used there. */
export const kPoolIdOn = Symbol('maio.poolIdOn');
