/*
 * The I/O page pool's region: one anonymous mapping used only for network
 * buffers, mapped once, 2 MiB aligned so transparent huge pages can back it,
 * never inherited by children.
 *
 * Residency: an eager pool is locked (when the limits allow) or prefaulted at
 * creation. A lazy pool (the library's default) is only mapped: pages fault in
 * as buffers are first written, so a process's RSS follows the bytes it uses.
 * Only SEND_ZC with a fixed buffer needs the region registered, and
 * registering pins (faults in) all of it; ring.c does that on the first
 * SEND_ZC and calls maio_pool_pinned, which locks the then resident region.
 * A lazy pool is advised for huge pages only then (maio_pool_will_pin): a
 * huge page makes a sparsely written region resident 2 MiB at a time (128
 * receive buffers of 64 KiB, each written in its first page: 8 MiB instead
 * of 0.5 MiB).
 *
 * Ownership of the bytes inside (size classes, slots, lending) is TypeScript's
 * job (src/pool/). This file only keeps the memory alive while anything can
 * still reach it: the handle, the region ArrayBuffer, every strict-mode view
 * and every ring registration hold a reference; the last one unmaps.
 *
 * All references change on the JS thread that created the pool: Node-API
 * finalizers (also those of external ArrayBuffers) run there, and ring.c
 * registers from the same thread. Handles cannot cross threads (externals are
 * not cloneable), so plain integers suffice.
 */
#define _GNU_SOURCE
#include "maio.h"
#include "napi_exports.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* 5.14 */
#endif

#define MAIO_POOL_ALIGN (2u << 20) /* PMD size: what a transparent huge page needs */
#define MAIO_POOL_MIN (64u << 10)
#define MAIO_POOL_MAX (1u << 30)
#define MAIO_PAGE 4096u

/* Marks the ArrayBuffers poolStrictView made, so poolDetachView detaches
 * nothing else (not the region, not a user's buffer). */
static const napi_type_tag maio_pool_view_tag = {0x6d61696f76696577ULL, 0x2f81c4a09e5b7d33ULL};

void maio_pool_ref(struct maio_pool *pool)
{
	pool->refs++;
}

void maio_pool_unref(struct maio_pool *pool)
{
	if (--pool->refs > 0)
		return;
	if (pool->base) {
		munmap(pool->base, pool->size);
		pool->base = NULL;
	}
	/* The handle external points at the struct itself; keep it until the
	 * handle is finalized so a closed handle still reads `closed`. */
	if (!pool->handle_alive)
		free(pool);
}

static bool pool_has_ipc_lock(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32));
}

/*
 * Before a ring registers the region: 0, or -ENOMEM when the memlock limit
 * cannot cover it (the kernel would pin, i.e. fault in, every page before
 * refusing, leaving a lazy region resident for nothing).
 */
int maio_pool_will_pin(struct maio_pool *pool)
{
	struct rlimit rl;
	if (!pool_has_ipc_lock() && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && pool->size > rl.rlim_cur)
		return -ENOMEM;
	/* Advise before the pin faults the region in, so the faults take huge pages. */
	if (pool->want_huge && !pool->hugepages && pool->base)
		pool->hugepages = madvise(pool->base, pool->size, MADV_HUGEPAGE) == 0;
	return 0;
}

/* The registration was refused after all: the region stays lazy, in small pages. */
void maio_pool_pin_failed(struct maio_pool *pool, int err)
{
	pool->register_errno = err;
	if (!pool->eager && pool->hugepages && pool->base &&
	    madvise(pool->base, pool->size, MADV_NOHUGEPAGE) == 0)
		pool->hugepages = false;
}

void maio_pool_pinned(struct maio_pool *pool)
{
	pool->pinned++;
	pool->register_errno = 0;
	/* Pinning faulted every page in: locking now costs no memory. */
	if (pool->want_lock && !pool->locked && pool->base) {
		if (mlock(pool->base, pool->size) == 0) {
			pool->locked = true;
			pool->lock_errno = 0;
		} else {
			pool->lock_errno = errno;
			munlock(pool->base, pool->size);
		}
	}
}

void maio_pool_unpinned(struct maio_pool *pool)
{
	if (pool->pinned > 0)
		pool->pinned--;
}

/* Maps `size` bytes at a 2 MiB boundary: over-map by the alignment, trim. */
static void *pool_map_aligned(size_t size, int *err)
{
	size_t span = size + MAIO_POOL_ALIGN;
	uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	uintptr_t start = ((uintptr_t)raw + MAIO_POOL_ALIGN - 1) & ~(uintptr_t)(MAIO_POOL_ALIGN - 1);
	size_t head = start - (uintptr_t)raw;
	size_t tail = span - head - size;
	if (head)
		munmap(raw, head);
	if (tail)
		munmap((uint8_t *)start + size, tail);
	return (void *)start;
}

/* Faults every page in now so the first I/O does not. mlock already did. */
static void pool_prefault(uint8_t *base, size_t size)
{
	if (madvise(base, size, MADV_POPULATE_WRITE) == 0)
		return;
	for (size_t off = 0; off < size; off += MAIO_PAGE)
		((volatile uint8_t *)base)[off] = 0;
}

/* Sets up a pool in *pool; returns 0 or -errno (nothing mapped then). */
static int maio_pool_map(struct maio_pool *pool, size_t size, bool hugepages, bool lock,
			 bool eager)
{
	int err = 0;
	uint8_t *base = pool_map_aligned(size, &err);
	if (!base)
		return err;
	pool->base = base;
	pool->size = size;
	/* Advise before the first touch, so the faults allocate huge pages. */
	pool->want_huge = hugepages;
	pool->hugepages = hugepages && eager && madvise(base, size, MADV_HUGEPAGE) == 0;
	/* A forked child must never share or copy network buffers the kernel
	 * may still be reading. */
	pool->dontfork = madvise(base, size, MADV_DONTFORK) == 0;
	pool->locked = false;
	pool->lock_errno = 0;
	pool->eager = eager;
	pool->want_lock = lock;
	if (!eager)
		return 0; /* pages fault in on first touch; see maio_pool_pinned */
	if (lock) {
		if (mlock(base, size) == 0) {
			pool->locked = true;
		} else {
			pool->lock_errno = errno;
			/* mlock may have locked a prefix before failing. */
			munlock(base, size);
		}
	}
	if (!pool->locked)
		pool_prefault(base, size);
	return 0;
}

static void pool_handle_finalize(napi_env env, void *data, void *hint)
{
	struct maio_pool *pool = data;
	pool->handle_alive = false;
	if (!pool->closed) {
		pool->closed = true;
		maio_pool_unref(pool); /* may free: refs reached 0 and no handle */
	} else if (pool->refs == 0) {
		free(pool);
	}
}

static void pool_buffer_finalize(napi_env env, void *data, void *hint)
{
	maio_pool_unref(hint);
}

/* An external ArrayBuffer over [off, off+len) holding one pool reference. */
static napi_value pool_arraybuffer(napi_env env, struct maio_pool *pool, size_t off, size_t len)
{
	napi_value ab;
	maio_pool_ref(pool);
	if (napi_create_external_arraybuffer(env, pool->base + off, len, pool_buffer_finalize,
					     pool, &ab) != napi_ok) {
		maio_pool_unref(pool);
		return NULL;
	}
	return ab;
}

/* poolCreate({ size, hugePages = true, lock = true, eager = true }) -> PoolCreateResult
 * eager: lock or prefault now; false: map only (lock when a ring pins it). */
MAIO_EXPORT(maio_napi_pool_create)
{
	napi_value argv[1];
	if (!maio_args_options(env, info, argv))
		return NULL;
	bool has_size = false;
	napi_has_named_property(env, argv[0], "size", &has_size);
	if (!has_size)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "options.size is required");
	int64_t size = -1;
	bool hugepages = true, lock = true, eager = true;
	if (!maio_opt_int64(env, argv[0], "size", MAIO_POOL_MIN, MAIO_POOL_MAX, &size) ||
	    !maio_opt_bool(env, argv[0], "hugePages", &hugepages) ||
	    !maio_opt_bool(env, argv[0], "lock", &lock) ||
	    !maio_opt_bool(env, argv[0], "eager", &eager))
		return NULL;
	if (size < 0)
		return maio_throw_type(env, MAIO_ERR_INVALID_ARG, "options.size is required");
	if (size % MAIO_PAGE)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"size must be a multiple of %u, got %lld", MAIO_PAGE,
					(long long)size);

	struct maio_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return maio_throw_errno(env, ENOMEM, "calloc");
	int err = maio_pool_map(pool, (size_t)size, hugepages, lock, eager);
	if (err < 0) {
		free(pool);
		return maio_throw_errno(env, err, "mmap");
	}
	pool->refs = 1; /* the handle's */
	pool->handle_alive = true;
	napi_value handle = maio_wrap_handle(env, pool, &maio_pool_tag, pool_handle_finalize, NULL);
	if (!handle) {
		munmap(pool->base, pool->size);
		free(pool);
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not create the pool handle");
	}
	/* From here the handle owns the pool: failures below leave cleanup to GC. */
	napi_value region = pool_arraybuffer(env, pool, 0, pool->size);
	if (!region)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not create the region ArrayBuffer");

	char addr[32];
	snprintf(addr, sizeof(addr), "%lx", (unsigned long)(uintptr_t)pool->base);
	napi_value out;
	napi_create_object(env, &out);
	maio_set_value(env, out, "handle", handle);
	maio_set_value(env, out, "region", region);
	maio_set_string(env, out, "address", addr);
	maio_set_int(env, out, "size", (int64_t)pool->size);
	maio_set_bool(env, out, "locked", pool->locked);
	maio_set_string(env, out, "lockError", pool->lock_errno ? maio_errno_name(pool->lock_errno) : "");
	maio_set_bool(env, out, "hugePages", pool->hugepages);
	maio_set_bool(env, out, "dontFork", pool->dontfork);
	return out;
}

struct maio_pool *maio_pool_arg_attach(napi_env env, napi_value v_pool, napi_value v_index,
				       struct maio_pool *const *slots, int32_t *index)
{
	void *p;
	if (!maio_arg_handle(env, v_pool, "pool", &maio_pool_tag, &p))
		return NULL;
	struct maio_pool *pool = p;
	if (pool->closed || !pool->base) {
		maio_throw_plain(env, MAIO_ERR_CLOSED, "the pool is closed");
		return NULL;
	}
	if (!maio_arg_int32(env, v_index, "index", 0, MAIO_MAX_POOLS - 1, index))
		return NULL;
	if (slots[*index]) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "pool slot %d is in use", *index);
		return NULL;
	}
	return pool;
}

bool maio_pool_arg_detach(napi_env env, napi_value v_index, struct maio_pool *const *slots,
			  int32_t *index)
{
	if (!maio_arg_int32(env, v_index, "index", 0, MAIO_MAX_POOLS - 1, index))
		return false;
	if (!slots[*index]) {
		maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE, "pool slot %d is empty", *index);
		return false;
	}
	return true;
}

/* A handle that is ours and not closed, or NULL after throwing. */
static struct maio_pool *pool_arg_open(napi_env env, napi_value v)
{
	void *p;
	if (!maio_arg_handle(env, v, "pool", &maio_pool_tag, &p))
		return NULL;
	struct maio_pool *pool = p;
	if (pool->closed) {
		maio_throw_plain(env, MAIO_ERR_CLOSED, "the pool is closed");
		return NULL;
	}
	return pool;
}

/*
 * poolStrictView(pool, offset, length) -> ArrayBuffer over part of the region.
 *
 * Overlapping external ArrayBuffers (this one and the region's, with the same
 * start pointer at offset 0) are safe on Node 20: the external path wraps the
 * memory in a node::Buffer backing store and V8 registers only shared/wasm
 * backing stores by pointer, so the old "duplicate backing store" abort cannot
 * happen. test/pool/strict.test.ts checks offset 0 and overlapping views
 * (tests run with --expose-gc to exercise the finalizers).
 */
MAIO_EXPORT(maio_napi_pool_strict_view)
{
	napi_value argv[3];
	if (!maio_args(env, info, 3, argv, NULL))
		return NULL;
	struct maio_pool *pool = pool_arg_open(env, argv[0]);
	if (!pool)
		return NULL;
	int64_t off, len;
	if (!maio_arg_int64(env, argv[1], "offset", 0, (int64_t)pool->size - 1, &off) ||
	    !maio_arg_int64(env, argv[2], "length", 1, (int64_t)pool->size, &len))
		return NULL;
	if (off + len > (int64_t)pool->size)
		return maio_throw_range(env, MAIO_ERR_OUT_OF_RANGE,
					"offset + length (%lld) exceeds the pool size %zu",
					(long long)(off + len), pool->size);
	napi_value ab = pool_arraybuffer(env, pool, (size_t)off, (size_t)len);
	if (!ab)
		return maio_throw_plain(env, MAIO_ERR_INVALID_ARG, "could not create the view");
	napi_type_tag_object(env, ab, &maio_pool_view_tag);
	return ab;
}

/* poolDetachView(view): detaches a strict view; its old typed arrays read
 * length 0. Detaching twice is a no-op. */
MAIO_EXPORT(maio_napi_pool_detach_view)
{
	napi_value argv[1];
	if (!maio_args(env, info, 1, argv, NULL))
		return NULL;
	bool is_ab = false, ours = false;
	napi_is_arraybuffer(env, argv[0], &is_ab);
	if (is_ab)
		napi_check_object_type_tag(env, argv[0], &maio_pool_view_tag, &ours);
	if (!ours)
		return maio_throw_type(env, MAIO_ERR_INVALID_HANDLE,
				       "view is not an ArrayBuffer made by poolStrictView");
	bool detached = false;
	napi_is_detached_arraybuffer(env, argv[0], &detached);
	if (!detached && napi_detach_arraybuffer(env, argv[0]) != napi_ok)
		return maio_throw_type(env, MAIO_ERR_INVALID_HANDLE, "view could not be detached");
	return NULL;
}

/* poolClose(pool): later calls with the handle throw ERR_MAIO_CLOSED; the
 * memory stays mapped while any ArrayBuffer or registration still holds it. */
MAIO_EXPORT(maio_napi_pool_close)
{
	napi_value argv[1];
	if (!maio_args(env, info, 1, argv, NULL))
		return NULL;
	void *p;
	if (!maio_arg_handle(env, argv[0], "pool", &maio_pool_tag, &p))
		return NULL;
	struct maio_pool *pool = p;
	if (!pool->closed) {
		pool->closed = true;
		maio_pool_unref(pool); /* handle_alive keeps the struct */
	}
	return NULL;
}

/* Bytes of the region resident in memory (mincore), or -errno. */
static int64_t pool_resident(const struct maio_pool *pool)
{
	size_t pages = pool->size / MAIO_PAGE;
	unsigned char *vec = malloc(pages);
	if (!vec)
		return -ENOMEM;
	int64_t bytes = 0;
	if (mincore(pool->base, pool->size, vec) < 0) {
		bytes = -errno;
	} else {
		for (size_t i = 0; i < pages; i++)
			if (vec[i] & 1)
				bytes += MAIO_PAGE;
	}
	free(vec);
	return bytes;
}

/*
 * poolInfo(pool) -> { eager, locked, lockError, hugePages, pinned, registerError, residentBytes }
 * The pool's memory state now (a lazy pool changes when a ring pins it).
 */
MAIO_EXPORT(maio_napi_pool_info)
{
	napi_value argv[1];
	if (!maio_args(env, info, 1, argv, NULL))
		return NULL;
	struct maio_pool *pool = pool_arg_open(env, argv[0]);
	if (!pool)
		return NULL;
	int64_t resident = pool->base ? pool_resident(pool) : 0;
	if (resident < 0)
		return maio_throw_errno(env, (int)-resident, "mincore");
	napi_value out;
	napi_create_object(env, &out);
	maio_set_bool(env, out, "eager", pool->eager);
	maio_set_bool(env, out, "locked", pool->locked);
	maio_set_string(env, out, "lockError", pool->lock_errno ? maio_errno_name(pool->lock_errno) : "");
	maio_set_bool(env, out, "hugePages", pool->hugepages);
	maio_set_int(env, out, "pinned", pool->pinned);
	maio_set_string(env, out, "registerError",
			pool->register_errno ? maio_errno_name(pool->register_errno) : "");
	maio_set_int(env, out, "residentBytes", resident);
	return out;
}
