/* bench_net.c - sluice-bench's network load generator. It starts its own DPDK EAL (a
 * separate primary process, one lcore, --no-pci --no-huge), brings up one memif client or
 * tap port, resolves the node's MAC with ARP and sends UDP frames: InfluxDB line protocol
 * (fire and forget; loss read back from the node's ctl counters) or the binary session
 * protocol (windowed batches, acks, retransmissions; ack latency measured from the
 * scheduled send time in open loop, so without coordinated omission). The same line
 * generator also feeds kernel UDP and HTTP sockets for peer comparisons. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "bench_net.h"
#include "ctl.h"
#include "lineproto.h"
#include "pkt.h"
#include "port.h"
#include "session.h"
#include "sl_assert.h"

#define BURST 32
#define TXQ_MAX (4 * BURST)     /* frames built but not yet taken by the port */
#define SERIES_MAX (4u << 20)   /* line templates are kept per series */
#define SESSIONS_MAX 4096u      /* session index lives in the id's low 16 bits */
#define TS_TEMPLATE 1000000000000000000ull /* 19 digits, patched per point */
#define TS_DIGITS 19
#define ARP_TIMEOUT_NS 5000000000ll
#define LINK_TIMEOUT_NS 10000000000ll
#define DRAIN_TIMEOUT_NS 10000000000ll
#define SRC_PORT_BASE 40000u
#define CTL_TIMEOUT_MS 2000

/* ------------------------------------------------------------ shared small pieces */

void sl_bench_hist_add(struct sl_bench_hist *h, uint64_t v)
{
	unsigned idx;
	if (v < SL_BENCH_HIST_SUB) {
		idx = (unsigned)v;
	} else {
		unsigned e = 63 - (unsigned)__builtin_clzll(v) - 4; /* v >> e in [16, 32) */
		idx = (e + 1) * SL_BENCH_HIST_SUB + (unsigned)((v >> e) - SL_BENCH_HIST_SUB);
	}
	if (idx >= 64 * SL_BENCH_HIST_SUB)
		idx = 64 * SL_BENCH_HIST_SUB - 1;
	h->b[idx]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static uint64_t bucket_value(unsigned idx)
{
	if (idx < SL_BENCH_HIST_SUB)
		return idx;
	unsigned e = idx / SL_BENCH_HIST_SUB - 1, s = idx % SL_BENCH_HIST_SUB;
	return ((uint64_t)(SL_BENCH_HIST_SUB + s) << e) + ((1ull << e) >> 1); /* bucket middle */
}

uint64_t sl_bench_hist_pct(const struct sl_bench_hist *h, double p)
{
	if (h->n == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n), acc = 0;
	for (unsigned i = 0; i < 64 * SL_BENCH_HIST_SUB; i++) {
		acc += h->b[i];
		if (acc >= want)
			return bucket_value(i) < h->max ? bucket_value(i) : h->max;
	}
	return h->max;
}

uint64_t sl_bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int sl_bench_key(char *buf, size_t cap, uint32_t s)
{
	int n = snprintf(buf, cap, "bench,host=h%06u value", s);
	return n > 0 && (size_t)n < cap ? n : -ENOSPC;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* -------------------------------------------------------------- point generator */

/* Point g (a global index) is series g % series at ts_base + g: timestamps are unique, and
 * increase within every batch and every series whichever subset of g a sender takes. The
 * line of each series is formatted once by sl_lp_format; only its timestamp digits are
 * rewritten per point, so generation costs a copy, not a float formatting. */
struct lgen {
	uint32_t series;
	uint32_t stride; /* bytes per template */
	uint64_t ts_base;
	char *tmpl;
	uint16_t *len;
	char (*keys)[48];
	uint8_t *klen;
};

static double series_value(uint32_t s)
{
	return (double)(s % 1000) + 0.25;
}

static int lgen_init(struct lgen *g, uint32_t series)
{
	memset(g, 0, sizeof(*g));
	g->series = series;
	g->stride = 96;
	g->ts_base = wall_ns();
	g->tmpl = malloc((size_t)series * g->stride);
	g->len = malloc((size_t)series * sizeof(uint16_t));
	g->keys = malloc((size_t)series * sizeof(*g->keys));
	g->klen = malloc(series);
	if (!g->tmpl || !g->len || !g->keys || !g->klen)
		return -ENOMEM;
	for (uint32_t s = 0; s < series; s++) {
		int kl = sl_bench_key(g->keys[s], sizeof(g->keys[s]), s);
		if (kl < 0)
			return kl;
		g->klen[s] = (uint8_t)kl;
		double v = series_value(s);
		uint64_t bits;
		memcpy(&bits, &v, 8);
		int n = sl_lp_format(g->tmpl + (size_t)s * g->stride, g->stride, g->keys[s],
				     (size_t)kl, SL_VAL_F64, bits, NULL, 0, (int64_t)TS_TEMPLATE);
		/* the timestamp must be the last 19 digits before the newline */
		if (n < TS_DIGITS + 2 || g->tmpl[(size_t)s * g->stride + (size_t)n - 1] != '\n' ||
		    g->tmpl[(size_t)s * g->stride + (size_t)n - 1 - TS_DIGITS] != '1')
			return -EPROTO;
		g->len[s] = (uint16_t)n;
	}
	return 0;
}

static void lgen_free(struct lgen *g)
{
	free(g->tmpl);
	free(g->len);
	free(g->keys);
	free(g->klen);
}

static uint32_t lgen_max_line(const struct lgen *g)
{
	uint32_t m = 0;
	for (uint32_t s = 0; s < g->series; s++)
		if (g->len[s] > m)
			m = g->len[s];
	return m;
}

static void put_digits19(char *p, uint64_t v)
{
	for (int i = TS_DIGITS - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Writes the lines of points g0, g0 + step, ... (n of them); returns the bytes written.
 * The caller sized out for n lines of lgen_max_line(). */
static size_t lgen_fill(const struct lgen *g, char *out, uint64_t g0, uint64_t step, uint32_t n)
{
	size_t off = 0;
	for (uint32_t k = 0; k < n; k++) {
		uint64_t pt = g0 + (uint64_t)k * step;
		uint32_t s = (uint32_t)(pt % g->series);
		uint16_t l = g->len[s];
		memcpy(out + off, g->tmpl + (size_t)s * g->stride, l);
		put_digits19(out + off + l - 1 - TS_DIGITS, g->ts_base + pt);
		off += l;
	}
	return off;
}

static void lgen_point(const struct lgen *g, uint64_t pt, struct sl_point *out)
{
	uint32_t s = (uint32_t)(pt % g->series);
	double v = series_value(s);
	memset(out, 0, sizeof(*out));
	out->key = g->keys[s];
	out->key_len = g->klen[s];
	out->ts = (int64_t)(g->ts_base + pt);
	out->type = SL_VAL_F64;
	memcpy(&out->value, &v, 8);
}

/* --------------------------------------------------------- node counters (ctl) */

struct node_counts {
	bool ok;
	uint64_t lp_points;
	uint64_t points_applied;
	uint64_t pkts_dropped;
};

static struct node_counts node_read(const char *ctl_path)
{
	struct node_counts c = {0};
	if (ctl_path == NULL)
		return c;
	struct json_object *resp = NULL, *res, *tot, *v;
	const char *code, *msg;
	if (sl_ctl_call(ctl_path, "stats", NULL, CTL_TIMEOUT_MS, &resp) != 0)
		return c;
	if (sl_ctl_response_parse(resp, &res, &code, &msg) == 0 &&
	    json_object_object_get_ex(res, "totals", &tot)) {
		c.ok = true;
		if (json_object_object_get_ex(tot, "lp_points", &v))
			c.lp_points = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(tot, "points_applied", &v))
			c.points_applied = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(tot, "pkts_dropped", &v))
			c.pkts_dropped = (uint64_t)json_object_get_int64(v);
	}
	json_object_put(resp);
	return c;
}

/* Waits (bounded) until the node's applied count stops moving or reaches want. */
static struct node_counts node_settle(const char *ctl_path, uint64_t applied0, uint64_t want)
{
	struct node_counts last = node_read(ctl_path);
	uint64_t t_end = sl_bench_now_ns() + DRAIN_TIMEOUT_NS;
	int still = 0;
	while (last.ok && sl_bench_now_ns() < t_end && still < 3 &&
	       last.points_applied - applied0 < want) {
		usleep(100000);
		struct node_counts c = node_read(ctl_path);
		if (!c.ok)
			break;
		still = c.points_applied == last.points_applied ? still + 1 : 0;
		last = c;
	}
	return last;
}

/* ----------------------------------------------------------------- transmitters */

struct bench {
	const struct sl_bench_net_opts *o;
	struct lgen gen;
	bool dpdk;
	/* DPDK */
	struct sl_ports ports;
	const struct sl_port *port;
	struct sl_pkt_local local;
	uint8_t node_mac[6];
	uint16_t ip_id;
	struct rte_mbuf *txq[TXQ_MAX];
	uint32_t ntx;
	/* kernel UDP */
	int fd;
	uint8_t (*kbuf)[65536];
	struct mmsghdr kmsg[BURST];
	struct iovec kiov[BURST];
	/* counters */
	uint64_t frames_tx, tx_full, rx_frames, rx_dropped, rx_bad_session, arp_replies;
	uint64_t payload_max;
	struct sl_bench_hist *hist;
	struct sl_sess_client *cl;
	int64_t **sched; /* per session, by seq % window: when the batch was due */
	void **cl_mem;
	uint64_t *next_pt; /* per session: its next point index */
};

/* Room for one more datagram's payload (NULL when the port is backed up). */
static uint8_t *tx_slot(struct bench *b)
{
	if (!b->dpdk)
		return b->ntx < BURST ? b->kbuf[b->ntx] : NULL;
	if (b->ntx >= TXQ_MAX)
		return NULL;
	struct rte_mbuf *m = rte_pktmbuf_alloc(b->port->pool);
	if (m == NULL)
		return NULL;
	b->txq[b->ntx] = m;
	return rte_pktmbuf_mtod(m, uint8_t *) + SL_PKT_UDP_HDRS;
}

static void tx_commit(struct bench *b, size_t len, uint16_t src_port, uint16_t dst_port)
{
	if (!b->dpdk) {
		b->kiov[b->ntx].iov_len = len;
		b->ntx++;
		return;
	}
	struct rte_mbuf *m = b->txq[b->ntx];
	struct sl_pkt_udp_addr a = {.src_ip = b->o->ip, .dst_ip = b->o->node_ip,
				    .src_port = src_port, .dst_port = dst_port,
				    .ip_id = b->ip_id++};
	memcpy(a.src_mac, b->local.mac, 6);
	memcpy(a.dst_mac, b->node_mac, 6);
	int n = sl_pkt_build_udp(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_tailroom(m), &a,
				 rte_pktmbuf_mtod(m, uint8_t *) + SL_PKT_UDP_HDRS, len);
	SL_ASSERT(n > 0);
	m->data_len = (uint16_t)n;
	m->pkt_len = (uint32_t)n;
	b->ntx++;
}

/* Hands queued frames to the port; what it does not take stays queued, in order. */
static void tx_flush(struct bench *b)
{
	if (b->ntx == 0)
		return;
	uint32_t sent;
	if (b->dpdk) {
		sent = rte_eth_tx_burst(b->port->port_id, 0, b->txq, (uint16_t)b->ntx);
		if (sent < b->ntx) {
			memmove(b->txq, b->txq + sent, (b->ntx - sent) * sizeof(b->txq[0]));
			b->tx_full++;
		}
	} else {
		for (uint32_t i = 0; i < b->ntx; i++) {
			memset(&b->kmsg[i].msg_hdr, 0, sizeof(b->kmsg[i].msg_hdr));
			b->kmsg[i].msg_hdr.msg_iov = &b->kiov[i];
			b->kmsg[i].msg_hdr.msg_iovlen = 1;
		}
		int n = sendmmsg(b->fd, b->kmsg, b->ntx, 0);
		sent = n > 0 ? (uint32_t)n : 0;
		if (sent < b->ntx) {
			b->tx_full++;
			for (uint32_t i = sent; i < b->ntx; i++) { /* keep the unsent, in order */
				memmove(b->kbuf[i - sent], b->kbuf[i], b->kiov[i].iov_len);
				b->kiov[i - sent].iov_len = b->kiov[i].iov_len;
			}
		}
	}
	b->ntx -= sent;
	b->frames_tx += sent;
}

/* Sends one ready-made datagram (session messages); false when the port is backed up. */
static bool tx_datagram(struct bench *b, const uint8_t *d, size_t len)
{
	uint8_t *p = tx_slot(b);
	if (p == NULL) {
		tx_flush(b);
		p = tx_slot(b);
		if (p == NULL)
			return false;
	}
	memcpy(p, d, len);
	tx_commit(b, len, SRC_PORT_BASE, b->o->session_port);
	return true;
}

/* ------------------------------------------------------------------ DPDK set-up */

static int eal_start(struct bench *b, char *err, size_t err_len)
{
	const struct sl_bench_net_opts *o = b->o;
	int cpu = o->cpu;
	if (cpu < 0) {
		cpu_set_t set;
		cpu = 0;
		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			for (int i = 0; i < CPU_SETSIZE; i++)
				if (CPU_ISSET(i, &set)) {
					cpu = i;
					break;
				}
	}
	static char prefix[64], vdev[600], lcores[32];
	snprintf(prefix, sizeof(prefix), "--file-prefix=sluice-bench-%d", (int)getpid());
	snprintf(lcores, sizeof(lcores), "0@%d", cpu);
	if (o->transport == SL_BENCH_MEMIF)
		snprintf(vdev, sizeof(vdev), "net_memif0,role=client,socket=%s", o->socket_path);
	else if (o->transport == SL_BENCH_TAP)
		snprintf(vdev, sizeof(vdev), "net_tap0,iface=%s", o->iface);
	char *argv[16];
	int argc = 0;
	argv[argc++] = "sluice-bench";
	/* a NIC DMAs: hugepages when the host has them; virtual devices never need them */
	if (o->transport == SL_BENCH_NIC && access("/dev/hugepages", F_OK) == 0) {
		argv[argc++] = "--in-memory";
	} else {
		argv[argc++] = "--no-huge";
		argv[argc++] = "-m";
		argv[argc++] = "256";
		argv[argc++] = "--no-shconf";
	}
	argv[argc++] = prefix;
	argv[argc++] = "--lcores";
	argv[argc++] = lcores;
	argv[argc++] = "--log-level=lib.eal:warning";
	if (o->transport == SL_BENCH_NIC) {
		/* the only PCI device this process touches is the one named on its command line */
		argv[argc++] = "-a";
		argv[argc++] = (char *)o->pci;
	} else {
		argv[argc++] = "--no-pci";
		argv[argc++] = "--vdev";
		argv[argc++] = vdev;
	}
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(err, err_len, "EAL init: %s", rte_strerror(rte_errno));
		return -EIO;
	}
	int rc = sl_ports_init(&b->ports, 1, 8192, err, err_len);
	if (rc != 0)
		return rc;
	if (b->ports.n != 1) {
		snprintf(err, err_len, "expected one port, EAL probed %u", b->ports.n);
		return -ENODEV;
	}
	b->port = &b->ports.p[0];
	memcpy(b->local.mac, b->port->mac.addr_bytes, 6);
	if (o->transport == SL_BENCH_TAP) {
		/* The kernel side of a DPDK tap carries the port's MAC, so a bridge would keep
		 * frames for it to itself: speak from another (locally administered) MAC and
		 * rely on the port's promiscuous mode to receive for it. */
		uint32_t r = (uint32_t)getpid() ^ (uint32_t)wall_ns();
		uint8_t mac[6] = {0x02, 0x5b, (uint8_t)(r >> 24), (uint8_t)(r >> 16),
				  (uint8_t)(r >> 8), (uint8_t)r};
		memcpy(b->local.mac, mac, 6);
	}
	b->local.n_ips = 1;
	b->local.ips[0] = o->ip;
	uint64_t t_end = sl_bench_now_ns() + LINK_TIMEOUT_NS;
	struct rte_eth_link link;
	do {
		memset(&link, 0, sizeof(link));
		rte_eth_link_get_nowait(b->port->port_id, &link);
		if (link.link_status == RTE_ETH_LINK_UP)
			return 0;
		usleep(10000);
	} while (sl_bench_now_ns() < t_end);
	snprintf(err, err_len, "%s: link still down after %lld s (is the node serving %s?)",
		 b->port->name, LINK_TIMEOUT_NS / 1000000000ll,
		 o->transport == SL_BENCH_MEMIF ? o->socket_path
		 : o->transport == SL_BENCH_NIC	? o->pci
						: o->iface);
	return -ETIMEDOUT;
}

static void on_session_msg(struct bench *b, const uint8_t *d, size_t len, uint64_t now);

/* Kernel UDP: the socket is connected, so whatever arrives is the node's reply. */
static uint16_t rx_poll_kernel(struct bench *b, uint64_t now)
{
	static uint8_t buf[BURST][SL_SESS_MSG_MAX];
	struct mmsghdr msg[BURST];
	struct iovec iov[BURST];
	memset(msg, 0, sizeof(msg));
	for (int i = 0; i < BURST; i++) {
		iov[i] = (struct iovec){buf[i], sizeof(buf[i])};
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
	}
	int n = recvmmsg(b->fd, msg, BURST, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		b->rx_frames++;
		if (b->cl != NULL)
			on_session_msg(b, buf[i], msg[i].msg_len, now);
	}
	return n > 0 ? (uint16_t)n : 0;
}

/* Receives one burst: ARP (answer requests, learn the node), session replies. */
static uint16_t rx_poll(struct bench *b, uint64_t now, bool *node_mac_known)
{
	if (!b->dpdk)
		return rx_poll_kernel(b, now);
	struct rte_mbuf *pkts[BURST];
	uint16_t got = rte_eth_rx_burst(b->port->port_id, 0, pkts, BURST);
	for (uint16_t k = 0; k < got; k++) {
		struct rte_mbuf *m = pkts[k];
		struct sl_pkt_info in;
		b->rx_frames++;
		enum sl_pkt_verdict v =
			m->nb_segs == 1 ? sl_pkt_classify(rte_pktmbuf_mtod(m, const uint8_t *),
							  rte_pktmbuf_data_len(m), &b->local, &in)
					: SL_PKT_DROP;
		if (v == SL_PKT_ARP_REPLY || v == SL_PKT_ARP_REQUEST_FOR_US) {
			if (in.src_ip == b->o->node_ip) {
				memcpy(b->node_mac, in.src_mac, 6);
				if (node_mac_known)
					*node_mac_known = true;
			}
			if (v == SL_PKT_ARP_REQUEST_FOR_US) {
				struct rte_mbuf *r = rte_pktmbuf_alloc(b->port->pool);
				int n = r ? sl_pkt_build_arp_reply(rte_pktmbuf_mtod(r, uint8_t *),
								   rte_pktmbuf_tailroom(r), &in,
								   b->local.mac)
					  : -ENOMEM;
				if (n > 0) {
					r->data_len = (uint16_t)n;
					r->pkt_len = (uint32_t)n;
					if (rte_eth_tx_burst(b->port->port_id, 0, &r, 1) == 1)
						b->arp_replies++;
					else
						rte_pktmbuf_free(r);
				} else if (r) {
					rte_pktmbuf_free(r);
				}
			}
		} else if (v == SL_PKT_UDP_FOR_US && in.src_ip == b->o->node_ip &&
			   in.src_port == b->o->session_port && b->cl != NULL) {
			on_session_msg(b, in.payload, in.payload_len, now);
		} else {
			b->rx_dropped++;
		}
		rte_pktmbuf_free(m);
	}
	return got;
}

static int arp_resolve(struct bench *b, char *err, size_t err_len)
{
	uint64_t t0 = sl_bench_now_ns(), t_next = t0;
	bool known = false;
	while (!known && sl_bench_now_ns() < t0 + ARP_TIMEOUT_NS) {
		uint64_t now = sl_bench_now_ns();
		if (now >= t_next) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(b->port->pool);
			if (m == NULL)
				break;
			int n = sl_pkt_build_arp_request(rte_pktmbuf_mtod(m, uint8_t *),
							 rte_pktmbuf_tailroom(m), b->local.mac,
							 b->o->ip, b->o->node_ip);
			SL_ASSERT(n > 0);
			m->data_len = (uint16_t)n;
			m->pkt_len = (uint32_t)n;
			if (rte_eth_tx_burst(b->port->port_id, 0, &m, 1) != 1)
				rte_pktmbuf_free(m);
			t_next = now + 200000000ull;
		}
		if (rx_poll(b, now, &known) == 0)
			usleep(1000);
	}
	if (!known) {
		struct in_addr a = {htonl(b->o->node_ip)};
		snprintf(err, err_len, "no ARP reply from %s within %lld s (node's net.ipv4?)",
			 inet_ntoa(a), ARP_TIMEOUT_NS / 1000000000ll);
		return -EHOSTUNREACH;
	}
	return 0;
}

static int udp_open(struct bench *b, char *err, size_t err_len)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", b->o->dest);
	char *colon = strrchr(host, ':');
	if (colon == NULL) {
		snprintf(err, err_len, "--dest wants HOST:PORT");
		return -EINVAL;
	}
	*colon = '\0';
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
		snprintf(err, err_len, "cannot resolve %s", b->o->dest);
		return -EINVAL;
	}
	b->fd = socket(AF_INET, SOCK_DGRAM, 0);
	int rc = b->fd < 0 ? -errno : 0;
	if (rc == 0 && connect(b->fd, ai->ai_addr, ai->ai_addrlen) != 0)
		rc = -errno;
	freeaddrinfo(ai);
	if (rc != 0) {
		snprintf(err, err_len, "udp socket to %s: %s", b->o->dest, strerror(-rc));
		return rc;
	}
	b->kbuf = malloc(sizeof(*b->kbuf) * BURST);
	if (b->kbuf == NULL)
		return -ENOMEM;
	for (int i = 0; i < BURST; i++)
		b->kiov[i].iov_base = b->kbuf[i];
	return 0;
}

static const char *transport_name(enum sl_bench_transport t)
{
	switch (t) {
	case SL_BENCH_MEMIF: return "memif";
	case SL_BENCH_TAP: return "tap";
	case SL_BENCH_UDP: return "udp";
	case SL_BENCH_HTTP: return "http";
	default: return "shm";
	}
}

static void progress(const struct bench *b, uint64_t now, uint64_t t0, uint64_t delta,
		     const char *what)
{
	if (b->o->quiet || b->o->json)
		return;
	fprintf(stderr, "  %5.1f s  %10.0f points/s %s\n", (double)(now - t0) / 1e9, (double)delta,
		what);
}

/* -------------------------------------------------------------- line protocol */

static int run_line(struct bench *b)
{
	const struct sl_bench_net_opts *o = b->o;
	uint32_t ppp = o->points_per_packet;
	uint64_t interval_ns = o->rate_pps ? (uint64_t)((double)ppp * 1e9 / (double)o->rate_pps) : 0;
	struct node_counts before = node_read(o->ctl_path);
	if (o->ctl_path && !before.ok)
		fprintf(stderr, "sluice-bench: cannot read counters from %s: loss not reported\n",
			o->ctl_path);
	uint64_t t0 = sl_bench_now_ns(), t_end = t0 + (uint64_t)(o->duration_s * 1e9);
	uint64_t t_progress = t0 + 1000000000ull, next_due = t0, sent = 0, last = 0, pkts = 0;
	uint64_t late_max_ns = 0, now = t0;
	for (;;) {
		now = sl_bench_now_ns();
		if (now >= t_end || (o->max_points && sent >= o->max_points))
			break;
		rx_poll(b, now, NULL); /* keep the RX ring drained, answer ARP */
		for (int k = 0; k < BURST; k++) {
			if (interval_ns && next_due > now)
				break;
			uint8_t *p = tx_slot(b);
			if (p == NULL)
				break;
			size_t len = lgen_fill(&b->gen, (char *)p, sent, 1, ppp);
			tx_commit(b, len, (uint16_t)(SRC_PORT_BASE + pkts % o->sessions), o->line_port);
			if (interval_ns) {
				if (now - next_due > late_max_ns)
					late_max_ns = now - next_due;
				next_due += interval_ns;
			}
			sent += ppp;
			pkts++;
		}
		tx_flush(b);
		if (now >= t_progress) {
			progress(b, now, t0, sent - last, "sent");
			last = sent;
			t_progress += 1000000000ull;
		}
	}
	/* what is still queued is sent but not counted twice: give the port a moment */
	for (int i = 0; i < 1000 && b->ntx > 0; i++) {
		tx_flush(b);
		usleep(1000);
	}
	uint64_t unsent_frames = b->ntx;
	uint64_t points_out = sent - unsent_frames * ppp;
	double secs = (double)(now - t0) / 1e9;
	struct node_counts after = o->ctl_path && before.ok
					   ? node_settle(o->ctl_path, before.points_applied, points_out)
					   : (struct node_counts){0};
	uint64_t applied = after.ok ? after.points_applied - before.points_applied : 0;
	uint64_t parsed = after.ok ? after.lp_points - before.lp_points : 0;
	int64_t loss = after.ok ? (int64_t)points_out - (int64_t)applied : -1;
	double rate = (double)points_out / secs;
	if (o->json) {
		printf("{\"transport\":\"%s\",\"protocol\":\"line\",\"points_per_packet\":%u,"
		       "\"series\":%u,\"sources\":%u,\"rate_target\":%" PRIu64 ",\"seconds\":%.3f,"
		       "\"packets_sent\":%" PRIu64 ",\"points_sent\":%" PRIu64
		       ",\"points_per_s\":%.0f,\"port_full_polls\":%" PRIu64 ",\"late_max_ns\":%" PRIu64,
		       transport_name(o->transport), ppp, o->series, o->sessions, o->rate_pps, secs,
		       b->frames_tx, points_out, rate, b->tx_full, late_max_ns);
		if (after.ok)
			printf(",\"node_points_parsed\":%" PRIu64 ",\"node_points_applied\":%" PRIu64
			       ",\"loss_points\":%" PRId64,
			       parsed, applied, loss);
		printf("}\n");
	} else {
		printf("sluice-bench: line protocol over %s, %u points/packet, %u series, %s\n",
		       transport_name(o->transport), ppp, o->series,
		       o->rate_pps ? "open loop" : "as fast as the port takes");
		if (o->rate_pps)
			printf("  target        %" PRIu64 " points/s (latest packet %.1f us late)\n",
			       o->rate_pps, (double)late_max_ns / 1e3);
		printf("  sent          %" PRIu64 " points in %" PRIu64 " packets, %.2f s = %.0f points/s\n",
		       points_out, b->frames_tx, secs, rate);
		if (after.ok)
			printf("  node          %" PRIu64 " parsed, %" PRIu64 " applied, loss %" PRId64
			       " points (%.3f%%)\n",
			       parsed, applied, loss,
			       points_out ? 100.0 * (double)loss / (double)points_out : 0.0);
	}
	return 0;
}

/* ----------------------------------------------------------- session protocol */

static void on_session_msg(struct bench *b, const uint8_t *d, size_t len, uint64_t now)
{
	struct sl_sess_msg m;
	if (sl_sess_decode(d, len, b->o->cluster_id, &m) != SL_SESS_OK) {
		b->rx_bad_session++;
		return;
	}
	uint64_t id;
	switch (m.type) {
	case SL_SESS_OPEN_OK: id = m.u.open_ok.session_id; break;
	case SL_SESS_ACK: id = m.u.ack.session_id; break;
	case SL_SESS_CLOSE_OK: id = m.u.close_ok.session_id; break;
	default: b->rx_bad_session++; return;
	}
	uint32_t i = (uint32_t)(id & 0xffff);
	if (i >= b->o->sessions || b->cl[i].cfg.session_id != id) {
		b->rx_bad_session++;
		return;
	}
	struct sl_sess_client_event ev;
	if (sl_sess_client_on_msg(&b->cl[i], &m, (int64_t)now, &ev) != 0) {
		b->rx_bad_session++;
		return;
	}
	if (ev.acked_hi == 0)
		return;
	for (uint64_t s = ev.acked_lo; s <= ev.acked_hi; s++) {
		int64_t due = b->sched[i][s % b->o->window];
		sl_bench_hist_add(b->hist, now > (uint64_t)due ? now - (uint64_t)due : 0);
	}
}

/* Fills a batch of session i with its next points (series i, i + N, ...) and sends it. */
static int session_send_batch(struct bench *b, uint32_t i, uint64_t *next_pt, int64_t due,
			      uint64_t now)
{
	struct sl_sess_client *c = &b->cl[i];
	struct sl_sess_writer w;
	int rc = sl_sess_client_batch(c, &w);
	if (rc != 0)
		return rc;
	uint32_t n = 0;
	for (; n < b->o->points_per_packet; n++) {
		struct sl_point p;
		lgen_point(&b->gen, next_pt[i] + (uint64_t)n * b->o->sessions, &p);
		if (sl_sess_batch_add(&w, &p) != 0)
			break;
	}
	SL_ASSERT(n > 0);
	next_pt[i] += (uint64_t)n * b->o->sessions;
	uint64_t seq = c->next_seq;
	const uint8_t *d;
	size_t len;
	rc = sl_sess_client_send(c, &w, (int64_t)now, &d, &len);
	SL_ASSERT(rc == 0);
	b->sched[i][seq % b->o->window] = due;
	if (!tx_datagram(b, d, len))
		b->tx_full++; /* lost at our own port: the retransmission timer covers it */
	return (int)n;
}

/* Retransmissions and OPENs that are due, bounded per call. */
static void session_poll_all(struct bench *b, uint64_t now)
{
	for (uint32_t i = 0; i < b->o->sessions; i++) {
		const uint8_t *d;
		size_t len;
		for (uint32_t k = 0; k <= b->o->window; k++) {
			if (sl_sess_client_poll(&b->cl[i], (int64_t)now, &d, &len) != 1)
				break;
			if (!tx_datagram(b, d, len))
				break;
		}
	}
}

static uint32_t session_unacked(const struct bench *b)
{
	uint32_t u = 0;
	for (uint32_t i = 0; i < b->o->sessions; i++)
		u += b->cl[i].open ? sl_sess_client_unacked(&b->cl[i]) : 0;
	return u;
}

static int run_session(struct bench *b)
{
	const struct sl_bench_net_opts *o = b->o;
	uint32_t N = o->sessions;
	size_t slot = o->mtu - SL_PKT_IP_HDR - SL_PKT_UDP_HDR;
	if (slot > SL_SESS_MSG_MAX)
		slot = SL_SESS_MSG_MAX;
	b->cl = calloc(N, sizeof(*b->cl));
	b->sched = calloc(N, sizeof(*b->sched));
	b->cl_mem = calloc(N, sizeof(*b->cl_mem));
	uint64_t *next_pt = b->next_pt = calloc(N, sizeof(uint64_t));
	b->hist = calloc(1, sizeof(*b->hist));
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = wall_ns() ^ ((uint64_t)getpid() << 32);
	if (!b->cl || !b->sched || !b->cl_mem || !next_pt || !b->hist)
		return -ENOMEM;
	for (uint32_t i = 0; i < N; i++) {
		size_t mem_bytes = sl_sess_client_mem_bytes(o->window, slot);
		void *mem = aligned_alloc(64, (mem_bytes + 63) & ~(size_t)63);
		b->cl_mem[i] = mem;
		b->sched[i] = calloc(o->window, sizeof(int64_t));
		if (mem == NULL || b->sched[i] == NULL)
			return -ENOMEM;
		struct sl_sess_client_config cfg = {
			.cluster_id = o->cluster_id,
			.session_id = (rnd & ~0xffffull) | i | (1ull << 63),
			.first_seq = 1,
			.level = o->level,
			.window = o->window,
			.slot_bytes = slot,
			.rto_ns = (int64_t)o->rto_ns,
			.rto_max_ns = (int64_t)o->rto_ns * 16,
		};
		int rc = sl_sess_client_init(&b->cl[i], mem, mem_bytes, &cfg);
		if (rc != 0)
			return rc;
		next_pt[i] = i;
	}
	/* open every session before the clock starts */
	uint64_t t_open_end = sl_bench_now_ns() + ARP_TIMEOUT_NS;
	uint32_t opened = 0;
	while (opened < N && sl_bench_now_ns() < t_open_end) {
		uint64_t now = sl_bench_now_ns();
		session_poll_all(b, now);
		tx_flush(b);
		rx_poll(b, now, NULL);
		opened = 0;
		for (uint32_t i = 0; i < N; i++)
			opened += b->cl[i].open;
	}
	if (opened < N) {
		fprintf(stderr, "sluice-bench: %u of %u sessions opened within %lld s (does the "
				"node serve the session protocol on port %u?)\n",
			opened, N, ARP_TIMEOUT_NS / 1000000000ll, o->session_port);
		return -ETIMEDOUT;
	}
	struct node_counts before = node_read(o->ctl_path);
	uint64_t ppp = o->points_per_packet;
	uint64_t interval_ns = o->rate_pps ? (uint64_t)((double)ppp * 1e9 / (double)o->rate_pps) : 0;
	uint64_t t0 = sl_bench_now_ns(), t_end = t0 + (uint64_t)(o->duration_s * 1e9);
	uint64_t t_progress = t0 + 1000000000ull, next_due = t0, sent = 0, last_acked = 0, now = t0;
	uint64_t backlog_max = 0;
	uint32_t rr = 0;
	int exit_rc = 0;
	for (;;) {
		now = sl_bench_now_ns();
		bool stop = now >= t_end || (o->max_points && sent >= o->max_points);
		if (stop && session_unacked(b) == 0)
			break;
		if (now >= t_end + DRAIN_TIMEOUT_NS) {
			fprintf(stderr, "sluice-bench: %u batches unacknowledged %lld s after the end\n",
				session_unacked(b), DRAIN_TIMEOUT_NS / 1000000000ll);
			exit_rc = 1;
			break;
		}
		rx_poll(b, now, NULL);
		session_poll_all(b, now);
		/* new batches: due ones (open loop) or whatever the windows allow (closed) */
		for (uint32_t k = 0; !stop && k < BURST; k++) {
			if (interval_ns && next_due > now)
				break;
			int n = -EAGAIN;
			for (uint32_t t = 0; t < N && n == -EAGAIN; t++) {
				uint32_t i = (rr + t) % N;
				n = session_send_batch(b, i, next_pt, (int64_t)(interval_ns ? next_due : now),
						       now);
				if (n > 0)
					rr = (i + 1) % N;
			}
			if (n <= 0)
				break; /* every window full */
			sent += (uint64_t)n;
			if (interval_ns)
				next_due += interval_ns;
			if (o->max_points && sent >= o->max_points)
				break;
		}
		if (interval_ns && now > next_due && (now - next_due) / interval_ns > backlog_max)
			backlog_max = (now - next_due) / interval_ns;
		tx_flush(b);
		if (now >= t_progress) {
			uint64_t acked = 0;
			for (uint32_t i = 0; i < N; i++)
				acked += b->cl[i].stats.points_acked;
			progress(b, now, t0, acked - last_acked, "acked");
			last_acked = acked;
			t_progress += 1000000000ull;
		}
	}
	double secs = (double)(now - t0) / 1e9;
	struct sl_sess_client_stats tot = {0};
	for (uint32_t i = 0; i < N; i++) {
		const struct sl_sess_client_stats *s = &b->cl[i].stats;
		tot.batches_sent += s->batches_sent;
		tot.retransmits += s->retransmits;
		tot.batches_acked += s->batches_acked;
		tot.points_acked += s->points_acked;
		tot.reopens += s->reopens;
		tot.busy += s->busy;
		tot.go_back += s->go_back;
		/* best effort goodbye so the node's table does not wait for the idle timeout */
		struct sl_sess_msg m = {.type = SL_SESS_CLOSE, .cluster_id = o->cluster_id};
		m.u.close.session_id = b->cl[i].cfg.session_id;
		uint8_t buf[64];
		int len = sl_sess_encode(buf, sizeof(buf), &m);
		if (len > 0)
			tx_datagram(b, buf, (size_t)len);
	}
	tx_flush(b);
	struct node_counts after = o->ctl_path && before.ok
					   ? node_settle(o->ctl_path, before.points_applied,
							 tot.points_acked)
					   : (struct node_counts){0};
	uint64_t applied = after.ok ? after.points_applied - before.points_applied : 0;
	uint64_t loss = sent - tot.points_acked;
	double rate = (double)tot.points_acked / secs;
	const struct sl_bench_hist *h = b->hist;
	if (o->json) {
		printf("{\"transport\":\"%s\",\"protocol\":\"session\",\"points_per_batch\":%" PRIu64
		       ",\"series\":%u,\"sessions\":%u,\"window\":%u,\"level\":%u,\"rate_target\":%" PRIu64
		       ",\"seconds\":%.3f,\"points_sent\":%" PRIu64 ",\"points_acked\":%" PRIu64
		       ",\"points_per_s\":%.0f,\"batches_sent\":%" PRIu64 ",\"retransmits\":%" PRIu64
		       ",\"reopens\":%" PRIu64 ",\"busy\":%" PRIu64 ",\"go_back\":%" PRIu64
		       ",\"loss_points\":%" PRIu64 ",\"backlog_max_batches\":%" PRIu64
		       ",\"ack_latency_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
		       ",\"max\":%" PRIu64 "}",
		       transport_name(o->transport), ppp, o->series, N, o->window, o->level,
		       o->rate_pps, secs, sent, tot.points_acked, rate, tot.batches_sent,
		       tot.retransmits, tot.reopens, tot.busy, tot.go_back, loss, backlog_max,
		       sl_bench_hist_pct(h, 50), sl_bench_hist_pct(h, 99), sl_bench_hist_pct(h, 99.9),
		       h->max);
		if (after.ok)
			printf(",\"node_points_applied\":%" PRIu64, applied);
		printf("}\n");
	} else {
		printf("sluice-bench: session protocol over %s, %" PRIu64 " points/batch, %u series, "
		       "%u sessions x %u batches window, ack level %u, %s\n",
		       transport_name(o->transport), ppp, o->series, N, o->window, o->level,
		       o->rate_pps ? "open loop" : "closed loop");
		if (o->rate_pps)
			printf("  target        %" PRIu64 " points/s (backlog at most %" PRIu64
			       " batches)\n",
			       o->rate_pps, backlog_max);
		printf("  acknowledged  %" PRIu64 " points in %.2f s = %.0f points/s\n",
		       tot.points_acked, secs, rate);
		printf("  batches       %" PRIu64 " sent, %" PRIu64 " retransmits, %" PRIu64
		       " reopens, %" PRIu64 " busy\n",
		       tot.batches_sent, tot.retransmits, tot.reopens, tot.busy);
		printf("  loss          %" PRIu64 " points sent and never acknowledged\n", loss);
		if (after.ok)
			printf("  node          %" PRIu64 " points applied\n", applied);
		printf("  ack latency   p50 %.1f us  p99 %.1f us  p999 %.1f us  max %.1f us%s\n",
		       sl_bench_hist_pct(h, 50) / 1e3, sl_bench_hist_pct(h, 99) / 1e3,
		       sl_bench_hist_pct(h, 99.9) / 1e3, h->max / 1e3,
		       o->rate_pps ? " (from the scheduled send time)" : "");
	}
	return exit_rc;
}

static void session_free(struct bench *b)
{
	for (uint32_t i = 0; b->sched && b->cl_mem && i < b->o->sessions; i++) {
		free(b->cl_mem[i]);
		free(b->sched[i]);
	}
	free(b->cl);
	free(b->cl_mem);
	free(b->sched);
	free(b->hist);
	free(b->next_pt);
	b->cl = NULL;
}

/* ------------------------------------------------------------------ HTTP /write */

struct http_shared {
	const struct sl_bench_net_opts *o;
	const struct lgen *gen;
	struct addrinfo *ai;
	uint64_t t_end;
	_Atomic uint64_t points_ok;
	_Atomic uint64_t requests_failed;
	_Atomic int error;
};

struct http_worker {
	struct http_shared *sh;
	uint32_t idx;
	pthread_t tid;
};

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL); /* a closed peer is an error, not a signal */
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one HTTP/1.1 response (headers, then Content-Length bytes); returns the status. */
static int http_response(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *end = NULL;
	while (end == NULL) {
		if (have + 1 >= cap)
			return -EMSGSIZE;
		ssize_t n = read(fd, buf + have, cap - 1 - have);
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -EBADMSG;
	size_t body = 0;
	for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
		if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
			body = strtoul(h + 17, NULL, 10);
	size_t got = have - (size_t)(end + 4 - buf);
	while (got < body) { /* error bodies are small: discard them */
		ssize_t n = read(fd, buf, cap - 1);
		if (n <= 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return status;
}

static void *http_main(void *arg)
{
	struct http_worker *w = arg;
	struct http_shared *sh = w->sh;
	const struct sl_bench_net_opts *o = sh->o;
	uint32_t ppp = o->points_per_packet;
	size_t body_cap = (size_t)ppp * lgen_max_line(sh->gen);
	char *body = malloc(body_cap), hdr[512], resp[4096];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = {.tv_sec = 10};
	if (body == NULL || fd < 0 || connect(fd, sh->ai->ai_addr, sh->ai->ai_addrlen) != 0) {
		atomic_store(&sh->error, errno ? -errno : -ENOMEM);
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint64_t pt = w->idx;
	while (sl_bench_now_ns() < sh->t_end) {
		size_t len = lgen_fill(sh->gen, body, pt, o->sessions, ppp);
		pt += (uint64_t)ppp * o->sessions;
		int hl = snprintf(hdr, sizeof(hdr),
				  "POST /write?db=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
				  "Content-Length: %zu\r\n\r\n",
				  o->db, o->dest, len);
		int st = write_all(fd, hdr, (size_t)hl);
		if (st == 0)
			st = write_all(fd, body, len);
		if (st == 0)
			st = http_response(fd, resp, sizeof(resp));
		if (st < 0) {
			atomic_store(&sh->error, st);
			break;
		}
		if (st >= 200 && st < 300)
			atomic_fetch_add(&sh->points_ok, ppp);
		else
			atomic_fetch_add(&sh->requests_failed, 1);
	}
out:
	if (fd >= 0)
		close(fd);
	free(body);
	return NULL;
}

static int run_http(struct bench *b)
{
	const struct sl_bench_net_opts *o = b->o;
	char host[256];
	snprintf(host, sizeof(host), "%s", o->dest);
	char *colon = strrchr(host, ':');
	if (colon == NULL) {
		fprintf(stderr, "sluice-bench: --dest wants HOST:PORT\n");
		return 2;
	}
	*colon = '\0';
	struct http_shared sh = {.o = o, .gen = &b->gen};
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	if (getaddrinfo(host, colon + 1, &hints, &sh.ai) != 0) {
		fprintf(stderr, "sluice-bench: cannot resolve %s\n", o->dest);
		return 2;
	}
	struct http_worker *w = calloc(o->sessions, sizeof(*w));
	if (w == NULL)
		return 1;
	uint64_t t0 = sl_bench_now_ns();
	sh.t_end = t0 + (uint64_t)(o->duration_s * 1e9);
	uint32_t started = 0;
	for (; started < o->sessions; started++) {
		w[started] = (struct http_worker){.sh = &sh, .idx = started};
		if (pthread_create(&w[started].tid, NULL, http_main, &w[started]) != 0)
			break;
	}
	uint64_t last = 0, t_progress = t0 + 1000000000ull;
	while (sl_bench_now_ns() < sh.t_end && atomic_load(&sh.error) == 0) {
		usleep(50000);
		uint64_t now = sl_bench_now_ns();
		if (now >= t_progress) {
			uint64_t ok = atomic_load(&sh.points_ok);
			progress(b, now, t0, ok - last, "written");
			last = ok;
			t_progress += 1000000000ull;
		}
	}
	for (uint32_t i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	double secs = (double)(sl_bench_now_ns() - t0) / 1e9;
	freeaddrinfo(sh.ai);
	free(w);
	uint64_t ok = atomic_load(&sh.points_ok);
	int err = atomic_load(&sh.error);
	if (o->json)
		printf("{\"transport\":\"http\",\"protocol\":\"line\",\"points_per_request\":%u,"
		       "\"series\":%u,\"connections\":%u,\"seconds\":%.3f,\"points_written\":%" PRIu64
		       ",\"points_per_s\":%.0f,\"requests_failed\":%" PRIu64 ",\"error\":\"%s\"}\n",
		       o->points_per_packet, o->series, o->sessions, secs, ok, (double)ok / secs,
		       (uint64_t)atomic_load(&sh.requests_failed), err ? strerror(-err) : "");
	else
		printf("sluice-bench: line protocol over HTTP to %s, %u points/request, %u series, "
		       "%u connections\n  written       %" PRIu64 " points in %.2f s = %.0f points/s "
		       "(%" PRIu64 " requests refused)%s%s\n",
		       o->dest, o->points_per_packet, o->series, o->sessions, ok, secs,
		       (double)ok / secs, (uint64_t)atomic_load(&sh.requests_failed),
		       err ? ", error: " : "", err ? strerror(-err) : "");
	return err ? 1 : 0;
}

/* ------------------------------------------------------------------------ entry */

/* Points per datagram when the caller left it 0: as many as fit one MTU-sized frame. */
static uint32_t auto_points(const struct sl_bench_net_opts *o, const struct lgen *g)
{
	size_t payload_cap = o->mtu - SL_PKT_IP_HDR - SL_PKT_UDP_HDR;
	if (o->transport == SL_BENCH_HTTP)
		return 5000;
	if (o->protocol == SL_BENCH_LINE)
		return (uint32_t)(payload_cap / lgen_max_line(g));
	uint32_t kmax = 0;
	for (uint32_t s = 0; s < g->series; s++)
		kmax = g->klen[s] > kmax ? g->klen[s] : kmax;
	size_t fixed = SL_SESS_HDR_BYTES + SL_SESS_BATCH_FIXED_BYTES;
	if (payload_cap > SL_SESS_MSG_MAX)
		payload_cap = SL_SESS_MSG_MAX;
	return (uint32_t)((payload_cap - fixed) / (SL_SESS_POINT_FIXED_BYTES + kmax));
}

int sl_bench_net_run(const struct sl_bench_net_opts *opts)
{
	struct bench *b = calloc(1, sizeof(*b));
	char err[512] = "";
	if (b == NULL)
		return 1;
	struct sl_bench_net_opts oc = *opts;
	const struct sl_bench_net_opts *o = &oc;
	b->o = o;
	b->fd = -1;
	int rc = 0, exit_rc = 1;
	if (o->series == 0 || o->series > SERIES_MAX || o->sessions == 0 ||
	    o->sessions > SESSIONS_MAX || o->window == 0 ||
	    o->mtu < 576 || o->mtu > 1500 + 8192) {
		fprintf(stderr, "sluice-bench: --series in 1..%u, --sessions in 1..%u, "
				"--points-per-packet and --window > 0, --mtu in 576..9692\n",
			SERIES_MAX, SESSIONS_MAX);
		free(b);
		return 2;
	}
	rc = lgen_init(&b->gen, o->series);
	if (rc != 0) {
		snprintf(err, sizeof(err), "point generator: %s", strerror(-rc));
		goto out;
	}
	if (oc.points_per_packet == 0)
		oc.points_per_packet = auto_points(o, &b->gen);
	size_t payload_cap = o->mtu - SL_PKT_IP_HDR - SL_PKT_UDP_HDR;
	if (o->points_per_packet == 0) {
		snprintf(err, sizeof(err), "no point fits a %u-byte MTU", o->mtu);
		goto out;
	}
	if (o->protocol == SL_BENCH_LINE && o->transport != SL_BENCH_HTTP &&
	    (size_t)o->points_per_packet * lgen_max_line(&b->gen) > payload_cap) {
		snprintf(err, sizeof(err), "%u lines of up to %u bytes do not fit one %u-byte MTU "
					   "datagram: lower --points-per-packet",
			 o->points_per_packet, lgen_max_line(&b->gen), o->mtu);
		exit_rc = 2;
		goto out;
	}
	if (o->transport == SL_BENCH_HTTP) {
		exit_rc = run_http(b);
		goto out;
	}
	if (o->transport == SL_BENCH_UDP) {
		rc = udp_open(b, err, sizeof(err));
	} else {
		b->dpdk = true;
		rc = eal_start(b, err, sizeof(err));
		if (rc == 0)
			rc = arp_resolve(b, err, sizeof(err));
	}
	if (rc != 0)
		goto out;
	if (o->protocol == SL_BENCH_LINE) {
		exit_rc = run_line(b);
	} else {
		rc = run_session(b);
		session_free(b);
		exit_rc = rc < 0 ? 1 : rc;
		if (rc < 0 && rc != -ETIMEDOUT)
			snprintf(err, sizeof(err), "session run: %s", strerror(-rc));
	}
out:
	if (err[0])
		fprintf(stderr, "sluice-bench: %s\n", err);
	if (b->dpdk) {
		while (b->ntx > 0)
			rte_pktmbuf_free(b->txq[--b->ntx]);
		sl_ports_close(&b->ports);
		rte_eal_cleanup();
	}
	if (b->fd >= 0)
		close(b->fd);
	free(b->kbuf);
	lgen_free(&b->gen);
	free(b);
	return exit_rc;
}
