/**
 * Checks the socket options every maio socket takes (MaioSocketOptions), once,
 * where the caller passes them (connect(), createServer()), so a bad value is
 * a typed error at the call and not a failure later on a hot path.
 */
import { InvalidArgumentError, OutOfRangeError } from '../core/errors';
import { IoPool } from '../pool/pool';
import type { MaioSocketOptions } from './socket';

/** Byte counts and counts: integers >= min; `inf` also accepts Infinity. */
const COUNTS: [keyof MaioSocketOptions, number, boolean][] = [
  ['readBufferSize', 1, false],
  ['writeBufferSize', 1, false],
  ['readBuffersMax', 1, false],
  ['readQuota', 0, true],
  ['writableHighWaterMark', 0, true],
  ['zeroCopyMinBytes', 0, false],
  ['zeroCopyProbeSends', 0, false],
];

export function validateSocketOptions(o: MaioSocketOptions & { family?: unknown; signal?: unknown }): void {
  if (o.pool !== undefined && !(o.pool instanceof IoPool)) throw new InvalidArgumentError('options.pool must be an IoPool');
  if (o.zeroCopy !== undefined && o.zeroCopy !== 'auto' && o.zeroCopy !== 'always' && o.zeroCopy !== 'never') {
    throw new InvalidArgumentError(`options.zeroCopy must be 'auto', 'always' or 'never', got ${String(o.zeroCopy)}`);
  }
  for (const [k, min, inf] of COUNTS) {
    const v = o[k] as unknown;
    if (v === undefined) continue;
    if (typeof v !== 'number' || Number.isNaN(v) || (!Number.isInteger(v) && !(inf && v === Infinity))) {
      throw new InvalidArgumentError(`options.${k} must be an integer, got ${String(v)}`);
    }
    if (v < min) throw new OutOfRangeError(`options.${k} must be at least ${min}, got ${v}`);
  }
  if (o.family !== undefined && o.family !== 0 && o.family !== 4 && o.family !== 6) {
    throw new InvalidArgumentError(`options.family must be 0, 4 or 6, got ${String(o.family)}`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new InvalidArgumentError('options.signal must be an AbortSignal');
}
