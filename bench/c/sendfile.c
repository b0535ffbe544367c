/*
 * sendfile: the C reference of the file-sending scenario. Connects to
 * 127.0.0.1:<port> and sends <file> with sendfile(2) on a blocking socket,
 * over and over, until the receiver closes.
 *
 * usage: sendfile <port> <file>     prints "ready" once connected
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
#include <sys/stat.h>
#include <unistd.h>

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
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		off_t off = 0;
		while (off < st.st_size) {
			ssize_t n = sendfile(fd, ffd, &off, (size_t)(st.st_size - off));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0; /* the receiver went away */
		}
	}
}
