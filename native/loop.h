/*
 * The native loop lifecycle: what the io_uring ring (ring.c) and the epoll
 * fallback (fallback.c) share about living on a libuv loop behind a JS
 * handle. The engines keep only what is theirs (the kernel objects, the
 * wake-up path, the data calls).
 *
 * A loop holds the JS callback and references to the shared typed arrays,
 * polls one fd with a uv_poll (never referencing the event loop unless told
 * to), and shuts down through one funnel, maio_loop_close, which releases
 * the engine once, in whichever order these come:
 *
 *   - an explicit close from JS (ringClose, fallbackClose), also from inside
 *     the poll callback (the callback checks `closed` after each JS call);
 *   - the JS handle's finalizer (GC or env teardown), after a close or not;
 *   - the env's cleanup hook: a worker exits with the handle still open,
 *     and the env waits until the poll handle is closed.
 *
 * The engine struct (which embeds the loop) is freed only once the JS handle
 * is finalized AND the uv handle is closed: a late poll callback, a late
 * finalizer or a call on a stale handle never sees freed memory.
 *
 * Building a loop, in this order:
 *   maio_loop_init   references and async context; from here on any failure
 *                    is undone by maio_loop_discard
 *   maio_loop_start  uv_poll on the engine's fd, not referenced
 *   maio_loop_wrap   the JS handle; from here the funnel owns the lifetime
 *
 * Conventions as in maio.h: 0 or -errno, nothing printed.
 */
#ifndef MAIO_LOOP_H
#define MAIO_LOOP_H

#include "napi_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define MAIO_LOOP_MAX_ARRAYS 4

struct maio_loop;

struct maio_loop_ops {
	const char *name; /* async resource name: "maio.ring", "maio.fallback" */
	/* Releases the engine's kernel state (fds, mappings, pool references).
	 * Runs once, inside maio_loop_close, after the poll stopped and before
	 * the JS references go; copes with a half-built engine (discard). */
	void (*release)(struct maio_loop *l);
	/* Frees the engine struct. Runs once, last; `l` is gone after it. */
	void (*free)(struct maio_loop *l);
};

struct maio_loop {
	napi_env env;
	const struct maio_loop_ops *ops;
	napi_ref cb_ref;
	napi_ref arrays[MAIO_LOOP_MAX_ARRAYS];
	unsigned narrays;
	/* When every array is a view of one ArrayBuffer (src/ring/ring.ts makes
	 * them so), that buffer: maio_loop_arrays then looks up one object, not
	 * one per array. NULL otherwise. */
	napi_ref backing;
	size_t at[MAIO_LOOP_MAX_ARRAYS];  /* array i's byte offset in backing */
	size_t len[MAIO_LOOP_MAX_ARRAYS]; /* its element count */
	size_t backing_end;               /* bytes backing must hold: the views' end */
	napi_async_context async_ctx;
	uv_poll_t *poll;  /* NULL before start and once libuv closed it */
	bool poll_ref;    /* the poll handle keeps the event loop alive */
	napi_async_cleanup_hook_handle cleanup;
	bool closed;      /* the funnel ran: JS calls throw ERR_MAIO_CLOSED */
	bool finalized;   /* the JS handle is gone */
};

/* The engine struct around an embedded loop. */
#define maio_loop_owner(l, type, member) \
	((type *)(void *)((char *)(l) - offsetof(type, member)))

/* Sets env and ops, then references `cb` and `narrays` typed arrays (in the
 * order maio_loop_array numbers them) and makes the async context. `l` must
 * be zeroed. 0, or -ENOMEM/-EINVAL: call maio_loop_discard. */
int maio_loop_init(struct maio_loop *l, napi_env env, const struct maio_loop_ops *ops,
		   napi_value cb, const napi_value *arrays, unsigned narrays);

/* Polls `fd` for readability; `cb` finds the loop with maio_loop_of. The
 * event loop is not referenced (maio_loop_ref). 0, or a negative uv/errno
 * code: call maio_loop_discard. */
int maio_loop_start(struct maio_loop *l, int fd, uv_poll_cb cb);

/* The JS handle: an external holding `l`, type-tagged; its finalizer and
 * the env cleanup hook funnel into maio_loop_close. NULL when it could not be
 * made: the loop is then discarded (do not touch it again). */
napi_value maio_loop_wrap(struct maio_loop *l, const napi_type_tag *tag);

/* The loop behind JS handle `v` of `tag`, open; NULL after throwing
 * ERR_MAIO_INVALID_HANDLE (not such a handle, `what` names it) or
 * ERR_MAIO_CLOSED (`closed_msg`). */
struct maio_loop *maio_loop_arg(napi_env env, napi_value v, const char *what,
				const napi_type_tag *tag, const char *closed_msg);

/* The JS close entry (ringClose, fallbackClose): close(handle), idempotent;
 * later calls on the handle throw ERR_MAIO_CLOSED. */
napi_value maio_loop_napi_close(napi_env env, napi_callback_info info, const char *what,
				const napi_type_tag *tag);

/* The funnel: stops and closes the poll, releases the engine, drops the JS
 * references. Idempotent. */
void maio_loop_close(struct maio_loop *l);

/* Undoes a loop whose JS handle does not exist (a failed create): close,
 * then free now, or once libuv has closed the poll handle. */
void maio_loop_discard(struct maio_loop *l);

/* Calls the JS callback with one uint32 argument through napi_make_callback
 * (microtasks follow). A throw is reported like any callback's (there is no
 * JS frame to return to). Needs an open handle scope. */
void maio_loop_call_js(struct maio_loop *l, unsigned n);

/* Reports `msg` as an uncaught Error. Needs an open handle scope. */
void maio_loop_fatal(struct maio_loop *l, const char *msg);

/* ---- hot-path helpers, inline: no more work than the code they replaced - */

static inline struct maio_loop *maio_loop_of(uv_poll_t *handle)
{
	return handle->data;
}

/* Typed array `i`'s data and element count, looked up again each time: JS
 * may have detached (transferred) it since. NULL (and *len 0) if detached. */
static inline void *maio_loop_array(struct maio_loop *l, unsigned i, size_t *len)
{
	napi_value v;
	napi_typedarray_type t;
	void *data = NULL;
	*len = 0;
	napi_get_reference_value(l->env, l->arrays[i], &v);
	napi_get_typedarray_info(l->env, v, &t, len, &data, NULL, NULL);
	if (!data)
		*len = 0;
	return data;
}

/* Every array's data and element count (maio_loop_array for each), with one
 * lookup of their ArrayBuffer when they share one: a detached or shrunk
 * buffer falls back to the lookups one by one, which see it. Runs once per
 * JS call and per submit, so the saving is per event-loop turn. */
static inline void maio_loop_arrays(struct maio_loop *l, void **data, size_t *len)
{
	if (l->backing) {
		napi_value v;
		void *base = NULL;
		size_t bytes = 0;
		napi_get_reference_value(l->env, l->backing, &v);
		napi_get_arraybuffer_info(l->env, v, &base, &bytes);
		if (base && bytes >= l->backing_end) {
			for (unsigned i = 0; i < l->narrays; i++) {
				data[i] = (char *)base + l->at[i];
				len[i] = l->len[i];
			}
			return;
		}
	}
	for (unsigned i = 0; i < l->narrays; i++)
		data[i] = maio_loop_array(l, i, &len[i]);
}

/* Keep the process alive (referenced operations live) or not (idle). */
static inline void maio_loop_ref(struct maio_loop *l, bool on)
{
	if (!l->poll || on == l->poll_ref)
		return;
	if (on)
		uv_ref((uv_handle_t *)l->poll);
	else
		uv_unref((uv_handle_t *)l->poll);
	l->poll_ref = on;
}

#endif /* MAIO_LOOP_H */
