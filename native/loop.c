/*
 * The native loop lifecycle (see loop.h): references, the uv_poll, and the
 * one close funnel shared by ring.c and fallback.c.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>

static size_t element_size(napi_typedarray_type t)
{
	switch (t) {
	case napi_int8_array:
	case napi_uint8_array:
	case napi_uint8_clamped_array:
		return 1;
	case napi_int16_array:
	case napi_uint16_array:
		return 2;
	case napi_int32_array:
	case napi_uint32_array:
	case napi_float32_array:
		return 4;
	default:
		return 8;
	}
}

/* Sets l->backing when every array views one ArrayBuffer (else leaves it
 * NULL: the arrays are looked up one by one, as before). */
static void loop_find_backing(struct maio_loop *l, const napi_value *arrays, unsigned narrays)
{
	napi_value first = NULL;
	size_t end = 0;
	for (unsigned i = 0; i < narrays; i++) {
		napi_typedarray_type t;
		size_t n, at;
		void *data;
		napi_value ab;
		if (napi_get_typedarray_info(l->env, arrays[i], &t, &n, &data, &ab, &at) != napi_ok || !data)
			return;
		bool same = true;
		if (first && (napi_strict_equals(l->env, first, ab, &same) != napi_ok || !same))
			return;
		first = ab;
		l->at[i] = at;
		l->len[i] = n;
		if (at + n * element_size(t) > end)
			end = at + n * element_size(t);
	}
	if (first && napi_create_reference(l->env, first, 1, &l->backing) == napi_ok)
		l->backing_end = end;
	else
		l->backing = NULL;
}

int maio_loop_init(struct maio_loop *l, napi_env env, const struct maio_loop_ops *ops,
		   napi_value cb, const napi_value *arrays, unsigned narrays)
{
	/* env and ops first: maio_loop_discard needs them whatever fails. */
	l->env = env;
	l->ops = ops;
	if (narrays > MAIO_LOOP_MAX_ARRAYS)
		return -EINVAL;
	if (napi_create_reference(env, cb, 1, &l->cb_ref) != napi_ok)
		return -ENOMEM;
	for (unsigned i = 0; i < narrays; i++) {
		if (napi_create_reference(env, arrays[i], 1, &l->arrays[i]) != napi_ok)
			return -ENOMEM;
		l->narrays = i + 1;
	}
	loop_find_backing(l, arrays, narrays);
	napi_value resource, name;
	napi_create_object(env, &resource);
	napi_create_string_utf8(env, ops->name, NAPI_AUTO_LENGTH, &name);
	if (napi_async_init(env, resource, name, &l->async_ctx) != napi_ok) {
		l->async_ctx = NULL;
		return -ENOMEM;
	}
	return 0;
}

int maio_loop_start(struct maio_loop *l, int fd, uv_poll_cb cb)
{
	uv_loop_t *loop;
	if (napi_get_uv_event_loop(l->env, &loop) != napi_ok)
		return -EINVAL;
	uv_poll_t *poll = malloc(sizeof(*poll));
	if (!poll)
		return -ENOMEM;
	int err = uv_poll_init(loop, poll, fd);
	if (err) {
		/* Never initialised: libuv does not know it, plain free. */
		free(poll);
		return err;
	}
	poll->data = l;
	l->poll = poll;
	uv_poll_start(poll, UV_READABLE, cb);
	uv_unref((uv_handle_t *)poll);
	l->poll_ref = false;
	return 0;
}

/* libuv is done with the handle: the env may finish, and the struct may go
 * if the JS handle has gone too. */
static void loop_on_poll_closed(uv_handle_t *handle)
{
	struct maio_loop *l = handle->data;
	free(handle);
	l->poll = NULL;
	if (l->cleanup) {
		napi_remove_async_cleanup_hook(l->cleanup);
		l->cleanup = NULL;
	}
	if (l->finalized)
		l->ops->free(l);
}

void maio_loop_close(struct maio_loop *l)
{
	if (l->closed)
		return;
	l->closed = true;
	if (l->poll) {
		uv_poll_stop(l->poll);
		uv_close((uv_handle_t *)l->poll, loop_on_poll_closed);
	} else if (l->cleanup) {
		/* No close callback will come to let the env go. */
		napi_remove_async_cleanup_hook(l->cleanup);
		l->cleanup = NULL;
	}
	l->ops->release(l);
	napi_env env = l->env;
	if (l->cb_ref)
		napi_delete_reference(env, l->cb_ref);
	l->cb_ref = NULL;
	for (unsigned i = 0; i < l->narrays; i++) {
		if (l->arrays[i])
			napi_delete_reference(env, l->arrays[i]);
		l->arrays[i] = NULL;
	}
	if (l->backing)
		napi_delete_reference(env, l->backing);
	l->backing = NULL;
	if (l->async_ctx)
		napi_async_destroy(env, l->async_ctx);
	l->async_ctx = NULL;
}

void maio_loop_discard(struct maio_loop *l)
{
	l->finalized = true; /* no JS handle will ever be finalized */
	maio_loop_close(l);
	if (!l->poll)
		l->ops->free(l);
}

static void loop_finalize(napi_env env, void *data, void *hint)
{
	maio_loop_discard(hint);
}

/* A worker thread exits with the handle open: close it; the env finishes
 * once the poll handle's close callback has removed this hook. */
static void loop_cleanup_hook(napi_async_cleanup_hook_handle handle, void *arg)
{
	maio_loop_close(arg);
}

napi_value maio_loop_wrap(struct maio_loop *l, const napi_type_tag *tag)
{
	napi_value handle = maio_wrap_handle(l->env, l, tag, loop_finalize, l);
	if (!handle) {
		maio_loop_discard(l);
		return NULL;
	}
	if (napi_add_async_cleanup_hook(l->env, loop_cleanup_hook, l, &l->cleanup) != napi_ok)
		l->cleanup = NULL;
	return handle;
}

struct maio_loop *maio_loop_arg(napi_env env, napi_value v, const char *what,
				const napi_type_tag *tag, const char *closed_msg)
{
	void *p;
	if (!maio_arg_handle(env, v, what, tag, &p))
		return NULL;
	struct maio_loop *l = p;
	if (l->closed) {
		maio_throw_plain(env, MAIO_ERR_CLOSED, "%s", closed_msg);
		return NULL;
	}
	return l;
}

napi_value maio_loop_napi_close(napi_env env, napi_callback_info info, const char *what,
				const napi_type_tag *tag)
{
	napi_value argv[1];
	void *p;
	if (!maio_args(env, info, 1, argv, NULL) || !maio_arg_handle(env, argv[0], what, tag, &p))
		return NULL;
	maio_loop_close(p);
	return NULL;
}

void maio_loop_call_js(struct maio_loop *l, unsigned n)
{
	napi_env env = l->env;
	napi_value cb, recv, argv[1], result;
	napi_get_reference_value(env, l->cb_ref, &cb);
	napi_get_global(env, &recv); /* napi_make_callback wants an object receiver */
	napi_create_uint32(env, n, &argv[0]);
	napi_status st = napi_make_callback(env, l->async_ctx, recv, cb, 1, argv, &result);
	if (st == napi_pending_exception) {
		napi_value err;
		napi_get_and_clear_last_exception(env, &err);
		napi_fatal_exception(env, err);
	}
}

void maio_loop_fatal(struct maio_loop *l, const char *msg)
{
	napi_value err = NULL;
	napi_create_string_utf8(l->env, msg, NAPI_AUTO_LENGTH, &err);
	napi_create_error(l->env, NULL, err, &err);
	napi_fatal_exception(l->env, err);
}
