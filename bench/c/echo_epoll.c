/*
 * echo_epoll: the C contender of the echo scenarios. One thread, level-triggered
 * epoll, nonblocking sockets, write back whatever was read. When the peer is slow
 * to read, the unsent tail is kept and reading from that connection stops until it
 * drains, so memory stays bounded and no byte is dropped.
 *
 * With a thread count above 1 (the echo2 scenario), each thread runs the same loop
 * on its own SO_REUSEPORT listener and epoll set; nothing is shared between them.
 *
 * usage: echo_epoll <port> [read-size] [threads]     prints "listening <port>" when ready
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
	char *pending; /* unsent bytes, NULL when everything was written */
	size_t len, off;
};

/* Per thread: a connection belongs to the thread whose listener accepted it. */
static __thread struct conn *conns;
static __thread size_t nconns;
static size_t bufsize = 65536;

static void die(const char *what)
{
	fprintf(stderr, "echo_epoll: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct conn *conn_get(int fd)
{
	if ((size_t)fd >= nconns) {
		size_t n = nconns ? nconns : 1024;
		while (n <= (size_t)fd)
			n *= 2;
		conns = realloc(conns, n * sizeof(*conns));
		if (!conns)
			die("realloc");
		memset(conns + nconns, 0, (n - nconns) * sizeof(*conns));
		nconns = n;
	}
	return &conns[fd];
}

static void conn_close(int ep, int fd)
{
	struct conn *c = conn_get(fd);
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	free(c->pending);
	memset(c, 0, sizeof(*c));
}

/* Returns 0 when all was written, 1 when some is left (wait for EPOLLOUT), -1 on error. */
static int conn_write(int fd, struct conn *c, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			break;
		} else {
			return -1;
		}
	}
	if (off == len)
		return 0;
	/* buf may be c->pending itself: copy the tail before freeing. */
	char *rest = malloc(len - off);
	if (!rest)
		die("malloc");
	memcpy(rest, buf + off, len - off);
	free(c->pending);
	c->pending = rest;
	c->len = len - off;
	c->off = 0;
	return 1;
}

static int open_listener(int port, int reuseport)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		die("SO_REUSEPORT");
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");
	return lfd;
}

static void *serve(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	int one = 1;
	char *buf = malloc(bufsize);
	if (!buf)
		die("malloc");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	struct epoll_event events[256];
	for (;;) {
		int n = epoll_wait(ep, events, 256, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == lfd) {
				for (;;) {
					int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (cfd < 0)
						break; /* EAGAIN, or a transient error: retried on the next event */
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					conn_get(cfd);
					struct epoll_event cev = { .events = EPOLLIN, .data.fd = cfd };
					if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0)
						die("epoll_ctl add");
				}
				continue;
			}
			struct conn *c = conn_get(fd);
			if (c->pending) {
				/* Only EPOLLOUT is armed while a tail is pending. */
				int r = conn_write(fd, c, c->pending + c->off, c->len - c->off);
				if (r < 0) {
					conn_close(ep, fd);
				} else if (r == 0) {
					free(c->pending);
					c->pending = NULL;
					struct epoll_event cev = { .events = EPOLLIN, .data.fd = fd };
					epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
				}
				continue;
			}
			ssize_t got = recv(fd, buf, bufsize, 0);
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
				conn_close(ep, fd);
				continue;
			}
			if (got < 0)
				continue;
			int r = conn_write(fd, c, buf, (size_t)got);
			if (r < 0) {
				conn_close(ep, fd);
			} else if (r == 1) {
				struct epoll_event cev = { .events = EPOLLOUT, .data.fd = fd };
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: echo_epoll <port> [read-size] [threads]\n");
		return 2;
	}
	int port = atoi(argv[1]);
	if (argc > 2)
		bufsize = (size_t)atol(argv[2]);
	int threads = argc > 3 ? atoi(argv[3]) : 1;
	if (threads < 1 || threads > 256) {
		fprintf(stderr, "echo_epoll: threads must be 1..256\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int lfds[256];
	lfds[0] = open_listener(port, threads > 1);
	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);
	getsockname(lfds[0], (struct sockaddr *)&sa, &slen);
	port = ntohs(sa.sin_port);
	for (int i = 1; i < threads; i++)
		lfds[i] = open_listener(port, 1);
	printf("listening %d\n", port);
	fflush(stdout);
	for (int i = 1; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)lfds[i]) != 0)
			die("pthread_create");
	}
	serve((void *)(intptr_t)lfds[0]);
	return 0;
}
