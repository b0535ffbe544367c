/**
 * One queued or in-flight send of a socket, and the thread's spare items and
 * lists that let a busy socket send without allocating and an idle one hold
 * nothing.
 */
import { ClosedError } from '../core/errors';
import type { IoBuffer } from '../pool/buffer';
import type { CompletionTarget } from '../ring/io-ring';

export type WriteCallback = (err?: Error | null) => void;

/** What the callbacks of sends a destroy() dropped get. */
export function droppedByDestroy(): ClosedError {
  return new ClosedError('the socket was destroyed before the bytes were sent');
}

/** A send's own completions go to its item (no per-socket lookup by op id). */
export const kSendDone = Symbol('maio.socket.sendDone');

/** Who a SendItem reports its completions to (SendingSocket). */
export interface SendOwner {
  [kSendDone](item: SendItem, res: number, flags: number): void;
}

export class SendItem implements CompletionTarget {
  /** the pool buffer sent, or null for a caller's buffer (data) */
  buf: IoBuffer | null;
  /** a caller's buffer sent from its own memory (maio/net's large writes), held until the final completion */
  data: Uint8Array | null = null;
  /** bytes to send (writes fill it up to buf.capacity) */
  len: number;
  /** a write buffer the socket owns (vs a buffer handed over with send()) */
  write: boolean;
  cbs: WriteCallback[] | null = null;
  opId = -1;
  zc = false;
  resultDone = false;
  /** where the bytes start in buf (a resend of the rest of a short send) */
  off = 0;
  /** submit order, to resend cancelled chains in order */
  seq = 0;
  /** the first send of a SENDV holds the run's sends (itself first) until its completion */
  run: SendItem[] | null = null;
  /** items sharing buf's one lend (a send and its resend): the last one returns it */
  share: { n: number } | null = null;
  /** the socket whose in-flight list holds it, and where (set when queued on the ring) */
  owner: SendOwner | null = null;
  index = -1;
  constructor(buf: IoBuffer | null, len: number, write: boolean) {
    this.buf = buf;
    this.len = len;
    this.write = write;
  }
  onCompletion(_opId: number, res: number, flags: number): void {
    this.owner![kSendDone](this, res, flags);
  }
}

/**
 * Finished send items of every socket of this thread, reused: no allocation
 * per send, and nothing kept per socket (an idle socket holds no spare item).
 */
const spareItems: SendItem[] = [];
const MAX_SPARE_ITEMS = 1024;

export function newItem(buf: IoBuffer | null, len: number, write: boolean): SendItem {
  const item = spareItems.pop();
  if (item === undefined) return new SendItem(buf, len, write);
  item.buf = buf;
  item.len = len;
  item.write = write;
  return item;
}

/** Its final completion has come (the ring never calls it again) and a resend holds none of it: reuse it. */
export function recycleItem(item: SendItem): void {
  if (spareItems.length >= MAX_SPARE_ITEMS) return;
  // the buffer's handle is stale now: do not keep it alive in the spare list
  item.buf = null;
  item.data = null;
  item.cbs = null;
  item.opId = -1;
  item.zc = false;
  item.resultDone = false;
  item.off = 0;
  item.share = null;
  item.owner = null;
  item.run = null;
  spareItems.push(item);
}

/**
 * A socket's send queue and in-flight list are NO_ITEMS (shared, frozen) while
 * empty: it takes an array from this thread's spare lists at the first push
 * and gives it back, empty, with its backing store, when it empties. An idle
 * socket holds no array; a busy one allocates none.
 */
export const NO_ITEMS = Object.freeze([]) as unknown as SendItem[];
const spareLists: SendItem[][] = [];
// A busy socket holds two (send queue, in flight), and one dispatch of completions can make
// hundreds of sockets busy at once (1,000 echoing connections: 256 missed 1 take in 10); an
// empty list with its store is about 200 bytes.
const MAX_SPARE_LISTS = 1024;

export function takeList(): SendItem[] {
  return spareLists.pop() ?? [];
}

/** Gives back an emptied list; returns NO_ITEMS for the caller to store. */
export function giveList(list: SendItem[]): SendItem[] {
  if (list !== NO_ITEMS && list.length === 0 && spareLists.length < MAX_SPARE_LISTS) spareLists.push(list);
  return NO_ITEMS;
}
