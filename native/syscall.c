/* Raw io_uring system calls: one wrapper each, returning -errno on failure. */
#define _GNU_SOURCE
#include "maio.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

int maio_sys_io_uring_setup(unsigned entries, struct io_uring_params *p)
{
	long r = syscall(__NR_io_uring_setup, entries, p);
	return r < 0 ? -errno : (int)r;
}

int maio_sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete,
			    unsigned flags, void *arg, size_t argsz)
{
	long r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
	return r < 0 ? -errno : (int)r;
}

int maio_sys_io_uring_register(int fd, unsigned opcode, const void *arg, unsigned nr_args)
{
	long r = syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
	return r < 0 ? -errno : (int)r;
}
