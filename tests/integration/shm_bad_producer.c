/* shm_bad_producer.c - integration-test client that writes raw, malformed records into its
 * own slot of a running sluiced's shm ingest ring (what a buggy or hostile producer can do),
 * checks the ack of every well-framed batch, then writes valid batches through libsluice and
 * requires them acknowledged as stored: the node must survive, release every pending batch
 * and keep ingesting. Prints the counters the node must show. Bounded by --timeout. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest_format.h"
#include "sluice.h"

/* What the ack of a well-framed batch must say, by the kind of batch. */
enum kind { K_NONE = 0, K_ABANDONED, K_HALF_BAD, K_ALL_BAD, K_GOOD, K_REFUSED };

struct raw {
	uint8_t *base;
	size_t size;
	uint32_t entries;
	pid_t node_pid;
	struct sl_ingest_slot_ctl *ctl;
	struct sl_ingest_wire_rec *recs;
	struct sl_ingest_wire_ack *acks;
	uint64_t head, comp_tail, seq;
	uint64_t in_flight; /* well-framed batches whose ack has not arrived */
	uint8_t *kind_of;   /* by batch_seq */
	uint64_t kind_cap;
	uint64_t acks_ok, acks_bad_status;
};

static double deadline;
static const char *key_prefix = "shmbad"; /* per mode: a series keeps its first type */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "shm_bad_producer: %s\n", what);
	exit(1);
}

static void raw_open(struct raw *r, const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		die("cannot open the ingest segment");
	r->size = (size_t)st.st_size;
	r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (r->base == MAP_FAILED)
		die("mmap");
	const struct sl_ingest_hdr *h = (const void *)r->base;
	if (h->magic != SL_INGEST_MAGIC || !sl_ingest_geometry_ok(h->n_slots, h->ring_entries) ||
	    sl_ingest_file_size(h->n_slots, h->ring_entries) != r->size)
		die("not an ingest segment");
	r->entries = h->ring_entries;
	r->node_pid = h->node_pid;
	for (uint32_t i = 0; i < h->n_slots; i++) {
		struct sl_ingest_slot_ctl *ctl = sl_ingest_slot_ctl(r->base, r->entries, i);
		int32_t expect = SL_INGEST_OWNER_FREE;
		if (atomic_compare_exchange_strong(&ctl->owner_pid, &expect, (int32_t)getpid())) {
			r->ctl = ctl;
			r->recs = sl_ingest_slot_recs(ctl);
			r->acks = sl_ingest_slot_acks(ctl, r->entries);
			r->head = atomic_load(&ctl->sub_head);
			r->comp_tail = atomic_load(&ctl->comp_tail);
			return;
		}
	}
	die("no free slot");
}

static void poll_acks(struct raw *r)
{
	uint64_t head = atomic_load_explicit(&r->ctl->comp_head, memory_order_acquire);
	if (head - r->comp_tail > r->entries)
		die("corrupt completion ring");
	for (; r->comp_tail != head; r->comp_tail++) {
		const struct sl_ingest_wire_ack *a = &r->acks[r->comp_tail & (r->entries - 1)];
		uint8_t k = a->batch_seq < r->kind_cap ? r->kind_of[a->batch_seq] : K_NONE;
		bool ok = (k == K_ABANDONED && a->status == -EPROTO && a->count == 2) ||
			  (k == K_HALF_BAD && a->status == -EINVAL && a->count == 1) ||
			  (k == K_ALL_BAD && a->status == -EINVAL && a->count == 0) ||
			  (k == K_GOOD && a->status == 0 && a->count == 1) ||
			  (k == K_REFUSED && a->status == -EIO && a->count == 0);
		if (!ok) {
			fprintf(stderr, "shm_bad_producer: ack seq %llu kind %u: status %d count %u\n",
				(unsigned long long)a->batch_seq, k, a->status, a->count);
			r->acks_bad_status++;
		} else {
			r->acks_ok++;
		}
		if (k != K_NONE)
			r->kind_of[a->batch_seq] = K_NONE; /* one ack per batch */
		r->in_flight--;
	}
	atomic_store_explicit(&r->ctl->comp_tail, r->comp_tail, memory_order_release);
}

/* Waits (bounded) until the rings have room for n records and `batches` more acks. */
static void wait_room(struct raw *r, uint32_t n, uint32_t batches)
{
	while (r->head - atomic_load_explicit(&r->ctl->sub_tail, memory_order_acquire) + n >
		   r->entries ||
	       r->in_flight + batches > r->entries) {
		poll_acks(r);
		if (kill(r->node_pid, 0) != 0 && errno == ESRCH)
			die("sluiced is gone");
		if (now_s() > deadline)
			die("timeout: the node stopped consuming records or acknowledging batches");
		usleep(100);
	}
}

static void put(struct raw *r, uint64_t seq, uint32_t index, uint32_t count, uint16_t key_len,
		uint8_t type, uint64_t value)
{
	struct sl_ingest_wire_rec *w = &r->recs[r->head & (r->entries - 1)];
	memset(w, 0, sizeof(*w));
	w->batch_seq = seq;
	w->index = index;
	w->batch_count = count;
	w->ts = (int64_t)seq;
	w->value = value;
	w->key_len = key_len;
	w->type = type;
	snprintf((char *)w->key, sizeof(w->key), "%s,k=%llu v", key_prefix,
		 (unsigned long long)(seq % 7));
	r->head++;
}

/* A well-framed batch whose ack is checked. */
static uint64_t framed(struct raw *r, enum kind k)
{
	uint64_t s = ++r->seq;
	if (s >= r->kind_cap)
		die("kind table too small");
	r->kind_of[s] = (uint8_t)k;
	r->in_flight++;
	return s;
}

static void publish(struct raw *r)
{
	atomic_store_explicit(&r->ctl->sub_head, r->head, memory_order_release);
}

#define KEYLEN 12 /* strlen("shmbad,k=N v"), strlen("shmjnk,k=N v") */

/* Kinds that leaked a pending handle (or were acknowledged for a replay): each round
 * leaves a batch unfinished, starts one with an absurd count, replays a seq, and sends a
 * partly and a wholly rejected batch and a good one. */
static void round_leaks(struct raw *r, uint64_t *stray)
{
	wait_room(r, 9, 4);
	uint64_t s = framed(r, K_HALF_BAD);
	put(r, s, 0, 2, KEYLEN, SL_TYPE_F64, 0);
	put(r, s, 1, 2, 300, SL_TYPE_F64, 0); /* key_len beyond the record */
	s = framed(r, K_ALL_BAD);
	put(r, s, 0, 1, KEYLEN, 9, 0);
	put(r, ++r->seq, 0, UINT32_MAX, KEYLEN, SL_TYPE_F64, 0); /* absurd count */
	put(r, r->seq - 1, 0, 1, KEYLEN, SL_TYPE_F64, 0);	 /* replayed seq */
	*stray += 2;
	s = framed(r, K_GOOD);
	put(r, s, 0, 1, KEYLEN, SL_TYPE_F64, 0);
	s = framed(r, K_ABANDONED); /* two of three records, then the head */
	put(r, s, 0, 3, KEYLEN, SL_TYPE_F64, 0);
	put(r, s, 1, 3, KEYLEN, SL_TYPE_F64, 0);
	publish(r);
}

/* Records no batch can hold, and points no store can take. */
static void round_junk(struct raw *r, uint64_t *stray)
{
	wait_room(r, 8, 3);
	put(r, ++r->seq, 0, 0, KEYLEN, SL_TYPE_F64, 0);	      /* batch_count 0 */
	put(r, ++r->seq, 5, 2, KEYLEN, SL_TYPE_F64, 0);	      /* index beyond the count */
	put(r, ++r->seq, 0, r->entries + 1, KEYLEN, SL_TYPE_F64, 0); /* more than the ring */
	put(r, ++r->seq, 1, 1, KEYLEN, SL_TYPE_F64, 0);	      /* mid-batch, no start */
	*stray += 4;
	uint64_t s = framed(r, K_HALF_BAD);
	put(r, s, 0, 2, 0xffff, 200, 0); /* key and type both bad */
	put(r, s, 1, 2, KEYLEN, SL_TYPE_BOOL, 1);
	s = framed(r, K_ALL_BAD);
	put(r, s, 0, 1, KEYLEN, SL_TYPE_BOOL, 7); /* bool 7 */
	s = framed(r, K_GOOD);
	put(r, s, 0, 1, KEYLEN, SL_TYPE_BOOL, 0);
	publish(r);
}

/* After a WAL failure: valid batches, each refused with -EIO (and its handle released). */
static void round_refused(struct raw *r)
{
	wait_room(r, 2, 1);
	uint64_t s = framed(r, K_REFUSED);
	put(r, s, 0, 2, KEYLEN, SL_TYPE_F64, 0);
	put(r, s, 1, 2, KEYLEN, SL_TYPE_F64, 1);
	publish(r);
}

/* Valid batches through the real client library, all acknowledged as stored. */
static int write_good(const char *path, uint32_t batches)
{
	struct sluice_client *c;
	int rc = sluice_connect(path, &c);
	if (rc != 0) {
		fprintf(stderr, "shm_bad_producer: connect: %s\n", strerror(-rc));
		return 1;
	}
	struct sluice_point pts[20];
	char keys[20][32];
	uint32_t sent = 0, acked = 0;
	while (acked < batches) {
		if (now_s() > deadline) {
			fprintf(stderr, "shm_bad_producer: timeout: %u/%u valid batches acked\n",
				acked, batches);
			return 1;
		}
		if (sent < batches) {
			for (uint32_t k = 0; k < 20; k++) {
				int n = snprintf(keys[k], 32, "shmgood,h=%u v", k);
				pts[k] = (struct sluice_point){.key = keys[k],
							       .key_len = (uint16_t)n,
							       .ts = (int64_t)(sent * 20 + k),
							       .type = SLUICE_I64,
							       .value = sent};
			}
			rc = sluice_write(c, pts, 20, NULL);
			if (rc == 0)
				sent++;
			else if (rc != -EAGAIN) {
				fprintf(stderr, "shm_bad_producer: write: %s\n", strerror(-rc));
				return 1;
			}
		}
		struct sluice_ack acks[64];
		int got = sluice_poll_acks(c, acks, 64);
		if (got < 0) {
			fprintf(stderr, "shm_bad_producer: acks: %s\n", strerror(-got));
			return 1;
		}
		for (int i = 0; i < got; i++) {
			if (acks[i].status != 0 || acks[i].count != 20) {
				fprintf(stderr, "shm_bad_producer: valid batch nacked: %d (%u)\n",
					acks[i].status, acks[i].count);
				return 1;
			}
			acked++;
		}
		if (got == 0)
			usleep(100);
	}
	sluice_close(c);
	printf("valid_batches_acked %u\n", acked);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *mode = "leaks";
	uint64_t rounds = 1000;
	uint32_t good = 50;
	double timeout_s = 120;
	static const struct option opts[] = {{"path", required_argument, 0, 'p'},
					     {"mode", required_argument, 0, 'm'},
					     {"rounds", required_argument, 0, 'r'},
					     {"good", required_argument, 0, 'g'},
					     {"timeout", required_argument, 0, 't'},
					     {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "p:m:r:g:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': path = optarg; break;
		case 'm': mode = optarg; break;
		case 'r': rounds = strtoull(optarg, NULL, 10); break;
		case 'g': good = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 't': timeout_s = strtod(optarg, NULL); break;
		default:
			fprintf(stderr, "usage: shm_bad_producer --path SHM [--mode leaks|junk|refused] "
					"[--rounds N] [--good N] [--timeout SEC]\n");
			return 2;
		}
	}
	bool leaks = strcmp(mode, "leaks") == 0, junk = strcmp(mode, "junk") == 0;
	bool refused = strcmp(mode, "refused") == 0;
	if (path == NULL || !(leaks || junk || refused))
		die("--path SHM and --mode leaks|junk|refused");
	deadline = now_s() + timeout_s;
	if (!leaks)
		key_prefix = junk ? "shmjnk" : "shmref";
	struct raw r = {0};
	raw_open(&r, path);
	r.kind_cap = rounds * 8 + 16;
	r.kind_of = calloc(r.kind_cap, 1);
	if (r.kind_of == NULL)
		die("out of memory");
	uint64_t stray = 0;
	for (uint64_t i = 0; i < rounds; i++) {
		if (leaks)
			round_leaks(&r, &stray);
		else if (junk)
			round_junk(&r, &stray);
		else
			round_refused(&r);
	}
	wait_room(&r, (uint32_t)r.entries, (uint32_t)r.entries); /* every ack is back */
	/* Release the slot the way libsluice does: the node drains and frees it. */
	int32_t me = (int32_t)getpid();
	atomic_compare_exchange_strong(&r.ctl->owner_pid, &me, SL_INGEST_OWNER_DRAINING);
	printf("mode %s rounds %llu stray_records %llu acks_checked %llu acks_wrong %llu\n", mode,
	       (unsigned long long)rounds, (unsigned long long)stray,
	       (unsigned long long)r.acks_ok, (unsigned long long)r.acks_bad_status);
	if (r.acks_bad_status != 0)
		return 1;
	return good > 0 ? write_good(path, good) : 0;
}
