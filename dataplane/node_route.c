/* node_route.c - which region a series id goes to. Regions own contiguous ranges of the
 * 64-bit series hash; at first [regions] regions split the space evenly, then a region
 * split (node_switch.c) gives the upper part of a region's range to a new region, and a
 * merge gives a region's range to its left neighbour. The
 * table is rebuilt whole when a range changes and published with one pointer store, so
 * the ingress cores read it without a lock; a core that routed with the table before
 * hands a point on to the region that owns it now (node.c, consume_points). */
#include "node_internal.h"

/* The region that takes region i's range now: i, or while i is unborn (its parent has
 * not split here yet) its nearest born ancestor. */
static uint32_t route_owner(const struct sl_node *n, uint32_t i)
{
	for (uint32_t hops = 0; hops < SL_CFG_MAX_REGIONS; hops++) {
		const struct region *r = &n->regions[i];
		if (!atomic_load_explicit(&r->unborn, memory_order_acquire) || r->split_from == 0)
			return i;
		i = r->split_from - 1;
	}
	return i;
}

int nd_route_build(struct sl_node *n)
{
	struct nd_route *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rte_spinlock_lock(&n->route_lock);
	uint32_t count = 0;
	/* the regions sorted by the start of their ranges (insertion: at most 256, rare); a
	 * region merged into another has none (its range is the other's, whose entry comes
	 * just before it) */
	uint32_t order[SL_CFG_MAX_REGIONS];
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		if (atomic_load_explicit(&n->regions[i].retired, memory_order_acquire))
			continue;
		uint32_t k = count++;
		while (k > 0 && n->regions[order[k - 1]].map_lo > n->regions[i].map_lo) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	for (uint32_t k = 0; k < count; k++) {
		uint32_t i = order[k], owner = route_owner(n, i);
		if (t->n > 0 && t->region[t->n - 1] == owner)
			continue; /* an unborn child's range: its parent's, extended */
		t->lo[t->n] = n->regions[i].map_lo;
		t->region[t->n++] = (uint16_t)owner;
	}
	/* each region's range as routing gives it (an owner of unborn children: theirs too) */
	for (uint32_t e = 0; e < t->n; e++) {
		struct region *r = &n->regions[t->region[e]];
		r->hash_lo = t->lo[e];
		r->hash_hi = e + 1 < t->n ? t->lo[e + 1] - 1 : UINT64_MAX;
	}
	t->older = atomic_load_explicit(&n->route, memory_order_relaxed);
	atomic_store_explicit(&n->route, t, memory_order_release);
	rte_spinlock_unlock(&n->route_lock);
	return 0;
}

void nd_route_free(struct sl_node *n)
{
	struct nd_route *t = atomic_load(&n->route);
	while (t != NULL) {
		struct nd_route *o = t->older;
		free(t);
		t = o;
	}
	atomic_store(&n->route, NULL);
}
