/* test_ingest.c - shared-memory ingest ring: libsluice client against the node side, in
 * one process and across fork(): round trips, all-or-nothing batches, back-pressure,
 * invalid points from honest and misbehaving clients, node death, slot recycling,
 * heartbeat, and 100k points with acks in order. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest.h"
#include "stats.h"
#include "sluice.h"

#define BIG_N 100000u
#define BATCH_MAX 64u

static char path[128];
static struct sl_ingest_rec recs[BATCH_MAX];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/dev/shm/sluice-test-ingest-%d.ingest", (int)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

/* Point j of a stream: everything derives from j so the node can check it. */
static char keys[100][32];
static void make_point(uint64_t j, struct sluice_point *p)
{
	int len =
	    snprintf(keys[j % 100], sizeof(keys[0]), "cpu.load,host=h%02u", (unsigned)(j % 100));
	p->key = keys[j % 100];
	p->key_len = (uint16_t)len;
	p->ts = (int64_t)j;
	p->type = (uint8_t)(1 + j % 4);
	p->value = p->type == SLUICE_BOOL ? (j / 4) & 1 : j * 3;
}

static bool rec_matches(const struct sl_ingest_rec *r, uint64_t j)
{
	struct sluice_point p;
	make_point(j, &p);
	return r->flags == 0 && r->ts == p.ts && r->type == p.type && r->value == p.value &&
	       r->key_len == p.key_len && memcmp(r->key, p.key, p.key_len) == 0;
}

/* A node with one client connected in this process. */
static void start_pair(uint32_t n_slots, uint32_t ring_entries, struct sl_ingest **ing,
		       struct sluice_client **c)
{
	assert_int_equal(sl_ingest_create(path, n_slots, ring_entries, ing), 0);
	assert_int_equal(sluice_connect(path, c), 0);
}

static void stop_pair(struct sl_ingest *ing, struct sluice_client *c)
{
	sluice_close(c);
	sl_ingest_destroy(ing, true);
}

static int find_slot(struct sl_ingest *ing, pid_t pid)
{
	for (uint32_t i = 0; i < sl_ingest_n_slots(ing); i++)
		if (sl_ingest_slot_owner(ing, i) == pid)
			return (int)i;
	return -1;
}

/* Node side of a stream: polls every slot, checks each record is the next point, acks
 * each batch when its last record arrives. */
struct node_check {
	uint64_t next_ts;
	uint64_t batches;
	uint32_t errors;
};

static int node_pump(struct sl_ingest *ing, struct node_check *nc)
{
	int total = 0;
	for (uint32_t s = 0; s < sl_ingest_n_slots(ing); s++) {
		int n = sl_ingest_poll(ing, s, recs, BATCH_MAX);
		if (n < 0) {
			nc->errors++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (!rec_matches(&recs[i], nc->next_ts))
				nc->errors++;
			nc->next_ts++;
			if (recs[i].index + 1 == recs[i].batch_count) {
				nc->batches++;
				/* Never -ENOBUFS: the client bounds batches in flight. */
				if (sl_ingest_ack(ing, s, recs[i].batch_seq, 0,
						  recs[i].batch_count) != 0)
					nc->errors++;
			}
		}
		total += n;
	}
	return total;
}

/* Client side of a stream: writes points 0..BIG_N-1 in batches of varying size and
 * checks acks arrive in order, one per batch, with the batch's size. */
struct client_run {
	uint64_t sent, acked_points, next_ack_seq, next_seq;
	uint32_t sizes[SL_INGEST_RING_MAX]; /* batch size by seq, mod capacity */
	uint32_t errors;
};

static uint32_t batch_size(uint64_t seq) { return 1 + (uint32_t)(seq * 37 % BATCH_MAX); }

static int client_step(struct sluice_client *c, struct client_run *cr)
{
	uint32_t cap = (uint32_t)sluice_capacity(c);
	if (cr->sent < BIG_N) {
		struct sluice_point pts[BATCH_MAX];
		uint32_t n = batch_size(cr->next_seq);
		if (n > BIG_N - cr->sent)
			n = (uint32_t)(BIG_N - cr->sent);
		for (uint32_t i = 0; i < n; i++)
			make_point(cr->sent + i, &pts[i]);
		uint64_t seq = 0;
		int rc = sluice_write(c, pts, n, &seq);
		if (rc == 0) {
			if (seq != cr->next_seq)
				cr->errors++;
			cr->sizes[seq % cap] = n;
			cr->sent += n;
			cr->next_seq++;
		} else if (rc != -EAGAIN) {
			return rc;
		}
	}
	struct sluice_ack acks[16];
	int n = sluice_poll_acks(c, acks, 16);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (acks[i].batch_seq != cr->next_ack_seq || acks[i].status != 0 ||
		    acks[i].count != cr->sizes[acks[i].batch_seq % cap])
			cr->errors++;
		cr->next_ack_seq++;
		cr->acked_points += acks[i].count;
	}
	return 0;
}

static void test_create_and_connect_errors(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c, *c2, *c3;
	assert_int_equal(sl_ingest_create(path, 2, 3, &ing), -EINVAL);
	assert_int_equal(sl_ingest_create(path, 0, 8, &ing), -EINVAL);
	assert_int_equal(sl_ingest_create(path, 1024, 65536, &ing), -EFBIG);
	assert_int_equal(sluice_connect(path, &c), -ENOENT);

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 100; i++)
		fputs("this is not an ingest segment. ", f);
	fclose(f);
	assert_int_equal(sluice_connect(path, &c), -EPROTO);

	assert_int_equal(sl_ingest_create(path, 2, 8, &ing), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint32_t v = SL_INGEST_VERSION + 1;
	assert_int_equal(pwrite(fd, &v, 4, offsetof(struct sl_ingest_hdr, version)), 4);
	assert_int_equal(sluice_connect(path, &c), -EPROTO);
	v = SL_INGEST_VERSION;
	assert_int_equal(pwrite(fd, &v, 4, offsetof(struct sl_ingest_hdr, version)), 4);
	close(fd);

	assert_int_equal(sluice_connect(path, &c), 0);
	assert_int_equal(sluice_connect(path, &c2), 0);
	assert_int_equal(sluice_connect(path, &c3), -EBUSY);
	assert_int_equal(sluice_capacity(c), 8);
	sluice_close(c2);
	/* Released but not yet recycled by the node: still taken. */
	assert_int_equal(sluice_connect(path, &c3), -EBUSY);
	assert_int_equal(sl_ingest_reap(ing), 1);
	assert_int_equal(sluice_connect(path, &c3), 0);
	sluice_close(c3);
	sluice_close(c);

	sl_ingest_destroy(ing, false); /* clean shutdown, file left behind */
	assert_int_equal(sluice_connect(path, &c), -ENOTCONN);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c;
	assert_int_equal(sl_ingest_create(path, 4, 16, &ing), 0);
	assert_int_not_equal(sl_ingest_generation(ing), 0);
	assert_int_equal(sluice_connect(path, &c), 0);
	int slot = find_slot(ing, getpid());
	assert_true(slot >= 0);

	struct sluice_point pts[3];
	for (int i = 0; i < 3; i++)
		make_point((uint64_t)i, &pts[i]);
	pts[0].value = sluice_f64(2.5);
	uint64_t seq = 0;
	assert_int_equal(sluice_write(c, pts, 3, &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(sl_ingest_poll(ing, (uint32_t)slot, recs, BATCH_MAX), 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(recs[i].batch_seq, 1);
		assert_int_equal(recs[i].index, i);
		assert_int_equal(recs[i].batch_count, 3);
		assert_int_equal(recs[i].flags, 0);
		assert_int_equal(recs[i].key_len, pts[i].key_len);
		assert_memory_equal(recs[i].key, pts[i].key, pts[i].key_len);
		assert_int_equal(recs[i].value, pts[i].value);
		assert_int_equal(recs[i].type, pts[i].type);
		assert_int_equal(recs[i].ts, pts[i].ts);
	}
	assert_int_equal(sl_ingest_poll(ing, (uint32_t)slot, recs, BATCH_MAX), 0);

	struct sluice_ack acks[4];
	assert_int_equal(sluice_poll_acks(c, acks, 4), 0);
	assert_int_equal(sl_ingest_ack(ing, (uint32_t)slot, 1, 0, 3), 0);
	assert_int_equal(sluice_poll_acks(c, acks, 4), 1);
	assert_int_equal(acks[0].batch_seq, 1);
	assert_int_equal(acks[0].status, 0);
	assert_int_equal(acks[0].count, 3);

	/* A key of exactly SLUICE_KEY_MAX bytes, and a NACK. */
	char long_key[SLUICE_KEY_MAX];
	memset(long_key, 'k', sizeof(long_key));
	pts[0].key = long_key;
	pts[0].key_len = SLUICE_KEY_MAX;
	assert_int_equal(sluice_write(c, pts, 1, &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(sl_ingest_poll(ing, (uint32_t)slot, recs, BATCH_MAX), 1);
	assert_int_equal(recs[0].flags, 0);
	assert_int_equal(recs[0].key_len, SLUICE_KEY_MAX);
	assert_memory_equal(recs[0].key, long_key, SLUICE_KEY_MAX);
	assert_int_equal(sl_ingest_ack(ing, (uint32_t)slot, 2, -EIO, 1), 0);
	assert_int_equal(sluice_poll_acks(c, acks, 4), 1);
	assert_int_equal(acks[0].status, -EIO);

	/* Other slots stay empty. */
	for (uint32_t s = 0; s < 4; s++)
		if ((int)s != slot)
			assert_int_equal(sl_ingest_poll(ing, s, recs, BATCH_MAX), 0);
	assert_int_equal(sl_ingest_poll(ing, 4, recs, BATCH_MAX), -EINVAL);
	stop_pair(ing, c);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_all_or_nothing_and_backpressure(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c;
	start_pair(1, 8, &ing, &c);
	struct sluice_point pts[8];
	for (int i = 0; i < 8; i++)
		make_point((uint64_t)i, &pts[i]);
	uint64_t seq = 0;
	assert_int_equal(sluice_write(c, pts, 5, &seq), 0);
	assert_int_equal(sluice_write(c, pts, 4, &seq), -EAGAIN); /* 3 free: none goes in */
	assert_int_equal(sluice_write(c, pts, 3, &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(sluice_write(c, pts, 1, &seq), -EAGAIN); /* ring full */
	assert_int_equal(sl_ingest_poll(ing, 0, recs, 2), 2);	  /* frees 2 */
	assert_int_equal(sluice_write(c, pts, 3, &seq), -EAGAIN);
	assert_int_equal(sluice_write(c, pts, 2, &seq), 0);
	assert_int_equal(seq, 3);
	/* Exactly batches 1 (5), 2 (3), 3 (2) arrive, each complete, nothing else. */
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 8);
	const uint32_t want_seq[8] = {1, 1, 1, 2, 2, 2, 3, 3};
	const uint32_t want_idx[8] = {2, 3, 4, 0, 1, 2, 0, 1};
	for (int i = 0; i < 8; i++) {
		assert_int_equal(recs[i].batch_seq, want_seq[i]);
		assert_int_equal(recs[i].index, want_idx[i]);
		assert_int_equal(recs[i].flags, 0);
	}
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 0);

	/* Batches awaiting acks are bounded by capacity, so the ack ring cannot overflow. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(sluice_write(c, pts, 1, &seq), 0);
	assert_int_equal(seq, 8);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 5);
	assert_int_equal(sluice_write(c, pts, 1, &seq), -EAGAIN); /* 8 in flight */
	for (uint64_t s = 1; s <= 8; s++)
		assert_int_equal(sl_ingest_ack(ing, 0, s, 0, 1), 0);
	assert_int_equal(sl_ingest_ack(ing, 0, 9, 0, 1), -ENOBUFS);
	struct sluice_ack acks[8];
	assert_int_equal(sluice_poll_acks(c, acks, 3), 3);
	assert_int_equal(acks[2].batch_seq, 3);
	assert_int_equal(sluice_write(c, pts, 1, &seq), 0);
	assert_int_equal(seq, 9);
	assert_int_equal(sluice_poll_acks(c, acks, 8), 5);
	assert_int_equal(acks[4].batch_seq, 8);
	stop_pair(ing, c);
}

static void test_invalid_points(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c;
	start_pair(1, 4, &ing, &c);
	struct sluice_point pts[5], bad;
	for (int i = 0; i < 5; i++)
		make_point((uint64_t)i, &pts[i]);
	uint64_t seq = 0;
	assert_int_equal(sluice_write(c, pts, 0, &seq), -EINVAL);
	assert_int_equal(sluice_write(c, pts, 5, &seq), -EINVAL); /* > capacity */
	assert_int_equal(sluice_write(c, NULL, 1, &seq), -EINVAL);
	struct sluice_point *p = &pts[1];
	bad = *p, p->key_len = 0;
	assert_int_equal(sluice_write(c, pts, 2, &seq), -EINVAL);
	*p = bad, p->key_len = SLUICE_KEY_MAX + 1;
	assert_int_equal(sluice_write(c, pts, 2, &seq), -EINVAL);
	*p = bad, p->key = NULL;
	assert_int_equal(sluice_write(c, pts, 2, &seq), -EINVAL);
	*p = bad, p->type = 0;
	assert_int_equal(sluice_write(c, pts, 2, &seq), -EINVAL);
	*p = bad, p->type = 5;
	assert_int_equal(sluice_write(c, pts, 2, &seq), -EINVAL);
	*p = bad, p->type = SLUICE_BOOL, p->value = 2;
	assert_int_equal(sluice_write(c, pts, 2, &seq), -EINVAL);
	*p = bad;
	/* Nothing was queued and no sequence number was used. */
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 0);
	assert_int_equal(sluice_write(c, pts, 2, &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 2);
	stop_pair(ing, c);
}

/* A misbehaving client writing the ring by hand: the node flags, never trusts. */
struct raw_client {
	uint8_t *base;
	size_t size;
	struct sl_ingest_slot_ctl *ctl;
	struct sl_ingest_wire_rec *recs;
	uint64_t head;
};

static void raw_open(struct raw_client *rc, uint32_t ring_entries)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	rc->size = (size_t)st.st_size;
	rc->base = mmap(NULL, rc->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(rc->base != MAP_FAILED);
	close(fd);
	rc->ctl = sl_ingest_slot_ctl(rc->base, ring_entries, 0);
	rc->recs = sl_ingest_slot_recs(rc->ctl);
	rc->head = 0;
	int32_t expect = 0;
	assert_true(atomic_compare_exchange_strong(&rc->ctl->owner_pid, &expect, getpid()));
}

static void raw_put(struct raw_client *rc, uint64_t seq, uint32_t index, uint32_t count,
		    uint16_t key_len, uint8_t type, uint64_t value)
{
	struct sl_ingest_wire_rec *r = &rc->recs[rc->head % 16];
	memset(r, 'x', sizeof(*r));
	r->batch_seq = seq;
	r->index = index;
	r->batch_count = count;
	r->ts = 1;
	r->key_len = key_len;
	r->type = type;
	r->value = value;
	rc->head++;
	atomic_store(&rc->ctl->sub_head, rc->head);
}

static void test_node_flags_bad_records(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	assert_int_equal(sl_ingest_create(path, 1, 16, &ing), 0);
	struct raw_client rc;
	raw_open(&rc, 16);
	raw_put(&rc, 1, 0, 3, 0, 1, 0);	  /* empty key */
	raw_put(&rc, 1, 1, 3, 300, 2, 0); /* key too long */
	raw_put(&rc, 1, 2, 3, 5, 9, 0);	  /* bad type */
	raw_put(&rc, 2, 0, 1, 5, 4, 7);	  /* bool 7 */
	raw_put(&rc, 3, 0, 0, 5, 1, 0);	  /* batch_count 0 */
	raw_put(&rc, 3, 4, 2, 5, 1, 0);	  /* index >= batch_count */
	raw_put(&rc, 2, 0, 1, 5, 1, 0);	  /* batch_seq not increasing */
	raw_put(&rc, 4, 0, 3, 5, 1, 0);	  /* fine, starts batch 4 */
	raw_put(&rc, 4, 2, 3, 5, 1, 0);	  /* skips index 1: batch 4 is abandoned */
	raw_put(&rc, 4, 1, 3, 5, 1, 0);	  /* so its late record belongs to nothing */
	raw_put(&rc, 5, 2, 3, 5, 1, 0);	  /* mid-batch start */
	raw_put(&rc, 4, 2, 3, 5, 1, 0);	  /* abandoned batch again */
	raw_put(&rc, 5, 0, 1, 5, 4, 1);	  /* fine */
	const uint8_t F = SL_INGEST_BAD_FRAMING;
	const uint8_t want[] = {
	    SL_INGEST_BAD_KEY, SL_INGEST_BAD_KEY, SL_INGEST_BAD_TYPE, SL_INGEST_BAD_VALUE, F, F, F,
	    0,		       F,		  F,		      F,		   F, 0,
	};
	/* starts (s) and ends (e) of well-framed batches: 1, 2, 4 (never ends), 5 */
	const char *se = "s. .. .e se .. .. .. s. .. .. .. .. se";
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), (int)sizeof(want));
	for (size_t i = 0; i < sizeof(want); i++) {
		assert_int_equal(recs[i].flags, want[i]);
		assert_int_equal(recs[i].starts_batch, se[3 * i] == 's');
		assert_int_equal(recs[i].ends_batch, se[3 * i + 1] == 'e');
	}
	assert_false(sl_ingest_batch_open(ing, 0));
	assert_int_equal(recs[1].key_len, 300); /* reported as sent; key copy was clamped */

	/* A head running beyond the ring is corrupt: nothing is consumed. */
	atomic_store(&rc.ctl->sub_head, rc.head + 1000);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), -EPROTO);
	/* A tail moved past the node's head makes the ack ring read as full. */
	atomic_store(&rc.ctl->comp_tail, 5);
	assert_int_equal(sl_ingest_ack(ing, 0, 1, 0, 1), -ENOBUFS);
	/* Once the client is gone, reaping repairs the slot. */
	atomic_store(&rc.ctl->owner_pid, SL_INGEST_OWNER_DRAINING);
	uint32_t epoch = sl_ingest_slot_epoch(ing, 0);
	assert_int_equal(sl_ingest_reap(ing), 1);
	assert_int_equal(sl_ingest_slot_epoch(ing, 0), epoch + 1);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 0);
	struct sluice_client *c;
	assert_int_equal(sluice_connect(path, &c), 0);
	struct sluice_point pt;
	make_point(0, &pt);
	uint64_t seq;
	assert_int_equal(sluice_write(c, &pt, 1, &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 1);
	assert_int_equal(recs[0].flags, 0); /* framing state was reset with the slot */
	sluice_close(c);
	munmap(rc.base, rc.size);
	sl_ingest_destroy(ing, true);
}

static uint8_t dec(struct sl_ingest_framing *f, uint64_t seq, uint32_t index, uint32_t count,
		   struct sl_ingest_rec *r)
{
	struct sl_ingest_wire_rec w = {
	    .batch_seq = seq, .index = index, .batch_count = count, .key_len = 1, .type = 1};
	sl_ingest_decode(f, 16, &w, (const uint8_t *)"k", r);
	return r->flags;
}

/* Batches a client leaves unfinished end (so the node can release what it holds for them),
 * and counts the node trusts are bounded by the ring. */
static void test_framing_abandons_unfinished_batches(void **state)
{
	(void)state;
	struct sl_ingest_framing f = {0};
	struct sl_ingest_rec r;
	assert_int_equal(dec(&f, 1, 0, 0, &r), SL_INGEST_BAD_FRAMING);	/* count 0 */
	assert_int_equal(dec(&f, 1, 0, 17, &r), SL_INGEST_BAD_FRAMING); /* beyond the ring */
	assert_int_equal(dec(&f, 1, 0, UINT32_MAX, &r), SL_INGEST_BAD_FRAMING);
	assert_false(sl_ingest_framing_open(&f));
	assert_int_equal(dec(&f, 7, 0, 3, &r), 0);
	assert_true(r.starts_batch && !r.ends_batch);
	assert_int_equal(dec(&f, 7, 1, 3, &r), 0);
	assert_true(sl_ingest_framing_open(&f));
	/* a new batch starts: 7 is abandoned, 8 accepted */
	assert_int_equal(dec(&f, 8, 0, 1, &r), 0);
	assert_true(r.starts_batch && r.ends_batch);
	assert_false(sl_ingest_framing_open(&f));
	assert_int_equal(dec(&f, 7, 2, 3, &r), SL_INGEST_BAD_FRAMING);
	/* the published head reached mid-batch: abandoned, with the points it lacks */
	assert_int_equal(dec(&f, 9, 0, 4, &r), 0);
	assert_int_equal(sl_ingest_framing_end(&f), 3);
	assert_int_equal(sl_ingest_framing_end(&f), 0);
	assert_int_equal(dec(&f, 9, 1, 4, &r), SL_INGEST_BAD_FRAMING);
	assert_int_equal(dec(&f, 9, 0, 1, &r), SL_INGEST_BAD_FRAMING); /* seq used */
	assert_int_equal(dec(&f, 10, 0, 16, &r), 0);			/* count = ring */
	assert_true(sl_ingest_framing_open(&f));

	/* Through a real ring: a batch cut by `max` stays open across polls, one published
	 * half stops being open at the head. */
	struct sl_ingest *ing;
	assert_int_equal(sl_ingest_create(path, 1, 16, &ing), 0);
	struct raw_client rc;
	raw_open(&rc, 16);
	for (uint32_t i = 0; i < 3; i++)
		raw_put(&rc, 1, i, 3, 5, 1, 0);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, 2), 2);
	assert_true(sl_ingest_batch_open(ing, 0));
	assert_int_equal(sl_ingest_poll(ing, 0, recs, 2), 1);
	assert_true(recs[0].ends_batch && recs[0].flags == 0);
	assert_false(sl_ingest_batch_open(ing, 0));
	raw_put(&rc, 2, 0, 3, 5, 1, 0);
	raw_put(&rc, 2, 1, 3, 5, 1, 0);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 2);
	assert_false(sl_ingest_batch_open(ing, 0));
	raw_put(&rc, 2, 2, 3, 5, 1, 0); /* the rest, published later, belongs to nothing */
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 1);
	assert_int_equal(recs[0].flags, SL_INGEST_BAD_FRAMING);
	munmap(rc.base, rc.size);
	sl_ingest_destroy(ing, true);
}

static void test_heartbeat(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c;
	start_pair(1, 4, &ing, &c);
	uint64_t h0 = sluice_node_heartbeat(c);
	for (int i = 0; i < 3; i++)
		sl_ingest_heartbeat(ing);
	assert_int_equal(sluice_node_heartbeat(c), h0 + 3);
	stop_pair(ing, c);
}

/* Writes single points until the client reports the node gone; must happen by the time
 * the ring is full. */
static void expect_notconn(struct sluice_client *c)
{
	struct sluice_point pt;
	make_point(0, &pt);
	int rc = 0;
	for (int i = 0; i <= sluice_capacity(c) && rc == 0; i++)
		rc = sluice_write(c, &pt, 1, NULL);
	assert_int_equal(rc, -ENOTCONN);
	assert_int_equal(sluice_write(c, &pt, 1, NULL), -ENOTCONN); /* sticky */
	struct sluice_ack acks[1];
	assert_int_equal(sluice_poll_acks(c, acks, 1), -ENOTCONN);
}

static void test_node_gone(void **state)
{
	(void)state;
	/* Clean shutdown: immediate. */
	struct sl_ingest *ing, *ing2;
	struct sluice_client *c;
	start_pair(1, 4, &ing, &c);
	sl_ingest_destroy(ing, true);
	struct sluice_point pt;
	make_point(0, &pt);
	assert_int_equal(sluice_write(c, &pt, 1, NULL), -ENOTCONN);
	sluice_close(c);

	/* A second node never takes the segment of a live one, even a hung one; the probe
	 * names the holder. */
	start_pair(1, 4, &ing, &c);
	assert_int_equal(sl_ingest_create(path, 1, 4, &ing2), -EBUSY);
	int32_t holder = 0;
	assert_int_equal(sl_shm_file_probe(path, &holder), -EBUSY);
	assert_int_equal(holder, (int32_t)getpid());
	assert_int_equal(sluice_write(c, &pt, 1, NULL), 0); /* still served */
	/* Replaced behind the node's back (by hand): the client notices. */
	char path2[sizeof(path) + 8];
	snprintf(path2, sizeof(path2), "%s.new", path);
	assert_int_equal(sl_ingest_create(path2, 1, 4, &ing2), 0);
	assert_int_not_equal(sl_ingest_generation(ing), sl_ingest_generation(ing2));
	assert_int_equal(rename(path2, path), 0);
	expect_notconn(c);
	sluice_close(c);
	sl_ingest_destroy(ing, true); /* must not remove ing2's file */
	assert_int_equal(access(path, F_OK), 0);
	sl_ingest_destroy(ing2, true);
	unlink(path);

	/* The node process crashes. */
	int to_node[2], from_node[2];
	assert_int_equal(pipe(to_node), 0);
	assert_int_equal(pipe(from_node), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char b = 0;
		if (sl_ingest_create(path, 1, 4, &ing) != 0)
			_exit(1);
		if (write(from_node[1], &b, 1) != 1 || read(to_node[0], &b, 1) != 1)
			_exit(2);
		_exit(0); /* no destroy: the segment says running, the pid is gone */
	}
	char b = 0;
	assert_int_equal(read(from_node[0], &b, 1), 1);
	assert_int_equal(sluice_connect(path, &c), 0);
	assert_int_equal(sluice_write(c, &pt, 1, NULL), 0);
	assert_int_equal(write(to_node[1], &b, 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	expect_notconn(c);
	sluice_close(c);
	assert_int_equal(sluice_connect(path, &c), -ENOTCONN);
	for (int i = 0; i < 2; i++) {
		close(to_node[i]);
		close(from_node[i]);
	}
}

static void test_slot_reclaimed_after_client_death(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c;
	assert_int_equal(sl_ingest_create(path, 1, 8, &ing), 0);
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sluice_point pts[2];
		make_point(0, &pts[0]);
		make_point(1, &pts[1]);
		char b = 0;
		if (sluice_connect(path, &c) != 0 || sluice_write(c, pts, 2, NULL) != 0 ||
		    write(ready[1], &b, 1) != 1)
			_exit(1);
		for (;;)
			pause(); /* dies holding the slot */
	}
	char b;
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(sl_ingest_slot_owner(ing, 0), pid);
	assert_int_equal(sluice_connect(path, &c), -EBUSY);
	assert_int_equal(sl_ingest_reap(ing), 0); /* alive */
	kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	uint32_t epoch = sl_ingest_slot_epoch(ing, 0);
	/* Its published batch is still data: the slot drains first, then frees. */
	assert_int_equal(sl_ingest_reap(ing), 0);
	assert_int_equal(sl_ingest_slot_owner(ing, 0), SL_INGEST_OWNER_DRAINING);
	assert_int_equal(sluice_connect(path, &c), -EBUSY);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 2);
	assert_int_equal(sl_ingest_ack(ing, 0, 1, 0, 2), -ENOTCONN);
	assert_int_equal(sl_ingest_reap(ing), 1);
	assert_int_equal(sl_ingest_slot_owner(ing, 0), 0);
	assert_int_equal(sl_ingest_slot_epoch(ing, 0), epoch + 1);

	assert_int_equal(sluice_connect(path, &c), 0);
	struct sluice_point pt;
	make_point(5, &pt);
	uint64_t seq;
	assert_int_equal(sluice_write(c, &pt, 1, &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(sl_ingest_poll(ing, 0, recs, BATCH_MAX), 1);
	assert_true(rec_matches(&recs[0], 5));
	assert_int_equal(sl_ingest_ack(ing, 0, 1, 0, 1), 0);
	struct sluice_ack ack;
	assert_int_equal(sluice_poll_acks(c, &ack, 1), 1);
	assert_int_equal(ack.batch_seq, 1);
	sluice_close(c);
	close(ready[0]);
	close(ready[1]);
	sl_ingest_destroy(ing, true);
}

/* The node's workers make no system call per slot: the liveness half of reaping (kill(2)
 * on the owner) runs on the main lcore, the worker only resets a slot already marked
 * draining. So the worker half alone never frees a dead client's slot. */
static void test_reap_split_worker_makes_no_liveness_check(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c;
	assert_int_equal(sl_ingest_create(path, 1, 8, &ing), 0);
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char b = 0;
		if (sluice_connect(path, &c) != 0 || write(ready[1], &b, 1) != 1)
			_exit(1);
		for (;;)
			pause(); /* dies holding the slot */
	}
	char b;
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(sl_ingest_check_owner(ing, 0), 0); /* alive */
	kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* the worker's half: the owner is dead, but it does not look: nothing changes */
	assert_int_equal(sl_ingest_reset_drained(ing, 0), 0);
	assert_int_equal(sl_ingest_slot_owner(ing, 0), pid);
	/* housekeeping's half marks it draining (once), then the worker's resets it */
	assert_int_equal(sl_ingest_check_owner(ing, 0), 1);
	assert_int_equal(sl_ingest_slot_owner(ing, 0), SL_INGEST_OWNER_DRAINING);
	assert_int_equal(sl_ingest_check_owner(ing, 0), 0);
	assert_int_equal(sl_ingest_reset_drained(ing, 0), 1);
	assert_int_equal(sl_ingest_slot_owner(ing, 0), 0);
	assert_int_equal(sl_ingest_check_owner(ing, 1), -EINVAL);
	assert_int_equal(sl_ingest_reset_drained(ing, 1), -EINVAL);
	close(ready[0]);
	close(ready[1]);
	sl_ingest_destroy(ing, true);
}

static void test_100k_one_process(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	struct sluice_client *c;
	start_pair(2, 128, &ing, &c);
	static struct client_run cr;
	memset(&cr, 0, sizeof(cr));
	cr.next_seq = cr.next_ack_seq = 1;
	struct node_check nc = {0};
	for (uint32_t it = 0; it < 10 * BIG_N && cr.acked_points < BIG_N; it++) {
		assert_int_equal(client_step(c, &cr), 0);
		/* Let the ring fill now and then, to exercise wrap-around and -EAGAIN. */
		if (it % 3 != 0)
			node_pump(ing, &nc);
	}
	assert_int_equal(cr.acked_points, BIG_N);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(nc.errors, 0);
	assert_int_equal(nc.next_ts, BIG_N);
	assert_int_equal(nc.batches, cr.next_seq - 1);
	stop_pair(ing, c);
}

static void test_100k_across_fork(void **state)
{
	(void)state;
	struct sl_ingest *ing;
	assert_int_equal(sl_ingest_create(path, 4, 256, &ing), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(30); /* a hung test dies loudly instead of blocking the suite */
		static struct client_run cr;
		struct sluice_client *c;
		if (sluice_connect(path, &c) != 0)
			_exit(1);
		cr.next_seq = cr.next_ack_seq = 1;
		for (uint64_t it = 0; it < 100000000u && cr.acked_points < BIG_N; it++)
			if (client_step(c, &cr) != 0)
				_exit(2);
		sluice_close(c);
		_exit(cr.acked_points != BIG_N ? 3 : cr.errors != 0 ? 4 : 0);
	}
	struct node_check nc = {0};
	int status = 0;
	pid_t done = 0;
	for (uint64_t it = 0; it < 100000000u && done == 0; it++) {
		if (node_pump(ing, &nc) == 0) {
			done = waitpid(pid, &status, WNOHANG);
			sched_yield();
		}
	}
	if (done == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("client did not finish");
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(nc.errors, 0);
	assert_int_equal(nc.next_ts, BIG_N);
	assert_int_equal(sl_ingest_reap(ing), 1); /* the client closed: recycled */
	sl_ingest_destroy(ing, true);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_create_and_connect_errors),
	    T(test_round_trip),
	    T(test_all_or_nothing_and_backpressure),
	    T(test_invalid_points),
	    T(test_node_flags_bad_records),
	    T(test_framing_abandons_unfinished_batches),
	    T(test_heartbeat),
	    T(test_node_gone),
	    T(test_slot_reclaimed_after_client_death),
	    T(test_reap_split_worker_makes_no_liveness_check),
	    T(test_100k_one_process),
	    T(test_100k_across_fork),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
