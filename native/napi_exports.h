/*
 * The JavaScript-facing entry points, one group per native file, and the
 * type tags that mark each kind of handle. addon.c only lists these.
 */
#ifndef MAIO_NAPI_EXPORTS_H
#define MAIO_NAPI_EXPORTS_H

#include "napi_util.h"

extern const napi_type_tag maio_ring_tag;
extern const napi_type_tag maio_pool_tag;
extern const napi_type_tag maio_fallback_tag;

/* layout.c: maio.h's shared layout as a frozen object (the `layout` export). */
napi_value maio_layout(napi_env env);

/* probe.c */
MAIO_EXPORT(maio_napi_probe);

/* ring.c */
MAIO_EXPORT(maio_napi_ring_create);
MAIO_EXPORT(maio_napi_ring_submit);
MAIO_EXPORT(maio_napi_ring_register_pool);
MAIO_EXPORT(maio_napi_ring_unregister_pool);
MAIO_EXPORT(maio_napi_ring_ref);
MAIO_EXPORT(maio_napi_ring_close);
MAIO_EXPORT(maio_napi_ring_register_buf_ring);
MAIO_EXPORT(maio_napi_ring_unregister_buf_ring);

/* pool.c */
struct maio_pool;
/* Engines' pool tables (MAIO_MAX_POOLS slots), shared argument checks:
 * attach: an open pool handle and the index of a free slot -> the pool;
 * detach: the index of a used slot -> true. Both throw typed errors. */
struct maio_pool *maio_pool_arg_attach(napi_env env, napi_value v_pool, napi_value v_index,
				       struct maio_pool *const *slots, int32_t *index);
bool maio_pool_arg_detach(napi_env env, napi_value v_index, struct maio_pool *const *slots,
			  int32_t *index);
MAIO_EXPORT(maio_napi_pool_create);
MAIO_EXPORT(maio_napi_pool_strict_view);
MAIO_EXPORT(maio_napi_pool_detach_view);
MAIO_EXPORT(maio_napi_pool_close);
MAIO_EXPORT(maio_napi_pool_info);

/* sock.c */
MAIO_EXPORT(maio_napi_sock_open);
MAIO_EXPORT(maio_napi_sock_bind);
MAIO_EXPORT(maio_napi_sock_listen);
MAIO_EXPORT(maio_napi_sock_connect_sync);
MAIO_EXPORT(maio_napi_sock_accept);
MAIO_EXPORT(maio_napi_sock_shutdown);
MAIO_EXPORT(maio_napi_sock_close);
MAIO_EXPORT(maio_napi_sock_set_int);
MAIO_EXPORT(maio_napi_sock_get_int);
MAIO_EXPORT(maio_napi_sock_set_bytes);
MAIO_EXPORT(maio_napi_sock_get_bytes);
MAIO_EXPORT(maio_napi_sock_name);
MAIO_EXPORT(maio_napi_sock_error);
MAIO_EXPORT(maio_napi_sock_disconnect);

/* pipe.c */
MAIO_EXPORT(maio_napi_pipe_open);
MAIO_EXPORT(maio_napi_fd_set_blocking);

/* sendfile.c */
extern const napi_type_tag maio_sendfile_tag;
MAIO_EXPORT(maio_napi_sendfile_start);
MAIO_EXPORT(maio_napi_sendfile_abort);
MAIO_EXPORT(maio_napi_sendfile_stats);

/* fallback.c */
MAIO_EXPORT(maio_napi_fallback_create);
MAIO_EXPORT(maio_napi_fallback_close);
MAIO_EXPORT(maio_napi_fallback_attach_pool);
MAIO_EXPORT(maio_napi_fallback_detach_pool);
MAIO_EXPORT(maio_napi_fallback_watch);
MAIO_EXPORT(maio_napi_fallback_ref);
MAIO_EXPORT(maio_napi_fallback_wake);
MAIO_EXPORT(maio_napi_fallback_recv);
MAIO_EXPORT(maio_napi_fallback_send);
MAIO_EXPORT(maio_napi_fallback_send_buf);
MAIO_EXPORT(maio_napi_fallback_send_zc);
MAIO_EXPORT(maio_napi_fallback_zc_enable);
MAIO_EXPORT(maio_napi_fallback_zc_notes);
MAIO_EXPORT(maio_napi_fallback_accept);
MAIO_EXPORT(maio_napi_fallback_connect);
MAIO_EXPORT(maio_napi_fallback_connect_result);
MAIO_EXPORT(maio_napi_fallback_shutdown);
MAIO_EXPORT(maio_napi_fallback_close_fd);
MAIO_EXPORT(maio_napi_fallback_recvmsg);
MAIO_EXPORT(maio_napi_fallback_sendmsg);
MAIO_EXPORT(maio_napi_fallback_sendmsg_zc);
MAIO_EXPORT(maio_napi_fallback_sendmmsg);

/* affinity.c */
MAIO_EXPORT(maio_napi_thread_set_affinity);
MAIO_EXPORT(maio_napi_thread_get_affinity);
MAIO_EXPORT(maio_napi_thread_id);

/* reuseport.c */
MAIO_EXPORT(maio_napi_sock_attach_reuseport_cpu);

#endif
