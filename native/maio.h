/*
 * maio native core: the one header shared by every native file, and the one
 * source of the layout JS and native share (descriptors, completions, op
 * codes, op ids, stats, limits). src/core/native.ts keeps a TypeScript copy;
 * layout.c exports these values as the addon's frozen `layout` object and
 * native.ts refuses to load an addon whose layout differs from its copy.
 *
 * The native core only reaches the kernel: it probes io_uring, owns the ring's
 * shared memory, maps the I/O page pool, and turns operation descriptors that
 * JavaScript wrote into a shared Int32Array into submission queue entries.
 * Everything else (op tables, ownership, sockets, policy) is TypeScript.
 *
 * Conventions (after liburing): functions are maio_<object>_<verb>, return 0
 * or a count on success and -errno on failure, and never print.
 */
#ifndef MAIO_H
#define MAIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/io_uring.h>
#include <sys/socket.h>

/* ---- io_uring constants newer than the installed 6.1 UAPI headers ------- */

#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP (1U << 14)
#endif
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4) /* 6.10 */
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4) /* 6.12: incremental buffer not used up */
#endif
#ifndef IOU_PBUF_RING_MMAP
#define IOU_PBUF_RING_MMAP 1
#endif
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2 /* 6.12 */
#endif
#ifndef IORING_FEAT_REG_REG_RING
#define IORING_FEAT_REG_REG_RING (1U << 13)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
/* Opcodes after IORING_OP_SEND_ZC (47), numbered as in the kernel. */
#define MAIO_IORING_OP_SENDMSG_ZC 48
#define MAIO_IORING_OP_READ_MULTISHOT 49
#define MAIO_IORING_OP_WAITID 50
#define MAIO_IORING_OP_FUTEX_WAIT 51
#define MAIO_IORING_OP_FUTEX_WAKE 52
#define MAIO_IORING_OP_FUTEX_WAITV 53
#define MAIO_IORING_OP_FIXED_FD_INSTALL 54
#define MAIO_IORING_OP_FTRUNCATE 55
#define MAIO_IORING_OP_BIND 56
#define MAIO_IORING_OP_LISTEN 57
#define MAIO_IORING_OP_RECV_ZC 58
/* 6.15: came with SENDMSG_ZC from vectored registered buffers (iovecs that
 * point into a fixed buffer); its presence says SENDMSG_ZC takes them. */
#define MAIO_IORING_OP_WRITEV_FIXED 61

/* ---- Operation descriptors: JS -> native ---------------------------------
 *
 * JS writes one descriptor per operation into a shared Int32Array (the
 * "submit array") and calls maio_ring_submit once per event-loop turn with
 * the count. Native validates each descriptor, fills one SQE for it and makes
 * a single io_uring_enter for the batch. Field indexes, in int32 units: */
#define MAIO_DESC_INTS 16 /* 64 bytes per descriptor */
enum maio_desc_field {
	MAIO_D_OP = 0,        /* enum maio_op */
	MAIO_D_FD = 1,        /* file descriptor, or -1 */
	MAIO_D_USER_DATA = 2, /* op id chosen by JS, echoed in the completion */
	MAIO_D_LEN = 3,       /* byte count */
	MAIO_D_POOL = 4,      /* pool id of the buffer (ring's fixed-buffer index), or -1 */
	MAIO_D_BUF_OFF = 5,   /* byte offset of the buffer within its pool */
	MAIO_D_MSG_FLAGS = 6, /* MSG_* flags for send/recv, accept4 flags for accept */
	MAIO_D_IOPRIO = 7,    /* op-specific io_uring flags carried in sqe->ioprio */
	MAIO_D_BUF_GROUP = 8, /* provided-buffer group id (recv with buffer select) */
	MAIO_D_AUX_OFF = 9,   /* byte offset into the aux array (sockaddr etc.), or -1 */
	MAIO_D_AUX_LEN = 10,  /* byte length of the aux data */
	/* RECV_MULTI has no aux data: AUX_LEN is its total byte limit (0: none). */
	MAIO_D_OFF_LO = 11,   /* 64-bit file offset, low half */
	MAIO_D_OFF_HI = 12,   /* 64-bit file offset, high half */
	MAIO_D_SQE_FLAGS = 13, /* IOSQE_* flags JS may set (IO_LINK, ...) */
	MAIO_D_FD_OUT = 14,   /* SPLICE: the output fd (MAIO_D_FD is the input) */
	MAIO_D_RESERVED1 = 15,
};

/* The operations JS may ask for. Only these are ever put on the ring. */
enum maio_op {
	MAIO_OP_NOP = 0,
	MAIO_OP_SEND = 1,       /* plain send from a pool buffer */
	MAIO_OP_SEND_ZC = 2,    /* zero-copy send from a registered pool buffer */
	MAIO_OP_RECV = 3,       /* recv into a pool buffer */
	MAIO_OP_RECV_MULTI = 4, /* multishot recv with provided buffers (buf group) */
	MAIO_OP_ACCEPT = 5,     /* accept; IOPRIO may carry IORING_ACCEPT_MULTISHOT */
	MAIO_OP_CONNECT = 6,    /* connect to the sockaddr in aux */
	MAIO_OP_CLOSE = 7,
	MAIO_OP_SHUTDOWN = 8,   /* LEN carries how (SHUT_WR, ...) */
	MAIO_OP_CANCEL = 9,     /* cancel the op whose user_data is in LEN */
	MAIO_OP_SPLICE = 10,    /* splice FD -> FD_OUT, LEN bytes; MSG_FLAGS carries SPLICE_F_*;
				 * OFF_LO/HI: offset into FD, or -1 (both halves) for pipes and
				 * sockets; the output offset is always none (pipe or socket). */
	/* Not an SQE: adds one pool buffer to a provided-buffer ring, inside
	 * ringSubmit. POOL, BUF_OFF, LEN name the buffer, BUF_GROUP the ring
	 * (registered with ringRegisterBufRing), USER_DATA the buffer id
	 * (0..65535) the kernel reports in the recv CQE (flags >> 16). */
	MAIO_OP_PROVIDE = 11,
	/* Plain send of several pieces of one pool in one IORING_OP_SENDMSG:
	 * POOL names the pool, AUX_OFF (4-byte aligned) / AUX_LEN the segment
	 * list in the aux array: AUX_LEN / 8 pairs of int32 (byte offset in the
	 * pool, byte length), 1..MAIO_SENDV_MAX_SEGS of them, each inside the
	 * pool; LEN is their sum. Native copies the list at submit and builds
	 * the msghdr and iovec in ring memory that lives until the next submit:
	 * the kernel copies both while preparing the SQE, inside the enter
	 * (IORING_FEAT_SUBMIT_STABLE; rings without it, or with SQPOLL, refuse
	 * the op). The aux slot need not outlive ringSubmit. One completion,
	 * res = bytes sent from the start of the list, or -errno. */
	MAIO_OP_SENDV = 12,
	/* Multishot IORING_OP_RECVMSG into provided buffers of BUF_GROUP: one
	 * CQE per datagram (F_BUFFER | bid << 16, F_MORE while armed). Each
	 * buffer holds struct io_uring_recvmsg_out (MAIO_RECVMSG_OUT bytes),
	 * then OFF_LO bytes reserved for the source sockaddr (0..MAIO_AUX_ADDR_MAX),
	 * then OFF_HI bytes reserved for control messages
	 * (0..MAIO_RECVMSG_CTL_MAX), then the payload; res is all of it. */
	MAIO_OP_RECVMSG_MULTI = 13,
	/* One IORING_OP_SENDMSG of pieces of pool POOL (a datagram, or a GSO
	 * batch of them). AUX_OFF (4-byte aligned) names an aux entry: the
	 * destination sockaddr in its first MAIO_SENDMSG_NAME_MAX bytes (OFF_LO
	 * bytes of it: 0 = none, the socket is connected; else 16 or 28), then
	 * AUX_LEN / 8 pairs of int32 (pool offset, length), 1..MAIO_SENDMSG_MAX_SEGS.
	 * LEN is their sum. OFF_HI: 0, or the UDP_SEGMENT size (GSO: the kernel
	 * cuts the payload into datagrams of that size, the last may be shorter),
	 * or MAIO_UDP_SEGMENT_NONE: a UDP_SEGMENT cmsg of 0, one datagram even
	 * when the socket has its own UDP_SEGMENT size set.
	 * Native copies the name and builds the cmsg into memory kept per op
	 * slot until the op's completion (the kernel may read both again when it
	 * retries the send); the epoll engine reads the entry when it sends, so
	 * JS keeps the entry unchanged until the completion. */
	MAIO_OP_SENDMSG = 14,
	/* SENDMSG, zero-copy: IORING_OP_SENDMSG_ZC (epoll: sendmsg with
	 * MSG_ZEROCOPY) of the same aux entry. Two completions, as SEND_ZC:
	 * the result (F_MORE once the kernel took the pages), then the
	 * notification (F_NOTIF; res has IORING_NOTIF_USAGE_ZC_COPIED when
	 * the kernel copied after all). The pieces are the kernel's until the
	 * notification. A lazily attached pool is registered at its first
	 * SENDMSG_ZC, as at its first SEND_ZC, and passed as a fixed buffer
	 * where the kernel takes iovecs into one (MAIO_IORING_OP_WRITEV_FIXED). */
	MAIO_OP_SENDMSG_ZC = 15,
	/* Plain send from a caller's buffer, not a pool: BUF_OFF is an index
	 * into the buffer list given to ringSubmit (a JS Array of Uint8Array),
	 * LEN bytes from the view's start (at most its length). Native reads
	 * the list itself, so JS never names an address, and holds a reference
	 * on the view from the submit to the op's final completion (ring.c,
	 * "held buffers"). A SENDV piece with a negative offset -(k + 1) names
	 * entry k of the same list the same way. */
	MAIO_OP_SEND_BUF = 16,
	MAIO_OP_COUNT
};
#define MAIO_SENDMSG_NAME_MAX 32  /* aux bytes reserved for the name: sockaddr_in6 fits */
#define MAIO_SENDMSG_MAX_SEGS 64  /* the kernel's UDP_MAX_SEGMENTS (64 before 6.9) */
#define MAIO_RECVMSG_OUT 16       /* sizeof(struct io_uring_recvmsg_out) */
#define MAIO_RECVMSG_CTL_MAX 256  /* control bytes a RECVMSG_MULTI may reserve */
/* UAPI values the 6.1 headers lack or keep in netinet/udp.h. */
#define MAIO_SOL_UDP 17
#define MAIO_UDP_SEGMENT 103
/* SENDMSG OFF_HI: send a UDP_SEGMENT cmsg of 0 (overrides the socket's own size) */
#define MAIO_UDP_SEGMENT_NONE 0x10000
#define MAIO_UDP_GRO 104
#define MAIO_SENDV_MAX_SEGS 16 /* 16 (offset, length) pairs: one 128-byte aux slot */
#define MAIO_SENDV_MAX_LEN (1 << 30) /* below the kernel's MAX_RW_COUNT per call */

/* ---- Op ids: the 32-bit user data of a descriptor ---------------------------
 * JS keeps an op's table slot in the low MAIO_OPID_SLOT_BITS bits and a
 * generation in the MAIO_OPID_GEN_BITS above them, so an op id stays a
 * positive int32 and a stale id never matches a reused slot. Native reads
 * only the slot (ring.c: which slots hold a SEND_ZC, see ring_account). */
#define MAIO_OPID_SLOT_BITS 20
#define MAIO_OPID_SLOT_MASK ((1u << MAIO_OPID_SLOT_BITS) - 1)
#define MAIO_OPID_GEN_BITS 11
#define MAIO_OPID_GEN_MASK ((1u << MAIO_OPID_GEN_BITS) - 1)

/* ---- Completions: native -> JS -------------------------------------------
 * Native copies CQEs into a shared Int32Array (the "completion array"),
 * MAIO_CQE_INTS int32 each, then calls the JS completion handler once with the
 * count. */
#define MAIO_CQE_INTS 4
enum maio_cqe_field {
	MAIO_C_USER_DATA = 0,
	MAIO_C_RES = 1,
	MAIO_C_FLAGS = 2,
	MAIO_C_RESERVED = 3,
};

/* ---- Ring statistics, a shared Float64Array written by native ----------- */
enum maio_ring_stat {
	MAIO_RS_ENTERS = 0,        /* io_uring_enter calls */
	MAIO_RS_SUBMITTED = 1,     /* SQEs the kernel consumed */
	MAIO_RS_COMPLETED = 2,     /* CQEs reaped */
	MAIO_RS_SUBMIT_CALLS = 3,  /* maio_ring_submit calls from JS */
	MAIO_RS_REAP_BATCHES = 4,  /* JS completion handler invocations */
	MAIO_RS_INFLIGHT = 5,      /* submitted ops whose final CQE has not arrived */
	MAIO_RS_CQ_OVERFLOW = 6,   /* kernel's CQ overflow counter */
	MAIO_RS_SQ_FULL = 7,       /* times submission had to wait for SQ space */
	MAIO_RS_CQ_FLUSHES = 8,    /* times the CQ overflowed into the kernel backlog and was flushed */
	MAIO_RS_BATCH_WAITS = 9,   /* wake-ups that first waited for a bulk batch (ring.c) */
	MAIO_RS_HELD = 10,         /* caller buffers held for sends in flight (SEND_BUF, SENDV pieces) */
	MAIO_RS_WAKEUPS = 11,      /* poll callbacks (libuv woke the ring) */
	MAIO_RS_EMPTY_WAKEUPS = 12, /* poll callbacks that found no completion */
	MAIO_RS_COUNT = 16
};

/* The layout's own consistency, checked where it is written. */
_Static_assert(MAIO_D_RESERVED1 < MAIO_DESC_INTS, "descriptor fields overflow MAIO_DESC_INTS");
_Static_assert(MAIO_C_RESERVED < MAIO_CQE_INTS, "completion fields overflow MAIO_CQE_INTS");
_Static_assert(MAIO_OPID_SLOT_BITS + MAIO_OPID_GEN_BITS <= 31, "op ids must stay positive int32");

/* Limits. */
#define MAIO_MAX_POOLS 64 /* fixed-buffer table slots, one per pool */
#define MAIO_MAX_BUF_RINGS 64 /* provided-buffer rings per ring */
#define MAIO_BATCH_WAIT_MAX_US 10000 /* ringCreate batchWaitUs: at most 10 ms */
#define MAIO_BUF_RING_MAX_ENTRIES 32768 /* the kernel's limit is < 65536 */
#define MAIO_AUX_ADDR_MAX 128 /* sizeof(struct sockaddr_storage): a sockaddr in aux */
#define MAIO_SOCKOPT_MAX 4096 /* sockSetBytes / sockGetBytes value bytes */

/* ringCreate's `setup`: how completions reach the thread (backend.ts picks). */
enum maio_ring_setup {
	MAIO_SETUP_COOP = 1,  /* COOP_TASKRUN|TASKRUN_FLAG: task work runs on any kernel exit */
	MAIO_SETUP_DEFER = 2, /* DEFER_TASKRUN: task work runs only inside io_uring_enter */
};

/* ---- Probe ------------------------------------------------------------ */
struct maio_probe {
	bool uring_usable;    /* a ring could be set up and used */
	int setup_errno;      /* why not, if not */
	uint32_t features;    /* IORING_FEAT_* from setup */
	uint32_t coop_flags;  /* best set-up without DEFER_TASKRUN (always usable) */
	uint32_t defer_flags; /* SINGLE_ISSUER|DEFER_TASKRUN set-up, 0 if refused */
	/* Whether a DEFER_TASKRUN ring's eventfd is signalled at once when a
	 * wait-queue wake-up (socket data) becomes task work: 1 prompt, 0 late
	 * (some kernel builds signal it one RCU grace period later, 12-20 ms),
	 * -1 not measured (no DEFER_TASKRUN). See probe_defer_eventfd. */
	int defer_eventfd;
	uint8_t ops[256];     /* ops[n] != 0: opcode n supported */
	int last_op;
	bool pbuf_ring;       /* IORING_REGISTER_PBUF_RING works */
	bool pbuf_ring_inc;   /* IOU_PBUF_RING_INC works */
	bool sparse_buffers;  /* IORING_RSRC_REGISTER_SPARSE works */
	int io_uring_disabled; /* /proc/sys/kernel/io_uring_disabled, -1 if unknown */
};

int maio_probe_run(struct maio_probe *out);

/* ---- The I/O page pool's region (pool.c) --------------------------------
 * One mmap'd region. It is unmapped only when the last reference goes: the
 * pool handle, the region ArrayBuffer, each strict-mode view, and each ring
 * registration hold one, so the kernel and JS never see freed memory. */
struct maio_pool {
	uint8_t *base;
	size_t size;
	int refs;
	bool closed;     /* maio_napi_pool_close was called */
	bool locked;     /* mlock succeeded */
	int lock_errno;  /* why not */
	bool hugepages;  /* MADV_HUGEPAGE accepted */
	bool dontfork;   /* MADV_DONTFORK accepted */
	bool handle_alive; /* the JS handle still points here: keep the struct (not the mapping) */
	bool eager;      /* faulted in (and locked) at creation */
	bool want_lock;  /* lazy pools: mlock once the region is pinned */
	bool want_huge;  /* lazy pools: MADV_HUGEPAGE just before the region is pinned */
	int pinned;      /* rings holding the region registered as a fixed buffer */
	int register_errno; /* why the last lazy registration failed, 0 if it did not */
};
void maio_pool_ref(struct maio_pool *pool);
void maio_pool_unref(struct maio_pool *pool);
/* A ring is about to register (pin) the region / registered it / dropped that registration. */
int maio_pool_will_pin(struct maio_pool *pool); /* 0, or -ENOMEM: do not try */
void maio_pool_pin_failed(struct maio_pool *pool, int err);
void maio_pool_pinned(struct maio_pool *pool);
void maio_pool_unpinned(struct maio_pool *pool);

/* ---- Datagram messages (udp.c), shared by ring.c and fallback.c ----------
 * What a SENDMSG descriptor becomes: the destination and the UDP_SEGMENT
 * cmsg live here (ring.c keeps one per op slot until the completion), the
 * iovec and msghdr with the caller. */
struct maio_udp_msg {
	struct sockaddr_storage name;
	uint64_t ctl[3]; /* CMSG_SPACE(sizeof(uint16_t)) = 24 bytes, aligned */
};
struct iovec;
struct msghdr;
/* Checks a SENDMSG entry (d: the descriptor; aux: the aux array) against
 * `pool_base`/`pool_size` and fills iov[], *m and *msg. 0, or -EINVAL with
 * *field / *why saying which field is wrong and how. */
int maio_udp_sendmsg_build(const int32_t *d, const uint8_t *aux, size_t aux_len,
			   uint8_t *pool_base, size_t pool_size, struct iovec *iov,
			   struct maio_udp_msg *m, struct msghdr *msg, const char **field,
			   const char **why);
/* Whether a RECVMSG_MULTI's reserved name and control lengths are valid. */
bool maio_udp_recvmsg_lengths_ok(int32_t name_len, int32_t ctl_len);

/* ---- Raw system calls (syscall.c), one wrapper each ------------------- */
int maio_sys_io_uring_setup(unsigned entries, struct io_uring_params *p);
int maio_sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete,
			    unsigned flags, void *arg, size_t argsz);
int maio_sys_io_uring_register(int fd, unsigned opcode, const void *arg,
			       unsigned nr_args);

#endif /* MAIO_H */
