/*
 * The addon's `layout` export: maio.h's shared layout as a frozen object, so
 * src/core/native.ts can check its TypeScript copy once, when the binding
 * loads. An addon built from another maio.h than the JS was written for then
 * fails loudly instead of reading descriptors at the wrong indexes.
 *
 * Values are what JS sees in the shared arrays: flags as int32 (bit 31
 * negative), as they arrive in the completion array.
 */
#define _GNU_SOURCE
#include "maio.h"
#include "napi_exports.h"

#include <fcntl.h> /* SPLICE_F_* */

struct layout_entry {
	const char *key;
	int64_t value;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct layout_entry desc[] = {
	{"op", MAIO_D_OP},           {"fd", MAIO_D_FD},           {"userData", MAIO_D_USER_DATA},
	{"len", MAIO_D_LEN},         {"pool", MAIO_D_POOL},       {"bufOff", MAIO_D_BUF_OFF},
	{"msgFlags", MAIO_D_MSG_FLAGS}, {"ioprio", MAIO_D_IOPRIO}, {"bufGroup", MAIO_D_BUF_GROUP},
	{"auxOff", MAIO_D_AUX_OFF},  {"auxLen", MAIO_D_AUX_LEN},  {"offLo", MAIO_D_OFF_LO},
	{"offHi", MAIO_D_OFF_HI},    {"sqeFlags", MAIO_D_SQE_FLAGS}, {"fdOut", MAIO_D_FD_OUT},
};

static const struct layout_entry ops[] = {
	{"nop", MAIO_OP_NOP},         {"send", MAIO_OP_SEND},       {"sendZc", MAIO_OP_SEND_ZC},
	{"recv", MAIO_OP_RECV},       {"recvMulti", MAIO_OP_RECV_MULTI}, {"accept", MAIO_OP_ACCEPT},
	{"connect", MAIO_OP_CONNECT}, {"close", MAIO_OP_CLOSE},     {"shutdown", MAIO_OP_SHUTDOWN},
	{"cancel", MAIO_OP_CANCEL},   {"splice", MAIO_OP_SPLICE},   {"provide", MAIO_OP_PROVIDE},
	{"sendv", MAIO_OP_SENDV},     {"recvmsgMulti", MAIO_OP_RECVMSG_MULTI},
	{"sendmsg", MAIO_OP_SENDMSG}, {"sendmsgZc", MAIO_OP_SENDMSG_ZC},
	{"sendBuf", MAIO_OP_SEND_BUF},
};

static const struct layout_entry cqe[] = {
	{"userData", MAIO_C_USER_DATA}, {"res", MAIO_C_RES}, {"flags", MAIO_C_FLAGS},
};

static const struct layout_entry ring_stat[] = {
	{"enters", MAIO_RS_ENTERS},          {"submitted", MAIO_RS_SUBMITTED},
	{"completed", MAIO_RS_COMPLETED},    {"submitCalls", MAIO_RS_SUBMIT_CALLS},
	{"reapBatches", MAIO_RS_REAP_BATCHES}, {"inflight", MAIO_RS_INFLIGHT},
	{"cqOverflow", MAIO_RS_CQ_OVERFLOW}, {"sqFull", MAIO_RS_SQ_FULL},
	{"cqFlushes", MAIO_RS_CQ_FLUSHES},   {"batchWaits", MAIO_RS_BATCH_WAITS},
	{"held", MAIO_RS_HELD},              {"wakeups", MAIO_RS_WAKEUPS},
	{"emptyWakeups", MAIO_RS_EMPTY_WAKEUPS},
};

static const struct layout_entry cqe_flags[] = {
	{"buffer", (int32_t)IORING_CQE_F_BUFFER},
	{"more", (int32_t)IORING_CQE_F_MORE},
	{"sockNonempty", (int32_t)IORING_CQE_F_SOCK_NONEMPTY},
	{"notif", (int32_t)IORING_CQE_F_NOTIF},
	{"bufMore", (int32_t)IORING_CQE_F_BUF_MORE},
};

static const struct layout_entry scalars[] = {
	{"descInts", MAIO_DESC_INTS},
	{"cqeInts", MAIO_CQE_INTS},
	{"ringStats", MAIO_RS_COUNT},
	{"opIdSlotBits", MAIO_OPID_SLOT_BITS},
	{"opIdGenBits", MAIO_OPID_GEN_BITS},
	{"maxPools", MAIO_MAX_POOLS},
	{"maxBufRings", MAIO_MAX_BUF_RINGS},
	{"bufRingMaxEntries", MAIO_BUF_RING_MAX_ENTRIES},
	{"batchWaitMaxUs", MAIO_BATCH_WAIT_MAX_US},
	{"sendvMaxSegs", MAIO_SENDV_MAX_SEGS},
	{"sendvMaxLen", MAIO_SENDV_MAX_LEN},
	{"auxAddrMax", MAIO_AUX_ADDR_MAX},
	{"sendmsgNameMax", MAIO_SENDMSG_NAME_MAX},
	{"sendmsgMaxSegs", MAIO_SENDMSG_MAX_SEGS},
	{"recvmsgOut", MAIO_RECVMSG_OUT},
	{"recvmsgCtlMax", MAIO_RECVMSG_CTL_MAX},
	{"solUdp", MAIO_SOL_UDP},
	{"udpSegment", MAIO_UDP_SEGMENT},
	{"udpSegmentNone", MAIO_UDP_SEGMENT_NONE},
	{"udpGro", MAIO_UDP_GRO},
	{"sockoptMax", MAIO_SOCKOPT_MAX},
	{"setupCoop", MAIO_SETUP_COOP},
	{"setupDefer", MAIO_SETUP_DEFER},
	{"cqeBufferShift", IORING_CQE_BUFFER_SHIFT},
	{"notifUsageZcCopied", (int32_t)IORING_NOTIF_USAGE_ZC_COPIED},
	{"iosqeIoLink", IOSQE_IO_LINK},
	{"spliceFMove", SPLICE_F_MOVE},
	{"spliceFNonblock", SPLICE_F_NONBLOCK},
	{"spliceFMore", SPLICE_F_MORE},
};

/* Fills `obj` with the entries and freezes it. */
static napi_value layout_group(napi_env env, napi_value obj, const struct layout_entry *e,
			       size_t n)
{
	for (size_t i = 0; i < n; i++)
		maio_set_int(env, obj, e[i].key, e[i].value);
	napi_object_freeze(env, obj);
	return obj;
}

static napi_value layout_sub(napi_env env, const struct layout_entry *e, size_t n)
{
	napi_value obj;
	napi_create_object(env, &obj);
	return layout_group(env, obj, e, n);
}

napi_value maio_layout(napi_env env)
{
	napi_value out;
	napi_create_object(env, &out);
	maio_set_value(env, out, "desc", layout_sub(env, desc, N(desc)));
	maio_set_value(env, out, "op", layout_sub(env, ops, N(ops)));
	maio_set_value(env, out, "cqe", layout_sub(env, cqe, N(cqe)));
	maio_set_value(env, out, "ringStat", layout_sub(env, ring_stat, N(ring_stat)));
	maio_set_value(env, out, "cqeFlags", layout_sub(env, cqe_flags, N(cqe_flags)));
	return layout_group(env, out, scalars, N(scalars));
}
