/**
 * node:dgram's errors for `maio/dgram`: the same classes, codes, messages
 * and errno shapes as node:dgram's, so code that matches on `err.code`, the
 * message or `err.syscall` behaves the same on either.
 */
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { received } from '../../net/compat/errors';

export { MissingArgsError } from '../../net/compat/errors';

function coded<B extends ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor>(Base: B, code: string, message: string) {
  return class extends (Base as ErrorConstructor) {
    readonly code = code;
    constructor() {
      super(message);
    }
  };
}

export class SocketAlreadyBoundError extends coded(Error, 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound') {}
export class DgramNotRunningError extends coded(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running') {}
export class DgramIsConnectedError extends coded(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected') {}
export class DgramNotConnectedError extends coded(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected') {}
export class SocketBadTypeError extends coded(TypeError, 'ERR_SOCKET_BAD_TYPE', 'Bad socket type specified. Valid types are: udp4, udp6') {}
export class SocketBadBufferSizeError extends coded(TypeError, 'ERR_SOCKET_BAD_BUFFER_SIZE', 'Buffer size must be a positive integer') {}

export class BufferOutOfBoundsError extends RangeError {
  readonly code = 'ERR_BUFFER_OUT_OF_BOUNDS';
  constructor(name: string) {
    super(`"${name}" is outside of buffer bounds`);
  }
}

/** `want`: the words after "must be", as node writes them for this argument. */
export class ArgTypeError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_TYPE';
  constructor(name: string, want: string, actual: unknown) {
    super(`The "${name}" ${name.includes('.') ? 'property' : 'argument'} must be ${want}. ${received(actual)}`);
  }
}

/** node:dgram's port check: send() and connect() refuse 0, bind() takes it. */
export class BadPortError extends RangeError {
  readonly code = 'ERR_SOCKET_BAD_PORT';
  constructor(name: string, port: unknown, allowZero: boolean) {
    super(`${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. ${received(port)}.`);
  }
}

export function validatePort(port: unknown, name: string, allowZero: boolean): number {
  const n = typeof port === 'number' || typeof port === 'string' ? Number(port) : NaN;
  if ((typeof port === 'string' && port.trim() === '') || n !== n >>> 0 || n > 0xffff || (n === 0 && !allowZero)) {
    throw new BadPortError(name, port, allowZero);
  }
  return n;
}

export function validateString(v: unknown, name: string): asserts v is string {
  if (typeof v !== 'string') throw new ArgTypeError(name, 'of type string', v);
}

export function validateNumber(v: unknown, name: string): asserts v is number {
  if (typeof v !== 'number') throw new ArgTypeError(name, 'of type number', v);
}

export function validateFunction(v: unknown, name: string): asserts v is (...a: never[]) => unknown {
  if (typeof v !== 'function') throw new ArgTypeError(name, 'of type function', v);
}

export type ErrnoException = Error & { errno: number; code: string; syscall: string; address?: string; port?: number };

/** A negative errno number, from a maio error or a number. */
function errnoOf(err: unknown): number {
  if (typeof err === 'number') return err < 0 ? err : -err;
  const e = err as { errno?: unknown; code?: unknown };
  if (typeof e?.errno === 'number') return e.errno < 0 ? e.errno : -e.errno;
  return -5; // EIO: a failure with no errno
}

/**
 * node's errno errors: "send ECONNREFUSED 127.0.0.1:41234", with errno
 * (negative), code, syscall and, when there is one, address and port.
 */
export function errnoException(err: unknown, syscall: string, address?: string, port?: number): ErrnoException {
  const errno = errnoOf(err);
  const code = getSystemErrorName(errno);
  const where = address ? ` ${address}${port ? `:${port}` : ''}` : '';
  const e = new Error(`${syscall} ${code}${where}`) as ErrnoException;
  e.errno = errno;
  e.code = code;
  e.syscall = syscall;
  if (address) {
    e.address = address;
    if (port) e.port = port;
  }
  return e;
}

/** ERR_SOCKET_BUFFER_SIZE, a SystemError as node builds it. */
export class SocketBufferSizeError extends Error {
  readonly code = 'ERR_SOCKET_BUFFER_SIZE';
  readonly errno: number;
  readonly syscall: string;
  readonly info: { errno: number; code: string; message: string; syscall: string };
  constructor(err: unknown, syscall: string) {
    const errno = errnoOf(err);
    const code = getSystemErrorName(errno);
    const description = getSystemErrorMap().get(errno)?.[1] ?? code;
    super(`Could not get or set buffer size: ${syscall} returned ${code} (${description})`);
    this.name = 'SystemError';
    this.errno = errno;
    this.syscall = syscall;
    this.info = { errno, code, message: description, syscall };
  }
}
