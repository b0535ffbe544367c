/* Node-API helpers: validation, typed errors, property setters. */
#define _GNU_SOURCE
#include "napi_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static napi_value throw_with(napi_env env,
			     napi_status (*make)(napi_env, napi_value, napi_value, napi_value *),
			     const char *code, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	napi_value jcode, jmsg, err;
	napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
	napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
	make(env, jcode, jmsg, &err);
	napi_throw(env, err);
	return NULL;
}

#define DEFINE_THROW(fn, maker)                                                    \
	napi_value fn(napi_env env, const char *code, const char *fmt, ...)        \
	{                                                                          \
		va_list ap;                                                        \
		va_start(ap, fmt);                                                 \
		throw_with(env, maker, code, fmt, ap);                             \
		va_end(ap);                                                        \
		return NULL;                                                       \
	}
DEFINE_THROW(maio_throw_type, napi_create_type_error)
DEFINE_THROW(maio_throw_range, napi_create_range_error)
DEFINE_THROW(maio_throw_plain, napi_create_error)

const char *maio_errno_name(int err)
{
	switch (err) {
#define E(x) case x: return #x;
	E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES)
	E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(EINVAL) E(ENFILE) E(EMFILE)
	E(ENOSPC) E(EPIPE) E(ENOSYS) E(EOPNOTSUPP) E(EADDRINUSE) E(EADDRNOTAVAIL)
	E(ENETDOWN) E(ENETUNREACH) E(ECONNABORTED) E(ECONNRESET) E(ENOBUFS)
	E(EISCONN) E(ENOTCONN) E(ETIMEDOUT) E(ECONNREFUSED) E(EHOSTUNREACH)
	E(EALREADY) E(EINPROGRESS) E(ECANCELED) E(ENOTSOCK) E(EPROTONOSUPPORT)
	E(EAFNOSUPPORT) E(EOVERFLOW) E(ERANGE) E(EMSGSIZE) E(ESPIPE) E(EISDIR)
	E(ENOTDIR) E(EFBIG) E(EROFS) E(ENXIO) E(E2BIG) E(ESRCH) E(ECHILD)
#undef E
	default: return "EUNKNOWN";
	}
}

napi_value maio_errno_error(napi_env env, int err, const char *syscall)
{
	if (err < 0)
		err = -err;
	char msg[256];
	snprintf(msg, sizeof(msg), "%s %s: %s", syscall, maio_errno_name(err), strerror(err));
	napi_value jcode, jmsg, e;
	napi_create_string_utf8(env, maio_errno_name(err), NAPI_AUTO_LENGTH, &jcode);
	napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
	napi_create_error(env, jcode, jmsg, &e);
	/* node:net's shape: errno is negative, like libuv's. */
	maio_set_int(env, e, "errno", -err);
	maio_set_string(env, e, "syscall", syscall);
	return e;
}

napi_value maio_throw_errno(napi_env env, int err, const char *syscall)
{
	napi_throw(env, maio_errno_error(env, err, syscall));
	return NULL;
}

bool maio_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
	       napi_value *this_arg)
{
	size_t argc = want;
	if (napi_get_cb_info(env, info, &argc, argv, this_arg, NULL) != napi_ok) {
		maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not read arguments");
		return false;
	}
	if (argc < want) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "expected %zu arguments, got %zu",
				want, argc);
		return false;
	}
	return true;
}

bool maio_args_options(napi_env env, napi_callback_info info, napi_value *opts)
{
	if (!maio_args(env, info, 1, opts, NULL))
		return false;
	napi_valuetype t;
	napi_typeof(env, *opts, &t);
	if (t != napi_object) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "options must be an object");
		return false;
	}
	return true;
}

bool maio_arg_int64(napi_env env, napi_value v, const char *what, int64_t min,
		    int64_t max, int64_t *out)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	if (t != napi_number) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "%s must be a number", what);
		return false;
	}
	double d;
	napi_get_value_double(env, v, &d);
	/* Out of int64's range (Infinity too) is a range error; the cast below
	 * would be undefined behaviour there. */
	if (d >= 9223372036854775808.0 || d < -9223372036854775808.0) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "%s must be in [%lld, %lld], got %g",
				 what, (long long)min, (long long)max, d);
		return false;
	}
	if (d != d || d != (double)(int64_t)d) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "%s must be an integer", what);
		return false;
	}
	int64_t i = (int64_t)d;
	if (i < min || i > max) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
				 "%s must be in [%lld, %lld], got %lld", what, (long long)min,
				 (long long)max, (long long)i);
		return false;
	}
	*out = i;
	return true;
}

bool maio_arg_int32(napi_env env, napi_value v, const char *what, int32_t min,
		    int32_t max, int32_t *out)
{
	int64_t i;
	if (!maio_arg_int64(env, v, what, min, max, &i))
		return false;
	*out = (int32_t)i;
	return true;
}

bool maio_arg_bool(napi_env env, napi_value v, const char *what, bool *out)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	if (t != napi_boolean) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "%s must be a boolean", what);
		return false;
	}
	napi_get_value_bool(env, v, out);
	return true;
}

bool maio_arg_function(napi_env env, napi_value v, const char *what)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	if (t != napi_function) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "%s must be a function", what);
		return false;
	}
	return true;
}

bool maio_arg_typedarray(napi_env env, napi_value v, const char *what,
			 napi_typedarray_type type, void **data, size_t *length)
{
	bool is;
	napi_is_typedarray(env, v, &is);
	if (!is) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "%s must be a typed array", what);
		return false;
	}
	napi_typedarray_type t;
	napi_get_typedarray_info(env, v, &t, length, data, NULL, NULL);
	if (t != type) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "%s has the wrong element type", what);
		return false;
	}
	return true;
}

bool maio_arg_handle(napi_env env, napi_value v, const char *what,
		     const napi_type_tag *tag, void **out)
{
	napi_valuetype t;
	napi_typeof(env, v, &t);
	bool ok = false;
	if (t == napi_external)
		napi_check_object_type_tag(env, v, tag, &ok);
	if (!ok) {
		maio_throw_type(env, MAIO_ERR_INVALID_HANDLE, "%s is not a valid handle", what);
		return false;
	}
	napi_get_value_external(env, v, out);
	return true;
}

napi_value maio_wrap_handle(napi_env env, void *ptr, const napi_type_tag *tag,
			    napi_finalize finalize, void *hint)
{
	napi_value ext;
	if (napi_create_external(env, ptr, finalize, hint, &ext) != napi_ok)
		return NULL;
	napi_type_tag_object(env, ext, tag);
	return ext;
}

static bool get_opt(napi_env env, napi_value obj, const char *key, napi_value *v)
{
	napi_valuetype t;
	napi_typeof(env, obj, &t);
	if (t != napi_object)
		return false;
	bool has = false;
	napi_has_named_property(env, obj, key, &has);
	if (!has)
		return false;
	napi_get_named_property(env, obj, key, v);
	napi_typeof(env, *v, &t);
	return t != napi_undefined;
}

bool maio_opt_int64(napi_env env, napi_value obj, const char *key, int64_t min,
		    int64_t max, int64_t *out)
{
	napi_value v;
	if (!get_opt(env, obj, key, &v))
		return true;
	return maio_arg_int64(env, v, key, min, max, out);
}

bool maio_opt_bool(napi_env env, napi_value obj, const char *key, bool *out)
{
	napi_value v;
	if (!get_opt(env, obj, key, &v))
		return true;
	return maio_arg_bool(env, v, key, out);
}

bool maio_opt_required(napi_env env, napi_value obj, const char *key, napi_value *out)
{
	bool has = false;
	napi_has_named_property(env, obj, key, &has);
	if (!has) {
		maio_throw_type(env, MAIO_ERR_INVALID_ARG, "options.%s is required", key);
		return false;
	}
	napi_get_named_property(env, obj, key, out);
	return true;
}

bool maio_opt_typedarray(napi_env env, napi_value obj, const char *key,
			 napi_typedarray_type type, size_t min, size_t multiple,
			 napi_value *val, size_t *len)
{
	void *data;
	char what[64];
	snprintf(what, sizeof(what), "options.%s", key);
	if (!maio_opt_required(env, obj, key, val) ||
	    !maio_arg_typedarray(env, *val, what, type, &data, len))
		return false;
	if (*len < min || *len % multiple) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
				 "%s must have at least %zu elements and a multiple of %zu, got %zu",
				 what, min, multiple, *len);
		return false;
	}
	return true;
}

napi_value maio_int(napi_env env, int64_t v)
{
	napi_value r;
	napi_create_int64(env, v, &r);
	return r;
}

void maio_set_value(napi_env env, napi_value obj, const char *key, napi_value v)
{
	napi_set_named_property(env, obj, key, v);
}

void maio_set_int(napi_env env, napi_value obj, const char *key, int64_t v)
{
	napi_value jv;
	napi_create_int64(env, v, &jv);
	maio_set_value(env, obj, key, jv);
}

void maio_set_double(napi_env env, napi_value obj, const char *key, double v)
{
	napi_value jv;
	napi_create_double(env, v, &jv);
	maio_set_value(env, obj, key, jv);
}

void maio_set_bool(napi_env env, napi_value obj, const char *key, bool v)
{
	napi_value jv;
	napi_get_boolean(env, v, &jv);
	maio_set_value(env, obj, key, jv);
}

void maio_set_string(napi_env env, napi_value obj, const char *key, const char *v)
{
	napi_value jv;
	napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &jv);
	maio_set_value(env, obj, key, jv);
}
