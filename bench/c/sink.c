/*
 * sink: the C contender of the bulk receive scenario. Accepts any number of
 * connections and reads everything into one buffer of the given size, discarding
 * it. The read size matters on loopback: 64 KiB is what libuv asks for, 512 KiB is
 * what Bun asks for.
 *
 * usage: sink <port> [read-size]     prints "listening <port>" when ready
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "sink: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sink <port> [read-size]\n");
		return 2;
	}
	int port = atoi(argv[1]);
	size_t bufsize = argc > 2 ? (size_t)atol(argv[2]) : 65536;
	char *buf = malloc(bufsize);
	if (!buf || bufsize == 0)
		die("read size");

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");
	socklen_t slen = sizeof(sa);
	getsockname(lfd, (struct sockaddr *)&sa, &slen);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	printf("listening %d\n", ntohs(sa.sin_port));
	fflush(stdout);

	struct epoll_event events[64];
	for (;;) {
		int n = epoll_wait(ep, events, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == lfd) {
				int cfd;
				while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event cev = { .events = EPOLLIN, .data.fd = cfd };
					if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0)
						die("epoll_ctl add");
				}
				continue;
			}
			/* One read per wakeup, like an event loop does: fair across connections. */
			ssize_t got = recv(fd, buf, bufsize, 0);
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
}
