/* sim.h - shared pieces of the deterministic consensus simulator (sluice-sim): the seeded
 * random source, the simulated disk of one replica (a write-ahead log of checksummed
 * records, fsync, crash with torn tail, recovery), the linearizability checker and the
 * seed loops' command line and summary helpers. */
#ifndef SL_SIM_H
#define SL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "consensus.h"

#define SIM_KEYS 4u	    /* registers per group: few, so clients contend */
#define SIM_MAX_PAYLOAD 64u /* a client command or a membership entry */
#define SIM_SNAP_KV (8u * SIM_KEYS) /* a snapshot: the registers */
/* --disk-loss pads snapshots past one raft message (chunked transfer); the pad is a
 * function of the registers, checked on install */
#define SIM_SNAP_PAD 1536u
#define SIM_SNAP_BYTES (SIM_SNAP_KV + SIM_SNAP_PAD)
#define SIM_NO_RET UINT64_MAX

/* ---- seeded randomness: the only source of nondeterminism in a run ---- */
struct sim_rng {
	uint64_t s;
};

static inline uint64_t sim_rand(struct sim_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t sim_below(struct sim_rng *r, uint64_t n) { return n ? sim_rand(r) % n : 0; }

static inline uint64_t sim_range(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + sim_below(r, hi - lo + 1);
}

/* true with probability ppm / 1e6 */
static inline bool sim_chance(struct sim_rng *r, uint32_t ppm)
{
	return sim_below(r, 1000000) < ppm;
}

/* A node's clock at simulated time `now`: its offset, then its drift in parts per million
 * (one second added so that no clock starts at 0). */
static inline uint64_t sim_local_ns(uint64_t now, uint64_t off_ns, int64_t drift_ppm)
{
	int64_t drift = (int64_t)(now / 1000) * drift_ppm / 1000;
	return now + off_ns + (uint64_t)(drift + (int64_t)1000000000);
}

static inline uint64_t sim_hash(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;
	h ^= 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* ---- simulated disk (sim_disk.c) ---- */
struct sim_entry {
	uint64_t term;
	uint32_t type;
	uint32_t len;
	uint8_t data[SIM_MAX_PAYLOAD];
};

/* What the replica's log read side sees (the page cache), and the WAL bytes behind it:
 * wal[0, synced) survives a crash, wal[synced, len) survives only in part. */
struct sim_disk {
	struct sl_cons_hard_state hs;
	uint64_t snap_index, snap_term;
	struct sl_cons_conf snap_conf;
	uint8_t snap_data[SIM_SNAP_BYTES];
	uint32_t snap_len;
	struct sim_entry *ents; /* ents[i] has index snap_index + 1 + i */
	uint64_t n_ents, cap_ents;
	uint8_t *wal;
	size_t wal_len, wal_cap, synced;
	struct sl_cons_log log;
};

void sim_disk_init(struct sim_disk *d);
void sim_disk_free(struct sim_disk *d);
uint64_t sim_disk_last(const struct sim_disk *d);
void sim_disk_write_hs(struct sim_disk *d, const struct sl_cons_hard_state *hs);
void sim_disk_write_entries(struct sim_disk *d, const struct sl_cons_entry *e, uint32_t n);
/* install (drops the whole log) or compaction (keeps the entries after the snapshot) */
void sim_disk_write_snapshot(struct sim_disk *d, const struct sl_cons_snapshot *s, bool install);
/* Crash: keep the synced prefix plus `extra` unsynced bytes (possibly cutting a record:
 * a torn write), garbling the cut record when `garble`; then recover from the bytes.
 * Returns the number of bytes recovery discarded as a torn or corrupt tail. */
size_t sim_disk_crash(struct sim_disk *d, size_t extra, bool garble);
/* A crash as the fault schedules draw it: 4 in 10 lose every unsynced byte, 3 in 10 keep
 * them all, the rest keep a random part; 3 in 10 garble the cut. Returns what
 * sim_disk_crash does; *lost says whether unsynced bytes were lost. */
size_t sim_disk_crash_drawn(struct sim_disk *d, struct sim_rng *r, bool *lost);
/* Rewrite a fully synced WAL as snapshot + entries + hard state (like a rename). */
void sim_disk_rewrite(struct sim_disk *d);

/* ---- linearizability (sim_lin.c) ---- */
struct lin_op {
	uint64_t call, ret; /* ret == SIM_NO_RET: no response (may or may not have happened) */
	bool write;
	uint64_t value;
};

enum lin_result { LIN_OK = 0, LIN_VIOLATION = 1, LIN_UNKNOWN = 2 };

/* Wing & Gong search with Lowe's memoization of (linearized set, register value) for one
 * register whose initial value is 0. `budget` bounds the search steps. */
enum lin_result lin_check_register(const struct lin_op *ops, uint32_t n, uint64_t budget,
				   uint64_t *steps);

/* ---- the event queue of the discrete-event loops (sim_run.c), for sim.c and sim_vlog.c:
 * a binary heap ordered by time, then by the order events were pushed, so a seed replays
 * in exactly one order ---- */
struct sim_event {
	uint64_t t, seq;
	uint32_t type, node, group, client; /* what each loop makes of them */
	uint64_t a;
	void *p;
};

struct sim_queue {
	struct sim_event *v;
	size_t len, cap;
	uint64_t seq;
};

/* e.seq is set here. */
void sim_queue_push(struct sim_queue *q, struct sim_event e);
struct sim_event sim_queue_pop(struct sim_queue *q); /* q->len > 0 */

/* ---- the seed loops' command line and summary (sim_run.c), for sim.c, sim_ml.c and
 * sim_vlog.c ---- */
struct sim_seed_args {
	uint64_t first, count, single; /* --first, --seeds, --seed */
	bool have_single;
};

/* True when argv[*i] is --seed N, --seeds COUNT or --first N with its value (then *i is
 * moved onto the value); false leaves *i and *a alone for the caller's other options. */
bool sim_seed_arg(int argc, char **argv, int *i, struct sim_seed_args *a);
/* Runs run(ctx, seed) for every seed listed in `path` (one a line, # comments), until one
 * fails unless keep_going; returns the OR of their results, 2 when the file cannot be
 * opened (said on stderr). */
int sim_seed_file(const char *path, bool keep_going, int (*run)(void *ctx, uint64_t seed),
		  void *ctx);
/* SLUICE_SIM_SEEDS, when set and not empty, overrides *count. */
void sim_seed_count_env(uint64_t *count);
/* Seconds of CLOCK_MONOTONIC since *t0. */
double sim_wall_since(const struct timespec *t0);
/* "title:" then one "  name count" line each, names padded to width. */
void sim_print_counts(const char *title, const char *const *names, const uint64_t *counts,
		      int n, int width);

#endif
