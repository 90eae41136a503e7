/* stats.h - the node's shared-memory stats segment: per-core counters and an ack-latency
 * histogram, written without locks by the owning core under a per-core seqlock and read
 * as consistent per-core snapshots from other processes (sluicectl top, perf tools). */
#ifndef SL_STATS_H
#define SL_STATS_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_assert.h"

/* The one list of counters: add a line here and it appears in the segment, in the
 * names table and in every reader built from this header. */
#define SL_STATS_COUNTERS(X)                                                                       \
	X(points_in)                                                                               \
	X(points_applied)                                                                          \
	X(points_rejected)                                                                         \
	X(rejected_type_conflict)                                                                  \
	X(batches_in)                                                                              \
	X(acks_sent)                                                                               \
	X(ack_errors)                                                                              \
	X(cross_core_out)                                                                          \
	X(cross_core_in)                                                                           \
	X(ring_full)                                                                               \
	X(acks_merged)                                                                             \
	X(wal_appends)                                                                             \
	X(wal_bytes)                                                                               \
	X(wal_flushes)                                                                             \
	X(wal_fsyncs)                                                                              \
	X(wal_errors)                                                                              \
	X(snapshots_failed)                                                                        \
	X(snapshots_full)                                                                          \
	X(snapshots_delta)                                                                         \
	X(snapshot_bytes_written)                                                                  \
	X(polls_busy)                                                                              \
	X(polls_idle)                                                                              \
	X(idle_sleeps)                                                                             \
	X(client_connects)                                                                         \
	X(bad_records) \
	X(shm_bad_framing) \
	X(shm_bad_key) \
	X(shm_bad_type) \
	X(shm_bad_value) \
	X(shm_batches_abandoned) \
	X(pkts_rx) \
	X(pkts_tx) \
	X(pkts_tx_failed) \
	X(tx_queue_full) \
	X(pkts_dropped) \
	X(pkts_multiseg) \
	X(arp_replies) \
	X(icmp_replies) \
	X(udp_no_listener) \
	X(lp_lines) \
	X(lp_lines_bad) \
	X(lp_points) \
	X(drop_truncated) \
	X(drop_vlan) \
	X(drop_bad_ethertype) \
	X(drop_bad_arp) \
	X(drop_bad_ip_version) \
	X(drop_bad_ihl) \
	X(drop_bad_ip_len) \
	X(drop_bad_ip_csum) \
	X(drop_bad_ttl) \
	X(drop_bad_src_ip) \
	X(drop_fragment) \
	X(drop_not_for_us) \
	X(drop_bad_udp_len) \
	X(drop_bad_udp_csum) \
	X(drop_bad_icmp) \
	X(drop_icmp_not_echo) \
	X(drop_unsupported_proto) \
	X(drop_bad_fragment) \
	X(drop_fragment_oversize) \
	X(frag_rx) \
	X(frag_reassembled) \
	X(frag_expired) \
	X(frag_table_full) \
	X(frag_bad) \
	X(frag_handoffs) \
	X(sess_handoffs) \
	X(handoff_full) \
	X(lp_syntax_measurement) \
	X(lp_syntax_tag) \
	X(lp_syntax_field) \
	X(lp_bad_number) \
	X(lp_out_of_range) \
	X(lp_bad_bool) \
	X(lp_bad_string) \
	X(lp_string_too_long) \
	X(lp_bad_timestamp) \
	X(lp_ts_out_of_range) \
	X(lp_too_many_fields) \
	X(lp_key_too_long) \
	X(lp_line_too_long) \
	X(lp_invalid_utf8) \
	X(lp_duplicate_tag) \
	X(lp_key_nul) \
	X(lp_no_fields) \
	X(lp_scratch) \
	X(sess_msgs) \
	X(sess_bad) \
	X(sess_opens) \
	X(sess_routes) \
	X(sess_batches) \
	X(sess_points) \
	X(sess_acks) \
	X(sess_duplicates) \
	X(sess_in_flight) \
	X(sess_out_of_order) \
	X(sess_too_far_ahead) \
	X(sess_unknown) \
	X(sess_busy) \
	X(sess_reads) \
	X(sess_held) \
	X(sess_truncated) \
	X(sess_bad_magic) \
	X(sess_bad_version) \
	X(sess_oversize) \
	X(sess_bad_length) \
	X(sess_bad_crc) \
	X(sess_wrong_cluster) \
	X(sess_bad_type) \
	X(sess_bad_flags) \
	X(sess_bad_field) \
	X(sess_too_many_points) \
	X(sess_bad_count) \
	X(sess_bad_key) \
	X(sess_bad_utf8) \
	X(sess_bad_point) \
	X(cons_msgs_unsent) \
	X(cons_snapshots_refused) \
	X(route_no_room) \
	X(net_parked) \
	X(wal_gate_waits) \
	X(wal_gate_misses) \
	X(stall_1ms) \
	X(stall_10ms) \
	X(stall_100ms) \
	X(cons_snapshots_installed) \
	X(stall_in_ctl) \
	X(stall_in_ingress) \
	X(stall_in_route) \
	X(stall_in_wal_completions) \
	X(stall_in_driver) \
	X(stall_in_wal) \
	X(stall_in_egress) \
	X(stall_in_housekeeping) \
	X(stall_preempted) \
	X(fab_frames_tx) \
	X(fab_frames_rx) \
	X(fab_msgs_tx) \
	X(fab_msgs_rx) \
	X(fab_msgs_unsent) \
	X(fab_msgs_refused) \
	X(fab_no_mbuf) \
	X(fab_tx_full) \
	X(fab_seq_gaps) \
	X(fab_frag_lost) \
	X(fab_drop_not_fabric) \
	X(fab_drop_short) \
	X(fab_drop_magic) \
	X(fab_drop_version) \
	X(fab_drop_length) \
	X(fab_drop_crc) \
	X(fab_drop_cluster) \
	X(fab_drop_dest) \
	X(fab_drop_epoch) \
	X(fab_drop_records) \
	X(fab_drop_region) \
	X(fab_fault_dropped) \
	X(fab_fault_delayed) \
	X(fab_drop_eth) \
	X(fab_drop_ip_hdr) \
	X(fab_drop_ip_frag) \
	X(fab_drop_not_for_us) \
	X(fab_drop_proto) \
	X(fab_drop_udp) \
	X(fab_drop_udp_port) \
	X(fab_drop_arp) \
	X(fab_drop_ip_src) \
	X(fab_drop_handoff) \
	X(fab_handoffs) \
	X(fab_arp_requests) \
	X(fab_arp_replies) \
	X(fab_arp_learned) \
	X(fab_echo_replies) \
	X(fwd_out) \
	X(fwd_in) \
	X(fwd_answers) \
	X(fwd_retries) \
	X(fwd_failed) \
	X(fwd_not_leader) \
	X(fwd_busy) \
	X(fwd_bad) \
	X(fwd_dup_answered) \
	X(fwd_dup_in_progress) \
	X(fwd_dup_forgotten) \
	X(fwd_out_of_order) \
	X(fwd_streams_started) \
	X(fwd_resends) \
	X(reads_linearizable) \
	X(reads_forwarded) \
	X(reads_unavailable) \
	X(leader_transfers) \
	X(snapshot_exports) \
	X(snapshot_exports_failed) \
	X(ml_entries_remote) \
	X(ml_entries_refused) \
	X(reads_cad) \
	X(reads_sync) \
	X(checkpoints_for_peers) \
	X(seals_proposed) \
	X(proposals_sealed) \
	X(protocol_switches) \
	X(protocol_switch_failed) \
	X(switch_stale_msgs) \
	X(replicas_joined) \
	X(replicas_left) \
	X(region_splits) \
	X(region_split_failed) \
	X(region_merges) \
	X(region_merge_failed) \
	X(core_moves) \
	X(core_redirects) \
	X(route_stale) \
	X(fwd_rerouted) \
	X(points_rerouted) \
	X(reroute_failed) \
	X(learners_joined) \
	X(log_kept_for_peers) \
	X(ml_joiners_caught_up) \
	X(local_batches) \
	X(exc_to_kernel) \
	X(exc_from_kernel) \
	X(exc_dropped)

enum sl_stat {
#define SL_STATS_ENUM_(name) SL_STAT_##name,
	SL_STATS_COUNTERS(SL_STATS_ENUM_)
#undef SL_STATS_ENUM_
	    SL_STATS_N_COUNTERS
};

/* Bucket 0 holds 0 ns; bucket i (1..63) holds [2^(i-1), 2^i) ns; bucket 63 also holds
 * everything above. */
#define SL_STATS_HIST_BUCKETS 64
#define SL_STATS_NAME_MAX 32 /* bytes per entry of the names table, NUL included */
#define SL_STATS_CORES_MAX 1024

/* One core's block in the segment. Cache-line aligned so cores never share a line. All
 * fields are atomics accessed relaxed: the seqlock gives the ordering, the atomics only
 * make the cross-process reads well defined. */
struct sl_stats_core {
	_Alignas(64) _Atomic uint64_t seq; /* odd while the owner is updating */
	_Atomic uint64_t counters[SL_STATS_N_COUNTERS];
	_Atomic uint64_t ack_latency_sum_ns;
	_Atomic uint64_t ack_latency_hist[SL_STATS_HIST_BUCKETS];
};

struct sl_stats_snapshot {
	uint64_t seq; /* even: the version this snapshot was taken at */
	uint64_t counters[SL_STATS_N_COUNTERS];
	uint64_t ack_latency_sum_ns;
	uint64_t ack_latency_hist[SL_STATS_HIST_BUCKETS];
};

struct sl_stats_writer;
struct sl_stats_reader;

/* Writer side (the node). The segment is built under a temporary name and renamed over
 * `path`, so a reader never sees a half-written header and a reader still mapping the
 * previous node's file keeps a valid mapping. Mode 0640. */
int sl_stats_create(const char *path, uint32_t n_cores, struct sl_stats_writer **out);
struct sl_stats_core *sl_stats_core(struct sl_stats_writer *w, uint32_t core);
void sl_stats_destroy(struct sl_stats_writer *w, bool unlink_file);

/* Reader side. -ENOENT no segment, -EPROTO bad magic, version or sizes. */
int sl_stats_open(const char *path, struct sl_stats_reader **out);
uint32_t sl_stats_n_cores(const struct sl_stats_reader *r);
int32_t sl_stats_node_pid(const struct sl_stats_reader *r);
uint64_t sl_stats_start_time_ns(const struct sl_stats_reader *r); /* CLOCK_REALTIME */
/* Name of counter `i` as stored in the segment ("" when out of range). */
const char *sl_stats_segment_counter_name(const struct sl_stats_reader *r, uint32_t i);
/* Consistent snapshot of one core; retries a bounded number of times while the owner is
 * mid-update, then -EAGAIN. -EINVAL for a bad core. */
int sl_stats_read_core(const struct sl_stats_reader *r, uint32_t core,
		       struct sl_stats_snapshot *out);
/* For sums and totals: a consistent snapshot when sl_stats_read_core gets one (0), else
 * each counter as it was at some moment of the read (1: each is exact and never goes
 * back, but they may not agree with each other). A core was left out of the ctl `stats`
 * totals before when its worker kept publishing through the reader's retries: the
 * totals then went back by a whole core's counts. -EINVAL for a bad core. */
int sl_stats_read_core_sum(const struct sl_stats_reader *r, uint32_t core,
			   struct sl_stats_snapshot *out);
void sl_stats_close(struct sl_stats_reader *r);

const char *sl_stats_counter_name(enum sl_stat id);

/* Owner-core update helpers: every update sits between sl_stats_begin() and
 * sl_stats_end(), so one begin/end pair per poll iteration covers many updates. */
static inline void sl_stats_begin(struct sl_stats_core *c)
{
	uint64_t s = atomic_load_explicit(&c->seq, memory_order_relaxed);
	SL_ASSERT((s & 1) == 0);
	atomic_store_explicit(&c->seq, s + 1, memory_order_relaxed);
	/* Orders the odd seq before the data stores that follow. */
	atomic_thread_fence(memory_order_release);
}

static inline void sl_stats_end(struct sl_stats_core *c)
{
	uint64_t s = atomic_load_explicit(&c->seq, memory_order_relaxed);
	SL_ASSERT((s & 1) == 1);
	atomic_store_explicit(&c->seq, s + 1, memory_order_release);
}

/* Single writer: a load and a store, no locked read-modify-write. */
static inline void sl_stats_bump_(_Atomic uint64_t *p, uint64_t n)
{
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void sl_stats_add(struct sl_stats_core *c, enum sl_stat id, uint64_t n)
{
	sl_stats_bump_(&c->counters[id], n);
}

static inline void sl_stats_inc(struct sl_stats_core *c, enum sl_stat id)
{
	sl_stats_bump_(&c->counters[id], 1);
}

static inline unsigned sl_stats_hist_bucket(uint64_t value_ns)
{
	if (value_ns == 0)
		return 0;
	unsigned b = 64u - (unsigned)__builtin_clzll(value_ns);
	return b < SL_STATS_HIST_BUCKETS ? b : SL_STATS_HIST_BUCKETS - 1;
}

static inline void sl_stats_ack_latency(struct sl_stats_core *c, uint64_t latency_ns)
{
	sl_stats_bump_(&c->ack_latency_hist[sl_stats_hist_bucket(latency_ns)], 1);
	sl_stats_bump_(&c->ack_latency_sum_ns, latency_ns);
}

/* Module-internal (stats.c, ingest.c): a shared-memory file built under a temporary name
 * next to its final path and renamed over it once initialised. Replacing by rename, not
 * O_TRUNC, means a process still mapping the previous file keeps valid memory (truncation
 * would SIGBUS it) and sees a different inode. */
struct sl_shm_file {
	int fd;
	void *base;
	size_t size;
	char path[PATH_MAX];
	char tmp_path[PATH_MAX];
	bool published;
};
/* The creator holds flock(LOCK_EX) on its segment for as long as it lives, so a live
 * segment is told from a crashed run's leftover: publish never replaces a live one. */
int sl_shm_file_create(const char *path, size_t size, mode_t mode, struct sl_shm_file *f);
/* Renames the new file over path; -EBUSY if a live process holds the file there. */
int sl_shm_file_publish(struct sl_shm_file *f);
/* 0 if path is absent or a dead process's leftover, -EBUSY if a live process holds it
 * (*pid: the node pid in its header, 0 if unknown), else a negative errno. */
int sl_shm_file_probe(const char *path, int32_t *pid);
/* Unlinks the path only if it is still this file, never a successor's. */
void sl_shm_file_close(struct sl_shm_file *f, bool unlink_file);

#endif
