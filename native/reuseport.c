/*
 * Connection steering in a SO_REUSEPORT group: a classic BPF program that
 * picks the group's socket by the CPU the connection's packets arrived on
 * (the CPU number ancillary load), modulo the group size. A worker pinned to
 * that CPU then handles the connection where its packets are processed.
 */
#include "napi_exports.h"

#include <errno.h>
#include <linux/filter.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
/* The kernel keeps a reuseport group's size in a u16. */
#define REUSEPORT_MAX_GROUP 65535

/* sockAttachReuseportCpu(fd, groupSize): the program goes to the fd's whole reuseport group. */
MAIO_EXPORT(maio_napi_sock_attach_reuseport_cpu)
{
	napi_value argv[2];
	int32_t fd, size;
	if (!maio_args(env, info, 2, argv, NULL) ||
	    !maio_arg_int32(env, argv[0], "fd", 0, INT32_MAX, &fd) ||
	    !maio_arg_int32(env, argv[1], "groupSize", 1, REUSEPORT_MAX_GROUP, &size))
		return NULL;
	struct sock_filter code[] = {
		{BPF_LD | BPF_W | BPF_ABS, 0, 0, (__u32)(SKF_AD_OFF + SKF_AD_CPU)},
		{BPF_ALU | BPF_MOD | BPF_K, 0, 0, (__u32)size},
		{BPF_RET | BPF_A, 0, 0, 0},
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
		return maio_throw_errno(env, errno, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
	napi_value r;
	napi_get_undefined(env, &r);
	return r;
}
