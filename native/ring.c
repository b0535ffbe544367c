/*
 * The ring: one io_uring per JS thread, its shared memory, and the two hot
 * paths between it and JavaScript.
 *
 *  submit: JS writes operation descriptors into the shared submit array and
 *          calls ringSubmit(ring, count) once per event-loop turn. Every
 *          descriptor is copied and validated before any SQE is filled, then
 *          the batch goes to the kernel in one io_uring_enter.
 *  reap:   libuv polls an eventfd registered with the ring; when it fires the
 *          CQEs are copied into the shared completion array and JS's
 *          onCompletions(count) runs once per batch (through
 *          napi_make_callback, so microtasks follow).
 *
 * Two set-ups (ringCreate's `setup`; src/backend.ts picks per thread):
 * COOP_TASKRUN runs a completion's task work when the thread next leaves the
 * kernel, epoll_wait included, and posting the CQE signals the eventfd.
 * DEFER_TASKRUN runs it only inside io_uring_enter: adding the task work wakes
 * neither the ring fd's pollers nor epoll, only a registered eventfd, and only
 * when the list goes from empty to non-empty, so every wake-up must enter.
 * Some kernel builds signal that eventfd an RCU grace period late (12-20 ms),
 * which is why DEFER runs only where native/probe.c measured it prompt.
 * Either way libuv polls the eventfd; the ring fd answers a zero-timeout
 * poll() with POLLIN while work is pending, which tells us when a wake-up
 * left work behind.
 *
 * Lifetime (loop.h): ringClose, the handle's finalizer and the env's cleanup
 * hook funnel into maio_loop_close, which runs ring_release once; the struct
 * is freed when both the JS handle is finalized and the uv handle is closed.
 */
#define _GNU_SOURCE
#include "loop.h"
#include "maio.h"
#include "napi_exports.h"

#include <errno.h>
#include <fcntl.h> /* SPLICE_F_* */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAIO_UD_INTERNAL (1ULL << 32) /* never a JS op id (those are uint32) */
#define MAIO_REG_BUF_MAX (1ULL << 30) /* the kernel's cap on one registered buffer */
#define MAIO_ENTER_RETRIES 4
#define MAIO_QUIESCE_ROUNDS 20 /* x 50 ms: how long close waits for cancellations */
#define MAIO_REAP_ROUNDS 64    /* JS batches per wakeup before yielding to the loop */
#define MAIO_UDP_CHUNK 4096    /* op slots per chunk of SENDMSG names and cmsgs */

/*
 * A provided-buffer ring (IORING_REGISTER_PBUF_RING) for one buffer group.
 * Its entries point into attached pools; PROVIDE descriptors fill them and
 * the tail is published once per ringSubmit. Each pool any entry ever
 * pointed into stays referenced until the group is unregistered, so the
 * kernel can never write into unmapped memory, whatever JS detaches.
 *
 * No IOU_PBUF_RING_INC: with incremental consumption one pool slot could be
 * split over several recv completions, i.e. belong to several IoBuffers at
 * once; maio's ownership model is one owner per slot, so every completion
 * consumes a whole buffer (and IORING_CQE_F_BUF_MORE never appears).
 */
struct maio_bufring {
	struct io_uring_buf_ring *br; /* page-aligned anonymous mapping */
	size_t map_len;
	uint32_t entries;
	uint16_t bgid;
	uint16_t tail;   /* local tail; published with a release store */
	bool dirty;      /* entries added since the last publish */
	struct maio_pool **held; /* distinct pools referenced, one ref each */
	int nheld, capheld;
};

/* The one reference of an op's held caller buffers: the view, or an array of them. */
struct maio_held {
	napi_ref ref;
	int32_t views; /* how many */
	int32_t next;  /* free list: entry index, -1: end */
};
#define MAIO_HELD_MAX_LIST (1 << 16) /* entries of ringSubmit's buffer list */

/* The loop's shared arrays, in maio_loop_init's order. */
enum { RING_SUBMIT, RING_COMP, RING_AUX, RING_STATS, RING_NARRAYS };

struct maio_ring {
	struct maio_loop loop; /* callback, arrays, poll, close funnel */
	int fd;
	int efd; /* eventfd registered with the ring: what libuv polls */
	uint32_t setup_flags;
	bool defer_taskrun;
	bool fixed_table; /* the sparse fixed-buffer table was registered */

	/* mmap'd rings */
	void *sq_map, *cq_map;
	size_t sq_map_len, cq_map_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
	unsigned *sq_head, *sq_tail, *sq_flags, *sq_array;
	unsigned sq_mask, sq_entries;
	unsigned *cq_head, *cq_tail, *cq_overflow, *cq_flags;
	unsigned cq_mask;
	struct io_uring_cqe *cqes;

	/* The shared arrays as last looked up (ring_arrays). */
	int32_t *submit, *comp;
	uint8_t *aux;
	double *stats;
	size_t submit_cap, comp_cap, aux_len; /* descriptors, completions, bytes */
	int32_t *scratch;                     /* private copy of a batch (see submit) */
	/* SENDV: descriptor i of the batch in progress sends sv_msg[i], whose
	 * iovec is sv_iov[i * MAIO_SENDV_MAX_SEGS...]. Made at the first SENDV;
	 * rewritten only by the next ringSubmit, after the kernel copied them. */
	struct msghdr *sv_msg;
	struct iovec *sv_iov;
	bool sendv_ok; /* IORING_FEAT_SUBMIT_STABLE, SENDMSG probed, no SQPOLL */
	bool recvmsg_ok; /* the same for RECVMSG_MULTI's msghdr */
	bool sendmsg_zc_ok; /* sendv_ok, and SENDMSG_ZC probed */
	bool sendmsg_zc_fixed; /* SENDMSG_ZC takes iovecs into a fixed buffer (6.15) */
	/* SENDMSG / RECVMSG_MULTI: descriptor i's msghdr and iovec, like SENDV's. */
	struct msghdr *um_msg;
	struct iovec *um_iov;
	/* SENDMSG's name and cmsg, per op slot: they must outlive the submit
	 * (the kernel reads the cmsg again when it retries a send), and a slot
	 * is reused only after its op's final completion. Chunks on demand. */
	struct maio_udp_msg *udp_slots[(1u << MAIO_OPID_SLOT_BITS) / MAIO_UDP_CHUNK];

	struct maio_pool *pools[MAIO_MAX_POOLS];
	bool registered[MAIO_MAX_POOLS];
	bool register_lazy[MAIO_MAX_POOLS]; /* register at the pool's first SEND_ZC / SENDMSG_ZC */
	struct maio_bufring *bufrings[MAIO_MAX_BUF_RINGS];

	/* Held caller buffers (see "held buffers" below). This batch: the list's
	 * entries as read at the start of ringSubmit (hb_in), the views each
	 * descriptor uses (hb_vals from hb_first[i], hb_count[i] of them) and a
	 * SEND_BUF's checked address (sb_addr[i]). In flight: per op slot its
	 * reference (held_head[slot] = entry + 1), the slot marked in held_slots. */
	napi_value *hb_in;
	uint32_t hb_in_n;
	bool hb_reading; /* a getter of the list runs JS: ringSubmit must not nest */
	napi_value *hb_vals;
	int32_t hb_n;
	int32_t *hb_first, *hb_count;
	uint8_t **sb_addr;
	struct maio_held *held;
	int32_t held_cap, held_free;
	int32_t *held_head;
	uint8_t held_slots[(1u << MAIO_OPID_SLOT_BITS) / 8];
	int64_t held_live;

	int64_t inflight;
	uint8_t zc_slots[(1u << MAIO_OPID_SLOT_BITS) / 8]; /* one bit per op slot: a SEND_ZC or SENDMSG_ZC (ring_account) */
	uint8_t dgram_slots[(1u << MAIO_OPID_SLOT_BITS) / 8]; /* one bit per op slot: a datagram receive (ring_bulk) */
	double overflows;

	/* Bulk batching (see ring_bulk): 0 = never wait. */
	uint64_t batch_wait_ns;
	uint64_t win_start_ns, win_bytes;
	bool bulk;
};

/* ---- per-op-slot bits (zc_slots, held_slots, dgram_slots) ------------ */

static inline bool slot_marked(const uint8_t *bits, uint32_t id) /* an op id or its slot */
{
	uint32_t slot = id & MAIO_OPID_SLOT_MASK;
	return (bits[slot >> 3] & (1u << (slot & 7))) != 0;
}

static inline void slot_mark(uint8_t *bits, uint32_t slot, bool on)
{
	if (on)
		bits[slot >> 3] |= (uint8_t)(1u << (slot & 7));
	else
		bits[slot >> 3] &= (uint8_t)~(1u << (slot & 7));
}

/* ---- shared-memory access ------------------------------------------- */

static inline unsigned load_acquire(const unsigned *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release(unsigned *p, unsigned v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Typed arrays can be detached (transferred) between calls: look them up
 * again through their references before every batch. */
static bool ring_arrays(struct maio_ring *r)
{
	void *a[RING_NARRAYS];
	size_t len[RING_NARRAYS];
	maio_loop_arrays(&r->loop, a, len);
	r->submit = a[RING_SUBMIT];
	r->submit_cap = len[RING_SUBMIT] / MAIO_DESC_INTS;
	r->comp = a[RING_COMP];
	r->comp_cap = len[RING_COMP] / MAIO_CQE_INTS;
	r->aux = a[RING_AUX];
	r->aux_len = len[RING_AUX];
	r->stats = len[RING_STATS] >= MAIO_RS_COUNT ? a[RING_STATS] : NULL;
	return r->submit_cap && r->comp_cap && r->stats;
}

static inline void stat_add(struct maio_ring *r, int which, double n)
{
	if (r->stats)
		r->stats[which] += n;
}

/* The in-flight count JS reads. Whether the poll handle keeps the process
 * alive is JS's call (ringRef): it knows which live ops are referenced. */
static void ring_update_inflight(struct maio_ring *r)
{
	if (r->stats)
		r->stats[MAIO_RS_INFLIGHT] = (double)r->inflight;
}

static int ring_enter(struct maio_ring *r, unsigned to_submit, unsigned min_complete,
		      unsigned flags)
{
	int ret;
	do
		ret = maio_sys_io_uring_enter(r->fd, to_submit, min_complete, flags, NULL, 0);
	while (ret == -EINTR);
	stat_add(r, MAIO_RS_ENTERS, 1);
	return ret;
}

/* Runs deferred task work and flushes overflowed CQEs into the CQ ring. */
static void ring_get_events(struct maio_ring *r)
{
	unsigned f = load_acquire(r->sq_flags);
	if (f & IORING_SQ_CQ_OVERFLOW)
		r->overflows++;
	if (r->defer_taskrun || (f & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)))
		ring_enter(r, 0, 0, IORING_ENTER_GETEVENTS);
}

/* Counts a CQE against the in-flight total: an operation is done at its
 * first CQE without F_MORE (SEND_ZC's result has F_MORE, its notification
 * does not; a multishot op ends on a CQE without F_MORE). Except: a SEND_ZC
 * cancelled with its link chain (an earlier send failed) completes with
 * -ECANCELED and no F_MORE, and its notification still follows (6.18); it
 * is done at the notification. Counting both let the total go negative: the
 * loop lost its reference with ops in flight, and close stopped waiting. */
static void held_release(struct maio_ring *r, uint32_t slot);

static inline void ring_account(struct maio_ring *r, const struct io_uring_cqe *cqe)
{
	if (cqe->user_data & MAIO_UD_INTERNAL)
		return;
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	uint32_t slot = (uint32_t)cqe->user_data & MAIO_OPID_SLOT_MASK;
	if (cqe->res == -ECANCELED && !(cqe->flags & IORING_CQE_F_NOTIF) && slot_marked(r->zc_slots, slot))
		return;
	r->inflight--;
	if (slot_marked(r->held_slots, slot))
		held_release(r, slot);
}

/* Copies up to comp_cap CQEs into the completion array; returns the count. */
static unsigned ring_reap(struct maio_ring *r)
{
	unsigned head = *r->cq_head;
	unsigned tail = load_acquire(r->cq_tail);
	unsigned n = 0;
	while (head != tail && n < r->comp_cap) {
		const struct io_uring_cqe *cqe = &r->cqes[head & r->cq_mask];
		head++;
		ring_account(r, cqe);
		if (cqe->user_data & MAIO_UD_INTERNAL)
			continue;
		if ((cqe->flags & IORING_CQE_F_BUFFER) && cqe->res > 0 && !slot_marked(r->dgram_slots, (uint32_t)cqe->user_data))
			r->win_bytes += (uint64_t)cqe->res;
		int32_t *c = r->comp + (size_t)n * MAIO_CQE_INTS;
		c[MAIO_C_USER_DATA] = (int32_t)(uint32_t)cqe->user_data;
		c[MAIO_C_RES] = cqe->res;
		c[MAIO_C_FLAGS] = (int32_t)cqe->flags;
		c[MAIO_C_RESERVED] = 0;
		n++;
	}
	store_release(r->cq_head, head);
	if (r->stats) {
		r->stats[MAIO_RS_COMPLETED] += n;
		r->stats[MAIO_RS_CQ_OVERFLOW] = (double)load_acquire(r->cq_overflow);
		r->stats[MAIO_RS_CQ_FLUSHES] = r->overflows;
	}
	return n;
}

/* Discards every CQE (used only when closing). */
static void ring_drain(struct maio_ring *r)
{
	unsigned head = *r->cq_head;
	unsigned tail = load_acquire(r->cq_tail);
	for (; head != tail; head++)
		ring_account(r, &r->cqes[head & r->cq_mask]);
	store_release(r->cq_head, head);
}

/* ---- bulk batching ------------------------------------------------------
 * One bulk stream over loopback arrives as ~37 KB per recv completion, and
 * what a received GB costs is mostly the round trip per wake-up through libuv,
 * the ring and JS, not the copy: 0.19 s/GB against 0.12 for a blocking C
 * reader. So while this ring receives at a bulk rate, a wake-up first sleeps
 * in io_uring_enter until MAIO_BULK_MIN_CQES completions are there or
 * batch_wait_ns has passed; the receives then come back as a few large
 * completions (0.09-0.12 s/GB measured with 20-100 us waits). Below the rate
 * nothing waits, so request/response latency is not touched; a busy ring
 * reaches the count before the timeout. The rate is measured over windows
 * of at least MAIO_BULK_WINDOW_NS, so after a pause it falls by itself.
 * Datagram receives (RECVMSG_MULTI, marked in dgram_slots) do not count: a
 * GRO batch is one completion however long the wait, so waiting only turns
 * the task work that would have run in one go into a wake-up of the waiting
 * thread per datagram batch (a UDP receiver at 2 M datagrams/s: 53% of a
 * core without the wait, 63% with it). */
#define MAIO_BULK_WINDOW_NS 1000000ull
#define MAIO_BULK_BYTES_PER_SEC (1024.0 * 1024 * 1024)
#define MAIO_BULK_MIN_CQES 16

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* True while this ring receives at least MAIO_BULK_BYTES_PER_SEC. */
static bool ring_bulk(struct maio_ring *r)
{
	uint64_t now = monotonic_ns();
	uint64_t elapsed = now - r->win_start_ns;
	if (elapsed >= MAIO_BULK_WINDOW_NS) {
		r->bulk = (double)r->win_bytes * 1e9 / (double)elapsed >= MAIO_BULK_BYTES_PER_SEC;
		r->win_start_ns = now;
		r->win_bytes = 0;
	}
	return r->bulk;
}

/* Sleeps until a batch is worth reaping; runs task work like ring_get_events.
 * -ETIME (the timeout) and -EINTR are normal ends of the wait. */
static void ring_wait_batch(struct maio_ring *r)
{
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)r->batch_wait_ns};
	struct io_uring_getevents_arg arg;
	memset(&arg, 0, sizeof(arg));
	arg.ts = (uint64_t)(uintptr_t)&ts;
	/* Runs inside ring_on_poll, whose eventfd signals are off (ring_signals):
	 * what completes while this thread sleeps here wakes libuv for nothing. */
	maio_sys_io_uring_enter(r->fd, 0, MAIO_BULK_MIN_CQES,
				IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
	stat_add(r, MAIO_RS_ENTERS, 1);
	stat_add(r, MAIO_RS_BATCH_WAITS, 1);
}

/* ---- the reap path: uv poll -> JS ----------------------------------- */

/* Pending CQEs, overflowed CQEs or task work. With TASKRUN_FLAG (COOP) the
 * kernel says so in the shared flags, no system call needed: task work queued
 * after this look runs at our next kernel exit and signals the eventfd. Under
 * DEFER_TASKRUN only a zero-timeout poll() of the ring fd sees pending work. */
static bool ring_has_work(struct maio_ring *r)
{
	if (!r->defer_taskrun && (r->setup_flags & IORING_SETUP_TASKRUN_FLAG)) {
		if (*r->cq_head != load_acquire(r->cq_tail))
			return true;
		return (load_acquire(r->sq_flags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
	}
	struct pollfd p = {.fd = r->fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * Eventfd signals while the poll callback reaps. What completes while
 * ring_on_poll runs is reaped by its own loop: above all the loopback SEND
 * that completes inside the submit JS makes at the end of a batch. Its
 * eventfd signal would wake libuv once more to find nothing (an epoll_wait
 * and a read per request of a one-connection server). So the callback turns
 * the signals off (IORING_CQ_EVENTFD_DISABLED: the kernel reads it before
 * each signal) while it reaps, and before it returns turns them on and looks
 * at the ring once more (ring_has_work): what was posted in between is
 * reaped then, what is posted after the look signals as usual. The fence
 * orders the flag's store before that look; a CQE posted by another thread
 * (io-wq) passes a full barrier between publishing the tail and reading the
 * flag (the kernel's wq_has_sleeper before it signals), so one side always
 * sees the other. Under DEFER_TASKRUN queued task work, not a CQE, is what
 * arrives; ring_has_work's poll() sees it.
 */
static void ring_signals(struct maio_ring *r, bool on)
{
	if (r->efd < 0)
		return;
	unsigned f = load_acquire(r->cq_flags);
	store_release(r->cq_flags, on ? f & ~IORING_CQ_EVENTFD_DISABLED : f | IORING_CQ_EVENTFD_DISABLED);
	if (on)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#define ring_of(l) maio_loop_owner(l, struct maio_ring, loop)

static void ring_on_poll(uv_poll_t *handle, int status, int events)
{
	struct maio_loop *l = maio_loop_of(handle);
	struct maio_ring *r = ring_of(l);
	if (l->closed)
		return;
	if (r->efd >= 0) {
		uint64_t v;
		if (read(r->efd, &v, sizeof(v)) < 0) {
			/* EAGAIN: a spurious wakeup; the checks below still run. */
		}
	}
	stat_add(r, MAIO_RS_WAKEUPS, 1);
	unsigned reaped = 0; /* this wake-up's completions: none makes it an empty one */
	bool enter = true;
	ring_signals(r, false);
	bool quiet = true; /* signals are off: on again before any return */
	for (int round = 0;; round++) {
		if (l->closed)
			break;
		if (round >= MAIO_REAP_ROUNDS) {
			/* JS keeps producing completions (NOPs complete inside the
			 * submit): let the loop run timers and other I/O, and come
			 * back on its next turn. The ring fd itself stays readable. */
			ring_signals(r, true);
			quiet = false;
			if (r->efd >= 0)
				eventfd_write(r->efd, 1);
			break;
		}
		if (enter) {
			if (round == 0 && r->batch_wait_ns && ring_bulk(r))
				ring_wait_batch(r);
			else
				ring_get_events(r);
		}
		napi_handle_scope scope;
		if (napi_open_handle_scope(l->env, &scope) != napi_ok)
			break;
		unsigned n = 0;
		if (ring_arrays(r)) {
			if (load_acquire(r->sq_flags) & IORING_SQ_CQ_OVERFLOW)
				ring_get_events(r);
			n = ring_reap(r);
			ring_update_inflight(r);
			reaped += n;
			if (n) {
				stat_add(r, MAIO_RS_REAP_BATCHES, 1);
				maio_loop_call_js(l, n);
			}
		} else {
			maio_loop_fatal(l, "maio ring: a shared array was detached");
		}
		napi_close_handle_scope(l->env, scope);
		if (l->closed)
			break;
		/* After a batch, JS's own submit has run task work: reap again
		 * before entering. With nothing reaped, enter only if the kernel
		 * says work is still pending (its task-work runs are capped). */
		if (n) {
			enter = false;
			continue;
		}
		if (!ring_has_work(r)) {
			ring_signals(r, true);
			quiet = false;
			if (!ring_has_work(r))
				break;
			/* Posted while the signals were off: reap it now. */
			ring_signals(r, false);
			quiet = true;
		}
		enter = true;
	}
	/* Left early (no handle scope): whatever is pending must still wake us. */
	if (quiet && !l->closed) {
		ring_signals(r, true);
		if (ring_has_work(r) && r->efd >= 0)
			eventfd_write(r->efd, 1);
	}
	if (!l->closed) {
		ring_update_inflight(r);
		if (reaped == 0)
			stat_add(r, MAIO_RS_EMPTY_WAKEUPS, 1);
	}
}

/* ---- held buffers ------------------------------------------------------
 * A SEND_BUF, or a SENDV piece with a negative offset, sends from a caller's
 * Uint8Array instead of a pool: maio/net's write() of a large Buffer, which
 * the kernel copies anyway. JS passes the views in ringSubmit's buffer list
 * and names them by index; native reads their address and length itself
 * (JS never gives an address), and once the kernel took the op, references
 * each view until the op's final CQE (ring_account), so the memory stays
 * alive while the kernel may read it, whatever JS drops meanwhile. A slot
 * whose op holds buffers is refused to every other descriptor until then:
 * an early final CQE of another op in that slot would drop the references.
 */


static void held_stat(struct maio_ring *r)
{
	if (r->stats)
		r->stats[MAIO_RS_HELD] = (double)r->held_live;
}

/* Per-batch arrays and the slot table, made at the first held send. */
static bool held_arrays(struct maio_ring *r)
{
	if (r->sb_addr)
		return true;
	r->hb_in = calloc(MAIO_HELD_MAX_LIST, sizeof(*r->hb_in));
	r->hb_vals = calloc(r->submit_cap * MAIO_SENDV_MAX_SEGS, sizeof(*r->hb_vals));
	r->hb_first = calloc(r->submit_cap, sizeof(*r->hb_first));
	r->hb_count = calloc(r->submit_cap, sizeof(*r->hb_count));
	/* One int32 per possible op slot, lazily touched: calloc maps zero pages. */
	r->held_head = calloc(1u << MAIO_OPID_SLOT_BITS, sizeof(*r->held_head));
	uint8_t **addr = calloc(r->submit_cap, sizeof(*addr));
	if (r->hb_in && r->hb_vals && r->hb_first && r->hb_count && r->held_head && addr) {
		r->sb_addr = addr;
		return true;
	}
	free(addr);
	free(r->hb_in);
	free(r->hb_vals);
	free(r->hb_first);
	free(r->hb_count);
	free(r->held_head);
	r->hb_in = r->hb_vals = NULL;
	r->hb_first = r->hb_count = r->held_head = NULL;
	return false;
}

/* Reads ringSubmit's buffer list before anything else: an element getter
 * runs JS, which must not run between checking a batch and submitting it. */
static bool held_read_list(napi_env env, struct maio_ring *r, napi_value list)
{
	r->hb_in_n = 0;
	napi_valuetype t;
	if (napi_typeof(env, list, &t) != napi_ok || t == napi_undefined)
		return true;
	bool is_array = false;
	uint32_t n = 0;
	if (napi_is_array(env, list, &is_array) != napi_ok || !is_array ||
	    napi_get_array_length(env, list, &n) != napi_ok)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "bufs must be an Array"), false;
	if (n > MAIO_HELD_MAX_LIST)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "bufs holds %u entries, at most %d",
					n, MAIO_HELD_MAX_LIST), false;
	if (n == 0)
		return true;
	if (!held_arrays(r))
		return maio_throw_errno(env, -ENOMEM, "ringSubmit"), false;
	r->hb_reading = true;
	bool ok = true;
	for (uint32_t k = 0; k < n && ok; k++)
		ok = napi_get_element(env, list, k, &r->hb_in[k]) == napi_ok; /* else: pending */
	r->hb_reading = false;
	if (ok)
		r->hb_in_n = n;
	return ok;
}

static napi_value throw_desc(napi_env env, uint32_t index, const char *field, const char *fmt,
			     long long val);

/* Checks entry k of the buffer list for `len` bytes (descriptor i); adds the
 * view to descriptor i's list and sets *addr, or returns false after throwing. */
static bool held_take(napi_env env, struct maio_ring *r, int64_t k, int64_t len, uint32_t i,
		      const char *field, uint8_t **addr)
{
	if (k < 0 || (uint64_t)k >= r->hb_in_n)
		return throw_desc(env, i, field, "%lld is not an index into ringSubmit's buffer list", k),
		       false;
	napi_value v = r->hb_in[k];
	bool is_ta = false;
	napi_typedarray_type type;
	size_t length = 0;
	void *data = NULL;
	if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
	    napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok ||
	    type != napi_uint8_array)
		return throw_desc(env, i, field, "%lld: the buffer list's entry is not a Uint8Array", k),
		       false;
	if (len < 0 || (uint64_t)len > length || (len > 0 && !data))
		return throw_desc(env, i, "len", "%lld lies outside the buffer (detached, or shorter)", len),
		       false;
	r->hb_vals[r->hb_n++] = v;
	r->hb_count[i]++;
	*addr = data;
	return true;
}

static bool held_fill(napi_env env, napi_value array, const napi_value *vals, int32_t n)
{
	for (int32_t k = 0; k < n; k++)
		if (napi_set_element(env, array, (uint32_t)k, vals[k]) != napi_ok)
			return false;
	return true;
}

/* After the enter: references the views of descriptor i, which the kernel
 * took. One reference per op: a reference costs ~250 ns to take and drop
 * (bench/micro/held-write.ts), so several views (a SENDV) go into an array
 * made here, which JS never sees, and that array is referenced. */
static void held_ref(napi_env env, struct maio_ring *r, uint32_t i, uint32_t slot)
{
	int32_t first = r->hb_first[i], n = r->hb_count[i];
	napi_value value = r->hb_vals[first];
	if (n > 1 && (napi_create_array_with_length(env, (size_t)n, &value) != napi_ok ||
		      !held_fill(env, value, r->hb_vals + first, n)))
		napi_fatal_error("maio.ring", NAPI_AUTO_LENGTH, "could not hold send buffers",
				 NAPI_AUTO_LENGTH);
	if (r->held_free < 0) {
		int32_t cap = r->held_cap ? r->held_cap * 2 : 256;
		struct maio_held *h = realloc(r->held, (size_t)cap * sizeof(*h));
		if (!h) /* the kernel reads the views: losing them is not an option */
			napi_fatal_error("maio.ring", NAPI_AUTO_LENGTH, "out of memory holding send buffers",
					 NAPI_AUTO_LENGTH);
		for (int32_t e = cap - 1; e >= r->held_cap; e--) {
			h[e].next = r->held_free;
			r->held_free = e;
		}
		r->held = h;
		r->held_cap = cap;
	}
	int32_t e = r->held_free;
	struct maio_held *h = &r->held[e];
	r->held_free = h->next;
	if (napi_create_reference(env, value, 1, &h->ref) != napi_ok)
		napi_fatal_error("maio.ring", NAPI_AUTO_LENGTH, "could not hold send buffers",
				 NAPI_AUTO_LENGTH);
	h->views = n;
	r->held_head[slot] = e + 1;
	r->held_live += n;
	held_stat(r);
}

/* The op in `slot` is done: its views may go. */
static void held_release(struct maio_ring *r, uint32_t slot)
{
	int32_t e = r->held_head[slot] - 1;
	if (e >= 0) {
		struct maio_held *h = &r->held[e];
		napi_delete_reference(r->loop.env, h->ref);
		r->held_live -= h->views;
		h->next = r->held_free;
		r->held_free = e;
	}
	r->held_head[slot] = 0;
	slot_mark(r->held_slots, slot, false);
	held_stat(r);
}

/* Descriptors [from, to) of the batch will not run: free the slots they marked. */
static void held_unmark(struct maio_ring *r, int32_t from, int32_t to)
{
	for (int32_t i = from; i < to; i++)
		if (r->hb_count[i] > 0)
			slot_mark(r->held_slots, (uint32_t)r->scratch[(size_t)i * MAIO_DESC_INTS + MAIO_D_USER_DATA] &
					     MAIO_OPID_SLOT_MASK,
				  false);
}

/* ---- provided-buffer rings ------------------------------------------- */

static struct maio_bufring *bufring_find(struct maio_ring *r, int32_t bgid)
{
	for (int i = 0; i < MAIO_MAX_BUF_RINGS; i++)
		if (r->bufrings[i] && r->bufrings[i]->bgid == bgid)
			return r->bufrings[i];
	return NULL;
}

/* Frees the user-side state; the kernel side is gone already (unregistered
 * or the ring fd closed). */
static void bufring_free(struct maio_bufring *b)
{
	for (int i = 0; i < b->nheld; i++)
		maio_pool_unref(b->held[i]);
	free(b->held);
	if (b->br)
		munmap(b->br, b->map_len);
	free(b);
}

/* Takes a reference on `pool` the first time an entry points into it. */
static int bufring_hold(struct maio_bufring *b, struct maio_pool *pool)
{
	for (int i = 0; i < b->nheld; i++)
		if (b->held[i] == pool)
			return 0;
	if (b->nheld == b->capheld) {
		int cap = b->capheld ? b->capheld * 2 : 4;
		struct maio_pool **h = realloc(b->held, (size_t)cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		b->held = h;
		b->capheld = cap;
	}
	maio_pool_ref(pool);
	b->held[b->nheld++] = pool;
	return 0;
}

/* Adds one validated PROVIDE descriptor's buffer (not yet visible). */
static void bufring_add(struct maio_ring *r, const int32_t *d)
{
	struct maio_bufring *b = bufring_find(r, d[MAIO_D_BUF_GROUP]);
	struct maio_pool *pool = r->pools[d[MAIO_D_POOL]];
	struct io_uring_buf *e = &b->br->bufs[b->tail & (b->entries - 1)];
	e->addr = (uint64_t)(uintptr_t)(pool->base + d[MAIO_D_BUF_OFF]);
	e->len = (uint32_t)d[MAIO_D_LEN];
	e->bid = (uint16_t)d[MAIO_D_USER_DATA];
	b->tail++;
	b->dirty = true;
}

/* One release store per ring and batch: the kernel sees whole entries. */
static void bufring_publish(struct maio_ring *r)
{
	for (int i = 0; i < MAIO_MAX_BUF_RINGS; i++) {
		struct maio_bufring *b = r->bufrings[i];
		if (b && b->dirty) {
			__atomic_store_n(&b->br->tail, b->tail, __ATOMIC_RELEASE);
			b->dirty = false;
		}
	}
}

/* ---- shutdown --------------------------------------------------------- */

static void ring_free(struct maio_loop *l)
{
	struct maio_ring *r = ring_of(l);
	free(r->scratch);
	free(r->sv_msg);
	free(r->sv_iov);
	free(r->um_msg);
	free(r->um_iov);
	/* References still held (the kernel kept an op past close) stay with
	 * the env, which deletes them at its teardown; only the lists go. */
	free(r->hb_in);
	free(r->hb_vals);
	free(r->hb_first);
	free(r->hb_count);
	free(r->sb_addr);
	free(r->held_head);
	free(r->held);
	for (size_t i = 0; i < sizeof(r->udp_slots) / sizeof(r->udp_slots[0]); i++)
		free(r->udp_slots[i]);
	free(r);
}

/* Cancels whatever is still in flight and waits (bounded) for the kernel to
 * finish with it, so no pool memory is unmapped under a running op. */
static void ring_quiesce(struct maio_ring *r)
{
	ring_drain(r);
	if (r->inflight <= 0)
		return;
	unsigned tail = *r->sq_tail;
	if (tail - load_acquire(r->sq_head) < r->sq_entries) {
		struct io_uring_sqe *sqe = &r->sqes[tail & r->sq_mask];
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_ASYNC_CANCEL;
		sqe->fd = -1;
		sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY;
		sqe->user_data = MAIO_UD_INTERNAL;
		store_release(r->sq_tail, tail + 1);
		ring_enter(r, 1, 0, IORING_ENTER_GETEVENTS);
	}
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
	struct io_uring_getevents_arg arg;
	memset(&arg, 0, sizeof(arg));
	arg.ts = (uint64_t)(uintptr_t)&ts;
	for (int i = 0; i < MAIO_QUIESCE_ROUNDS && r->inflight > 0; i++) {
		maio_sys_io_uring_enter(r->fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
					&arg, sizeof(arg));
		ring_drain(r);
	}
}

/* Runs once, from maio_loop_close, the poll already stopped; also on a
 * half-built ring (a failed ringCreate): every step checks what exists. */
static void ring_release(struct maio_loop *l)
{
	struct maio_ring *r = ring_of(l);
	/* The stats array may be gone already (finalizer); count nothing now. */
	r->stats = NULL;
	if (r->cq_head)
		ring_quiesce(r);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->efd >= 0)
		close(r->efd);
	r->efd = -1;
	/* The kernel dropped the groups with the ring; now the pools may go. */
	for (int i = 0; i < MAIO_MAX_BUF_RINGS; i++) {
		if (r->bufrings[i])
			bufring_free(r->bufrings[i]);
		r->bufrings[i] = NULL;
	}
	if (r->sqes)
		munmap(r->sqes, r->sqes_len);
	if (r->cq_map && r->cq_map != r->sq_map)
		munmap(r->cq_map, r->cq_map_len);
	if (r->sq_map)
		munmap(r->sq_map, r->sq_map_len);
	r->sqes = NULL;
	r->sq_map = r->cq_map = NULL;
	r->cq_head = NULL;
	for (int i = 0; i < MAIO_MAX_POOLS; i++) {
		if (r->pools[i] && r->registered[i])
			maio_pool_unpinned(r->pools[i]);
		if (r->pools[i])
			maio_pool_unref(r->pools[i]);
		r->pools[i] = NULL;
		r->registered[i] = false;
		r->register_lazy[i] = false;
	}
	r->inflight = 0;
}

static const struct maio_loop_ops ring_loop_ops = {
	.name = "maio.ring",
	.release = ring_release,
	.free = ring_free,
};

/* ---- ringCreate ------------------------------------------------------- */

/* An optional int32 property: absent or undefined leaves *out as it is. */
static bool get_optional_int(napi_env env, napi_value obj, const char *key, int32_t min,
			     int32_t max, int32_t *out)
{
	bool has = false;
	napi_has_named_property(env, obj, key, &has);
	if (!has)
		return true;
	napi_value v;
	napi_valuetype t;
	napi_get_named_property(env, obj, key, &v);
	napi_typeof(env, v, &t);
	if (t == napi_undefined)
		return true;
	char name[64];
	snprintf(name, sizeof(name), "options.%s", key);
	return maio_arg_int32(env, v, name, min, max, out);
}

static int ring_map(struct maio_ring *r, struct io_uring_params *p)
{
	r->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	r->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	bool single = p->features & IORING_FEAT_SINGLE_MMAP;
	if (single && r->cq_map_len > r->sq_map_len)
		r->sq_map_len = r->cq_map_len;
	r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 r->fd, IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED) {
		r->sq_map = NULL;
		return -errno;
	}
	if (single) {
		r->cq_map = r->sq_map;
	} else {
		r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (r->cq_map == MAP_FAILED) {
			r->cq_map = NULL;
			return -errno;
		}
	}
	r->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED) {
		r->sqes = NULL;
		return -errno;
	}
	uint8_t *sq = r->sq_map, *cq = r->cq_map;
	r->sq_head = (unsigned *)(sq + p->sq_off.head);
	r->sq_tail = (unsigned *)(sq + p->sq_off.tail);
	r->sq_flags = (unsigned *)(sq + p->sq_off.flags);
	r->sq_array = (unsigned *)(sq + p->sq_off.array);
	r->sq_mask = *(unsigned *)(sq + p->sq_off.ring_mask);
	r->sq_entries = *(unsigned *)(sq + p->sq_off.ring_entries);
	r->cq_head = (unsigned *)(cq + p->cq_off.head);
	r->cq_tail = (unsigned *)(cq + p->cq_off.tail);
	r->cq_overflow = (unsigned *)(cq + p->cq_off.overflow);
	r->cq_flags = (unsigned *)(cq + p->cq_off.flags);
	r->cq_mask = *(unsigned *)(cq + p->cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
	/* SQE i always sits in slot i: fill the indirection array once. */
	for (unsigned i = 0; i < r->sq_entries; i++)
		r->sq_array[i] = i;
	return 0;
}

/*
 * ringCreate({entries, submit, completions, aux, stats, onCompletions, batchWaitUs?, setup?})
 *   -> handle; setup is MAIO_SETUP_COOP (default) or MAIO_SETUP_DEFER
 */
MAIO_EXPORT(maio_napi_ring_create)
{
	napi_value opts;
	if (!maio_args_options(env, info, &opts))
		return NULL;

	napi_value v_entries, arrays[RING_NARRAYS], v_cb;
	int32_t entries;
	size_t len;
	if (!maio_opt_required(env, opts, "entries", &v_entries) ||
	    !maio_arg_int32(env, v_entries, "options.entries", 8, 32768, &entries))
		return NULL;
	if (entries & (entries - 1))
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"options.entries must be a power of two, got %d", entries);
	if (!maio_opt_typedarray(env, opts, "submit", napi_int32_array, MAIO_DESC_INTS,
				 MAIO_DESC_INTS, &arrays[RING_SUBMIT], &len) ||
	    !maio_opt_typedarray(env, opts, "completions", napi_int32_array, MAIO_CQE_INTS,
				 MAIO_CQE_INTS, &arrays[RING_COMP], &len) ||
	    !maio_opt_typedarray(env, opts, "aux", napi_uint8_array, MAIO_AUX_ADDR_MAX, 1,
				 &arrays[RING_AUX], &len) ||
	    !maio_opt_typedarray(env, opts, "stats", napi_float64_array, MAIO_RS_COUNT, 1,
				 &arrays[RING_STATS], &len))
		return NULL;
	if (!maio_opt_required(env, opts, "onCompletions", &v_cb) ||
	    !maio_arg_function(env, v_cb, "options.onCompletions"))
		return NULL;
	int32_t setup = MAIO_SETUP_COOP; /* optional; src/backend.ts decides */
	if (!get_optional_int(env, opts, "setup", MAIO_SETUP_COOP, MAIO_SETUP_DEFER, &setup))
		return NULL;
	int32_t batch_wait_us = 0; /* optional */
	if (!get_optional_int(env, opts, "batchWaitUs", 0, MAIO_BATCH_WAIT_MAX_US, &batch_wait_us))
		return NULL;

	struct maio_probe pr;
	int err = maio_probe_run(&pr);
	if (err < 0)
		return maio_throw_errno(env, err, "io_uring_setup");
	uint32_t setup_flags = setup == MAIO_SETUP_DEFER ? pr.defer_flags : pr.coop_flags;
	if (setup == MAIO_SETUP_DEFER && !setup_flags)
		return maio_throw_errno(env, -EINVAL, "io_uring_setup (DEFER_TASKRUN)");

	struct maio_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return maio_throw_errno(env, -ENOMEM, "ringCreate");
	r->fd = -1;
	r->efd = -1;
	r->held_free = -1;
	r->batch_wait_ns = (uint64_t)batch_wait_us * 1000;
	struct maio_loop *l = &r->loop;
	if (maio_loop_init(l, env, &ring_loop_ops, v_cb, arrays, RING_NARRAYS) < 0) {
		maio_loop_discard(l);
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not reference the arrays");
	}

	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	/* A CQ four times the SQ: multishot ops post many CQEs per SQE. */
	p.flags = setup_flags | IORING_SETUP_CQSIZE;
	p.cq_entries = (unsigned)entries * 4;
	r->fd = maio_sys_io_uring_setup((unsigned)entries, &p);
	if (r->fd < 0) {
		err = r->fd;
		maio_loop_discard(l);
		return maio_throw_errno(env, err, "io_uring_setup");
	}
	r->setup_flags = setup_flags;
	r->defer_taskrun = (setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0;
	/* SENDV's msghdr and iovec live only until the next submit: the kernel
	 * must have copied them once it consumed the SQE. */
	r->sendv_ok = (p.features & IORING_FEAT_SUBMIT_STABLE) && pr.ops[IORING_OP_SENDMSG] &&
		      !(setup_flags & IORING_SETUP_SQPOLL);
	r->recvmsg_ok = (p.features & IORING_FEAT_SUBMIT_STABLE) && pr.ops[IORING_OP_RECVMSG] &&
			!(setup_flags & IORING_SETUP_SQPOLL);
	r->sendmsg_zc_ok = r->sendv_ok && pr.ops[MAIO_IORING_OP_SENDMSG_ZC];
	r->sendmsg_zc_fixed = r->sendmsg_zc_ok && pr.ops[MAIO_IORING_OP_WRITEV_FIXED];
	err = ring_map(r, &p);
	if (err < 0) {
		maio_loop_discard(l);
		return maio_throw_errno(env, err, "mmap");
	}

	/* An empty table of MAIO_MAX_POOLS slots; pools fill slots later. */
	if (pr.sparse_buffers) {
		struct io_uring_rsrc_register rr;
		memset(&rr, 0, sizeof(rr));
		rr.nr = MAIO_MAX_POOLS;
		rr.flags = IORING_RSRC_REGISTER_SPARSE;
		r->fixed_table = maio_sys_io_uring_register(r->fd, IORING_REGISTER_BUFFERS2, &rr,
							    sizeof(rr)) == 0;
	}

	/* Without an eventfd (registration refused), poll the ring fd: fine
	 * without DEFER_TASKRUN, where completions are posted without us. */
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd >= 0 && maio_sys_io_uring_register(r->fd, IORING_REGISTER_EVENTFD, &r->efd, 1) < 0) {
		close(r->efd);
		r->efd = -1;
	}
	if (r->efd < 0 && r->defer_taskrun) {
		err = -errno;
		maio_loop_discard(l);
		return maio_throw_errno(env, err ? err : -EINVAL, "IORING_REGISTER_EVENTFD");
	}
	ring_arrays(r);
	r->scratch = malloc(r->submit_cap * MAIO_DESC_INTS * sizeof(int32_t));
	if (!r->scratch) {
		maio_loop_discard(l);
		return maio_throw_errno(env, -ENOMEM, "ringCreate");
	}
	err = maio_loop_start(l, r->efd >= 0 ? r->efd : r->fd, ring_on_poll);
	if (err < 0) {
		maio_loop_discard(l);
		return maio_throw_errno(env, err, "uv_poll_init");
	}
	napi_value handle = maio_loop_wrap(l, &maio_ring_tag);
	if (!handle)
		return maio_throw_errno(env, -ENOMEM, "ringCreate");
	for (int i = 0; i < MAIO_RS_COUNT; i++)
		r->stats[i] = 0;
	return handle;
}

/* A ring handle that is not closed, or NULL after throwing. */
static struct maio_ring *ring_arg_open(napi_env env, napi_value v)
{
	struct maio_loop *l = maio_loop_arg(env, v, "ring", &maio_ring_tag, "the ring is closed");
	return l ? ring_of(l) : NULL;
}

/* The head of every call after create: `n` arguments, the first the open
 * ring. NULL after throwing. */
static struct maio_ring *ring_args(napi_env env, napi_callback_info info, size_t n,
				   napi_value *argv)
{
	return maio_args(env, info, n, argv, NULL) ? ring_arg_open(env, argv[0]) : NULL;
}

/* ---- ringSubmit ------------------------------------------------------- */

/* Throws ERR_MAIO_INVALID_DESCRIPTOR with `index` and `field` properties. */
static napi_value throw_desc(napi_env env, uint32_t index, const char *field, const char *fmt,
			     long long val)
{
	char msg[256], detail[160];
	snprintf(detail, sizeof(detail), fmt, val);
	snprintf(msg, sizeof(msg), "descriptor %u: %s %s", index, field, detail);
	napi_value code, jmsg, err;
	napi_create_string_utf8(env, MAIO_ERR_INVALID_DESCRIPTOR, NAPI_AUTO_LENGTH, &code);
	napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
	napi_create_range_error(env, code, jmsg, &err);
	maio_set_int(env, err, "index", index);
	maio_set_string(env, err, "field", field);
	napi_throw(env, err);
	return NULL;
}

static const uint32_t ioprio_allowed[MAIO_OP_COUNT] = {
	[MAIO_OP_SEND] = IORING_RECVSEND_POLL_FIRST,
	[MAIO_OP_SEND_ZC] = IORING_RECVSEND_POLL_FIRST,
	[MAIO_OP_SENDV] = IORING_RECVSEND_POLL_FIRST,
	[MAIO_OP_RECV] = IORING_RECVSEND_POLL_FIRST,
	[MAIO_OP_RECV_MULTI] = IORING_RECVSEND_POLL_FIRST | IORING_RECVSEND_BUNDLE,
	[MAIO_OP_ACCEPT] = IORING_ACCEPT_MULTISHOT,
	[MAIO_OP_RECVMSG_MULTI] = IORING_RECVSEND_POLL_FIRST,
	[MAIO_OP_SENDMSG] = IORING_RECVSEND_POLL_FIRST,
	[MAIO_OP_SENDMSG_ZC] = IORING_RECVSEND_POLL_FIRST,
	[MAIO_OP_SEND_BUF] = IORING_RECVSEND_POLL_FIRST,
};

/* The per-descriptor msghdr and iovec of SENDMSG / RECVMSG_MULTI, made at first use. */
static bool um_arrays(struct maio_ring *r)
{
	if (r->um_msg)
		return true;
	r->um_msg = calloc(r->submit_cap, sizeof(*r->um_msg));
	/* Large but lazily touched: calloc maps zero pages. */
	r->um_iov = calloc(r->submit_cap * MAIO_SENDMSG_MAX_SEGS, sizeof(*r->um_iov));
	if (r->um_msg && r->um_iov)
		return true;
	free(r->um_msg);
	free(r->um_iov);
	r->um_msg = NULL;
	r->um_iov = NULL;
	return false;
}

/* The name and cmsg memory of op slot `slot`, or NULL when out of memory. */
static struct maio_udp_msg *udp_slot(struct maio_ring *r, uint32_t slot)
{
	struct maio_udp_msg **chunk = &r->udp_slots[slot / MAIO_UDP_CHUNK];
	if (!*chunk)
		*chunk = calloc(MAIO_UDP_CHUNK, sizeof(**chunk));
	return *chunk ? *chunk + slot % MAIO_UDP_CHUNK : NULL;
}

/* Checks a SENDMSG descriptor (the i-th) and builds its msghdr from a copy
 * of its aux entry: what is checked is what the kernel gets. */
static bool sendmsg_check(napi_env env, struct maio_ring *r, const int32_t *d, uint32_t i)
{
	if (!r->sendv_ok)
		return throw_desc(env, i, "op", "%lld (SENDMSG) is not supported by this ring",
				  d[MAIO_D_OP]), false;
	if (d[MAIO_D_OP] == MAIO_OP_SENDMSG_ZC && !r->sendmsg_zc_ok)
		return throw_desc(env, i, "op", "%lld (SENDMSG_ZC) is not supported by this ring",
				  d[MAIO_D_OP]), false;
	int32_t pool = d[MAIO_D_POOL];
	if (pool < 0 || pool >= MAIO_MAX_POOLS || !r->pools[pool] || !r->pools[pool]->base)
		return throw_desc(env, i, "pool", "%lld is not attached to this ring", pool), false;
	if (d[MAIO_D_LEN] < 0)
		return throw_desc(env, i, "len", "%lld is negative", d[MAIO_D_LEN]), false;
	struct maio_udp_msg *m = udp_slot(r, (uint32_t)d[MAIO_D_USER_DATA] & MAIO_OPID_SLOT_MASK);
	if (!um_arrays(r) || !m)
		return throw_desc(env, i, "op", "%lld: out of memory for SENDMSG", d[MAIO_D_OP]), false;
	const char *field = "", *why = "";
	if (maio_udp_sendmsg_build(d, r->aux, r->aux_len, r->pools[pool]->base, r->pools[pool]->size,
				   r->um_iov + (size_t)i * MAIO_SENDMSG_MAX_SEGS, m, &r->um_msg[i],
				   &field, &why) < 0)
		return throw_desc(env, i, field, why, 0), false;
	return true;
}

/* Checks a SENDV descriptor (the i-th of the batch) and copies its segment
 * list out of the shared aux array into sv_iov: what is checked is what the
 * kernel gets, whatever JS writes into aux meanwhile. */
static bool sendv_check(napi_env env, struct maio_ring *r, const int32_t *d, uint32_t i)
{
	if (!r->sendv_ok)
		return throw_desc(env, i, "op", "%lld (SENDV) is not supported by this ring", d[MAIO_D_OP]),
		       false;
	int32_t pool = d[MAIO_D_POOL];
	int64_t aoff = d[MAIO_D_AUX_OFF], alen = d[MAIO_D_AUX_LEN];
	if (alen < 8 || alen > 8 * MAIO_SENDV_MAX_SEGS || alen % 8)
		return throw_desc(env, i, "auxLen", "%lld is not 8 x (1..16) segment bytes", alen), false;
	if (aoff < 0 || aoff % 4 || (uint64_t)(aoff + alen) > r->aux_len)
		return throw_desc(env, i, "auxOff", "%lld: not 4-aligned, or + auxLen outside aux", aoff),
		       false;
	if (d[MAIO_D_LEN] < 0 || d[MAIO_D_LEN] > MAIO_SENDV_MAX_LEN)
		return throw_desc(env, i, "len", "%lld is not a SENDV length (0..2^30)", d[MAIO_D_LEN]),
		       false;
	if (!r->sv_msg) {
		r->sv_msg = calloc(r->submit_cap, sizeof(*r->sv_msg));
		r->sv_iov = calloc(r->submit_cap * MAIO_SENDV_MAX_SEGS, sizeof(*r->sv_iov));
		if (!r->sv_msg || !r->sv_iov) {
			free(r->sv_msg);
			free(r->sv_iov);
			r->sv_msg = NULL;
			r->sv_iov = NULL;
			return throw_desc(env, i, "op", "%lld: out of memory for SENDV", d[MAIO_D_OP]), false;
		}
	}
	int32_t segs[2 * MAIO_SENDV_MAX_SEGS];
	int nseg = (int)(alen / 8);
	memcpy(segs, r->aux + aoff, (size_t)alen);
	/* The pool is needed only if a piece lies in it: a run of held pieces has none. */
	const struct maio_pool *p =
		pool >= 0 && pool < MAIO_MAX_POOLS && r->pools[pool] && r->pools[pool]->base ? r->pools[pool] : NULL;
	struct iovec *iov = r->sv_iov + (size_t)i * MAIO_SENDV_MAX_SEGS;
	int64_t total = 0;
	for (int k = 0; k < nseg; k++) {
		int64_t off = segs[2 * k], len = segs[2 * k + 1];
		if (off < 0) {
			/* -(k + 1): entry k of ringSubmit's buffer list, from its start. */
			uint8_t *a;
			if (!held_take(env, r, -off - 1, len, i, "auxOff", &a))
				return false;
			iov[k].iov_base = a;
			iov[k].iov_len = (size_t)len;
			total += len;
			continue;
		}
		if (!p)
			return throw_desc(env, i, "pool", "%lld is not attached to this ring", pool), false;
		if (len < 0 || (uint64_t)(off + len) > p->size)
			return throw_desc(env, i, "auxOff", "segment at pool offset %lld lies outside the pool",
					  off), false;
		iov[k].iov_base = p->base + off;
		iov[k].iov_len = (size_t)len;
		total += len;
	}
	if (total != d[MAIO_D_LEN])
		return throw_desc(env, i, "len", "%lld is not the sum of the segment lengths",
				  d[MAIO_D_LEN]), false;
	struct msghdr *msg = &r->sv_msg[i];
	memset(msg, 0, sizeof(*msg));
	msg->msg_iov = iov;
	msg->msg_iovlen = (size_t)nseg;
	return true;
}

/* Checks one descriptor against the ring; returns NULL after throwing. */
static bool desc_check(napi_env env, struct maio_ring *r, const int32_t *d, uint32_t i)
{
	int32_t op = d[MAIO_D_OP];
	if (op < 0 || op >= MAIO_OP_COUNT)
		return throw_desc(env, i, "op", "%lld is not a supported operation", op), false;
	bool needs_fd = op != MAIO_OP_NOP && op != MAIO_OP_CANCEL && op != MAIO_OP_PROVIDE;
	if (needs_fd && d[MAIO_D_FD] < 0)
		return throw_desc(env, i, "fd", "%lld is not a file descriptor", d[MAIO_D_FD]), false;
	/* The ring's own descriptors: a CLOSE of the eventfd would leave libuv
	 * polling a number the next socket() reuses. */
	if (needs_fd && (d[MAIO_D_FD] == r->fd || d[MAIO_D_FD] == r->efd))
		return throw_desc(env, i, "fd", "%lld is the ring's own descriptor", d[MAIO_D_FD]),
		       false;
	if (d[MAIO_D_SQE_FLAGS] & ~IOSQE_IO_LINK)
		return throw_desc(env, i, "sqeFlags", "0x%llx: only IOSQE_IO_LINK is allowed",
				  (uint32_t)d[MAIO_D_SQE_FLAGS]), false;
	if ((uint32_t)d[MAIO_D_IOPRIO] & ~ioprio_allowed[op])
		return throw_desc(env, i, "ioprio", "0x%llx is not allowed for this op",
				  (uint32_t)d[MAIO_D_IOPRIO]), false;
	if (op != MAIO_OP_PROVIDE && slot_marked(r->held_slots, (uint32_t)d[MAIO_D_USER_DATA] & MAIO_OPID_SLOT_MASK))
		return throw_desc(env, i, "userData", "0x%llx: its op slot holds the buffers of a send in flight",
				  (uint32_t)d[MAIO_D_USER_DATA]), false;

	switch (op) {
	case MAIO_OP_SEND:
	case MAIO_OP_SEND_ZC:
	case MAIO_OP_RECV: {
		int32_t pool = d[MAIO_D_POOL];
		if (pool < 0 || pool >= MAIO_MAX_POOLS || !r->pools[pool] || !r->pools[pool]->base)
			return throw_desc(env, i, "pool", "%lld is not attached to this ring", pool),
			       false;
		int64_t off = d[MAIO_D_BUF_OFF], len = d[MAIO_D_LEN];
		if (off < 0 || len < 0 || (uint64_t)(off + len) > r->pools[pool]->size)
			return throw_desc(env, i, "bufOff", "%lld + len lies outside the pool",
					  off), false;
		break;
	}
	case MAIO_OP_RECV_MULTI:
		if (d[MAIO_D_BUF_GROUP] < 0 || d[MAIO_D_BUF_GROUP] > 0xffff)
			return throw_desc(env, i, "bufGroup", "%lld is not a buffer group id",
					  d[MAIO_D_BUF_GROUP]), false;
		if (d[MAIO_D_LEN] < 0)
			return throw_desc(env, i, "len", "%lld is negative", d[MAIO_D_LEN]), false;
		if (d[MAIO_D_AUX_LEN] < 0)
			return throw_desc(env, i, "auxLen", "%lld is negative", d[MAIO_D_AUX_LEN]),
			       false;
		break;
	case MAIO_OP_CONNECT: {
		int64_t off = d[MAIO_D_AUX_OFF], len = d[MAIO_D_AUX_LEN];
		if (len < 1 || len > MAIO_AUX_ADDR_MAX)
			return throw_desc(env, i, "auxLen", "%lld is not a sockaddr length", len),
			       false;
		if (off < 0 || (uint64_t)(off + len) > r->aux_len)
			return throw_desc(env, i, "auxOff", "%lld + auxLen lies outside aux", off),
			       false;
		break;
	}
	case MAIO_OP_PROVIDE: {
		int32_t pool = d[MAIO_D_POOL];
		if (pool < 0 || pool >= MAIO_MAX_POOLS || !r->pools[pool] || !r->pools[pool]->base)
			return throw_desc(env, i, "pool", "%lld is not attached to this ring", pool),
			       false;
		int64_t off = d[MAIO_D_BUF_OFF], len = d[MAIO_D_LEN];
		if (len < 1)
			return throw_desc(env, i, "len", "%lld: a provided buffer needs a length", len),
			       false;
		if (off < 0 || (uint64_t)(off + len) > r->pools[pool]->size)
			return throw_desc(env, i, "bufOff", "%lld + len lies outside the pool",
					  off), false;
		if (d[MAIO_D_USER_DATA] < 0 || d[MAIO_D_USER_DATA] > 0xffff)
			return throw_desc(env, i, "userData", "%lld is not a buffer id (0..65535)",
					  d[MAIO_D_USER_DATA]), false;
		if (d[MAIO_D_SQE_FLAGS])
			return throw_desc(env, i, "sqeFlags", "0x%llx: a PROVIDE is not an SQE",
					  (uint32_t)d[MAIO_D_SQE_FLAGS]), false;
		struct maio_bufring *b = bufring_find(r, d[MAIO_D_BUF_GROUP]);
		if (d[MAIO_D_BUF_GROUP] < 0 || d[MAIO_D_BUF_GROUP] > 0xffff || !b)
			return throw_desc(env, i, "bufGroup", "%lld is not a registered buffer group",
					  d[MAIO_D_BUF_GROUP]), false;
		/* Reference the pool now, so applying the batch cannot fail. */
		if (bufring_hold(b, r->pools[pool]) < 0)
			return throw_desc(env, i, "pool", "%lld: out of memory", pool), false;
		break;
	}
	case MAIO_OP_SPLICE: {
		/* In and out are pipes, sockets or (in only) a file at OFF;
		 * src/paths/ builds file -> pipe -> socket and socket -> pipe ->
		 * socket from these. No fixed files: SPLICE_F_FD_IN_FIXED is refused. */
		if (d[MAIO_D_FD_OUT] < 0 || d[MAIO_D_FD_OUT] == r->fd || d[MAIO_D_FD_OUT] == r->efd)
			return throw_desc(env, i, "fdOut", "%lld is not a file descriptor of the caller",
					  d[MAIO_D_FD_OUT]), false;
		if (d[MAIO_D_LEN] < 1)
			return throw_desc(env, i, "len", "%lld: a splice moves at least 1 byte",
					  d[MAIO_D_LEN]), false;
		int64_t off = (int64_t)(((uint64_t)(uint32_t)d[MAIO_D_OFF_HI] << 32) |
					(uint32_t)d[MAIO_D_OFF_LO]);
		if (off < -1)
			return throw_desc(env, i, "offset", "%lld is negative (-1 means none)", off),
			       false;
		if ((uint32_t)d[MAIO_D_MSG_FLAGS] & ~(uint32_t)(SPLICE_F_MOVE | SPLICE_F_NONBLOCK |
								   SPLICE_F_MORE))
			return throw_desc(env, i, "msgFlags",
					  "0x%llx: only SPLICE_F_MOVE, _NONBLOCK and _MORE are allowed",
					  (uint32_t)d[MAIO_D_MSG_FLAGS]), false;
		break;
	}
	case MAIO_OP_SEND_BUF:
		return held_take(env, r, d[MAIO_D_BUF_OFF], d[MAIO_D_LEN], i, "bufOff", &r->sb_addr[i]);
	case MAIO_OP_SENDV:
		return sendv_check(env, r, d, i);
	case MAIO_OP_SENDMSG:
	case MAIO_OP_SENDMSG_ZC:
		return sendmsg_check(env, r, d, i);
	case MAIO_OP_RECVMSG_MULTI: {
		if (!r->recvmsg_ok)
			return throw_desc(env, i, "op", "%lld (RECVMSG_MULTI) is not supported by this ring",
					  op), false;
		if (d[MAIO_D_BUF_GROUP] < 0 || d[MAIO_D_BUF_GROUP] > 0xffff)
			return throw_desc(env, i, "bufGroup", "%lld is not a buffer group id",
					  d[MAIO_D_BUF_GROUP]), false;
		if (!maio_udp_recvmsg_lengths_ok(d[MAIO_D_OFF_LO], d[MAIO_D_OFF_HI]))
			return throw_desc(env, i, "offLo", "%lld: name (0..128) or control (0..256, x 8) bytes out of range",
					  d[MAIO_D_OFF_LO]), false;
		if (!um_arrays(r))
			return throw_desc(env, i, "op", "%lld: out of memory for RECVMSG", op), false;
		struct msghdr *msg = &r->um_msg[i];
		memset(msg, 0, sizeof(*msg));
		msg->msg_namelen = (socklen_t)d[MAIO_D_OFF_LO];
		msg->msg_controllen = (size_t)d[MAIO_D_OFF_HI];
		break;
	}
	case MAIO_OP_SHUTDOWN:
		if (d[MAIO_D_LEN] < SHUT_RD || d[MAIO_D_LEN] > SHUT_RDWR)
			return throw_desc(env, i, "len", "%lld is not a shutdown `how`",
					  d[MAIO_D_LEN]), false;
		break;
	default:
		break;
	}
	return true;
}

static void ring_pool_pin(struct maio_ring *r, int index);

/* A zero-copy send from the pool: pinned and registered at its first one (a
 * lazy pool), then sent as a fixed buffer so the kernel skips pinning pages. */
static void sqe_zc_fixed_pool(struct maio_ring *r, struct io_uring_sqe *sqe, int pool)
{
	if (r->register_lazy[pool])
		ring_pool_pin(r, pool);
	if (r->registered[pool]) {
		sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
		sqe->buf_index = (uint16_t)pool;
	}
}

/* Fills the SQE of descriptor i of the batch (checked by desc_check). */
static void desc_fill(struct maio_ring *r, struct io_uring_sqe *sqe, const int32_t *d, int32_t i)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->fd = d[MAIO_D_FD];
	sqe->user_data = (uint32_t)d[MAIO_D_USER_DATA];
	sqe->flags = (uint8_t)d[MAIO_D_SQE_FLAGS];
	uint32_t slot = (uint32_t)d[MAIO_D_USER_DATA] & MAIO_OPID_SLOT_MASK;
	slot_mark(r->zc_slots, slot, d[MAIO_D_OP] == MAIO_OP_SEND_ZC || d[MAIO_D_OP] == MAIO_OP_SENDMSG_ZC);
	slot_mark(r->dgram_slots, slot, d[MAIO_D_OP] == MAIO_OP_RECVMSG_MULTI);
	sqe->ioprio = (uint16_t)d[MAIO_D_IOPRIO];
	int32_t pool = d[MAIO_D_POOL];
	uint8_t *buf = NULL;
	if (pool >= 0 && pool < MAIO_MAX_POOLS && r->pools[pool])
		buf = r->pools[pool]->base + d[MAIO_D_BUF_OFF];

	switch (d[MAIO_D_OP]) {
	case MAIO_OP_NOP:
		sqe->opcode = IORING_OP_NOP;
		sqe->fd = -1;
		break;
	case MAIO_OP_SEND_BUF:
		sqe->opcode = IORING_OP_SEND;
		sqe->addr = (uintptr_t)r->sb_addr[i];
		sqe->len = (uint32_t)d[MAIO_D_LEN];
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_SEND:
		sqe->opcode = IORING_OP_SEND;
		sqe->addr = (uintptr_t)buf;
		sqe->len = (uint32_t)d[MAIO_D_LEN];
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_SENDV:
		sqe->opcode = IORING_OP_SENDMSG;
		sqe->addr = (uintptr_t)&r->sv_msg[i];
		sqe->len = 1; /* one msghdr */
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_SENDMSG:
		sqe->opcode = IORING_OP_SENDMSG;
		sqe->addr = (uintptr_t)&r->um_msg[i];
		sqe->len = 1;
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_SENDMSG_ZC:
		/* As SENDMSG; the pieces may come from the registered pool. */
		sqe->opcode = MAIO_IORING_OP_SENDMSG_ZC;
		sqe->addr = (uintptr_t)&r->um_msg[i];
		sqe->len = 1;
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
		if (r->sendmsg_zc_fixed)
			sqe_zc_fixed_pool(r, sqe, pool);
		break;
	case MAIO_OP_RECVMSG_MULTI:
		/* The kernel copies the msghdr (only its name and control
		 * lengths matter: it lays each buffer out by them) at prep. */
		sqe->opcode = IORING_OP_RECVMSG;
		sqe->addr = (uintptr_t)&r->um_msg[i];
		sqe->len = 1;
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = (uint16_t)d[MAIO_D_BUF_GROUP];
		sqe->ioprio |= IORING_RECV_MULTISHOT;
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_SEND_ZC:
		sqe->opcode = IORING_OP_SEND_ZC;
		sqe->addr = (uintptr_t)buf;
		sqe->len = (uint32_t)d[MAIO_D_LEN];
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
		sqe_zc_fixed_pool(r, sqe, pool);
		break;
	case MAIO_OP_RECV:
		sqe->opcode = IORING_OP_RECV;
		sqe->addr = (uintptr_t)buf;
		sqe->len = (uint32_t)d[MAIO_D_LEN];
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_RECV_MULTI:
		sqe->opcode = IORING_OP_RECV;
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = (uint16_t)d[MAIO_D_BUF_GROUP];
		sqe->ioprio |= IORING_RECV_MULTISHOT;
		sqe->len = (uint32_t)d[MAIO_D_LEN];
		sqe->msg_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		/* sqe->optlen (6.17, the union of file_index in the 6.1 headers):
		 * the multishot ends, without F_MORE, once this many bytes came
		 * in, so a read quota holds without racing a cancel. 0: no limit;
		 * kernels before 6.17 refuse a nonzero value with -EINVAL. */
		sqe->file_index = (uint32_t)d[MAIO_D_AUX_LEN];
		break;
	case MAIO_OP_ACCEPT:
		sqe->opcode = IORING_OP_ACCEPT;
		sqe->accept_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_CONNECT:
		/* The kernel copies the sockaddr while preparing the SQE, i.e.
		 * inside this enter; the aux slot need not outlive the submit. */
		sqe->opcode = IORING_OP_CONNECT;
		sqe->addr = (uintptr_t)(r->aux + d[MAIO_D_AUX_OFF]);
		sqe->off = (uint32_t)d[MAIO_D_AUX_LEN];
		break;
	case MAIO_OP_CLOSE:
		sqe->opcode = IORING_OP_CLOSE;
		break;
	case MAIO_OP_SHUTDOWN:
		sqe->opcode = IORING_OP_SHUTDOWN;
		sqe->len = (uint32_t)d[MAIO_D_LEN];
		break;
	case MAIO_OP_SPLICE:
		/* io_uring runs splices in an io-wq worker that blocks on blocking
		 * fds (and returns -EAGAIN on O_NONBLOCK ones: no poll is armed). */
		sqe->opcode = IORING_OP_SPLICE;
		sqe->fd = d[MAIO_D_FD_OUT];
		sqe->splice_fd_in = d[MAIO_D_FD];
		sqe->splice_off_in = ((uint64_t)(uint32_t)d[MAIO_D_OFF_HI] << 32) |
				     (uint32_t)d[MAIO_D_OFF_LO];
		sqe->off = (uint64_t)-1; /* no output offset: a pipe or a socket */
		sqe->len = (uint32_t)d[MAIO_D_LEN];
		sqe->splice_flags = (uint32_t)d[MAIO_D_MSG_FLAGS];
		break;
	case MAIO_OP_CANCEL:
		sqe->opcode = IORING_OP_ASYNC_CANCEL;
		sqe->fd = -1;
		sqe->addr = (uint32_t)d[MAIO_D_LEN];
		break;
	}
}

/* Hands `n` filled SQEs to the kernel; returns how many it took or -errno. */
static int ring_flush(struct maio_ring *r, unsigned n)
{
	unsigned flags = r->defer_taskrun ? IORING_ENTER_GETEVENTS : 0;
	int ret = 0;
	for (int attempt = 0; attempt < MAIO_ENTER_RETRIES; attempt++) {
		ret = ring_enter(r, n, 0, flags);
		if (ret != -EAGAIN && ret != -EBUSY)
			break;
		/* Out of request memory or a CQ backlog: let completions drain. */
		ring_get_events(r);
		ring_enter(r, 0, 0, IORING_ENTER_GETEVENTS);
	}
	if (ret > 0) {
		r->inflight += ret;
		stat_add(r, MAIO_RS_SUBMITTED, ret);
	}
	if (ret >= 0 && (unsigned)ret < n) {
		/* The kernel stopped early: take back what it did not consume so
		 * nothing is submitted later behind JS's back. */
		store_release(r->sq_tail, *r->sq_tail - (n - (unsigned)ret));
	} else if (ret < 0) {
		store_release(r->sq_tail, *r->sq_tail - n);
	}
	return ret;
}

/*
 * ringSubmit(ring, count) -> number of descriptors the kernel took, from the
 * start of the batch. Throws (and submits nothing) on a bad descriptor.
 */
MAIO_EXPORT(maio_napi_ring_submit)
{
	napi_value argv[3];
	size_t argc = 3;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not read arguments");
	if (argc < 2)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "expected 2 arguments, got %zu", argc);
	struct maio_ring *r = ring_arg_open(env, argv[0]);
	if (!r)
		return NULL;
	int32_t count;
	if (!maio_arg_int32(env, argv[1], "count", 0, MAIO_HELD_MAX_LIST, &count))
		return NULL;
	/* A getter of the list calling ringSubmit would overwrite the list being read. */
	if (r->hb_reading)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG,
					"ringSubmit called while reading its buffer list");
	/* First, as it may run JS (getters): the ring may be closed after it. */
	r->hb_in_n = 0;
	if (argc > 2 && !held_read_list(env, r, argv[2]))
		return NULL;
	if (r->loop.closed)
		return maio_throw_plain(env, MAIO_ERR_CLOSED, "the ring is closed");
	if (!ring_arrays(r))
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "a shared array was detached");
	if (count > (int32_t)r->submit_cap)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "count must be in [0, %zu], got %d",
					r->submit_cap, count);
	stat_add(r, MAIO_RS_SUBMIT_CALLS, 1);

	/* Validate a private copy: the submit array may be shared with another
	 * thread, and what is checked must be what is submitted. */
	size_t bytes = (size_t)count * MAIO_DESC_INTS * sizeof(int32_t);
	memcpy(r->scratch, r->submit, bytes);
	bool held = r->hb_in_n > 0; /* per-descriptor held lists in use */
	r->hb_n = 0;
	for (int32_t i = 0; i < count; i++) {
		const int32_t *d = r->scratch + (size_t)i * MAIO_DESC_INTS;
		if (held) {
			r->hb_first[i] = r->hb_n;
			r->hb_count[i] = 0;
		}
		if (!desc_check(env, r, d, (uint32_t)i)) {
			if (held)
				held_unmark(r, 0, i);
			return NULL;
		}
		/* Marked now, so a second descriptor of this batch cannot take the slot. */
		if (held && r->hb_count[i] > 0)
			slot_mark(r->held_slots, (uint32_t)d[MAIO_D_USER_DATA] & MAIO_OPID_SLOT_MASK, true);
	}

	/* Buffers first, published before the enter, so a recv armed in this
	 * batch finds them. A valid batch applies every PROVIDE, whatever
	 * happens to its SQEs (JS drops them from a retried remainder). */
	int32_t sqe_count = 0;
	for (int32_t i = 0; i < count; i++) {
		const int32_t *d = r->scratch + (size_t)i * MAIO_DESC_INTS;
		if (d[MAIO_D_OP] == MAIO_OP_PROVIDE)
			bufring_add(r, d);
		else
			sqe_count++;
	}
	bufring_publish(r);

	int32_t done = 0;    /* SQEs the kernel took */
	unsigned pending = 0; /* filled, not yet entered */
	int err = 0;
	for (int32_t i = 0; i < count; i++) {
		if (r->scratch[(size_t)i * MAIO_DESC_INTS + MAIO_D_OP] == MAIO_OP_PROVIDE)
			continue;
		unsigned tail = *r->sq_tail;
		if (tail - load_acquire(r->sq_head) >= r->sq_entries) {
			stat_add(r, MAIO_RS_SQ_FULL, 1);
			int ret = ring_flush(r, pending);
			if (ret < 0) {
				err = ret;
				pending = 0;
				break;
			}
			done += ret;
			if ((unsigned)ret < pending) {
				pending = 0;
				break;
			}
			pending = 0;
			tail = *r->sq_tail;
		}
		desc_fill(r, &r->sqes[tail & r->sq_mask], r->scratch + (size_t)i * MAIO_DESC_INTS, i);
		store_release(r->sq_tail, tail + 1);
		pending++;
	}
	if (pending) {
		int ret = ring_flush(r, pending);
		if (ret < 0)
			err = ret;
		else
			done += ret;
	}
	ring_update_inflight(r);
	/* Report descriptors, not SQEs: up to the first SQE not taken. */
	int32_t taken = count;
	if (done < sqe_count) {
		int32_t seen = 0;
		for (int32_t i = 0; i < count; i++) {
			if (r->scratch[(size_t)i * MAIO_DESC_INTS + MAIO_D_OP] == MAIO_OP_PROVIDE)
				continue;
			if (seen++ == done) {
				taken = i;
				break;
			}
		}
	}
	if (held) {
		/* The kernel took descriptors [0, taken): hold their views until
		 * their final CQEs, which cannot be reaped before this returns. */
		for (int32_t i = 0; i < taken; i++)
			if (r->hb_count[i] > 0)
				held_ref(env, r, (uint32_t)i,
					 (uint32_t)r->scratch[(size_t)i * MAIO_DESC_INTS + MAIO_D_USER_DATA] &
						 MAIO_OPID_SLOT_MASK);
		held_unmark(r, taken, count);
	}
	if (err && done == 0 && sqe_count > 0)
		return maio_throw_errno(env, err, "io_uring_enter");
	napi_value out;
	napi_create_int32(env, taken, &out);
	return out;
}

/* ---- pools ------------------------------------------------------------ */

static int ring_update_slot(struct maio_ring *r, int index, void *base, size_t size)
{
	struct iovec iov = {.iov_base = base, .iov_len = size};
	uint64_t tag = 0;
	struct io_uring_rsrc_update2 up;
	memset(&up, 0, sizeof(up));
	up.offset = (uint32_t)index;
	up.data = (uint64_t)(uintptr_t)&iov;
	up.tags = (uint64_t)(uintptr_t)&tag;
	up.nr = 1;
	int ret = maio_sys_io_uring_register(r->fd, IORING_REGISTER_BUFFERS_UPDATE, &up, sizeof(up));
	return ret < 0 ? ret : ret == 1 ? 0 : -EIO;
}

/*
 * A lazy pool is registered by its first SEND_ZC or SENDMSG_ZC, the only
 * operations that use a fixed buffer: registering pins (faults in) the whole
 * region, which a server that never sends zero-copy (local peers, small
 * sends) does not need. Tried once; when the kernel refuses, they pass plain
 * addresses, as for a pool refused at attach, and the pool records why.
 */
static void ring_pool_pin(struct maio_ring *r, int index)
{
	struct maio_pool *pool = r->pools[index];
	r->register_lazy[index] = false;
	int ret = maio_pool_will_pin(pool);
	if (ret == 0)
		ret = ring_update_slot(r, index, pool->base, pool->size);
	if (ret < 0) {
		maio_pool_pin_failed(pool, -ret);
		return;
	}
	r->registered[index] = true;
	maio_pool_pinned(pool);
}

/*
 * ringRegisterPool(ring, pool, index, lazy = false) -> { registered, pending, error }
 * The pool is attached (descriptors may use it) even when the kernel refuses
 * to register it; SEND_ZC then passes plain addresses. lazy: register at the
 * pool's first SEND_ZC instead of now (`pending` says it is still to come).
 */
MAIO_EXPORT(maio_napi_ring_register_pool)
{
	napi_value argv[4];
	size_t argc = 4;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not read arguments");
	if (argc < 3)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "expected 3 arguments, got %zu", argc);
	bool lazy = false;
	if (argc > 3) {
		napi_valuetype t;
		napi_typeof(env, argv[3], &t);
		if (t != napi_undefined && !maio_arg_bool(env, argv[3], "lazy", &lazy))
			return NULL;
	}
	struct maio_ring *r = ring_arg_open(env, argv[0]);
	int32_t index;
	struct maio_pool *pool;
	if (!r || !(pool = maio_pool_arg_attach(env, argv[1], argv[2], r->pools, &index)))
		return NULL;

	maio_pool_ref(pool);
	r->pools[index] = pool;

	char error[200] = "";
	if (!r->fixed_table) {
		snprintf(error, sizeof(error),
			 "the kernel has no sparse fixed-buffer table (IORING_RSRC_REGISTER_SPARSE)");
	} else if (pool->size > MAIO_REG_BUF_MAX) {
		snprintf(error, sizeof(error),
			 "pool of %zu bytes exceeds the 1 GiB the kernel registers as one buffer",
			 pool->size);
	} else if (lazy) {
		r->register_lazy[index] = true;
	} else {
		int ret = ring_update_slot(r, index, pool->base, pool->size);
		if (ret == 0) {
			r->registered[index] = true;
			maio_pool_pinned(pool);
		} else if (ret == -ENOMEM)
			snprintf(error, sizeof(error),
				 "ENOMEM: RLIMIT_MEMLOCK is too low to pin %zu bytes (raise "
				 "`ulimit -l` or grant CAP_IPC_LOCK)",
				 pool->size);
		else
			snprintf(error, sizeof(error), "%s: IORING_REGISTER_BUFFERS_UPDATE failed",
				 maio_errno_name(-ret));
	}
	napi_value out;
	napi_create_object(env, &out);
	maio_set_bool(env, out, "registered", r->registered[index]);
	maio_set_bool(env, out, "pending", r->register_lazy[index]);
	maio_set_string(env, out, "error", error);
	return out;
}

/* ringUnregisterPool(ring, index): empties the slot and drops its reference. */
MAIO_EXPORT(maio_napi_ring_unregister_pool)
{
	napi_value argv[2];
	struct maio_ring *r = ring_args(env, info, 2, argv);
	int32_t index;
	if (!r || !maio_pool_arg_detach(env, argv[1], r->pools, &index))
		return NULL;
	if (r->registered[index]) {
		ring_update_slot(r, index, NULL, 0);
		maio_pool_unpinned(r->pools[index]);
	}
	r->registered[index] = false;
	r->register_lazy[index] = false;
	maio_pool_unref(r->pools[index]);
	r->pools[index] = NULL;
	return NULL;
}

/*
 * ringRegisterBufRing(ring, group, entries): a provided-buffer ring for
 * buffer group `group` (0..65535) with `entries` slots (a power of two, at
 * most 32768). Empty until PROVIDE descriptors fill it.
 */
MAIO_EXPORT(maio_napi_ring_register_buf_ring)
{
	napi_value argv[3];
	struct maio_ring *r = ring_args(env, info, 3, argv);
	if (!r)
		return NULL;
	int32_t group, entries;
	if (!maio_arg_int32(env, argv[1], "group", 0, 0xffff, &group) ||
	    !maio_arg_int32(env, argv[2], "entries", 1, MAIO_BUF_RING_MAX_ENTRIES, &entries))
		return NULL;
	if (entries & (entries - 1))
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"entries must be a power of two, got %d", entries);
	if (bufring_find(r, group))
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"buffer group %d is registered already", group);
	int slot = -1;
	for (int i = 0; i < MAIO_MAX_BUF_RINGS && slot < 0; i++)
		if (!r->bufrings[i])
			slot = i;
	if (slot < 0)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"a ring holds at most %d buffer groups", MAIO_MAX_BUF_RINGS);

	struct maio_bufring *b = calloc(1, sizeof(*b));
	if (!b)
		return maio_throw_errno(env, -ENOMEM, "ringRegisterBufRing");
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)entries * sizeof(struct io_uring_buf);
	b->map_len = (len + (size_t)page - 1) & ~((size_t)page - 1);
	void *mem = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (mem == MAP_FAILED) {
		int e = -errno;
		free(b);
		return maio_throw_errno(env, e, "mmap");
	}
	b->br = mem;
	b->entries = (uint32_t)entries;
	b->bgid = (uint16_t)group;

	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)mem;
	reg.ring_entries = (uint32_t)entries;
	reg.bgid = (uint16_t)group;
	int ret = maio_sys_io_uring_register(r->fd, IORING_REGISTER_PBUF_RING, &reg, 1);
	if (ret < 0) {
		bufring_free(b);
		return maio_throw_errno(env, ret, "IORING_REGISTER_PBUF_RING");
	}
	r->bufrings[slot] = b;
	return NULL;
}

/* ringUnregisterBufRing(ring, group): the kernel forgets the group; its
 * buffers are the caller's again. */
MAIO_EXPORT(maio_napi_ring_unregister_buf_ring)
{
	napi_value argv[2];
	struct maio_ring *r = ring_args(env, info, 2, argv);
	if (!r)
		return NULL;
	int32_t group;
	if (!maio_arg_int32(env, argv[1], "group", 0, 0xffff, &group))
		return NULL;
	for (int i = 0; i < MAIO_MAX_BUF_RINGS; i++) {
		struct maio_bufring *b = r->bufrings[i];
		if (!b || b->bgid != group)
			continue;
		struct io_uring_buf_reg reg;
		memset(&reg, 0, sizeof(reg));
		reg.bgid = (uint16_t)group;
		int ret = maio_sys_io_uring_register(r->fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
		if (ret < 0)
			return maio_throw_errno(env, ret, "IORING_UNREGISTER_PBUF_RING");
		r->bufrings[i] = NULL;
		bufring_free(b);
		return NULL;
	}
	return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "buffer group %d is not registered",
				group);
}

/* ringClose(ring): idempotent; later calls on the handle throw ERR_MAIO_CLOSED. */
/* ringRef(ring, on): keep the process alive (referenced ops live) or not.
 * Called by the Ring when that changes, never per operation. */
MAIO_EXPORT(maio_napi_ring_ref)
{
	napi_value argv[2];
	bool on;
	struct maio_ring *r = ring_args(env, info, 2, argv);
	if (!r || !maio_arg_bool(env, argv[1], "on", &on))
		return NULL;
	maio_loop_ref(&r->loop, on);
	return NULL;
}

MAIO_EXPORT(maio_napi_ring_close)
{
	return maio_loop_napi_close(env, info, "ring", &maio_ring_tag);
}
