/* node_internal.h - what the node's files (node.c, node_net.c, node_recover.c,
 * node_ctl.c) share: the per-worker, per-region and node state and the functions one of
 * them calls in another (prefix nd_). Not a public header: node.h is. */
#ifndef SL_NODE_INTERNAL_H
#define SL_NODE_INTERNAL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_spinlock.h>

#include "arena.h"
#include "batch.h"
#include "consensus.h"
#include "frag.h"
#include "ingest.h"
#include "lineproto.h"
#include "local_ingest.h"
#include "log.h"
#include "pkt.h"
#include "driver.h"
#include "multileader.h"
#include "fabric.h"
#include "fabric_udp.h"
#include "rlog.h"
#include "session.h"
#include "port.h"
#include "node.h"
#include "node_limits.h"
#include "sl_assert.h"
#include "sl_le.h"
#include "stats.h"
#include "store.h"
#include "wal.h"

#define WAL_REC_ENTRY 1
#define WAL_REC_HARDSTATE 2
#define WAL_REC_SESSION 3

enum { XMSG_POINTS = 1, XMSG_ACK = 2, XMSG_READ = 3, XMSG_READ_RESULT = 4 };

/* Where a reply to a network request goes: the port it came in on, the peer's addresses. */
struct reply_addr {
	uint16_t port;
	uint16_t udp_port;
	uint32_t ip;
	uint8_t mac[6];
};

/* A session READ travelling to the region's core, and its result frame back. */
struct read_req {
	uint64_t request_id;
	int64_t from, to;
	uint32_t max;
	uint16_t key_len;
	uint8_t level;
	char key[SL_KEY_MAX];
	struct reply_addr ra;
};

/* A routed point inside a message: this header, then the key, then the string value;
 * 8-byte aligned. Host byte order: it never leaves the process. */
struct xpoint {
	uint64_t series_id;
	int64_t ts;
	uint64_t value;
	uint32_t handle; /* pending batch on the source core, or NO_ACK */
	uint32_t str_len;
	uint16_t region;
	uint16_t key_len;
	uint8_t type;
	uint8_t level; /* the client's ack level (session: 0-2; shm and line protocol: 1) */
};

_Static_assert(sizeof(struct xpoint) == XPOINT_HDR_BYTES, "node_limits.h counts in this size");

static inline size_t xpoint_size(const struct sl_point *p)
{
	size_t n = sizeof(struct xpoint) + p->key_len + (p->type == SL_VAL_STR ? p->str_len : 0);
	return (n + 7u) & ~(size_t)7u;
}

struct xack {
	uint32_t handle;
	uint32_t n_points;
	uint32_t n_stored;
	int32_t status;
};

struct xmsg {
	uint16_t kind;
	uint16_t src;
	uint32_t n;    /* points or acks */
	uint32_t pos;  /* points consumed so far (a region may have had no room) */
	uint32_t off;  /* byte offset of the next point to consume */
	uint32_t used; /* bytes of encoded points, or of a READ_RESULT frame */
	struct read_req rq; /* XMSG_READ, XMSG_READ_RESULT */
	union {
		_Alignas(8) uint8_t buf[XMSG_BYTES];
		struct xack acks[XMSG_ACKS];
	};
};

struct prop_run {
	uint16_t src;
	uint32_t handle;
	uint32_t n_points;
	uint32_t n_stored;
};

struct proposal {
	bool in_use;
	bool proposed;
	uint64_t ack_wait; /* committed at this index: ack once it is applied */
	uint8_t *buf;
	struct sl_batch b;
	uint32_t n_points;
	uint32_t n_runs;
	uint8_t level; /* the highest ack level its points' clients asked for */
	bool sealed_seen; /* refused by a sealed segment once (counted once) */
	struct prop_run runs[PROP_RUNS];
	/* forwarding (node_fabric.c): out = this batch went to the region's leader on
	 * another node, which answers with FWD_ACK; in = a batch another node forwarded
	 * here, answered to fwd_node instead of acked to a core */
	bool fwd_out, fwd_in;
	uint16_t fwd_node;
	uint32_t fwd_len;
	uint64_t fwd_id;
	uint64_t fwd_deadline_ns;
	uint64_t fwd_give_up_ns;
	uint64_t fwd_sent_ns; /* its first send (out), for the retry timeout's samples */
	uint64_t fwd_rto_at_ns; /* out: the last send times out then (0: answered "again") */
	uint32_t fwd_tries;	/* out: sends so far */
	uint32_t fwd_backoff;	/* out: timeouts so far (the timeout doubles per one) */
	/* its place in the forwarder's stream (out: assigned once, kept over retries; in:
	 * the stream's life and fseq, to remember the answer) */
	uint64_t fwd_fseq;
	uint64_t fwd_life;
};

/* What a region's leader (or home) remembers of one forwarder's stream (node.c,
 * forwarding): the forwarder's life, the next fseq to propose, the highest `low` it
 * said, and the answers of recent fseqs. Allocated with the region, never on the path. */
struct fwd_memo {
	uint64_t fseq; /* 0: empty */
	bool done;     /* answered (else proposed, in progress) */
	int32_t status;
	uint32_t runs;
	uint32_t stored[PROP_RUNS];
};
struct fwd_stream {
	uint64_t life; /* 0: none yet */
	uint64_t next;
	uint64_t low;
	struct fwd_memo memo[FWD_WINDOW]; /* fseq % FWD_WINDOW */
};

/* A read at level leader or durable waiting on the region's core (node_net.c): for the
 * protocol's read index (then for the store to apply it), or for the leader's answer. */
enum nd_read_kind {
	RD_FREE = 0,
	RD_LOCAL,  /* a client's READ on this node: x becomes its result */
	RD_REMOTE, /* a READ another node forwarded: answered to it over the fabric */
	RD_FWD,    /* a client's READ on this node forwarded to the leader: x waits */
};
struct nd_read {
	uint8_t kind;	 /* enum nd_read_kind */
	bool indexed;	 /* the protocol gave the index to wait for */
	uint16_t origin; /* RD_REMOTE: the node to answer */
	uint64_t id;	 /* read id: (sequence << 8) | slot */
	uint64_t origin_id;
	uint64_t index;
	uint64_t deadline_ns;
	struct xmsg *x;	 /* RD_LOCAL, RD_FWD */
	struct read_req rq; /* RD_REMOTE */
};

#define ND_ML_VEC_BYTES SL_ML_SNAP_VEC_BYTES(SL_CONS_MAX_PEERS)
#define ND_ML_VEC_TEXT 512 /* one vector as a text line */

struct region {
	uint32_t id;
	/* the core that runs it: set at start, then changed only by that core, once a core
	 * move's new segment is open (node_switch.c, core_handoff); other cores read it to
	 * route (a stale read hands the point, read or request on to the owner) */
	_Atomic uint32_t worker;
	uint64_t hash_lo, hash_hi;
	struct sl_store *store;
	struct worker *wk;   /* the core that owns it */
	struct sl_drv *drv; /* its consensus group, whatever the protocol */
	uint64_t last_index;    /* highest index in the log (recovered or appended) */
	uint64_t applied_index; /* applied to the store */
	uint64_t snapshot_index;
	struct proposal props[PROP_SLOTS];
	int open; /* proposal slot being filled, -1 none */
	uint32_t prop_cap; /* bytes of one proposal */
	uint64_t points_applied, points_rejected;
	uint32_t fwd_out;  /* proposals forwarded and not answered yet */
	uint32_t leader_hint; /* a region with no replica here (drv NULL): where to forward */
	_Atomic uint32_t leader_seen; /* the leader its replica here last knew (any core reads) */
	uint64_t balance_next_ns; /* next look at where leadership should be */
	uint64_t led_since_ns;	  /* this replica leads since (0: it does not) */
	uint32_t pref_seen;	  /* the preferred leader last looked at (0: none yet) */
	uint64_t move_until_ns;	  /* a leader move from ctld is tried until then */
	struct nd_read reads[NODE_READS];
	uint32_t n_reads;
	uint64_t read_seq;
	uint64_t fwd_seq;  /* makes forwarded ids unique over a slot's reuse */
	uint64_t fwd_fseq; /* the last stream sequence number given to a forwarded batch */
	uint64_t fwd_rewind_ns;	  /* a "resend from" answer is acted on again after this... */
	uint64_t fwd_rewind_next; /* ...or when it names a later fseq than the last rewind */
	uint64_t fwd_srtt_ns, fwd_rttvar_ns; /* forwarded batches' answer time (0: no sample) */
	uint32_t fwd_backoff; /* timeouts since the last sample: new batches start backed off */
	struct fwd_stream *fwd_streams; /* [SL_CFG_MAX_NODES], by forwarder node id - 1 */
	/* the log window every protocol reads back through (apply after restart, peers) */
	struct sl_rlog rlog;
	struct sl_cons_log view; /* the protocol keeps a pointer to it */
	struct sl_cons_hard_state hs; /* latest persisted */
	bool has_hs;                  /* the protocol keeps a hard state: checkpoints rewrite it */
	uint64_t recover_target;      /* recovered log end: applied before serving reads */
	uint64_t snapshot_term;
	bool rejoining; /* its replica lost its state with the data dir, catching up */
	/* multileader (every replica takes writes; docs/multileader.md): the version of the
	 * entry being applied (last writer wins by it), and the bounds of one ready */
	bool ml;
	uint64_t apply_hlc;
	uint32_t apply_origin;
	uint64_t ready_wal_worst; /* WAL bytes one ready may append */
	uint32_t ready_entries;	  /* entries one ready may append */
	/* its per-origin positions (sl_ml_snap_vec_put bytes): of the chain's last image,
	 * and of the store (that image joined with the peers' snapshots merged since) */
	uint8_t ml_chain_vec[ND_ML_VEC_BYTES];
	uint32_t ml_chain_vec_len;
	uint8_t ml_vec[ND_ML_VEC_BYTES];
	uint32_t ml_vec_len;
	uint32_t ml_merge_seq; /* next merge file's sequence number */
	uint8_t ml_img_vec[ND_ML_VEC_BYTES]; /* the kept image's positions (snap_img) */
	uint32_t ml_img_vec_len;	     /* 0: unknown, the image is not sent */
	uint8_t *ml_send;      /* vector + kept image, for a peer past retention */
	uint32_t ml_send_len;
	uint64_t ml_send_gen;  /* the kept image it was made of (snap_img_gen) */
	/* a full image for peers behind the log's base: the latest when small, else one the
	 * writer built from the chain on disk (kept while the log continues from it) */
	uint8_t *snap_img;
	uint32_t snap_img_len;
	uint64_t snap_img_gen; /* counts the kept images (never 0 once one was kept) */
	/* a replica asked for an image until then: the log keeps log_keep_peer_mb, not
	 * log_keep_mb, so it still continues from the image built and sent meanwhile */
	uint64_t peer_pin_until_ns;
	uint64_t snap_img_index;
	struct sl_cons_conf snap_conf;
	/* the image chain on disk (node_ckpt.c): a full base, then deltas, each holding the
	 * chunks changed since the image before it. snap_since 0: no durable base (the next
	 * image is full); else the next delta holds the chunks stamped >= snap_since */
	uint32_t snap_since;
	uint32_t snap_deltas;	    /* deltas after the base */
	uint64_t snap_base_index;   /* the base's applied index (in the deltas' names) */
	uint64_t snap_base_bytes;
	uint64_t snap_delta_bytes;  /* of the deltas after the base, in sum */
	/* the protocol switch (node_switch.c): the segment of the region's virtual log this
	 * replica runs (its log indexes start above nd_epoch_base(epoch)), and what ctld's
	 * map asks (written by the main lcore, want_proto before want_epoch) */
	uint32_t epoch;
	_Atomic uint32_t want_epoch;
	_Atomic bool want_seal;	  /* ctld switches the region away from segment want_epoch */
	char want_proto[32];	  /* the protocol of segment want_epoch */
	uint32_t want_nodes[SL_CFG_MAP_COPIES]; /* ...its replicas */
	uint32_t want_copies;
	uint32_t want_preferred;
	_Atomic uint32_t want_core; /* ...its worker core + 1 (0: the one it runs on now) */
	_Atomic bool sealed;	  /* this replica applied the SEAL of its segment */
	bool epochs_pinned;	  /* the epochs file records this segment's protocol */
	uint64_t seal_commit;	  /* ...and its SEAL's index, applied (the log durable to it) */
	uint64_t seal_next_ns;	  /* the next seal attempt */
	uint64_t switch_next_ns;  /* the next switch attempt (after a failed one) */
	uint64_t sealed_ns;	  /* when the seal was seen applied (the write pause) */
	bool switch_said;	  /* a switch this replica cannot make was logged */
	/* region split (node_switch.c, docs/cluster.md "Splitting a region"): its range in
	 * ctld's map (hash_lo, hash_hi above are what routing gives it now: an unborn
	 * child's range stays with its parent), the region it was split from (+ 1; 0: none)
	 * at segment split_epoch, and the child a split of it makes (+ 1; 0: none) */
	uint64_t map_lo, map_hi;
	uint32_t split_from, split_epoch;
	_Atomic uint32_t split_child;
	/* a child whose parent has a replica here that has not split yet: no state, no
	 * protocol, not routed to, until the parent's worker makes it (same core) */
	_Atomic bool unborn;
	/* region merge (node_switch.c, docs/cluster.md "Merging regions"): the region ctld
	 * merged into this one (+ 1; 0: none) while this node has not merged it yet; of a
	 * region merged into another, the segment of that one which holds both, and whether
	 * it is gone here (no state, no protocol, not routed to, its WAL records skipped) */
	_Atomic uint32_t merge_child;
	uint32_t merge_epoch;
	_Atomic bool retired;
	/* a replica move's learner (docs/cluster.md, "Moving replicas"): the node ctld's map
	 * names to catch up as a learner of segment want_epoch before its seal (0: none;
	 * written by the main lcore before want_epoch), the learner this replica's protocol
	 * was told of, and whether this node runs the region as that learner (its state is
	 * dropped at a restart: the epochs file says EP_LEARN) */
	_Atomic uint32_t want_learner;
	uint32_t drv_learner;
	bool learner_here;
	bool learner_opening; /* learner_join opens it: only then is this node its learner */
	bool learn_dropped; /* at start: its learner copy went (its WAL records are skipped) */
	bool ml_joining;    /* a multileader joiner not caught up yet (node_switch.c) */
};

/* Segment e of a region's log holds indexes above e << ND_EPOCH_SHIFT: every segment's
 * indexes are above the one before's, whatever its protocol, so an image names the
 * segment it is of (its index), and WAL records of an older segment are below the
 * image of a newer one (replay skips them). */
#define ND_EPOCH_SHIFT 40
static inline uint64_t nd_epoch_base(uint32_t epoch) { return (uint64_t)epoch << ND_EPOCH_SHIFT; }
static inline uint32_t nd_epoch_of(uint64_t index) { return (uint32_t)(index >> ND_EPOCH_SHIFT); }
/* The consensus group id of a region's segment: region | epoch << 32 (node_fabric.c
 * finds the region by the low half; the protocol refuses another segment's message). */
static inline uint64_t nd_group_id(const struct region *r)
{
	return (uint64_t)r->id | ((uint64_t)r->epoch << 32);
}
/* A WAL record's region field: region | (epoch mod 2^16) << 16 (SL_CFG_MAX_REGIONS is
 * below 2^16): replay takes only the records of the segment each region recovered. */
static inline uint32_t nd_wal_region_tag(const struct region *r)
{
	return r->id | (r->epoch & 0xffffu) << 16;
}

enum pend_kind { PEND_SHM = 0, PEND_SESS = 1, PEND_LOCAL = 2 };

struct pend {
	bool used;
	uint8_t kind;
	uint8_t level; /* session ack level */
	int32_t err;   /* a part failed (WAL error): nothing more is acknowledged as stored */
	uint32_t slot;
	uint64_t batch_seq; /* shm: the client's batch; session: the seq */
	uint64_t session_id;
	uint32_t count, remaining, stored;
	uint32_t received; /* shm: records of the batch read so far */
	uint64_t t0_tsc;
	struct reply_addr ra;
	struct sl_local_batch *local; /* PEND_LOCAL: the producer's batch */
};

struct sessq_ent {
	uint64_t lsn; /* of the session record */
	uint64_t session_id, seq, t0_tsc;
	uint32_t stored, count;
	uint8_t level;
	struct reply_addr ra;
};

struct lsn_rec {
	uint64_t lsn;
	uint32_t region;
	uint64_t term;
	uint64_t index;
};

enum ctl_kind { CTL_REGIONS = 1, CTL_QUERY = 2, CTL_WAL_FAULT = 3, CTL_INSTALL = 4 };

struct ctl_req {
	enum ctl_kind kind;
	uint32_t region;
	uint64_t series_id;
	int64_t from, to;
	size_t limit;
	int fault_op, fault_err; /* CTL_WAL_FAULT */
	struct sl_cons_snapshot snap; /* CTL_INSTALL */
	/* results */
	struct sl_sample_ex *samples;
	size_t n_samples;
	char *strbuf; /* string values are copied here by the worker */
	size_t str_cap, str_used;
	uint8_t type;
	int rc;
	struct json_object *json;
	atomic_int done;
};

/* Where the network door stopped a frame whose points could not all be routed (routing
 * had no room): the frame is kept and resumed next round from here, so nothing taken is
 * dropped and nothing is accounted twice. */
enum net_park_kind { PARK_NONE = 0, PARK_LP = 1, PARK_SESS = 2 };

struct net_park {
	enum net_park_kind kind;
	struct rte_mbuf *m;     /* the frame (or reassembled datagram) the payload is in */
	struct sl_pkt_info in;  /* its classification; in.payload stays valid while m is held
				 * (a chained datagram's flat copy too: the door takes nothing
				 * else while a frame is parked) */
	uint16_t port;
	/* line protocol: the line to resume at, its fields already routed, and the clock a
	 * line without a timestamp was given (the same for every field of the frame) */
	size_t lp_off;
	uint32_t lp_field;
	int64_t lp_now;
	/* session BATCH: its pending handle and the point iterator */
	uint32_t sess_h;
	struct sl_sess_point_iter sess_it;
	/* frames of the same burst not yet looked at, served after the parked one */
	struct rte_mbuf *rest[RX_BURST];
	uint16_t rest_port; /* port index, or UINT16_MAX: they came from the hand-over ring */
	uint16_t rest_head, rest_n;
};

/* A piece of checkpoint file work for the node's writer thread (node_ckpt.c). */
#define CKPT_BUFS 2 /* step buffers: the worker fills one while the writer writes one */
#define CKPT_JOBS 8 /* job slots per worker */
struct ckpt_job {
	int kind;
	unsigned worker;
	uint32_t region;
	const uint8_t *data; /* a worker buffer, untouched until done */
	size_t len;
	uint64_t index, term, prev_index, prev_term; /* image / release: lsn, kept segment */
	bool delta;		/* close: a delta image of the chain whose base is at base_index */
	uint64_t base_index;
	uint8_t hdr[SL_STORE_SNAP_HDR_BYTES];
	uint32_t deleted;	/* release: segments deleted (prev_index: new first lsn) */
	bool ml;		/* close: a multileader region's image: its vectors too */
	uint8_t vec[ND_ML_VEC_BYTES], prev_vec[ND_ML_VEC_BYTES];
	uint32_t vec_len, prev_vec_len;
	uint8_t *keep;		/* close: the image read back when small (malloc) */
	size_t keep_len;
	int rc;
	bool busy;		/* submitted (the worker's view) */
	atomic_bool done;	/* set by the writer once rc is final */
};

/* A worker's checkpoint: a walk over its regions in steps, whose files the writer does. */
struct wk_ckpt {
	int phase;
	uint32_t next;	       /* next region to look at */
	uint64_t upto;	       /* WAL records <= upto were applied when it began */
	struct region *r;      /* the region being imaged */
	struct sl_store_snap_cursor cur;
	uint64_t index, term;  /* of that image */
	bool delta;            /* that image is a delta (cur.flags) */
	uint8_t ml_vec[ND_ML_VEC_BYTES]; /* multileader: the positions at the walk's start */
	uint32_t ml_vec_len;
	uint64_t hs_lsn;       /* the hard states written again: released once durable */
	struct ckpt_job *wait; /* the job the walk waits for */
	struct ckpt_job jobs[CKPT_JOBS];
	uint32_t job_next;
	struct ckpt_job exp;   /* a full image of a region's chain, for a peer (one at once) */
	uint64_t exp_next_ns;  /* after a failed one: not before */
	uint8_t *buf[CKPT_BUFS];
	size_t cap[CKPT_BUFS];
	struct ckpt_job *buf_job[CKPT_BUFS]; /* the job writing it */
	uint8_t *sess_buf;
	size_t sess_cap;
};

/* One worker lcore. Grouped by the pipeline stage that owns the fields (anonymous
 * structs: the names stay flat); each group starts on its own cache line so a stage's
 * fields of the per-round path share lines with each other and not with another's. */
/* The fabric (node_fabric.c): a link per peer node, one queue pair per worker; over UDP
 * every peer shares the one fabric port and is told apart by its address. */
struct nd_fab_peer {
	uint16_t node;	  /* the peer's node id */
	uint16_t port_id; /* its memif device, or the fabric port (udp) */
	bool server;	  /* this node listens on the link's socket */
	/* udp: its address (host order), MAC (sl_fu_mac_pack; 0 = not resolved yet; written
	 * by the worker that hears its ARP), when it was last heard (ARP or frames), and
	 * whether its MAC is static */
	uint32_t ip;
	bool static_mac;
	_Atomic uint64_t mac;
	_Atomic uint64_t heard_ns;
	bool started;	  /* main lcore only */
	bool quiescing;	  /* main lcore: waiting for the workers to leave the link */
	uint64_t retry_ns;
	uint64_t snap[SL_CFG_MAX_WORKERS]; /* workers' rounds when quiescing began */
	atomic_bool usable; /* workers send and receive on it */
	/* tests only (debug_fabric): frames dropped (percent) each way, sent late (ms) */
	_Atomic uint32_t fault_out_drop, fault_in_drop, fault_out_delay_ms;
};

struct nd_fabric {
	struct sl_fab_self self;
	uint64_t epoch;
	uint32_t mtu;	/* bytes of a fabric frame (after the IP and UDP headers over udp) */
	uint32_t hdrs;	/* bytes before a fabric frame: Ethernet, or Ethernet/IPv4/UDP */
	unsigned n_peers;
	struct nd_fab_peer peer[SL_CONS_MAX_PEERS];
	struct rte_mempool *pool;
	struct rte_ether_addr mac; /* udp: the fabric port's */
	/* udp: the one port, this node's address and ports, a ring per worker for frames the
	 * port delivered to another worker's queue, and whether rte_flow steers instead */
	bool udp;
	bool udp_started;
	bool steered;
	uint16_t udp_port_id;
	struct sl_fu_local local;
	struct rte_ring *handoff[SL_CFG_MAX_WORKERS];
};

/* A worker's side of one link: the frame it fills, the TX buffer, reassembly. */
struct wk_fab_peer {
	struct rte_mbuf *m; /* the open frame, NULL when none */
	struct sl_fab_enc enc;
	uint32_t seq;
	uint32_t rx_seq; /* next expected */
	bool rx_seen;
	struct sl_port_txq txq;
	struct sl_fab_reasm ra;
	uint8_t *ra_buf;
	/* udp, worker 0: when to ask for the peer's MAC next, and the last wait */
	uint64_t arp_due_ns;
	uint32_t arp_gap_ms;
	/* tests only: frames held back by debug_fabric's delay, in send order */
	struct rte_mbuf *held[FAB_HELD_MAX];
	uint64_t held_due[FAB_HELD_MAX];
	uint32_t held_head, held_len;
};

struct wk_fab {
	uint64_t rng; /* fault injection's coin */
	_Atomic uint64_t rounds; /* rounds begun: the main lcore's quiescence check */
	/* odd while the worker is inside a call into a fabric port (an RX burst, a TX send
	 * or flush): what fab_guard.c waits for before the PMD unmaps a link's memory */
	_Atomic uint64_t burst;
	/* the worker is in blocking file I/O (a region's image written or installed): its
	 * round does not end soon, and fab_guard.c does not wait for it to */
	_Atomic bool off_fabric;
	uint8_t *scratch;	 /* a forwarded batch with its header (FWD_HDR_MAX + PROP_BYTES) */
	struct sl_port_txq ctl_txq; /* udp: ARP requests and replies */
	struct wk_fab_peer peer[SL_CONS_MAX_PEERS];
};

struct worker {
	/* the round: identity, clock, counters (every stage reads these) */
	struct {
		struct sl_node *node;
		unsigned idx;
		unsigned lcore;
		unsigned arena;
		bool wal_failed;
		uint32_t idle_us;
		struct sl_stats_core *st; /* this round's deltas (private) */
		uint64_t tsc_hz;
		uint64_t round_tsc;       /* TSC at the start of this round */
		uint64_t now_ns;          /* this round's clock (nd_now_ns, from the TSC) */
		uint64_t stall_tsc[3];    /* STALL_US_1..3 in TSC cycles */
		uint64_t nivcsw;          /* involuntary context switches at the last sample */
		uint64_t nivcsw_next_ns;  /* next sample (housekeeping) */
		bool nivcsw_valid;
	} __rte_cache_aligned;
	/* route: points and acks to other cores, messages parked for ring room */
	struct {
		struct rte_ring *in[SL_CFG_MAX_WORKERS];  /* from core j to me */
		struct rte_ring *out[SL_CFG_MAX_WORKERS]; /* from me to core j */
		struct xmsg *fill_pts[SL_CFG_MAX_WORKERS];
		struct xmsg *fill_acks[SL_CFG_MAX_WORKERS];
		struct xmsg *stalled; /* partly consumed points message */
		/* points that reached this core after their region moved to another: handed on
		 * (same origin core: the ack handles stay valid) */
		struct xmsg *redir;
		uint16_t redir_dst;
		uint32_t local_head, local_len;
		struct xmsg *local_q[XRING_SIZE];
		/* acks that found no message or ring room: sent first next time (never lost, and
		 * never waited for: two cores acking each other must not block each other).
		 * Acks of one batch are merged while they wait, so the backlog holds at most one
		 * entry per pending batch of the destination core however many runs the batch
		 * was split into; ack_bl_slot[d][handle] is that entry's slot + 1, or 0. */
		struct xack *ack_backlog[SL_CFG_MAX_WORKERS];
		uint32_t *ack_bl_slot[SL_CFG_MAX_WORKERS];
		uint32_t ack_bl_head[SL_CFG_MAX_WORKERS], ack_bl_len[SL_CFG_MAX_WORKERS];
		struct xmsg *outbox[OUTBOX_SIZE];
		uint16_t outbox_dst[OUTBOX_SIZE];
		uint32_t outbox_head, outbox_len;
	} __rte_cache_aligned;
	/* pending client batches and the shm ingress */
	struct {
		struct pend *pend;
		uint32_t *pend_free;
		uint32_t n_pend_free;
		struct sl_ingest_rec *recs; /* one decoded burst */
		uint32_t rec_slot;          /* slot of recs[rec_next..rec_n): decoded, not yet taken */
		uint32_t rec_next, rec_n;
		uint32_t slot_cur[NODE_SHM_SLOTS];      /* pending handle of the slot's open batch,
							 * or UINT32_MAX */
		uint32_t slot_inflight[NODE_SHM_SLOTS]; /* batches of the slot awaiting their ack */
		/* in-process ingest (node_local.c): the queue, the batch being routed */
		struct rte_ring *localq;
		struct sl_local_batch *local_cur; /* NULL: none */
		const struct sl_point *local_pts;
		uint32_t local_n, local_pos, local_h;
	} __rte_cache_aligned;
	/* WAL: records not yet applied, the durable point told to the drivers */
	struct {
		struct sl_wal *wal;
		struct lsn_rec *lsnq;
		uint32_t lsn_head, lsn_len, lsn_durable; /* durable = entries handed to persisted() */
		uint64_t drv_durable; /* durable LSN last told to the regions' drivers */
		uint64_t wal_bytes_since_ckpt;
		_Atomic int wal_errno; /* of the first WAL failure (positive), for status */
	} __rte_cache_aligned;
	/* sessions: the table, and batches whose session record is queued (head..+logged:
	 * in the WAL, waiting to be durable; the rest: waiting for WAL room) */
	struct {
		struct sl_sess_table sess;
		uint8_t sess_routes[SL_SESS_ROUTES_MAX * SL_SESS_ROUTE_BYTES]; /* ROUTES_OK */
		void *sess_mem;
		struct sessq_ent *sessq;
		uint32_t sessq_head, sessq_len, sessq_logged;
		int64_t next_expire_ns;
	} __rte_cache_aligned;
	/* network door: line protocol parser, ARP, IPv4 reassembly (netq: frames other
	 * workers hand over: a datagram's fragments meet on one worker, a session's
	 * datagrams on its worker, whatever queue the device put them on; flat: a chained
	 * datagram made contiguous), the frame parked for routing room */
	struct {
		struct sl_lp_line *lp;
		struct sl_lp_counts lpc, lpc_published;
		struct sl_pkt_arp_cache arp;
		struct sl_frag frag;
		struct sl_frag_counts frag_published;
		struct rte_ring *netq;
		uint8_t *flat;
		struct net_park park;
		struct sl_port_txq txq[SL_PORT_MAX]; /* replies leave in bursts: queue idx of
						      * each port */
		struct sl_port_txq exc_txq; /* to the kernel (node_exc.c); buf NULL: no path */
		struct wk_fab *fab; /* links to the other nodes; NULL on a single node */
	} __rte_cache_aligned;
	/* checkpoints, ctl, stats publication: housekeeping, not every round's path */
	struct {
		bool ckpt_active; /* a checkpoint in progress, one step per round */
		bool ckpt_wanted; /* a peer needs an image newer than the log kept: one now */
		uint64_t ckpt_peers_ns; /* when a multileader peer last asked for a newer one */
		struct wk_ckpt ckpt;
		struct rte_ring *ctlq;
		struct sl_stats_core st_local;
		struct sl_stats_core *st_shm; /* the core's block in the stats segment */
		atomic_bool debug_hold; /* tests only (debug_hold_core): the core stands still */
		_Atomic uint64_t debug_stall_us; /* tests only: one round this long (stall counters) */
	} __rte_cache_aligned;
} __rte_cache_aligned;

/* Routing of series ids to regions (node_route.c): the regions' ranges in order, lo[0] = 0;
 * a series goes to the region of the last lo at or below its id. Rebuilt whole (under
 * route_lock, off the hot path) when a split or a new map changes a range, and published
 * with one pointer store; readers never wait. Old tables stay until the node goes. */
struct nd_route {
	struct nd_route *older;
	uint32_t n;
	uint64_t lo[SL_CFG_MAX_REGIONS];
	uint16_t region[SL_CFG_MAX_REGIONS];
};

struct sl_node {
	struct sl_config cfg;
	struct sl_node_env env;
	unsigned n_workers;
	struct worker *w;
	struct region *regions;
	struct rte_mempool *xpool;
	struct sl_stats_writer *stats;
	struct sl_ingest *ingest;
	enum sl_arena_mode arena_mode;
	atomic_bool stop;
	atomic_bool failed;
	atomic_bool map_dirty; /* a worker switched a region's protocol: regions.map is saved */
	uint64_t start_ns;
	uint64_t recovered_entries, recovered_points;
	struct sl_wal_recovery rec_report;
	struct sl_ports ports;
	struct sl_pkt_local local;
	enum sl_lp_precision precision;
	struct ckpt_writer *ckw; /* the checkpoint writer thread (node_ckpt.c) */
	struct nd_fabric *fab;   /* links to the other nodes (node_fabric.c); NULL: one node */
	bool acks_majority;	 /* every region has 2+ replicas: an ack means majority-durable */
	bool level2_majority;	 /* every region has 2+ replicas: a level-2 write is acked so */
	struct nd_ctld *ctld;    /* reports to sluice-ctld (node_ctld.c); NULL: none */
	bool rejoin_active;	 /* DATA_DIR/REJOIN is there: replicas rejoin (node_recover.c) */
	atomic_uint rejoin_left; /* regions still rejoining; 0: the marker goes */
	uint64_t fwd_life; /* this process's forwarding streams (random, never 0) */
	struct nd_route *_Atomic route;
	rte_spinlock_t route_lock;
	uint32_t regions_conf; /* [regions] regions: what node.meta pins (splits add more) */
	/* node.meta's workers: the count the data dir was made with. A region no core move
	 * placed runs on core id % base_workers (its lineage), whatever the count now */
	unsigned base_workers;
	unsigned workers_before; /* the count whose session tables the data dir holds */
	/* ctld's map at start: the core each region runs on + 1 after a core move (0: its
	 * lineage's), for a region whose epochs file names none (nd_region_place) */
	uint32_t map_core[SL_CFG_MAX_REGIONS];
	/* the exception path (node_exc.c): its device, queues, kernel interface */
	uint16_t exc_port; /* UINT16_MAX: none */
	uint16_t exc_queues;
	char exc_ifname[16];
};

/* The region a series id belongs to now. */
static inline uint32_t nd_route_of(const struct sl_node *n, uint64_t series_id)
{
	const struct nd_route *t = atomic_load_explicit(&n->route, memory_order_acquire);
	uint32_t a = 0, b = t->n; /* lo[a] <= id < lo[b] (lo[n] = 2^64) */
	while (b - a > 1) {
		uint32_t m = (a + b) / 2;
		if (t->lo[m] <= series_id)
			a = m;
		else
			b = m;
	}
	return t->region[a];
}
/* node_route.c: the table from the regions' ranges (an unborn child's goes to its parent);
 * 0 or -ENOMEM (the old table stays). */
int nd_route_build(struct sl_node *n);
void nd_route_free(struct sl_node *n);

/* Shared between the node's files (defined where their section is). */
void nd_pend_finish(struct worker *w, uint32_t h);
struct xmsg *nd_xmsg_get(struct worker *w, uint16_t kind);
void nd_outbox_send(struct worker *w, unsigned dst, struct xmsg *x);
void nd_apply_entry(struct region *r, const uint8_t *data, uint32_t len, struct proposal *p);
uint32_t nd_ml_home(const struct sl_node *n, const struct region *r);
bool nd_wal_room(const struct worker *w, uint64_t bytes);
/* Around a worker's blocking file I/O (node_switch.c, snapshot installs): fab_guard.c
 * does not wait for its next round (it waits for its fabric port calls only). */
static inline void nd_off_fabric(struct worker *w, bool on)
{
	if (w->fab != NULL)
		atomic_store_explicit(&w->fab->off_fabric, on, memory_order_release);
}
/* node_recover.c: the region's consensus group over its recovered log */
int nd_region_open(struct sl_node *n, struct region *r, bool rejoin, char *err, size_t err_len);
void nd_region_place(struct sl_node *n, struct region *r, uint32_t id);
int nd_region_alloc(struct worker *w, struct region *r, char *err, size_t err_len);
/* node_switch.c: the protocol switch */
int nd_switch_recover(struct sl_node *n, struct region *r, char *err, size_t err_len);
void nd_switch_poll(struct worker *w, struct region *r);
void nd_region_log_at(struct worker *w, struct region *r, uint64_t base);
bool nd_ml_joined(struct worker *w, struct region *r);
void nd_split_poll_unborn(struct worker *w, struct region *c);
/* A region's epochs file goes (a region merged into another: nothing of it is left). */
void nd_switch_drop_epochs(const struct sl_node *n, uint32_t region);
/* node.c: a split's points routed again (to the region that owns them now) */
uint32_t nd_prop_reroute(struct worker *w, struct region *r, uint32_t slot, uint32_t len,
			 bool keep);
/* node.c: a proposal ends with an error (every run of it answered) */
void nd_prop_fail(struct worker *w, struct region *r, struct proposal *p, int32_t err);
/* node_ckpt.c: for the switch */
int nd_ckpt_quiesce(struct worker *w);
void nd_region_drop_files(const struct sl_node *n, uint32_t region);
void nd_region_drop_older(const struct sl_node *n, uint32_t region, uint64_t keep_from);
int nd_switch_image(struct region *r, bool versioned, uint64_t index, struct sl_store **out,
		    uint64_t *bytes);
int nd_merge_images(struct region *r, struct region *s, uint64_t index, struct sl_store **out,
		    uint64_t *bytes);
int nd_split_images(struct region *r, struct region *c, uint64_t at, uint64_t index,
		    struct sl_store **r_st, struct sl_store **c_st, uint64_t *bytes);
int nd_wal_append(struct worker *w, uint16_t type, const uint8_t *head, uint32_t head_len,
		  const uint8_t *buf, uint32_t len, uint64_t *lsn);
int nd_wal_append_hardstate(struct worker *w, struct region *r,
			    const struct sl_cons_hard_state *hs, uint64_t *lsn);
extern const struct sl_drv_host nd_drv_host;
void nd_wal_fail(struct worker *w, int err);
uint64_t nd_lsnq_trim(struct worker *w);
bool nd_route_point(struct worker *w, uint32_t handle, const struct sl_point *pt);
bool nd_route_room(struct worker *w, const struct sl_point *pt);
void nd_checkpoint_step(struct worker *w);
int nd_ckpt_writer_start(struct sl_node *n, char *err, size_t err_len);
void nd_ckpt_writer_stop(struct sl_node *n);
void nd_ckpt_free(struct worker *w);
int nd_install_snapshot(struct region *r, const struct sl_cons_snapshot *snap);
/* node_ml.c: multileader regions' vectors, merges and snapshots */
uint32_t nd_ml_vec_capture(struct region *r, uint8_t *out);
void nd_ml_vec_path(const struct sl_node *n, uint32_t region, char *buf, size_t len);
int nd_ml_write_vec_file(const struct sl_node *n, uint32_t region, uint64_t index,
			 const uint8_t *vec, uint32_t len, uint64_t prev_index,
			 const uint8_t *prev, uint32_t prev_len);
void nd_ml_remove_merged(const struct sl_node *n, uint32_t region, uint64_t upto);
int nd_ml_recover(struct sl_node *n, struct region *r, char *err, size_t err_len);
int nd_ml_log_snapshot(struct region *r, struct sl_cons_snapshot *out);
int nd_ml_install(struct region *r, const struct sl_cons_snapshot *snap, const char **why);
/* path.tmp, fdatasync, rename over path, fsync the directory (node_ckpt.c) */
int nd_meta_write(struct sl_node *n, unsigned workers_now, char *err, size_t err_len);
int nd_write_file_atomic(const struct sl_node *n, const char *path, const uint8_t *buf,
			 size_t len);
int nd_region_log_snapshot(void *ctx, struct sl_cons_snapshot *out);
void nd_rejoin_done(struct sl_node *n);
void nd_rejoin_forget(struct sl_node *n, struct region *r);
void nd_fab_guard_arm(struct sl_node *n);
void nd_fab_guard_disarm(void);
unsigned long nd_fab_guard_waits(void);
int nd_ctld_take_map(struct sl_node *n, char *err, size_t err_len);
int nd_ctld_joined_before(const struct sl_node *n, char *state, size_t state_len);
#define ND_DELTAS_MAX 64u /* a chain has at most 16 deltas (node_ckpt.c): more is damage */
int nd_deltas_list(const struct sl_node *n, uint32_t region, uint64_t base, uint64_t *idx,
		   size_t max, size_t *count, size_t *any);
void nd_region_keep_image(struct region *r, uint8_t *img, size_t len, uint64_t index,
			  const struct sl_cons_conf *conf);
void nd_snap_path(const struct sl_node *n, uint32_t region, char *buf, size_t len,
		  const char *suffix);
void nd_sess_snap_path(const struct sl_node *n, unsigned core, char *buf, size_t len);
void nd_delta_path(const struct sl_node *n, uint32_t region, uint64_t index, uint64_t base,
		   char *buf, size_t len);
bool nd_delta_name(const char *name, uint32_t *region, uint64_t *index, uint64_t *base);
void nd_delta_remove_stale(const struct sl_node *n, uint32_t region, uint64_t base,
			   uint64_t keep_after);
void *nd_rlog_alloc(void *ctx, size_t n);
void nd_rlog_free(void *ctx, void *p);
void nd_net_send_udp(struct worker *w, const struct reply_addr *ra, const uint8_t *payload,
		     size_t len);
int nd_net_tx_init(struct sl_node *n, char *err, size_t err_len);
void nd_region_conf(const struct sl_node *n, uint32_t region, struct sl_cons_conf *out);
int nd_fab_init(struct sl_node *n, char *err, size_t err_len);
void nd_fab_fini(struct sl_node *n);
void nd_fab_send(struct worker *w, const struct sl_cons_msg *m);
void nd_fab_send_kind(struct worker *w, enum sl_fab_kind kind, const struct sl_cons_msg *m);
/* forwarding to a region's leader (node.c): a batch in, an answer in */
int nd_propose(struct worker *w, struct region *r, uint64_t pid, const uint8_t *buf,
	       uint32_t len, uint8_t level);
void nd_fwd_in(struct worker *w, struct region *r, const struct sl_cons_msg *m);
void nd_fwd_ack_in(struct worker *w, struct region *r, const struct sl_cons_msg *m);
/* linearizable reads across nodes (node_net.c) */
void nd_read_index(struct region *r, const struct sl_cons_read *rr);
void nd_reads_progress(struct worker *w, struct region *r);
void nd_read_fwd_in(struct worker *w, struct region *r, const struct sl_cons_msg *m);
void nd_read_ans_in(struct worker *w, struct region *r, const struct sl_cons_msg *m);
int nd_fab_poll(struct worker *w);
int nd_fab_flush(struct worker *w);
void nd_fab_housekeeping(struct sl_node *n);
bool nd_fab_peer_up(const struct sl_node *n, uint32_t node);
/* ctl status: the link type, the UDP port and address, each peer's state (main lcore). */
struct json_object *nd_fab_status(const struct sl_node *n);
void nd_net_tx_flush(struct worker *w);
void nd_net_tx_fini(struct worker *w);
void nd_sess_finish(struct worker *w, uint32_t h);
void nd_local_finish(struct worker *w, uint32_t h);
/* node_exc.c: the exception path to the host's kernel */
bool nd_exc_wanted(const struct sl_config *c, bool *virtio);
void nd_exc_iface(const struct sl_config *c, char *out, size_t len);
int nd_exc_init(struct sl_node *n, char *err, size_t err_len);
void nd_exc_fini(struct sl_node *n);
bool nd_exc_take(struct worker *w, uint16_t port, struct rte_mbuf *m, enum sl_pkt_verdict v,
		 enum sl_pkt_drop reason);
int nd_exc_poll(struct worker *w);
void nd_exc_flush(struct worker *w);
int nd_poll_local(struct worker *w, bool take_new);
void nd_sess_durable(struct worker *w, uint64_t durable);
void nd_read_serve(struct worker *w, struct xmsg *x);
int nd_poll_net(struct worker *w, bool take_new);
void nd_lp_stats(struct worker *w);
void nd_serve_ctl(struct worker *w);
void nd_clock_init(void);
void nd_clock_resync(void);
uint64_t nd_now_ns(void);
int64_t nd_wall_ns(void);
int nd_sess_log_records(struct worker *w);
bool nd_net_parked(const struct worker *w);
void nd_ingest_check_owners(struct sl_node *n);
/* reports to sluice-ctld (node_ctld.c): counters shown by the node's status */
struct nd_ctld_stats {
	uint64_t joins, heartbeats; /* answered by a ctld leader */
	uint64_t failures;          /* calls no ctld leader took (down, no leader, refused) */
	uint64_t not_leader;        /* answers of a replica that is not the leader */
	uint64_t map_version;       /* of the map this node runs (0: not compared yet) */
	uint64_t map_fetches;       /* maps fetched because ctld's version moved */
	uint64_t leader_changes;    /* preferred leaders taken from those at run time */
	uint64_t map_refused;       /* changes of replicas not taken at run time, older maps */
	uint64_t segment_changes;   /* regions moved to a next log segment (protocol switch) */
};
int nd_ctld_init(struct sl_node *n, char *err, size_t err_len);
void nd_ctld_fini(struct sl_node *n);
void nd_ctld_housekeeping(struct sl_node *n);
void nd_ctld_stats(const struct sl_node *n, struct nd_ctld_stats *out);

#endif
