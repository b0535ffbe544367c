/*
 * Connection steering in a SO_REUSEPORT group: a classic BPF program that
 * picks the group's socket by the CPU the connection's packets arrived on
 * (the CPU number ancillary load), modulo the group size. A worker pinned to
 * that CPU then handles the connection where its packets are processed.
 *
 * The kernel numbers a group's sockets in the order they joined, and fills
 * the hole a closed one leaves with the last one. So after a worker was
 * replaced, socket k is no longer worker k: an optional table maps
 * (CPU % size) to the socket index of the worker pinned there.
 */
#include "napi_exports.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
/* The table costs two instructions per entry; BPF_MAXINSNS is 4096. */
#define STEER_MAX_GROUP 1024

/* sockAttachReuseportCpu(fd, groupSize, table?: Int32Array): the program goes to the fd's
 * whole reuseport group. table[k] is the socket for CPU % groupSize == k, or -1: CPU % size. */
MAIO_EXPORT(maio_napi_sock_attach_reuseport_cpu)
{
	napi_value argv[3];
	int32_t fd, size;
	size_t argc = 3;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not read arguments");
	if (argc < 2)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "expected 2 or 3 arguments, got %zu", argc);
	if (!maio_arg_int32(env, argv[0], "fd", 0, INT32_MAX, &fd) ||
	    !maio_arg_int32(env, argv[1], "groupSize", 1, STEER_MAX_GROUP, &size))
		return NULL;
	int32_t *table = NULL;
	napi_valuetype t = napi_undefined;
	if (argc > 2)
		napi_typeof(env, argv[2], &t);
	if (t != napi_undefined) {
		void *data;
		size_t n;
		if (!maio_arg_typedarray(env, argv[2], "table", napi_int32_array, &data, &n))
			return NULL;
		if (n != (size_t)size)
			return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
						"table must have groupSize (%d) entries, got %zu", size, n);
		table = data;
		for (int32_t k = 0; k < size; k++)
			if (table[k] < -1 || table[k] >= size)
				return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
							"table[%d] must be -1 or a socket index below %d, got %d",
							k, size, table[k]);
	}
	size_t len = 3 + (table ? 2 * (size_t)size : 0);
	struct sock_filter *code = calloc(len, sizeof(*code));
	if (!code)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not allocate the program");
	size_t i = 0;
	code[i++] = (struct sock_filter){BPF_LD | BPF_W | BPF_ABS, 0, 0, (__u32)(SKF_AD_OFF + SKF_AD_CPU)};
	code[i++] = (struct sock_filter){BPF_ALU | BPF_MOD | BPF_K, 0, 0, (__u32)size};
	for (int32_t k = 0; table && k < size; k++) {
		if (table[k] < 0)
			continue;
		/* A == k: return the socket of CPU k's worker; else skip that return. */
		code[i++] = (struct sock_filter){BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (__u32)k};
		code[i++] = (struct sock_filter){BPF_RET | BPF_K, 0, 0, (__u32)table[k]};
	}
	code[i++] = (struct sock_filter){BPF_RET | BPF_A, 0, 0, 0};
	struct sock_fprog prog = {.len = (unsigned short)i, .filter = code};
	int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
	int err = errno;
	free(code);
	if (r < 0)
		return maio_throw_errno(env, err, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
	napi_value u;
	napi_get_undefined(env, &u);
	return u;
}
