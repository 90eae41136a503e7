/* node_switch.c - a region's online protocol switch on a data node (docs/cluster.md,
 * "Switching a region's protocol"). A region's log is a chain of segments, each under one
 * protocol: segment e holds the indexes above e << ND_EPOCH_SHIFT. sluice-ctld asks for a
 * switch by naming the next protocol in its map (want_seal); every replica then seals its
 * segment (a SEAL entry: nothing after it is taken, writes wait) and reports it sealed
 * once applied. When all replicas did, ctld moves the region to the next segment
 * (want_epoch = epoch + 1) and each replica, here, writes its store as the image at the
 * new segment's base and opens the new protocol from it. Only this region waits; the
 * worker's other regions go on. */
#include "log.h"
#include "node_internal.h"

#define SEAL_RETRY_NS (500ull * 1000000ull)	  /* a seal not applied yet: asked again */
#define SWITCH_RETRY_NS (1000ull * 1000000ull)	  /* after a failed switch */
#define SWITCH_DRAIN_NS (5000ull * 1000000ull)	  /* proposals in flight at the seal */
#define EPOCHS_KEPT 8				  /* lines of the epochs file */
#define EPOCHS_MAGIC "sluice region epochs v1\n"

/* ---------------------------------------------------------------- the epochs file */

/* snap/region-RRRR.epochs: "EPOCH PROTOCOL SEALED" lines, the protocol each segment of
 * the region's log runs and the index of its SEAL once applied here (0 before). Written
 * before a replica reports its segment sealed (so a restart knows the protocol of a
 * segment ctld may have moved past, and that the log up to the SEAL, durable here then,
 * is committed: a raft replica restarting there applies it without a leader of that
 * segment, which is gone once the others switched), and before a new segment's image,
 * whose index names the segment a restart runs. */
static void epochs_path(const struct sl_node *n, uint32_t region, char *buf, size_t len)
{
	nd_snap_path(n, region, buf, len, ".epochs");
}

struct epoch_line {
	uint32_t epoch;
	char proto[32];
	uint64_t sealed; /* the index of the segment's SEAL once applied here (0: not yet) */
};

/* The file's lines (at most EPOCHS_KEPT): count, 0 when there is no file, -EBADMSG. */
static int epochs_read(const struct sl_node *n, uint32_t region, struct epoch_line *out)
{
	char path[SL_CFG_PATH_MAX + 64], line[96];
	epochs_path(n, region, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return errno == ENOENT ? 0 : -errno;
	int k = 0;
	if (fgets(line, sizeof(line), f) == NULL || strcmp(line, EPOCHS_MAGIC) != 0)
		k = -EBADMSG;
	while (k >= 0 && fgets(line, sizeof(line), f) != NULL) {
		unsigned e = 0;
		char proto[32];
		uint64_t sealed = 0;
		if (k == EPOCHS_KEPT || sscanf(line, "%u %31s %" SCNu64, &e, proto, &sealed) != 3 ||
		    sl_cons_find(proto) == NULL) {
			k = -EBADMSG;
			break;
		}
		out[k].epoch = e;
		out[k].sealed = sealed;
		snprintf(out[k].proto, sizeof(out[k].proto), "%s", proto);
		k++;
	}
	fclose(f);
	return k;
}

/* Records that segment `epoch` runs `proto`: the lines of later segments go (a switch
 * that never reached its image), the oldest beyond EPOCHS_KEPT too. Durable on return. */
static int epochs_put(const struct sl_node *n, uint32_t region, uint32_t epoch, const char *proto,
		      uint64_t sealed)
{
	struct epoch_line l[EPOCHS_KEPT];
	int k = epochs_read(n, region, l);
	if (k < 0)
		k = 0; /* rewritten whole */
	char text[EPOCHS_KEPT * 48 + 64], path[SL_CFG_PATH_MAX + 64];
	int at = snprintf(text, sizeof(text), "%s", EPOCHS_MAGIC);
	int keep = 0;
	for (int i = 0; i < k; i++)
		keep += l[i].epoch < epoch;
	for (int i = 0; i < k; i++) {
		if (l[i].epoch >= epoch || keep-- >= EPOCHS_KEPT)
			continue;
		at += snprintf(text + at, sizeof(text) - (size_t)at, "%u %s %" PRIu64 "\n",
			       l[i].epoch, l[i].proto, l[i].sealed);
	}
	at += snprintf(text + at, sizeof(text) - (size_t)at, "%u %s %" PRIu64 "\n", epoch, proto,
		       sealed);
	epochs_path(n, region, path, sizeof(path));
	return nd_write_file_atomic(n, path, (const uint8_t *)text, (size_t)at);
}

/* ---------------------------------------------------------------- at start */

/* Before the region's store exists: the segment its image is of (the image's index says
 * which), and that segment's protocol from the epochs file, in place of the map's (ctld's
 * map may be a switch ahead of this replica: it then switches once running). */
int nd_switch_recover(struct sl_node *n, struct region *r, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 64];
	uint8_t hdr[SL_STORE_SNAP_HDR_BYTES];
	uint64_t idx = 0;
	uint16_t flags = 0;
	nd_snap_path(n, r->id, path, sizeof(path), "");
	int fd = open(path, O_RDONLY);
	/* an unreadable image is reported by the load (region_load_snapshot) */
	if (fd >= 0 && (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
			sl_store_snapshot_peek(hdr, sizeof(hdr), &idx, &flags) != 0))
		idx = 0;
	if (fd >= 0)
		close(fd);
	r->epoch = nd_epoch_of(idx);
	atomic_store(&r->want_epoch, r->epoch);
	struct epoch_line l[EPOCHS_KEPT];
	int k = epochs_read(n, r->id, l);
	const char *proto = NULL;
	for (int i = 0; i < k; i++)
		if (l[i].epoch == r->epoch) {
			proto = l[i].proto;
			r->seal_commit = l[i].sealed; /* node_recover.c raises the commit to it */
		}
	epochs_path(n, r->id, path, sizeof(path));
	if (k < 0 || (proto == NULL && r->epoch > 0)) {
		snprintf(err, err_len,
			 "%s: %s; region %u's image is of segment %u of its log, whose protocol "
			 "is not known then: refusing to start",
			 path, k < 0 ? "unreadable" : "no protocol recorded for that segment", r->id,
			 r->epoch);
		return k < 0 ? k : -ENOENT;
	}
	if (proto == NULL)
		return 0; /* never switched: the map's protocol */
	r->epochs_pinned = true;
	if (strcmp(proto, sl_cfg_region_protocol(&n->cfg, r->id)) != 0)
		SL_LOG(NOTICE, node, "region %u: segment %u of its log runs %s (the map says %s)\n",
		       r->id, r->epoch, proto, sl_cfg_region_protocol(&n->cfg, r->id));
	int rc = sl_cfg_region_set_protocol(&n->cfg, r->id, proto);
	if (rc != 0)
		snprintf(err, err_len, "%s: protocol %s of region %u is not built in", path, proto,
			 r->id);
	return rc;
}

/* ---------------------------------------------------------------- running */

/* The segment's protocol on record (and its SEAL's index once applied: sealed != 0). */
static bool pin(struct worker *w, struct region *r, uint64_t sealed)
{
	if (r->epochs_pinned && (sealed == 0 || r->seal_commit == sealed))
		return true;
	int rc = epochs_put(w->node, r->id, r->epoch, sl_cfg_region_protocol(&w->node->cfg, r->id),
			    sealed);
	if (rc != 0) {
		sl_stats_add(w->st, SL_STAT_protocol_switch_failed, 1);
		SL_LOG(ERR, node, "region %u: the epochs file could not be written (%s): the "
				  "switch waits\n",
		       r->id, strerror(-rc));
		return false;
	}
	r->epochs_pinned = true;
	if (sealed != 0)
		r->seal_commit = sealed;
	return true;
}

/* Every entry of the region's log up to `index` is durable here (none waits in the LSN
 * queue for the WAL). */
static bool log_durable(const struct worker *w, const struct region *r, uint64_t index)
{
	for (uint32_t k = w->lsn_durable; k < w->lsn_len; k++) {
		const struct lsn_rec *lr = &w->lsnq[(w->lsn_head + k) % LSNQ_SIZE];
		if (lr->region == r->id && lr->index <= index)
			return false;
	}
	return true;
}

/* A region with no replica here only forwards: it follows the map. */
static void follow(struct worker *w, struct region *r, uint32_t want)
{
	if (sl_cfg_region_set_protocol(&w->node->cfg, r->id, r->want_proto) != 0)
		return;
	r->epoch = want;
	r->ml = (sl_cons_caps(sl_cons_find(r->want_proto)) & SL_CONS_CAP_MERGE) != 0;
}

static bool proposals_settled(struct region *r)
{
	for (uint32_t k = 0; k < PROP_SLOTS; k++)
		if (r->props[k].in_use && r->props[k].proposed && !r->props[k].fwd_out)
			return false;
	return true;
}

/* Segment r->epoch is sealed and applied here, and ctld moved the region to the next:
 * the image at the new base, then the new protocol over it. */
static void region_switch(struct worker *w, struct region *r)
{
	struct sl_node *n = w->node;
	char proto[32], from[32], err[256];
	snprintf(proto, sizeof(proto), "%s", r->want_proto);
	snprintf(from, sizeof(from), "%s", sl_cfg_region_protocol(&n->cfg, r->id));
	const struct sl_cons_ops *ops = sl_cons_find(proto);
	if (ops == NULL) {
		if (!r->switch_said)
			SL_LOG(ERR, node, "region %u: ctld switches it to protocol '%s', which this "
					  "sluiced does not have\n",
			       r->id, proto);
		r->switch_said = true;
		return;
	}
	/* what the old protocol still owes an answer (an ack level not reached yet) gets it
	 * first: every replica applied the whole segment, so it is stored everywhere */
	if (!proposals_settled(r) && w->now_ns < r->sealed_ns + SWITCH_DRAIN_NS)
		return;
	uint64_t t0 = nd_now_ns(), base = nd_epoch_base(r->epoch + 1), bytes = 0;
	bool ml = (sl_cons_caps(ops) & SL_CONS_CAP_MERGE) != 0;
	struct sl_store *st = NULL;
	int rc = epochs_put(n, r->id, r->epoch + 1, proto, 0);
	if (rc == 0)
		rc = nd_switch_image(r, ml, base, &st, &bytes);
	if (rc != 0) {
		sl_stats_add(w->st, SL_STAT_protocol_switch_failed, 1);
		SL_LOG(ERR, node, "region %u: switch to %s: its image could not be written (%s); "
				  "tried again in 1 s\n",
		       r->id, proto, strerror(-rc));
		r->switch_next_ns = w->now_ns + SWITCH_RETRY_NS;
		return;
	}
	/* proposals the old protocol never answered (after SWITCH_DRAIN_NS): not known
	 * stored by this path, failed rather than acknowledged */
	for (uint32_t k = 0; k < PROP_SLOTS; k++)
		if (r->props[k].in_use && r->props[k].proposed && !r->props[k].fwd_out)
			nd_prop_fail(w, r, &r->props[k], -EIO);
	/* the durable image is the region now: the old segment's protocol goes */
	sl_drv_destroy(r->drv);
	r->drv = NULL;
	if (st != r->store) {
		sl_store_destroy(r->store);
		r->store = st;
	}
	r->epoch++;
	r->ml = ml;
	(void)sl_cfg_region_set_protocol(&n->cfg, r->id, proto);
	sl_rlog_free(&r->rlog);
	sl_rlog_init(&r->rlog, base, 1);
	sl_rlog_set_alloc(&r->rlog, nd_rlog_alloc, nd_rlog_free, &w->arena);
	r->snapshot_index = r->applied_index = r->last_index = base;
	r->snapshot_term = 1;
	r->snap_since = sl_store_mark_clean(r->store);
	r->snap_base_index = base;
	r->snap_base_bytes = bytes;
	r->snap_deltas = 0;
	r->snap_delta_bytes = 0;
	/* a multileader segment starts at no position of any origin (as its vector file
	 * says: node_ml.c reads it back so after a restart) */
	r->ml_img_vec_len = 0;
	r->ml_chain_vec_len = ml ? sl_ml_snap_vec_put(r->ml_chain_vec, ND_ML_VEC_BYTES, NULL,
						      NULL, 0)
				 : 0;
	memcpy(r->ml_vec, r->ml_chain_vec, r->ml_chain_vec_len);
	r->ml_vec_len = r->ml_chain_vec_len;
	free(r->ml_send);
	r->ml_send = NULL;
	r->ml_send_len = 0;
	struct sl_cons_conf conf;
	nd_region_conf(n, r->id, &conf);
	nd_region_keep_image(r, NULL, 0, base, &conf);
	r->hs = (struct sl_cons_hard_state){0, 0, base};
	r->has_hs = false;
	r->led_since_ns = 0;
	r->pref_seen = 0;
	atomic_store_explicit(&r->leader_seen, 0, memory_order_relaxed);
	rc = nd_region_open(n, r, false, err, sizeof(err));
	if (rc != 0) {
		/* the image is durable: a restart opens the new segment from it */
		SL_LOG(ERR, node, "region %u: switch to %s: %s; the node stops taking writes "
				  "(restart it)\n",
		       r->id, proto, err);
		sl_stats_add(w->st, SL_STAT_protocol_switch_failed, 1);
		atomic_store(&n->failed, true);
		return;
	}
	atomic_store(&r->sealed, false);
	r->seal_commit = 0;
	r->switch_said = false;
	atomic_store(&n->map_dirty, true);
	sl_stats_add(w->st, SL_STAT_protocol_switches, 1);
	uint64_t t1 = nd_now_ns();
	SL_LOG(NOTICE, node,
	       "region %u: protocol %s -> %s: segment %u of its log starts at index %" PRIu64
	       " (image of %" PRIu64 " bytes written in %" PRIu64 " ms; writes waited %" PRIu64
	       " ms since the seal)\n",
	       r->id, from, proto, r->epoch, base, bytes, (t1 - t0) / 1000000u,
	       (t1 - r->sealed_ns) / 1000000u);
}

void nd_switch_poll(struct worker *w, struct region *r)
{
	uint32_t want = atomic_load_explicit(&r->want_epoch, memory_order_acquire);
	if (r->drv == NULL) {
		if (want > r->epoch)
			follow(w, r, want);
		return;
	}
	bool sealed = atomic_load_explicit(&r->sealed, memory_order_relaxed);
	if (!sealed) {
		struct sl_cons_status cs;
		sl_drv_status(r->drv, &cs);
		/* reported (heartbeats) only once the log up to the SEAL is durable here and
		 * the epochs file says so */
		if (cs.sealed_index != 0 && log_durable(w, r, cs.sealed_index) &&
		    pin(w, r, cs.sealed_index)) {
			sealed = true;
			r->sealed_ns = w->now_ns;
			atomic_store(&r->sealed, true);
			SL_LOG(INFO, node, "region %u: segment %u sealed at index %" PRIu64 "\n",
			       r->id, r->epoch, cs.sealed_index);
		}
	}
	if (want == r->epoch && !sealed && atomic_load(&r->want_seal) &&
	    w->now_ns >= r->seal_next_ns) {
		r->seal_next_ns = w->now_ns + SEAL_RETRY_NS;
		if (!pin(w, r, 0))
			return;
		/* the SEAL carries the next segment's number; its ack is not a proposal's */
		uint8_t d[4];
		sl_put_u32(d, r->epoch + 1);
		uint64_t pid = ((uint64_t)(r->id + 1) << 32) | 0xfffffff0u;
		int rc = sl_drv_seal(r->drv, pid, d, sizeof(d));
		if (rc == 0) {
			sl_stats_add(w->st, SL_STAT_seals_proposed, 1);
			SL_LOG(NOTICE, node, "region %u: sealing segment %u of its log for a protocol "
					     "switch\n",
			       r->id, r->epoch);
		}
		/* -EPERM (not the leader: it seals), -EALREADY (being applied): wait */
		return;
	}
	if (want == r->epoch + 1 && sealed && w->now_ns >= r->switch_next_ns) {
		region_switch(w, r);
		return;
	}
	if (want > r->epoch + 1 && !r->switch_said) {
		r->switch_said = true;
		SL_LOG(ERR, node, "region %u: ctld's map is at segment %u of its log, this replica "
				  "at %u: it missed a switch (its data dir was replaced?) and cannot "
				  "take writes for the region\n",
		       r->id, want, r->epoch);
	}
}
