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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Best first. SUBMIT_ALL (5.18) keeps one bad SQE from stalling the rest of
 * a batch; DEFER_TASKRUN (6.1) runs completions only when we enter, which
 * fits an event loop that reaps in one place. */
static const uint32_t setup_candidates[] = {
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	0,
};

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

/* As large as the ring maio makes by default (src/ring/ring.ts: 1024 SQ
 * entries, 4096 CQEs): ring memory counts against RLIMIT_MEMLOCK, and a probe
 * that fits where the real ring does not picked io_uring, then failed every
 * socket with ENOMEM (as non-root under a 64 KiB limit) instead of epoll. */
#define PROBE_SQ_ENTRIES 1024
#define PROBE_CQ_ENTRIES 4096

static void probe_run_once(void)
{
	struct maio_probe *out = &probe_result;
	memset(out, 0, sizeof(*out));
	out->last_op = -1;
	out->io_uring_disabled = read_io_uring_disabled();

	int fd = -EINVAL;
	struct io_uring_params p;
	for (size_t i = 0; i < sizeof(setup_candidates) / sizeof(setup_candidates[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = setup_candidates[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = PROBE_CQ_ENTRIES;
		fd = maio_sys_io_uring_setup(PROBE_SQ_ENTRIES, &p);
		if (fd >= 0) {
			out->setup_flags = setup_candidates[i];
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
	out->defer_taskrun = (out->setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0;

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
	maio_set_int(env, out, "setupFlags", pr.setup_flags);
	maio_set_bool(env, out, "deferTaskrun", pr.defer_taskrun);
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
