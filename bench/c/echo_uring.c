/*
 * echo_uring: an echo server on the kernel path maio uses, with no JavaScript:
 * multishot accept, multishot recv into a provided-buffer ring, one SEND per
 * received buffer, the buffer back into the ring when its send completes, and
 * every SQE of a batch submitted in one io_uring_enter. It blocks in
 * io_uring_enter (no event loop, no eventfd), so it measures what maio's echo
 * would cost if its JavaScript took no time: the bound of BENCHMARKS.md's
 * echo-64b-1000c-2w note. A measuring aid, not a contender: a short send is not
 * resent (small echoes only).
 *
 *   echo_uring PORT [THREADS]      (each thread: own ring, own SO_REUSEPORT listener)
 *   cc -O2 -Wall -o bench/build/echo_uring bench/c/echo_uring.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ENTRIES 4096
#define NBUF 4096 /* provided buffers per thread (a power of two) */
#define BUFSZ 2048
#define BGID 0

enum { T_ACCEPT = 1, T_RECV = 2, T_SEND = 3 };
#define UD(t, fd, bid) (((uint64_t)(t) << 56) | ((uint64_t)(uint32_t)(bid) << 24) | (uint32_t)(fd))

struct ring {
	int fd;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	unsigned sq_local_tail, to_submit;
	struct io_uring_buf_ring *br;
	char *bufs;
	unsigned short br_tail;
};

static int port;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void ring_init(struct ring *r)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
	r->fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &p);
	if (r->fd < 0) die("io_uring_setup");
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (cq_sz > sq_sz) sq_sz = cq_sz;
	char *sq = mmap(0, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED) die("mmap sq");
	char *cq = sq; /* IORING_FEAT_SINGLE_MMAP (5.4+) */
	r->sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED) die("mmap sqes");
	r->sq_head = (unsigned *)(sq + p.sq_off.head);
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	r->sq_local_tail = *r->sq_tail;
	r->to_submit = 0;

	/* the provided-buffer ring */
	size_t br_sz = NBUF * sizeof(struct io_uring_buf);
	r->br = mmap(0, br_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	r->bufs = mmap(0, (size_t)NBUF * BUFSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r->br == MAP_FAILED || r->bufs == MAP_FAILED) die("mmap bufs");
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)r->br;
	reg.ring_entries = NBUF;
	reg.bgid = BGID;
	if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) die("register pbuf ring");
	r->br_tail = 0;
}

static void buf_give(struct ring *r, unsigned bid)
{
	struct io_uring_buf *b = &r->br->bufs[r->br_tail & (NBUF - 1)];
	b->addr = (uint64_t)(uintptr_t)(r->bufs + (size_t)bid * BUFSZ);
	b->len = BUFSZ;
	b->bid = (unsigned short)bid;
	r->br_tail++;
	__atomic_store_n(&r->br->tail, r->br_tail, __ATOMIC_RELEASE);
}

static struct io_uring_sqe *sqe_get(struct ring *r)
{
	if (r->sq_local_tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE) >= ENTRIES) {
		syscall(__NR_io_uring_enter, r->fd, r->to_submit, 0, 0, NULL, 0);
		r->to_submit = 0;
	}
	unsigned idx = r->sq_local_tail & *r->sq_mask;
	struct io_uring_sqe *s = &r->sqes[idx];
	memset(s, 0, sizeof(*s));
	r->sq_array[idx] = idx;
	r->sq_local_tail++;
	r->to_submit++;
	__atomic_store_n(r->sq_tail, r->sq_local_tail, __ATOMIC_RELEASE);
	return s;
}

static void arm_recv(struct ring *r, int fd)
{
	struct io_uring_sqe *s = sqe_get(r);
	s->opcode = IORING_OP_RECV;
	s->fd = fd;
	s->ioprio = IORING_RECV_MULTISHOT;
	s->flags = IOSQE_BUFFER_SELECT;
	s->buf_group = BGID;
	s->user_data = UD(T_RECV, fd, 0);
}

static void arm_accept(struct ring *r, int lfd)
{
	struct io_uring_sqe *s = sqe_get(r);
	s->opcode = IORING_OP_ACCEPT;
	s->fd = lfd;
	s->ioprio = IORING_ACCEPT_MULTISHOT;
	s->user_data = UD(T_ACCEPT, lfd, 0);
}

static void *serve(void *arg)
{
	(void)arg;
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	if (lfd < 0) die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0) die("bind");
	if (listen(lfd, 4096) < 0) die("listen");
	struct ring r;
	ring_init(&r);
	for (unsigned i = 0; i < NBUF; i++) buf_give(&r, i);
	arm_accept(&r, lfd);
	for (;;) {
		int n = (int)syscall(__NR_io_uring_enter, r.fd, r.to_submit, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		if (n < 0 && errno != EINTR && errno != EBUSY && errno != EAGAIN) die("io_uring_enter");
		r.to_submit = 0;
		unsigned head = *r.cq_head, tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
		for (; head != tail; head++) {
			struct io_uring_cqe *c = &r.cqes[head & *r.cq_mask];
			int type = (int)(c->user_data >> 56), fd = (int)(uint32_t)c->user_data;
			if (type == T_ACCEPT) {
				if (c->res >= 0) arm_recv(&r, c->res);
				if (!(c->flags & IORING_CQE_F_MORE)) arm_accept(&r, lfd);
			} else if (type == T_RECV) {
				if (c->res > 0) {
					unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
					struct io_uring_sqe *s = sqe_get(&r);
					s->opcode = IORING_OP_SEND;
					s->fd = fd;
					s->addr = (uint64_t)(uintptr_t)(r.bufs + (size_t)bid * BUFSZ);
					s->len = (unsigned)c->res;
					s->msg_flags = MSG_NOSIGNAL | MSG_WAITALL;
					s->user_data = UD(T_SEND, fd, bid);
				}
				if (!(c->flags & IORING_CQE_F_MORE)) {
					if (c->res > 0 || c->res == -ENOBUFS) arm_recv(&r, fd);
					else close(fd);
				}
			} else if (type == T_SEND) {
				buf_give(&r, (unsigned)(c->user_data >> 24) & 0xffffffu);
			}
		}
		__atomic_store_n(r.cq_head, head, __ATOMIC_RELEASE);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: echo_uring PORT [THREADS]\n");
		return 2;
	}
	port = atoi(argv[1]);
	int threads = argc > 2 ? atoi(argv[2]) : 1;
	pthread_t t[64];
	for (int i = 1; i < threads && i < 64; i++) pthread_create(&t[i], NULL, serve, NULL);
	serve(NULL);
	return 0;
}
