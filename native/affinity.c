/*
 * The calling thread's CPU affinity and kernel thread id, for worker groups
 * that pin each worker thread to a CPU. Raw system calls on thread 0 (the
 * caller): pthread-free, so it pins exactly the thread that runs the call.
 */
#define _GNU_SOURCE
#include "napi_exports.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 8192 CPUs, the kernel's largest NR_CPUS: bigger masks are a mistake. */
#define AFFINITY_MAX_BYTES 1024

/* threadSetAffinity(mask: Uint8Array): bit i (byte i / 8, bit i % 8) allows CPU i. */
MAIO_EXPORT(maio_napi_thread_set_affinity)
{
	napi_value argv[1];
	void *data;
	size_t n;
	if (!maio_args(env, info, 1, argv, NULL) ||
	    !maio_arg_typedarray(env, argv[0], "mask", napi_uint8_array, &data, &n))
		return NULL;
	if (n < 1 || n > AFFINITY_MAX_BYTES)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"mask must be 1 to %d bytes, got %zu", AFFINITY_MAX_BYTES, n);
	unsigned long mask[AFFINITY_MAX_BYTES / sizeof(unsigned long)];
	memset(mask, 0, sizeof(mask));
	memcpy(mask, data, n);
	bool any = false;
	for (size_t i = 0; i < sizeof(mask) / sizeof(mask[0]); i++)
		any |= mask[i] != 0;
	if (!any)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "mask must allow at least one CPU");
	/* The kernel takes whole longs; past its own mask size it reads only zeroes. */
	size_t len = (n + sizeof(unsigned long) - 1) / sizeof(unsigned long) * sizeof(unsigned long);
	if (syscall(SYS_sched_setaffinity, 0, len, mask) < 0)
		return maio_throw_errno(env, errno, "sched_setaffinity");
	napi_value r;
	napi_get_undefined(env, &r);
	return r;
}

/* threadGetAffinity() -> Uint8Array: the calling thread's mask, as many bytes as the kernel's. */
MAIO_EXPORT(maio_napi_thread_get_affinity)
{
	unsigned long mask[AFFINITY_MAX_BYTES / sizeof(unsigned long)];
	memset(mask, 0, sizeof(mask));
	long len = syscall(SYS_sched_getaffinity, 0, sizeof(mask), mask);
	if (len < 0)
		return maio_throw_errno(env, errno, "sched_getaffinity");
	napi_value ab, arr;
	void *dst;
	if (napi_create_arraybuffer(env, (size_t)len, &dst, &ab) != napi_ok)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not allocate %ld bytes", len);
	memcpy(dst, mask, (size_t)len);
	napi_create_typedarray(env, napi_uint8_array, (size_t)len, ab, 0, &arr);
	return arr;
}

/* threadId() -> the kernel's id of the calling thread (/proc/self/task/<id>). */
MAIO_EXPORT(maio_napi_thread_id)
{
	return maio_int(env, (int64_t)syscall(SYS_gettid));
}
