/* node_limits.h - every fixed limit of the node core (node*.c) in one place: queue and pool
 * sizes, bursts, proposal shapes, the record sizes they are computed from. A limit that
 * depends on another is written as a formula of it, and each dependency is checked by a
 * _Static_assert here (or, for the config keys that bound them, at start: config.c). */
#ifndef SL_NODE_LIMITS_H
#define SL_NODE_LIMITS_H

#include <assert.h>

#include "batch.h"         /* SL_BATCH_POINT_MAX_BYTES, SL_BATCH_EMPTY_BYTES */
#include "config.h"        /* SL_CFG_MAX_WORKERS, SL_CFG_MAX_REGIONS, SL_CFG_SHM_SLOTS_MAX */
#include "ingest_format.h" /* SL_INGEST_SLOTS_MAX */
#include "pkt.h"           /* SL_PKT_ETH_HDR */
#include "wal.h"           /* SL_WAL_RECORD_BYTES, SL_WAL_HDR_BYTES */

/* ---- WAL record sizes (the node's record formats; the limits below count in them) */
#define ENTRY_HDR 25         /* entry record head: kind u8, region u32, term u64, index u64, type u32 */
#define HARDSTATE_BYTES 25   /* kind u8 (2), region u32, term u64, vote u32, commit u64 */
#define SESSION_REC_BYTES 25 /* kind u8 (3), session u64, seq u64, stored u32, count u32 */
/* WAL buffer bytes one record can take, at most: header, payload, rounding to 8, and the
 * gap left when a header would straddle a block (fewer than a header's bytes). Linear, so
 * PROP_CAP_FOR_WAL below is its exact inverse. */
#define WAL_REC_WORST(payload) ((uint64_t)(payload) + SL_WAL_HDR_BYTES + 7u + SL_WAL_HDR_BYTES)
_Static_assert(WAL_REC_WORST(1) >= SL_WAL_RECORD_BYTES(1) + SL_WAL_HDR_BYTES - 1,
	       "an upper bound of sl_wal's record size and block gap");

/* ---- cross-core routing */
/* Routed point (struct xpoint, 8-byte aligned) header; node_internal.h checks sizeof. */
#define XPOINT_HDR_BYTES 40u
/* The largest routed point: header, the longest key and string value, rounded to 8. */
#define XPOINT_MAX_BYTES ((XPOINT_HDR_BYTES + SL_KEY_MAX + SL_STR_MAX + 7u) & ~7u)
/* Encoded points per cross-core message: the largest point fits one message (route_point
 * never has to split one), with room for several small ones besides. */
#define XMSG_BYTES (72u << 10)
_Static_assert(XMSG_BYTES >= XPOINT_MAX_BYTES, "the largest point fits one message");
#define XMSG_ACKS 64   /* acks per cross-core message: 1 KiB, well inside XMSG_BYTES */
#define XMSG_POOL 1024 /* messages in the node's pool; running out is backpressure */
/* The smallest pool a test may configure ([debug] xmsg_pool). Fewer messages only slow
 * traffic down, they never wedge it: a message being filled is sent every round, a full
 * ring is drained by its consumer, acks without a message wait in their backlog, so
 * every message comes back. */
#define XMSG_POOL_MIN 2
_Static_assert(XMSG_POOL_MIN <= XMSG_POOL, "the default pool is at least the smallest");
#define XRING_SIZE 1024 /* per core pair; also the local queue of a core's own messages */
_Static_assert((XRING_SIZE & (XRING_SIZE - 1)) == 0, "rte_ring sizes are powers of two");
/* A core's messages in flight to one destination are at most a ring's worth plus the
 * one being filled: the pool must not be smaller than one destination's share. */
_Static_assert(XMSG_POOL >= XRING_SIZE, "one ring's worth of messages can be in flight");

/* ---- pending client batches (acks owed) */
#define PEND_MAX 16384 /* client batches in flight per worker (shm and session) */
/* Acks per destination core waiting for ring room: acks of one batch are merged while
 * they wait, so one entry per pending batch of the destination. */
#define ACK_BACKLOG PEND_MAX
/* Records decoded from one shm slot per poll; a burst is taken only with a pending handle
 * free for each record (any record may start a batch). */
#define INGEST_BURST 256
#define LOCALQ_SIZE 1024 /* in-process batches queued per worker (node_local.c) */
#define LOCAL_BURST 16   /* of them taken per round */
_Static_assert(INGEST_BURST <= PEND_MAX, "a burst's handles fit the pending table");
/* Pending-handle arrays per shm slot (slot_cur, slot_inflight) are indexed by the global
 * slot number: sized by the config's slot limit, which the ingest ring can hold. */
#define NODE_SHM_SLOTS SL_CFG_SHM_SLOTS_MAX
_Static_assert(NODE_SHM_SLOTS <= SL_INGEST_SLOTS_MAX, "the ingest ring holds every slot");
#define NO_ACK UINT32_MAX /* points that nobody waits for (line protocol) */
_Static_assert(PEND_MAX < UINT32_MAX, "NO_ACK is never a pending handle");

/* ---- proposals and the consensus ready */
#define PROP_SLOTS 8 /* proposals in flight per region (the protocol's max_inflight) */
#define PROP_RUNS 256 /* (core, batch) runs in one proposal: one per batch it carries */
#define PROP_BYTES (512u << 10) /* proposal buffer allocated per slot */
/* A forwarded batch's header: id u64 | life u64 | fseq u64 | low u64 | runs u16 | points
 * u32 per run (node.c, forwarding) */
#define FWD_HDR_BASE 35u
#define FWD_HDR_MAX (FWD_HDR_BASE + 4u * PROP_RUNS)
/* Answers a leader remembers per forwarder stream (by fseq). It proposes a forwarded fseq
 * only below the forwarder's lowest unanswered one plus this window, so every fseq the
 * forwarder may still send again is remembered (node.c). Slack over PROP_SLOTS lets
 * later batches flow while one answer is being fetched again. */
#define FWD_WINDOW (2u * PROP_SLOTS)
_Static_assert(FWD_WINDOW >= PROP_SLOTS, "a forwarder's batches in flight fit the window");
#define BALANCE_EVERY_NS 2000000000ull /* a region's leadership is looked at this often */
#define BALANCE_SETTLE_NS 3000000000ull /* and moved only after leading this long */
#define MOVE_TRY_NS 15000000000ull  /* a preferred leader ctld moved: handed over for this long */
#define MOVE_RETRY_NS 500000000ull  /* every this often (raft gives up after an election timeout) */
/* id u64 | status i32 | leader u32 | next u64 | runs u16, then u32 per run */
#define FWD_ACK_HDR 26u
/* No answer from the leader within the retry timeout (a lost frame, a leader gone): the
 * batch is forwarded again. The timeout follows the region's measured answer time, as
 * TCP's does (RFC 6298: srtt + 4 rttvar, sampled on batches sent once), between these
 * bounds, doubled at each retry of a batch up to the upper bound. */
#define FWD_TIMEOUT_NS 1000000000ull /* the upper bound, and the timeout before a sample */
#define FWD_RTO_MIN_NS 50000000ull   /* the lower bound */
#define FWD_BUSY_NS 10000000ull      /* the leader had no room: asked again after this */
#define NODE_READS 16 /* reads at level leader/durable waiting per region */
#define READ_WAIT_NS 2000000000ull /* then answered UNAVAILABLE: ask again */
#define FAB_HELD_MAX 1024 /* frames a link holds back under a test's delay (then dropped) */
#define FWD_GIVE_UP_NS 10000000000ull /* unanswered this long: the batch fails (-ETIMEDOUT) */
/* Entry size the node asks protocols to carry; the proposal is the smaller of this,
 * PROP_BYTES and what fits the WAL gate below (PROP_CAP_FOR_WAL). */
#define ENTRY_ASK_BYTES (240u << 10)
_Static_assert(ENTRY_ASK_BYTES <= PROP_BYTES, "an asked-for entry fits its buffer");
/* Multileader regions (consensus/multileader.h options the node sets): a batch carries up
 * to one asked-for entry's bytes (the protocol never takes less: one entry always fits a
 * batch), and one ready logs at most ML_UNDURABLE entries within the protocol's log buffer
 * of 4 batches: that bounds the WAL room the driver stage asks for before running it. */
#define ML_UNDURABLE 256u
#define ML_BATCH_BYTES ENTRY_ASK_BYTES
#define ML_READY_WAL_WORST                                                                     \
	(4u * (uint64_t)ML_BATCH_BYTES + ML_UNDURABLE * WAL_REC_WORST(ENTRY_HDR + 37u) +          \
	 WAL_REC_WORST(HARDSTATE_BYTES))
/* Entries one consensus ready can hand to storage: the host proposes only when the
 * protocol has no ready waiting (one proposal), plus the leader's no-op of a new term.
 * The node proposes nothing else (no membership changes) and has no peers yet. */
#define READY_ENTRIES_MAX 2
/* WAL bytes one ready can append at most: its entries and a hard state. The driver
 * stage runs a region's ready only when the WAL has that much room (never waits). */
#define WAL_READY_WORST(prop_cap)                                                             \
	(READY_ENTRIES_MAX * WAL_REC_WORST(ENTRY_HDR + (uint64_t)(prop_cap)) +                  \
	 WAL_REC_WORST(HARDSTATE_BYTES))
/* The largest proposal whose worst ready fits a WAL buffer of `buf` bytes. */
#define PROP_CAP_FOR_WAL(buf)                                                                 \
	(((uint64_t)(buf) - WAL_REC_WORST(HARDSTATE_BYTES)) / READY_ENTRIES_MAX -               \
	 (SL_WAL_HDR_BYTES + 7u + SL_WAL_HDR_BYTES) - ENTRY_HDR)
/* A proposal must hold at least the largest single point: the smallest WAL buffer the
 * node runs with ([wal] buffer_kb is checked against it at start). */
#define PROP_MIN_BYTES (SL_BATCH_EMPTY_BYTES + SL_BATCH_POINT_MAX_BYTES)
#define NODE_WAL_BUFFER_MIN_BYTES WAL_READY_WORST(PROP_MIN_BYTES)
_Static_assert(PROP_MIN_BYTES <= ENTRY_ASK_BYTES, "the largest point fits an asked entry");
_Static_assert(PROP_CAP_FOR_WAL(NODE_WAL_BUFFER_MIN_BYTES) >= PROP_MIN_BYTES,
	       "the two formulas agree: the smallest buffer takes the smallest proposal");
_Static_assert((uint64_t)SL_CFG_MAX_REGIONS * WAL_REC_WORST(HARDSTATE_BYTES) <=
		       NODE_WAL_BUFFER_MIN_BYTES,
	       "a checkpoint's hard states (one per region) fit the smallest WAL buffer");
/* Readies of one region run per round at most (each gated on WAL room). */
#define DRV_READIES_PER_ROUND 64

/* ---- the WAL binding */
/* WAL entry records not yet applied, per worker: every region of the core can have all
 * its proposals and a no-op logged and not yet applied. The driver stage also checks
 * room for one ready before running it, so a full queue is "not taken", never a crash. */
#define LSNQ_SIZE 65536
_Static_assert(LSNQ_SIZE >= SL_CFG_MAX_REGIONS * (PROP_SLOTS + READY_ENTRIES_MAX),
	       "every region's unapplied entries fit the LSN queue");

/* ---- sessions */
#define SESS_CAPACITY 4096 /* sessions per worker */
/* Session batches waiting for their session record to be logged or made durable; a full
 * queue answers BUSY (the client retries). Every pending batch can be queued at once. */
#define SESSQ_SIZE PEND_MAX

/* ---- network door */
#define RX_BURST 32            /* frames per rte_eth_rx_burst and per hand-over dequeue */
#define NET_UDP_PAYLOAD_MAX 1472 /* UDP payload of a 1500-byte IPv4 frame */
#define NETQ_SIZE 1024 /* frames other workers handed to this one, waiting */
_Static_assert((NETQ_SIZE & (NETQ_SIZE - 1)) == 0, "rte_ring sizes are powers of two");
_Static_assert(NETQ_SIZE >= RX_BURST * 2, "a hand-over ring holds a few bursts");
#define FRAG_FLAT_BYTES (SL_PKT_ETH_HDR + 65535) /* a reassembled datagram, contiguous */

/* ---- the rest of the loop */
#define OUTBOX_SIZE 256 /* read requests/results waiting for ring room */
#define CTLQ_SIZE 16    /* ctl requests waiting for their worker (one per ctl client) */
#define SESS_EXPIRE_PERIOD_NS 100000000ull /* idle sessions are looked for every 100 ms */
#define SESS_EXPIRE_BATCH 64               /* sessions expired per look, at most */
/* How often housekeeping samples the worker thread's involuntary context switches, the
 * baseline stall_preempted compares with on a stall round (one getrusage per period). */
#define STALL_SAMPLE_NS 10000000ull

/* Round lengths the stall histogram counts (stall_1ms, _10ms, _100ms), in microseconds. */
#define STALL_US_1 1000u
#define STALL_US_2 10000u
#define STALL_US_3 100000u

/* ---- index widths the structs use */
_Static_assert(SL_CFG_MAX_REGIONS <= 65536, "struct xpoint carries the region in 16 bits");
_Static_assert(SL_CFG_MAX_WORKERS <= 65536, "struct xmsg carries the source core in 16 bits");
_Static_assert(PROP_SLOTS <= 32, "proposal ids carry the slot in the low bits");

/* ---- the log window a region keeps for peers */
/* Payload bytes of applied entries a region keeps readable (oldest dropped first), so a
 * peer a little behind is sent entries, not a whole snapshot: [regions] log_keep_mb,
 * default 1 MiB, at most RLOG_KEEP_MB_MAX per region. */
#define RLOG_KEEP_MB_MAX 1024u
/* How long after a replica last asked for an image ([regions] log_keep_peer_mb holds
 * then): the build, the transfer in chunks and the install of a large image, then the
 * catch-up by log from its index. */
#define PEER_PIN_NS (60ull * 1000000000ull)

#endif
