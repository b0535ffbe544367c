/*
 * Pipes and fd flags for the in-kernel data paths (src/paths/): file -> pipe
 * -> socket and socket -> pipe -> socket move page references through a
 * pipe, never through user memory.
 *
 * Why the pipes are blocking: io_uring runs IORING_OP_SPLICE in an io-wq
 * worker (REQ_F_FORCE_ASYNC) and never arms a poll for it, so on an
 * O_NONBLOCK pipe or socket a splice that has to wait completes with -EAGAIN
 * and nothing would tell us when to retry. On blocking descriptors the worker
 * waits in the kernel instead: for data, for pipe space, for socket space.
 * maio's other socket ops do not depend on O_NONBLOCK (io_uring sends and
 * receives nonblocking and arms polls itself), which is why fdSetBlocking
 * exists.
 */
#define _GNU_SOURCE
#include "napi_exports.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAIO_PIPE_DEFAULT (1 << 20) /* 1 MiB: 256 pages of page-cache references */
#define MAIO_PIPE_MIN 4096
#define MAIO_PIPE_MAX (1 << 30)

static bool pipe_arg_fd(napi_env env, napi_value v, const char *what, int *fd)
{
	int32_t i;
	if (!maio_arg_int32(env, v, what, 0, INT32_MAX, &i))
		return false;
	*fd = i;
	return true;
}

/* /proc/sys/fs/pipe-max-size, or the kernel default (1 MiB) if unreadable. */
static long pipe_max_size(void)
{
	long max = 1 << 20;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 1 << 20;
		fclose(f);
	}
	return max;
}

/*
 * pipeOpen(size?) -> { readFd, writeFd, size }: a blocking, close-on-exec pipe
 * resized to `size` bytes (default 1 MiB), capped by fs.pipe-max-size. When
 * the kernel refuses the size (EPERM: over the user's pipe-buffer quota) the
 * pipe keeps what it has; `size` says what it got.
 */
MAIO_EXPORT(maio_napi_pipe_open)
{
	size_t argc = 1;
	napi_value argv[1];
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not read arguments");
	int32_t want = MAIO_PIPE_DEFAULT;
	napi_valuetype t = napi_undefined;
	if (argc >= 1)
		napi_typeof(env, argv[0], &t);
	if (t != napi_undefined &&
	    !maio_arg_int32(env, argv[0], "size", MAIO_PIPE_MIN, MAIO_PIPE_MAX, &want))
		return NULL;
	long max = pipe_max_size();
	if (want > max)
		want = (int32_t)max;

	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return maio_throw_errno(env, errno, "pipe2");
	int got = fcntl(fds[1], F_SETPIPE_SZ, want);
	if (got < 0) {
		int err = errno;
		if (err != EPERM && err != EBUSY) {
			close(fds[0]);
			close(fds[1]);
			return maio_throw_errno(env, err, "fcntl(F_SETPIPE_SZ)");
		}
		got = fcntl(fds[1], F_GETPIPE_SZ);
	}
	napi_value out;
	napi_create_object(env, &out);
	maio_set_int(env, out, "readFd", fds[0]);
	maio_set_int(env, out, "writeFd", fds[1]);
	maio_set_int(env, out, "size", got);
	return out;
}

/* fdSetBlocking(fd, blocking) -> whether the fd was blocking before. */
MAIO_EXPORT(maio_napi_fd_set_blocking)
{
	napi_value argv[2];
	int fd;
	bool blocking;
	if (!maio_args(env, info, 2, argv, NULL) || !pipe_arg_fd(env, argv[0], "fd", &fd) ||
	    !maio_arg_bool(env, argv[1], "blocking", &blocking))
		return NULL;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return maio_throw_errno(env, errno, "fcntl(F_GETFL)");
	int want = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	if (want != fl && fcntl(fd, F_SETFL, want) < 0)
		return maio_throw_errno(env, errno, "fcntl(F_SETFL)");
	napi_value r;
	napi_get_boolean(env, !(fl & O_NONBLOCK), &r);
	return r;
}
