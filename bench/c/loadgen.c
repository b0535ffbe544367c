/*
 * loadgen: the TCP load generator of maio's benchmark. One thread, epoll,
 * nonblocking sockets. It prints one JSON line on stdout with its figures, and
 * "phase <name>" lines on stderr at the edges of the measured window so that the
 * harness can sample the server's CPU time and memory exactly there.
 *
 *   loadgen echo    --port P [--conns N] [--size S] [--depth K] [--duration D] [--warmup W]
 *   loadgen reqresp --port P [--conns N] [--size S] [--resp R] [--depth K] [--duration D] [--warmup W]
 *   loadgen send    --port P [--write W] [--duration D] [--warmup W]      (D = 0: until the peer closes)
 *   loadgen recv    [--port P] [--read R] [--duration D] [--warmup W]     (prints "listening <port>")
 *   loadgen idle    --port P [--conns N] [--active-pct P] [--size S] [--hold H] [--duration D] [--warmup W]
 *
 * Common: --host A (127.0.0.1), --batch B (connects in flight at once, 128).
 * echo/reqresp: --messages M ends the measured window after M round trips (or at --duration).
 * Latency is timed per request with CLOCK_MONOTONIC, from the moment the request
 * is queued to the moment its last response byte is read.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH (256 * 1024)
#define IO_TIMEOUT_MS 10000 /* no progress for this long means the peer is stuck */

struct opts {
	const char *mode, *host;
	int port, conns, depth, batch;
	long size, resp, wsize, rsize;
	double duration, warmup, hold, active_pct;
	long long messages; /* round trips that end the measured window, 0: none */
};

struct conn {
	int fd;
	int active;
	uint32_t inflight;     /* requests queued and not yet fully answered */
	uint32_t head;         /* index of the oldest in-flight timestamp */
	uint64_t *sent_at;     /* ring of `depth` timestamps */
	long out_pending;      /* request bytes not yet written */
	long in_have;          /* response bytes received toward the oldest request */
	int want_out;
};

static struct opts o = {
	.host = "127.0.0.1", .conns = 1, .depth = 1, .batch = 128,
	.size = 64, .resp = -1, .wsize = 65536, .rsize = 65536,
	.duration = 5, .warmup = 1, .hold = 1, .active_pct = 1,
};
static int ep;
static char *outbuf, *scratch;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "loadgen %s: ", o.mode ? o.mode : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void phase(const char *name)
{
	fprintf(stderr, "phase %s\n", name);
	fflush(stderr);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static void parse(int argc, char **argv)
{
	if (argc < 2)
		die("usage: loadgen echo|reqresp|send|recv|idle --port P [options] (see bench/c/loadgen.c)");
	o.mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i];
		if (i + 1 >= argc)
			die("option %s needs a value", k);
		const char *v = argv[++i];
		if (!strcmp(k, "--host")) o.host = v;
		else if (!strcmp(k, "--port")) o.port = atoi(v);
		else if (!strcmp(k, "--conns")) o.conns = atoi(v);
		else if (!strcmp(k, "--size")) o.size = atol(v);
		else if (!strcmp(k, "--resp")) o.resp = atol(v);
		else if (!strcmp(k, "--depth")) o.depth = atoi(v);
		else if (!strcmp(k, "--write")) o.wsize = atol(v);
		else if (!strcmp(k, "--read")) o.rsize = atol(v);
		else if (!strcmp(k, "--duration")) o.duration = atof(v);
		else if (!strcmp(k, "--warmup")) o.warmup = atof(v);
		else if (!strcmp(k, "--hold")) o.hold = atof(v);
		else if (!strcmp(k, "--active-pct")) o.active_pct = atof(v);
		else if (!strcmp(k, "--batch")) o.batch = atoi(v);
		else if (!strcmp(k, "--messages")) o.messages = atoll(v);
		else die("unknown option %s", k);
	}
	if (o.resp < 0)
		o.resp = o.size;
	if (o.conns < 1 || o.depth < 1 || o.batch < 1 || o.size < 1 || o.resp < 1 ||
	    o.wsize < 1 || o.rsize < 1 || o.duration < 0 || o.warmup < 0 || o.messages < 0)
		die("invalid option value");
	if (strcmp(o.mode, "recv") && (o.port <= 0 || o.port > 65535))
		die("--port is required");
}

static struct sockaddr_in peer_addr(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o.port) };
	if (inet_pton(AF_INET, o.host, &sa.sin_addr) != 1)
		die("bad --host %s", o.host);
	return sa;
}

static void ep_set(int fd, uint32_t events, uint32_t id, int op)
{
	struct epoll_event ev = { .events = events, .data.u32 = id };
	if (epoll_ctl(ep, op, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* Connects conns[0..n) in batches, so that a server's accept backlog is not flooded. */
static void connect_all(struct conn *cs, int n)
{
	struct sockaddr_in sa = peer_addr();
	struct epoll_event evs[256];
	int one = 1;
	for (int base = 0; base < n; base += o.batch) {
		int end = base + o.batch < n ? base + o.batch : n;
		for (int i = base; i < end; i++) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd < 0)
				die("socket (connection %d of %d): %s (raise the fd limit?)", i, n, strerror(errno));
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
				die("connect to %s:%d: %s", o.host, o.port, strerror(errno));
			cs[i].fd = fd;
			ep_set(fd, EPOLLOUT, (uint32_t)i, EPOLL_CTL_ADD);
		}
		int left = end - base;
		uint64_t deadline = now_ns() + IO_TIMEOUT_MS * 1000000ull;
		while (left > 0) {
			int k = epoll_wait(ep, evs, 256, 100);
			if (k < 0 && errno != EINTR)
				die("epoll_wait: %s", strerror(errno));
			for (int j = 0; j < k; j++) {
				struct conn *c = &cs[evs[j].data.u32];
				int err = 0;
				socklen_t len = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (err)
					die("connect to %s:%d: %s", o.host, o.port, strerror(err));
				ep_set(c->fd, EPOLLIN, evs[j].data.u32, EPOLL_CTL_MOD);
				left--;
			}
			if (now_ns() > deadline)
				die("connect: %d of %d connections still pending after %d ms", left, n, IO_TIMEOUT_MS);
		}
	}
}

/* ---- request/response (echo, reqresp, idle) ---- */

static uint32_t *samples;
static size_t nsamples, capsamples;

static void sample_add(uint64_t ns)
{
	if (nsamples == capsamples) {
		capsamples = capsamples ? capsamples * 2 : 1 << 16;
		samples = realloc(samples, capsamples * sizeof(*samples));
		if (!samples)
			die("out of memory for latency samples");
	}
	samples[nsamples++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(double p)
{
	if (!nsamples)
		return 0;
	size_t i = (size_t)(p * (double)(nsamples - 1) + 0.5);
	return samples[i] / 1000.0;
}

static void conn_flush(struct conn *c, uint32_t id)
{
	while (c->out_pending > 0) {
		ssize_t n = send(c->fd, outbuf, (size_t)c->out_pending, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_pending -= n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			break;
		} else {
			die("write to server failed on connection %u: %s (did the server close it?)",
			    id, n < 0 ? strerror(errno) : "short write");
		}
	}
	int want = c->out_pending > 0;
	if (want != c->want_out) {
		ep_set(c->fd, EPOLLIN | (want ? EPOLLOUT : 0), id, EPOLL_CTL_MOD);
		c->want_out = want;
	}
}

static void conn_queue(struct conn *c, uint64_t t)
{
	c->sent_at[(c->head + c->inflight) % (uint32_t)o.depth] = t;
	c->inflight++;
	c->out_pending += o.size;
}

/* Runs the request/response loop until `until`; samples latency inside [from, until). */
static uint64_t rr_loop(struct conn *cs, int n, uint64_t from, uint64_t until, int refill)
{
	struct epoll_event evs[256];
	uint64_t done_in_window = 0, last_progress = now_ns();
	for (;;) {
		uint64_t now = now_ns();
		if (now >= until)
			break;
		if (o.messages > 0 && done_in_window >= (uint64_t)o.messages)
			break;
		int any_inflight = 0;
		int timeout = (int)((until - now) / 1000000) + 1;
		int k = epoll_wait(ep, evs, 256, timeout > 100 ? 100 : timeout);
		if (k < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (int j = 0; j < k; j++) {
			uint32_t id = evs[j].data.u32;
			struct conn *c = &cs[id];
			if (evs[j].events & EPOLLIN) {
				ssize_t got = recv(c->fd, scratch, SCRATCH, 0);
				if (got == 0)
					die("server closed connection %u (%d open)", id, n);
				if (got < 0 && errno != EAGAIN && errno != EINTR)
					die("read from server on connection %u: %s", id, strerror(errno));
				if (got > 0) {
					last_progress = now;
					c->in_have += got;
					while (c->in_have >= o.resp && c->inflight > 0) {
						c->in_have -= o.resp;
						uint64_t t = c->sent_at[c->head];
						c->head = (c->head + 1) % (uint32_t)o.depth;
						c->inflight--;
						if (now >= from) {
							sample_add(now - t);
							done_in_window++;
						}
						if (refill && c->active)
							conn_queue(c, now);
					}
					if (c->inflight == 0 && c->in_have > 0)
						die("server sent %ld unexpected bytes on connection %u", c->in_have, id);
				}
			}
			if ((evs[j].events & (EPOLLOUT | EPOLLIN)) || c->out_pending)
				conn_flush(c, id);
			if (evs[j].events & (EPOLLERR | EPOLLHUP) && !(evs[j].events & EPOLLIN))
				die("connection %u failed (error or hang-up from the server)", id);
		}
		if (!refill) {
			for (int i = 0; i < n && !any_inflight; i++)
				any_inflight = cs[i].inflight > 0;
			if (!any_inflight)
				break;
		}
		if (now - last_progress > IO_TIMEOUT_MS * 1000000ull)
			die("no response from the server for %d ms", IO_TIMEOUT_MS);
	}
	return done_in_window;
}

static void run_rr(void)
{
	int idle = !strcmp(o.mode, "idle");
	if (idle)
		o.resp = o.size;
	outbuf = xmalloc((size_t)o.size * (size_t)o.depth);
	memset(outbuf, 'm', (size_t)o.size * (size_t)o.depth);
	struct conn *cs = xmalloc(sizeof(*cs) * (size_t)o.conns);
	for (int i = 0; i < o.conns; i++)
		cs[i].sent_at = xmalloc(sizeof(uint64_t) * (size_t)o.depth);
	phase("connect");
	uint64_t t0 = now_ns();
	connect_all(cs, o.conns);
	double connect_s = (now_ns() - t0) / 1e9;
	int active = 0;

	if (idle) {
		/* One round trip on every connection, so the server has really taken each one in. */
		uint64_t now = now_ns();
		for (int i = 0; i < o.conns; i++) {
			conn_queue(&cs[i], now);
			conn_flush(&cs[i], (uint32_t)i);
		}
		rr_loop(cs, o.conns, UINT64_MAX, now + 60 * 1000000000ull, 0);
		for (int i = 0; i < o.conns; i++)
			if (cs[i].inflight)
				die("connection %d was not answered within 60 s", i);
		nsamples = 0;
		phase("idle");
		usleep((useconds_t)(o.hold * 1e6));
		/* Spread the active ones evenly over the set. */
		int want = (int)(o.conns * o.active_pct / 100.0 + 0.5);
		if (want < 1)
			want = 1;
		double step = (double)o.conns / want;
		for (int i = 0; i < want; i++)
			cs[(int)(i * step)].active = 1;
	} else {
		for (int i = 0; i < o.conns; i++)
			cs[i].active = 1;
	}

	uint64_t start = now_ns();
	for (int i = 0; i < o.conns; i++) {
		if (!cs[i].active)
			continue;
		active++;
		for (int d = 0; d < o.depth; d++)
			conn_queue(&cs[i], start);
		conn_flush(&cs[i], (uint32_t)i);
	}
	phase("warmup");
	uint64_t from = start + (uint64_t)(o.warmup * 1e9);
	uint64_t until = from + (uint64_t)(o.duration * 1e9);
	rr_loop(cs, o.conns, UINT64_MAX, from, 1);
	phase("measure");
	double cpu0 = cpu_s();
	uint64_t m0 = now_ns();
	uint64_t done = rr_loop(cs, o.conns, m0, until, 1);
	double secs = (now_ns() - m0) / 1e9;
	double cpu = cpu_s() - cpu0;
	phase("done");
	qsort(samples, nsamples, sizeof(*samples), cmp_u32);
	printf("{\"mode\":\"%s\",\"conns\":%d,\"active\":%d,\"size\":%ld,\"resp\":%ld,\"depth\":%d,"
	       "\"seconds\":%.3f,\"round_trips\":%llu,\"rtps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
	       "\"p999_us\":%.1f,\"max_us\":%.1f,\"connect_s\":%.3f,\"loadgen_cpu_s\":%.3f}\n",
	       o.mode, o.conns, active, o.size, o.resp, o.depth, secs, (unsigned long long)done,
	       done / secs, pct_us(0.5), pct_us(0.99), pct_us(0.999),
	       nsamples ? samples[nsamples - 1] / 1000.0 : 0, connect_s, cpu);
	fflush(stdout);
}

/* ---- bulk (send, recv) ---- */

static void wait_fd(int fd, uint32_t events, const char *what)
{
	struct epoll_event ev;
	int k;
	do {
		k = epoll_wait(ep, &ev, 1, IO_TIMEOUT_MS);
	} while (k < 0 && errno == EINTR);
	if (k < 0)
		die("epoll_wait: %s", strerror(errno));
	if (k == 0)
		die("%s: peer made no progress for %d ms", what, IO_TIMEOUT_MS);
	(void)fd;
	(void)events;
}

static void report_bulk(unsigned long long bytes, double secs, double cpu)
{
	double gb = bytes / 1e9;
	printf("{\"mode\":\"%s\",\"bytes\":%llu,\"seconds\":%.3f,\"gbps\":%.3f,\"cpu_s\":%.3f,"
	       "\"cpu_s_per_gb\":%.4f,\"io_size\":%ld}\n",
	       o.mode, bytes, secs, bytes * 8 / secs / 1e9, cpu, gb > 0 ? cpu / gb : 0,
	       !strcmp(o.mode, "send") ? o.wsize : o.rsize);
	fflush(stdout);
}

static void run_send(void)
{
	struct conn c = { 0 };
	outbuf = xmalloc((size_t)o.wsize);
	memset(outbuf, 'm', (size_t)o.wsize);
	connect_all(&c, 1);
	ep_set(c.fd, EPOLLOUT, 0, EPOLL_CTL_MOD);
	phase("warmup");
	uint64_t start = now_ns();
	uint64_t from = start + (uint64_t)(o.warmup * 1e9);
	uint64_t until = o.duration > 0 ? from + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
	unsigned long long bytes = 0;
	int measuring = 0;
	double cpu0 = 0;
	uint64_t m0 = 0, now;
	while ((now = now_ns()) < until) {
		if (!measuring && now >= from) {
			measuring = 1;
			phase("measure");
			cpu0 = cpu_s();
			m0 = now;
			bytes = 0;
		}
		ssize_t n = send(c.fd, outbuf, (size_t)o.wsize, MSG_NOSIGNAL);
		if (n > 0)
			bytes += (unsigned long long)n;
		else if (n < 0 && errno == EAGAIN)
			wait_fd(c.fd, EPOLLOUT, "send");
		else if (n < 0 && errno != EINTR)
			die("the receiver closed the connection: %s", strerror(errno));
	}
	double cpu = cpu_s() - cpu0;
	phase("done");
	report_bulk(bytes, (now - m0) / 1e9, cpu);
}

static void run_recv(void)
{
	scratch = xmalloc((size_t)o.rsize);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = peer_addr();
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0)
		die("listen on %s:%d: %s", o.host, o.port, strerror(errno));
	socklen_t slen = sizeof(sa);
	getsockname(lfd, (struct sockaddr *)&sa, &slen);
	ep_set(lfd, EPOLLIN, 0, EPOLL_CTL_ADD);
	printf("listening %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	int fd;
	for (;;) {
		struct epoll_event ev;
		int k = epoll_wait(ep, &ev, 1, 30000);
		if (k == 0)
			die("no sender connected within 30 s");
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			break;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
	close(lfd);
	ep_set(fd, EPOLLIN, 0, EPOLL_CTL_ADD);
	unsigned long long bytes = 0;
	int measuring = 0;
	uint64_t from = 0, until = 0, m0 = 0, now = 0;
	double cpu0 = 0;
	for (;;) {
		ssize_t n = recv(fd, scratch, (size_t)o.rsize, 0);
		now = now_ns();
		if (n > 0) {
			if (!from) {
				phase("warmup");
				from = now + (uint64_t)(o.warmup * 1e9);
				until = from + (uint64_t)(o.duration * 1e9);
			}
			bytes += (unsigned long long)n;
		} else if (n == 0) {
			die("the sender closed the connection after %llu bytes", bytes);
		} else if (errno == EAGAIN) {
			wait_fd(fd, EPOLLIN, "recv");
			continue;
		} else if (errno != EINTR) {
			die("read: %s", strerror(errno));
		}
		if (from && !measuring && now >= from) {
			measuring = 1;
			phase("measure");
			cpu0 = cpu_s();
			m0 = now;
			bytes = 0;
		}
		if (measuring && now >= until)
			break;
	}
	double cpu = cpu_s() - cpu0;
	phase("done");
	report_bulk(bytes, (now - m0) / 1e9, cpu);
	close(fd);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	parse(argc, argv);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	scratch = xmalloc(SCRATCH);
	if (!strcmp(o.mode, "echo") || !strcmp(o.mode, "reqresp") || !strcmp(o.mode, "idle"))
		run_rr();
	else if (!strcmp(o.mode, "send"))
		run_send();
	else if (!strcmp(o.mode, "recv"))
		run_recv();
	else
		die("unknown mode '%s' (echo, reqresp, send, recv, idle)", o.mode);
	return 0;
}
