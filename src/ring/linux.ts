/**
 * The Linux numbers the Ring and its engines share: errno values (a
 * completion's res is -errno) and the flags queue() fills in for callers.
 * Const enums, so every use compiles to the number.
 */
export const enum Errno {
  ENOENT = 2,
  EIO = 5,
  EAGAIN = 11,
  EFAULT = 14,
  EINVAL = 22,
  EOPNOTSUPP = 95,
  ENOBUFS = 105,
  EINPROGRESS = 115,
  ECANCELED = 125,
}

export const enum Flag {
  MSG_WAITALL = 0x100,
  SOCK_NONBLOCK = 0o4000,
  SOCK_CLOEXEC = 0o2000000,
  /** sqe->ioprio of an ACCEPT */
  IORING_ACCEPT_MULTISHOT = 1,
}
