/* sluice_bench.c - sluice-bench: load generator and measurement tool for perf labs.
 * Options and the shm transport live here: it drives the shm ingest path through libsluice,
 * keeps the client's ring full with fixed-size batches (closed loop) and measures
 * acknowledged points/s and the ack latency of every batch (submit to acknowledgement),
 * reporting p50/p99/p999 (human text or --json). Bounded by --duration and --points. The
 * network transports (memif, tap, and kernel udp/http for peers) are in bench_net.c. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "bench_net.h"
#include "sluice.h"

static void usage(FILE *o)
{
	fprintf(o,
		"usage: sluice-bench [options]\n"
		"Loads a sluiced and reports points/s; acknowledged points/s and ack latency\n"
		"(p50/p99/p999) where the transport acknowledges.\n\n"
		"  --transport T        shm (default: libsluice ingest ring), memif, tap (DPDK, own\n"
		"                       EAL, --no-pci), nic (DPDK on the one NIC given by --pci),\n"
		"                       or udp / http (kernel sockets, for peer comparisons such\n"
		"                       as InfluxDB; http: line protocol only)\n"		"                       or disk (no node: the disk's own O_DIRECT write +\n"
		"                       fdatasync latency in --path DIR, one WAL group commit each)\n"
		"  -d, --duration SEC   run time in seconds (default 10)\n"
		"  -n, --points N       stop after N points (default: no limit)\n"
		"  -s, --series N       distinct series (default 1000)\n"
		"  -q, --quiet          no progress lines\n"
		"  -j, --json           print the result as one JSON object (shm: with per-second\n"
		"                       windows of acked points, p99 and max, and failures by status)\n"
		"  -h, --help           this help\n"
		"      --version        print the version\n"
		"shm:\n"
		"  -p, --path PATH      shm ingest segment (default /dev/shm/sluice-node1.ingest)\n"
		"  -b, --batch N        points per batch (default 1000)\n"
		"  -i, --inflight N     batches in flight at most (default: as the ring allows)\n"
		"disk:\n"
		"  -p, --path DIR       directory on the disk to measure (a temp file, removed)\n"
		"      --disk-bytes N   bytes per write (default 65536, a multiple of 4096)\n"
		"memif / tap / udp / http:\n"
		"  --protocol P         line (default: InfluxDB line protocol, no acks) or session\n"
		"                       (binary session protocol: memif, tap, udp)\n"
		"  --socket PATH        memif control socket of the node (memif server)\n"
		"  --iface NAME         tap interface to create (connect it to the node yourself)\n"
		"  --pci ADDRESS        nic: the PCI address of the NIC to use (nothing else is\n"
		"                       touched); the node must be reachable through it\n"
		"  --dest HOST:PORT     udp/http destination (e.g. 127.0.0.1:8089, 127.0.0.1:8086)\n"
		"  --db NAME            http: database of /write (default bench)\n"
		"  --node-ip A.B.C.D    the node's address (default 198.18.0.1)\n"
		"  --ip A.B.C.D         this bench's address (default 198.18.0.2)\n"
		"  --line-port N        node's line protocol UDP port (default 8089)\n"
		"  --session-port N     node's session protocol UDP port (default 7400)\n"
		"  --cluster ID         session protocol cluster id (default 1)\n"
		"  --ctl SOCKET         node ctl socket: read points applied, report loss\n"
		"  --points-per-packet N  points per datagram / batch / HTTP request (default: as\n"
		"                       many as fit --mtu; http: 5000)\n"
		"  --mtu N              IP MTU of the frames (default 1500)\n"
		"  --sessions N         sessions (session), source ports (line), connections\n"
		"                       (http); default 1\n"
		"  --window N           unacknowledged batches per session (default 32)\n"
		"  --level L            ack level of session batches 0..2 (default 1: durable)\n"
		"  --rate POINTS_PER_S  open loop: packets at fixed intervals, latency from the\n"
		"                       scheduled send time (default: closed loop)\n"
		"  --rto-ms MS          first retransmission timeout (default 200)\n"
		"  --cpu N              CPU of the bench's lcore (default: first allowed)\n");
}

enum {
	OPT_TRANSPORT = 256, OPT_PROTOCOL, OPT_SOCKET, OPT_IFACE, OPT_PCI, OPT_DEST, OPT_DB, OPT_NODE_IP,
	OPT_IP, OPT_LINE_PORT, OPT_SESSION_PORT, OPT_CLUSTER, OPT_CTL, OPT_PPP, OPT_MTU,
	OPT_SESSIONS, OPT_WINDOW, OPT_LEVEL, OPT_RATE, OPT_RTO, OPT_CPU, OPT_VERSION, OPT_DISK_BYTES,
};

static int parse_ip(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "sluice-bench: bad IPv4 address '%s'\n", s);
		return -EINVAL;
	}
	*out = ntohl(a.s_addr);
	return 0;
}

#define WINDOWS_TEXT (1u << 20) /* the JSON windows of a run: ~100 bytes a second */

/* Closes the window ending at t_s: one JSON object appended to wins, then reset. */
static void window_close(char *wins, size_t *len, double t_s, uint64_t acked,
			 struct sl_bench_hist *wh)
{
	if (*len + 160 < WINDOWS_TEXT)
		*len += (size_t)snprintf(wins + *len, WINDOWS_TEXT - *len,
					 "%s{\"t\":%.0f,\"acked\":%" PRIu64 ",\"p99\":%" PRIu64
					 ",\"max\":%" PRIu64 "}",
					 *len ? "," : "", t_s, acked,
					 wh->n ? sl_bench_hist_pct(wh, 99) : 0, wh->max);
	memset(wh, 0, sizeof(*wh));
}

/* Failed batches by status (the first four kinds seen; later kinds count in the last). */
static void count_failure(int32_t *status, uint64_t *count, int32_t st)
{
	for (int k = 0; k < 4; k++)
		if (count[k] == 0 || status[k] == st || k == 3) {
			if (count[k] == 0)
				status[k] = st;
			count[k]++;
			return;
		}
}

int main(int argc, char **argv)
{
	const char *path = "/dev/shm/sluice-node1.ingest";
	double duration_s = 10;
	uint64_t max_points = 0;
	uint32_t batch = 1000, series = 1000, max_inflight = 0;
	bool json = false, quiet = false, disk = false, path_set = false;
	uint32_t disk_bytes = 65536;
	struct sl_bench_net_opts no = {
		.transport = SL_BENCH_SHM, .protocol = SL_BENCH_LINE, .db = "bench", .cpu = -1,
		.line_port = 8089, .session_port = 7400, .cluster_id = 1, .mtu = 1500,
		.sessions = 1, .window = 32, .level = 1, .rto_ns = 200000000ull,
	};
	parse_ip("198.18.0.1", &no.node_ip);
	parse_ip("198.18.0.2", &no.ip);
	static const struct option opts[] = {
		{"path", required_argument, 0, 'p'},   {"duration", required_argument, 0, 'd'},
		{"points", required_argument, 0, 'n'}, {"batch", required_argument, 0, 'b'},
		{"series", required_argument, 0, 's'}, {"inflight", required_argument, 0, 'i'},
		{"json", no_argument, 0, 'j'},         {"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},
		{"transport", required_argument, 0, OPT_TRANSPORT},
		{"protocol", required_argument, 0, OPT_PROTOCOL},
		{"socket", required_argument, 0, OPT_SOCKET},
		{"iface", required_argument, 0, OPT_IFACE},
		{"pci", required_argument, 0, OPT_PCI},
		{"dest", required_argument, 0, OPT_DEST},
		{"db", required_argument, 0, OPT_DB},
		{"node-ip", required_argument, 0, OPT_NODE_IP},
		{"ip", required_argument, 0, OPT_IP},
		{"line-port", required_argument, 0, OPT_LINE_PORT},
		{"session-port", required_argument, 0, OPT_SESSION_PORT},
		{"cluster", required_argument, 0, OPT_CLUSTER},
		{"ctl", required_argument, 0, OPT_CTL},
		{"points-per-packet", required_argument, 0, OPT_PPP},
		{"mtu", required_argument, 0, OPT_MTU},
		{"sessions", required_argument, 0, OPT_SESSIONS},
		{"window", required_argument, 0, OPT_WINDOW},
		{"level", required_argument, 0, OPT_LEVEL},
		{"rate", required_argument, 0, OPT_RATE},
		{"rto-ms", required_argument, 0, OPT_RTO},
		{"cpu", required_argument, 0, OPT_CPU},
		{"version", no_argument, 0, OPT_VERSION},
		{"disk-bytes", required_argument, 0, OPT_DISK_BYTES},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "p:d:n:b:s:i:jqh", opts, NULL)) != -1) {
		switch (c) {
		case 'p': path = optarg; path_set = true; break;
		case 'd': duration_s = strtod(optarg, NULL); break;
		case 'n': max_points = strtoull(optarg, NULL, 10); break;
		case 'b': batch = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': series = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': max_inflight = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'j': json = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		case OPT_VERSION: printf("sluice-bench %s\n", SLUICE_VERSION); return 0;
		case OPT_TRANSPORT:
			if (strcmp(optarg, "shm") == 0) no.transport = SL_BENCH_SHM;
			else if (strcmp(optarg, "memif") == 0) no.transport = SL_BENCH_MEMIF;
			else if (strcmp(optarg, "tap") == 0) no.transport = SL_BENCH_TAP;
			else if (strcmp(optarg, "nic") == 0) no.transport = SL_BENCH_NIC;
			else if (strcmp(optarg, "udp") == 0) no.transport = SL_BENCH_UDP;
			else if (strcmp(optarg, "http") == 0) no.transport = SL_BENCH_HTTP;
			else if (strcmp(optarg, "disk") == 0) disk = true;
			else {
				fprintf(stderr, "sluice-bench: --transport shm|memif|tap|nic|udp|http|disk\n");
				return 2;
			}
			break;
		case OPT_PROTOCOL:
			if (strcmp(optarg, "line") == 0) no.protocol = SL_BENCH_LINE;
			else if (strcmp(optarg, "session") == 0) no.protocol = SL_BENCH_SESSION;
			else {
				fprintf(stderr, "sluice-bench: --protocol line|session\n");
				return 2;
			}
			break;
		case OPT_SOCKET: no.socket_path = optarg; break;
		case OPT_IFACE: no.iface = optarg; break;
		case OPT_PCI: no.pci = optarg; break;
		case OPT_DEST: no.dest = optarg; break;
		case OPT_DB: no.db = optarg; break;
		case OPT_NODE_IP:
			if (parse_ip(optarg, &no.node_ip) != 0)
				return 2;
			break;
		case OPT_IP:
			if (parse_ip(optarg, &no.ip) != 0)
				return 2;
			break;
		case OPT_LINE_PORT: no.line_port = (uint16_t)strtoul(optarg, NULL, 10); break;
		case OPT_SESSION_PORT: no.session_port = (uint16_t)strtoul(optarg, NULL, 10); break;
		case OPT_CLUSTER: no.cluster_id = (uint32_t)strtoul(optarg, NULL, 10); break;
		case OPT_CTL: no.ctl_path = optarg; break;
		case OPT_PPP: no.points_per_packet = (uint32_t)strtoul(optarg, NULL, 10); break;
		case OPT_MTU: no.mtu = (uint32_t)strtoul(optarg, NULL, 10); break;
		case OPT_SESSIONS: no.sessions = (uint32_t)strtoul(optarg, NULL, 10); break;
		case OPT_WINDOW: no.window = (uint32_t)strtoul(optarg, NULL, 10); break;
		case OPT_LEVEL: no.level = (uint8_t)strtoul(optarg, NULL, 10); break;
		case OPT_RATE: no.rate_pps = strtoull(optarg, NULL, 10); break;
		case OPT_RTO: no.rto_ns = strtoull(optarg, NULL, 10) * 1000000ull; break;
		case OPT_CPU: no.cpu = (int)strtol(optarg, NULL, 10); break;
		case OPT_DISK_BYTES: disk_bytes = (uint32_t)strtoul(optarg, NULL, 10); break;
		default: usage(stderr); return 2;
		}
	}
	if (batch == 0 || series == 0 || duration_s <= 0 || duration_s > 86400) {
		fprintf(stderr, "sluice-bench: --batch and --series must be > 0, --duration in (0, 86400]\n");
		return 2;
	}
	if (disk)
		return sl_bench_disk(path_set ? path : "/var/tmp", disk_bytes, duration_s, max_points,
				     json);
	if (no.transport != SL_BENCH_SHM) {
		no.series = series;
		no.duration_s = duration_s;
		no.max_points = max_points;
		no.json = json;
		no.quiet = quiet;
		const char *need = NULL;
		if (no.transport == SL_BENCH_MEMIF && no.socket_path == NULL)
			need = "--transport memif needs --socket PATH";
		else if (no.transport == SL_BENCH_TAP && no.iface == NULL)
			need = "--transport tap needs --iface NAME";
		else if (no.transport == SL_BENCH_NIC && no.pci == NULL)
			need = "--transport nic needs --pci ADDRESS (the NIC you allow it to use)";
		else if ((no.transport == SL_BENCH_UDP || no.transport == SL_BENCH_HTTP) &&
			 no.dest == NULL)
			need = "--transport udp|http needs --dest HOST:PORT";
		else if (no.transport == SL_BENCH_HTTP && no.protocol != SL_BENCH_LINE)
			need = "--transport http speaks the line protocol only";
		else if (no.level > 2 || no.rto_ns == 0)
			need = "--level in 0..2, --rto-ms > 0";
		if (need) {
			fprintf(stderr, "sluice-bench: %s\n", need);
			return 2;
		}
		return sl_bench_net_run(&no);
	}
	struct sluice_client *cl;
	int rc = sluice_connect(path, &cl);
	if (rc != 0) {
		fprintf(stderr, "sluice-bench: cannot connect to %s: %s (is sluiced running?)\n",
			path, strerror(-rc));
		return 1;
	}
	int cap = sluice_capacity(cl);
	if ((uint32_t)cap < batch) {
		fprintf(stderr, "sluice-bench: batch %u larger than the ring (%d points)\n", batch, cap);
		return 2;
	}
	uint32_t ring_batches = (uint32_t)cap / batch;
	if (max_inflight == 0 || max_inflight > ring_batches)
		max_inflight = ring_batches;
	char(*keys)[40] = calloc(series, 40);
	uint16_t *klen = calloc(series, sizeof(uint16_t));
	struct sluice_point *pts = calloc(batch, sizeof(*pts));
	/* submit time by batch seq, in a ring indexed by seq (seqs are dense per client) */
	uint32_t tq_size = 1;
	while (tq_size < max_inflight * 2)
		tq_size <<= 1;
	uint64_t *t_submit = calloc(tq_size, sizeof(uint64_t));
	struct sl_bench_hist *h = calloc(1, sizeof(*h));
	if (!keys || !klen || !pts || !t_submit || !h) {
		fprintf(stderr, "sluice-bench: out of memory\n");
		return 1;
	}
	for (uint32_t s = 0; s < series; s++)
		klen[s] = (uint16_t)sl_bench_key(keys[s], 40, s);

	uint64_t t0 = sl_bench_now_ns(), t_end = t0 + (uint64_t)(duration_s * 1e9), t_progress = t0 + 1000000000ull;
	uint64_t sent_pts = 0, acked_pts = 0, failed = 0, inflight = 0, seq = 0, ts = 1;
	uint64_t last_acked = 0;
	uint32_t next_series = 0;
	int exit_rc = 0;
	/* per-second windows (--json): acked points, p99 and max of the acks in each, so a
	 * run that spans an operation (a leader move) shows the pause it caused */
	struct sl_bench_hist *wh = calloc(1, sizeof(*wh));
	char *wins = calloc(1, WINDOWS_TEXT);
	size_t wins_len = 0;
	uint64_t w_start = t0, w_acked = 0;
	int32_t fail_status[4] = {0};
	uint64_t fail_count[4] = {0};
	if (wh == NULL || wins == NULL) {
		fprintf(stderr, "sluice-bench: out of memory\n");
		return 1;
	}
	for (;;) {
		uint64_t now = sl_bench_now_ns();
		bool stop_sending = now >= t_end || (max_points && sent_pts >= max_points);
		if (stop_sending && inflight == 0)
			break;
		if (now >= t_end + 10000000000ull) {
			fprintf(stderr, "sluice-bench: %" PRIu64 " batches unacknowledged 10 s after the end\n",
				inflight);
			exit_rc = 1;
			break;
		}
		while (!stop_sending && inflight < max_inflight) {
			for (uint32_t k = 0; k < batch; k++) {
				pts[k].key = keys[next_series];
				pts[k].key_len = klen[next_series];
				pts[k].ts = (int64_t)ts++;
				pts[k].type = 1;
				double v = (double)k;
				memcpy(&pts[k].value, &v, 8);
				if (++next_series == series)
					next_series = 0;
			}
			rc = sluice_write(cl, pts, batch, &seq);
			if (rc == -EAGAIN)
				break;
			if (rc != 0) {
				fprintf(stderr, "sluice-bench: write: %s\n", strerror(-rc));
				return 1;
			}
			t_submit[seq & (tq_size - 1)] = sl_bench_now_ns();
			inflight++;
			sent_pts += batch;
		}
		struct sluice_ack acks[256];
		int got = sluice_poll_acks(cl, acks, 256);
		if (got < 0) {
			fprintf(stderr, "sluice-bench: node connection lost: %s\n", strerror(-got));
			return 1;
		}
		uint64_t t_ack = sl_bench_now_ns();
		while (t_ack >= w_start + 1000000000ull) {
			window_close(wins, &wins_len, (double)(w_start + 1000000000ull - t0) / 1e9,
				     w_acked, wh);
			w_start += 1000000000ull;
			w_acked = 0;
		}
		for (int k = 0; k < got; k++) {
			uint64_t lat = t_ack - t_submit[acks[k].batch_seq & (tq_size - 1)];
			sl_bench_hist_add(h, lat);
			sl_bench_hist_add(wh, lat);
			inflight--;
			if (acks[k].status == 0) {
				acked_pts += acks[k].count;
				w_acked += acks[k].count;
			} else {
				failed++;
				count_failure(fail_status, fail_count, acks[k].status);
			}
		}
		if (!quiet && !json && t_ack >= t_progress) {
			fprintf(stderr, "  %5.1f s  %10.0f points/s acked\n", (double)(t_ack - t0) / 1e9,
				(double)(acked_pts - last_acked));
			last_acked = acked_pts;
			t_progress += 1000000000ull;
		}
	}
	double secs = (double)(sl_bench_now_ns() - t0) / 1e9;
	double rate = (double)acked_pts / secs;
	if (json) {
		printf("{\"transport\":\"shm\",\"batch_points\":%u,\"series\":%u,\"inflight_batches\":%u,"
		       "\"seconds\":%.3f,\"points_acked\":%" PRIu64 ",\"batches_failed\":%" PRIu64
		       ",\"points_per_s\":%.0f,\"ack_latency_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
		       ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "},\"failed_by_status\":{",
		       batch, series, max_inflight, secs, acked_pts, failed, rate, sl_bench_hist_pct(h, 50),
		       sl_bench_hist_pct(h, 99), sl_bench_hist_pct(h, 99.9), h->max);
		for (int k = 0; k < 4 && fail_count[k] > 0; k++)
			printf("%s\"%s\":%" PRIu64, k ? "," : "", strerror(-fail_status[k]), fail_count[k]);
		printf("},\"windows\":[%s]}\n", wins);
	} else {
		printf("sluice-bench: shm ingest, %u points/batch, %u series, %u batches in flight\n",
		       batch, series, max_inflight);
		printf("  acknowledged  %" PRIu64 " points in %.2f s = %.0f points/s\n", acked_pts, secs,
		       rate);
		printf("  failed        %" PRIu64 " batches", failed);
		for (int k = 0; k < 4 && fail_count[k] > 0; k++)
			printf("%s%" PRIu64 " %s", k ? ", " : " (", fail_count[k], strerror(-fail_status[k]));
		printf("%s\n", failed ? ")" : "");
		printf("  ack latency   p50 %.1f us  p99 %.1f us  p999 %.1f us  max %.1f us\n",
		       sl_bench_hist_pct(h, 50) / 1e3, sl_bench_hist_pct(h, 99) / 1e3, sl_bench_hist_pct(h, 99.9) / 1e3,
		       h->max / 1e3);
	}
	sluice_close(cl);
	free(keys);
	free(klen);
	free(pts);
	free(t_submit);
	free(h);
	free(wh);
	free(wins);
	return failed ? 1 : exit_rc;
}
