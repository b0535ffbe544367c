/* Module initialisation: the export table, nothing else. */
#include "napi_exports.h"

/* Type tags: random 128-bit values that mark our externals. */
const napi_type_tag maio_ring_tag = {0x6d61696f72696e67ULL, 0x9c3e41f2a7b05d11ULL};
const napi_type_tag maio_pool_tag = {0x6d61696f706f6f6cULL, 0x4b17e2d9c80a3f65ULL};

static napi_value init(napi_env env, napi_value exports)
{
	const napi_property_descriptor fns[] = {
#define FN(js, c) {js, NULL, c, NULL, NULL, NULL, napi_enumerable, NULL}
		FN("probe", maio_napi_probe),
		FN("ringCreate", maio_napi_ring_create),
		FN("ringSubmit", maio_napi_ring_submit),
		FN("ringRegisterPool", maio_napi_ring_register_pool),
		FN("ringUnregisterPool", maio_napi_ring_unregister_pool),
		FN("ringClose", maio_napi_ring_close),
		FN("ringRegisterBufRing", maio_napi_ring_register_buf_ring),
		FN("ringUnregisterBufRing", maio_napi_ring_unregister_buf_ring),
		FN("poolCreate", maio_napi_pool_create),
		FN("poolStrictView", maio_napi_pool_strict_view),
		FN("poolDetachView", maio_napi_pool_detach_view),
		FN("poolClose", maio_napi_pool_close),
		FN("sockOpen", maio_napi_sock_open),
		FN("sockBind", maio_napi_sock_bind),
		FN("sockListen", maio_napi_sock_listen),
		FN("sockConnectSync", maio_napi_sock_connect_sync),
		FN("sockAccept", maio_napi_sock_accept),
		FN("sockShutdown", maio_napi_sock_shutdown),
		FN("sockClose", maio_napi_sock_close),
		FN("sockSetInt", maio_napi_sock_set_int),
		FN("sockGetInt", maio_napi_sock_get_int),
		FN("sockSetBytes", maio_napi_sock_set_bytes),
		FN("sockGetBytes", maio_napi_sock_get_bytes),
		FN("sockName", maio_napi_sock_name),
		FN("sockError", maio_napi_sock_error),
		FN("pipeOpen", maio_napi_pipe_open),
		FN("fdSetBlocking", maio_napi_fd_set_blocking),
		FN("sendfileSync", maio_napi_sendfile_sync),
#undef FN
	};
	napi_define_properties(env, exports, sizeof(fns) / sizeof(fns[0]), fns);
	return exports;
}

NAPI_MODULE_INIT()
{
	return init(env, exports);
}
