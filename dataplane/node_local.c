/* node_local.c - the worker side of in-process ingest (local_ingest.h): batches from the
 * HTTP server and the kernel UDP listener, queued per worker core. One batch at a time is
 * routed; a batch routing cannot take whole is resumed where it stopped next round, so a
 * batch is never taken twice and its points leave in order. */
#include <errno.h>

#include <rte_cycles.h>
#include <rte_ring.h>

#include "local_ingest.h"
#include "node_internal.h"

unsigned sl_node_workers(const struct sl_node *n) { return n->n_workers; }
unsigned sl_node_ingest_ports(const struct sl_node *n) { return n->ports.n; }

int sl_node_local_submit(struct sl_node *n, unsigned core, struct sl_local_batch *b)
{
	if (b == NULL || b->n == 0 || b->pts == NULL)
		return -EINVAL;
	if (atomic_load_explicit(&n->stop, memory_order_acquire))
		return -ESHUTDOWN;
	atomic_store_explicit(&b->done, 0, memory_order_relaxed);
	b->status = 0;
	b->stored = 0;
	struct worker *w = &n->w[core % n->n_workers];
	if (rte_ring_mp_enqueue(w->localq, b) != 0)
		return -EAGAIN;
	return 0;
}

/* The pending batch of a local submission is answered: the producer may reuse it. */
void nd_local_finish(struct worker *w, uint32_t h)
{
	struct pend *p = &w->pend[h];
	struct sl_local_batch *b = p->local;
	b->status = p->err ? p->err : p->stored == p->count ? 0 : -EINVAL;
	b->stored = p->stored;
	sl_stats_ack_latency(w->st, (rte_rdtsc() - p->t0_tsc) * 1000000000ull / w->tsc_hz);
	sl_stats_add(w->st, SL_STAT_acks_sent, 1);
	p->used = false;
	w->pend_free[w->n_pend_free++] = h;
	atomic_store_explicit(&b->done, 1, memory_order_release);
}

/* Routes the current batch from where it stopped; false when routing ran out of room. */
static bool local_route(struct worker *w)
{
	/* n and pts were read at dequeue: once its last point is routed the batch may be
	 * answered, and the producer may free it */
	for (; w->local_pos < w->local_n; w->local_pos++) {
		if (!nd_route_point(w, w->local_h, &w->local_pts[w->local_pos]))
			return false;
		sl_stats_add(w->st, SL_STAT_points_in, 1);
	}
	w->local_cur = NULL;
	return true;
}

/* Ingress, local: the batch in progress first, then new ones (a handle each) while routing
 * takes them whole. Bounded: LOCAL_BURST batches a round. */
int nd_poll_local(struct worker *w, bool take_new)
{
	int work = 0;
	if (w->local_cur != NULL) {
		uint32_t before = w->local_pos;
		bool done = local_route(w);
		work += (int)(w->local_pos - before);
		if (!done)
			return work;
	}
	if (!take_new)
		return work;
	for (unsigned i = 0; i < LOCAL_BURST && w->n_pend_free > 0; i++) {
		void *obj;
		if (rte_ring_sc_dequeue(w->localq, &obj) != 0)
			break;
		struct sl_local_batch *b = obj;
		uint32_t h = w->pend_free[--w->n_pend_free];
		w->pend[h] = (struct pend){.used = true,
					   .kind = PEND_LOCAL,
					   .local = b,
					   .count = b->n,
					   .remaining = b->n,
					   .t0_tsc = rte_rdtsc()};
		sl_stats_add(w->st, SL_STAT_local_batches, 1);
		w->local_cur = b;
		w->local_pts = b->pts;
		w->local_n = b->n;
		w->local_pos = 0;
		w->local_h = h;
		uint32_t before = w->local_pos;
		bool done = local_route(w);
		work += (int)(w->local_pos - before);
		if (!done)
			break;
	}
	return work;
}
