/**
 * A RECVMSG receive buffer, as the kernel lays it out: struct
 * io_uring_recvmsg_out (name, control and payload lengths, flags), then the
 * source address and the control messages in the room the op reserved for
 * them, then the payload. The UDP_GRO control message, when there, gives the
 * size of the datagrams the payload holds end to end. Read once per buffer,
 * whatever the number of datagrams in it.
 */
import { RECVMSG_OUT, SOL_UDP, UDP_GRO } from '../core/native';
import { kRegionBytes } from '../core/symbols';
import type { IoBuffer } from '../pool/buffer';
import { decodeSockaddr } from '../net/address';
import { UdpBatch } from './udp-batch';
import type { RemoteInfo } from './udp-message';

const MSG_TRUNC = 0x20;
const CMSG_HDR = 16; // struct cmsghdr on 64-bit Linux: size_t len, int level, int type
const NO_SOURCE: RemoteInfo = Object.freeze({ address: '', family: '', port: 0 });

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** The last source seen on this thread, so a flow from one peer decodes its address once, not per buffer. */
let lastName = new Uint8Array(0);
let lastFrom: RemoteInfo | null = null;

function sameName(b: Uint8Array, at: number, len: number): boolean {
  if (lastName.length !== len) return false;
  for (let i = 0; i < len; i++) if (b[at + i] !== lastName[i]) return false;
  return true;
}

/**
 * Reads a RECVMSG buffer of `res` bytes (`nameLen` and `ctlLen` reserved, as
 * the op was armed) into a batch, which then owns the buffer.
 */
export function parseRecvmsg(buf: IoBuffer, res: number, nameLen: number, ctlLen: number): UdpBatch {
  // The pool's one view of its region where it has one: no Uint8Array made per buffer.
  const region = buf.pool[kRegionBytes];
  const b = region ?? buf.bytes;
  const o = region === null ? 0 : buf.offset; // the buffer's start in b
  const gotName = Math.min(u32(b, o), nameLen);
  const gotCtl = Math.min(u32(b, o + 4), ctlLen);
  const payloadLen = u32(b, o + 8);
  const flags = u32(b, o + 12);
  const start = RECVMSG_OUT + nameLen + ctlLen;
  const copied = Math.max(0, res - start);
  const truncated = (flags & MSG_TRUNC) !== 0 || payloadLen > copied;

  const nameAt = o + RECVMSG_OUT;
  let from: RemoteInfo;
  if (lastFrom !== null && sameName(b, nameAt, gotName)) {
    from = lastFrom;
  } else {
    from = gotName > 0 ? Object.freeze(decodeSockaddr(b.subarray(nameAt, nameAt + gotName))) : NO_SOURCE;
    lastName = b.slice(nameAt, nameAt + gotName);
    lastFrom = from;
  }

  let groSize = 0;
  const ctlEnd = nameAt + nameLen + gotCtl;
  for (let c = nameAt + nameLen; c + CMSG_HDR <= ctlEnd; ) {
    const len = u32(b, c); // the high half of a size_t cmsg_len is 0
    if (len < CMSG_HDR) break;
    if (u32(b, c + 8) === SOL_UDP && u32(b, c + 12) === UDP_GRO && len >= CMSG_HDR + 4) groSize = u32(b, c + CMSG_HDR);
    c += (len + 7) & ~7;
  }
  return new UdpBatch(buf, b, o, start, copied, groSize, truncated, from);
}
