/* Module initialisation: the export table and the layout, nothing else. */
#include "napi_exports.h"

/* Type tags: random 128-bit values that mark our externals. */
const napi_type_tag maio_ring_tag = {0x6d61696f72696e67ULL, 0x9c3e41f2a7b05d11ULL};
const napi_type_tag maio_pool_tag = {0x6d61696f706f6f6cULL, 0x4b17e2d9c80a3f65ULL};
const napi_type_tag maio_fallback_tag = {0x6d61696f65706f6cULL, 0xd3a58e1c7f40b269ULL};

static napi_value init(napi_env env, napi_value exports)
{
	const napi_property_descriptor fns[] = {
#define FN(js, c) {js, NULL, c, NULL, NULL, NULL, napi_enumerable, NULL}
		FN("probe", maio_napi_probe),
		FN("ringCreate", maio_napi_ring_create),
		FN("ringSubmit", maio_napi_ring_submit),
		FN("ringRegisterPool", maio_napi_ring_register_pool),
		FN("ringUnregisterPool", maio_napi_ring_unregister_pool),
		FN("ringRef", maio_napi_ring_ref),
		FN("ringClose", maio_napi_ring_close),
		FN("ringRegisterBufRing", maio_napi_ring_register_buf_ring),
		FN("ringUnregisterBufRing", maio_napi_ring_unregister_buf_ring),
		FN("poolCreate", maio_napi_pool_create),
		FN("poolStrictView", maio_napi_pool_strict_view),
		FN("poolDetachView", maio_napi_pool_detach_view),
		FN("poolClose", maio_napi_pool_close),
		FN("poolInfo", maio_napi_pool_info),
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
		FN("sockDisconnect", maio_napi_sock_disconnect),
		FN("sockAttachReuseportCpu", maio_napi_sock_attach_reuseport_cpu),
		FN("threadSetAffinity", maio_napi_thread_set_affinity),
		FN("threadGetAffinity", maio_napi_thread_get_affinity),
		FN("threadId", maio_napi_thread_id),
		FN("pipeOpen", maio_napi_pipe_open),
		FN("fdSetBlocking", maio_napi_fd_set_blocking),
		FN("sendfileStart", maio_napi_sendfile_start),
		FN("sendfileAbort", maio_napi_sendfile_abort),
		FN("sendfileStats", maio_napi_sendfile_stats),
		FN("fallbackCreate", maio_napi_fallback_create),
		FN("fallbackClose", maio_napi_fallback_close),
		FN("fallbackAttachPool", maio_napi_fallback_attach_pool),
		FN("fallbackDetachPool", maio_napi_fallback_detach_pool),
		FN("fallbackWatch", maio_napi_fallback_watch),
		FN("fallbackRef", maio_napi_fallback_ref),
		FN("fallbackWake", maio_napi_fallback_wake),
		FN("fallbackRecv", maio_napi_fallback_recv),
		FN("fallbackSend", maio_napi_fallback_send),
		FN("fallbackSendBuf", maio_napi_fallback_send_buf),
		FN("fallbackSendZc", maio_napi_fallback_send_zc),
		FN("fallbackZcEnable", maio_napi_fallback_zc_enable),
		FN("fallbackZcNotes", maio_napi_fallback_zc_notes),
		FN("fallbackAccept", maio_napi_fallback_accept),
		FN("fallbackConnect", maio_napi_fallback_connect),
		FN("fallbackConnectResult", maio_napi_fallback_connect_result),
		FN("fallbackShutdown", maio_napi_fallback_shutdown),
		FN("fallbackCloseFd", maio_napi_fallback_close_fd),
		FN("fallbackRecvmsg", maio_napi_fallback_recvmsg),
		FN("fallbackSendmsg", maio_napi_fallback_sendmsg),
		FN("fallbackSendmsgZc", maio_napi_fallback_sendmsg_zc),
		FN("fallbackSendmmsg", maio_napi_fallback_sendmmsg),
#undef FN
	};
	napi_define_properties(env, exports, sizeof(fns) / sizeof(fns[0]), fns);
	const napi_property_descriptor data[] = {
		{"layout", NULL, NULL, NULL, NULL, maio_layout(env), napi_enumerable, NULL},
	};
	napi_define_properties(env, exports, 1, data);
	return exports;
}

NAPI_MODULE_INIT()
{
	return init(env, exports);
}
