/*
 * Node-API helpers shared by the native files: argument validation that
 * throws typed errors, errno errors shaped like node:net's, and small
 * property setters. Every exported entry point validates its arguments
 * through these before touching the kernel.
 */
#ifndef MAIO_NAPI_UTIL_H
#define MAIO_NAPI_UTIL_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/* Error codes thrown by native code; the TypeScript error classes use the same. */
#define MAIO_ERR_INVALID_ARG "ERR_MAIO_INVALID_ARG"
#define MAIO_ERR_OUT_OF_RANGE "ERR_MAIO_OUT_OF_RANGE"
#define MAIO_ERR_INVALID_HANDLE "ERR_MAIO_INVALID_HANDLE"
#define MAIO_ERR_CLOSED "ERR_MAIO_CLOSED"
#define MAIO_ERR_INVALID_DESCRIPTOR "ERR_MAIO_INVALID_DESCRIPTOR"

/* Throw TypeError / RangeError with a code. Always return NULL for `return maio_throw...`. */
napi_value maio_throw_type(napi_env env, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
napi_value maio_throw_range(napi_env env, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
napi_value maio_throw_plain(napi_env env, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Throw an Error with code = errno name ('ENOMEM'), errno = -err, syscall. */
napi_value maio_throw_errno(napi_env env, int err, const char *syscall);
/* Build (not throw) such an errno error. */
napi_value maio_errno_error(napi_env env, int err, const char *syscall);
const char *maio_errno_name(int err);

/* Argument fetching: return false after throwing on a bad argument. `what`
 * names the argument in the message. */
bool maio_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv,
	       napi_value *this_arg);
/* The one argument of a create call: an options object. */
bool maio_args_options(napi_env env, napi_callback_info info, napi_value *opts);
bool maio_arg_int64(napi_env env, napi_value v, const char *what, int64_t min,
		    int64_t max, int64_t *out);
bool maio_arg_int32(napi_env env, napi_value v, const char *what, int32_t min,
		    int32_t max, int32_t *out);
bool maio_arg_bool(napi_env env, napi_value v, const char *what, bool *out);
bool maio_arg_function(napi_env env, napi_value v, const char *what);
/* A typed array of the given type; returns its data and element count. */
bool maio_arg_typedarray(napi_env env, napi_value v, const char *what,
			 napi_typedarray_type type, void **data, size_t *length);
/* An external created by maio_wrap_handle with the same tag. Throws
 * ERR_MAIO_INVALID_HANDLE for anything else. */
bool maio_arg_handle(napi_env env, napi_value v, const char *what,
		     const napi_type_tag *tag, void **out);
napi_value maio_wrap_handle(napi_env env, void *ptr, const napi_type_tag *tag,
			    napi_finalize finalize, void *hint);

/* Optional object properties; absent or undefined leaves *out unchanged. */
bool maio_opt_int64(napi_env env, napi_value obj, const char *key, int64_t min,
		    int64_t max, int64_t *out);
bool maio_opt_bool(napi_env env, napi_value obj, const char *key, bool *out);
/* Required option properties: throw "options.<key> is required" when absent. */
bool maio_opt_required(napi_env env, napi_value obj, const char *key, napi_value *out);
/* A required typed array of `type` with at least `min` elements, a multiple
 * of `multiple`; *val and *len (elements) on success. */
bool maio_opt_typedarray(napi_env env, napi_value obj, const char *key,
			 napi_typedarray_type type, size_t min, size_t multiple,
			 napi_value *val, size_t *len);

/* A number result (counts, -errno, fds). */
napi_value maio_int(napi_env env, int64_t v);

/* Property setters for result objects. */
void maio_set_int(napi_env env, napi_value obj, const char *key, int64_t v);
void maio_set_double(napi_env env, napi_value obj, const char *key, double v);
void maio_set_bool(napi_env env, napi_value obj, const char *key, bool v);
void maio_set_string(napi_env env, napi_value obj, const char *key, const char *v);
void maio_set_value(napi_env env, napi_value obj, const char *key, napi_value v);

#define MAIO_EXPORT(name) napi_value name(napi_env env, napi_callback_info info)

#endif
