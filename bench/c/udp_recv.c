/*
 * udp_recv: the C UDP receiver of the UDP scenarios; counts and discards datagrams.
 *   --mode mmsg  recvmmsg(2), 64 buffers of 2 KiB per call
 *   --mode gro   UDP_GRO: the kernel coalesces datagrams of a flow into one 64 KiB buffer; the
 *                UDP_GRO control message gives the segment size, so a buffer of L bytes holds
 *                ceil(L / size) datagrams. 8 such buffers per recvmmsg(2) call
 * Prints "listening <port>" on stdout when bound. With --warmup/--duration it is the load of the
 * send scenario: the window starts with the first datagram; it prints "phase warmup", "phase
 * measure" and "phase done" on stderr at its edges (the harness samples the sender's CPU there),
 * then keeps counting until no datagram came for --idle-ms (the sender has stopped) and prints
 * one JSON line on stdout. Without them it counts until SIGINT/SIGTERM. Last line on stderr,
 * always: "udp_recv: N datagrams, B bytes in S s". SIGUSR2 prints the same line with the running
 * totals and it goes on (the receive scenarios read one at each edge of the sender's window).
 *
 * usage: udp_recv [--port 0] [--host 127.0.0.1] [--mode mmsg|gro] [--warmup S] [--duration S] [--idle-ms 500]
 */
#define TOOL "udp_recv"
#include "udp_tool.h"

/* Set by SIGUSR2; the loop prints the totals (stdio is not for signal handlers). A signal that
 * lands just before a blocking call waits for its return: a datagram or SO_RCVTIMEO's 50 ms. */
static volatile sig_atomic_t report;
static void on_report(int sig) { (void)sig; report = 1; }

static void print_totals(unsigned long long dgrams, unsigned long long bytes, double first, double last)
{
	fprintf(stderr, "udp_recv: %llu datagrams, %llu bytes in %.3f s\n", dgrams, bytes, first ? last - first : 0.0);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *mode = "mmsg";
	int port = 0, idle_ms = 500;
	double warmup = 0, duration = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--host")) host = argv[i + 1];
		else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
		else if (!strcmp(argv[i], "--warmup")) warmup = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--idle-ms")) idle_ms = atoi(argv[i + 1]);
		else { fprintf(stderr, "udp_recv: unknown option %s\n", argv[i]); return 2; }
	}
	int gro = !strcmp(mode, "gro");
	if (port < 0 || (!gro && strcmp(mode, "mmsg"))) {
		fprintf(stderr, "usage: udp_recv [--port P] [--host H] [--mode mmsg|gro] [--warmup S] [--duration S] [--idle-ms MS]\n");
		return 2;
	}
	size_t nmsg = gro ? 8 : 64, bufsize = gro ? 65536 : 2048;

	stop_on_signals(); /* no SA_RESTART: a signal ends the blocked call */
	struct sigaction usr2 = { .sa_handler = on_report }; /* no SA_RESTART either: report at once */
	sigaction(SIGUSR2, &usr2, NULL);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) die("socket");
	int rcvbuf = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (gro) {
		int one = 1;
		if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) die("setsockopt UDP_GRO");
	}
	/* wake up now and then: the clock and the idle timeout are checked between calls */
	struct timeval tv = { .tv_sec = 0, .tv_usec = 50000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "udp_recv: bad host %s\n", host); return 2; }
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
	socklen_t alen = sizeof addr;
	getsockname(fd, (struct sockaddr *)&addr, &alen);
	printf("listening %d\n", ntohs(addr.sin_port));
	fflush(stdout);

	char *buf = malloc(nmsg * bufsize);
	struct mmsghdr *msgs = calloc(nmsg, sizeof *msgs);
	struct iovec *iov = calloc(nmsg, sizeof *iov);
	char (*ctl)[CMSG_SPACE(sizeof(int))] = calloc(nmsg, sizeof *ctl);
	if (!buf || !msgs || !iov || !ctl) die("malloc");

	unsigned long long dgrams = 0, bytes = 0, w_d0 = 0, w_b0 = 0, w_d1 = 0, w_b1 = 0;
	double first = 0, last = 0, tm0 = 0, tm1 = 0;
	int phase = -1; /* -1 nothing yet, 0 warm-up, 1 measured, 2 done */
	while (!stop) {
		for (size_t i = 0; i < nmsg; i++) {
			iov[i].iov_base = buf + i * bufsize;
			iov[i].iov_len = bufsize;
			memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			if (gro) {
				msgs[i].msg_hdr.msg_control = ctl[i];
				msgs[i].msg_hdr.msg_controllen = sizeof ctl[i];
			}
		}
		int n = recvmmsg(fd, msgs, nmsg, MSG_WAITFORONE, NULL);
		double t = now();
		if (n < 0) {
			if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) die("recvmmsg");
		} else {
			for (int i = 0; i < n; i++) {
				size_t len = msgs[i].msg_len, seg = 0;
				if (gro) {
					struct cmsghdr *c;
					for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
						if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) memcpy(&seg, CMSG_DATA(c), sizeof(int)), seg &= 0xffffffff;
				}
				dgrams += seg && len > seg ? (len + seg - 1) / seg : 1;
				bytes += len;
			}
			if (n > 0) {
				last = t;
				if (phase < 0) { phase = 0; first = t; if (duration > 0) fprintf(stderr, "phase warmup\n"); }
			}
		}
		if (report) {
			report = 0;
			print_totals(dgrams, bytes, first, last);
		}
		if (duration > 0 && phase >= 0) {
			if (phase == 0 && t >= first + warmup) { phase = 1; tm0 = t; w_d0 = dgrams; w_b0 = bytes; fprintf(stderr, "phase measure\n"); }
			if (phase == 1 && t >= first + warmup + duration) { phase = 2; tm1 = t; w_d1 = dgrams; w_b1 = bytes; fprintf(stderr, "phase done\n"); }
			if (phase == 2 && (t - last) * 1000 >= idle_ms) break;
		}
	}
	if (duration > 0) {
		if (phase < 2) { fprintf(stderr, "udp_recv: stopped before the end of the measured window\n"); return 1; }
		double w = tm1 - tm0;
		printf("{\"datagrams\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"dps\":%.1f,\"gbps\":%.6f,\"total_datagrams\":%llu,\"total_bytes\":%llu}\n",
		       w_d1 - w_d0, w_b1 - w_b0, w, (w_d1 - w_d0) / w, (w_b1 - w_b0) * 8 / w / 1e9, dgrams, bytes);
		fflush(stdout);
	}
	print_totals(dgrams, bytes, first, last);
	return 0;
}
