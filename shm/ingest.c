/* ingest.c - node side of the shared-memory ingest ring (layout in ingest_format.h).
 * The node consumes submission rings, produces completion rings and recycles the slots
 * of clients that closed or died; it keeps its own indices so clients cannot steer it. */
#include "ingest.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sl_assert.h"
#include "stats.h"

/* Node-private view of one slot. */
struct slot_priv {
	struct sl_ingest_slot_ctl *ctl;
	struct sl_ingest_wire_rec *recs;
	struct sl_ingest_wire_ack *acks;
	uint64_t sub_tail;  /* authoritative: the shared copy is only published */
	uint64_t comp_head; /* likewise */
	struct sl_ingest_framing fr; /* batch framing of the records seen on this connection */
	uint32_t epoch;
};

struct sl_ingest {
	struct sl_shm_file file;
	struct sl_ingest_hdr *hdr;
	uint32_t n_slots;
	uint32_t ring_entries;
	uint64_t generation;
	struct slot_priv slots[];
};

static uint64_t new_generation(void)
{
	uint64_t g = 0;
	if (getrandom(&g, sizeof(g), GRND_NONBLOCK) != (ssize_t)sizeof(g)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		g = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
	}
	return g != 0 ? g : 1; /* 0 is never a valid generation */
}

int sl_ingest_create(const char *path, uint32_t n_slots, uint32_t ring_entries,
		     struct sl_ingest **out)
{
	if (path == NULL || out == NULL || n_slots == 0 || n_slots > SL_INGEST_SLOTS_MAX ||
	    ring_entries == 0 || ring_entries > SL_INGEST_RING_MAX ||
	    (ring_entries & (ring_entries - 1)) != 0)
		return -EINVAL;
	if (!sl_ingest_geometry_ok(n_slots, ring_entries))
		return -EFBIG;
	struct sl_ingest *ing = calloc(1, sizeof(*ing) + n_slots * sizeof(struct slot_priv));
	if (ing == NULL)
		return -ENOMEM;
	uint64_t size = sl_ingest_file_size(n_slots, ring_entries);
	int rc = sl_shm_file_create(path, size, 0660, &ing->file);
	if (rc != 0) {
		free(ing);
		return rc;
	}
	uint8_t *base = ing->file.base;
	ing->hdr = (struct sl_ingest_hdr *)base;
	ing->n_slots = n_slots;
	ing->ring_entries = ring_entries;
	ing->generation = new_generation();
	for (uint32_t i = 0; i < n_slots; i++) {
		struct slot_priv *s = &ing->slots[i];
		s->ctl = sl_ingest_slot_ctl(base, ring_entries, i);
		s->recs = sl_ingest_slot_recs(s->ctl);
		s->acks = sl_ingest_slot_acks(s->ctl, ring_entries);
	}
	/* The zero-filled file already has every slot free with all indices at 0. */
	struct sl_ingest_hdr *h = ing->hdr;
	h->magic = SL_INGEST_MAGIC;
	h->version = SL_INGEST_VERSION;
	h->hdr_size = SL_INGEST_HDR_SIZE;
	h->n_slots = n_slots;
	h->ring_entries = ring_entries;
	h->rec_size = sizeof(struct sl_ingest_wire_rec);
	h->ack_size = sizeof(struct sl_ingest_wire_ack);
	h->slot_size = sl_ingest_slot_size(ring_entries);
	h->slots_off = SL_INGEST_HDR_SIZE;
	h->file_size = size;
	h->node_pid = (int32_t)getpid();
	h->generation = ing->generation;
	atomic_store_explicit(&h->node_state, SL_INGEST_NODE_RUNNING, memory_order_relaxed);
	/* Clients find the file only after the rename, which follows every store above. */
	rc = sl_shm_file_publish(&ing->file);
	if (rc != 0) {
		sl_shm_file_close(&ing->file, false);
		free(ing);
		return rc;
	}
	*out = ing;
	return 0;
}

uint32_t sl_ingest_n_slots(const struct sl_ingest *ing) { return ing->n_slots; }
uint32_t sl_ingest_ring_entries(const struct sl_ingest *ing) { return ing->ring_entries; }
uint64_t sl_ingest_generation(const struct sl_ingest *ing) { return ing->generation; }

int32_t sl_ingest_slot_owner(const struct sl_ingest *ing, uint32_t slot)
{
	SL_ASSERT(slot < ing->n_slots);
	return atomic_load_explicit(&ing->slots[slot].ctl->owner_pid, memory_order_acquire);
}

uint32_t sl_ingest_slot_epoch(const struct sl_ingest *ing, uint32_t slot)
{
	SL_ASSERT(slot < ing->n_slots);
	return ing->slots[slot].epoch;
}

/* Checks a record's place in its batch against what this connection sent before and
 * advances the framing. Sets starts/ends on records that fit, else returns BAD_FRAMING;
 * either way a batch the record does not continue is abandoned (next_index back to 0). */
static uint8_t check_framing(struct sl_ingest_framing *f, uint32_t ring_entries,
			     struct sl_ingest_rec *r)
{
	bool counts_ok = r->batch_count >= 1 && r->batch_count <= ring_entries &&
			 r->index < r->batch_count;
	bool continues = f->next_index != 0 && counts_ok && r->index == f->next_index &&
			 r->batch_seq == f->cur_seq && r->batch_count == f->cur_count;
	if (!continues) {
		f->next_index = 0; /* whatever was open never completes */
		/* Seqs increase, so a replayed or reordered batch never reads as new. */
		if (!counts_ok || r->index != 0 || r->batch_seq <= f->last_seq)
			return SL_INGEST_BAD_FRAMING;
		f->cur_seq = f->last_seq = r->batch_seq;
		f->cur_count = r->batch_count;
		r->starts_batch = true;
	}
	f->next_index = r->index + 1;
	if (f->next_index == f->cur_count) {
		f->next_index = 0;
		r->ends_batch = true;
	}
	return 0;
}

void sl_ingest_decode(struct sl_ingest_framing *f, uint32_t ring_entries,
		      const struct sl_ingest_wire_rec *w, const uint8_t *key,
		      struct sl_ingest_rec *r)
{
	r->batch_seq = w->batch_seq;
	r->index = w->index;
	r->batch_count = w->batch_count;
	r->ts = w->ts;
	r->value = w->value;
	r->key_len = w->key_len;
	r->type = w->type;
	r->flags = 0;
	r->starts_batch = false;
	r->ends_batch = false;
	if (!sl_ingest_key_ok(r->key_len))
		r->flags |= SL_INGEST_BAD_KEY;
	if (!sl_ingest_type_ok(r->type))
		r->flags |= SL_INGEST_BAD_TYPE;
	else if (!sl_ingest_value_ok(r->type, r->value))
		r->flags |= SL_INGEST_BAD_VALUE;
	memcpy(r->key, key, r->key_len <= SL_KEY_MAX ? r->key_len : SL_KEY_MAX);
	r->flags |= check_framing(f, ring_entries, r);
}

uint32_t sl_ingest_framing_end(struct sl_ingest_framing *f)
{
	if (f->next_index == 0)
		return 0;
	uint32_t missing = f->cur_count - f->next_index;
	f->next_index = 0;
	return missing;
}

bool sl_ingest_framing_open(const struct sl_ingest_framing *f) { return f->next_index != 0; }

bool sl_ingest_batch_open(const struct sl_ingest *ing, uint32_t slot)
{
	return slot < ing->n_slots && sl_ingest_framing_open(&ing->slots[slot].fr);
}

static void copy_record(struct slot_priv *s, uint32_t ring_entries, uint64_t pos,
			struct sl_ingest_rec *r)
{
	const struct sl_ingest_wire_rec *w = &s->recs[pos & (ring_entries - 1)];
	/* Fixed fields copied once into private memory, then only the copy is used: the
	 * client may be rewriting the entry while we read it. */
	struct sl_ingest_wire_rec hdr;
	memcpy(&hdr, w, offsetof(struct sl_ingest_wire_rec, key));
	sl_ingest_decode(&s->fr, ring_entries, &hdr, w->key, r);
}

int sl_ingest_poll(struct sl_ingest *ing, uint32_t slot, struct sl_ingest_rec *out, uint32_t max)
{
	if (slot >= ing->n_slots || (out == NULL && max > 0))
		return -EINVAL;
	struct slot_priv *s = &ing->slots[slot];
	uint64_t head = atomic_load_explicit(&s->ctl->sub_head, memory_order_acquire);
	uint64_t avail = head - s->sub_tail;
	if (avail > ing->ring_entries) {
		sl_ingest_framing_end(&s->fr); /* the rest of an open batch cannot be trusted */
		return -EPROTO;
	}
	uint32_t n = avail < max ? (uint32_t)avail : max;
	for (uint32_t i = 0; i < n; i++)
		copy_record(s, ing->ring_entries, s->sub_tail + i, &out[i]);
	if (n == avail)
		sl_ingest_framing_end(&s->fr); /* whole batches only: nothing more will come */
	if (n > 0) {
		s->sub_tail += n;
		/* Release: our copies are complete before the client may reuse the space. */
		atomic_store_explicit(&s->ctl->sub_tail, s->sub_tail, memory_order_release);
	}
	return (int)n;
}

int sl_ingest_ack(struct sl_ingest *ing, uint32_t slot, uint64_t batch_seq, int32_t status,
		  uint32_t count)
{
	if (slot >= ing->n_slots)
		return -EINVAL;
	struct slot_priv *s = &ing->slots[slot];
	if (atomic_load_explicit(&s->ctl->owner_pid, memory_order_acquire) <= 0)
		return -ENOTCONN;
	uint64_t tail = atomic_load_explicit(&s->ctl->comp_tail, memory_order_acquire);
	/* A tail ahead of our head (corrupt) wraps to a huge value and reads as full. */
	if (s->comp_head - tail >= ing->ring_entries)
		return -ENOBUFS;
	struct sl_ingest_wire_ack *a = &s->acks[s->comp_head & (ing->ring_entries - 1)];
	a->batch_seq = batch_seq;
	a->status = status;
	a->count = count;
	s->comp_head++;
	atomic_store_explicit(&s->ctl->comp_head, s->comp_head, memory_order_release);
	return 0;
}

void sl_ingest_heartbeat(struct sl_ingest *ing)
{
	_Atomic uint64_t *hb = &ing->hdr->heartbeat;
	atomic_store_explicit(hb, atomic_load_explicit(hb, memory_order_relaxed) + 1,
			      memory_order_release);
}

static void reset_slot(struct slot_priv *s)
{
	atomic_store_explicit(&s->ctl->sub_head, 0, memory_order_relaxed);
	atomic_store_explicit(&s->ctl->sub_tail, 0, memory_order_relaxed);
	atomic_store_explicit(&s->ctl->comp_head, 0, memory_order_relaxed);
	atomic_store_explicit(&s->ctl->comp_tail, 0, memory_order_relaxed);
	s->sub_tail = 0;
	s->comp_head = 0;
	s->fr = (struct sl_ingest_framing){0};
	s->epoch++;
	/* Release: a client claiming the slot sees the zeroed indices. */
	atomic_store_explicit(&s->ctl->owner_pid, SL_INGEST_OWNER_FREE, memory_order_release);
}

int sl_ingest_check_owner(struct sl_ingest *ing, uint32_t slot)
{
	if (slot >= ing->n_slots)
		return -EINVAL;
	struct slot_priv *s = &ing->slots[slot];
	int32_t owner = atomic_load_explicit(&s->ctl->owner_pid, memory_order_acquire);
	if (owner <= 0 || kill(owner, 0) == 0 || errno != ESRCH)
		return 0;
	/* CAS: a client closing at the same moment already marked it. */
	int32_t expect = owner;
	return atomic_compare_exchange_strong_explicit(&s->ctl->owner_pid, &expect,
						       SL_INGEST_OWNER_DRAINING, memory_order_acq_rel,
						       memory_order_acquire) ? 1 : 0;
}

int sl_ingest_reset_drained(struct sl_ingest *ing, uint32_t slot)
{
	if (slot >= ing->n_slots)
		return -EINVAL;
	struct slot_priv *s = &ing->slots[slot];
	int32_t owner = atomic_load_explicit(&s->ctl->owner_pid, memory_order_acquire);
	if (owner != SL_INGEST_OWNER_DRAINING)
		return 0;
	/* Whole batches the client published before leaving are still data: reset only
	 * once they are consumed, or when the ring is beyond repair. */
	uint64_t head = atomic_load_explicit(&s->ctl->sub_head, memory_order_acquire);
	if (head == s->sub_tail || head - s->sub_tail > ing->ring_entries) {
		reset_slot(s);
		return 1;
	}
	return 0;
}

int sl_ingest_reap_slot(struct sl_ingest *ing, uint32_t slot)
{
	int rc = sl_ingest_check_owner(ing, slot);
	if (rc < 0)
		return rc;
	return sl_ingest_reset_drained(ing, slot);
}

int sl_ingest_reap(struct sl_ingest *ing)
{
	int freed = 0;
	for (uint32_t i = 0; i < ing->n_slots; i++)
		freed += sl_ingest_reap_slot(ing, i);
	return freed;
}

void sl_ingest_destroy(struct sl_ingest *ing, bool unlink_file)
{
	if (ing == NULL)
		return;
	atomic_store_explicit(&ing->hdr->node_state, SL_INGEST_NODE_CLOSED, memory_order_release);
	sl_shm_file_close(&ing->file, unlink_file);
	free(ing);
}
