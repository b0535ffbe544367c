/*
 * Socket set-up: open, bind, listen, options, names. Plain system calls; the
 * data path goes through the ring. The nonblocking connect/accept here exist
 * for the fallback backend, so they report EINPROGRESS / EAGAIN as a negative
 * number instead of throwing.
 *
 * Addresses cross as encoded sockaddr bytes (src/net/address.ts builds and
 * reads them without native help, so the ring can take them from its aux
 * array too).
 */
#define _GNU_SOURCE
#include "maio.h"
#include "napi_exports.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* MAIO_SOCKOPT_MAX (maio.h) bounds raw option buffers: larger than any
 * option the kernel defines (TCP_INFO, struct tcp_repair_window ... are a
 * few hundred bytes), small enough that a mistaken length cannot make us
 * allocate much. */

/* A few errno names napi_util.c does not know yet but sockets produce. */
static const char *sock_errno_extra(int err)
{
	switch (err) {
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case EPROTOTYPE: return "EPROTOTYPE";
	case EDESTADDRREQ: return "EDESTADDRREQ";
	case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
	case EPFNOSUPPORT: return "EPFNOSUPPORT";
	case ENETRESET: return "ENETRESET";
	case EHOSTDOWN: return "EHOSTDOWN";
	default: return NULL;
	}
}

/* maio_throw_errno, but with a real code for the names listed above. */
static napi_value sock_throw_errno(napi_env env, int err, const char *syscall)
{
	if (err < 0)
		err = -err;
	napi_value e = maio_errno_error(env, err, syscall);
	const char *extra = sock_errno_extra(err);
	if (extra && strcmp(maio_errno_name(err), "EUNKNOWN") == 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s %s: %s", syscall, extra, strerror(err));
		maio_set_string(env, e, "code", extra);
		maio_set_string(env, e, "message", msg);
	}
	napi_throw(env, e);
	return NULL;
}

static napi_value sock_undefined(napi_env env)
{
	napi_value r;
	napi_get_undefined(env, &r);
	return r;
}

static bool sock_arg_fd(napi_env env, napi_value v, int *fd)
{
	int32_t i;
	if (!maio_arg_int32(env, v, "fd", 0, INT32_MAX, &i))
		return false;
	*fd = i;
	return true;
}

/*
 * An encoded sockaddr from a Uint8Array. The family field must agree with
 * the length, so the kernel never reads past what JS handed us. A
 * sockaddr_un's length is part of its address (an abstract name has no NUL
 * and may hold any byte), so it passes as given, up to sizeof(sockaddr_un).
 */
static bool sock_arg_addr(napi_env env, napi_value v, struct sockaddr_storage *ss,
			  socklen_t *len)
{
	void *data;
	size_t n;
	if (!maio_arg_typedarray(env, v, "address", napi_uint8_array, &data, &n))
		return false;
	if (n < sizeof(sa_family_t) || n > sizeof(*ss)) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
				 "address must be %zu to %zu bytes, got %zu",
				 sizeof(sa_family_t), sizeof(*ss), n);
		return false;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, data, n);
	size_t need = 0;
	if (ss->ss_family == AF_UNIX) {
		if (n > sizeof(struct sockaddr_un)) {
			maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					 "a unix address must be at most %zu bytes, got %zu",
					 sizeof(struct sockaddr_un), n);
			return false;
		}
		*len = (socklen_t)n;
		return true;
	}
	if (ss->ss_family == AF_INET)
		need = sizeof(struct sockaddr_in);
	else if (ss->ss_family == AF_INET6)
		need = sizeof(struct sockaddr_in6);
	else {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG,
				"address has unsupported family %u", (unsigned)ss->ss_family);
		return false;
	}
	if (n < need) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
				 "address of family %u needs %zu bytes, got %zu",
				 (unsigned)ss->ss_family, need, n);
		return false;
	}
	*len = (socklen_t)need;
	return true;
}

/* 4, 6 or 'unix' */
static bool sock_arg_family(napi_env env, napi_value v, int *family)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	if (t == napi_string) {
		char s[8];
		size_t n;
		napi_get_value_string_utf8(env, v, s, sizeof(s), &n);
		if (n == 4 && strcmp(s, "unix") == 0) {
			*family = AF_UNIX;
			return true;
		}
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "family must be 4, 6 or 'unix'");
		return false;
	}
	int32_t f;
	if (!maio_arg_int32(env, v, "family", 4, 6, &f))
		return false;
	if (f == 5) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "family must be 4 or 6, got 5");
		return false;
	}
	*family = f == 4 ? AF_INET : AF_INET6;
	return true;
}

static bool sock_arg_type(napi_env env, napi_value v, int *type)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	if (t == napi_string) {
		char s[8];
		size_t n;
		napi_get_value_string_utf8(env, v, s, sizeof(s), &n);
		if (n == 3 && strcmp(s, "tcp") == 0) {
			*type = SOCK_STREAM;
			return true;
		}
		if (n == 3 && strcmp(s, "udp") == 0) {
			*type = SOCK_DGRAM;
			return true;
		}
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "type must be 'tcp' or 'udp'");
		return false;
	}
	int32_t i;
	if (!maio_arg_int32(env, v, "type", SOCK_STREAM, SOCK_DGRAM, &i))
		return false;
	*type = i;
	return true;
}

/* sockOpen(family: 4 | 6 | 'unix', type: 'tcp' | 'udp' | SOCK_STREAM | SOCK_DGRAM) -> fd */
MAIO_EXPORT(maio_napi_sock_open)
{
	napi_value argv[2];
	int family, type;
	if (!maio_args(env, info, 2, argv, NULL) || !sock_arg_family(env, argv[0], &family) ||
	    !sock_arg_type(env, argv[1], &type))
		return NULL;
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sock_throw_errno(env, errno, "socket");
	return maio_int(env, fd);
}

/* sockBind(fd, address: Uint8Array) */
MAIO_EXPORT(maio_napi_sock_bind)
{
	napi_value argv[2];
	int fd;
	struct sockaddr_storage ss;
	socklen_t len;
	if (!maio_args(env, info, 2, argv, NULL) || !sock_arg_fd(env, argv[0], &fd) ||
	    !sock_arg_addr(env, argv[1], &ss, &len))
		return NULL;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return sock_throw_errno(env, errno, "bind");
	return sock_undefined(env);
}

/* sockListen(fd, backlog): the kernel caps backlog at net.core.somaxconn. */
MAIO_EXPORT(maio_napi_sock_listen)
{
	napi_value argv[2];
	int fd;
	int32_t backlog;
	if (!maio_args(env, info, 2, argv, NULL) || !sock_arg_fd(env, argv[0], &fd) ||
	    !maio_arg_int32(env, argv[1], "backlog", 0, INT32_MAX, &backlog))
		return NULL;
	if (listen(fd, backlog) < 0)
		return sock_throw_errno(env, errno, "listen");
	return sock_undefined(env);
}

/* sockConnectSync(fd, address) -> 0, or -EINPROGRESS while the handshake runs
 * (completion is then read with sockError once the fd is writable). */
MAIO_EXPORT(maio_napi_sock_connect_sync)
{
	napi_value argv[2];
	int fd;
	struct sockaddr_storage ss;
	socklen_t len;
	if (!maio_args(env, info, 2, argv, NULL) || !sock_arg_fd(env, argv[0], &fd) ||
	    !sock_arg_addr(env, argv[1], &ss, &len))
		return NULL;
	int r;
	do
		r = connect(fd, (struct sockaddr *)&ss, len);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		/* EINTR above leaves the connect running; a retry then says EALREADY. */
		if (errno == EINPROGRESS || errno == EALREADY)
			return maio_int(env, -EINPROGRESS);
		return sock_throw_errno(env, errno, "connect");
	}
	return maio_int(env, 0);
}

/* sockAccept(fd) -> new nonblocking, close-on-exec fd, or -EAGAIN when none is queued. */
MAIO_EXPORT(maio_napi_sock_accept)
{
	napi_value argv[1];
	int fd;
	if (!maio_args(env, info, 1, argv, NULL) || !sock_arg_fd(env, argv[0], &fd))
		return NULL;
	int r;
	do
		r = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return maio_int(env, -EAGAIN);
		return sock_throw_errno(env, errno, "accept");
	}
	return maio_int(env, r);
}

/* sockShutdown(fd, how: 0 SHUT_RD | 1 SHUT_WR | 2 SHUT_RDWR) */
MAIO_EXPORT(maio_napi_sock_shutdown)
{
	napi_value argv[2];
	int fd;
	int32_t how;
	if (!maio_args(env, info, 2, argv, NULL) || !sock_arg_fd(env, argv[0], &fd) ||
	    !maio_arg_int32(env, argv[1], "how", SHUT_RD, SHUT_RDWR, &how))
		return NULL;
	if (shutdown(fd, how) < 0)
		return sock_throw_errno(env, errno, "shutdown");
	return sock_undefined(env);
}

/* sockClose(fd). EINTR still frees the descriptor on Linux, so it is success;
 * retrying could close a number another thread has just been given. */
MAIO_EXPORT(maio_napi_sock_close)
{
	napi_value argv[1];
	int fd;
	if (!maio_args(env, info, 1, argv, NULL) || !sock_arg_fd(env, argv[0], &fd))
		return NULL;
	if (close(fd) < 0 && errno != EINTR)
		return sock_throw_errno(env, errno, "close");
	return sock_undefined(env);
}

static bool sock_arg_opt(napi_env env, napi_value *argv, int *fd, int *level, int *name)
{
	int32_t l, n;
	if (!sock_arg_fd(env, argv[0], fd) ||
	    !maio_arg_int32(env, argv[1], "level", 0, INT32_MAX, &l) ||
	    !maio_arg_int32(env, argv[2], "name", 0, INT32_MAX, &n))
		return false;
	*level = l;
	*name = n;
	return true;
}

/* sockSetInt(fd, level, name, value: int32) */
MAIO_EXPORT(maio_napi_sock_set_int)
{
	napi_value argv[4];
	int fd, level, name;
	int32_t value;
	if (!maio_args(env, info, 4, argv, NULL) || !sock_arg_opt(env, argv, &fd, &level, &name) ||
	    !maio_arg_int32(env, argv[3], "value", INT32_MIN, INT32_MAX, &value))
		return NULL;
	int v = value;
	if (setsockopt(fd, level, name, &v, sizeof(v)) < 0)
		return sock_throw_errno(env, errno, "setsockopt");
	return sock_undefined(env);
}

/* sockGetInt(fd, level, name) -> int. Options the kernel returns as one byte
 * (it does so when asked with a short length only) still read correctly,
 * because the int starts zeroed. */
MAIO_EXPORT(maio_napi_sock_get_int)
{
	napi_value argv[3];
	int fd, level, name;
	if (!maio_args(env, info, 3, argv, NULL) || !sock_arg_opt(env, argv, &fd, &level, &name))
		return NULL;
	int v = 0;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, level, name, &v, &len) < 0)
		return sock_throw_errno(env, errno, "getsockopt");
	if (len == 1)
		v = *(unsigned char *)&v;
	return maio_int(env, v);
}

/* sockSetBytes(fd, level, name, value: Uint8Array), for struct-valued options. */
MAIO_EXPORT(maio_napi_sock_set_bytes)
{
	napi_value argv[4];
	int fd, level, name;
	void *data;
	size_t n;
	if (!maio_args(env, info, 4, argv, NULL) || !sock_arg_opt(env, argv, &fd, &level, &name) ||
	    !maio_arg_typedarray(env, argv[3], "value", napi_uint8_array, &data, &n))
		return NULL;
	if (n > MAIO_SOCKOPT_MAX)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"value must be at most %d bytes, got %zu",
					MAIO_SOCKOPT_MAX, n);
	/* Zero-length arrays may have no backing store; the kernel still wants a pointer. */
	char empty;
	if (setsockopt(fd, level, name, n ? data : &empty, (socklen_t)n) < 0)
		return sock_throw_errno(env, errno, "setsockopt");
	return sock_undefined(env);
}

/* Copies n bytes into a fresh Uint8Array. */
static napi_value sock_bytes(napi_env env, const void *src, size_t n)
{
	napi_value ab, arr;
	void *dst;
	if (napi_create_arraybuffer(env, n, &dst, &ab) != napi_ok)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not allocate %zu bytes", n);
	if (n)
		memcpy(dst, src, n);
	napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &arr);
	return arr;
}

/* sockGetBytes(fd, level, name, maxLen) -> Uint8Array of the length the kernel returned. */
MAIO_EXPORT(maio_napi_sock_get_bytes)
{
	napi_value argv[4];
	int fd, level, name;
	int32_t max;
	if (!maio_args(env, info, 4, argv, NULL) || !sock_arg_opt(env, argv, &fd, &level, &name) ||
	    !maio_arg_int32(env, argv[3], "maxLen", 0, MAIO_SOCKOPT_MAX, &max))
		return NULL;
	unsigned char buf[MAIO_SOCKOPT_MAX];
	socklen_t len = (socklen_t)max;
	if (getsockopt(fd, level, name, buf, &len) < 0)
		return sock_throw_errno(env, errno, "getsockopt");
	/* Some options report their full size even when truncated. */
	if (len > (socklen_t)max)
		len = (socklen_t)max;
	return sock_bytes(env, buf, len);
}

/* sockName(fd, peer: boolean) -> encoded sockaddr of getsockname / getpeername. */
MAIO_EXPORT(maio_napi_sock_name)
{
	napi_value argv[2];
	int fd;
	bool peer;
	if (!maio_args(env, info, 2, argv, NULL) || !sock_arg_fd(env, argv[0], &fd) ||
	    !maio_arg_bool(env, argv[1], "peer", &peer))
		return NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		     : getsockname(fd, (struct sockaddr *)&ss, &len);
	if (r < 0)
		return sock_throw_errno(env, errno, peer ? "getpeername" : "getsockname");
	if (len > sizeof(ss))
		len = sizeof(ss);
	return sock_bytes(env, &ss, len);
}

/* sockError(fd) -> 0 or -errno: SO_ERROR negated, like a completion's res, so
 * the fallback's connect completion reads the same as the ring's. Reading it
 * clears it. */
MAIO_EXPORT(maio_napi_sock_error)
{
	napi_value argv[1];
	int fd;
	if (!maio_args(env, info, 1, argv, NULL) || !sock_arg_fd(env, argv[0], &fd))
		return NULL;
	int v = 0;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len) < 0)
		return sock_throw_errno(env, errno, "getsockopt");
	return maio_int(env, -v);
}

/* sockDisconnect(fd): connect(AF_UNSPEC), so a connected datagram socket
 * takes datagrams from anyone again and sends need a destination. */
MAIO_EXPORT(maio_napi_sock_disconnect)
{
	napi_value argv[1];
	int fd;
	if (!maio_args(env, info, 1, argv, NULL) || !sock_arg_fd(env, argv[0], &fd))
		return NULL;
	struct sockaddr sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNSPEC;
	if (connect(fd, &sa, sizeof(sa)) < 0)
		return sock_throw_errno(env, errno, "connect");
	return sock_undefined(env);
}
