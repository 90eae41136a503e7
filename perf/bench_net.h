/* bench_net.h - sluice-bench's pieces shared by its transports: the latency histogram,
 * the clock, the series keys, and the network load generator (memif/tap through its own
 * DPDK EAL; kernel UDP and HTTP for peer comparisons such as perf/influxdb_compare.sh). */
#ifndef SL_BENCH_NET_H
#define SL_BENCH_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Log-linear histogram: 64 power-of-two ranges x 16 linear sub-buckets, ~6% precision. */
#define SL_BENCH_HIST_SUB 16
struct sl_bench_hist {
	uint64_t b[64 * SL_BENCH_HIST_SUB];
	uint64_t n, max;
};
void sl_bench_hist_add(struct sl_bench_hist *h, uint64_t v);
/* Value at percentile p (0..100], the bucket middle capped at the maximum seen. */
uint64_t sl_bench_hist_pct(const struct sl_bench_hist *h, double p);

uint64_t sl_bench_now_ns(void); /* CLOCK_MONOTONIC */

/* --transport disk: write+fdatasync latency of the disk under dir (bench_disk.c); 0, 1 on
 * an I/O error, 2 on a bad option. Bounded by duration_s and max_ops (0: no limit). */
int sl_bench_disk(const char *dir, uint32_t write_bytes, double duration_s, uint64_t max_ops,
		  bool json);

/* Series key number s, "bench,host=h000042 value", as every transport writes it. */
int sl_bench_key(char *buf, size_t cap, uint32_t s);

enum sl_bench_transport {
	SL_BENCH_SHM = 0, /* libsluice ingest ring (sluice_bench.c) */
	SL_BENCH_MEMIF,	  /* DPDK net_memif client to a node that is the memif server */
	SL_BENCH_NIC,	  /* a real NIC, only the one the operator names with --pci */
	SL_BENCH_TAP,	  /* DPDK net_tap: the operator connects the tap to the node */
	SL_BENCH_UDP,	  /* kernel UDP socket (line protocol only): peer comparisons */
	SL_BENCH_HTTP,	  /* kernel TCP, InfluxDB /write (line protocol only) */
};

enum sl_bench_protocol { SL_BENCH_LINE = 0, SL_BENCH_SESSION };

struct sl_bench_net_opts {
	enum sl_bench_transport transport;
	enum sl_bench_protocol protocol;
	const char *socket_path; /* memif control socket */
	const char *iface;	 /* tap interface name */
	const char *pci;	 /* a NIC the operator names (--transport nic) */
	const char *dest;	 /* udp/http: HOST:PORT */
	const char *db;		 /* http: database */
	const char *ctl_path;	 /* node ctl socket for applied counters, NULL = none */
	int cpu;		 /* lcore's CPU, -1 = first allowed */
	uint32_t node_ip;	 /* host order */
	uint32_t ip;
	uint16_t line_port;
	uint16_t session_port;
	uint32_t cluster_id;
	uint32_t mtu;		   /* IP MTU: frames stay single-segment */
	uint32_t points_per_packet; /* datagram or batch (http: request) */
	uint32_t sessions;	   /* session protocol: sessions; line/udp: source ports;
				    * http: connections */
	uint32_t series;
	uint32_t window;	   /* unacked batches per session (closed loop) */
	uint8_t level;		   /* ack level of session batches */
	uint64_t rate_pps;	   /* open loop target points/s; 0 = closed loop */
	uint64_t max_points;	   /* 0 = no limit */
	uint64_t rto_ns;
	double duration_s;
	bool json;
	bool quiet;
};

/* Runs one measurement and prints its report. Returns the process exit code. */
int sl_bench_net_run(const struct sl_bench_net_opts *o);

#endif
