/* node_ctl.c - the node's ctl commands, served on the main lcore; what needs a region
 * (its stats, a query, a fault injection) is asked of the owning worker through its
 * request ring and answered between two poll rounds. */
#include "node_internal.h"
#include "raft.h"

/* Named counters, added to a json object in one go. */
struct json_u64 {
	const char *key;
	uint64_t v;
};

static void json_add_u64s(struct json_object *o, const struct json_u64 *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, c[i].key, json_object_new_int64((int64_t)c[i].v));
}

/* A raft region: how its elections and transfers went (what an operator looks at when
 * leadership moves more than expected). */
static void raft_region_json(struct region *r, struct json_object *o)
{
	struct sl_raft_stats rs;
	sl_raft_stats(sl_drv_instance(r->drv), &rs);
	struct json_object *e = json_object_new_object();
	const struct json_u64 counters[] = {
		{"pre_votes", rs.pre_votes},
		{"elections", rs.elections},
		{"leader_terms", rs.leader_terms},
		{"check_quorum_stepdowns", rs.check_quorum_stepdowns},
		{"transfers", rs.transfers},
		{"appends_rejected", rs.appends_rejected},
		{"learner_resets", rs.learner_resets},
		{"snapshots_sent", rs.snapshots_sent},
		{"snapshots_installed", rs.snapshots_installed},
		{"snapshot_chunks_sent", rs.snapshot_chunks_sent},
		{"snapshot_chunks_received", rs.snapshot_chunks_received},
		{"snapshot_chunks_refused", rs.snapshot_chunks_refused},
		{"snapshot_bytes_sent", rs.snapshot_bytes_sent},
		{"snapshot_bytes_received", rs.snapshot_bytes_received},
	};
	json_add_u64s(e, counters, sizeof(counters) / sizeof(counters[0]));
	struct sl_raft_peer pr[SL_CONS_MAX_PEERS];
	uint32_t np = sl_raft_peers(sl_drv_instance(r->drv), pr, SL_CONS_MAX_PEERS);
	if (np > 0) { /* leading: how far each follower is */
		static const char *const st[] = {"probe", "replicate", "snapshot"};
		struct json_object *pa = json_object_new_array();
		for (uint32_t i = 0; i < np; i++) {
			struct json_object *x = json_object_new_object();
			json_object_object_add(x, "node", json_object_new_int((int)pr[i].id));
			json_object_object_add(x, "state", json_object_new_string(st[pr[i].state % 3]));
			json_object_object_add(x, "match", json_object_new_int64((int64_t)pr[i].match));
			json_object_object_add(x, "rejoining", json_object_new_boolean(pr[i].rejoining));
			if (pr[i].state == 2) {
				json_object_object_add(x, "snapshot_index",
						       json_object_new_int64((int64_t)pr[i].pending_snapshot));
				json_object_object_add(x, "snapshot_acked",
						       json_object_new_int64((int64_t)pr[i].snap_acked));
				json_object_object_add(x, "snapshot_bytes",
						       json_object_new_int64((int64_t)pr[i].snap_total));
			}
			json_object_array_add(pa, x);
		}
		json_object_object_add(e, "followers", pa);
	}
	json_object_object_add(o, "consensus", e);
}

/* A multileader region: its home (where writes go), and per origin how far its stream is
 * here, per peer how much of this replica's stream it holds (docs/multileader.md). */
static void ml_region_json(const struct sl_node *n, struct region *r, struct json_object *o)
{
	json_object_object_add(o, "home", json_object_new_int((int)nd_ml_home(n, r)));
	if (r->drv == NULL)
		return;
	void *st = sl_drv_instance(r->drv);
	struct sl_ml_origin og[SL_CONS_MAX_PEERS];
	struct sl_ml_peer pr[SL_CONS_MAX_PEERS];
	struct sl_ml_stats ms;
	uint32_t no = sl_ml_origins(st, og, SL_CONS_MAX_PEERS);
	uint32_t np = sl_ml_peers(st, pr, SL_CONS_MAX_PEERS);
	sl_ml_stats(st, &ms);
	struct json_object *oa = json_object_new_array(), *pa = json_object_new_array();
	for (uint32_t i = 0; i < no; i++) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "node", json_object_new_int((int)og[i].node));
		json_object_object_add(e, "received", json_object_new_int64((int64_t)og[i].received));
		json_object_object_add(e, "durable", json_object_new_int64((int64_t)og[i].durable));
		json_object_object_add(e, "applied", json_object_new_int64((int64_t)og[i].applied));
		json_object_array_add(oa, e);
	}
	for (uint32_t i = 0; i < np; i++) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "node", json_object_new_int((int)pr[i].node));
		json_object_object_add(e, "acked", json_object_new_int64((int64_t)pr[i].acked));
		json_object_object_add(e, "lag", json_object_new_int64((int64_t)pr[i].lag));
		json_object_object_add(e, "needs_snapshot",
				       json_object_new_boolean(pr[i].needs_snapshot));
		json_object_array_add(pa, e);
	}
	json_object_object_add(o, "origins", oa);
	json_object_object_add(o, "peers", pa);
	/* the log index up to which this replica may compact: every peer being shipped to
	 * holds what is below it (a peer needing a snapshot does not hold it back) */
	json_object_object_add(o, "safe_delete_index",
			       json_object_new_int64((int64_t)sl_ml_safe_delete(st)));
	json_object_object_add(o, "retention_alarm", json_object_new_boolean(ms.retention_alarm));
	const struct json_u64 counters[] = {
		{"batches_sent", ms.batches_sent},
		{"retransmits", ms.retransmits},
		{"gap_batches", ms.gap_batches},
		{"msgs_bad", ms.msgs_bad},
		{"over_retention", ms.over_retention},
		{"snapshots_sent", ms.snapshots_sent},
		{"snapshots_merged", ms.snapshots_installed},
		{"snapshots_unavailable", ms.snapshots_unavailable},
		{"snapshot_chunks_sent", ms.snapshot_chunks_sent},
		{"snapshot_chunks_received", ms.snapshot_chunks_received},
	};
	json_add_u64s(o, counters, sizeof(counters) / sizeof(counters[0]));
}

/* ---------------------------------------------------------------- ctl requests */

void nd_serve_ctl(struct worker *w)
{
	void *obj;
	while (rte_ring_sc_dequeue(w->ctlq, &obj) == 0) {
		struct ctl_req *q = obj;
		struct sl_node *n = w->node;
		struct region *r = &n->regions[q->region];
		uint32_t owner = r->worker;
		if (q->kind != CTL_WAL_FAULT && owner != w->idx) {
			/* the region moved to another core since the request was sent (a core
			 * move): that core answers */
			if (rte_ring_mp_enqueue(n->w[owner].ctlq, q) == 0)
				continue;
			q->rc = -EBUSY;
			atomic_store_explicit(&q->done, 1, memory_order_release);
			continue;
		}
		bool retired = atomic_load(&r->retired);
		if (r->store == NULL || atomic_load(&r->unborn) || retired) {
			/* a split's child its parent has not made here yet, or a region merged
			 * into another (node_switch.c) */
			q->rc = -ENOENT;
			if (q->kind == CTL_REGIONS) {
				struct json_object *o = json_object_new_object();
				json_object_object_add(o, "id", json_object_new_int(r->id));
				json_object_object_add(o, "core", json_object_new_int(w->idx));
				json_object_object_add(o, "role", json_object_new_string("none"));
				json_object_object_add(o, "protocol",
						       json_object_new_string(sl_cfg_region_protocol(&n->cfg, r->id)));
				json_object_object_add(o, "replicas", json_object_new_array());
				json_object_object_add(o, "epoch", json_object_new_int64((int64_t)r->epoch));
				json_object_object_add(o, "sealed", json_object_new_boolean(false));
				uint32_t ep = 0, into = sl_cfg_region_merged(&n->cfg, r->id, &ep);
				if (retired)
					json_object_object_add(o, "merged_into",
							       json_object_new_int((int)into - 1));
				else
					json_object_object_add(o, "unborn", json_object_new_boolean(true));
				json_object_object_add(o, "split_from",
						       json_object_new_int((int)r->split_from - 1));
				q->json = o;
				q->rc = 0;
			}
			atomic_store_explicit(&q->done, 1, memory_order_release);
			continue;
		}
		if (q->kind == CTL_INSTALL) {
			q->rc = r->drv != NULL ? nd_install_snapshot(r, &q->snap) : -ENOENT;
		} else if (q->kind == CTL_WAL_FAULT) {
			q->rc = w->wal_failed ? -EIO
					      : sl_wal_inject_fault(w->wal, (enum sl_wal_op)q->fault_op,
								    q->fault_err, (uint32_t)q->limit);
		} else if (q->kind == CTL_QUERY) {
			q->rc = sl_store_query_ex(r->store, q->series_id, q->from, q->to,
						  q->samples, q->limit, q->strbuf, q->str_cap,
						  &q->n_samples, &q->str_used, &q->type);
		} else if (q->kind == CTL_REGIONS) {
			struct sl_store_stats ss;
			struct sl_cons_status cs;
			sl_store_stats(r->store, &ss);
			/* no replica here: what the node forwards to (role "none") */
			memset(&cs, 0, sizeof(cs));
			cs.leader = r->leader_hint;
			if (r->drv != NULL)
				sl_drv_status(r->drv, &cs);
			struct json_object *o = json_object_new_object();
			char lo[24], hi[24];
			snprintf(lo, sizeof(lo), "0x%016" PRIx64, r->hash_lo);
			snprintf(hi, sizeof(hi), "0x%016" PRIx64, r->hash_hi);
			json_object_object_add(o, "id", json_object_new_int(r->id));
			json_object_object_add(o, "core", json_object_new_int(w->idx));
			json_object_object_add(o, "lcore", json_object_new_int(w->lcore));
			json_object_object_add(o, "protocol", json_object_new_string(sl_cfg_region_protocol(&w->node->cfg, r->id)));
			uint32_t reps[SL_CONS_MAX_PEERS];
			uint32_t nrep = sl_cfg_region_replicas(&w->node->cfg, r->id, reps);
			struct json_object *ra = json_object_new_array();
			for (uint32_t k = 0; k < nrep; k++)
				json_object_array_add(ra, json_object_new_int((int)reps[k]));
			json_object_object_add(o, "replicas", ra);
			json_object_object_add(o, "hash_lo", json_object_new_string(lo));
			json_object_object_add(o, "hash_hi", json_object_new_string(hi));
			json_object_object_add(o, "series", json_object_new_int64((int64_t)ss.series));
			json_object_object_add(o, "points", json_object_new_int64((int64_t)ss.points));
			json_object_object_add(o, "bytes", json_object_new_int64((int64_t)ss.bytes));
			json_object_object_add(o, "role",
					       json_object_new_string(r->drv != NULL ? sl_cons_role_name(cs.role)
										 : "none"));
			json_object_object_add(o, "leader",
					       cs.leader == SL_CONS_NODE_NONE
						       ? NULL
						       : json_object_new_int64((int64_t)cs.leader));
			json_object_object_add(o, "term", json_object_new_int64((int64_t)cs.term));
			/* a replica catching up after its data dir was lost (--rejoin): no vote yet */
			json_object_object_add(o, "rejoining", json_object_new_boolean(cs.rejoining));
			json_object_object_add(o, "commit_index",
					       json_object_new_int64((int64_t)cs.commit_index));
			json_object_object_add(o, "applied_index",
					       json_object_new_int64((int64_t)r->applied_index));
			json_object_object_add(o, "snapshot_index",
					       json_object_new_int64((int64_t)r->snapshot_index));
			/* the segment of the region's log this replica runs, and whether it
			 * applied that segment's SEAL (a protocol switch, node_switch.c) */
			json_object_object_add(o, "epoch", json_object_new_int64((int64_t)r->epoch));
			json_object_object_add(o, "sealed",
					       json_object_new_boolean(atomic_load(&r->sealed)));
			json_object_object_add(o, "rejected",
					       json_object_new_int64((int64_t)r->points_rejected));
			uint32_t busy = 0;
			for (uint32_t k = 0; k < PROP_SLOTS; k++)
				busy += r->props[k].in_use;
			/* proposals in flight (waiting for commit, or forwarded and unanswered) */
			json_object_object_add(o, "proposals_in_flight", json_object_new_int((int)busy));
			json_object_object_add(o, "forwarded_in_flight", json_object_new_int((int)r->fwd_out));
			if (r->ml)
				ml_region_json(w->node, r, o);
			else if (r->drv != NULL &&
				 sl_cons_find(sl_drv_protocol(r->drv)) == &sl_cons_raft_ops)
				raft_region_json(r, o);
			q->json = o;
			q->rc = 0;
		}
		atomic_store_explicit(&q->done, 1, memory_order_release);
	}
}

static int worker_call(struct sl_node *n, unsigned worker, struct ctl_req *q)
{
	atomic_store(&q->done, 0);
	if (rte_ring_mp_enqueue(n->w[worker].ctlq, q) != 0)
		return -EBUSY;
	/* Workers answer every loop iteration; 5 s means a wedged core. */
	for (int i = 0; i < 50000; i++) {
		if (atomic_load_explicit(&q->done, memory_order_acquire))
			return 0;
		rte_delay_us_sleep(100);
	}
	/* The request stays owned by the ring: leak it rather than free memory a worker may
	 * still write. */
	return -ETIMEDOUT;
}

/* ---------------------------------------------------------------- ctl commands */

static struct json_object *status_json(struct sl_node *n)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "node_id", json_object_new_int(n->cfg.node_id));
	json_object_object_add(o, "name", json_object_new_string(n->cfg.name));
	json_object_object_add(o, "version", json_object_new_string(SLUICE_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "uptime_s",
			       json_object_new_double((double)(nd_now_ns() - n->start_ns) / 1e9));
	/* which core's WAL failed and why: the operator's first question */
	char state[160] = "serving";
	struct json_object *fails = json_object_new_array();
	for (unsigned c = 0; c < n->n_workers; c++) {
		int e = atomic_load(&n->w[c].wal_errno);
		if (e == 0)
			continue;
		struct json_object *f = json_object_new_object();
		json_object_object_add(f, "core", json_object_new_int((int)c));
		json_object_object_add(f, "errno", json_object_new_int(e));
		json_object_object_add(f, "error", json_object_new_string(strerror(e)));
		json_object_array_add(fails, f);
		if (json_object_array_length(fails) == 1)
			snprintf(state, sizeof(state), "failed (WAL error on core %u: %s)", c,
				 strerror(e));
	}
	if (sl_node_failed(n) && json_object_array_length(fails) == 0)
		snprintf(state, sizeof(state), "failed (WAL error)");
	json_object_object_add(o, "state", json_object_new_string(state));
	if (n->cfg.ctld[0] != '\0') { /* reports to the control plane; serving never waits */
		struct nd_ctld_stats cs;
		nd_ctld_stats(n, &cs);
		struct json_object *c = json_object_new_object();
		json_object_object_add(c, "sockets", json_object_new_string(n->cfg.ctld));
		json_object_object_add(c, "joins", json_object_new_int64((int64_t)cs.joins));
		json_object_object_add(c, "heartbeats", json_object_new_int64((int64_t)cs.heartbeats));
		json_object_object_add(c, "failures", json_object_new_int64((int64_t)cs.failures));
		json_object_object_add(c, "not_leader", json_object_new_int64((int64_t)cs.not_leader));
		json_object_object_add(c, "map_version", json_object_new_int64((int64_t)cs.map_version));
		json_object_object_add(c, "map_fetches", json_object_new_int64((int64_t)cs.map_fetches));
		json_object_object_add(c, "leader_changes",
				       json_object_new_int64((int64_t)cs.leader_changes));
		json_object_object_add(c, "map_refused", json_object_new_int64((int64_t)cs.map_refused));
		json_object_object_add(c, "segment_changes",
				       json_object_new_int64((int64_t)cs.segment_changes));
		json_object_object_add(o, "ctld", c);
	}
	if (n->fab != NULL)
		json_object_object_add(o, "fabric", nd_fab_status(n));
	json_object_object_add(o, "wal_failures", fails);
	json_object_object_add(o, "workers", json_object_new_int((int)n->n_workers));
	json_object_object_add(o, "regions", json_object_new_int((int)n->cfg.regions));
	json_object_object_add(o, "protocol", json_object_new_string(n->cfg.protocol));
	json_object_object_add(o, "poll_mode", json_object_new_string(
						       n->cfg.poll_mode == SL_POLL_PERF ? "perf" : "adaptive"));
	json_object_object_add(o, "eal_memory", json_object_new_string(n->env.hugepage_mode));
	json_object_object_add(o, "arena_pages",
			       json_object_new_string(sl_arena_mode_name(n->arena_mode)));
	json_object_object_add(o, "data_dir", json_object_new_string(n->cfg.data_dir));
	json_object_object_add(o, "stats_path", json_object_new_string(n->cfg.stats_path));
	json_object_object_add(o, "shm_ingest_path",
			       json_object_new_string(n->cfg.shm_ingest_path));
	json_object_object_add(o, "recovered_entries",
			       json_object_new_int64((int64_t)n->recovered_entries));
	/* grows while the workers re-apply what they recovered */
	uint64_t rec_points = __atomic_load_n(&n->recovered_points, __ATOMIC_RELAXED);
	json_object_object_add(o, "recovered_points", json_object_new_int64((int64_t)rec_points));
	/* totals from the stats segment, read like any other process would */
	struct sl_stats_reader *rd = NULL;
	if (sl_stats_open(n->cfg.stats_path, &rd) == 0) {
		uint64_t tot[SL_STATS_N_COUNTERS] = {0};
		for (unsigned c = 0; c < n->n_workers; c++) {
			struct sl_stats_snapshot s;
			if (sl_stats_read_core_sum(rd, c, &s) >= 0)
				for (int k = 0; k < SL_STATS_N_COUNTERS; k++)
					tot[k] += s.counters[k];
		}
		json_object_object_add(o, "points_in", json_object_new_int64((int64_t)tot[SL_STAT_points_in]));
		json_object_object_add(o, "points_applied",
				       json_object_new_int64((int64_t)tot[SL_STAT_points_applied]));
		json_object_object_add(o, "acks_sent", json_object_new_int64((int64_t)tot[SL_STAT_acks_sent]));
		json_object_object_add(o, "wal_fsyncs", json_object_new_int64((int64_t)tot[SL_STAT_wal_fsyncs]));
		json_object_object_add(o, "points_rejected",
				       json_object_new_int64((int64_t)tot[SL_STAT_points_rejected]));
		json_object_object_add(o, "rejected_type_conflict",
				       json_object_new_int64((int64_t)tot[SL_STAT_rejected_type_conflict]));
		json_object_object_add(o, "wal_errors", json_object_new_int64((int64_t)tot[SL_STAT_wal_errors]));
		json_object_object_add(o, "snapshots_failed",
				       json_object_new_int64((int64_t)tot[SL_STAT_snapshots_failed]));
		sl_stats_close(rd);
	}
	return o;
}

static struct json_object *stats_json(struct sl_node *n)
{
	struct json_object *o = json_object_new_object();
	struct json_object *cores = json_object_new_array();
	struct json_object *totals = json_object_new_object();
	uint64_t tot[SL_STATS_N_COUNTERS] = {0};
	struct sl_stats_reader *rd = NULL;
	if (sl_stats_open(n->cfg.stats_path, &rd) == 0) {
		for (unsigned c = 0; c < n->n_workers; c++) {
			struct sl_stats_snapshot s;
			struct json_object *co = json_object_new_object();
			if (sl_stats_read_core_sum(rd, c, &s) >= 0)
				for (int k = 0; k < SL_STATS_N_COUNTERS; k++) {
					tot[k] += s.counters[k];
					json_object_object_add(co, sl_stats_counter_name(k),
							       json_object_new_int64((int64_t)s.counters[k]));
				}
			json_object_array_add(cores, co);
		}
		sl_stats_close(rd);
	}
	for (int k = 0; k < SL_STATS_N_COUNTERS; k++)
		json_object_object_add(totals, sl_stats_counter_name(k),
				       json_object_new_int64((int64_t)tot[k]));
	json_object_object_add(o, "cores", cores);
	json_object_object_add(o, "totals", totals);
	return o;
}

static int parse_time(struct json_object *args, const char *key, int64_t dflt, int64_t *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(args, key, &v)) {
		*out = dflt;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	*out = json_object_get_int64(v);
	return 0;
}

static const char *type_name(uint8_t t)
{
	switch (t) {
	case SL_VAL_F64: return "f64";
	case SL_VAL_I64: return "i64";
	case SL_VAL_U64: return "u64";
	case SL_VAL_BOOL: return "bool";
	case SL_VAL_STR: return "str";
	}
	return "unknown";
}

static struct json_object *value_json(uint8_t t, uint64_t v, const char *str, uint32_t len)
{
	switch (t) {
	case SL_VAL_STR: return json_object_new_string_len(str, (int)len);
	case SL_VAL_F64: {
		double d;
		memcpy(&d, &v, 8);
		return json_object_new_double(d);
	}
	case SL_VAL_I64: return json_object_new_int64((int64_t)v);
	case SL_VAL_U64: return json_object_new_uint64(v);
	case SL_VAL_BOOL: return json_object_new_boolean(v != 0);
	}
	return NULL;
}

#define CTL_ERR(code, ...)                                                                 \
	do {                                                                               \
		*err_code = code;                                                          \
		snprintf(err_msg, err_len, __VA_ARGS__);                                   \
		return -EINVAL;                                                            \
	} while (0)

static int ctl_query(struct sl_node *n, struct json_object *args, struct json_object **result,
		     const char **err_code, char *err_msg, size_t err_len)
{
	struct json_object *sv;
	if (args == NULL || !json_object_object_get_ex(args, "series", &sv) ||
	    !json_object_is_type(sv, json_type_string))
		CTL_ERR("bad_request", "query needs args.series (a series key string)");
	const char *key = json_object_get_string(sv);
	size_t klen = strlen(key);
	if (klen == 0 || klen > SL_KEY_MAX)
		CTL_ERR("bad_request", "series key must be 1..%d bytes", SL_KEY_MAX);
	int64_t from, to, limit;
	if (parse_time(args, "from", INT64_MIN, &from) || parse_time(args, "to", INT64_MAX, &to) ||
	    parse_time(args, "limit", 100000, &limit))
		CTL_ERR("bad_request", "from, to and limit must be integers");
	if (from > to)
		CTL_ERR("bad_request", "from (%" PRId64 ") is after to (%" PRId64 ")", from, to);
	if (limit <= 0 || limit > 10000000)
		CTL_ERR("bad_request", "limit must be in 1..10000000");
	/* The line protocol stores tags sorted and names re-escaped: the key is looked up in
	 * that form, so tags may come in any order. A key that is no line protocol key (shm
	 * clients may use any bytes) is looked up as given. */
	char canon[SL_KEY_MAX + 1];
	int clen = sl_lp_canonical_key(key, klen, canon, sizeof(canon));
	const char *keys[2] = {key, NULL};
	size_t lens[2] = {klen, 0};
	if (clen > 0 && ((size_t)clen != klen || memcmp(canon, key, klen) != 0)) {
		keys[0] = canon, lens[0] = (size_t)clen;
		keys[1] = key, lens[1] = klen;
	}
	struct ctl_req q;
	memset(&q, 0, sizeof(q));
	q.kind = CTL_QUERY;
	q.from = from;
	q.to = to;
	q.limit = (size_t)limit;
	q.samples = malloc(sizeof(*q.samples) * q.limit);
	q.str_cap = 8u << 20;
	q.strbuf = malloc(q.str_cap);
	if (q.samples == NULL || q.strbuf == NULL) {
		free(q.samples);
		free(q.strbuf);
		CTL_ERR("internal", "out of memory for %" PRId64 " samples", limit);
	}
	for (int k = 0; k < 2 && keys[k] != NULL; k++) {
		q.series_id = sl_series_id(keys[k], lens[k]);
		q.region = nd_route_of(n, q.series_id);
		if (!sl_cfg_region_here(&n->cfg, q.region)) {
			/* a local read of a region with no replica here would find nothing */
			uint32_t reps[SL_CONS_MAX_PEERS];
			uint32_t nrep = sl_cfg_region_replicas(&n->cfg, q.region, reps);
			free(q.samples);
			free(q.strbuf);
			CTL_ERR("not_here",
				"the series is in region %u, which has no replica on node %u: ask "
				"node %u%s",
				q.region, n->cfg.node_id, reps[0], nrep > 1 ? " or another replica" : "");
		}
		int rc = worker_call(n, n->regions[q.region].worker, &q);
		if (rc != 0) {
			if (rc != -ETIMEDOUT) {
				free(q.samples);
				free(q.strbuf);
			}
			CTL_ERR("busy", "worker did not answer: %s", strerror(-rc));
		}
		if (q.rc != -ENOENT) {
			key = keys[k];
			break;
		}
	}
	if (q.rc == -ENOENT) {
		free(q.samples);
		free(q.strbuf);
		CTL_ERR("not_found", "no series '%s'", key);
	}
	bool partial = q.rc == -ENOSPC; /* string buffer full: the caller continues */
	if (partial)
		q.rc = 0;
	struct json_object *o = json_object_new_object();
	char sid[24];
	snprintf(sid, sizeof(sid), "0x%016" PRIx64, q.series_id);
	json_object_object_add(o, "series", json_object_new_string(key));
	json_object_object_add(o, "series_id", json_object_new_string(sid));
	json_object_object_add(o, "region", json_object_new_int((int)q.region));
	struct json_object *pts = json_object_new_array_ext((int)q.n_samples);
	if (q.rc == 0) {
		json_object_object_add(o, "type", json_object_new_string(type_name(q.type)));
		for (size_t i = 0; i < q.n_samples; i++) {
			struct json_object *p = json_object_new_array_ext(2);
			json_object_array_add(p, json_object_new_int64(q.samples[i].ts));
			json_object_array_add(p, value_json(q.type, q.samples[i].value,
							    q.strbuf + q.samples[i].str_off,
							    q.samples[i].str_len));
			json_object_array_add(pts, p);
		}
	}
	json_object_object_add(o, "points", pts);
	json_object_object_add(o, "truncated",
			       json_object_new_boolean(q.rc == 0 && (partial || q.n_samples == q.limit)));
	if (q.rc == 0 && q.n_samples > 0 && (partial || q.n_samples == q.limit))
		json_object_object_add(o, "next_from",
				       json_object_new_int64(q.samples[q.n_samples - 1].ts + 1));
	free(q.samples);
	free(q.strbuf);
	*result = o;
	return 0;
}

static int ctl_regions(struct sl_node *n, struct json_object **result, const char **err_code,
		       char *err_msg, size_t err_len)
{
	struct json_object *arr = json_object_new_array();
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct ctl_req q;
		memset(&q, 0, sizeof(q));
		q.kind = CTL_REGIONS;
		q.region = i;
		int rc = worker_call(n, n->regions[i].worker, &q);
		if (rc != 0) {
			json_object_put(arr);
			CTL_ERR("busy", "worker did not answer: %s", strerror(-rc));
		}
		json_object_array_add(arr, q.json);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "regions", arr);
	*result = o;
	return 0;
}

/* Tests only ([debug] fault_injection): the next write or fdatasync completion of the
 * WAL of every worker (or args.core) reports an error although the I/O ran. */
static int ctl_wal_fault(struct sl_node *n, struct json_object *args,
			 struct json_object **result, const char **err_code, char *err_msg,
			 size_t err_len)
{
	if (!n->cfg.fault_injection)
		CTL_ERR("forbidden", "debug_wal_fault needs [debug] fault_injection = true");
	struct json_object *v;
	const char *op = "fsync", *e = "EIO";
	int64_t core = -1, after = 0;
	if (args && json_object_object_get_ex(args, "op", &v))
		op = json_object_get_string(v);
	if (args && json_object_object_get_ex(args, "errno", &v))
		e = json_object_get_string(v);
	if (parse_time(args, "core", -1, &core) || parse_time(args, "after", 0, &after) ||
	    after < 0 || after > 1000000 || core >= (int64_t)n->n_workers)
		CTL_ERR("bad_request", "core must be a worker index, after in 0..1000000");
	int fop, ferr;
	if (op && strcmp(op, "fsync") == 0)
		fop = SL_WAL_OP_FSYNC;
	else if (op && strcmp(op, "write") == 0)
		fop = SL_WAL_OP_WRITE;
	else
		CTL_ERR("bad_request", "op must be write or fsync");
	if (e && strcmp(e, "EIO") == 0)
		ferr = -EIO;
	else if (e && strcmp(e, "ENOSPC") == 0)
		ferr = -ENOSPC;
	else
		CTL_ERR("bad_request", "errno must be EIO or ENOSPC");
	for (unsigned c = 0; c < n->n_workers; c++) {
		if (core >= 0 && c != (unsigned)core)
			continue;
		struct ctl_req q;
		memset(&q, 0, sizeof(q));
		q.kind = CTL_WAL_FAULT;
		q.fault_op = fop;
		q.fault_err = ferr;
		q.limit = (size_t)after;
		int rc = worker_call(n, c, &q);
		if (rc != 0 || q.rc != 0)
			CTL_ERR("internal", "worker %u: %s", c, strerror(rc ? -rc : -q.rc));
	}
	*result = json_object_new_object();
	return 0;
}

/* Tests only ([debug] fault_injection): worker args.core stops polling (args.hold true,
 * the default) or resumes (false); it still answers ctl requests. A stand-in for a core
 * that falls behind the others, so tests can complete batches out of order. With
 * args.stall_ms instead, one round of the core lasts that long (the stall counters). */
static int ctl_hold_core(struct sl_node *n, struct json_object *args,
			 struct json_object **result, const char **err_code, char *err_msg,
			 size_t err_len)
{
	if (!n->cfg.fault_injection)
		CTL_ERR("forbidden", "debug_hold_core needs [debug] fault_injection = true");
	struct json_object *v;
	int64_t core = -1;
	if (parse_time(args, "core", -1, &core) || core < 0 || core >= (int64_t)n->n_workers)
		CTL_ERR("bad_request", "debug_hold_core needs args.core, a worker index 0..%u",
			n->n_workers - 1);
	int64_t stall_ms = 0;
	if (parse_time(args, "stall_ms", 0, &stall_ms) || stall_ms < 0 || stall_ms > 10000)
		CTL_ERR("bad_request", "args.stall_ms must be 0..10000");
	if (stall_ms > 0) {
		atomic_store(&n->w[core].debug_stall_us, (uint64_t)stall_ms * 1000u);
		*result = json_object_new_object();
		json_object_object_add(*result, "core", json_object_new_int((int)core));
		json_object_object_add(*result, "stall_ms", json_object_new_int64(stall_ms));
		return 0;
	}
	bool hold = true;
	if (args && json_object_object_get_ex(args, "hold", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			CTL_ERR("bad_request", "args.hold must be true or false");
		hold = json_object_get_boolean(v);
	}
	atomic_store(&n->w[core].debug_hold, hold);
	*result = json_object_new_object();
	json_object_object_add(*result, "core", json_object_new_int((int)core));
	json_object_object_add(*result, "hold", json_object_new_boolean(hold));
	return 0;
}

/* Tests only ([debug] fault_injection): faults on the fabric link to node args.peer:
 * args.dir "out", "in" or "both" (default both), args.drop_pct 0..100 of the frames dropped
 * (100: the link is cut), args.delay_ms 0..10000 (outgoing frames sent that late). All
 * zero heals the link. Applies from the workers' next round. */
static int ctl_fabric_fault(struct sl_node *n, struct json_object *args,
			    struct json_object **result, const char **err_code, char *err_msg,
			    size_t err_len)
{
	if (!n->cfg.fault_injection)
		CTL_ERR("forbidden", "debug_fabric needs [debug] fault_injection = true");
	if (n->fab == NULL)
		CTL_ERR("bad_request", "debug_fabric: this node has no fabric ([cluster] nodes = 1)");
	int64_t peer = 0, drop = 0, delay = 0;
	struct nd_fab_peer *p = NULL;
	if (parse_time(args, "peer", 0, &peer) == 0)
		for (unsigned i = 0; i < n->fab->n_peers; i++)
			if (n->fab->peer[i].node == peer)
				p = &n->fab->peer[i];
	if (p == NULL)
		CTL_ERR("bad_request", "debug_fabric needs args.peer, the id of another node");
	if (parse_time(args, "drop_pct", 0, &drop) || drop < 0 || drop > 100)
		CTL_ERR("bad_request", "args.drop_pct must be 0..100");
	if (parse_time(args, "delay_ms", 0, &delay) || delay < 0 || delay > 10000)
		CTL_ERR("bad_request", "args.delay_ms must be 0..10000");
	const char *dir = "both";
	struct json_object *v;
	if (args && json_object_object_get_ex(args, "dir", &v))
		dir = json_object_get_string(v);
	bool out = strcmp(dir, "out") == 0 || strcmp(dir, "both") == 0;
	bool in = strcmp(dir, "in") == 0 || strcmp(dir, "both") == 0;
	if (!out && !in)
		CTL_ERR("bad_request", "args.dir must be out, in or both");
	if (out) {
		atomic_store(&p->fault_out_drop, (uint32_t)drop);
		atomic_store(&p->fault_out_delay_ms, (uint32_t)delay);
	}
	if (in)
		atomic_store(&p->fault_in_drop, (uint32_t)drop);
	*result = json_object_new_object();
	json_object_object_add(*result, "peer", json_object_new_int((int)peer));
	json_object_object_add(*result, "dir", json_object_new_string(dir));
	json_object_object_add(*result, "drop_pct", json_object_new_int((int)drop));
	json_object_object_add(*result, "delay_ms", json_object_new_int((int)delay));
	return 0;
}

/* Tests only ([debug] fault_injection): region args.region installs the store image in
 * args.file (a region snapshot file) as if its raft leader had sent it, at the image's
 * own index and args.term (default 1), through the same function a driver's install
 * calls. The protocol instance is not told: restart the node afterwards. */
static int ctl_install_snapshot(struct sl_node *n, struct json_object *args,
				struct json_object **result, const char **err_code, char *err_msg,
				size_t err_len)
{
	if (!n->cfg.fault_injection)
		CTL_ERR("forbidden", "debug_install_snapshot needs [debug] fault_injection = true");
	struct json_object *v;
	int64_t region = -1, term = 1;
	const char *file = NULL;
	if (args && json_object_object_get_ex(args, "file", &v))
		file = json_object_get_string(v);
	if (parse_time(args, "region", -1, &region) || parse_time(args, "term", 1, &term) ||
	    region < 0 || region >= (int64_t)n->cfg.regions || term < 1 || file == NULL)
		CTL_ERR("bad_request", "debug_install_snapshot needs args.region (0..%u), "
				       "args.file and optionally args.term >= 1",
			n->cfg.regions - 1);
	FILE *f = fopen(file, "rb");
	if (f == NULL)
		CTL_ERR("bad_request", "%s: %s", file, strerror(errno));
	uint8_t *img = NULL;
	long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (len > 0 && len <= (1l << 30) && fseek(f, 0, SEEK_SET) == 0)
		img = malloc((size_t)len);
	bool ok = img != NULL && fread(img, 1, (size_t)len, f) == (size_t)len;
	fclose(f);
	if (!ok) {
		free(img);
		CTL_ERR("bad_request", "%s: not a readable file of 1 byte .. 1 GiB", file);
	}
	struct ctl_req *q = calloc(1, sizeof(*q));
	if (q == NULL) {
		free(img);
		CTL_ERR("internal", "out of memory");
	}
	const struct region *r = &n->regions[region];
	q->kind = CTL_INSTALL;
	q->region = (uint32_t)region;
	q->snap = (struct sl_cons_snapshot){
	    .index = len >= SL_STORE_SNAP_HDR_BYTES ? sl_get_u64(img + 12) : 0,
	    .term = (uint64_t)term,
	    .len = (uint32_t)len,
	    .data = img};
	nd_region_conf(n, (uint32_t)region, &q->snap.conf);
	int rc = worker_call(n, r->worker, q);
	if (rc != 0) /* the worker may still read both: leaked, not freed */
		CTL_ERR("internal", "worker %u: %s", r->worker, strerror(-rc));
	rc = q->rc;
	uint64_t index = q->snap.index;
	free(img);
	free(q);
	if (rc != 0)
		CTL_ERR("refused", "region %" PRId64 ": snapshot refused (%s); see the node's log",
			region, strerror(-rc));
	*result = json_object_new_object();
	json_object_object_add(*result, "region", json_object_new_int((int)region));
	json_object_object_add(*result, "index", json_object_new_int64((int64_t)index));
	return 0;
}

int sl_node_ctl(void *node, const char *cmd, struct json_object *args,
		struct json_object **result, const char **err_code, char *err_msg, size_t err_len)
{
	struct sl_node *n = node;
	if (strcmp(cmd, "status") == 0) {
		*result = status_json(n);
		return 0;
	}
	if (strcmp(cmd, "stats") == 0) {
		*result = stats_json(n);
		return 0;
	}
	if (strcmp(cmd, "regions") == 0)
		return ctl_regions(n, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "query") == 0)
		return ctl_query(n, args, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "config") == 0) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		if (f == NULL)
			CTL_ERR("internal", "open_memstream: %s", strerror(errno));
		sl_config_dump(&n->cfg, f);
		fclose(f);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "config", json_object_new_string(buf));
		free(buf);
		*result = o;
		return 0;
	}
	if (strcmp(cmd, "debug_wal_fault") == 0)
		return ctl_wal_fault(n, args, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "debug_hold_core") == 0)
		return ctl_hold_core(n, args, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "debug_fabric") == 0)
		return ctl_fabric_fault(n, args, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "debug_install_snapshot") == 0)
		return ctl_install_snapshot(n, args, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "shutdown") == 0) {
		sl_node_stop(n);
		*result = json_object_new_object();
		return 0;
	}
	/* an operator who asked the node instead of ctld */
	static const char *const ctld_cmds[][2] = {
	    {"transfer_leader", "region transfer-leader R NODE"},
	    {"drain", "node drain NODE"},
	    {"moves", "moves"},
	    {"set_protocol", "region set-protocol R PROTOCOL"},
	    {"move_replica", "region move-replica R FROM TO"},
	    {"decommission", "node decommission NODE"},
	    {"recommission", "node recommission NODE"},
	};
	for (size_t i = 0; i < sizeof(ctld_cmds) / sizeof(ctld_cmds[0]); i++)
		if (strcmp(cmd, ctld_cmds[i][0]) == 0)
			CTL_ERR("unknown_command",
				"%s is a sluice-ctld command: leader moves, protocol switches and "
				"replica moves are recorded by the control plane (sluicectl "
				"--socket CTLD_SOCKET %s)%s%s",
				cmd, ctld_cmds[i][1],
				n->cfg.ctld[0] != '\0' ? "; this node reports to "
							: "; this node has no [cluster] ctld",
				n->cfg.ctld);
	*err_code = "unknown_command";
	snprintf(err_msg, err_len,
		 "unknown command '%s' (try: status, regions, stats, query, config, shutdown)",
		 cmd);
	return -ENOENT;
}
