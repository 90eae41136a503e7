/* ingest.h - node side of the shared-memory ingest ring: producers on the same host hand
 * points to the node through per-client SPSC rings (client side: libsluice, sluice.h).
 * All calls on one sl_ingest come from one thread (the lcore that owns ingest). */
#ifndef SL_INGEST_H
#define SL_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "ingest_format.h"

/* Why a record is invalid; 0 means valid. The record is still returned so the node can
 * count it by reason. A record with BAD_FRAMING belongs to no batch (the node drops it and
 * acknowledges nothing for it); the other flags reject one point of a well-framed batch
 * (the node NACKs that batch with -EINVAL and the count of points stored). */
enum sl_ingest_rec_flag {
	SL_INGEST_BAD_KEY = 1 << 0,	/* key_len not in 1..SL_KEY_MAX */
	SL_INGEST_BAD_TYPE = 1 << 1,	/* type not in 1..4 */
	SL_INGEST_BAD_VALUE = 1 << 2,	/* bool other than 0/1 */
	SL_INGEST_BAD_FRAMING = 1 << 3, /* index/batch_count/batch_seq out of sequence */
};

/* A record copied out of the ring: the node works on this copy, never on shared memory.
 * key holds key_len bytes (at most SL_KEY_MAX), not NUL-terminated. */
struct sl_ingest_rec {
	uint64_t batch_seq;
	uint32_t index;
	uint32_t batch_count;
	int64_t ts;
	uint64_t value;
	uint16_t key_len;
	uint8_t type;
	uint8_t flags; /* enum sl_ingest_rec_flag bits */
	bool starts_batch; /* first record of a new batch (index 0, framing valid) */
	bool ends_batch;   /* last record of its batch (index batch_count - 1, framing valid) */
	uint8_t key[SL_KEY_MAX];
};

/* Batch framing of one slot's record stream, kept by the node (zero = nothing seen).
 * Fields private to ingest.c; public so the decoder runs without a segment (fuzzing). */
struct sl_ingest_framing {
	uint64_t last_seq; /* highest batch_seq started on this connection */
	uint64_t cur_seq;
	uint32_t cur_count;
	uint32_t next_index; /* 0: no batch open */
};

/* The record decoder/validator sl_ingest_poll uses: fills r from the fixed fields of w (a
 * private copy: the client may rewrite the ring entry meanwhile) and key (copied, clamped
 * to SL_KEY_MAX), flags it, and advances the framing. A batch is a run of records with the
 * same batch_seq and batch_count (1..ring_entries), indices 0..batch_count-1 in order, its
 * seq above every earlier one. A record that breaks the run of the open batch abandons that
 * batch (it never completes); a valid start is accepted even then. Never fails. */
void sl_ingest_decode(struct sl_ingest_framing *f, uint32_t ring_entries,
		      const struct sl_ingest_wire_rec *w, const uint8_t *key,
		      struct sl_ingest_rec *r);
/* The stream reached the client's published head: an honest client publishes whole
 * batches, so a batch still open is abandoned. Returns the points it lacks (0: none was
 * open) and closes it. */
uint32_t sl_ingest_framing_end(struct sl_ingest_framing *f);
/* True while a batch is open (started, not yet ended or abandoned). */
bool sl_ingest_framing_open(const struct sl_ingest_framing *f);

struct sl_ingest;

/* Creates the segment at `path` (built under a temporary name, then renamed over any
 * previous one; mode 0660 so clients of the node's group may write). ring_entries must
 * be a power of two in 1..SL_INGEST_RING_MAX, n_slots in 1..SL_INGEST_SLOTS_MAX:
 * -EINVAL otherwise, -EFBIG when the file would exceed SL_INGEST_FILE_MAX. */
int sl_ingest_create(const char *path, uint32_t n_slots, uint32_t ring_entries,
		     struct sl_ingest **out);
uint32_t sl_ingest_n_slots(const struct sl_ingest *ing);
uint32_t sl_ingest_ring_entries(const struct sl_ingest *ing);
uint64_t sl_ingest_generation(const struct sl_ingest *ing);
/* Pid owning `slot`: > 0 connected client, 0 free, -1 draining after a close or death. */
int32_t sl_ingest_slot_owner(const struct sl_ingest *ing, uint32_t slot);
/* Bumped each time a slot is reset for a new client: the node drops any partial batch
 * it assembled for the slot when this changes. */
uint32_t sl_ingest_slot_epoch(const struct sl_ingest *ing, uint32_t slot);

/* Copies up to `max` records out of the slot's submission ring, decoded and flagged by
 * sl_ingest_decode, and frees their space. Returns the number copied (0 when empty),
 * -EINVAL on bad arguments, -EPROTO when the client left the ring indices corrupt (nothing
 * is consumed; reaping resets it once the client is gone). A batch may span two calls only
 * when `max` cut it: a call that reaches the published head (or finds the ring corrupt)
 * abandons a batch left open, so sl_ingest_batch_open() then says false. */
int sl_ingest_poll(struct sl_ingest *ing, uint32_t slot, struct sl_ingest_rec *out, uint32_t max);
/* Whether the slot's stream has a batch open: the caller that holds state for a batch it
 * saw start must release it (acknowledge it short) once this turns false before the batch's
 * ends_batch record arrived. */
bool sl_ingest_batch_open(const struct sl_ingest *ing, uint32_t slot);
/* Posts one ack for a batch. -ENOBUFS when the completion ring is full, -ENOTCONN when
 * the slot has no live client (the ack is dropped), -EINVAL on a bad slot. */
int sl_ingest_ack(struct sl_ingest *ing, uint32_t slot, uint64_t batch_seq, int32_t status,
		  uint32_t count);
void sl_ingest_heartbeat(struct sl_ingest *ing);
/* Marks slots of dead clients draining and frees draining slots whose submission ring
 * is empty (or corrupt). Slow path (kill(2) per owned slot): call it periodically.
 * Returns the number of slots freed. */
int sl_ingest_reap(struct sl_ingest *ing);
/* The same for one slot, for a node whose slots are polled by different threads: call it
 * from the slot's polling thread, and only when no batch of the slot is still awaiting
 * its ack (else a late ack would reach the slot's next client). 1 if freed. */
int sl_ingest_reap_slot(struct sl_ingest *ing, uint32_t slot);
/* sl_ingest_reap_slot in its two halves, for a node whose polling threads must make no
 * system call: the liveness check (kill(2) on the owner: a dead owner's slot is marked
 * draining by CAS; 1 if this call marked it) from any thread, e.g. a housekeeping one,
 * and the reset of a draining slot whose ring is consumed (no system call; 1 if freed)
 * from the slot's polling thread, under the same condition as sl_ingest_reap_slot. */
int sl_ingest_check_owner(struct sl_ingest *ing, uint32_t slot);
int sl_ingest_reset_drained(struct sl_ingest *ing, uint32_t slot);
/* Marks the segment closed so clients get -ENOTCONN, then unmaps it; `unlink_file`
 * removes the path unless a newer node has already replaced it. */
void sl_ingest_destroy(struct sl_ingest *ing, bool unlink_file);

#endif
