/* driver.h - the region driver: takes one consensus group's protocol instance through the
 * whole sl_cons_ready contract (snapshot install, persist, persist-before-send, apply in
 * order exactly once, acks and reads, advance) against callbacks its host supplies.
 * Pure like the protocols: no I/O, clock or threads of its own, no allocation after create. */
#ifndef SL_DRIVER_H
#define SL_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "consensus.h"

/* What the host does for the driver. Storage calls are asynchronous: each returns 0 and a
 * storage position (*pos, non-decreasing) whose durability covers what it was handed, or a
 * negative errno; the host later reports durability with sl_drv_durable() (positions) and
 * sl_drv_persisted() (log indexes). */
struct sl_drv_host {
	void *ctx;
	/* Replace the state machine with the snapshot, durably; the log now starts after
	 * snap->index. Called before any entry of the same ready is handed to storage; the
	 * driver then reports the log durable up to the snapshot to the protocol. */
	int (*install_snapshot)(void *ctx, const struct sl_cons_snapshot *snap);
	int (*save_hard_state)(void *ctx, const struct sl_cons_hard_state *hs, uint64_t *pos);
	/* An entry at or below the log's end replaces that entry and every later one. */
	int (*save_entry)(void *ctx, const struct sl_cons_entry *e, uint64_t *pos);
	/* Hand a message to the transport (which may lose it: protocols tolerate loss). */
	void (*send)(void *ctx, const struct sl_cons_msg *m);
	/* A committed entry, in index order, each exactly once per driver instance. */
	void (*apply)(void *ctx, const struct sl_cons_entry *e);
	void (*ack)(void *ctx, const struct sl_cons_ack *a);
	void (*read)(void *ctx, const struct sl_cons_read *r); /* NULL: reads are not used */
};

/* Sizes the driver needs from its host; nothing else is protocol specific. */
struct sl_drv_config {
	const char *protocol;  /* the registry chooses the code: sl_cons_find(protocol) */
	struct sl_cons_config cons; /* proto_opts NULL: sized by the registry from the limits
				     * below (a host that tunes one protocol may pass its own) */
	uint32_t max_entry_bytes;   /* largest payload the host proposes */
	uint32_t max_inflight;      /* proposals the host keeps in flight */
	uint64_t applied_index;     /* what the host's state machine already reflects */
	uint32_t held_msgs;         /* messages held for persist-before-send (0: 256) */
	uint32_t held_bytes;        /* their bytes (0: 4 MiB) */
};

struct sl_drv_stats {
	uint64_t readies, snapshots_installed, entries_saved, hard_states_saved;
	uint64_t msgs_sent, msgs_held, msgs_dropped_held; /* held: waited for durability */
	uint64_t entries_applied, acks, reads;
	uint64_t storage_failures;
};

struct sl_drv;

/* -ENOENT: no such protocol; -EMSGSIZE: the recovered log holds an entry over what the
 * protocol accepts under these limits (see sl_drv_entry_limit); other errors from create. */
int sl_drv_create(const struct sl_drv_config *cfg, const struct sl_drv_host *host,
		  struct sl_drv **out);
void sl_drv_destroy(struct sl_drv *d);

/* The largest entry the protocol accepts under cfg's limits (for error messages). */
uint32_t sl_drv_entry_limit(const struct sl_drv_config *cfg);

int sl_drv_propose(struct sl_drv *d, uint64_t proposal_id, const uint8_t *data, uint32_t len);
/* A linearizable read: its index comes back through host.read (read the state machine
 * once it applied that index). -ENOTSUP: the protocol offers none; -EPERM: not the leader. */
int sl_drv_read(struct sl_drv *d, uint64_t read_id);
/* Hand leadership to replica `target`. -ENOTSUP: the protocol has no leader to move. */
int sl_drv_transfer(struct sl_drv *d, uint32_t target);
/* End this log (one segment of the region's virtual log) with a SEAL entry carrying
 * `data`, acked through host.ack like a proposal (DROPPED: seal again). Afterwards
 * sl_drv_propose returns -EROFS and status.sealed_index gives the end once applied.
 * -ENOTSUP: the protocol cannot seal; -EALREADY: a SEAL is in the log already; -EPERM:
 * not the leader; other errors as sl_drv_propose. */
int sl_drv_seal(struct sl_drv *d, uint64_t proposal_id, const uint8_t *data, uint32_t len);
/* The group's learners outside its log (sl_cons_ops.set_learners; -ENOTSUP without). */
int sl_drv_set_learners(struct sl_drv *d, const uint32_t *ids, uint32_t n);
/* The ack status a refused proposal or seal stands for (sl_drv_propose's or sl_drv_seal's
 * negative errno): -EROFS is SL_CONS_ACK_SEALED (hold the write for the next segment),
 * -EPERM and -EBUSY SL_CONS_ACK_NOT_LEADER, -EIO SL_CONS_ACK_STORAGE, else DROPPED. */
uint32_t sl_drv_refusal(int rc);
int sl_drv_step(struct sl_drv *d, const struct sl_cons_msg *m);
void sl_drv_tick(struct sl_drv *d, uint64_t now_ns);

/* Run the protocol's readies until it has none (at most max_rounds); returns how many ran. */
uint32_t sl_drv_process(struct sl_drv *d, uint32_t max_rounds);

/* Storage is durable up to position `pos`: held messages covered by it go out now. */
void sl_drv_durable(struct sl_drv *d, uint64_t pos);
/* The log is durable up to (term, index): forwarded to the protocol. */
void sl_drv_persisted(struct sl_drv *d, uint64_t term, uint64_t index);
/* Storage failed: nothing from `index` on is durable. Held messages are dropped (their
 * premise never became durable) and the instance sends nothing more: a replica that
 * cannot persist goes silent, so its peers elect one that can. The protocol fails what is
 * in flight; only a new instance (a restart) recovers. */
void sl_drv_storage_failed(struct sl_drv *d, uint64_t index, int err);

bool sl_drv_has_ready(const struct sl_drv *d);
uint64_t sl_drv_applied(const struct sl_drv *d);
void sl_drv_status(const struct sl_drv *d, struct sl_cons_status *out);
void sl_drv_stats(const struct sl_drv *d, struct sl_drv_stats *out);
const char *sl_drv_protocol(const struct sl_drv *d);
/* The protocol instance, for protocol-specific calls a host chooses to make (tests). */
void *sl_drv_instance(const struct sl_drv *d);

#endif
