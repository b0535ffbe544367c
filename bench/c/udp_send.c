/*
 * udp_send: the C UDP sender of the UDP scenarios, one flow of fixed-size datagrams.
 *   --mode mmsg  sendmmsg(2), 64 datagrams per call
 *   --mode gso   UDP_SEGMENT: 44 datagrams of 1,400 B per message (under the 64 KiB UDP limit),
 *                4 messages per sendmmsg(2) call
 * With --warmup/--duration it is the load of the receive scenario: it prints "phase warmup",
 * "phase measure" and "phase done" on stderr at the edges of the measured window (the harness
 * samples the receiver's CPU there) and one JSON line on stdout at the end. It stops after
 * warmup + duration seconds, or on SIGINT/SIGTERM. Last line on stderr, always:
 * "udp_send: N datagrams, B bytes in S s".
 * --rate D paces it to D datagrams a second (sleeping between calls), so that receivers are
 * compared at the same offered load; 0 (the default) sends as fast as it can.
 *
 * usage: udp_send --port P [--host 127.0.0.1] [--mode mmsg|gso] [--size 1400] [--warmup S] [--duration S] [--rate D]
 */
#define TOOL "udp_send"
#include "udp_tool.h"

#define BATCH 64
#define GSO_MSGS 4

/* Sleeps until the monotonic time `due` (seconds), if it is still ahead. */
static void pace(double due)
{
	double ahead = due - now();
	if (ahead <= 0)
		return;
	struct timespec ts = { .tv_sec = (time_t)ahead, .tv_nsec = (long)((ahead - (time_t)ahead) * 1e9) };
	nanosleep(&ts, NULL); /* EINTR: a stop signal; the loop checks it */
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *mode = "mmsg";
	int port = 0;
	size_t size = 1400;
	double warmup = 0, duration = 0, rate = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--host")) host = argv[i + 1];
		else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
		else if (!strcmp(argv[i], "--size")) size = (size_t)atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--warmup")) warmup = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
		else { fprintf(stderr, "udp_send: unknown option %s\n", argv[i]); return 2; }
	}
	int gso = !strcmp(mode, "gso");
	if (port <= 0 || size < 1 || size > 65507 || !(rate >= 0) || (!gso && strcmp(mode, "mmsg"))) {
		fprintf(stderr, "usage: udp_send --port P [--host H] [--mode mmsg|gso] [--size 1400] [--warmup S] [--duration S]\n");
		return 2;
	}
	/* datagrams per message: 1 (mmsg) or as many as fit the 64 KiB UDP limit (gso) */
	size_t segs = gso ? 65507 / size : 1;
	if (segs > 64) segs = 64;
	size_t nmsg = gso ? GSO_MSGS : BATCH;

	stop_on_signals(); /* no SA_RESTART: a signal ends the blocked call */

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) die("socket");
	int sndbuf = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &to.sin_addr) != 1) { fprintf(stderr, "udp_send: bad host %s\n", host); return 2; }
	if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) die("connect");
	if (gso) {
		int v = (int)size;
		if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, sizeof v) < 0) die("setsockopt UDP_SEGMENT");
	}

	char *buf = calloc(nmsg, segs * size);
	struct mmsghdr *msgs = calloc(nmsg, sizeof *msgs);
	struct iovec *iov = calloc(nmsg, sizeof *iov);
	if (!buf || !msgs || !iov) die("calloc");
	/* Written, as any sender's data is (and as loadgen's): calloc memory never
	 * written maps the kernel's one zero page, whose copy stays in L1. */
	memset(buf, 'u', nmsg * segs * size);
	for (size_t i = 0; i < nmsg; i++) {
		iov[i].iov_base = buf + i * segs * size;
		iov[i].iov_len = segs * size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	double t0 = now(), measure_at = t0 + warmup, done_at = t0 + warmup + duration;
	int phase = 0; /* 0 warm-up, 1 measured, 2 done */
	unsigned long long sent = 0, errors = 0, win0 = 0, win1 = 0;
	double tm0 = t0, tm1 = t0;
	if (duration > 0) fprintf(stderr, "phase warmup\n");
	while (!stop) {
		int n = sendmmsg(fd, msgs, nmsg, 0);
		if (n < 0) {
			if (errno == EINTR) continue;
			if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) { errors++; continue; }
			die("sendmmsg");
		}
		sent += (unsigned long long)n * segs;
		if (rate > 0)
			pace(t0 + (double)sent / rate);
		if (duration > 0) {
			double t = now();
			if (phase == 0 && t >= measure_at) { phase = 1; win0 = sent; tm0 = t; fprintf(stderr, "phase measure\n"); }
			if (phase == 1 && t >= done_at) { phase = 2; win1 = sent; tm1 = t; fprintf(stderr, "phase done\n"); break; }
		}
	}
	double secs = now() - t0;
	if (duration > 0) {
		if (phase < 2) { fprintf(stderr, "udp_send: stopped before the end of the measured window\n"); return 1; }
		double w = tm1 - tm0;
		printf("{\"sent_datagrams\":%llu,\"sent_bytes\":%llu,\"seconds\":%.6f,\"window_datagrams\":%llu,\"window_seconds\":%.6f,\"errors\":%llu}\n",
		       sent, sent * size, secs, win1 - win0, w, errors);
		fflush(stdout);
	}
	fprintf(stderr, "udp_send: %llu datagrams, %llu bytes in %.3f s (errors %llu)\n", sent, sent * size, secs, errors);
	return 0;
}
