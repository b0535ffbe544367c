/*
 * sendfile: the C reference of the file-sending scenario. Connects to
 * 127.0.0.1:<port> and sends <file> with sendfile(2) on a blocking socket,
 * over and over, until the receiver closes.
 *
 * usage: sendfile <port> <file>       prints "ready" once connected
 *        sendfile <port> <file> once  sends the file once, then prints
 *            "sent <bytes> <ns> <cpu_ns>": the bytes, the wall time and this
 *            process's CPU time (user + system) of the sendfile loop alone
 *            (bench/micro/paths.ts's sendfile(2) row; connect and exit are
 *            not timed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* Sends the file once from offset 0; 0 when all of it went. */
static int send_once(int fd, int ffd, off_t size)
{
	off_t off = 0;
	while (off < size) {
		ssize_t n = sendfile(fd, ffd, &off, (size_t)(size - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1; /* the receiver went away */
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sendfile <port> <file>\n");
		return 2;
	}
	int ffd = open(argv[2], O_RDONLY);
	struct stat st;
	if (ffd < 0 || fstat(ffd, &st) < 0 || st.st_size == 0) {
		fprintf(stderr, "sendfile: %s: %s\n", argv[2], ffd < 0 ? strerror(errno) : "empty");
		return 1;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "sendfile: connect: %s\n", strerror(errno));
		return 1;
	}
	if (argc > 3 && strcmp(argv[3], "once") == 0) {
		long long t0 = now_ns(), c0 = cpu_ns();
		if (send_once(fd, ffd, st.st_size) < 0) {
			fprintf(stderr, "sendfile: the receiver went away\n");
			return 1;
		}
		long long t1 = now_ns(), c1 = cpu_ns();
		printf("sent %lld %lld %lld\n", (long long)st.st_size, t1 - t0, c1 - c0);
		return 0;
	}
	printf("ready\n");
	fflush(stdout);
	while (send_once(fd, ffd, st.st_size) == 0)
		;
	return 0;
}
