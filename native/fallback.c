/*
 * The epoll fallback: what the ring does, for machines where io_uring is
 * blocked (seccomp, kernel.io_uring_disabled, old kernels).
 *
 * Readiness: one epoll set per JS thread, watched by one uv_poll on the epoll
 * fd. When it fires, epoll_wait(0) copies (fd, events) pairs into a shared
 * Int32Array and JS's onEvents(count) runs once per batch (napi_make_callback,
 * so microtasks follow). Sockets are registered edge-triggered for
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP: one epoll_ctl per socket, no re-arming; in
 * exchange JS attempts every operation once when it is started and again
 * only after an edge, and treats EAGAIN as "wait for the next edge".
 *
 * Data calls: JS calls one of these per ready operation. Each validates its
 * arguments (throwing typed errors), reaches buffers only inside a pool
 * attached here (the same struct maio_pool ring.c attaches, refcounted), and
 * returns the kernel's answer as a number: a count, or -errno. Kernel errors
 * never throw: they become completions.
 *
 * Wake: an eventfd in the epoll set lets JS ask for a callback on the next
 * loop turn (completions that need no readiness: close, nop, errors).
 *
 * Keep-alive: the poll handle is referenced only while JS has referenced
 * operations live (fallbackRef), so an idle fallback, or one whose only ops
 * are an unref'd socket's reads, never keeps the process alive.
 *
 * Lifetime (loop.h): close, finalizer and the env's cleanup hook funnel into
 * maio_loop_close, which runs fb_release once; the struct is freed when both
 * the JS handle is finalized and the uv handle is closed.
 */
#define _GNU_SOURCE
#include "loop.h"
#include "maio.h"
#include "napi_exports.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif

#define MAIO_FB_WAKE (1ULL << 32) /* epoll data of the eventfd: never an fd */
#define MAIO_FB_ROUNDS 64         /* full epoll batches per wakeup before yielding */
#define MAIO_FB_WATCH (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* The loop's shared arrays, in maio_loop_init's order. */
enum { FB_EVENTS, FB_AUX, FB_NOTES, FB_NARRAYS };

struct maio_fallback {
	struct maio_loop loop; /* callback, arrays, poll, close funnel */
	int epfd;
	int efd;

	int32_t *events; /* (fd, events) pairs */
	size_t events_cap;
	uint8_t *aux;
	size_t aux_len;
	int32_t *notes; /* (lo, hi, copied) triples from the error queue */
	size_t notes_cap;
	struct epoll_event *evbuf;

	struct maio_pool *pools[MAIO_MAX_POOLS];
};

#define fb_of(l) maio_loop_owner(l, struct maio_fallback, loop)

/* Typed arrays can be detached between calls: look them up again each time. */
static bool fb_arrays(struct maio_fallback *f)
{
	void *a[FB_NARRAYS];
	size_t len[FB_NARRAYS];
	maio_loop_arrays(&f->loop, a, len);
	f->events = a[FB_EVENTS];
	f->events_cap = len[FB_EVENTS] / 2;
	f->aux = a[FB_AUX];
	f->aux_len = len[FB_AUX];
	f->notes = a[FB_NOTES];
	f->notes_cap = len[FB_NOTES] / 3;
	return f->events_cap > 0;
}

/* ---- the wakeup path: uv poll -> epoll_wait -> JS ----------------------- */

static void fb_on_poll(uv_poll_t *handle, int status, int events)
{
	struct maio_loop *l = maio_loop_of(handle);
	struct maio_fallback *f = fb_of(l);
	for (int round = 0; round < MAIO_FB_ROUNDS && !l->closed; round++) {
		napi_handle_scope scope;
		if (napi_open_handle_scope(l->env, &scope) != napi_ok)
			return;
		if (!fb_arrays(f)) {
			maio_loop_fatal(l, "maio fallback: the events array was detached");
			napi_close_handle_scope(l->env, scope);
			return;
		}
		int cap = (int)(f->events_cap < 1024 ? f->events_cap : 1024);
		int got;
		do
			got = epoll_wait(f->epfd, f->evbuf, cap, 0);
		while (got < 0 && errno == EINTR);
		unsigned n = 0;
		bool woken = false;
		for (int i = 0; i < got; i++) {
			if (f->evbuf[i].data.u64 == MAIO_FB_WAKE) {
				uint64_t v;
				if (read(f->efd, &v, sizeof(v)) < 0) {
					/* EAGAIN: already drained; JS runs anyway. */
				}
				woken = true;
				continue;
			}
			f->events[2 * n] = (int32_t)(uint32_t)f->evbuf[i].data.u64;
			f->events[2 * n + 1] = (int32_t)f->evbuf[i].events;
			n++;
		}
		if (n || woken)
			maio_loop_call_js(l, n);
		napi_close_handle_scope(l->env, scope);
		/* A short batch means the ready list is empty (or holds only what
		 * JS just caused, which wakes the poll handle again). */
		if (got < cap)
			break;
	}
}

/* ---- shutdown (loop.h calls these) ---------------------------------- */

/* Sockets are JS's: only the epoll set and the eventfd are ours. Every data
 * call is synchronous, so no pool memory is in use past here. */
static void fb_release(struct maio_loop *l)
{
	struct maio_fallback *f = fb_of(l);
	if (f->epfd >= 0)
		close(f->epfd);
	if (f->efd >= 0)
		close(f->efd);
	f->epfd = f->efd = -1;
	for (int i = 0; i < MAIO_MAX_POOLS; i++) {
		if (f->pools[i])
			maio_pool_unref(f->pools[i]);
		f->pools[i] = NULL;
	}
}

static void fb_free(struct maio_loop *l)
{
	struct maio_fallback *f = fb_of(l);
	free(f->evbuf);
	free(f);
}

static const struct maio_loop_ops fb_loop_ops = {
	.name = "maio.fallback",
	.release = fb_release,
	.free = fb_free,
};

/* ---- fallbackCreate ----------------------------------------------------- */

/*
 * fallbackCreate({ events: Int32Array (pairs), aux: Uint8Array,
 *                  notes: Int32Array (triples), onEvents(count) }) -> handle
 */
MAIO_EXPORT(maio_napi_fallback_create)
{
	napi_value argv[1];
	if (!maio_args_options(env, info, argv))
		return NULL;
	napi_value arrays[FB_NARRAYS], v_cb;
	size_t len;
	if (!maio_opt_typedarray(env, argv[0], "events", napi_int32_array, 2, 2,
				 &arrays[FB_EVENTS], &len) ||
	    !maio_opt_typedarray(env, argv[0], "aux", napi_uint8_array, MAIO_AUX_ADDR_MAX, 1,
				 &arrays[FB_AUX], &len) ||
	    !maio_opt_typedarray(env, argv[0], "notes", napi_int32_array, 3, 3,
				 &arrays[FB_NOTES], &len) ||
	    !maio_opt_required(env, argv[0], "onEvents", &v_cb) ||
	    !maio_arg_function(env, v_cb, "options.onEvents"))
		return NULL;

	struct maio_fallback *f = calloc(1, sizeof(*f));
	if (!f)
		return maio_throw_errno(env, -ENOMEM, "fallbackCreate");
	f->epfd = f->efd = -1;
	struct maio_loop *l = &f->loop;
	if (maio_loop_init(l, env, &fb_loop_ops, v_cb, arrays, FB_NARRAYS) < 0) {
		maio_loop_discard(l);
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not reference the arrays");
	}
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (f->epfd < 0) {
		int err = -errno;
		maio_loop_discard(l);
		return maio_throw_errno(env, err, "epoll_create1");
	}
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		int err = -errno;
		maio_loop_discard(l);
		return maio_throw_errno(env, err, "eventfd");
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = MAIO_FB_WAKE};
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->efd, &ev) < 0) {
		int err = -errno;
		maio_loop_discard(l);
		return maio_throw_errno(env, err, "epoll_ctl");
	}
	fb_arrays(f);
	size_t cap = f->events_cap < 1024 ? f->events_cap : 1024;
	f->evbuf = malloc(cap * sizeof(*f->evbuf));
	if (!f->evbuf) {
		maio_loop_discard(l);
		return maio_throw_errno(env, -ENOMEM, "fallbackCreate");
	}
	int err = maio_loop_start(l, f->epfd, fb_on_poll);
	if (err < 0) {
		maio_loop_discard(l);
		return maio_throw_errno(env, err, "uv_poll_init");
	}
	napi_value handle = maio_loop_wrap(l, &maio_fallback_tag);
	if (!handle)
		return maio_throw_errno(env, -ENOMEM, "fallbackCreate");
	return handle;
}

/* ---- argument helpers ----------------------------------------------------- */

/* The open fallback behind handle `v`, or NULL after throwing. */
static struct maio_fallback *fb_arg_open(napi_env env, napi_value v)
{
	struct maio_loop *l = maio_loop_arg(env, v, "fallback", &maio_fallback_tag,
					    "the fallback ring is closed");
	return l ? fb_of(l) : NULL;
}

static bool fb_arg_fd(napi_env env, napi_value v, int *fd)
{
	int32_t i;
	if (!maio_arg_int32(env, v, "fd", 0, INT32_MAX, &i))
		return false;
	*fd = i;
	return true;
}

/* The head of every call after create: `n` arguments, the first the open
 * fallback. NULL after throwing. */
static struct maio_fallback *fb_args(napi_env env, napi_callback_info info, size_t n,
				     napi_value *argv)
{
	return maio_args(env, info, n, argv, NULL) ? fb_arg_open(env, argv[0]) : NULL;
}

/* ... and the second an fd. */
static struct maio_fallback *fb_args_fd(napi_env env, napi_callback_info info, size_t n,
					napi_value *argv, int *fd)
{
	struct maio_fallback *f = fb_args(env, info, n, argv);
	return f && fb_arg_fd(env, argv[1], fd) ? f : NULL;
}

/* (fallback, fd, pool, off, len, msgFlags) -> the buffer's address. */
static bool fb_args_buf(napi_env env, napi_callback_info info, napi_value *argv, int *fd,
			uint8_t **buf, size_t *len, int *flags)
{
	int32_t pool, off, n, fl;
	struct maio_fallback *f = fb_args_fd(env, info, 6, argv, fd);
	if (!f || !maio_arg_int32(env, argv[2], "pool", 0, MAIO_MAX_POOLS - 1, &pool) ||
	    !maio_arg_int32(env, argv[3], "offset", 0, INT32_MAX, &off) ||
	    !maio_arg_int32(env, argv[4], "length", 0, INT32_MAX, &n) ||
	    !maio_arg_int32(env, argv[5], "msgFlags", INT32_MIN, INT32_MAX, &fl))
		return false;
	struct maio_pool *p = f->pools[pool];
	if (!p || !p->base) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "pool %d is not attached", pool);
		return false;
	}
	if ((uint64_t)off + (uint64_t)n > p->size) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
				 "offset %d + length %d lies outside the pool (%zu bytes)", off, n,
				 p->size);
		return false;
	}
	*buf = p->base + off;
	*len = (size_t)n;
	*flags = fl;
	return true;
}

/* Accept and connect need a nonblocking socket; sends and receives use
 * MSG_DONTWAIT instead and leave the flags alone. */
static int fb_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- pools ------------------------------------------------------------- */

/* fallbackAttachPool(fallback, pool, index) -> the pool's size; data calls may then use it. */
MAIO_EXPORT(maio_napi_fallback_attach_pool)
{
	napi_value argv[3];
	struct maio_fallback *f = fb_args(env, info, 3, argv);
	int32_t index;
	struct maio_pool *pool;
	if (!f || !(pool = maio_pool_arg_attach(env, argv[1], argv[2], f->pools, &index)))
		return NULL;
	maio_pool_ref(pool);
	f->pools[index] = pool;
	return maio_int(env, (int64_t)pool->size);
}

/* fallbackDetachPool(fallback, index) */
MAIO_EXPORT(maio_napi_fallback_detach_pool)
{
	napi_value argv[2];
	struct maio_fallback *f = fb_args(env, info, 2, argv);
	int32_t index;
	if (!f || !maio_pool_arg_detach(env, argv[1], f->pools, &index))
		return NULL;
	maio_pool_unref(f->pools[index]);
	f->pools[index] = NULL;
	return NULL;
}

/* ---- the epoll set and the event loop ------------------------------------ */

/* fallbackWatch(fallback, fd, on) -> 0 or -errno. On: edge-triggered
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP (EEXIST re-arms); off: removes it
 * (ENOENT and EBADF count as done: a closed fd left the set by itself). */
MAIO_EXPORT(maio_napi_fallback_watch)
{
	napi_value argv[3];
	int fd;
	bool on;
	struct maio_fallback *f = fb_args_fd(env, info, 3, argv, &fd);
	if (!f || !maio_arg_bool(env, argv[2], "on", &on))
		return NULL;
	if (fd == f->epfd || fd == f->efd)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "fd %d is the fallback's own", fd);
	struct epoll_event ev = {.events = MAIO_FB_WATCH, .data.u64 = (uint32_t)fd};
	int r;
	if (on) {
		r = epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev);
		if (r < 0 && errno == EEXIST)
			r = epoll_ctl(f->epfd, EPOLL_CTL_MOD, fd, &ev);
	} else {
		r = epoll_ctl(f->epfd, EPOLL_CTL_DEL, fd, &ev);
		if (r < 0 && (errno == ENOENT || errno == EBADF))
			r = 0;
	}
	return maio_int(env, r < 0 ? -errno : 0);
}

/* fallbackRef(fallback, on): keep the process alive while JS has referenced ops live. */
MAIO_EXPORT(maio_napi_fallback_ref)
{
	napi_value argv[2];
	bool on;
	struct maio_fallback *f = fb_args(env, info, 2, argv);
	if (!f || !maio_arg_bool(env, argv[1], "on", &on))
		return NULL;
	maio_loop_ref(&f->loop, on);
	return NULL;
}

/* fallbackWake(fallback): onEvents runs on a coming loop turn, even with no events. */
MAIO_EXPORT(maio_napi_fallback_wake)
{
	napi_value argv[1];
	struct maio_fallback *f = fb_args(env, info, 1, argv);
	if (!f)
		return NULL;
	if (eventfd_write(f->efd, 1) < 0 && errno != EAGAIN)
		return maio_throw_errno(env, errno, "eventfd_write");
	return NULL;
}

/* ---- data calls: count or -errno ---------------------------------------- */

static ssize_t fb_send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t r;
	do
		r = send(fd, buf, len, flags | MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* fallbackRecv(fallback, fd, pool, off, len, msgFlags) -> bytes or -errno */
MAIO_EXPORT(maio_napi_fallback_recv)
{
	napi_value argv[6];
	int fd, flags;
	uint8_t *buf;
	size_t len;
	if (!fb_args_buf(env, info, argv, &fd, &buf, &len, &flags))
		return NULL;
	ssize_t r;
	do
		r = recv(fd, buf, len, (flags & ~(MSG_WAITALL | MSG_ERRQUEUE)) | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return maio_int(env, r < 0 ? -errno : r);
}

/* fallbackSend(fallback, fd, pool, off, len, msgFlags) -> bytes or -errno */
MAIO_EXPORT(maio_napi_fallback_send)
{
	napi_value argv[6];
	int fd, flags;
	uint8_t *buf;
	size_t len;
	if (!fb_args_buf(env, info, argv, &fd, &buf, &len, &flags))
		return NULL;
	return maio_int(env, fb_send(fd, buf, len, flags & ~(MSG_WAITALL | MSG_ZEROCOPY)));
}

/*
 * fallbackSendBuf(fallback, fd, buf, off, len, msgFlags) -> bytes or -errno:
 * a send from a caller's Uint8Array (SEND_BUF), bytes [off, off + len) of it.
 * The view is read here, at the call: nothing outlives it.
 */
MAIO_EXPORT(maio_napi_fallback_send_buf)
{
	napi_value argv[6];
	int fd;
	int32_t off, n, fl;
	struct maio_fallback *f = fb_args_fd(env, info, 6, argv, &fd);
	if (!f || !maio_arg_int32(env, argv[3], "offset", 0, INT32_MAX, &off) ||
	    !maio_arg_int32(env, argv[4], "length", 0, INT32_MAX, &n) ||
	    !maio_arg_int32(env, argv[5], "msgFlags", INT32_MIN, INT32_MAX, &fl))
		return NULL;
	bool is_ta = false;
	napi_typedarray_type type;
	size_t length = 0;
	void *data = NULL;
	if (napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta ||
	    napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok ||
	    type != napi_uint8_array)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "buf must be a Uint8Array");
	if ((uint64_t)off + (uint64_t)n > length || (n > 0 && !data))
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"offset %d + length %d lies outside the buffer (%zu bytes)", off, n,
					length);
	return maio_int(env, fb_send(fd, (uint8_t *)data + off, (size_t)n,
				     fl & ~(MSG_WAITALL | MSG_ZEROCOPY)));
}

/*
 * fallbackSendZc(fallback, fd, pool, off, len, msgFlags) -> bytes or -errno.
 * MSG_ZEROCOPY: the pages stay pinned until the error queue reports the
 * send's counter as done (fallbackZcNotes). The socket needs SO_ZEROCOPY
 * (fallbackZcEnable), else the kernel silently copies.
 */
MAIO_EXPORT(maio_napi_fallback_send_zc)
{
	napi_value argv[6];
	int fd, flags;
	uint8_t *buf;
	size_t len;
	if (!fb_args_buf(env, info, argv, &fd, &buf, &len, &flags))
		return NULL;
	return maio_int(env, fb_send(fd, buf, len, (flags & ~MSG_WAITALL) | MSG_ZEROCOPY));
}

/* fallbackZcEnable(fallback, fd) -> 0 or -errno: setsockopt SO_ZEROCOPY. */
MAIO_EXPORT(maio_napi_fallback_zc_enable)
{
	napi_value argv[2];
	int fd;
	struct maio_fallback *f = fb_args_fd(env, info, 2, argv, &fd);
	if (!f)
		return NULL;
	int one = 1;
	return maio_int(env, setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0 ? -errno : 0);
}

/*
 * fallbackZcNotes(fallback, fd) -> number of (lo, hi, copied) triples
 * written to the notes array, or -errno. Reads the error queue until it is
 * empty or the array is full; each triple is a finished range of the
 * socket's zero-copy send counter, copied = 1 when the kernel copied.
 * Error-queue messages of other origins are dropped.
 */
MAIO_EXPORT(maio_napi_fallback_zc_notes)
{
	napi_value argv[2];
	int fd;
	struct maio_fallback *f = fb_args_fd(env, info, 2, argv, &fd);
	if (!f)
		return NULL;
	if (!fb_arrays(f) || !f->notes)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "a shared array was detached");
	size_t n = 0;
	while (n < f->notes_cap) {
		char control[CMSG_SPACE(sizeof(struct sock_extended_err)) + 64];
		struct msghdr msg;
		memset(&msg, 0, sizeof(msg));
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		ssize_t r;
		do
			r = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (n)
				break;
			return maio_int(env, -errno);
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			bool ip = (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
				  (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR);
			if (!ip)
				continue;
			struct sock_extended_err ee;
			memcpy(&ee, CMSG_DATA(c), sizeof(ee));
			if (ee.ee_errno != 0 || ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY)
				continue;
			f->notes[3 * n] = (int32_t)ee.ee_info;
			f->notes[3 * n + 1] = (int32_t)ee.ee_data;
			f->notes[3 * n + 2] = (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) ? 1 : 0;
			n++;
			break;
		}
	}
	return maio_int(env, (int64_t)n);
}

/* fallbackAccept(fallback, fd, flags: SOCK_NONBLOCK | SOCK_CLOEXEC) -> fd or -errno */
MAIO_EXPORT(maio_napi_fallback_accept)
{
	napi_value argv[3];
	int fd;
	int32_t flags;
	struct maio_fallback *f = fb_args_fd(env, info, 3, argv, &fd);
	if (!f || !maio_arg_int32(env, argv[2], "flags", INT32_MIN, INT32_MAX, &flags))
		return NULL;
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"flags 0x%x: only SOCK_NONBLOCK and SOCK_CLOEXEC are allowed",
					(unsigned)flags);
	int r = fb_nonblock(fd);
	if (r < 0)
		return maio_int(env, r);
	do
		r = accept4(fd, NULL, NULL, flags);
	while (r < 0 && errno == EINTR);
	return maio_int(env, r < 0 ? -errno : r);
}

/*
 * fallbackConnect(fallback, fd, auxOff, auxLen) -> 0, -EINPROGRESS, or
 * -errno. The sockaddr comes from the aux array, as for the ring's CONNECT.
 * After -EINPROGRESS, wait for EPOLLOUT and read fallbackConnectResult.
 */
MAIO_EXPORT(maio_napi_fallback_connect)
{
	napi_value argv[4];
	int fd;
	int32_t off, len;
	struct maio_fallback *f = fb_args_fd(env, info, 4, argv, &fd);
	if (!f || !maio_arg_int32(env, argv[2], "auxOff", 0, INT32_MAX, &off) ||
	    !maio_arg_int32(env, argv[3], "auxLen", 1, MAIO_AUX_ADDR_MAX, &len))
		return NULL;
	if (!fb_arrays(f) || !f->aux)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "a shared array was detached");
	if ((uint64_t)off + (uint64_t)len > f->aux_len)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"auxOff %d + auxLen %d lies outside aux", off, len);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, f->aux + off, (size_t)len);
	int r = fb_nonblock(fd);
	if (r < 0)
		return maio_int(env, r);
	do
		r = connect(fd, (struct sockaddr *)&ss, (socklen_t)len);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return maio_int(env, 0);
	/* EINTR above leaves the handshake running: a retry says EALREADY. */
	if (errno == EINPROGRESS || errno == EALREADY)
		return maio_int(env, -EINPROGRESS);
	return maio_int(env, -errno);
}

/*
 * fallbackConnectResult(fallback, fd) -> 0 when connected, -EINPROGRESS while
 * the handshake still runs, else -errno (SO_ERROR, which reading clears).
 */
MAIO_EXPORT(maio_napi_fallback_connect_result)
{
	napi_value argv[2];
	int fd;
	struct maio_fallback *f = fb_args_fd(env, info, 2, argv, &fd);
	if (!f)
		return NULL;
	int v = 0;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len) < 0)
		return maio_int(env, -errno);
	if (v)
		return maio_int(env, -v);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return maio_int(env, errno == ENOTCONN ? -EINPROGRESS : -errno);
	return maio_int(env, 0);
}

/* fallbackShutdown(fallback, fd, how) -> 0 or -errno */
MAIO_EXPORT(maio_napi_fallback_shutdown)
{
	napi_value argv[3];
	int fd;
	int32_t how;
	struct maio_fallback *f = fb_args_fd(env, info, 3, argv, &fd);
	if (!f || !maio_arg_int32(env, argv[2], "how", SHUT_RD, SHUT_RDWR, &how))
		return NULL;
	return maio_int(env, shutdown(fd, how) < 0 ? -errno : 0);
}

/* fallbackCloseFd(fallback, fd) -> 0 or -errno. Leaves the epoll set first
 * (a dup of the fd would otherwise keep reporting), then closes; EINTR still
 * frees the descriptor on Linux, so it counts as done. */
MAIO_EXPORT(maio_napi_fallback_close_fd)
{
	napi_value argv[2];
	int fd;
	struct maio_fallback *f = fb_args_fd(env, info, 2, argv, &fd);
	if (!f)
		return NULL;
	if (fd == f->epfd || fd == f->efd)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "fd %d is the fallback's own", fd);
	struct epoll_event ev = {0};
	epoll_ctl(f->epfd, EPOLL_CTL_DEL, fd, &ev);
	return maio_int(env, close(fd) < 0 && errno != EINTR ? -errno : 0);
}

/* fallbackClose(fallback): idempotent; later calls on the handle throw ERR_MAIO_CLOSED. */
MAIO_EXPORT(maio_napi_fallback_close)
{
	return maio_loop_napi_close(env, info, "fallback", &maio_fallback_tag);
}

/* ---- datagrams ---------------------------------------------------------- */

#define MAIO_FB_MMSG_MAX 64 /* datagrams one fallbackRecvmsg call takes at most */

/*
 * fallbackRecvmsg(fallback, fd, list: Int32Array, count, nameLen, ctlLen, msgFlags):
 * one recvmmsg into up to `count` buffers, list[4i..4i+2] = (pool, offset,
 * length) of buffer i, each laid out as io_uring's multishot RECVMSG lays out
 * a provided buffer: struct io_uring_recvmsg_out, nameLen bytes for the name,
 * ctlLen for control messages, then the payload. Returns how many datagrams
 * came (list[4i+3] = the bytes buffer i holds), or -errno. MSG_TRUNC makes
 * payloadlen the datagram's real length, as io_uring reports it.
 */
MAIO_EXPORT(maio_napi_fallback_recvmsg)
{
	napi_value argv[7];
	int fd;
	int32_t count, name_len, ctl_len, flags;
	void *data;
	size_t n;
	struct maio_fallback *f = fb_args_fd(env, info, 7, argv, &fd);
	if (!f || !maio_arg_typedarray(env, argv[2], "list", napi_int32_array, &data, &n) ||
	    !maio_arg_int32(env, argv[3], "count", 1, MAIO_FB_MMSG_MAX, &count) ||
	    !maio_arg_int32(env, argv[4], "nameLen", 0, MAIO_AUX_ADDR_MAX, &name_len) ||
	    !maio_arg_int32(env, argv[5], "ctlLen", 0, MAIO_RECVMSG_CTL_MAX, &ctl_len) ||
	    !maio_arg_int32(env, argv[6], "msgFlags", INT32_MIN, INT32_MAX, &flags))
		return NULL;
	if (!maio_udp_recvmsg_lengths_ok(name_len, ctl_len))
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "ctlLen %d is not a multiple of 8", ctl_len);
	if (n < (size_t)count * 4)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "list holds %zu entries, count is %d", n / 4, count);
	int32_t *list = data;
	size_t head = MAIO_RECVMSG_OUT + (size_t)name_len + (size_t)ctl_len;
	struct mmsghdr mm[MAIO_FB_MMSG_MAX];
	struct iovec iov[MAIO_FB_MMSG_MAX];
	uint8_t *bufs[MAIO_FB_MMSG_MAX];
	memset(mm, 0, sizeof(mm[0]) * (size_t)count);
	for (int32_t i = 0; i < count; i++) {
		int32_t pool = list[4 * i], off = list[4 * i + 1], len = list[4 * i + 2];
		struct maio_pool *p = pool >= 0 && pool < MAIO_MAX_POOLS ? f->pools[pool] : NULL;
		if (!p || !p->base)
			return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "list[%d]: pool %d is not attached", i, pool);
		if (off < 0 || len < 0 || (uint64_t)off + (uint64_t)len > p->size)
			return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
						"list[%d]: offset %d + length %d lies outside the pool", i, off, len);
		if ((size_t)len < head)
			return maio_int(env, -EINVAL);
		bufs[i] = p->base + off;
		iov[i].iov_base = bufs[i] + head;
		iov[i].iov_len = (size_t)len - head;
		struct msghdr *msg = &mm[i].msg_hdr;
		msg->msg_name = name_len ? bufs[i] + MAIO_RECVMSG_OUT : NULL;
		msg->msg_namelen = (socklen_t)name_len;
		msg->msg_control = ctl_len ? bufs[i] + MAIO_RECVMSG_OUT + name_len : NULL;
		msg->msg_controllen = (size_t)ctl_len;
		msg->msg_iov = &iov[i];
		msg->msg_iovlen = 1;
	}
	int r;
	do
		r = recvmmsg(fd, mm, (unsigned)count,
			     (flags & ~(MSG_WAITALL | MSG_ERRQUEUE)) | MSG_DONTWAIT | MSG_TRUNC, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return maio_int(env, -errno);
	for (int i = 0; i < r; i++) {
		struct io_uring_recvmsg_out out;
		out.namelen = mm[i].msg_hdr.msg_namelen;
		out.controllen = (uint32_t)mm[i].msg_hdr.msg_controllen;
		out.payloadlen = mm[i].msg_len;
		out.flags = (uint32_t)mm[i].msg_hdr.msg_flags;
		memcpy(bufs[i], &out, sizeof(out));
		size_t copied = mm[i].msg_len < iov[i].iov_len ? mm[i].msg_len : iov[i].iov_len;
		list[4 * i + 3] = (int32_t)(head + copied);
	}
	return maio_int(env, r);
}

/*
 * fallbackSendmsg(fallback, fd, pool, auxOff, auxLen, nameLen, gso, msgFlags):
 * the SENDMSG descriptor's datagram (native/maio.h) in one sendmsg, checked
 * by the same code as on the ring. Bytes sent or -errno. fallbackSendmsgZc
 * adds MSG_ZEROCOPY (the SENDMSG_ZC op; see fallbackSendZc).
 */
static napi_value fb_sendmsg(napi_env env, napi_callback_info info, bool zc)
{
	napi_value argv[8];
	int fd;
	int32_t pool, aoff, alen, name_len, gso, flags;
	struct maio_fallback *f = fb_args_fd(env, info, 8, argv, &fd);
	if (!f || !maio_arg_int32(env, argv[2], "pool", 0, MAIO_MAX_POOLS - 1, &pool) ||
	    !maio_arg_int32(env, argv[3], "auxOff", 0, INT32_MAX, &aoff) ||
	    !maio_arg_int32(env, argv[4], "auxLen", 8, 8 * MAIO_SENDMSG_MAX_SEGS, &alen) ||
	    !maio_arg_int32(env, argv[5], "nameLen", 0, MAIO_SENDMSG_NAME_MAX, &name_len) ||
	    !maio_arg_int32(env, argv[6], "gso", 0, MAIO_UDP_SEGMENT_NONE, &gso) ||
	    !maio_arg_int32(env, argv[7], "msgFlags", INT32_MIN, INT32_MAX, &flags))
		return NULL;
	if (!fb_arrays(f) || !f->aux)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "a shared array was detached");
	struct maio_pool *p = f->pools[pool];
	if (!p || !p->base)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "pool %d is not attached", pool);
	/* The descriptor fields the shared builder reads; LEN is the sum it checks. */
	int32_t d[MAIO_DESC_INTS];
	memset(d, 0, sizeof(d));
	d[MAIO_D_AUX_OFF] = aoff;
	d[MAIO_D_AUX_LEN] = alen;
	d[MAIO_D_OFF_LO] = name_len;
	d[MAIO_D_OFF_HI] = gso;
	int32_t segs[2 * MAIO_SENDMSG_MAX_SEGS];
	if ((uint64_t)aoff + MAIO_SENDMSG_NAME_MAX + (uint64_t)alen <= f->aux_len) {
		memcpy(segs, f->aux + aoff + MAIO_SENDMSG_NAME_MAX, (size_t)alen);
		int64_t total = 0;
		for (int k = 0; k < alen / 8; k++)
			total += segs[2 * k + 1];
		d[MAIO_D_LEN] = total > INT32_MAX ? -1 : (int32_t)total;
	}
	struct iovec iov[MAIO_SENDMSG_MAX_SEGS];
	struct maio_udp_msg m;
	struct msghdr msg;
	const char *field = "", *why = "";
	if (maio_udp_sendmsg_build(d, f->aux, f->aux_len, p->base, p->size, iov, &m, &msg, &field,
				   &why) < 0)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "SENDMSG %s %s", field, why);
	ssize_t r;
	do
		r = sendmsg(fd, &msg,
			    (flags & ~MSG_ZEROCOPY) | (zc ? MSG_ZEROCOPY : 0) | MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return maio_int(env, r < 0 ? -errno : r);
}

MAIO_EXPORT(maio_napi_fallback_sendmsg)
{
	return fb_sendmsg(env, info, false);
}

MAIO_EXPORT(maio_napi_fallback_sendmsg_zc)
{
	return fb_sendmsg(env, info, true);
}

/*
 * fallbackSendmmsg(fallback, fd, list: Int32Array, count, msgFlags): the
 * SENDMSG entries list[6i..6i+4] = (pool, auxOff, auxLen, nameLen, gso) in
 * one sendmmsg, each checked as fallbackSendmsg checks it. Returns how many
 * left (list[6i+5] = bytes sent of entry i) or the first one's -errno; an
 * error after the first is the next call's to report.
 */
MAIO_EXPORT(maio_napi_fallback_sendmmsg)
{
	napi_value argv[5];
	int fd;
	int32_t count, flags;
	void *data;
	size_t n;
	struct maio_fallback *f = fb_args_fd(env, info, 5, argv, &fd);
	if (!f || !maio_arg_typedarray(env, argv[2], "list", napi_int32_array, &data, &n) ||
	    !maio_arg_int32(env, argv[3], "count", 1, MAIO_FB_MMSG_MAX, &count) ||
	    !maio_arg_int32(env, argv[4], "msgFlags", INT32_MIN, INT32_MAX, &flags))
		return NULL;
	if (n < (size_t)count * 6)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "list holds %zu entries, count is %d", n / 6, count);
	if (!fb_arrays(f) || !f->aux)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "a shared array was detached");
	int32_t *list = data;
	/* 64 x 64 iovecs would be 64 KiB of stack: take them from the heap. */
	struct iovec *iov = malloc((size_t)count * MAIO_SENDMSG_MAX_SEGS * sizeof(*iov));
	struct maio_udp_msg *m = malloc((size_t)count * sizeof(*m));
	struct mmsghdr *mm = calloc((size_t)count, sizeof(*mm));
	napi_value out = NULL;
	if (!iov || !m || !mm) {
		out = maio_int(env, -ENOMEM);
		goto done;
	}
	for (int32_t i = 0; i < count; i++) {
		const int32_t *e = list + 6 * i;
		int32_t pool = e[0], aoff = e[1], alen = e[2];
		struct maio_pool *p = pool >= 0 && pool < MAIO_MAX_POOLS ? f->pools[pool] : NULL;
		if (!p || !p->base) {
			maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "list[%d]: pool %d is not attached", i, pool);
			goto done;
		}
		int32_t d[MAIO_DESC_INTS];
		memset(d, 0, sizeof(d));
		d[MAIO_D_AUX_OFF] = aoff;
		d[MAIO_D_AUX_LEN] = alen;
		d[MAIO_D_OFF_LO] = e[3];
		d[MAIO_D_OFF_HI] = e[4];
		if (aoff >= 0 && alen >= 8 && alen <= 8 * MAIO_SENDMSG_MAX_SEGS && alen % 8 == 0 &&
		    (uint64_t)aoff + MAIO_SENDMSG_NAME_MAX + (uint64_t)alen <= f->aux_len) {
			int32_t segs[2 * MAIO_SENDMSG_MAX_SEGS];
			memcpy(segs, f->aux + aoff + MAIO_SENDMSG_NAME_MAX, (size_t)alen);
			int64_t total = 0;
			for (int k = 0; k < alen / 8; k++)
				total += segs[2 * k + 1];
			d[MAIO_D_LEN] = total > INT32_MAX ? -1 : (int32_t)total;
		}
		const char *field = "", *why = "";
		if (maio_udp_sendmsg_build(d, f->aux, f->aux_len, p->base, p->size,
					   iov + (size_t)i * MAIO_SENDMSG_MAX_SEGS, &m[i], &mm[i].msg_hdr,
					   &field, &why) < 0) {
			maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "list[%d]: SENDMSG %s %s", i, field, why);
			goto done;
		}
	}
	int r;
	do
		r = sendmmsg(fd, mm, (unsigned)count, (flags & ~MSG_ZEROCOPY) | MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		out = maio_int(env, -errno);
		goto done;
	}
	for (int i = 0; i < r; i++)
		list[6 * i + 5] = (int32_t)mm[i].msg_len;
	out = maio_int(env, r);
done:
	free(iov);
	free(m);
	free(mm);
	return out;
}
