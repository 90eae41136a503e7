/* node_switch.c - a region's online reconfiguration on a data node (docs/cluster.md,
 * "Switching a region's protocol" and "Moving replicas"). A region's log is a chain of
 * segments, each under one protocol and on one replica set: segment e holds the indexes
 * above e << ND_EPOCH_SHIFT. sluice-ctld asks for a switch by naming the next protocol in
 * its map (want_seal); every replica then seals its segment (a SEAL entry: nothing after
 * it is taken, writes wait) and reports it sealed once applied. When ctld moves the region
 * to the next segment (want_epoch = epoch + 1, with its protocol and replicas), a replica
 * that stays writes its store as the image at the new segment's base and opens the new
 * protocol from it; one that leaves drops its replica; a node that joins opens an empty
 * replica, which the others catch up by snapshot (raft). Only this region waits; the
 * worker's other regions go on. */
#include "log.h"
#include "node_internal.h"

#define SEAL_RETRY_NS (500ull * 1000000ull)	  /* a seal not applied yet: asked again */
#define SWITCH_RETRY_NS (1000ull * 1000000ull)	  /* after a failed switch */
#define SWITCH_DRAIN_NS (5000ull * 1000000ull)	  /* proposals in flight at the seal */
#define EPOCHS_KEPT 8				  /* lines of the epochs file */
#define EPOCHS_MAGIC "sluice region epochs v1\n"

/* ---------------------------------------------------------------- the epochs file */

/* snap/region-RRRR.epochs: "EPOCH PROTOCOL SEALED KIND NODES [CORE]" lines: the protocol
 * each segment of the region's log runs, the index of its SEAL once applied here (0
 * before), what this node did at it (run, join, leave), the segment's replicas and the
 * worker core that runs it here (absent from lines written before core moves: the
 * region's core at start, nd_region_place). Written
 * before a replica reports its segment sealed (so a restart knows the protocol of a
 * segment ctld may have moved past, and that the log up to the SEAL, durable here then,
 * is committed: a raft replica restarting there applies it without a leader of that
 * segment, which is gone once the others switched), and before a new segment's image,
 * whose index names the segment a restart runs. */
static void epochs_path(const struct sl_node *n, uint32_t region, char *buf, size_t len)
{
	nd_snap_path(n, region, buf, len, ".epochs");
}

/* What a line says this node did at a segment: ran it (from the image at its base), joined
 * it (an empty replica, caught up by snapshot), left the region there, learned it (a raft
 * replica move's learner), or joins it under multileader and has not caught up yet (its
 * copy is dropped at a restart, and it joins again: node 'g' becomes 'j' once caught up). */
enum { EP_RUN = 'r', EP_JOIN = 'j', EP_LEAVE = 'l', EP_LEARN = 'n', EP_MLJOIN = 'g' };

struct epoch_line {
	uint32_t epoch;
	char proto[32];
	uint64_t sealed; /* the index of the segment's SEAL once applied here (0: not yet) */
	char kind;	 /* EP_* */
	uint32_t copies; /* the segment's replicas */
	uint32_t nodes[SL_CFG_MAP_COPIES];
	uint32_t core;	 /* the worker core that runs it here + 1 (0: not recorded) */
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
		unsigned e = 0, core = UINT32_MAX;
		char proto[32], kind[8], nodes[64];
		uint64_t sealed = 0;
		int got = k == EPOCHS_KEPT ? 0
					   : sscanf(line, "%u %31s %" SCNu64 " %7s %63s %u", &e, proto,
						    &sealed, kind, nodes, &core);
		if ((got != 5 && got != 6) || (got == 6 && core >= SL_CFG_MAX_WORKERS) ||
		    sl_cons_find(proto) == NULL || strlen(kind) != 1 ||
		    (kind[0] != EP_RUN && kind[0] != EP_JOIN && kind[0] != EP_LEAVE &&
		     kind[0] != EP_LEARN && kind[0] != EP_MLJOIN)) {
			k = -EBADMSG;
			break;
		}
		out[k].epoch = e;
		out[k].sealed = sealed;
		out[k].kind = kind[0];
		out[k].core = got == 6 ? core + 1 : 0;
		out[k].copies = 0;
		char *save = NULL;
		for (char *t = strtok_r(nodes, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
			unsigned long v = strtoul(t, NULL, 10);
			if (out[k].copies == SL_CFG_MAP_COPIES || v < 1 || v > SL_CFG_MAX_NODES) {
				k = -EBADMSG;
				break;
			}
			out[k].nodes[out[k].copies++] = (uint32_t)v;
		}
		if (k < 0)
			break;
		snprintf(out[k].proto, sizeof(out[k].proto), "%s", proto);
		k++;
	}
	fclose(f);
	return k;
}

/* Records that segment `epoch` runs `proto`: the lines of later segments go (a switch
 * that never reached its image), the oldest beyond EPOCHS_KEPT too. Durable on return. */
static int line_fmt(char *buf, size_t cap, const struct epoch_line *l)
{
	int at = snprintf(buf, cap, "%u %s %" PRIu64 " %c ", l->epoch, l->proto, l->sealed, l->kind);
	for (uint32_t i = 0; i < l->copies && at > 0 && (size_t)at < cap; i++)
		at += snprintf(buf + at, cap - (size_t)at, "%s%u", i ? "," : "", l->nodes[i]);
	if (at > 0 && (size_t)at < cap && l->core != 0)
		at += snprintf(buf + at, cap - (size_t)at, " %u", l->core - 1);
	if (at > 0 && (size_t)at < cap)
		at += snprintf(buf + at, cap - (size_t)at, "\n");
	return at;
}

/* The line of region r's segment `epoch` as the node runs it now (cfg: protocol,
 * replicas; its core). */
static void line_now(const struct sl_node *n, const struct region *r, uint32_t epoch,
		     uint64_t sealed, char kind, struct epoch_line *l)
{
	memset(l, 0, sizeof(*l));
	l->epoch = epoch;
	snprintf(l->proto, sizeof(l->proto), "%s", sl_cfg_region_protocol(&n->cfg, r->id));
	l->sealed = sealed;
	l->kind = kind;
	l->copies = sl_cfg_region_replicas(&n->cfg, r->id, l->nodes);
	l->core = r->worker + 1;
}

static int epochs_put(const struct sl_node *n, uint32_t region, const struct epoch_line *put)
{
	struct epoch_line l[EPOCHS_KEPT];
	int k = epochs_read(n, region, l);
	if (k < 0)
		k = 0; /* rewritten whole */
	char text[EPOCHS_KEPT * 96 + 64], path[SL_CFG_PATH_MAX + 64];
	int at = snprintf(text, sizeof(text), "%s", EPOCHS_MAGIC);
	int keep = 0;
	for (int i = 0; i < k; i++)
		keep += l[i].epoch < put->epoch;
	for (int i = 0; i < k; i++) {
		if (l[i].epoch >= put->epoch || keep-- >= EPOCHS_KEPT)
			continue;
		at += line_fmt(text + at, sizeof(text) - (size_t)at, &l[i]);
	}
	at += line_fmt(text + at, sizeof(text) - (size_t)at, put);
	epochs_path(n, region, path, sizeof(path));
	return nd_write_file_atomic(n, path, (const uint8_t *)text, (size_t)at);
}

void nd_switch_drop_epochs(const struct sl_node *n, uint32_t region)
{
	char path[SL_CFG_PATH_MAX + 64];
	epochs_path(n, region, path, sizeof(path));
	(void)unlink(path);
}

/* ---------------------------------------------------------------- at start */

static bool in_set(const uint32_t *nodes, uint32_t copies, uint32_t id)
{
	for (uint32_t k = 0; k < copies; k++)
		if (nodes[k] == id)
			return true;
	return false;
}

/* Before the region's store exists: the segment this node runs and how. The image's
 * index says which segment it is of; a later join or leave in the epochs file wins (a
 * joined replica has no image until its snapshot; a node that left has none): any image
 * of an older segment goes then. That segment's protocol and replicas replace the map's
 * (ctld's map may be a switch ahead of this replica: it then switches once running). */
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
	uint32_t ie = nd_epoch_of(idx);
	struct epoch_line l[EPOCHS_KEPT];
	int k = epochs_read(n, r->id, l);
	const struct epoch_line *cur = NULL, *ev = NULL;
	for (int i = 0; i < k; i++) {
		if (l[i].epoch == ie)
			cur = &l[i];
		if (l[i].epoch > ie && l[i].kind != EP_RUN && (ev == NULL || l[i].epoch > ev->epoch))
			ev = &l[i];
	}
	if (ev != NULL) {
		cur = ev;
		/* an older segment's image: not this one's (a multileader joiner's merged
		 * images of this segment are its state: they stay) */
		nd_region_drop_older(n, r->id, nd_epoch_base(ev->epoch));
	}
	r->epoch = cur != NULL ? cur->epoch : ie;
	atomic_store(&r->want_epoch, r->epoch);
	epochs_path(n, r->id, path, sizeof(path));
	if (k < 0 || (cur == NULL && r->epoch > 0)) {
		snprintf(err, err_len,
			 "%s: %s; region %u's image is of segment %u of its log, whose protocol "
			 "is not known then: refusing to start",
			 path, k < 0 ? "unreadable" : "no protocol recorded for that segment", r->id,
			 r->epoch);
		return k < 0 ? k : -ENOENT;
	}
	if (cur == NULL)
		return 0; /* never switched: the map's protocol and replicas */
	if (cur->core != 0 && cur->core - 1 >= n->n_workers) {
		snprintf(err, err_len,
			 "%s: region %u runs on worker core %u here (segment %u: a core move), but "
			 "this node has %u workers: start it with [eal] workers = %u or more (to run "
			 "fewer, move the region to a lower core first with sluicectl region "
			 "move-core %u CORE while the node runs, then restart it)",
			 path, r->id, cur->core - 1, r->epoch, n->n_workers, cur->core, r->id);
		return -EINVAL;
	}
	if (cur->core != 0)
		r->worker = cur->core - 1;
	if (cur->kind == EP_LEARN || cur->kind == EP_MLJOIN) {
		/* it ran the segment as a replica move's learner, or as a multileader joiner
		 * not caught up yet (rejoining: its copies counted for no ack), which nothing
		 * counted on: what it had goes (its images, and its WAL records at replay). A
		 * learner learns again if ctld's map still says so, or joins the next segment
		 * empty; a multileader joiner joins this segment again, empty */
		nd_region_drop_files(n, r->id);
		r->learn_dropped = true;
		r->ml_joining = cur->kind == EP_MLJOIN;
		SL_LOG(NOTICE, node, "region %u: this node was catching up as %s of segment %u: "
				     "that copy is dropped%s\n",
		       r->id, r->ml_joining ? "a multileader joiner" : "a learner", r->epoch,
		       r->ml_joining ? ", it joins again" : "");
	}
	r->seal_commit = cur->kind == EP_RUN ? cur->sealed : 0; /* node_recover.c: the commit */
	r->epochs_pinned = true;
	if (strcmp(cur->proto, sl_cfg_region_protocol(&n->cfg, r->id)) != 0)
		SL_LOG(NOTICE, node, "region %u: segment %u of its log runs %s (the map says %s)\n",
		       r->id, r->epoch, cur->proto, sl_cfg_region_protocol(&n->cfg, r->id));
	int rc = sl_cfg_region_set_protocol(&n->cfg, r->id, cur->proto);
	if (rc != 0) {
		snprintf(err, err_len, "%s: protocol %s of region %u is not built in", path,
			 cur->proto, r->id);
		return rc;
	}
	if (n->cfg.map_set && cur->copies > 0) {
		rc = sl_cfg_region_set_replicas(&n->cfg, r->id, cur->nodes, cur->copies,
						sl_cfg_region_preferred(&n->cfg, r->id));
		if (rc != 0) {
			snprintf(err, err_len, "%s: region %u's replicas at segment %u do not fit "
					       "this cluster: refusing to start",
				 path, r->id, r->epoch);
			return rc;
		}
	}
	if (cur->kind == EP_JOIN && !in_set(cur->nodes, cur->copies, n->cfg.node_id)) {
		/* written by no version of this code: damage, or another node's file */
		snprintf(err, err_len,
			 "%s: segment %u says this node joined region %u, but its replicas do "
			 "not include node %u: refusing to start",
			 path, r->epoch, r->id, n->cfg.node_id);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- running */

/* The segment's protocol on record (and its SEAL's index once applied: sealed != 0). */
static bool pin(struct worker *w, struct region *r, uint64_t sealed)
{
	if (r->epochs_pinned && (sealed == 0 || r->seal_commit == sealed))
		return true;
	struct epoch_line l;
	line_now(w->node, r, r->epoch, sealed,
		 r->learner_here ? EP_LEARN : r->ml_joining ? EP_MLJOIN : EP_RUN, &l);
	int rc = epochs_put(w->node, r->id, &l);
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

static bool proposals_settled(struct region *r)
{
	for (uint32_t k = 0; k < PROP_SLOTS; k++)
		if (r->props[k].in_use && r->props[k].proposed && !r->props[k].fwd_out)
			return false;
	return true;
}

/* The worker core the map runs region r's segment want_epoch on: the one it names (a
 * core move), else the one r runs on. A multileader region stays (ctld moves none). */
static uint32_t want_core(const struct region *r)
{
	uint32_t c = atomic_load_explicit(&r->want_core, memory_order_relaxed);
	return c != 0 && c - 1 < r->wk->node->n_workers && !r->ml ? c - 1 : r->worker;
}

/* The segment ctld moved the region to (want_epoch): its line, from what the main lcore
 * took of the map (node_ctld.c). */
static void line_wanted(const struct region *r, uint32_t want, char kind, struct epoch_line *l)
{
	memset(l, 0, sizeof(*l));
	l->epoch = want;
	snprintf(l->proto, sizeof(l->proto), "%s", r->want_proto);
	l->kind = kind;
	l->copies = r->want_copies;
	memcpy(l->nodes, r->want_nodes, sizeof(l->nodes));
	l->core = want_core(r) + 1;
}

/* The region runs segment l->epoch from here on: its protocol and replicas in the config
 * (what routing, forwarding and the protocol's voters read). */
static void take_segment(struct worker *w, struct region *r, const struct epoch_line *l)
{
	struct sl_node *n = w->node;
	r->epoch = l->epoch;
	r->ml = (sl_cons_caps(sl_cons_find(l->proto)) & SL_CONS_CAP_MERGE) != 0;
	(void)sl_cfg_region_set_protocol(&n->cfg, r->id, l->proto);
	if (l->copies > 0)
		(void)sl_cfg_region_set_replicas(&n->cfg, r->id, l->nodes, l->copies,
						 r->want_preferred);
	atomic_store(&r->sealed, false);
	r->seal_commit = 0;
	r->epochs_pinned = true;
	r->switch_said = false;
	r->led_since_ns = 0;
	r->pref_seen = 0;
	atomic_store_explicit(&r->leader_seen, 0, memory_order_relaxed);
	atomic_store(&n->map_dirty, true);
}

/* The region's state here goes: no protocol, an empty store of the kind `versioned`, an
 * empty log (a replica that left, or one that joins and is caught up by snapshot). */
static int region_empty(struct worker *w, struct region *r, bool versioned)
{
	struct sl_store_config sc = {.region_id = r->id, .arena = w->arena, .use_arena = true,
				     .versioned = versioned};
	struct sl_store *st = NULL;
	int rc = sl_store_create(&sc, &st);
	if (rc != 0)
		return rc;
	nd_rejoin_forget(w->node, r);
	sl_drv_destroy(r->drv);
	r->drv = NULL;
	r->ml_joining = false;
	sl_store_destroy(r->store);
	r->store = st;
	sl_rlog_free(&r->rlog);
	sl_rlog_init(&r->rlog, 0, 0);
	sl_rlog_set_alloc(&r->rlog, nd_rlog_alloc, nd_rlog_free, &w->arena);
	r->snapshot_index = r->applied_index = r->last_index = 0;
	r->recover_target = 0; /* what the WAL held at start is gone: nothing to wait for */
	r->snapshot_term = 0;
	r->snap_since = 0; /* the next image is a full one */
	r->snap_base_index = r->snap_base_bytes = 0;
	r->snap_deltas = 0;
	r->snap_delta_bytes = 0;
	r->ml_img_vec_len = r->ml_chain_vec_len = r->ml_vec_len = 0;
	free(r->ml_send);
	r->ml_send = NULL;
	r->ml_send_len = 0;
	struct sl_cons_conf conf;
	nd_region_conf(w->node, r->id, &conf);
	nd_region_keep_image(r, NULL, 0, 0, &conf);
	r->hs = (struct sl_cons_hard_state){0, 0, 0};
	r->has_hs = false;
	return 0;
}

/* The region's copy here goes, durably: no checkpoint runs, the epochs file gets `l` (none:
 * unchanged), the region's files are removed and its state is an empty replica's (its
 * store `versioned` for a multileader segment). */
static int region_wipe(struct worker *w, struct region *r, const struct epoch_line *l,
		       bool versioned)
{
	int rc = nd_ckpt_quiesce(w);
	if (rc == 0 && l != NULL)
		rc = epochs_put(w->node, r->id, l);
	if (rc == 0) {
		nd_region_drop_files(w->node, r->id);
		rc = region_empty(w, r, versioned);
	}
	return rc;
}

/* What the old protocol still owes an answer (an ack level not reached yet) gets it
 * first, for up to SWITCH_DRAIN_NS (every replica applied the whole segment: it is stored
 * everywhere); then it is failed rather than acknowledged. false: wait. */
static bool drain_proposals(struct worker *w, struct region *r)
{
	if (!proposals_settled(r) && w->now_ns < r->sealed_ns + SWITCH_DRAIN_NS)
		return false;
	for (uint32_t k = 0; k < PROP_SLOTS; k++)
		if (r->props[k].in_use && r->props[k].proposed && !r->props[k].fwd_out)
			nd_prop_fail(w, r, &r->props[k], -EIO);
	return true;
}

static void switch_failed(struct worker *w, struct region *r, const char *what, int rc)
{
	sl_stats_add(w->st, SL_STAT_protocol_switch_failed, 1);
	SL_LOG(ERR, node, "region %u: segment %u: %s (%s); tried again in 1 s\n", r->id,
	       atomic_load(&r->want_epoch), what, strerror(-rc));
	r->switch_next_ns = w->now_ns + SWITCH_RETRY_NS;
}

static void open_failed(struct worker *w, struct region *r, const char *err)
{
	/* what is on disk is the new segment's: a restart opens it */
	SL_LOG(ERR, node, "region %u: segment %u: %s; the node stops taking writes (restart it)\n",
	       r->id, r->epoch, err);
	sl_stats_add(w->st, SL_STAT_protocol_switch_failed, 1);
	atomic_store(&w->node->failed, true);
}

/* A core move (docs/cluster.md, "Moving a region to another core"): the region's new
 * segment, open here, runs on the core the map names from now on; that core drives it
 * from its next round. What the region holds is its own (store, log, proposals, driver;
 * their memory stays in this core's arena, whose allocator any thread may use) and this
 * core owes nothing for it: proposals drained before the switch, the log durable up to
 * the SEAL, no checkpoint of it running (the caller stopped them: the switch's image or
 * wipe did, in this same call). It cannot fail: the new segment's records must go to the
 * new core's WAL, the one a restart replays for it (the epochs line names that core).
 * Points, reads and requests routed here by a stale look at the region's core are handed
 * on to the new one (node.c, node_ctl.c). */
static void core_handoff(struct worker *w, struct region *r)
{
	struct sl_node *n = w->node;
	uint32_t to = want_core(r), from = w->idx;
	if (to == from || w->node->failed)
		return;
	r->wk = &n->w[to];
	atomic_store_explicit(&r->worker, to, memory_order_release);
	sl_stats_add(w->st, SL_STAT_core_moves, 1);
	SL_LOG(NOTICE, node, "region %u: runs on core %u from segment %u on (a core move: it "
			     "ran on core %u)\n",
	       r->id, to, r->epoch, from);
}

/* A node with no replica in segment `want` (it left there, or never had one): the
 * region's state here goes (once the line says so), writes are forwarded from now on. */
static void region_leave(struct worker *w, struct region *r, uint32_t want)
{
	struct epoch_line l;
	line_wanted(r, want, EP_LEAVE, &l);
	bool had = r->drv != NULL;
	if (had && !drain_proposals(w, r))
		return;
	int rc = had ? region_wipe(w, r, &l, false) : 0;
	if (rc != 0) {
		switch_failed(w, r, "leaving the region", rc);
		return;
	}
	if (had) {
		sl_stats_add(w->st, SL_STAT_replicas_left, 1);
		SL_LOG(NOTICE, node, "region %u: this node left it at segment %u (its replicas: "
				     "now elsewhere; writes are forwarded)\n",
		       r->id, want);
	}
	take_segment(w, r, &l);
	char err[256];
	if (nd_region_open(w->node, r, false, err, sizeof(err)) != 0) { /* no replica: forwards */
		open_failed(w, r, err);
		return;
	}
	/* a node that had no replica wiped nothing: its checkpoints are stopped here (else
	 * the forwarding's own check in nd_switch_poll moves it next round) */
	if (had || nd_ckpt_quiesce(w) == 0)
		core_handoff(w, r);
}

/* A node that is a replica of segment `want` without the segment before (a node added
 * to the region, or one that missed segments): an empty replica of the new protocol
 * (raft: the others send it a snapshot of the segment's base and what followed). A
 * replica that rejoins (its data dir was lost: --rejoin) stays in the protocol's rejoin
 * mode there: it may have voted or acknowledged in that segment before the loss. */
static void region_join(struct worker *w, struct region *r, uint32_t want)
{
	struct epoch_line l;
	const struct sl_cons_ops *ops = sl_cons_find(r->want_proto);
	bool ml = ops != NULL && (sl_cons_caps(ops) & SL_CONS_CAP_MERGE) != 0;
	line_wanted(r, want, ml ? EP_MLJOIN : EP_JOIN, &l);
	bool rejoin = r->rejoining;
	if (ops == NULL || l.copies < 2) {
		if (!r->switch_said)
			SL_LOG(ERR, node, "region %u: this node joins segment %u under %s, which "
					  "cannot catch up an empty replica: not joined\n",
			       r->id, want, l.proto);
		r->switch_said = true;
		return;
	}
	if (r->drv != NULL && !drain_proposals(w, r))
		return;
	int rc = region_wipe(w, r, &l, ml);
	if (rc != 0) {
		switch_failed(w, r, "joining the region", rc);
		return;
	}
	take_segment(w, r, &l);
	/* multileader: the empty replica's log starts at the segment's base, and it runs in
	 * the protocol's rejoin mode (no write, its copies count for no ack) until it merged
	 * the base image from a peer and holds what they hold */
	r->ml_joining = ml;
	if (ml)
		nd_region_log_at(w, r, nd_epoch_base(r->epoch));
	char err[256];
	if (nd_region_open(w->node, r, rejoin || ml, err, sizeof(err)) != 0) {
		open_failed(w, r, err);
		return;
	}
	sl_stats_add(w->st, SL_STAT_replicas_joined, 1);
	SL_LOG(NOTICE, node, "region %u: this node joined it at segment %u (%s, an empty "
			     "replica%s: caught up by %s)\n",
	       r->id, want, l.proto, rejoin ? " rejoining after its data dir was lost" : "",
	       ml ? "the base image and the streams" : "snapshot");
	core_handoff(w, r);
}

/* The region's log starts over, empty, after `base` (a new segment's image, or a
 * multileader joiner's segment base, nd_epoch_base(r->epoch): it has no image of it). */
void nd_region_log_at(struct worker *w, struct region *r, uint64_t base)
{
	sl_rlog_free(&r->rlog);
	sl_rlog_init(&r->rlog, base, 1);
	sl_rlog_set_alloc(&r->rlog, nd_rlog_alloc, nd_rlog_free, &w->arena);
	r->snapshot_index = r->applied_index = r->last_index = base;
	r->snapshot_term = 1;
	r->hs = (struct sl_cons_hard_state){0, 0, base};
	r->has_hs = false;
}

/* A multileader joiner caught up (its protocol left rejoin mode): recorded, so a restart
 * keeps its copy from now on (its copies count for acks). false: not written, asked
 * again. */
bool nd_ml_joined(struct worker *w, struct region *r)
{
	struct epoch_line l;
	line_now(w->node, r, r->epoch, 0, EP_JOIN, &l);
	int rc = epochs_put(w->node, r->id, &l);
	if (rc != 0) {
		if (!r->switch_said)
			SL_LOG(ERR, node, "region %u: the epochs file could not be written (%s): "
					  "its joiner's catch-up is recorded later\n",
			       r->id, strerror(-rc));
		r->switch_said = true;
		return false;
	}
	r->ml_joining = false;
	sl_stats_add(w->st, SL_STAT_ml_joiners_caught_up, 1);
	SL_LOG(NOTICE, node, "region %u: this node caught up as a multileader joiner of segment "
			     "%u (base image merged, streams caught up)\n",
	       r->id, r->epoch);
	return true;
}

/* A protocol whose replicas can be told of learners (raft). */
static bool learns(const char *proto)
{
	const struct sl_cons_ops *ops = sl_cons_find(proto);
	return ops != NULL && ops->set_learners != NULL;
}

/* ctld's map names this node the learner of the segment the region runs (a replica move
 * adding it): an empty replica of that segment that votes for nothing and counts for no
 * commit, caught up by snapshot and log, which then seals and switches with the others
 * from its own copy. The epochs file says EP_LEARN: a restart drops that copy. */
static void learner_join(struct worker *w, struct region *r)
{
	struct epoch_line l;
	line_now(w->node, r, r->epoch, 0, EP_LEARN, &l);
	int rc = region_wipe(w, r, &l, false);
	if (rc != 0) {
		switch_failed(w, r, "catching up as a learner", rc);
		return;
	}
	r->epochs_pinned = true;
	r->seal_commit = 0;
	atomic_store(&r->sealed, false);
	char err[256];
	r->learner_opening = true;
	rc = nd_region_open(w->node, r, false, err, sizeof(err));
	r->learner_opening = false;
	if (rc != 0) {
		open_failed(w, r, err);
		return;
	}
	if (!r->learner_here) { /* the map moved on meanwhile */
		switch_failed(w, r, "catching up as a learner", -ESTALE);
		return;
	}
	sl_stats_add(w->st, SL_STAT_learners_joined, 1);
	SL_LOG(NOTICE, node, "region %u: this node catches up as a learner of segment %u (%s; "
			     "an empty replica that votes for nothing, caught up by snapshot)\n",
	       r->id, r->epoch, l.proto);
}

/* The map no longer names this node the learner of the segment it learns (the replica
 * move ended without a seal): the copy goes, the region is forwarded as before. */
static void learner_drop(struct worker *w, struct region *r)
{
	if (!drain_proposals(w, r))
		return;
	int rc = region_wipe(w, r, NULL, false);
	if (rc != 0) {
		switch_failed(w, r, "dropping a learner's copy", rc);
		return;
	}
	r->learner_here = false;
	char err[256];
	if (nd_region_open(w->node, r, false, err, sizeof(err)) != 0) /* no replica: forwards */
		open_failed(w, r, err);
	SL_LOG(NOTICE, node, "region %u: no longer a learner of segment %u here (the replica "
			     "move ended): its copy is dropped\n",
	       r->id, r->epoch);
}

/* A replica of the segment: its protocol replicates to the learner the map names (none
 * once the map drops it; a map already at a later segment changes nothing: the learner
 * must still get this one's SEAL). */
static void learner_sync(struct worker *w, struct region *r, uint32_t want)
{
	if (want != r->epoch || r->learner_here)
		return;
	uint32_t l = atomic_load(&r->want_learner);
	if (l == r->drv_learner)
		return; /* every poll but the few after the map changed the learner */
	struct sl_cons_conf conf;
	nd_region_conf(w->node, r->id, &conf);
	uint32_t set = conf.n_learners > 0 ? conf.learners[0] : 0;
	if (set == r->drv_learner || (l != 0 && set == 0))
		return;
	int rc = sl_drv_set_learners(r->drv, conf.learners, conf.n_learners);
	if (rc != 0 && rc != -ENOTSUP) {
		if (!r->switch_said)
			SL_LOG(ERR, node, "region %u: learner %u not taken by its protocol (%s)\n",
			       r->id, set, strerror(-rc));
		r->switch_said = true;
		return;
	}
	if (rc == 0 && set != 0)
		SL_LOG(NOTICE, node, "region %u: replicating segment %u to node %u, a learner\n",
		       r->id, r->epoch, set);
	r->drv_learner = set;
}

/* The durable image `st` (of `bytes` at index `base`, a new segment's base) is the region
 * now: the old segment's protocol, store and log go; the log starts over at base. */
static void segment_reset(struct worker *w, struct region *r, struct sl_store *st, uint64_t base,
			  uint64_t bytes, bool ml)
{
	nd_rejoin_forget(w->node, r);
	sl_drv_destroy(r->drv);
	r->drv = NULL;
	if (st != r->store) {
		sl_store_destroy(r->store);
		r->store = st;
	}
	nd_region_log_at(w, r, base);
	r->recover_target = 0; /* the old segment's recovered end: past, in the image */
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
}

/* The durable image st (of bytes at base) is region r's at the new segment l: the old
 * segment goes (segment_reset), r takes l, and the image is what r serves a joiner. */
static void segment_take(struct worker *w, struct region *r, struct sl_store *st, uint64_t base,
			 uint64_t bytes, bool ml, const struct epoch_line *l)
{
	segment_reset(w, r, st, base, bytes, ml);
	take_segment(w, r, l);
	struct sl_cons_conf conf;
	nd_region_conf(w->node, r->id, &conf);
	nd_region_keep_image(r, NULL, 0, base, &conf);
}

/* Segment r->epoch is sealed and applied here, and ctld moved the region to the next,
 * which this node is a replica of: the image at the new base, then the new protocol over
 * it. */
static void region_switch(struct worker *w, struct region *r)
{
	struct sl_node *n = w->node;
	char from[32], err[256];
	struct epoch_line l;
	line_wanted(r, r->epoch + 1, EP_RUN, &l);
	snprintf(from, sizeof(from), "%s", sl_cfg_region_protocol(&n->cfg, r->id));
	const struct sl_cons_ops *ops = sl_cons_find(l.proto);
	if (ops == NULL) {
		if (!r->switch_said)
			SL_LOG(ERR, node, "region %u: ctld switches it to protocol '%s', which this "
					  "sluiced does not have\n",
			       r->id, l.proto);
		r->switch_said = true;
		return;
	}
	if (!drain_proposals(w, r))
		return;
	uint64_t t0 = nd_now_ns(), base = nd_epoch_base(l.epoch), bytes = 0;
	bool ml = (sl_cons_caps(ops) & SL_CONS_CAP_MERGE) != 0;
	struct sl_store *st = NULL;
	int rc = epochs_put(n, r->id, &l);
	if (rc == 0)
		rc = nd_switch_image(r, ml, base, &st, &bytes);
	if (rc != 0) {
		switch_failed(w, r, "its image could not be written", rc);
		return;
	}
	segment_take(w, r, st, base, bytes, ml, &l);
	rc = nd_region_open(n, r, false, err, sizeof(err));
	if (rc != 0) {
		open_failed(w, r, err);
		return;
	}
	sl_stats_add(w->st, SL_STAT_protocol_switches, 1);
	uint64_t t1 = nd_now_ns();
	SL_LOG(NOTICE, node,
	       "region %u: protocol %s -> %s: segment %u of its log starts at index %" PRIu64
	       " on %u replicas (image of %" PRIu64 " bytes written in %" PRIu64
	       " ms; writes waited %" PRIu64 " ms since the seal)\n",
	       r->id, from, l.proto, r->epoch, base, l.copies, bytes, (t1 - t0) / 1000000u,
	       (t1 - r->sealed_ns) / 1000000u);
	core_handoff(w, r);
}

/* The points waiting in r's open proposal that routing sends elsewhere now (a split's
 * child, the region a merge took r's range into: same core) go there; how many. */
static uint32_t reroute_open(struct worker *w, struct region *r)
{
	if (r->open < 0)
		return 0;
	struct proposal *p = &r->props[r->open];
	size_t len = 0;
	sl_batch_finish(&p->b, &len);
	uint32_t moved = nd_prop_reroute(w, r, (uint32_t)r->open, (uint32_t)len, false);
	if (moved == 0)
		sl_batch_reopen(&p->b);
	else if (p->n_points == 0) {
		p->in_use = false;
		r->open = -1;
	}
	return moved;
}

/* A split (docs/cluster.md, "Splitting a region"): segment r->epoch is sealed and applied
 * here, and ctld's map moved r to the next segment with the upper part of its range, from
 * c->map_lo, given to the new region c. On r's core (c's too): the store is cut in two base
 * images at the new segment's base (c's first, then r's: the commit point), both regions
 * open the protocol over them, routing sends c's range to c, and the points waiting in
 * r's open proposal that are c's go there. */
static void region_split(struct worker *w, struct region *r, struct region *c)
{
	struct sl_node *n = w->node;
	char err[256];
	struct epoch_line l;
	line_wanted(r, r->epoch + 1, EP_RUN, &l);
	if (r->ml || c->worker != w->idx || c->map_lo <= r->hash_lo || c->map_lo > r->hash_hi ||
	    strcmp(l.proto, sl_cfg_region_protocol(&n->cfg, r->id)) != 0) {
		if (!r->switch_said)
			SL_LOG(ERR, node, "region %u: ctld splits it at 0x%016" PRIx64 " into region "
					  "%u under %s, which this node cannot do (a split keeps a raft "
					  "or standalone region's protocol, in its range): not split\n",
			       r->id, c->map_lo, c->id, l.proto);
		r->switch_said = true;
		return;
	}
	if (c->store == NULL && nd_region_alloc(w, c, err, sizeof(err)) != 0) {
		switch_failed(w, r, "no memory for the new region", -ENOMEM);
		return;
	}
	if (!drain_proposals(w, r))
		return;
	uint64_t t0 = nd_now_ns(), base = nd_epoch_base(l.epoch), bytes = 0;
	uint64_t lo = r->hash_lo, hi = r->hash_hi;
	struct sl_store *rs = NULL, *cs = NULL;
	int rc = epochs_put(n, c->id, &l);
	if (rc == 0)
		rc = epochs_put(n, r->id, &l);
	if (rc == 0)
		rc = nd_split_images(r, c, c->map_lo, base, &rs, &cs, &bytes);
	if (rc != 0) {
		sl_stats_add(w->st, SL_STAT_region_split_failed, 1);
		switch_failed(w, r, "its split images could not be written", rc);
		return;
	}
	/* both run the new segment from their images */
	memcpy(c->want_proto, r->want_proto, sizeof(c->want_proto));
	memcpy(c->want_nodes, r->want_nodes, sizeof(c->want_nodes));
	c->want_copies = r->want_copies;
	c->want_preferred = r->want_preferred;
	atomic_store(&c->want_epoch, l.epoch);
	segment_take(w, r, rs, base, bytes, false, &l);
	segment_take(w, c, cs, base, bytes, false, &l);
	atomic_store(&c->unborn, false);
	atomic_store(&r->split_child, 0);
	if (nd_route_build(n) != 0) {
		open_failed(w, r, "no memory for the routing table");
		return;
	}
	if (nd_region_open(n, r, false, err, sizeof(err)) != 0 ||
	    nd_region_open(n, c, false, err, sizeof(err)) != 0) {
		open_failed(w, r, err);
		return;
	}
	/* the writes that waited in r's open proposal: c's go to c now */
	uint32_t moved = reroute_open(w, r);
	sl_stats_add(w->st, SL_STAT_region_splits, 1);
	uint64_t t1 = nd_now_ns();
	SL_LOG(NOTICE, node,
	       "region %u: split at 0x%016" PRIx64 ": [0x%016" PRIx64 ", 0x%016" PRIx64
	       "] stays, [0x%016" PRIx64 ", 0x%016" PRIx64 "] is region %u now; both run %s "
	       "from segment %u (images of %" PRIu64 " bytes written in %" PRIu64
	       " ms; writes waited %" PRIu64 " ms since the seal; %u waiting points moved)\n",
	       r->id, c->map_lo, lo, c->map_lo - 1, c->map_lo, hi, c->id, l.proto, l.epoch, bytes,
	       (t1 - t0) / 1000000u, (t1 - r->sealed_ns) / 1000000u, moved);
}

/* A region merged into another is gone here: its files, state and protocol go, routing
 * gives its range to the region it went into, and the points waiting in its open
 * proposal follow them there (same core). Called once the merge is durable here (the
 * other region's image at the merged segment) or, on a node with no replica, once that
 * region moved to the merged segment. */
static void region_retire(struct worker *w, struct region *s, uint32_t into)
{
	struct sl_node *n = w->node;
	nd_region_drop_files(n, s->id);
	nd_switch_drop_epochs(n, s->id);
	if (region_empty(w, s, false) != 0) {
		switch_failed(w, s, "retiring it after its merge", -ENOMEM);
		return;
	}
	atomic_store(&s->retired, true);
	atomic_store(&n->regions[into].merge_child, 0);
	s->hash_lo = UINT64_MAX; /* an empty range: a batch routed here before is refused */
	s->hash_hi = 0;
	if (nd_route_build(n) != 0) {
		open_failed(w, s, "no memory for the routing table");
		return;
	}
	uint32_t moved = reroute_open(w, s);
	atomic_store(&n->map_dirty, true);
	SL_LOG(NOTICE, node, "region %u: merged into region %u (%u waiting points moved there)\n",
	       s->id, into, moved);
}

/* A merge (docs/cluster.md, "Merging regions"): r's and s's segments are sealed and
 * applied here, and ctld's map moved r to the next segment with s's range added. On r's
 * core (s's too): one base image of both stores at the new segment's base (its rename is
 * the commit point), r opens the protocol over it, and s retires. */
static void region_merge(struct worker *w, struct region *r, struct region *s)
{
	struct sl_node *n = w->node;
	char err[256];
	struct epoch_line l;
	line_wanted(r, r->epoch + 1, EP_RUN, &l);
	if (r->ml || s->ml || s->worker != w->idx || s->drv == NULL || r->hash_hi + 1 != s->hash_lo ||
	    strcmp(l.proto, sl_cfg_region_protocol(&n->cfg, r->id)) != 0) {
		if (!r->switch_said)
			SL_LOG(ERR, node, "region %u: ctld merges region %u into it under %s, which "
					  "this node cannot do (both raft or standalone replicas here, "
					  "on one core, adjacent, the protocol kept): not merged\n",
			       r->id, s->id, l.proto);
		r->switch_said = true;
		return;
	}
	if (!atomic_load(&s->sealed) || !drain_proposals(w, r) || !drain_proposals(w, s))
		return; /* s's seal not applied here yet, or answers still owed */
	uint64_t t0 = nd_now_ns(), base = nd_epoch_base(l.epoch), bytes = 0;
	uint64_t lo = r->hash_lo, hi = s->hash_hi;
	struct sl_store *ms = NULL;
	int rc = epochs_put(n, r->id, &l);
	if (rc == 0)
		rc = nd_merge_images(r, s, base, &ms, &bytes);
	if (rc != 0) {
		sl_stats_add(w->st, SL_STAT_region_merge_failed, 1);
		switch_failed(w, r, "its merged image could not be written", rc);
		return;
	}
	segment_take(w, r, ms, base, bytes, false, &l);
	region_retire(w, s, r->id);
	if (nd_region_open(n, r, false, err, sizeof(err)) != 0) {
		open_failed(w, r, err);
		return;
	}
	sl_stats_add(w->st, SL_STAT_region_merges, 1);
	uint64_t t1 = nd_now_ns();
	SL_LOG(NOTICE, node,
	       "region %u: region %u merged into it: [0x%016" PRIx64 ", 0x%016" PRIx64 "] runs %s "
	       "from segment %u (image of %" PRIu64 " bytes written in %" PRIu64 " ms; writes "
	       "waited %" PRIu64 " ms since the seal)\n",
	       r->id, s->id, lo, hi, l.proto, l.epoch, bytes, (t1 - t0) / 1000000u,
	       (t1 - r->sealed_ns) / 1000000u);
}

/* A region merged into another that has no replica here (it only forwards): retired once
 * the other region moved to the merged segment; a replica waits for that region's
 * worker to merge it. */
static void merged_poll(struct worker *w, struct region *s)
{
	struct sl_node *n = w->node;
	uint32_t ep = 0, into = sl_cfg_region_merged(&n->cfg, s->id, &ep);
	if (into == 0 || s->drv != NULL || atomic_load(&s->retired) ||
	    atomic_load_explicit(&n->regions[into - 1].want_epoch, memory_order_acquire) < ep)
		return;
	region_retire(w, s, into - 1);
}

/* A split's child still unborn on this core: made here when its parent has no replica on
 * this node (the node only forwards its writes: nothing to cut), else left to the
 * parent's split. */
void nd_split_poll_unborn(struct worker *w, struct region *c)
{
	struct sl_node *n = w->node;
	const struct region *p = &n->regions[c->split_from - 1];
	if (p->drv != NULL || sl_cfg_region_here(&n->cfg, p->id) || atomic_load(&p->unborn))
		return;
	char err[256];
	if (c->store == NULL && nd_region_alloc(w, c, err, sizeof(err)) != 0) {
		switch_failed(w, c, "no memory for the new region", -ENOMEM);
		return;
	}
	c->epoch = c->split_epoch;
	atomic_store(&c->want_epoch, c->epoch);
	if (nd_region_open(n, c, false, err, sizeof(err)) != 0) { /* no replica: forwards */
		open_failed(w, c, err);
		return;
	}
	atomic_store(&c->unborn, false);
	if (nd_route_build(n) != 0) {
		atomic_store(&c->unborn, true);
		return;
	}
	SL_LOG(NOTICE, node, "region %u: split from region %u at 0x%016" PRIx64 " (no replica "
			     "here: its writes are forwarded)\n",
	       c->id, p->id, c->map_lo);
}

void nd_switch_poll(struct worker *w, struct region *r)
{
	uint32_t want = atomic_load_explicit(&r->want_epoch, memory_order_acquire);
	bool member = want > r->epoch && in_set(r->want_nodes, r->want_copies, w->node->cfg.node_id);
	if (atomic_load_explicit(&r->retired, memory_order_relaxed))
		return;
	uint32_t lw = atomic_load(&r->want_learner);
	if (r->drv == NULL && want == r->epoch && lw == w->node->cfg.node_id &&
	    !sl_cfg_region_here(&w->node->cfg, r->id) && !atomic_load(&r->unborn) &&
	    w->now_ns >= r->switch_next_ns && learns(sl_cfg_region_protocol(&w->node->cfg, r->id))) {
		nd_off_fabric(w, true);
		learner_join(w, r);
		nd_off_fabric(w, false);
		return;
	}
	if (r->drv != NULL && r->learner_here && want == r->epoch &&
	    lw != w->node->cfg.node_id && w->now_ns >= r->switch_next_ns) {
		nd_off_fabric(w, true);
		learner_drop(w, r);
		nd_off_fabric(w, false);
		return;
	}
	if (r->drv != NULL)
		learner_sync(w, r, want);
	if (r->drv == NULL) {
		merged_poll(w, r);
		if (want == r->epoch && want_core(r) != w->idx && !atomic_load(&r->unborn) &&
		    !atomic_load(&r->retired)) {
			/* no replica here, and the map runs the region on another core (this node
			 * started with a map that did not say so): its forwarding moves there */
			nd_off_fabric(w, true);
			if (nd_ckpt_quiesce(w) == 0) /* else asked again next round */
				core_handoff(w, r);
			nd_off_fabric(w, false);
			return;
		}
		if (want > r->epoch && w->now_ns >= r->switch_next_ns) {
			nd_off_fabric(w, true);
			member ? region_join(w, r, want) : region_leave(w, r, want);
			nd_off_fabric(w, false);
		}
		return;
	}
	if (r->rejoining && want > r->epoch && member && w->now_ns >= r->switch_next_ns &&
	    !r->switch_said) {
		/* it lost its data dir while its group went on to a later segment (a switch,
		 * a replica move): its peers no longer run this one, whose seal it would wait
		 * for forever. It joins the segment the map runs, still rejoining. */
		nd_off_fabric(w, true);
		region_join(w, r, want);
		nd_off_fabric(w, false);
		return;
	}
	bool sealed = atomic_load_explicit(&r->sealed, memory_order_relaxed);
	if (r->learner_here && !sealed && want > r->epoch && member &&
	    w->now_ns >= r->switch_next_ns) {
		/* a learner that missed its segment's seal (its node was down when ctld moved
		 * on without it): no replica of that segment runs any more to send the SEAL, so
		 * its copy goes and it joins the map's segment empty, caught up by snapshot */
		nd_off_fabric(w, true);
		region_join(w, r, want);
		nd_off_fabric(w, false);
		return;
	}
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
			SL_LOG(NOTICE, node, "region %u: sealing segment %u of its log for a "
					     "reconfiguration\n",
			       r->id, r->epoch);
		}
		/* -EPERM (not the leader: it seals), -EALREADY (being applied): wait */
		return;
	}
	if (want <= r->epoch || w->now_ns < r->switch_next_ns)
		return;
	nd_off_fabric(w, true); /* blocking file I/O below */
	if (!member) /* it leaves: what it holds is no longer needed, sealed or not */
		region_leave(w, r, want);
	else if (want == r->epoch + 1 && sealed && atomic_load(&r->merge_child) != 0)
		region_merge(w, r, &w->node->regions[atomic_load(&r->merge_child) - 1]);
	else if (want == r->epoch + 1 && sealed && atomic_load(&r->split_child) != 0)
		region_split(w, r, &w->node->regions[atomic_load(&r->split_child) - 1]);
	else if (want == r->epoch + 1 && sealed)
		region_switch(w, r);
	else if (want > r->epoch + 1) /* it missed a segment: caught up like a new replica */
		region_join(w, r, want);
	nd_off_fabric(w, false);
}
