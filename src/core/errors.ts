/**
 * Every error maio throws, as classes with a stable `code`, in one file.
 *
 * All extend MaioError. `instanceof` works across two loaded copies of the
 * package because each class carries a Symbol.for() brand that
 * Symbol.hasInstance checks. Errors that come from the kernel are not here:
 * they keep node:net's shape (`code: 'ECONNRESET'`, `errno`, `syscall`), see
 * errnoError().
 */

const kBrand = Symbol.for('maio.error.code');

export class MaioError extends Error {
  readonly code: string;

  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, kBrand, { value: code });
  }

  override get name(): string {
    return this.constructor.name;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    const brand = (value as Record<symbol, unknown>)[kBrand];
    if (typeof brand !== 'string') return false;
    // MaioError itself matches every maio error; a subclass matches its own code.
    const self = this as unknown as { CODE?: string };
    return self.CODE === undefined || self.CODE === brand;
  }
}

/** Declares a MaioError subclass with a fixed code and default message. */
function define(code: string, defaultMessage: string) {
  return class extends MaioError {
    static readonly CODE = code;
    constructor(message: string = defaultMessage, options?: { cause?: unknown }) {
      super(message, code, options);
    }
  };
}

/** A wrong type or shape of argument. */
export class InvalidArgumentError extends define('ERR_MAIO_INVALID_ARG', 'invalid argument') {}
/** A number outside the range an argument accepts. */
export class OutOfRangeError extends define('ERR_MAIO_OUT_OF_RANGE', 'argument out of range') {}
/** A native handle that is not what the call expects. */
export class InvalidHandleError extends define('ERR_MAIO_INVALID_HANDLE', 'invalid handle') {}
/** A descriptor in the submit array that native code refused. */
export class InvalidDescriptorError extends define('ERR_MAIO_INVALID_DESCRIPTOR', 'invalid operation descriptor') {}

/** The buffer was released; its bytes belong to the pool again. */
export class BufferReleasedError extends define('ERR_MAIO_BUFFER_RELEASED', 'buffer was released') {}
/** The buffer is lent to the kernel; it comes back when the operation completes. */
export class BufferLentError extends define('ERR_MAIO_BUFFER_LENT', 'buffer is lent to the kernel') {}
/** The buffer belongs to another pool. */
export class BufferForeignError extends define('ERR_MAIO_BUFFER_FOREIGN', 'buffer belongs to another pool') {}
/** No free buffer of the size class. */
export class PoolExhaustedError extends define('ERR_MAIO_POOL_EXHAUSTED', 'I/O pool exhausted') {}
/** The owner's quota does not allow another buffer. */
export class QuotaExceededError extends define('ERR_MAIO_QUOTA_EXCEEDED', 'quota exceeded') {}
/** A request larger than the largest size class. */
export class BufferTooLargeError extends define('ERR_MAIO_BUFFER_TOO_LARGE', 'requested size exceeds the largest size class') {}

/** The object was closed or destroyed; no further operations. */
export class ClosedError extends define('ERR_MAIO_CLOSED', 'closed') {}
/** The operation was aborted by an AbortSignal or by close. */
export class AbortError extends define('ABORT_ERR', 'the operation was aborted') {}
/** io_uring is not usable here; the message says why. */
export class BackendUnavailableError extends define('ERR_MAIO_BACKEND_UNAVAILABLE', 'io_uring is not available') {}
/** The native addon could not be loaded. */
export class NativeLoadError extends define('ERR_MAIO_NATIVE_LOAD', 'the maio native addon could not be loaded') {}
/** A port that is not an integer in 0..65535 (a number or a decimal string). */
export class InvalidPortError extends define('ERR_MAIO_BAD_PORT', 'port must be an integer in 0..65535') {}
/** A host that is not a valid IPv4/IPv6 literal (or, for name lookups, not a valid name). */
export class InvalidAddressError extends define('ERR_MAIO_INVALID_ADDRESS', 'invalid address') {}
/** The file ended before the bytes asked for were read: it shrank during the transfer. */
export class FileShrunkError extends define('ERR_MAIO_FILE_SHRUNK', 'the file ended before the requested range was sent') {}
/** A datagram larger than UDP carries (65,507 bytes over IPv4, 65,527 over IPv6). */
export class DatagramTooLargeError extends define('ERR_MAIO_DATAGRAM_TOO_LARGE', 'datagram exceeds the largest UDP payload') {}
/** maio/net: close() on a server that is not listening (node:net's code, so node:net code keeps working). */
export class ServerNotRunningError extends define('ERR_SERVER_NOT_RUNNING', 'Server is not running.') {}
/** A PROXY protocol header that cannot be read (or written): the connection carrying it is closed. */
export class ProxyProtocolError extends define('ERR_MAIO_PROXY_PROTOCOL', 'malformed PROXY protocol header') {}
/** A proxy configuration (new or reloaded) that was refused; the running one stays. */
export class ConfigError extends define('ERR_MAIO_CONFIG', 'invalid configuration') {}

/** A worker of a group could not start: its module threw, it exited, or it was not ready in time. */
export class WorkerStartError extends define('ERR_MAIO_WORKER_START', 'a worker did not start') {}
/** An IoBuffer (or a view of pool memory) was given to another thread: pool memory belongs to one thread. */
export class BufferCrossThreadError extends define('ERR_MAIO_BUFFER_CROSS_THREAD', 'pool buffers cannot cross threads') {}

export const errorClasses = [
  InvalidArgumentError,
  OutOfRangeError,
  InvalidHandleError,
  InvalidDescriptorError,
  BufferReleasedError,
  BufferLentError,
  BufferForeignError,
  PoolExhaustedError,
  QuotaExceededError,
  BufferTooLargeError,
  ClosedError,
  AbortError,
  BackendUnavailableError,
  NativeLoadError,
  InvalidPortError,
  InvalidAddressError,
  FileShrunkError,
  ServerNotRunningError,
  ProxyProtocolError,
  ConfigError,
  DatagramTooLargeError,
  WorkerStartError,
  BufferCrossThreadError,
] as const;

const byCode = new Map<string, new (message?: string, options?: { cause?: unknown }) => MaioError>(
  errorClasses.map((C) => [C.CODE, C]),
);

/** Kernel errors keep node:net's shape. */
export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/** Builds a node:net-shaped error from a negative errno result. */
export function errnoError(res: number, syscall: string): ErrnoError {
  const errno = res < 0 ? res : -res;
  const name = errnoName(errno);
  const err = new Error(`${syscall} ${name}`) as ErrnoError;
  err.code = name;
  err.errno = errno;
  err.syscall = syscall;
  return err;
}

let osErrnos: Map<number, string> | undefined;
/** 'ECONNRESET' for -104, from node:os's table. */
export function errnoName(errno: number): string {
  if (!osErrnos) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const table = (require('node:os') as typeof import('node:os')).constants.errno as Record<string, number>;
    osErrnos = new Map(Object.entries(table).map(([k, v]) => [v, k]));
    // errno 11 has two names and the table's later one would win; node:net (libuv) says EAGAIN
    // (a unix socket connect to a full backlog)
    if (table.EAGAIN !== undefined) osErrnos.set(table.EAGAIN, 'EAGAIN');
  }
  return osErrnos.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/**
 * Native code throws plain TypeError/RangeError/Error objects with a `code`.
 * This turns them into the matching MaioError class (kernel errors pass through).
 */
export function fromNative(err: unknown): unknown {
  if (err instanceof MaioError) return err;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const Cls = typeof code === 'string' ? byCode.get(code) : undefined;
    if (Cls) return new Cls(err.message, { cause: err });
  }
  return err;
}
