/* sess_client.c - a session-protocol client over a kernel UDP socket, for the integration
 * tests (run inside the test's network namespace) and as the reference for client authors:
 *   write  N deterministic points in batches with the retransmitting client helper; every
 *          acknowledged batch is logged; survives node restarts (bounded by --timeout);
 *   probe  the node's answers to protocol abuse: unknown session, replayed and far-future
 *          sequence numbers, a frame of another cluster (no answer, counted);
 *   read   one series over READ with continuation, printing "ts value" lines.
 *   keys   the series keys `write` uses, one per line.
 * Point i of `write`: series key number i % series, ts T0 + i, value i * 0.5; i runs from
 * --first I (default 0) for --points N. Key k is "sess,host=hNNN v" with NNN = k, or with
 * --region R/N the k-th such name whose series falls in region R of N. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "session.h"
#include "sl_crc.h"
#include "sl_le.h"

#define T0 1700000000000000000LL

struct conn {
	int fd;
	uint32_t cluster;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int conn_open(struct conn *c, const char *host, int port, uint32_t cluster)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -EINVAL;
	c->fd = socket(AF_INET, SOCK_DGRAM, 0);
	c->cluster = cluster;
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -errno;
	return 0;
}

/* Waits up to timeout_ms for one datagram and decodes it; 1 got, 0 timeout. */
static int recv_msg(struct conn *c, int timeout_ms, uint8_t *buf, struct sl_sess_msg *m)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	ssize_t n = recv(c->fd, buf, SL_SESS_MSG_MAX, 0);
	if (n <= 0)
		return 0;
	return sl_sess_decode(buf, (size_t)n, c->cluster, m) == SL_SESS_OK ? 1 : 0;
}

static void send_msg(struct conn *c, const struct sl_sess_msg *m)
{
	uint8_t buf[SL_SESS_MSG_MAX];
	int n = sl_sess_encode(buf, sizeof(buf), m);
	if (n > 0 && send(c->fd, buf, (size_t)n, 0) < 0)
		perror("send");
}

static uint64_t first_point; /* --first: point numbers start there */

/* --region R/N: only series keys of region R of N (hash ranges, as sluiced splits them),
 * so that a test can aim a session at one region; key k is the k-th such name */
#define KEYS_MAX 4096
static uint32_t key_host[KEYS_MAX];

static int keys_init(uint32_t series, long region, uint32_t regions)
{
	char key[64];
	uint32_t n = 0;
	for (uint32_t h = 0; n < series && h < 1000000; h++) {
		int kl = snprintf(key, sizeof(key), "sess,host=h%03u v", h);
		uint64_t id = sl_series_id(key, (size_t)kl);
		if (region < 0 || (long)(((unsigned __int128)id * regions) >> 64) == region)
			key_host[n++] = h;
	}
	return n == series ? 0 : -1;
}

static int do_write(struct conn *c, uint64_t n_points, uint32_t series, uint32_t batch,
		    uint64_t session, const char *log_path, double timeout_s, uint8_t level)
{
	FILE *log = fopen(log_path, "w");
	if (log == NULL) {
		perror(log_path);
		return 2;
	}
	uint32_t window = 32;
	size_t mem_bytes = sl_sess_client_mem_bytes(window, SL_SESS_MSG_MAX);
	void *mem = aligned_alloc(64, (mem_bytes + 63) & ~(size_t)63);
	struct sl_sess_client cl;
	struct sl_sess_client_config cfg = {.cluster_id = c->cluster,
					    .session_id = session,
					    .first_seq = 1,
					    .level = level,
					    .window = window,
					    .slot_bytes = SL_SESS_MSG_MAX,
					    .rto_ns = 100000000,
					    .rto_max_ns = 1000000000};
	if (mem == NULL || sl_sess_client_init(&cl, mem, mem_bytes, &cfg) != 0) {
		fprintf(stderr, "sess_client: client init failed\n");
		return 2;
	}
	uint64_t n_batches = (n_points + batch - 1) / batch, sent = 0, acked = 0, acks = 0;
	uint64_t at_level = 0; /* acks that said the requested level was reached */
	int64_t deadline = now_ns() + (int64_t)(timeout_s * 1e9);
	uint8_t rbuf[SL_SESS_MSG_MAX];
	char key[64];
	while (acked < n_batches) {
		int64_t now = now_ns();
		if (now > deadline) {
			fprintf(stderr, "sess_client: timeout with %" PRIu64 "/%" PRIu64 " acked\n",
				acked, n_batches);
			return 1;
		}
		const uint8_t *dg;
		size_t len;
		while (sl_sess_client_poll(&cl, now, &dg, &len) == 1)
			if (send(c->fd, dg, len, 0) < 0)
				break; /* node unreachable for now: the helper retransmits */
		struct sl_sess_writer wr;
		while (sent < n_batches && sl_sess_client_batch(&cl, &wr) == 0) {
			uint64_t first = sent * batch;
			for (uint64_t i = first; i < first + batch && i < n_points; i++) {
				uint64_t j = first_point + i; /* the point's number (--first) */
				int kl = snprintf(key, sizeof(key), "sess,host=h%03u v",
						  key_host[j % series]);
				double v = (double)j * 0.5;
				struct sl_point pt = {.ts = T0 + (int64_t)j,
						      .type = SL_VAL_F64,
						      .key_len = (uint16_t)kl,
						      .key = key};
				memcpy(&pt.value, &v, 8);
				pt.series_id = sl_series_id(key, (size_t)kl);
				if (sl_sess_batch_add(&wr, &pt) != 0) {
					fprintf(stderr, "sess_client: batch of %u points too big\n", batch);
					return 2;
				}
			}
			if (sl_sess_client_send(&cl, &wr, now, &dg, &len) != 0)
				return 2;
			/* over 1472 bytes the kernel sends IP fragments: the node reassembles */
			(void)!send(c->fd, dg, len, 0);
			sent++;
		}
		struct sl_sess_msg m;
		int64_t wait_ms = (sl_sess_client_deadline(&cl) - now_ns()) / 1000000;
		if (recv_msg(c, wait_ms < 1 ? 1 : wait_ms > 50 ? 50 : (int)wait_ms, rbuf, &m) != 1)
			continue;
		acks += m.type == SL_SESS_ACK;
		struct sl_sess_client_event ev;
		int rc = sl_sess_client_on_msg(&cl, &m, now_ns(), &ev);
		if (rc != 0) {
			fprintf(stderr, "sess_client: node contradicted itself (%d)\n", rc);
			return 1;
		}
		if (m.type == SL_SESS_ACK && m.u.ack.status == SL_SESS_ST_REJECTED_POINTS) {
			fprintf(stderr, "sess_client: points rejected in seq %" PRIu64 "\n", m.u.ack.seq);
			return 1;
		}
		for (uint64_t s = ev.acked_lo; ev.acked_lo && s <= ev.acked_hi; s++) {
			fprintf(log, "%" PRIu64 "\n", s - 1); /* batch index = seq - 1 */
			acked++;
		}
		if (ev.acked_lo && ev.level >= level)
			at_level += ev.acked_hi - ev.acked_lo + 1;
		fflush(log);
	}
	fclose(log);
	/* answers to retransmissions may still be on their way: count them too (until none
	 * comes for 100 ms; at most 20 more), so a test can compare with the acks sent */
	struct sl_sess_msg m;
	for (int k = 0; k < 20 && recv_msg(c, 100, rbuf, &m) == 1; k++)
		acks += m.type == SL_SESS_ACK;
	printf("sess_client: %" PRIu64 " points in %" PRIu64 " batches acknowledged, %" PRIu64
	       " retransmits, %" PRIu64 " re-opens, %" PRIu64 " acks received, %" PRIu64
	       " batches acknowledged at level %u or above\n",
	       n_points, n_batches, cl.stats.retransmits, cl.stats.reopens, acks, at_level, level);
	return 0;
}

static int expect_ack(struct conn *c, const struct sl_sess_msg *m, int status, const char *what);
static void batch_msg(struct conn *c, struct sl_sess_msg *m, uint8_t *buf, uint64_t session,
		      uint64_t seq, int64_t ts);

/* replay N: sends seqs 1..N of an existing session again (from this socket's port, so
 * maybe to another core's session table than the writer's): each must be answered
 * DUPLICATE (a batch the node made durable before is not applied again). */
static int do_replay(struct conn *c, uint64_t session, uint64_t n)
{
	uint8_t buf[SL_SESS_MSG_MAX];
	struct sl_sess_msg m;
	int fails = 0;
	char what[48];
	for (uint64_t s = 1; s <= n && n <= 1000; s++) {
		batch_msg(c, &m, buf, session, s, (int64_t)s);
		snprintf(what, sizeof(what), "seq %" PRIu64 " replayed", s);
		fails += expect_ack(c, &m, SL_SESS_ST_DUPLICATE, what);
	}
	printf("sess_client: replay of seqs 1..%" PRIu64 ": %d not answered DUPLICATE\n", n, fails);
	return n == 0 || n > 1000 ? 2 : fails != 0;
}

/* Sends m and expects an ACK with `status` (or none at all when status < 0). */
static int expect_ack(struct conn *c, const struct sl_sess_msg *m, int status, const char *what)
{
	uint8_t rbuf[SL_SESS_MSG_MAX];
	struct sl_sess_msg r;
	for (int tries = 0; tries < 5; tries++) {
		send_msg(c, m);
		if (recv_msg(c, 300, rbuf, &r) == 1 && r.type == SL_SESS_ACK) {
			printf("  %-28s -> %s\n", what, sl_sess_status_name(r.u.ack.status));
			return (int)r.u.ack.status == status ? 0 : 1;
		}
		if (status < 0) {
			printf("  %-28s -> no answer\n", what);
			return 0;
		}
	}
	printf("  %-28s -> no answer (expected %s)\n", what, sl_sess_status_name(status));
	return 1;
}

static void batch_msg(struct conn *c, struct sl_sess_msg *m, uint8_t *buf, uint64_t session,
		      uint64_t seq, int64_t ts)
{
	struct sl_sess_writer wr;
	sl_sess_batch_begin(&wr, buf, SL_SESS_MSG_MAX, c->cluster, session, seq, SL_SESS_LEVEL_LOCAL);
	const char *key = "probe,host=p v";
	double v = 1.5;
	struct sl_point pt = {.ts = ts, .type = SL_VAL_F64, .key_len = (uint16_t)strlen(key), .key = key};
	memcpy(&pt.value, &v, 8);
	pt.series_id = sl_series_id(key, pt.key_len);
	sl_sess_batch_add(&wr, &pt);
	size_t len = sl_sess_finish(&wr);
	sl_sess_decode(buf, len, c->cluster, m);
}

static int do_probe(struct conn *c, uint64_t session)
{
	uint8_t buf[SL_SESS_MSG_MAX], rbuf[SL_SESS_MSG_MAX];
	struct sl_sess_msg m, r;
	int fails = 0;
	batch_msg(c, &m, buf, session, 1, 1);
	fails += expect_ack(c, &m, SL_SESS_ST_UNKNOWN_SESSION, "batch of an unknown session");
	struct sl_sess_msg open = {.type = SL_SESS_OPEN, .cluster_id = c->cluster};
	open.u.open = (struct sl_sess_open){session, 1};
	send_msg(c, &open);
	if (recv_msg(c, 1000, rbuf, &r) != 1 || r.type != SL_SESS_OPEN_OK) {
		printf("  open -> no OPEN_OK\n");
		return 1;
	}
	batch_msg(c, &m, buf, session, 1, 1);
	fails += expect_ack(c, &m, SL_SESS_ST_OK, "seq 1");
	fails += expect_ack(c, &m, SL_SESS_ST_DUPLICATE, "seq 1 replayed");
	batch_msg(c, &m, buf, session, 3, 3);
	fails += expect_ack(c, &m, SL_SESS_ST_OUT_OF_ORDER, "seq 3 before seq 2");
	batch_msg(c, &m, buf, session, 1000000, 4);
	fails += expect_ack(c, &m, SL_SESS_ST_TOO_FAR_AHEAD, "seq 1000000 (far future)");
	struct conn other = *c;
	other.cluster = c->cluster + 1;
	batch_msg(&other, &m, buf, session, 2, 2);
	fails += expect_ack(&other, &m, -1, "frame of another cluster");
	batch_msg(c, &m, buf, session, 2, 2);
	fails += expect_ack(c, &m, SL_SESS_ST_OK, "seq 2");
	/* a well-formed frame (valid CRC, our cluster) with a bad point: answered with ERROR */
	struct sl_sess_writer wr;
	sl_sess_batch_begin(&wr, buf, SL_SESS_MSG_MAX, c->cluster, session, 3, SL_SESS_LEVEL_LOCAL);
	const char *key = "probe,host=p v";
	struct sl_point pt = {.ts = 3, .type = SL_VAL_F64, .key_len = 14, .key = key};
	pt.series_id = sl_series_id(key, 14);
	sl_sess_batch_add(&wr, &pt);
	size_t len = sl_sess_finish(&wr);
	buf[SL_SESS_HDR_BYTES + SL_SESS_BATCH_FIXED_BYTES + 2 + 14 + 8] = 9; /* value type */
	uint32_t crc = sl_crc32c(buf, 16, 0xffffffffu);
	sl_put_u32(buf + 16, ~sl_crc32c(buf + SL_SESS_HDR_BYTES, len - SL_SESS_HDR_BYTES, crc));
	int got = 0;
	for (int tries = 0; tries < 5 && !got; tries++) {
		(void)!send(c->fd, buf, len, 0);
		got = recv_msg(c, 300, rbuf, &r) == 1 && r.type == SL_SESS_ERROR;
	}
	printf("  %-28s -> %s\n", "batch with a bad point", got ? sl_sess_err_name(r.u.error.code) : "no answer");
	fails += !(got && r.u.error.code == SL_SESS_ERR_BAD_POINT && r.u.error.ref_id == session);
	return fails ? 1 : 0;
}

static int do_read(struct conn *c, const char *series, int64_t from, int64_t to)
{
	uint8_t rbuf[SL_SESS_MSG_MAX];
	struct sl_sess_msg q = {.type = SL_SESS_READ, .cluster_id = c->cluster}, r;
	q.u.read = (struct sl_sess_read){.request_id = (uint64_t)now_ns(),
					  .from_ts = from,
					  .to_ts = to,
					  .max_points = SL_SESS_RESULT_POINTS_MAX,
					  .level = SL_SESS_READ_LOCAL,
					  .key_len = (uint16_t)strlen(series),
					  .key = series};
	uint64_t total = 0;
	for (int rounds = 0; rounds < 100000; rounds++) {
		int got = 0;
		for (int tries = 0; tries < 5 && !got; tries++) {
			send_msg(c, &q);
			got = recv_msg(c, 500, rbuf, &r) == 1 && r.type == SL_SESS_READ_RESULT &&
			      r.u.result.request_id == q.u.read.request_id;
		}
		if (!got) {
			fprintf(stderr, "sess_client: no READ_RESULT\n");
			return 1;
		}
		if (r.u.result.status != SL_SESS_ST_OK) {
			fprintf(stderr, "sess_client: read: %s\n", sl_sess_status_name(r.u.result.status));
			return 1;
		}
		for (uint32_t i = 0; i < r.u.result.count; i++) {
			int64_t ts;
			uint64_t v;
			sl_sess_result_pair(&r.u.result, i, &ts, &v);
			double d;
			memcpy(&d, &v, 8);
			if (r.u.result.type == SL_VAL_F64)
				printf("%" PRId64 " %.17g\n", ts, d);
			else
				printf("%" PRId64 " %" PRIu64 "\n", ts, v);
		}
		total += r.u.result.count;
		if (!r.u.result.more)
			break;
		q.u.read.cont = true;
		q.u.read.cont_ts = r.u.result.cont_ts;
		q.u.read.request_id++;
	}
	fprintf(stderr, "sess_client: %" PRIu64 " points read\n", total);
	return 0;
}

int main(int argc, char **argv)
{
	const char *node = NULL, *log = NULL;
	int port = SL_SESS_PORT;
	uint32_t cluster = 1, series = 50, batch = 30; /* a batch fits one 1500-byte frame */
	uint64_t points = 100000, session = 0;
	double timeout_s = 120;
	uint8_t level = SL_SESS_LEVEL_LOCAL;
	int64_t from = INT64_MIN, to = INT64_MAX;
	long region = -1;
	uint32_t regions = 1;
	static const struct option opts[] = {
		{"node", required_argument, 0, 'n'},   {"port", required_argument, 0, 'p'},
		{"cluster", required_argument, 0, 'c'}, {"points", required_argument, 0, 'N'},
		{"series", required_argument, 0, 's'}, {"batch", required_argument, 0, 'b'},
		{"session", required_argument, 0, 'S'}, {"log", required_argument, 0, 'l'},
		{"timeout", required_argument, 0, 't'}, {"from", required_argument, 0, 'f'},
		{"to", required_argument, 0, 'T'},     {"help", no_argument, 0, 'h'},
		{"level", required_argument, 0, 'L'},  {"first", required_argument, 0, 'F'},
		{"region", required_argument, 0, 'R'},
		{0, 0, 0, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "+n:p:c:N:s:b:S:l:t:f:T:L:F:R:h", opts, NULL)) != -1) {
		switch (o) {
		case 'n': node = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'c': cluster = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'N': points = strtoull(optarg, NULL, 10); break;
		case 's': series = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'b': batch = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'S': session = strtoull(optarg, NULL, 10); break;
		case 'l': log = optarg; break;
		case 't': timeout_s = strtod(optarg, NULL); break;
		case 'f': from = strtoll(optarg, NULL, 10); break;
		case 'T': to = strtoll(optarg, NULL, 10); break;
		case 'L': level = (uint8_t)strtoul(optarg, NULL, 10); break;
		case 'F': first_point = strtoull(optarg, NULL, 10); break;
		case 'R':
			if (sscanf(optarg, "%ld/%u", &region, &regions) != 2 || region < 0 ||
			    regions == 0 || (unsigned long)region >= regions) {
				fprintf(stderr, "sess_client: --region wants R/N, R < N\n");
				return 2;
			}
			break;
		default:
			printf("usage: sess_client --node IP [--port P] [--cluster C] "
			       "write --log FILE [--points N --series S --batch B --session ID --level L --first I --region R/N] | replay N --session ID | "
			       "keys [--series S --region R/N] | probe | read SERIES [--from T --to T]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	if (series > KEYS_MAX || keys_init(series, region, regions) != 0) {
		fprintf(stderr, "sess_client: no %u series keys (at most %u)\n", series, KEYS_MAX);
		return 2;
	}
	if (optind < argc && strcmp(argv[optind], "keys") == 0) { /* the keys `write` uses */
		for (uint32_t k = 0; k < series; k++)
			printf("sess,host=h%03u v\n", key_host[k]);
		return 0;
	}
	if (node == NULL || optind >= argc) {
		fprintf(stderr, "sess_client: --node and a command are required (see --help)\n");
		return 2;
	}
	struct conn c;
	if (conn_open(&c, node, port, cluster) != 0) {
		fprintf(stderr, "sess_client: cannot reach %s:%d\n", node, port);
		return 2;
	}
	if (session == 0)
		session = ((uint64_t)now_ns() << 8) ^ (uint64_t)getpid();
	const char *cmd = argv[optind];
	if (strcmp(cmd, "write") == 0 && log != NULL && batch > 0 && series > 0)
		return do_write(&c, points, series, batch, session, log, timeout_s, level);
	if (strcmp(cmd, "probe") == 0)
		return do_probe(&c, session);
	if (strcmp(cmd, "replay") == 0 && optind + 1 < argc)
		return do_replay(&c, session, strtoull(argv[optind + 1], NULL, 10));
	if (strcmp(cmd, "read") == 0 && optind + 1 < argc)
		return do_read(&c, argv[optind + 1], from, to);
	fprintf(stderr, "sess_client: bad command line (see --help)\n");
	return 2;
}
