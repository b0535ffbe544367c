/*
 * Datagram messages: a SENDMSG descriptor's aux entry (destination sockaddr,
 * then (pool offset, length) pairs) checked and turned into a msghdr with an
 * optional UDP_SEGMENT cmsg. Both engines send through this, so a datagram is
 * checked the same way on io_uring and on epoll.
 */
#define _GNU_SOURCE
#include "maio.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

_Static_assert(CMSG_SPACE(sizeof(uint16_t)) <= sizeof(((struct maio_udp_msg *)0)->ctl),
	       "the UDP_SEGMENT cmsg must fit maio_udp_msg.ctl");
_Static_assert(sizeof(struct sockaddr_in6) <= MAIO_SENDMSG_NAME_MAX,
	       "sockaddr_in6 must fit the name bytes of a SENDMSG entry");

static int bad(const char **field, const char **why, const char *f, const char *w)
{
	*field = f;
	*why = w;
	return -EINVAL;
}

int maio_udp_sendmsg_build(const int32_t *d, const uint8_t *aux, size_t aux_len,
			   uint8_t *pool_base, size_t pool_size, struct iovec *iov,
			   struct maio_udp_msg *m, struct msghdr *msg, const char **field,
			   const char **why)
{
	int64_t aoff = d[MAIO_D_AUX_OFF], alen = d[MAIO_D_AUX_LEN];
	int32_t name_len = d[MAIO_D_OFF_LO], gso = d[MAIO_D_OFF_HI];
	if (!pool_base)
		return bad(field, why, "pool", "is not attached");
	if (alen < 8 || alen > 8 * MAIO_SENDMSG_MAX_SEGS || alen % 8)
		return bad(field, why, "auxLen", "is not 8 x (1..64) segment bytes");
	if (aoff < 0 || aoff % 4 || (uint64_t)aoff + MAIO_SENDMSG_NAME_MAX + (uint64_t)alen > aux_len)
		return bad(field, why, "auxOff", "is not 4-aligned, or the entry lies outside aux");
	if (gso < 0 || gso > MAIO_UDP_SEGMENT_NONE)
		return bad(field, why, "offHi", "is not a UDP_SEGMENT size (0..65535) or MAIO_UDP_SEGMENT_NONE");
	memset(m, 0, sizeof(*m));
	if (name_len != 0) {
		sa_family_t fam;
		memcpy(&fam, aux + aoff, sizeof(fam));
		if (!(name_len == sizeof(struct sockaddr_in) && fam == AF_INET) &&
		    !(name_len == sizeof(struct sockaddr_in6) && fam == AF_INET6))
			return bad(field, why, "offLo", "is not the length of the entry's sockaddr");
		memcpy(&m->name, aux + aoff, (size_t)name_len);
	}
	int32_t segs[2 * MAIO_SENDMSG_MAX_SEGS];
	int nseg = (int)(alen / 8);
	memcpy(segs, aux + aoff + MAIO_SENDMSG_NAME_MAX, (size_t)alen);
	int64_t total = 0;
	for (int k = 0; k < nseg; k++) {
		int64_t off = segs[2 * k], len = segs[2 * k + 1];
		if (off < 0 || len < 0 || (uint64_t)(off + len) > pool_size)
			return bad(field, why, "auxOff", "names a segment outside the pool");
		iov[k].iov_base = pool_base + off;
		iov[k].iov_len = (size_t)len;
		total += len;
	}
	if (total != d[MAIO_D_LEN])
		return bad(field, why, "len", "is not the sum of the segment lengths");
	memset(msg, 0, sizeof(*msg));
	msg->msg_iov = iov;
	msg->msg_iovlen = (size_t)nseg;
	if (name_len) {
		msg->msg_name = &m->name;
		msg->msg_namelen = (socklen_t)name_len;
	}
	if (gso) {
		struct cmsghdr *c = (struct cmsghdr *)m->ctl;
		c->cmsg_level = MAIO_SOL_UDP;
		c->cmsg_type = MAIO_UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		uint16_t v = gso == MAIO_UDP_SEGMENT_NONE ? 0 : (uint16_t)gso;
		memcpy(CMSG_DATA(c), &v, sizeof(v));
		msg->msg_control = m->ctl;
		msg->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
	}
	return 0;
}

bool maio_udp_recvmsg_lengths_ok(int32_t name_len, int32_t ctl_len)
{
	return name_len >= 0 && name_len <= MAIO_AUX_ADDR_MAX && ctl_len >= 0 &&
	       ctl_len <= MAIO_RECVMSG_CTL_MAX && ctl_len % 8 == 0;
}
