/*
 * File -> socket with sendfile(2), driven by socket readiness.
 *
 * Why not io_uring: it has no sendfile op, and its SPLICE runs in an io-wq
 * worker with a JS round trip per pipe-ful (see src/paths/send-file.ts,
 * mode 'splice'). Plain sendfile on a nonblocking socket moves as much as the
 * socket's send buffer takes in one system call, on the loop thread, and
 * the kernel's only copy is the one into the socket (none at all into user
 * memory).
 *
 * One transfer owns dups of the socket and of the file: whatever JS closes
 * meanwhile, the fds polled and read here stay the ones the transfer started
 * with (a closed-and-reused fd number can never receive the file). libuv
 * polls the socket dup for writability (level-triggered); each wakeup sends
 * until EAGAIN or until the per-wakeup budget is spent (so a fast receiver
 * cannot hold the loop), then calls JS once: cb(status, sent).
 *
 *   status 0: progress; 1: done (sent == length); 2: the file ended before
 *   the range did (it shrank); < 0: -errno of sendfile or of the poll.
 *
 * After status != 0 nothing more is called. sendfileAbort stops at once and
 * calls nothing. The state lives until the poll handle is closed; the JS
 * handle points at it through a box that the close clears, so a late abort
 * or a stats call on a finished transfer is harmless.
 */
#define _GNU_SOURCE
#include "napi_exports.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define SF_DEFAULT_BUDGET (4 << 20) /* bytes per wakeup before yielding to the loop */
#define SF_MAX_CALL 0x7ffff000L     /* the kernel's cap on one sendfile */

struct sf_box;

/* Counters for tests and benchmarks. */
struct sf_counts {
	double wakes, calls, eagain;
};

struct sf_transfer {
	napi_env env;
	uv_poll_t poll;
	int sock; /* dups, owned */
	int file;
	int64_t off;  /* next file byte */
	int64_t left; /* bytes of the range not sent yet */
	int64_t sent;
	int64_t budget;
	napi_ref cb_ref;
	napi_async_context async_ctx;
	napi_async_cleanup_hook_handle cleanup;
	struct sf_box *box;
	bool stopped;
	struct sf_counts n;
};

/* What the JS handle holds: cleared when the transfer is freed, keeping the counts. */
struct sf_box {
	struct sf_transfer *t;
	struct sf_counts n;
};

const napi_type_tag maio_sendfile_tag = {0x6d61696f73656e64ULL, 0x66696c6500000001ULL};

static void sf_on_closed(uv_handle_t *h)
{
	struct sf_transfer *t = h->data;
	close(t->sock);
	close(t->file);
	if (t->box) {
		t->box->n = t->n;
		t->box->t = NULL;
	}
	if (t->cleanup)
		napi_remove_async_cleanup_hook(t->cleanup);
	free(t);
}

/*
 * Stops polling and frees the JS references; the fds and the struct go when
 * libuv has closed the handle (an fd closed earlier could be reused and then
 * taken out of libuv's epoll set under someone else).
 */
static void sf_stop(struct sf_transfer *t)
{
	if (t->stopped)
		return;
	t->stopped = true;
	uv_poll_stop(&t->poll);
	if (t->cb_ref)
		napi_delete_reference(t->env, t->cb_ref);
	if (t->async_ctx)
		napi_async_destroy(t->env, t->async_ctx);
	t->cb_ref = NULL;
	t->async_ctx = NULL;
	uv_close((uv_handle_t *)&t->poll, sf_on_closed);
}

static void sf_call_js(struct sf_transfer *t, int status)
{
	napi_env env = t->env;
	napi_handle_scope scope;
	if (napi_open_handle_scope(env, &scope) != napi_ok)
		return;
	napi_value cb, recv, argv[2], result;
	napi_get_reference_value(env, t->cb_ref, &cb);
	napi_get_global(env, &recv);
	napi_create_int32(env, status, &argv[0]);
	napi_create_double(env, (double)t->sent, &argv[1]);
	/* A final status stops polling before JS runs; the references go after. */
	if (status != 0)
		uv_poll_stop(&t->poll);
	napi_status st = napi_make_callback(env, t->async_ctx, recv, cb, 2, argv, &result);
	if (st == napi_pending_exception) {
		napi_value err;
		napi_get_and_clear_last_exception(env, &err);
		napi_fatal_exception(env, err);
	}
	if (status != 0)
		sf_stop(t);
	napi_close_handle_scope(env, scope);
}

static void sf_on_writable(uv_poll_t *h, int status, int events)
{
	struct sf_transfer *t = h->data;
	if (t->stopped)
		return;
	t->n.wakes++;
	if (status < 0) {
		/* libuv reports EPOLLERR as UV_EBADF: the socket's own error
		 * (ECONNRESET, EPIPE) is what the caller should see. */
		int err = 0;
		socklen_t len = sizeof(err);
		if (status == UV_EBADF && getsockopt(t->sock, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
			status = err ? -err : -EPIPE;
		return sf_call_js(t, status);
	}
	int64_t budget = t->budget;
	int64_t before = t->sent;
	int result = 0;
	while (t->left > 0 && budget > 0) {
		size_t want = (size_t)(t->left < budget ? t->left : budget);
		if (want > SF_MAX_CALL)
			want = SF_MAX_CALL;
		off_t off = (off_t)t->off;
		ssize_t n = sendfile(t->sock, t->file, &off, want);
		t->n.calls++;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				t->n.eagain++;
				break;
			}
			result = -errno;
			break;
		}
		if (n == 0) {
			result = 2; /* end of file inside the range */
			break;
		}
		t->off += n;
		t->left -= n;
		t->sent += n;
		budget -= n;
	}
	if (result == 0 && t->left == 0)
		result = 1;
	if (result != 0 || t->sent != before)
		sf_call_js(t, result);
}

static void sf_cleanup_hook(napi_async_cleanup_hook_handle handle, void *arg)
{
	struct sf_transfer *t = arg;
	/* The env is going away: no JS call any more, and the hook is removed
	 * by the close callback. */
	sf_stop(t);
}

static void sf_box_finalize(napi_env env, void *data, void *hint)
{
	struct sf_box *box = data;
	/* The transfer runs on without its JS handle (the callback holds it). */
	if (box->t)
		box->t->box = NULL;
	free(box);
}

/*
 * sendfileStart(socketFd, fileFd, offset, length, budget, cb) -> handle.
 * Makes the socket nonblocking (it is a file-description flag: maio's
 * socket ops do not depend on it either way).
 */
MAIO_EXPORT(maio_napi_sendfile_start)
{
	napi_value argv[6];
	int32_t sock, file;
	int64_t offset, length, budget;
	if (!maio_args(env, info, 6, argv, NULL) ||
	    !maio_arg_int32(env, argv[0], "socketFd", 0, INT32_MAX, &sock) ||
	    !maio_arg_int32(env, argv[1], "fileFd", 0, INT32_MAX, &file) ||
	    !maio_arg_int64(env, argv[2], "offset", 0, INT64_MAX / 2, &offset) ||
	    !maio_arg_int64(env, argv[3], "length", 1, INT64_MAX / 2, &length) ||
	    !maio_arg_int64(env, argv[4], "budget", 4096, 1L << 30, &budget) ||
	    !maio_arg_function(env, argv[5], "cb"))
		return NULL;
	uv_loop_t *loop;
	if (napi_get_uv_event_loop(env, &loop) != napi_ok)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "no event loop");

	int s = fcntl(sock, F_DUPFD_CLOEXEC, 3);
	if (s < 0)
		return maio_throw_errno(env, errno, "fcntl(F_DUPFD)");
	int f = fcntl(file, F_DUPFD_CLOEXEC, 3);
	if (f < 0) {
		int err = errno;
		close(s);
		return maio_throw_errno(env, err, "fcntl(F_DUPFD)");
	}
	int fl = fcntl(s, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(s, F_SETFL, fl | O_NONBLOCK) < 0)) {
		int err = errno;
		close(s);
		close(f);
		return maio_throw_errno(env, err, "fcntl(F_SETFL)");
	}
	struct sf_transfer *t = calloc(1, sizeof(*t));
	struct sf_box *box = calloc(1, sizeof(*box));
	int err = t && box ? 0 : -ENOMEM;
	if (!err)
		err = uv_poll_init_socket(loop, &t->poll, s); /* ENOTSOCK etc. */
	if (err) {
		free(t);
		free(box);
		close(s);
		close(f);
		return maio_throw_errno(env, -err, "uv_poll_init");
	}
	t->env = env;
	t->poll.data = t;
	t->sock = s;
	t->file = f;
	t->off = offset;
	t->left = length;
	t->budget = budget;
	napi_value resource, name;
	napi_create_object(env, &resource);
	napi_create_string_utf8(env, "maio.sendfile", NAPI_AUTO_LENGTH, &name);
	napi_create_reference(env, argv[5], 1, &t->cb_ref);
	napi_async_init(env, resource, name, &t->async_ctx);
	napi_add_async_cleanup_hook(env, sf_cleanup_hook, t, &t->cleanup);
	uv_poll_start(&t->poll, UV_WRITABLE, sf_on_writable);

	napi_value handle = maio_wrap_handle(env, box, &maio_sendfile_tag, sf_box_finalize, NULL);
	if (!handle) {
		sf_stop(t);
		free(box);
		return maio_throw_errno(env, ENOMEM, "sendfileStart");
	}
	box->t = t;
	t->box = box;
	return handle;
}

/* sendfileAbort(handle) -> whether a transfer was still running. No callback follows. */
MAIO_EXPORT(maio_napi_sendfile_abort)
{
	napi_value argv[1];
	void *p;
	if (!maio_args(env, info, 1, argv, NULL) ||
	    !maio_arg_handle(env, argv[0], "transfer", &maio_sendfile_tag, &p))
		return NULL;
	struct sf_box *box = p;
	bool running = box->t && !box->t->stopped;
	if (box->t)
		sf_stop(box->t);
	napi_value r;
	napi_get_boolean(env, running, &r);
	return r;
}

/* sendfileStats(handle) -> { wakes, calls, eagain, running }. */
MAIO_EXPORT(maio_napi_sendfile_stats)
{
	napi_value argv[1];
	void *p;
	if (!maio_args(env, info, 1, argv, NULL) ||
	    !maio_arg_handle(env, argv[0], "transfer", &maio_sendfile_tag, &p))
		return NULL;
	struct sf_box *box = p;
	struct sf_transfer *t = box->t;
	struct sf_counts n = t ? t->n : box->n;
	napi_value out;
	napi_create_object(env, &out);
	maio_set_double(env, out, "wakes", n.wakes);
	maio_set_double(env, out, "calls", n.calls);
	maio_set_double(env, out, "eagain", n.eagain);
	maio_set_bool(env, out, "running", t && !t->stopped);
	return out;
}
