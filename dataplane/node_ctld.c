/* node_ctld.c - the node and sluice-ctld ([cluster] ctld): at start the node takes the
 * region map from ctld (kept in its data dir, used when ctld does not answer); then it
 * reports from the main lcore: a join, then a heartbeat every 500 ms with its regions'
 * status (asked of the workers without waiting), calls under 100 ms, so the node serves
 * whatever ctld does. */
#include "ctl.h"
#include "node_internal.h"

#define CTLD_SOCKS_MAX 8
#define CTLD_PERIOD_NS 500000000ull
#define CTLD_CALL_MS 100              /* one call */
#define CTLD_BUDGET_NS 100000000ull   /* every try of one round together */

struct nd_ctld {
	char socks[CTLD_SOCKS_MAX][SL_CFG_PATH_MAX];
	uint32_t n_socks;
	uint32_t cur;     /* the replica that answered last: tried first */
	bool joined;
	bool collecting;  /* region requests are out with the workers */
	uint32_t asked;   /* ...for this many regions (a split may add more meanwhile) */
	uint64_t next_ns;
	uint64_t warned_ns; /* a refusal is logged once a minute at most */
	struct ctl_req *reqs; /* one per region; owned by a worker's ring while out */
	struct nd_ctld_stats st;
};

#define MAP_CALL_MS 1000		/* a map request at start, per replica */
#define MAP_WAIT_NS 5000000000ull	/* rounds over the replicas, ctld may be starting */
#define MAP_FILE_BYTES (64u << 10) /* regions.map: a line per region, at most 256 */

/* The ctld sockets of [cluster] ctld; count, or -EINVAL. */
static int ctld_socks(const char *list, char (*out)[SL_CFG_PATH_MAX], char *err, size_t err_len)
{
	char buf[SL_CFG_PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	int k = 0;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		if (*t == '\0')
			continue;
		if (k == CTLD_SOCKS_MAX) {
			snprintf(err, err_len, "[cluster] ctld: at most %u sockets", CTLD_SOCKS_MAX);
			return -EINVAL;
		}
		snprintf(out[k++], SL_CFG_PATH_MAX, "%s", t);
	}
	return k;
}

/* Of each region in ctld's map besides the placement: the segment of its log it is at,
 * and the protocol a switch in progress goes to ("": none). */
struct map_seg {
	uint32_t epoch;
	char next[32];
	uint32_t learner; /* a replica move's learner of that segment (0: none) */
	uint32_t core;	  /* the worker core every node runs it on + 1 (0: as it is) */
};

/* ctld's `regions` answer as map entries: count, or -EBADMSG (0: not bootstrapped). seg
 * may be NULL; a map without epochs (an older ctld) is at segment 0 throughout. */
static int map_from_json(struct json_object *res, struct sl_cfg_map_region *m,
			 struct map_seg *seg, uint32_t max)
{
	struct json_object *arr = NULL;
	if (!json_object_object_get_ex(res, "regions", &arr) ||
	    !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > max)
		return -EBADMSG;
	uint32_t n = (uint32_t)json_object_array_length(arr);
	for (uint32_t r = 0; r < n; r++) {
		struct json_object *o = json_object_array_get_idx(arr, r), *v = NULL, *reps = NULL;
		struct sl_cfg_map_region *e = &m[r];
		memset(e, 0, sizeof(*e));
		if (!json_object_object_get_ex(o, "id", &v) || json_object_get_int64(v) != r ||
		    !json_object_object_get_ex(o, "protocol", &v) ||
		    !json_object_is_type(v, json_type_string))
			return -EBADMSG;
		snprintf(e->protocol, sizeof(e->protocol), "%s", json_object_get_string(v));
		if (!json_object_object_get_ex(o, "preferred_leader", &v) ||
		    !json_object_object_get_ex(o, "replicas", &reps) ||
		    !json_object_is_type(reps, json_type_array) ||
		    json_object_array_length(reps) > SL_CFG_MAP_COPIES)
			return -EBADMSG;
		e->preferred = (uint32_t)json_object_get_int64(v);
		e->copies = (uint32_t)json_object_array_length(reps);
		if (seg != NULL) {
			memset(&seg[r], 0, sizeof(seg[r]));
			if (json_object_object_get_ex(o, "epoch", &v) &&
			    (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
			     json_object_get_int64(v) > (int64_t)0xffffff))
				return -EBADMSG;
			seg[r].epoch = v != NULL ? (uint32_t)json_object_get_int64(v) : 0;
			v = NULL;
			if (json_object_object_get_ex(o, "next_protocol", &v) && v != NULL) {
				if (!json_object_is_type(v, json_type_string))
					return -EBADMSG;
				snprintf(seg[r].next, sizeof(seg[r].next), "%s",
					 json_object_get_string(v));
			}
			v = NULL;
			if (json_object_object_get_ex(o, "core", &v) && v != NULL) {
				int64_t core = json_object_get_int64(v);
				if (!json_object_is_type(v, json_type_int) || core < 0 ||
				    core >= SL_CFG_MAX_WORKERS)
					return -EBADMSG;
				seg[r].core = (uint32_t)core + 1;
			}
			v = NULL;
			if (json_object_object_get_ex(o, "learner", &v) && v != NULL) {
				int64_t ln = json_object_get_int64(v);
				if (!json_object_is_type(v, json_type_int) || ln < 1 ||
				    ln > SL_CFG_MAX_NODES)
					return -EBADMSG;
				seg[r].learner = (uint32_t)ln;
			}
		}
		for (uint32_t k = 0; k < e->copies; k++)
			e->nodes[k] = (uint32_t)json_object_get_int64(json_object_array_get_idx(reps, k));
		/* a map that had a split says every region's range (ranged), and of a region
		 * made by one its parent and the segment both started at */
		v = NULL;
		if (json_object_object_get_ex(o, "split_from", &v)) {
			struct json_object *ep = NULL;
			int64_t from = json_object_get_int64(v);
			if (!json_object_is_type(v, json_type_int) || from < 0 || from >= r ||
			    !json_object_object_get_ex(o, "split_epoch", &ep) ||
			    !json_object_is_type(ep, json_type_int) || json_object_get_int64(ep) < 1 ||
			    json_object_get_int64(ep) > (int64_t)0xffffff)
				return -EBADMSG;
			e->split_from = (uint32_t)from + 1;
			e->split_epoch = (uint32_t)json_object_get_int64(ep);
		}
		/* a region merged into another: which, and the segment that holds both */
		v = NULL;
		if (json_object_object_get_ex(o, "merged_into", &v)) {
			struct json_object *ep = NULL;
			int64_t into = json_object_get_int64(v);
			if (!json_object_is_type(v, json_type_int) || into < 0 ||
			    into >= (int64_t)max || into == r ||
			    !json_object_object_get_ex(o, "merge_epoch", &ep) ||
			    !json_object_is_type(ep, json_type_int) || json_object_get_int64(ep) < 1 ||
			    json_object_get_int64(ep) > (int64_t)0xffffff)
				return -EBADMSG;
			e->merged_into = (uint32_t)into + 1;
			e->merge_epoch = (uint32_t)json_object_get_int64(ep);
		}
		struct json_object *lo = NULL, *hi = NULL;
		if (json_object_object_get_ex(o, "hash_lo", &lo) &&
		    json_object_object_get_ex(o, "hash_hi", &hi)) {
			const char *a = json_object_get_string(lo), *b = json_object_get_string(hi);
			char *end_a = NULL, *end_b = NULL;
			if (a == NULL || b == NULL || strncmp(a, "0x", 2) != 0 || strncmp(b, "0x", 2) != 0)
				return -EBADMSG;
			errno = 0;
			e->hash_lo = strtoull(a + 2, &end_a, 16);
			e->hash_hi = strtoull(b + 2, &end_b, 16);
			if (errno != 0 || *end_a != '\0' || *end_b != '\0' || end_a == a + 2 ||
			    end_b == b + 2)
				return -EBADMSG;
		}
	}
	/* ranged once any region was made by a split or merged (before, the even shares) */
	bool split = false;
	for (uint32_t r = 0; r < n; r++)
		split = split || m[r].split_from != 0 || m[r].merged_into != 0;
	for (uint32_t r = 0; r < n; r++)
		m[r].ranged = split;
	return (int)n;
}

/* The map from ctld: the first replica whose answer holds a bootstrapped map (any replica
 * has the replicated map). Count, or -ENOTCONN after MAP_WAIT_NS (one call more at most). */
static int map_from_ctld(char (*socks)[SL_CFG_PATH_MAX], int n_socks,
			 struct sl_cfg_map_region *m, struct map_seg *seg, uint32_t max)
{
	uint64_t end = nd_now_ns() + MAP_WAIT_NS;
	/* bounded by the deadline: every call has a timeout */
	while (nd_now_ns() < end) {
		for (int i = 0; i < n_socks && nd_now_ns() < end; i++) {
			struct json_object *resp = NULL, *res = NULL;
			const char *code = NULL, *msg = NULL;
			int rc = sl_ctl_call(socks[i], "regions", NULL, MAP_CALL_MS, &resp);
			if (rc == 0)
				rc = sl_ctl_response_parse(resp, &res, &code, &msg);
			int got = rc == 0 ? map_from_json(res, m, seg, max) : rc;
			json_object_put(resp);
			if (got > 0)
				return got;
		}
		struct timespec ts = {0, 100000000}; /* ctld still electing or bootstrapping */
		nanosleep(&ts, NULL);
	}
	return -ENOTCONN;
}

static int map_save(const struct sl_node *n, const char *path, char *err, size_t err_len)
{
	static char text[MAP_FILE_BYTES];
	char tmp[SL_CFG_PATH_MAX + 48];
	int len = sl_cfg_map_format(&n->cfg, text, sizeof(text));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = len < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	int rc = len < 0 ? len : fd < 0 ? -errno : 0;
	if (rc == 0 && write(fd, text, (size_t)len) != len)
		rc = -EIO;
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	int dfd = rc == 0 ? open(n->cfg.data_dir, O_RDONLY | O_DIRECTORY) : -1;
	if (rc == 0 && (dfd < 0 || fsync(dfd) != 0))
		rc = -errno;
	if (dfd >= 0)
		close(dfd);
	if (rc != 0)
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
	return rc;
}

/* Whether ctld records node `id` as having joined before (state up or down): 1, 0 (not
 * joined, or no replica answered within MAP_CALL_MS each). For a new data dir. */
int nd_ctld_joined_before(const struct sl_node *n, char *state, size_t state_len)
{
	char socks[CTLD_SOCKS_MAX][SL_CFG_PATH_MAX], err[128];
	int n_socks = ctld_socks(n->cfg.ctld, socks, err, sizeof(err));
	for (int i = 0; i < n_socks; i++) {
		struct json_object *resp = NULL, *res = NULL, *arr = NULL;
		const char *code = NULL, *msg = NULL;
		int rc = sl_ctl_call(socks[i], "members", NULL, MAP_CALL_MS, &resp);
		if (rc == 0)
			rc = sl_ctl_response_parse(resp, &res, &code, &msg);
		int joined = -1;
		if (rc == 0 && json_object_object_get_ex(res, "members", &arr) &&
		    json_object_is_type(arr, json_type_array)) {
			joined = 0;
			for (size_t k = 0; k < json_object_array_length(arr); k++) {
				struct json_object *m = json_object_array_get_idx(arr, k), *v = NULL;
				if (json_object_object_get_ex(m, "node", &v) &&
				    json_object_get_int64(v) == (int64_t)n->cfg.node_id &&
				    json_object_object_get_ex(m, "state", &v)) {
					snprintf(state, state_len, "%s", json_object_get_string(v));
					joined = strcmp(state, "expected") != 0;
				}
			}
		}
		json_object_put(resp);
		if (joined >= 0)
			return joined;
	}
	return 0;
}

/* At start, before any region exists: the region map. ctld's when it answers (within
 * MAP_WAIT_NS, 5 s), else the one this data dir
 * keeps (DATA_DIR/regions.map), else the config's. A data dir keeps the first map it ran
 * with; ctld answering with another one refuses the start: moving a region's replicas is a
 * membership change, which a restart must not do behind the protocol's back. */
int nd_ctld_take_map(struct sl_node *n, char *err, size_t err_len)
{
	/* a single node too: its regions split, merge and move between cores through ctld */
	if (n->cfg.ctld[0] == '\0')
		return 0;
	static struct sl_cfg_map_region saved[SL_CFG_MAX_REGIONS], got[SL_CFG_MAX_REGIONS];
	static struct map_seg seg[SL_CFG_MAX_REGIONS];
	static char text[MAP_FILE_BYTES];
	char socks[CTLD_SOCKS_MAX][SL_CFG_PATH_MAX], path[SL_CFG_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/regions.map", n->cfg.data_dir);
	int n_saved = -ENOENT;
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		size_t len = fread(text, 1, sizeof(text) - 1, f);
		text[len] = '\0';
		fclose(f);
		n_saved = sl_cfg_map_parse(text, saved, SL_CFG_MAX_REGIONS);
		if (n_saved < 0) {
			snprintf(err, err_len, "%s: unreadable region map (refusing to guess)", path);
			return -EBADMSG;
		}
	}
	int n_socks = ctld_socks(n->cfg.ctld, socks, err, err_len);
	if (n_socks < 0)
		return n_socks;
	int n_got = map_from_ctld(socks, n_socks, got, seg, SL_CFG_MAX_REGIONS);
	int rc = 0;
	if (n_got > 0) {
		/* a region past its first segment was reconfigured through ctld: this data
		 * dir's epochs file says which replicas the segment it runs has
		 * (nd_switch_recover), whatever ctld's map or the kept one says */
		for (int r = 0; r < n_saved && r < n_got; r++)
			if (seg[r].epoch > 0) {
				saved[r].copies = got[r].copies;
				memcpy(saved[r].nodes, got[r].nodes, sizeof(saved[r].nodes));
			}
		/* regions ctld has beyond the kept map were split off while this node was
		 * away (its replicas sealed them first: ctld waits for every replica) */
		int d = n_saved > 0 ? (n_saved > n_got ? 0 : sl_cfg_map_diff(saved, got, (uint32_t)n_saved))
				    : -1;
		if (d >= 0) {
			snprintf(err, err_len,
				 "ctld's region map differs from the one %s was written with (region "
				 "%d: %s on nodes %u.. preferring %u here, %s on nodes %u.. preferring "
				 "%u at ctld); a change of replicas needs a membership change, which "
				 "sluice does not do yet: start ctld with the cluster's original map",
				 n->cfg.data_dir, d, saved[d].protocol, saved[d].nodes[0],
				 saved[d].preferred, got[d].protocol, got[d].nodes[0], got[d].preferred);
			return -EINVAL;
		}
		rc = sl_cfg_map_set(&n->cfg, got, (uint32_t)n_got, err, err_len);
		if (rc == 0)
			SL_LOG(NOTICE, node, "region map of %d regions taken from ctld\n", n_got);
		/* the core each region runs on after a core move (nd_region_place) */
		for (int r = 0; rc == 0 && r < n_got; r++)
			n->map_core[r] = seg[r].core;
	} else if (n_saved > 0) {
		rc = sl_cfg_map_set(&n->cfg, saved, (uint32_t)n_saved, err, err_len);
		if (rc == 0)
			SL_LOG(NOTICE, node,
			       "ctld did not answer: running the region map kept in %s\n", path);
	} else {
		SL_LOG(WARNING, node,
		       "ctld did not answer and this data dir keeps no region map: running the "
		       "map derived from the config (ctld derives the same from the same "
		       "settings), kept in %s from now on\n",
		       path);
	}
	/* ctld's map replaces the kept one: its preferred leaders may have moved meanwhile */
	if (rc == 0 && (n_saved < 0 || n_got > 0))
		rc = map_save(n, path, err, err_len);
	return rc;
}

int nd_ctld_init(struct sl_node *n, char *err, size_t err_len)
{
	if (n->cfg.ctld[0] == '\0')
		return 0;
	struct nd_ctld *c = calloc(1, sizeof(*c));
	if (c != NULL)
		c->reqs = calloc(SL_CFG_MAX_REGIONS, sizeof(*c->reqs)); /* splits add regions */
	if (c == NULL || c->reqs == NULL) {
		free(c);
		snprintf(err, err_len, "out of memory at start-up");
		return -ENOMEM;
	}
	int k = ctld_socks(n->cfg.ctld, c->socks, err, err_len);
	if (k < 0) {
		free(c->reqs);
		free(c);
		return k;
	}
	c->n_socks = (uint32_t)k;
	n->ctld = c;
	return 0;
}

void nd_ctld_fini(struct sl_node *n)
{
	/* the workers have stopped: a request still in a ring is never touched again */
	if (n->ctld != NULL)
		for (uint32_t i = 0; i < n->cfg.regions; i++)
			json_object_put(n->ctld->reqs[i].json);
	if (n->ctld != NULL)
		free(n->ctld->reqs);
	free(n->ctld);
	n->ctld = NULL;
}

void nd_ctld_stats(const struct sl_node *n, struct nd_ctld_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (n->ctld != NULL)
		*out = n->ctld->st;
}

/* One call, to the replica that answered last and then the others, within the round's
 * budget. 0 with *result (a new reference), or a negative errno. */
static int call_ctld(struct nd_ctld *c, const char *cmd, struct json_object *args,
		     struct json_object **result)
{
	uint64_t start = nd_now_ns();
	int rc = -ENOTCONN;
	for (uint32_t k = 0; k < c->n_socks; k++) {
		uint64_t spent = nd_now_ns() - start;
		if (spent >= CTLD_BUDGET_NS)
			break;
		/* a hung replica (stopped, not dead) costs the rest of the budget, no more */
		int left_ms = (int)((CTLD_BUDGET_NS - spent) / 1000000u);
		int timeout = left_ms < CTLD_CALL_MS ? (left_ms > 0 ? left_ms : 1) : CTLD_CALL_MS;
		uint32_t i = (c->cur + k) % c->n_socks;
		struct json_object *resp = NULL, *res = NULL;
		const char *code = NULL, *msg = NULL;
		rc = sl_ctl_call(c->socks[i], cmd, args, timeout, &resp);
		if (rc == 0)
			rc = sl_ctl_response_parse(resp, &res, &code, &msg);
		if (rc == 0) {
			*result = json_object_get(res);
			json_object_put(resp);
			c->cur = i;
			return 0;
		}
		if (rc == -EREMOTEIO && strcmp(code, "not_leader") == 0)
			c->st.not_leader++;
		else if (rc == -EREMOTEIO && strcmp(code, "not_joined") == 0)
			c->joined = false; /* a ctld that lost our join: join again */
		if (rc == -EREMOTEIO && strcmp(code, "not_leader") != 0 &&
		    nd_now_ns() - c->warned_ns > 60000000000ull) {
			/* a refusal the node cannot fix by itself (a node id ctld does not
			 * expect, a bad report): said, not repeated every round */
			c->warned_ns = nd_now_ns();
			SL_LOG(WARNING, node, "ctld %s refused %s: %s: %s\n", c->socks[i], cmd, code,
			       msg);
		}
		json_object_put(resp);
	}
	c->st.failures++;
	return rc;
}

static void send_join(struct sl_node *n, struct nd_ctld *c)
{
	char addr[SL_CFG_PATH_MAX + 8];
	/* where the node is reached: its port address when it has ports, else its ctl
	 * socket (nodes of one host) */
	if (n->cfg.ipv4[0] != '\0' && n->ports.n > 0)
		snprintf(addr, sizeof(addr), "%s:%u", n->cfg.ipv4, n->cfg.session_port);
	else
		snprintf(addr, sizeof(addr), "unix:%s", n->cfg.ctl_socket);
	struct json_object *args = json_object_new_object(), *res = NULL, *v = NULL;
	json_object_object_add(args, "node", json_object_new_int(n->cfg.node_id));
	json_object_object_add(args, "address", json_object_new_string(addr));
	json_object_object_add(args, "cores", json_object_new_int((int)n->n_workers));
	if (n->base_workers != n->n_workers) /* its workers changed: where unmoved regions are */
		json_object_object_add(args, "lineage_cores",
				       json_object_new_int((int)n->base_workers));
	if (call_ctld(c, "join", args, &res) == 0) {
		/* applied through ctld's log: until then the answer says false, ask again */
		if (json_object_object_get_ex(res, "joined", &v) && json_object_get_boolean(v)) {
			c->joined = true;
			c->st.joins++;
			SL_LOG(NOTICE, node, "joined the cluster at ctld %s\n", c->socks[c->cur]);
		}
	}
	json_object_put(res);
	json_object_put(args);
}

/* What ctld's map says of a region's log segments, for its worker (node_switch.c): a
 * switch asked at the segment the region is at (seal it), or a later segment and its
 * protocol (switch to it once sealed). */
static void map_segment(struct sl_node *n, struct nd_ctld *c, uint32_t r,
			const struct sl_cfg_map_region *m, const struct map_seg *seg)
{
	struct region *rg = &n->regions[r];
	uint32_t want = atomic_load(&rg->want_epoch);
	if (seg->epoch < want) {
		c->st.map_refused++; /* an older map than one taken before: ignored */
		return;
	}
	if (seg->epoch > want) {
		_Static_assert(sizeof(rg->want_proto) == sizeof(m->protocol), "protocol names");
		memcpy(rg->want_proto, m->protocol, sizeof(rg->want_proto));
		rg->want_proto[sizeof(rg->want_proto) - 1] = '\0';
		_Static_assert(sizeof(rg->want_nodes) == sizeof(m->nodes), "replica sets");
		memcpy(rg->want_nodes, m->nodes, sizeof(rg->want_nodes));
		rg->want_copies = m->copies;
		rg->want_preferred = m->preferred;
		atomic_store(&rg->want_core, seg->core);
		atomic_store(&rg->want_learner, seg->learner);
		atomic_store(&rg->want_seal, seg->next[0] != '\0');
		atomic_store_explicit(&rg->want_epoch, seg->epoch, memory_order_release);
		c->st.segment_changes++;
		SL_LOG(NOTICE, node, "region %u: ctld moved it to segment %u of its log, under %s "
				     "on %u replicas\n",
		       r, seg->epoch, m->protocol, m->copies);
		return;
	}
	bool seal = seg->next[0] != '\0';
	/* the core of the segment it runs (a node that only forwards moves to it: node_switch.c) */
	atomic_store(&rg->want_core, seg->core);
	if (seg->learner != atomic_load(&rg->want_learner)) {
		if (seg->learner != 0)
			SL_LOG(NOTICE, node, "region %u: ctld catches node %u up as a learner of "
					     "segment %u before a replica move's seal\n",
			       r, seg->learner, seg->epoch);
		atomic_store(&rg->want_learner, seg->learner);
	}
	if (seal && !atomic_load(&rg->want_seal))
		SL_LOG(NOTICE, node, "region %u: ctld switches it from %s to %s: sealing\n", r,
		       m->protocol, seg->next);
	atomic_store(&rg->want_seal, seal);
}

/* Every region's range, parent and merge in ctld's map, taken (ranged from here on); a
 * region merged into another is that one's merge_child until this node retired it: the
 * worker of the region it went into merges it (node_switch.c, region_merge). Before any
 * want_epoch moves (map_segment), so a worker that sees the new segment sees the merge. */
static void map_take_ranges(struct sl_node *n, const struct sl_cfg_map_region *got, uint32_t n_got)
{
	for (uint32_t i = 0; i < n_got; i++) {
		n->cfg.map_lo[i] = got[i].hash_lo;
		n->cfg.map_hi[i] = got[i].hash_hi;
		n->cfg.map_split_from[i] = (uint16_t)got[i].split_from;
		n->cfg.map_split_epoch[i] = got[i].split_epoch;
		n->cfg.map_merged_into[i] = (uint16_t)got[i].merged_into;
		n->cfg.map_merge_epoch[i] = got[i].merge_epoch;
		if (i < n->cfg.regions) {
			n->regions[i].map_lo = got[i].hash_lo;
			n->regions[i].map_hi = got[i].hash_hi;
		}
	}
	n->cfg.map_ranged = true;
	for (uint32_t i = 0; i < n_got && i < n->cfg.regions; i++) {
		struct region *s = &n->regions[i];
		uint32_t into = got[i].merged_into;
		if (into == 0 || atomic_load(&s->retired) ||
		    atomic_load(&n->regions[into - 1].merge_child) == i + 1)
			continue;
		s->merge_epoch = got[i].merge_epoch;
		atomic_store(&n->regions[into - 1].merge_child, i + 1);
		SL_LOG(NOTICE, node, "region %u: merged into region %u at its segment %u (ctld's "
				     "map)\n", i, into - 1, got[i].merge_epoch);
	}
}

/* A map of as many regions with a merge this node has not taken: checked (the live
 * ranges tile the hash space) and taken. 0, or -EINVAL (not taken). */
static int map_take_merges(struct sl_node *n, const struct sl_cfg_map_region *got, uint32_t n_got)
{
	static struct sl_config chk;
	char err[256];
	bool news = false;
	for (uint32_t i = 0; i < n_got; i++)
		news = news || got[i].merged_into != n->cfg.map_merged_into[i];
	if (!news)
		return 0;
	chk = n->cfg;
	if (!got[0].ranged || sl_cfg_map_set(&chk, got, n_got, err, sizeof(err)) != 0) {
		SL_LOG(WARNING, node, "ctld's map merges regions: %s\n",
		       got[0].ranged ? err : "but has no ranges");
		return -EINVAL;
	}
	map_take_ranges(n, got, n_got);
	atomic_store(&n->map_dirty, true);
	return 0;
}

/* Regions ctld's map has beyond this node's: made by splits (docs/cluster.md, "Splitting a
 * region"). Each comes unborn, on its parent's core: routing keeps its range with the
 * parent until the parent's core splits (a replica of the parent) or makes it at once
 * (the node only forwards: node_switch.c). Every region's range in the map is taken (a
 * parent's shrinks; routing follows once the child is born). 0, or -EINVAL (not a map
 * of splits of this one: not taken). */
static int map_add_regions(struct sl_node *n, const struct sl_cfg_map_region *got,
			   const struct map_seg *seg, uint32_t n_got)
{
	static struct sl_config chk;
	char err[256];
	uint32_t old = n->cfg.regions;
	chk = n->cfg;
	chk.regions = n->regions_conf; /* the check: ranges tile, each new one has a parent */
	if (!got[0].ranged || sl_cfg_map_set(&chk, got, n_got, err, sizeof(err)) != 0) {
		SL_LOG(WARNING, node, "ctld's map has %u regions: %s\n", n_got,
		       got[0].ranged ? err : "more regions, but no ranges");
		return -EINVAL;
	}
	map_take_ranges(n, got, n_got);
	for (uint32_t i = old; i < n_got; i++) {
		struct region *r = &n->regions[i];
		memset(r, 0, sizeof(*r));
		for (uint32_t k = 0; k < n->cfg.n_proto_names; k++) /* all registered at start */
			if (strcmp(n->cfg.proto_names[k], got[i].protocol) == 0)
				n->cfg.region_proto[i] = (uint8_t)k;
		n->cfg.map_copies[i] = (uint8_t)got[i].copies;
		for (uint32_t k = 0; k < got[i].copies; k++)
			n->cfg.map_nodes[i][k] = (uint8_t)got[i].nodes[k];
		n->cfg.map_preferred[i] = (uint8_t)got[i].preferred;
		nd_region_place(n, r, i);
		r->epoch = r->split_epoch;
		atomic_store(&r->want_epoch, r->epoch);
		atomic_store(&r->unborn, true);
		memcpy(r->want_proto, got[i].protocol, sizeof(r->want_proto));
		r->want_proto[sizeof(r->want_proto) - 1] = '\0';
		memcpy(r->want_nodes, got[i].nodes, sizeof(r->want_nodes));
		r->want_copies = got[i].copies;
		r->want_preferred = got[i].preferred;
		/* the parent's core splits it when the parent reaches that segment */
		atomic_store(&n->regions[r->split_from - 1].split_child, i + 1);
		SL_LOG(NOTICE, node, "region %u: split from region %u at 0x%016" PRIx64
				     " (segment %u; map epoch %u)\n",
		       i, r->split_from - 1, r->map_lo, r->split_epoch, seg[i].epoch);
	}
	/* the workers see the new regions from here on (unborn: routed to their parents) */
	__atomic_store_n(&n->cfg.regions, n_got, __ATOMIC_RELEASE);
	(void)nd_route_build(n);
	atomic_store(&n->map_dirty, true);
	return 0;
}

/* ctld's map version moved (a leader move, a protocol switch): the map is fetched again.
 * A new preferred leader is taken at once (the region's leader hands over, a multileader
 * region's home moves) and kept in the data dir; a switch goes to the region's worker
 * (map_segment); a change of replicas is a reconfiguration a running node does not take:
 * refused, counted and said. */
static void map_refresh(struct sl_node *n, struct nd_ctld *c, uint64_t version)
{
	static struct sl_cfg_map_region got[SL_CFG_MAX_REGIONS];
	static struct map_seg seg[SL_CFG_MAX_REGIONS];
	struct json_object *args = json_object_new_object(), *res = NULL;
	int n_got = -ENOTCONN;
	if (call_ctld(c, "regions", args, &res) == 0)
		n_got = map_from_json(res, got, seg, SL_CFG_MAX_REGIONS);
	json_object_put(res);
	json_object_put(args);
	if (n_got < 0)
		return; /* asked again at the next heartbeat */
	c->st.map_fetches++;
	c->st.map_version = version;
	if ((uint32_t)n_got < n->cfg.regions || !n->cfg.map_set ||
	    ((uint32_t)n_got > n->cfg.regions && map_add_regions(n, got, seg, (uint32_t)n_got) != 0) ||
	    map_take_merges(n, got, (uint32_t)n_got) != 0) {
		c->st.map_refused++;
		SL_LOG(WARNING, node, "ctld's map version %" PRIu64 " has %d regions, this node runs "
		       "%u: not taken\n", version, n_got, n->cfg.regions);
		return;
	}
	uint32_t moved = 0;
	for (uint32_t r = 0; r < (uint32_t)n_got; r++) {
		struct sl_cfg_map_region cur;
		sl_cfg_map_get(&n->cfg, r, &cur);
		/* a new segment may have other replicas: the region's worker takes them */
		if (seg[r].epoch > atomic_load(&n->regions[r].want_epoch)) {
			map_segment(n, c, r, &got[r], &seg[r]);
			continue;
		}
		/* a region past its first segment changes replicas only at a new segment
		 * (the worker takes them when it switches) */
		if (seg[r].epoch == 0 && sl_cfg_map_diff(&cur, &got[r], 1) >= 0) {
			c->st.map_refused++;
			SL_LOG(WARNING, node, "ctld's map version %" PRIu64 " changes region %u's "
			       "replicas (%u nodes here, %u there): a running node takes only leader "
			       "moves and protocol switches; not taken\n",
			       version, r, cur.copies, got[r].copies);
			continue;
		}
		map_segment(n, c, r, &got[r], &seg[r]);
		if (cur.preferred == got[r].preferred ||
		    sl_cfg_region_set_preferred(&n->cfg, r, got[r].preferred) != 0)
			continue;
		moved++;
		c->st.leader_changes++;
		SL_LOG(NOTICE, node, "region %u: preferred leader %u -> %u (ctld map version %" PRIu64
		       ")\n", r, cur.preferred, got[r].preferred, version);
	}
	char path[SL_CFG_PATH_MAX + 32], err[256];
	snprintf(path, sizeof(path), "%s/regions.map", n->cfg.data_dir);
	if (moved > 0 && map_save(n, path, err, sizeof(err)) != 0)
		SL_LOG(WARNING, node, "keeping the region map: %s (the next start takes ctld's)\n",
		       err);
}

/* The fields of the node's own `regions` rows that ctld takes (points and bytes: the
 * region's size in this replica's store, for ctld's splits by size and load); a
 * multileader region's home is reported as its leader (where its writes go), so ctld sees
 * a leader move end. */
static struct json_object *region_report(struct json_object *row)
{
	static const char *const keys[] = {"id", "role", "leader", "term", "commit_index",
					   "applied_index", "epoch", "sealed", "points", "bytes",
					   "rejoining"};
	struct json_object *o = json_object_new_object(), *v = NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_object_get_ex(row, keys[i], &v))
			json_object_object_add(o, keys[i], json_object_get(v));
	if (json_object_object_get_ex(row, "home", &v))
		json_object_object_add(o, "leader", json_object_get(v));
	return o;
}

static void send_heartbeat(struct sl_node *n, struct nd_ctld *c)
{
	struct json_object *args = json_object_new_object(), *arr = json_object_new_array();
	json_object_object_add(args, "node", json_object_new_int(n->cfg.node_id));
	for (uint32_t i = 0; i < c->asked; i++) {
		struct ctl_req *q = &c->reqs[i];
		struct json_object *role = NULL;
		/* role "none": no replica of it here (the node only forwards): not reported */
		if (q->rc == 0 && q->json != NULL &&
		    !(json_object_object_get_ex(q->json, "role", &role) &&
		      strcmp(json_object_get_string(role), "none") == 0))
			json_object_array_add(arr, region_report(q->json));
		json_object_put(q->json);
		q->json = NULL;
	}
	json_object_object_add(args, "regions", arr);
	/* a worker switched a region's protocol: the kept map says the new one */
	char path[SL_CFG_PATH_MAX + 32], err[256];
	snprintf(path, sizeof(path), "%s/regions.map", n->cfg.data_dir);
	if (atomic_exchange(&n->map_dirty, false) && n->cfg.map_set &&
	    map_save(n, path, err, sizeof(err)) != 0)
		SL_LOG(WARNING, node, "keeping the region map: %s\n", err);
	struct json_object *res = NULL, *v = NULL;
	if (call_ctld(c, "heartbeat", args, &res) == 0) {
		c->st.heartbeats++;
		if (json_object_object_get_ex(res, "map_version", &v) &&
		    json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0 &&
		    (uint64_t)json_object_get_int64(v) != c->st.map_version)
			map_refresh(n, c, (uint64_t)json_object_get_int64(v));
	}
	json_object_put(res);
	json_object_put(args);
}

void nd_ctld_housekeeping(struct sl_node *n)
{
	struct nd_ctld *c = n->ctld;
	if (c == NULL)
		return;
	uint64_t now = nd_now_ns();
	if (c->collecting) {
		for (uint32_t i = 0; i < c->asked; i++)
			if (!atomic_load_explicit(&c->reqs[i].done, memory_order_acquire))
				return; /* a worker has not answered yet: next round */
		c->collecting = false;
		send_heartbeat(n, c);
		return;
	}
	if (now < c->next_ns || !sl_node_recovered(n))
		return;
	c->next_ns = now + CTLD_PERIOD_NS;
	if (!c->joined) {
		send_join(n, c);
		return;
	}
	/* ask every region's worker for its status; answers come between their rounds */
	c->asked = n->cfg.regions;
	for (uint32_t i = 0; i < c->asked; i++) {
		struct ctl_req *q = &c->reqs[i];
		json_object_put(q->json);
		memset(q, 0, sizeof(*q));
		q->kind = CTL_REGIONS;
		q->region = i;
		q->rc = -EAGAIN;
		atomic_store(&q->done, 0);
		if (rte_ring_mp_enqueue(n->w[n->regions[i].worker].ctlq, q) != 0)
			atomic_store(&q->done, 1); /* ring full: reported without this region */
	}
	c->collecting = true;
}
