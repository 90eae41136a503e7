/* sim_lin.c - linearizability checker for one read/write register: the Wing & Gong search
 * over the history's call/return list, with Lowe's pruning (a (linearized set, value)
 * configuration already explored is never explored again). Operations without a response
 * (timed out, unknown outcome) may be linearized anywhere after their call, or never. The
 * simulator checks each key of each group separately (linearizability is compositional). */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sl_assert.h"

struct lnode {
	struct lnode *prev, *next;
	struct lnode *ret; /* on a call: its return, NULL if none */
	uint32_t op;
	bool is_call;
};

struct ev {
	uint64_t t;
	uint32_t op;
	bool is_call;
};

static int ev_cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->is_call != y->is_call) /* same instant: treat as concurrent */
		return x->is_call ? -1 : 1;
	return x->op < y->op ? -1 : (x->op > y->op);
}

/* Open-addressed set of explored configurations. */
struct cache {
	uint64_t *keys; /* hash, 0 = empty */
	uint64_t *state;
	uint64_t *bits; /* words per slot */
	uint32_t words;
	size_t cap, len;
};

#define CACHE_MAX (1u << 20)

static uint64_t bits_hash(const uint64_t *b, uint32_t words, uint64_t state)
{
	uint64_t h = sim_hash(b, words * 8u, state * 0x9e3779b97f4a7c15ull);
	return h ? h : 1;
}

static bool cache_init(struct cache *c, uint32_t words, size_t cap)
{
	c->words = words;
	c->cap = cap;
	c->len = 0;
	c->keys = calloc(cap, sizeof(uint64_t));
	c->state = calloc(cap, sizeof(uint64_t));
	c->bits = calloc(cap * words, sizeof(uint64_t));
	return c->keys && c->state && c->bits;
}

static void cache_free(struct cache *c)
{
	free(c->keys);
	free(c->state);
	free(c->bits);
}

static bool cache_insert_raw(struct cache *c, uint64_t h, const uint64_t *b, uint64_t st)
{
	size_t i = h & (c->cap - 1);
	for (;;) {
		if (c->keys[i] == 0) {
			c->keys[i] = h;
			c->state[i] = st;
			memcpy(c->bits + i * c->words, b, c->words * 8u);
			c->len++;
			return true;
		}
		if (c->keys[i] == h && c->state[i] == st &&
		    memcmp(c->bits + i * c->words, b, c->words * 8u) == 0)
			return false;
		i = (i + 1) & (c->cap - 1);
	}
}

/* Insert; false if present. -1 when the cache would exceed its bound. */
static int cache_add(struct cache *c, const uint64_t *b, uint64_t st)
{
	if (2 * (c->len + 1) > c->cap) {
		if (c->cap * 2 > CACHE_MAX)
			return -1;
		struct cache n;
		if (!cache_init(&n, c->words, c->cap * 2)) {
			cache_free(&n);
			return -1;
		}
		for (size_t i = 0; i < c->cap; i++)
			if (c->keys[i])
				cache_insert_raw(&n, c->keys[i], c->bits + i * c->words,
						 c->state[i]);
		cache_free(c);
		*c = n;
	}
	return cache_insert_raw(c, bits_hash(b, c->words, st), b, st) ? 1 : 0;
}

static void lift(struct lnode *call)
{
	call->prev->next = call->next;
	if (call->next)
		call->next->prev = call->prev;
	struct lnode *r = call->ret;
	if (r) {
		r->prev->next = r->next;
		if (r->next)
			r->next->prev = r->prev;
	}
}

static void unlift(struct lnode *call)
{
	struct lnode *r = call->ret;
	if (r) {
		r->prev->next = r;
		if (r->next)
			r->next->prev = r;
	}
	call->prev->next = call;
	if (call->next)
		call->next->prev = call;
}

struct frame {
	struct lnode *call;
	uint64_t state;
};

enum lin_result lin_check_register(const struct lin_op *ops, uint32_t n, uint64_t budget,
				   uint64_t *steps)
{
	if (n == 0)
		return LIN_OK;
	uint32_t words = (n + 63) / 64;
	struct ev *evs = calloc(2 * (size_t)n, sizeof(*evs));
	struct lnode *nodes = calloc(2 * (size_t)n + 1, sizeof(*nodes));
	struct lnode **call_of = calloc(n, sizeof(*call_of));
	uint64_t *bits = calloc(words, sizeof(uint64_t));
	struct frame *stack = calloc(n, sizeof(*stack));
	struct cache cache;
	bool ok = cache_init(&cache, words, 1024);
	SL_ASSERT(evs && nodes && call_of && bits && stack && ok);

	uint32_t ne = 0, rets_left = 0;
	for (uint32_t i = 0; i < n; i++) {
		evs[ne++] = (struct ev){ops[i].call, i, true};
		if (ops[i].ret != SIM_NO_RET) {
			SL_ASSERT(ops[i].ret >= ops[i].call);
			evs[ne++] = (struct ev){ops[i].ret, i, false};
			rets_left++;
		}
	}
	qsort(evs, ne, sizeof(*evs), ev_cmp);
	struct lnode *head = &nodes[ne];
	struct lnode *prev = head;
	for (uint32_t i = 0; i < ne; i++) {
		struct lnode *x = &nodes[i];
		x->op = evs[i].op;
		x->is_call = evs[i].is_call;
		x->prev = prev;
		prev->next = x;
		prev = x;
		if (x->is_call)
			call_of[x->op] = x;
		else
			call_of[x->op]->ret = x;
	}

	enum lin_result res = LIN_OK;
	uint64_t state = 0;
	uint32_t sp = 0;
	struct lnode *entry = head->next;
	while (rets_left > 0) {
		if (++*steps > budget) {
			res = LIN_UNKNOWN;
			break;
		}
		if (entry != NULL && entry->is_call) {
			const struct lin_op *op = &ops[entry->op];
			if (op->write || op->value == state) {
				uint64_t ns = op->write ? op->value : state;
				bits[entry->op / 64] |= 1ull << (entry->op % 64);
				int added = cache_add(&cache, bits, ns);
				if (added < 0) {
					res = LIN_UNKNOWN;
					break;
				}
				if (added) {
					stack[sp++] = (struct frame){entry, state};
					state = ns;
					lift(entry);
					if (entry->ret)
						rets_left--;
					entry = head->next;
					continue;
				}
				bits[entry->op / 64] &= ~(1ull << (entry->op % 64));
			}
			entry = entry->next;
		} else {
			/* an operation returned before we could place it: undo the last choice */
			if (sp == 0) {
				res = LIN_VIOLATION;
				break;
			}
			struct frame f = stack[--sp];
			bits[f.call->op / 64] &= ~(1ull << (f.call->op % 64));
			state = f.state;
			unlift(f.call);
			if (f.call->ret)
				rets_left++;
			entry = f.call->next;
		}
	}
	cache_free(&cache);
	free(evs);
	free(nodes);
	free(call_of);
	free(bits);
	free(stack);
	return res;
}
