/*
 * Feature probing: what io_uring can do on this kernel, learned once per
 * process from a small throwaway ring. Detection follows liburing's three
 * ways: whether setup works with a set of flags (EINVAL marks them absent),
 * the IORING_FEAT_* bits setup returns, and the opcode probe.
 *
 * The result never changes while the process lives, so it is computed once
 * (pthread_once: worker threads may ask at the same time) and shared.
 */
#define _GNU_SOURCE
#include "maio.h"
#include "napi_exports.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

/*
 * Two ways to hear about completions, both kept: backend.ts picks per thread.
 * COOP_TASKRUN runs task work whenever the thread leaves the kernel (libuv's
 * epoll_wait included) and posts CQEs, which signals the eventfd libuv polls.
 * DEFER_TASKRUN (6.1) runs task work only inside io_uring_enter and wakes
 * libuv only through the eventfd, which some kernel builds signal one RCU
 * grace period late (probe_defer_eventfd). Best first; SUBMIT_ALL (5.18)
 * keeps one bad SQE from stalling the rest of a batch; SINGLE_ISSUER (6.0)
 * lets the kernel skip locking (one ring per thread is maio's rule anyway).
 */
static const uint32_t coop_candidates[] = {
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
		IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	0,
};
static const uint32_t defer_candidate =
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

static struct maio_probe probe_result;
static int probe_enter_errno; /* io_uring_enter refused (seccomp) */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static int read_io_uring_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	if (!f)
		return -1;
	int v = -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static void probe_opcodes(int fd, struct maio_probe *out)
{
	size_t len = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
	struct io_uring_probe *p = calloc(1, len);
	if (!p)
		return;
	if (maio_sys_io_uring_register(fd, IORING_REGISTER_PROBE, p, 256) >= 0) {
		out->last_op = p->last_op;
		for (unsigned i = 0; i < p->ops_len && i < 256; i++)
			if (p->ops[i].flags & IO_URING_OP_SUPPORTED)
				out->ops[p->ops[i].op] = 1;
	}
	free(p);
}

/* Registers and unregisters a provided-buffer ring in user memory. */
static bool probe_pbuf_ring(int fd, uint16_t flags)
{
	size_t sz = 4096; /* 8 entries fit easily; the ring must be page aligned */
	void *mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)mem;
	reg.ring_entries = 8;
	reg.bgid = 7;
	reg.pad = flags; /* named `flags` since 6.5 */
	bool ok = maio_sys_io_uring_register(fd, IORING_REGISTER_PBUF_RING, &reg, 1) == 0;
	if (ok) {
		memset(&reg, 0, sizeof(reg));
		reg.bgid = 7;
		maio_sys_io_uring_register(fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
	}
	munmap(mem, sz);
	return ok;
}

static bool probe_sparse_buffers(int fd)
{
	struct io_uring_rsrc_register rr;
	memset(&rr, 0, sizeof(rr));
	rr.nr = MAIO_MAX_POOLS;
	rr.flags = IORING_RSRC_REGISTER_SPARSE;
	bool ok = maio_sys_io_uring_register(fd, IORING_REGISTER_BUFFERS2, &rr, sizeof(rr)) == 0;
	if (ok)
		maio_sys_io_uring_register(fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	return ok;
}

/*
 * Does this kernel signal a DEFER_TASKRUN ring's eventfd when a wait-queue
 * wake-up becomes task work, or later? Arm a POLL_ADD on a pipe, write a byte
 * from this thread (the wake-up runs here, synchronously), then look at the
 * eventfd without waiting: a prompt kernel has signalled it already. Build
 * 6.18.44-fc-v1272 signals it 12-20 ms later, every time. Three tries, the
 * majority wins; about 0.2 ms in all. Returns 1 prompt, 0 late, -1 unknown.
 */
static int defer_eventfd_try(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = defer_candidate;
	int fd = maio_sys_io_uring_setup(4, &p);
	if (fd < 0)
		return -1;
	int verdict = -1;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int pfd[2] = {-1, -1};
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	void *sq = MAP_FAILED, *sqes = MAP_FAILED;
	size_t sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	if (efd < 0 || pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    maio_sys_io_uring_register(fd, IORING_REGISTER_EVENTFD, &efd, 1) < 0)
		goto out;
	sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		  IORING_OFF_SQ_RING);
	sqes = mmap(NULL, sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		    IORING_OFF_SQES);
	if (sq == MAP_FAILED || sqes == MAP_FAILED)
		goto out;
	unsigned *tail = (unsigned *)((char *)sq + p.sq_off.tail);
	unsigned *array = (unsigned *)((char *)sq + p.sq_off.array);
	unsigned mask = *(unsigned *)((char *)sq + p.sq_off.ring_mask);
	struct io_uring_sqe *sqe = &((struct io_uring_sqe *)sqes)[*tail & mask];
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_POLL_ADD;
	sqe->fd = pfd[0];
	sqe->poll32_events = POLLIN;
	array[*tail & mask] = *tail & mask;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (maio_sys_io_uring_enter(fd, 1, 0, 0, NULL, 0) != 1)
		goto out;
	char c = 0;
	if (write(pfd[1], &c, 1) != 1)
		goto out;
	struct pollfd q = {.fd = efd, .events = POLLIN};
	verdict = poll(&q, 1, 0) == 1 && (q.revents & POLLIN);
out:
	if (sqes != MAP_FAILED)
		munmap(sqes, sqes_len);
	if (sq != MAP_FAILED)
		munmap(sq, sq_len);
	close(fd); /* cancels the poll if it is still armed */
	if (efd >= 0)
		close(efd);
	if (pfd[0] >= 0) {
		close(pfd[0]);
		close(pfd[1]);
	}
	return verdict;
}

static int probe_defer_eventfd(void)
{
	int prompt = 0, late = 0;
	for (int i = 0; i < 3 && prompt < 2 && late < 2; i++) {
		int v = defer_eventfd_try();
		if (v < 0)
			return -1;
		if (v)
			prompt++;
		else
			late++;
	}
	return prompt > late;
}

/* As large as the ring maio makes by default (src/ring/ring.ts: 1024 SQ
 * entries, 4096 CQEs): ring memory counts against RLIMIT_MEMLOCK, and a probe
 * that fits where the real ring does not picked io_uring, then failed every
 * socket with ENOMEM (as non-root under a 64 KiB limit) instead of epoll. */
#define PROBE_SQ_ENTRIES 1024
#define PROBE_CQ_ENTRIES 4096

static int probe_setup(uint32_t flags, struct io_uring_params *p)
{
	memset(p, 0, sizeof(*p));
	p->flags = flags | IORING_SETUP_CQSIZE;
	p->cq_entries = PROBE_CQ_ENTRIES;
	return maio_sys_io_uring_setup(PROBE_SQ_ENTRIES, p);
}

static void probe_run_once(void)
{
	struct maio_probe *out = &probe_result;
	memset(out, 0, sizeof(*out));
	out->last_op = -1;
	out->defer_eventfd = -1;
	out->io_uring_disabled = read_io_uring_disabled();

	int fd = -EINVAL;
	struct io_uring_params p;
	for (size_t i = 0; i < sizeof(coop_candidates) / sizeof(coop_candidates[0]); i++) {
		fd = probe_setup(coop_candidates[i], &p);
		if (fd >= 0) {
			out->coop_flags = coop_candidates[i];
			break;
		}
		if (fd != -EINVAL)
			break; /* EPERM, ENOSYS, ENOMEM: no flag set will help */
	}
	if (fd < 0) {
		out->setup_errno = -fd;
		return;
	}
	out->features = p.features;

	/* A seccomp filter may allow setup but not enter (or the reverse). */
	int r = maio_sys_io_uring_enter(fd, 0, 0, 0, NULL, 0);
	if (r < 0 && r != -EINTR) {
		probe_enter_errno = -r;
		out->setup_errno = -r;
		close(fd);
		return;
	}
	probe_opcodes(fd, out);
	out->pbuf_ring = probe_pbuf_ring(fd, 0);
	out->pbuf_ring_inc = out->pbuf_ring && probe_pbuf_ring(fd, IOU_PBUF_RING_INC);
	out->sparse_buffers = probe_sparse_buffers(fd);
	out->uring_usable = true;
	close(fd);

	struct io_uring_params dp;
	int dfd = probe_setup(defer_candidate, &dp);
	if (dfd >= 0) {
		close(dfd);
		out->defer_flags = defer_candidate;
		out->defer_eventfd = probe_defer_eventfd();
	}
}

int maio_probe_run(struct maio_probe *out)
{
	pthread_once(&probe_once, probe_run_once);
	*out = probe_result;
	return out->uring_usable ? 0 : -out->setup_errno;
}

/* probe() -> NativeProbe (src/core/native.ts). */
MAIO_EXPORT(maio_napi_probe)
{
	struct maio_probe pr;
	maio_probe_run(&pr);

	napi_value out;
	napi_create_object(env, &out);
	maio_set_bool(env, out, "uringUsable", pr.uring_usable);
	maio_set_string(env, out, "setupError", pr.setup_errno ? maio_errno_name(pr.setup_errno) : "");
	maio_set_string(env, out, "failedSyscall",
			!pr.setup_errno ? "" : probe_enter_errno ? "io_uring_enter" : "io_uring_setup");
	maio_set_int(env, out, "ioUringDisabled", pr.io_uring_disabled);

	struct utsname u;
	maio_set_string(env, out, "kernel", uname(&u) == 0 ? u.release : "");

	maio_set_int(env, out, "features", pr.features);
	maio_set_int(env, out, "coopSetupFlags", pr.coop_flags);
	maio_set_int(env, out, "deferSetupFlags", pr.defer_flags);
	maio_set_int(env, out, "deferEventfd", pr.defer_eventfd);
	maio_set_int(env, out, "lastOp", pr.last_op);

	napi_value ops;
	napi_create_array(env, &ops);
	uint32_t n = 0;
	for (int i = 0; i < 256; i++) {
		if (!pr.ops[i])
			continue;
		napi_value v;
		napi_create_int32(env, i, &v);
		napi_set_element(env, ops, n++, v);
	}
	maio_set_value(env, out, "ops", ops);

	maio_set_bool(env, out, "pbufRing", pr.pbuf_ring);
	maio_set_bool(env, out, "pbufRingInc", pr.pbuf_ring_inc);
	maio_set_bool(env, out, "sparseBuffers", pr.sparse_buffers);
	return out;
}
