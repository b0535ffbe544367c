/**
 * node:net's errors for `maio/net`: the same classes (TypeError, RangeError,
 * Error), codes and message wording as node:net's, so code that matches on
 * `err.code` or on the message behaves the same on either. maio's own
 * ERR_MAIO_* codes stay in maio's own API (src/net/socket.ts, server.ts);
 * this adapter checks its arguments first, the way node:net does, and throws
 * these.
 */
import { getSystemErrorMap, inspect } from 'node:util';

/** "Received ..." as node words it: the type and a short form of the value. */
export function received(value: unknown): string {
  if (value === null || value === undefined) return `Received ${String(value)}`;
  if (typeof value === 'function') return `Received function ${value.name}`;
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: string } }).constructor?.name;
    return name ? `Received an instance of ${name}` : `Received ${inspect(value, { depth: -1 })}`;
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `Received type ${typeof value} (${shown})`;
}

/** 'argument' for a parameter, 'property' for a key of an options object ("options.port"). */
function kind(name: string): string {
  return name.includes('.') ? 'property' : 'argument';
}

/** `expected`: 'number', ['number', 'string'] or 'an instance of AbortSignal'. */
export class InvalidArgTypeError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_TYPE';
  constructor(name: string, expected: string | string[], actual: unknown) {
    const want = Array.isArray(expected)
      ? `one of type ${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1]}`
      : expected.startsWith('an instance of ')
        ? expected
        : `of type ${expected}`;
    super(`The "${name}" ${kind(name)} must be ${want}. ${received(actual)}`);
  }
}

export class InvalidArgValueError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE';
  constructor(name: string, value: unknown, reason = 'is invalid') {
    let shown = inspect(value);
    if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
    super(`The ${kind(name)} '${name}' ${reason}. Received ${shown}`);
  }
}

export class MissingArgsError extends TypeError {
  readonly code = 'ERR_MISSING_ARGS';
  constructor(...names: string[]) {
    super(`The ${names.map((n) => `"${n}"`).join(' or ')} argument must be specified`);
  }
}

export class SocketBadPortError extends RangeError {
  readonly code = 'ERR_SOCKET_BAD_PORT';
  constructor(name: string, port: unknown) {
    super(`${name} should be >= 0 and < 65536. ${received(port)}.`);
  }
}

export class OutOfRangeError extends RangeError {
  readonly code = 'ERR_OUT_OF_RANGE';
  constructor(name: string, range: string, value: unknown) {
    super(`The value of "${name}" is out of range. It must be ${range}. Received ${String(value)}`);
  }
}

export class InvalidIpAddressError extends TypeError {
  readonly code = 'ERR_INVALID_IP_ADDRESS';
  constructor(address: unknown) {
    super(`Invalid IP address: ${String(address)}`);
  }
}

export class SocketClosedError extends Error {
  readonly code = 'ERR_SOCKET_CLOSED';
  constructor() {
    super('Socket is closed');
  }
}

export class ServerAlreadyListenError extends Error {
  readonly code = 'ERR_SERVER_ALREADY_LISTEN';
  constructor() {
    super('Listen method has been called more than once without closing.');
  }
}

/** node's AbortError: name 'AbortError', code 'ABORT_ERR', the signal's reason as cause. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(reason: unknown) {
    super('The operation was aborted', { cause: reason });
    this.name = 'AbortError';
  }
}

// ---- checks, each throwing what node:net throws --------------------------

export function validateNumber(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'number', value);
}

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw new InvalidArgTypeError(name, 'boolean', value);
}

export function validateFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw new InvalidArgTypeError(name, 'function', value);
}

export function validateAbortSignal(value: unknown, name: string): asserts value is AbortSignal {
  if (!(value instanceof AbortSignal)) throw new InvalidArgTypeError(name, 'an instance of AbortSignal', value);
}

/** An int32 >= min. */
export function validateInt32(value: unknown, name: string, min: number): asserts value is number {
  validateNumber(value, name);
  if (!Number.isInteger(value)) throw new OutOfRangeError(name, 'an integer', value);
  if (value < min || value > 2 ** 31 - 1) throw new OutOfRangeError(name, `>= ${min} && <= ${2 ** 31 - 1}`, value);
}

/**
 * A port: a number or a non-blank string whose value is an integer in
 * 0..65535 ('0x50' and ' 80 ' pass, as in node:net). Returns it as a number.
 */
export function validatePort(port: unknown, name = 'Port'): number {
  const n = typeof port === 'number' || typeof port === 'string' ? Number(port) : NaN;
  if ((typeof port === 'string' && port.trim() === '') || n !== n >>> 0 || n > 0xffff) {
    throw new SocketBadPortError(name, port);
  }
  return n;
}

/** A timeout in ms, as socket.setTimeout() takes it (node:net's 'msecs'). */
export function validateMsecs(ms: unknown): number {
  validateNumber(ms, 'msecs');
  if (ms < 0 || !Number.isFinite(ms)) throw new OutOfRangeError('msecs', 'a non-negative finite number', ms);
  return ms;
}

/**
 * A listen error as node:net words it: syscall 'listen' (libuv reports a
 * failed bind at listen) and the system's description of the errno:
 * 'listen EADDRINUSE: address already in use 127.0.0.1:8080'.
 */
export function asListenError(err: Error & { errno?: number; code?: string; syscall?: string; address?: string | null; port?: number }): Error {
  if (typeof err.errno !== 'number' || typeof err.code !== 'string' || (err.syscall !== 'bind' && err.syscall !== 'listen')) return err;
  const description = getSystemErrorMap().get(err.errno)?.[1];
  err.syscall = 'listen';
  // node:net names no port <= 0 (a unix path, an fd), and no address it does not have
  const where = err.address == null ? '' : ` ${err.address}${err.port === undefined || err.port <= 0 ? '' : `:${err.port}`}`;
  err.message = `listen ${err.code}${description ? `: ${description}` : ''}${where}`;
  return err;
}
