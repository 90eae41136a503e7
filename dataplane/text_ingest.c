/* text_ingest.c - writers that gather points in chunks for in-process ingest
 * (text_ingest.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "local_ingest.h"
#include "node.h"
#include "text_ingest.h"

#define CHUNK_POINTS 8192u
#define CHUNK_ARENA (1u << 20) /* key and string bytes of one chunk */
#define FREE_MAX 64u	       /* chunks kept for reuse */
#define ABANDONED_MAX 256u     /* unwatched chunks in flight before fire-and-forget waits */

_Static_assert(CHUNK_ARENA >= SL_LP_SCRATCH_BYTES(SL_LP_LINE_MAX) + SL_KEY_MAX + SL_STR_MAX,
	       "a chunk holds the longest line's scratch");
_Static_assert(CHUNK_POINTS >= SL_LP_MAX_FIELDS, "a chunk holds a line's fields");

struct ti_chunk {
	struct sl_local_batch b;
	struct ti_chunk *next;
	size_t used;
	uint32_t n;
	struct sl_point pts[CHUNK_POINTS];
	char arena[CHUNK_ARENA];
};

static pthread_mutex_t ti_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ti_chunk *ti_free; /* under ti_lock */
static unsigned ti_n_free;
static struct ti_chunk *ti_abandoned; /* under ti_lock */
static _Atomic unsigned ti_n_abandoned;
static _Atomic unsigned ti_rr; /* the core the next chunk goes to */

static struct {
	_Atomic uint64_t chunks, points, stored, refused, storage_errors, timeouts,
		queue_full_waits, chunks_abandoned;
} ti_cnt;

void sl_ti_counters(struct sl_ti_counters *o)
{
	o->chunks = atomic_load(&ti_cnt.chunks);
	o->points = atomic_load(&ti_cnt.points);
	o->stored = atomic_load(&ti_cnt.stored);
	o->refused = atomic_load(&ti_cnt.refused);
	o->storage_errors = atomic_load(&ti_cnt.storage_errors);
	o->timeouts = atomic_load(&ti_cnt.timeouts);
	o->queue_full_waits = atomic_load(&ti_cnt.queue_full_waits);
	o->chunks_abandoned = atomic_load(&ti_cnt.chunks_abandoned);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits between looks at an answer: from 50 us, doubling up to 1 ms. An answer comes
 * after a WAL fdatasync (a millisecond or more), so shorter naps only burned wake-ups (a
 * few % of sluiced's CPU under load, perf/README.md). */
static void nap(unsigned *us)
{
	struct timespec ts = {0, (long)*us * 1000};
	nanosleep(&ts, NULL);
	if (*us < 1000)
		*us *= 2;
}

static struct ti_chunk *chunk_get(void)
{
	pthread_mutex_lock(&ti_lock);
	struct ti_chunk *c = ti_free;
	if (c != NULL) {
		ti_free = c->next;
		ti_n_free--;
	}
	pthread_mutex_unlock(&ti_lock);
	if (c == NULL)
		c = malloc(sizeof(*c));
	if (c != NULL) {
		c->next = NULL;
		c->used = 0;
		c->n = 0;
	}
	return c;
}

static void chunk_put(struct ti_chunk *c)
{
	pthread_mutex_lock(&ti_lock);
	if (ti_n_free < FREE_MAX) {
		c->next = ti_free;
		ti_free = c;
		ti_n_free++;
		c = NULL;
	}
	pthread_mutex_unlock(&ti_lock);
	free(c);
}

/* Nobody waits for c any more: it is freed once answered. */
static void chunk_abandon(struct ti_chunk *c)
{
	pthread_mutex_lock(&ti_lock);
	c->next = ti_abandoned;
	ti_abandoned = c;
	atomic_fetch_add(&ti_n_abandoned, 1);
	pthread_mutex_unlock(&ti_lock);
}

static bool chunk_done(const struct ti_chunk *c)
{
	return atomic_load_explicit(&c->b.done, memory_order_acquire) != 0;
}

static void account(struct sl_ti_writer *wr, const struct ti_chunk *c)
{
	uint32_t refused = c->b.status == -EINVAL ? c->n - c->b.stored : 0;
	atomic_fetch_add(&ti_cnt.stored, c->b.stored);
	atomic_fetch_add(&ti_cnt.refused, refused);
	if (wr != NULL) {
		wr->stored += c->b.stored;
		wr->refused += refused;
	}
	if (c->b.status != 0 && c->b.status != -EINVAL) {
		atomic_fetch_add(&ti_cnt.storage_errors, 1);
		if (wr != NULL && wr->error == 0)
			wr->error = -EIO;
	}
}

void sl_ti_reap(void)
{
	if (atomic_load_explicit(&ti_n_abandoned, memory_order_relaxed) == 0)
		return;
	struct ti_chunk *done = NULL;
	pthread_mutex_lock(&ti_lock);
	for (struct ti_chunk **pp = &ti_abandoned; *pp != NULL;) {
		struct ti_chunk *c = *pp;
		if (chunk_done(c)) {
			*pp = c->next;
			c->next = done;
			done = c;
			atomic_fetch_sub(&ti_n_abandoned, 1);
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&ti_lock);
	while (done != NULL) {
		struct ti_chunk *c = done;
		done = c->next;
		account(NULL, c);
		chunk_put(c);
	}
}

void sl_ti_begin(struct sl_ti_writer *wr, struct sl_node *n, uint64_t timeout_ns, bool wait)
{
	memset(wr, 0, sizeof(*wr));
	wr->node = n;
	wr->wait = wait;
	wr->deadline_ns = timeout_ns ? mono_ns() + timeout_ns : 0;
}

static bool past_deadline(const struct sl_ti_writer *wr)
{
	return wr->deadline_ns != 0 && mono_ns() >= wr->deadline_ns;
}

/* Gives up on everything in flight: answered later, freed by sl_ti_reap. */
static void writer_timeout(struct sl_ti_writer *wr)
{
	for (unsigned i = 0; i < wr->n_inflight; i++) {
		chunk_abandon(wr->inflight[i]);
		atomic_fetch_add(&ti_cnt.chunks_abandoned, 1);
	}
	wr->n_inflight = 0;
	if (wr->error == 0) {
		wr->error = -ETIMEDOUT;
		atomic_fetch_add(&ti_cnt.timeouts, 1);
	}
}

/* Waits for the oldest chunk in flight; false on the deadline (the writer timed out). */
static bool wait_oldest(struct sl_ti_writer *wr)
{
	struct ti_chunk *c = wr->inflight[0];
	unsigned us = 50;
	while (!chunk_done(c)) {
		if (past_deadline(wr)) {
			writer_timeout(wr);
			return false;
		}
		nap(&us);
	}
	account(wr, c);
	chunk_put(c);
	memmove(&wr->inflight[0], &wr->inflight[1], (wr->n_inflight - 1) * sizeof(wr->inflight[0]));
	wr->n_inflight--;
	return true;
}

/* Hands the filling chunk to a worker core (another core when one's queue is full). */
static int submit(struct sl_ti_writer *wr)
{
	struct ti_chunk *c = wr->cur;
	wr->cur = NULL;
	if (c->n == 0) {
		chunk_put(c);
		return 0;
	}
	if (wr->wait && wr->n_inflight == SL_TI_INFLIGHT && !wait_oldest(wr)) {
		chunk_put(c);
		return wr->error;
	}
	if (!wr->wait) { /* fire and forget, yet bounded: wait for room */
		unsigned us = 50;
		while (atomic_load(&ti_n_abandoned) >= ABANDONED_MAX) {
			sl_ti_reap();
			if (past_deadline(wr)) {
				chunk_put(c);
				return wr->error = -ETIMEDOUT;
			}
			nap(&us);
		}
	}
	c->b.pts = c->pts;
	c->b.n = c->n;
	unsigned workers = sl_node_workers(wr->node);
	unsigned us = 50;
	for (;;) {
		unsigned core = atomic_fetch_add(&ti_rr, 1);
		int rc = -EAGAIN;
		for (unsigned k = 0; k < workers && rc == -EAGAIN; k++)
			rc = sl_node_local_submit(wr->node, core + k, &c->b);
		if (rc == 0)
			break;
		if (rc != -EAGAIN || past_deadline(wr)) {
			chunk_put(c);
			if (wr->error == 0)
				wr->error = rc == -EAGAIN ? -ETIMEDOUT : rc;
			return wr->error;
		}
		atomic_fetch_add(&ti_cnt.queue_full_waits, 1);
		nap(&us);
	}
	atomic_fetch_add(&ti_cnt.chunks, 1);
	atomic_fetch_add(&ti_cnt.points, c->n);
	wr->points += c->n;
	if (wr->wait)
		wr->inflight[wr->n_inflight++] = c;
	else
		chunk_abandon(c);
	return 0;
}

/* A chunk with room for `pts` points and `bytes` bytes (the current one or a new one). */
static struct ti_chunk *room(struct sl_ti_writer *wr, uint32_t pts, size_t bytes)
{
	if (wr->cur != NULL &&
	    (CHUNK_POINTS - wr->cur->n < pts || CHUNK_ARENA - wr->cur->used < bytes) &&
	    submit(wr) != 0)
		return NULL;
	if (wr->cur == NULL) {
		wr->cur = chunk_get();
		if (wr->cur == NULL) {
			if (wr->error == 0)
				wr->error = -ENOMEM;
			return NULL;
		}
	}
	return wr->cur;
}

static size_t align8(size_t v) { return (v + 7) & ~(size_t)7; }

int sl_ti_add(struct sl_ti_writer *wr, const struct sl_point *pt)
{
	if (wr->error)
		return wr->error;
	size_t str = pt->type == SL_VAL_STR ? pt->str_len : 0;
	struct ti_chunk *c = room(wr, 1, align8(pt->key_len + str));
	if (c == NULL)
		return wr->error;
	struct sl_point *p = &c->pts[c->n++];
	*p = *pt;
	char *at = c->arena + c->used;
	memcpy(at, pt->key, pt->key_len);
	p->key = at;
	if (pt->type == SL_VAL_STR) {
		if (str)
			memcpy(at + pt->key_len, pt->str, str);
		p->str = at + pt->key_len;
	}
	c->used += align8(pt->key_len + str);
	return 0;
}

int sl_ti_add_line(struct sl_ti_writer *wr, const char *text, size_t len,
		   const struct sl_lp_opts *opts, struct sl_lp_line *line)
{
	if (wr->error)
		return wr->error;
	size_t max = opts->max_line_bytes ? opts->max_line_bytes : SL_LP_LINE_MAX;
	size_t need = SL_LP_SCRATCH_BYTES(len < max ? len : max);
	struct ti_chunk *c = room(wr, SL_LP_MAX_FIELDS, need);
	if (c == NULL)
		return wr->error;
	sl_lp_line_init(line, c->arena + c->used, CHUNK_ARENA - c->used);
	int rc = sl_lp_parse_line(text, len, opts, line);
	if (rc != 0)
		return rc; /* a bad line or a blank one: nothing of the scratch is kept */
	const char *end = c->arena + c->used;
	for (uint32_t i = 0; i < line->n_fields; i++) {
		const struct sl_lp_field *f = &line->fields[i];
		if (f->key + f->key_len > end)
			end = f->key + f->key_len;
		if (f->type == SL_VAL_STR && f->str + f->str_len > end)
			end = f->str + f->str_len;
		c->pts[c->n++] = sl_lp_point_of(line, i);
	}
	c->used = align8((size_t)(end - c->arena));
	return 0;
}

int sl_ti_end(struct sl_ti_writer *wr)
{
	if (wr->cur != NULL && wr->error != 0) {
		chunk_put(wr->cur);
		wr->cur = NULL;
	} else if (wr->cur != NULL) {
		submit(wr); /* sets wr->error on failure */
	}
	while (wr->n_inflight > 0 && wait_oldest(wr))
		;
	sl_ti_reap();
	return wr->error;
}

const char *sl_ti_lp_reason(int e)
{
	switch (e) {
	case SL_LP_ERR_SYNTAX_MEASUREMENT: return "missing measurement";
	case SL_LP_ERR_SYNTAX_TAG: return "missing tag key or value";
	case SL_LP_ERR_SYNTAX_FIELD: return "invalid field format";
	case SL_LP_ERR_BAD_NUMBER: return "invalid number";
	case SL_LP_ERR_OUT_OF_RANGE: return "value out of range";
	case SL_LP_ERR_BAD_BOOL: return "invalid boolean";
	case SL_LP_ERR_BAD_STRING: return "unbalanced quotes";
	case SL_LP_ERR_STRING_TOO_LONG: return "string field too long";
	case SL_LP_ERR_BAD_TIMESTAMP: return "bad timestamp";
	case SL_LP_ERR_TS_OUT_OF_RANGE: return "time outside range";
	case SL_LP_ERR_TOO_MANY_FIELDS: return "too many fields";
	case SL_LP_ERR_KEY_TOO_LONG: return "series key too long";
	case SL_LP_ERR_LINE_TOO_LONG: return "line too long";
	case SL_LP_ERR_INVALID_UTF8: return "invalid UTF-8";
	case SL_LP_ERR_DUPLICATE_TAG: return "duplicate tags";
	case SL_LP_ERR_KEY_NUL: return "NUL byte in a key";
	case SL_LP_ERR_NO_FIELDS: return "missing fields";
	default: return "invalid line";
	}
}
