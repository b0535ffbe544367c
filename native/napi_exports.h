/*
 * The JavaScript-facing entry points, one group per native file, and the
 * type tags that mark each kind of handle. addon.c only lists these.
 */
#ifndef MAIO_NAPI_EXPORTS_H
#define MAIO_NAPI_EXPORTS_H

#include "napi_util.h"

extern const napi_type_tag maio_ring_tag;
extern const napi_type_tag maio_pool_tag;

/* probe.c */
MAIO_EXPORT(maio_napi_probe);

/* ring.c */
MAIO_EXPORT(maio_napi_ring_create);
MAIO_EXPORT(maio_napi_ring_submit);
MAIO_EXPORT(maio_napi_ring_register_pool);
MAIO_EXPORT(maio_napi_ring_unregister_pool);
MAIO_EXPORT(maio_napi_ring_close);

/* pool.c */
MAIO_EXPORT(maio_napi_pool_create);
MAIO_EXPORT(maio_napi_pool_strict_view);
MAIO_EXPORT(maio_napi_pool_detach_view);
MAIO_EXPORT(maio_napi_pool_close);

#endif
