/* rlog.c - see rlog.h. A ring of entries indexed from base_index + 1, doubled when full
 * (amortised; a region holds at most the entries between two snapshots). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlog.h"
#include "sl_assert.h"

static void *heap_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return malloc(n);
}

static void heap_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

void sl_rlog_init(struct sl_rlog *l, uint64_t base_index, uint64_t base_term)
{
	memset(l, 0, sizeof(*l));
	l->base_index = base_index;
	l->base_term = base_term;
	l->alloc = heap_alloc;
	l->free = heap_free;
}

void sl_rlog_set_alloc(struct sl_rlog *l, void *(*alloc)(void *ctx, size_t bytes),
		       void (*release)(void *ctx, void *p), void *ctx)
{
	SL_ASSERT(l->count == 0);
	l->alloc = alloc;
	l->free = release;
	l->alloc_ctx = ctx;
}

static struct sl_rlog_ent *at(const struct sl_rlog *l, uint64_t index)
{
	return &l->ring[(l->head + (index - l->base_index - 1)) & (l->cap - 1)];
}

static void drop_data(struct sl_rlog *l, struct sl_rlog_ent *e)
{
	if (e->data != NULL) {
		l->bytes -= e->len;
		l->free(l->alloc_ctx, e->data);
		e->data = NULL;
	}
}

void sl_rlog_free(struct sl_rlog *l)
{
	for (uint64_t i = 1; i <= l->count; i++)
		drop_data(l, at(l, l->base_index + i));
	free(l->ring);
	void *(*a)(void *, size_t) = l->alloc;
	void (*f)(void *, void *) = l->free;
	void *ctx = l->alloc_ctx;
	memset(l, 0, sizeof(*l));
	l->alloc = a; /* a freed log can be used again with the same allocator */
	l->free = f;
	l->alloc_ctx = ctx;
}

static int grow(struct sl_rlog *l)
{
	uint64_t ncap = l->cap ? l->cap * 2 : 1024;
	struct sl_rlog_ent *n = calloc(ncap, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < l->count; i++)
		n[i] = l->ring[(l->head + i) & (l->cap - 1)];
	free(l->ring);
	l->ring = n;
	l->cap = ncap;
	l->head = 0;
	return 0;
}

uint64_t sl_rlog_first(const struct sl_rlog *l) { return l->base_index + 1; }
uint64_t sl_rlog_last(const struct sl_rlog *l) { return l->base_index + l->count; }
uint64_t sl_rlog_first_readable(const struct sl_rlog *l)
{
	uint64_t after = l->released > l->base_index ? l->released : l->base_index;
	return after + 1;
}

int sl_rlog_append(struct sl_rlog *l, const struct sl_cons_entry *e)
{
	if (e->index <= l->base_index || e->index > sl_rlog_last(l) + 1)
		return -EINVAL;
	uint8_t *copy = NULL;
	if (e->len > 0) {
		copy = l->alloc(l->alloc_ctx, e->len);
		if (copy == NULL)
			return -ENOMEM;
		memcpy(copy, e->data, e->len);
	}
	while (sl_rlog_last(l) >= e->index) { /* conflicting suffix */
		drop_data(l, at(l, sl_rlog_last(l)));
		l->count--;
	}
	if (l->released >= e->index)
		l->released = e->index - 1;
	if (l->count == l->cap && grow(l) != 0) {
		if (copy != NULL)
			l->free(l->alloc_ctx, copy);
		return -ENOMEM;
	}
	l->count++;
	struct sl_rlog_ent *s = at(l, e->index);
	*s = (struct sl_rlog_ent){e->term, e->proposal_id, e->type, e->len, copy};
	l->bytes += e->len;
	return 0;
}

void sl_rlog_release(struct sl_rlog *l, uint64_t index)
{
	if (index > sl_rlog_last(l))
		index = sl_rlog_last(l);
	uint64_t i = l->released > l->base_index ? l->released + 1 : l->base_index + 1;
	for (; i <= index; i++)
		drop_data(l, at(l, i));
	if (index > l->released)
		l->released = index;
}

void sl_rlog_release_keep(struct sl_rlog *l, uint64_t index, uint64_t keep_bytes)
{
	if (index > sl_rlog_last(l))
		index = sl_rlog_last(l);
	uint64_t i = l->released > l->base_index ? l->released + 1 : l->base_index + 1;
	for (; i <= index && l->bytes > keep_bytes; i++)
		drop_data(l, at(l, i));
	if (i - 1 > l->released)
		l->released = i - 1;
}

void sl_rlog_compact_kept(struct sl_rlog *l, uint64_t index)
{
	uint64_t upto = index < l->released ? index : l->released;
	uint64_t term;
	if (upto <= l->base_index || sl_rlog_term(l, upto, &term) != 0)
		return;
	sl_rlog_compact(l, upto, term);
}

void sl_rlog_compact(struct sl_rlog *l, uint64_t index, uint64_t term)
{
	if (index <= l->base_index)
		return;
	uint64_t n = index > sl_rlog_last(l) ? l->count : index - l->base_index;
	for (uint64_t i = 1; i <= n; i++)
		drop_data(l, at(l, l->base_index + i));
	if (l->cap)
		l->head = (l->head + n) & (l->cap - 1);
	l->count -= n;
	l->base_index = index;
	l->base_term = term;
}

int sl_rlog_term(const struct sl_rlog *l, uint64_t index, uint64_t *term)
{
	if (index == l->base_index) {
		*term = l->base_term;
		return 0;
	}
	if (index < l->base_index || index > sl_rlog_last(l))
		return -ENOENT;
	*term = at(l, index)->term;
	return 0;
}

int sl_rlog_entry(const struct sl_rlog *l, uint64_t index, struct sl_cons_entry *out)
{
	if (index <= l->base_index || index > sl_rlog_last(l))
		return -ENOENT;
	const struct sl_rlog_ent *s = at(l, index);
	if (index <= l->released)
		return -ENOENT;
	*out = (struct sl_cons_entry){s->term, index, s->proposal_id, s->type, s->len, s->data};
	return 0;
}

static uint64_t v_first(void *c) { return sl_rlog_first(c); }
static uint64_t v_last(void *c) { return sl_rlog_last(c); }
static int v_term(void *c, uint64_t i, uint64_t *t) { return sl_rlog_term(c, i, t); }
static int v_entry(void *c, uint64_t i, struct sl_cons_entry *e) { return sl_rlog_entry(c, i, e); }

void sl_rlog_view(struct sl_rlog *l, struct sl_cons_log *out)
{
	memset(out, 0, sizeof(*out));
	out->ctx = l;
	out->first_index = v_first;
	out->last_index = v_last;
	out->term = v_term;
	out->entry = v_entry;
}

int sl_rlog_base_format(char *buf, size_t len, uint64_t index, uint64_t term, uint64_t prev_index,
			uint64_t prev_term)
{
	int n = snprintf(buf, len, "%" PRIu64 " %" PRIu64 "\n%" PRIu64 " %" PRIu64 "\n", index,
			 term, prev_index, prev_term);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* One decimal u64 at *p (no sign, no overflow), then the one separator expected. */
static int base_num(const char **p, char sep, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return -EBADMSG;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != sep)
		return -EBADMSG;
	*p = s + 1;
	*out = v;
	return 0;
}

int sl_rlog_base_term(const char *text, uint64_t index, uint64_t *term)
{
	const char *p = text;
	int found = -ENOENT, pair = 0;
	for (; pair < 2 && *p != '\0'; pair++) {
		uint64_t i, t;
		if (base_num(&p, ' ', &i) != 0 || base_num(&p, '\n', &t) != 0)
			return -EBADMSG;
		if (i == index && found != 0) {
			*term = t;
			found = 0;
		}
	}
	return pair > 0 && *p == '\0' ? found : -EBADMSG;
}
