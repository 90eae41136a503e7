/* libsluice.c - client side of the shared-memory ingest ring (public API in sluice.h,
 * layout in ingest_format.h): claims a slot, produces point records in all-or-nothing
 * batches and consumes the node's acks. */
#include "sluice.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest_format.h"

_Static_assert(SLUICE_KEY_MAX == SL_KEY_MAX, "public and shared key limits differ");
_Static_assert((int)SLUICE_F64 == (int)SL_TYPE_F64 && (int)SLUICE_BOOL == (int)SL_TYPE_BOOL,
	       "type codes");

#define CHECK_INTERVAL_NS 1000000u /* system liveness checks at most this often */

struct sluice_client {
	uint8_t *base;
	size_t size;
	int fd;
	struct sl_ingest_hdr *hdr;
	struct sl_ingest_slot_ctl *ctl;
	struct sl_ingest_wire_rec *recs;
	struct sl_ingest_wire_ack *acks;
	uint32_t ring_entries;
	pid_t node_pid;
	dev_t dev;
	ino_t ino;
	uint64_t sub_head;  /* ours alone to write: the shared copy is only published */
	uint64_t sub_tail;  /* last seen node tail */
	uint64_t comp_tail; /* ours alone to write */
	uint64_t next_seq;
	uint64_t in_flight;  /* batches written whose ack is not yet polled */
	uint64_t checked_ns; /* last system liveness check */
	bool dead;
	char path[PATH_MAX];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The segment's own closed flag is read on every call; kill and stat are syscalls, so
 * they run when forced (no progress possible) or once per CHECK_INTERVAL_NS. */
static bool node_alive(struct sluice_client *c, bool force)
{
	if (c->dead)
		return false;
	if (atomic_load_explicit(&c->hdr->node_state, memory_order_acquire) !=
	    SL_INGEST_NODE_RUNNING)
		goto dead;
	uint64_t now = now_ns();
	if (!force && now - c->checked_ns < CHECK_INTERVAL_NS)
		return true;
	c->checked_ns = now;
	if (kill(c->node_pid, 0) != 0 && errno == ESRCH)
		goto dead;
	struct stat st;
	if (stat(c->path, &st) != 0 || st.st_ino != c->ino || st.st_dev != c->dev)
		goto dead; /* shut down, or a new node's segment replaced ours */
	return true;
dead:
	c->dead = true;
	return false;
}

static bool header_ok(const struct sl_ingest_hdr *h, uint64_t file_size)
{
	return h->hdr_size == SL_INGEST_HDR_SIZE &&
	       h->rec_size == sizeof(struct sl_ingest_wire_rec) &&
	       h->ack_size == sizeof(struct sl_ingest_wire_ack) &&
	       sl_ingest_geometry_ok(h->n_slots, h->ring_entries) &&
	       h->slot_size == sl_ingest_slot_size(h->ring_entries) &&
	       h->slots_off == SL_INGEST_HDR_SIZE && h->file_size == file_size &&
	       file_size == sl_ingest_file_size(h->n_slots, h->ring_entries) && h->node_pid > 0;
}

static int claim_slot(struct sluice_client *c, uint32_t n_slots)
{
	int32_t me = (int32_t)getpid();
	for (uint32_t i = 0; i < n_slots; i++) {
		struct sl_ingest_slot_ctl *ctl = sl_ingest_slot_ctl(c->base, c->ring_entries, i);
		int32_t expect = SL_INGEST_OWNER_FREE;
		/* Acquire pairs with the node's release when it reset the slot. */
		if (atomic_compare_exchange_strong_explicit(
			&ctl->owner_pid, &expect, me, memory_order_acq_rel, memory_order_relaxed)) {
			c->ctl = ctl;
			c->recs = sl_ingest_slot_recs(ctl);
			c->acks = sl_ingest_slot_acks(ctl, c->ring_entries);
			c->sub_head = atomic_load_explicit(&ctl->sub_head, memory_order_relaxed);
			c->sub_tail = atomic_load_explicit(&ctl->sub_tail, memory_order_acquire);
			c->comp_tail = atomic_load_explicit(&ctl->comp_tail, memory_order_relaxed);
			return 0;
		}
	}
	return -EBUSY;
}

/* Maps the segment and checks it; the caller frees c on error. */
static int map_segment(struct sluice_client *c, const char *path)
{
	if (snprintf(c->path, sizeof(c->path), "%s", path) >= (int)sizeof(c->path))
		return -ENAMETOOLONG;
	c->fd = open(path, O_RDWR | O_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(c->fd, &st) != 0)
		return -errno;
	if ((uint64_t)st.st_size < SL_INGEST_HDR_SIZE)
		return -EPROTO;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = (size_t)st.st_size;
	void *base = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	c->base = base;
	c->hdr = base;
	if (c->hdr->magic != SL_INGEST_MAGIC || c->hdr->version != SL_INGEST_VERSION ||
	    !header_ok(c->hdr, c->size))
		return -EPROTO;
	c->ring_entries = c->hdr->ring_entries;
	c->node_pid = c->hdr->node_pid;
	return 0;
}

static void release(struct sluice_client *c)
{
	if (c->base != NULL)
		munmap(c->base, c->size);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

int sluice_connect(const char *path, struct sluice_client **out)
{
	if (path == NULL || out == NULL)
		return -EINVAL;
	struct sluice_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->fd = -1;
	int rc = map_segment(c, path);
	if (rc == 0 && !node_alive(c, true))
		rc = -ENOTCONN;
	if (rc == 0)
		rc = claim_slot(c, c->hdr->n_slots);
	if (rc != 0) {
		release(c);
		return rc;
	}
	c->next_seq = 1;
	*out = c;
	return 0;
}

static bool point_ok(const struct sluice_point *p)
{
	return p->key != NULL && sl_ingest_key_ok(p->key_len) && sl_ingest_type_ok(p->type) &&
	       sl_ingest_value_ok(p->type, p->value);
}

/* Room for n more records and one more ack, refreshing the node's tail if needed. */
static int room_for(struct sluice_client *c, uint32_t n)
{
	if (c->in_flight >= c->ring_entries)
		return -EAGAIN;
	if (c->ring_entries - (c->sub_head - c->sub_tail) >= n)
		return 0;
	uint64_t tail = atomic_load_explicit(&c->ctl->sub_tail, memory_order_acquire);
	if (c->sub_head - tail > c->ring_entries)
		return -EPROTO; /* the node never moves its tail past our head */
	c->sub_tail = tail;
	return c->ring_entries - (c->sub_head - c->sub_tail) >= n ? 0 : -EAGAIN;
}

int sluice_write(struct sluice_client *c, const struct sluice_point *pts, uint32_t n,
		 uint64_t *batch_seq_out)
{
	if (c == NULL || pts == NULL || n == 0 || n > c->ring_entries)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (!point_ok(&pts[i]))
			return -EINVAL;
	if (!node_alive(c, false))
		return -ENOTCONN;
	int rc = room_for(c, n);
	if (rc == -EAGAIN && !node_alive(c, true))
		return -ENOTCONN; /* a full ring may mean nobody is consuming it */
	if (rc != 0)
		return rc;
	uint64_t seq = c->next_seq;
	for (uint32_t i = 0; i < n; i++) {
		struct sl_ingest_wire_rec *r = &c->recs[(c->sub_head + i) & (c->ring_entries - 1)];
		r->batch_seq = seq;
		r->index = i;
		r->batch_count = n;
		r->ts = pts[i].ts;
		r->value = pts[i].value;
		r->key_len = pts[i].key_len;
		r->type = pts[i].type;
		memcpy(r->key, pts[i].key, pts[i].key_len);
	}
	/* One release store publishes the whole batch: the node sees all of it or none. */
	c->sub_head += n;
	atomic_store_explicit(&c->ctl->sub_head, c->sub_head, memory_order_release);
	c->next_seq++;
	c->in_flight++;
	if (batch_seq_out != NULL)
		*batch_seq_out = seq;
	return 0;
}

int sluice_poll_acks(struct sluice_client *c, struct sluice_ack *out, uint32_t max)
{
	if (c == NULL || (out == NULL && max > 0))
		return -EINVAL;
	uint64_t head = atomic_load_explicit(&c->ctl->comp_head, memory_order_acquire);
	uint64_t avail = head - c->comp_tail;
	if (avail > c->ring_entries)
		return -EPROTO;
	if (avail == 0)
		return node_alive(c, false) ? 0 : -ENOTCONN;
	uint32_t n = avail < max ? (uint32_t)avail : max;
	for (uint32_t i = 0; i < n; i++) {
		const struct sl_ingest_wire_ack *a =
		    &c->acks[(c->comp_tail + i) & (c->ring_entries - 1)];
		out[i] = (struct sluice_ack){a->batch_seq, a->status, a->count};
	}
	c->comp_tail += n;
	atomic_store_explicit(&c->ctl->comp_tail, c->comp_tail, memory_order_release);
	c->in_flight = c->in_flight > n ? c->in_flight - n : 0;
	return (int)n;
}

int sluice_capacity(const struct sluice_client *c) { return (int)c->ring_entries; }

uint64_t sluice_node_heartbeat(const struct sluice_client *c)
{
	return atomic_load_explicit(&c->hdr->heartbeat, memory_order_acquire);
}

void sluice_close(struct sluice_client *c)
{
	if (c == NULL)
		return;
	int32_t me = (int32_t)getpid();
	/* Draining, not free: the node still consumes published batches, then resets the
	 * indices before anyone else may claim the slot. */
	atomic_compare_exchange_strong_explicit(&c->ctl->owner_pid, &me, SL_INGEST_OWNER_DRAINING,
						memory_order_acq_rel, memory_order_relaxed);
	release(c);
}
