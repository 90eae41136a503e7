/* node_recover.c - the node's state on disk: region and session snapshots (checkpoints
 * that let the WAL be released), recovery at start (snapshots, then the WAL), and node
 * creation and teardown. */
#include <sys/mman.h>
#include <sys/random.h>

#include "node_internal.h"
#include "wal.h"

/* ---------------------------------------------------------------- snapshots */

/* The region's replicas vote (sl_cfg_region_replicas: the config's placement until the
 * control plane's region map); a single node is its regions' one voter. */
void nd_region_conf(const struct sl_node *n, uint32_t region, struct sl_cons_conf *out)
{
	memset(out, 0, sizeof(*out));
	out->n_voters = sl_cfg_region_replicas(&n->cfg, region, out->voters);
	/* a replica move's learner of the segment the region runs here */
	const struct region *r = &n->regions[region];
	uint32_t l = atomic_load_explicit(&r->want_learner, memory_order_relaxed);
	bool voter = false;
	for (uint32_t k = 0; k < out->n_voters; k++)
		voter = voter || out->voters[k] == l;
	if (l != 0 && !voter && out->n_voters < SL_CONS_MAX_PEERS &&
	    atomic_load_explicit(&r->want_epoch, memory_order_acquire) == r->epoch)
		out->learners[out->n_learners++] = l;
}

static int sessions_load(struct worker *w, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 64];
	nd_sess_snap_path(w->node, w->idx, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;
	uint8_t *buf = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	if (rc == 0 && buf == NULL)
		rc = -ENOMEM;
	if (rc == 0 && read(fd, buf, (size_t)st.st_size) != st.st_size)
		rc = -EIO;
	close(fd);
	uint64_t idx;
	if (rc == 0)
		rc = sl_sess_snapshot_read(&w->sess, buf, (size_t)st.st_size, (int64_t)nd_now_ns(), &idx);
	free(buf);
	if (rc != 0)
		snprintf(err, err_len, "%s: session snapshot unreadable (%s); refusing to start", path,
			 strerror(-rc));
	return rc;
}

/* The term of exactly the snapshot's index, from its base record; no guess: a term of
 * another index (a newer snapshot's, left by a crash before its rename) would give the
 * protocol a log whose base term is wrong. */
static int read_term_file(struct sl_node *n, const struct region *r, uint64_t index,
			  uint64_t *term, char *err, size_t err_len)
{
	char fin[SL_CFG_PATH_MAX + 64], rec[128];
	nd_snap_path(n, r->id, fin, sizeof(fin), ".term");
	FILE *f = fopen(fin, "r");
	if (f == NULL) {
		int e = errno;
		snprintf(err, err_len,
			 "%s: %s; the raft term of snapshot index %" PRIu64
			 " is unknown; refusing to start",
			 fin, strerror(e), index);
		return -e;
	}
	size_t got = fread(rec, 1, sizeof(rec) - 1, f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	rec[got] = '\0';
	int rc = more ? -EBADMSG : sl_rlog_base_term(rec, index, term);
	if (rc != 0)
		snprintf(err, err_len,
			 "%s: %s for snapshot index %" PRIu64 "; the raft term of the snapshot "
			 "is unknown; refusing to start",
			 fin, rc == -ENOENT ? "no term recorded" : "unreadable term record", index);
	return rc;
}

/* ---------------------------------------------------------------- recovery */

struct replay_ctx {
	struct sl_node *n;
	struct worker *w;
	uint64_t entries, skipped, bad, sessions;
	/* an entry that could not be put back into its region's log stops recovery */
	int fail_rc;
	uint32_t fail_region;
	uint64_t fail_index, fail_last;
	/* progress: a long replay says how far it is every REPLAY_PROGRESS_NS */
	const char *path;
	uint64_t records, bytes, t0_ns, next_ns;
};

#define REPLAY_PROGRESS_NS 2000000000ull

static void replay_progress(struct replay_ctx *c, uint64_t lsn, uint32_t len)
{
	c->bytes += len;
	if ((++c->records & 4095) != 0)
		return;
	uint64_t now = nd_now_ns();
	if (now < c->next_ns)
		return;
	c->next_ns = now + REPLAY_PROGRESS_NS;
	SL_LOG(NOTICE, wal, "WAL %s: replaying, %" PRIu64 " records (%" PRIu64
			    " MiB) in %.1f s, at lsn %" PRIu64 "\n",
	       c->path, c->records, c->bytes >> 20, (double)(now - c->t0_ns) / 1e9, lsn);
}

static int replay_record(void *arg, uint64_t lsn, uint16_t type, const uint8_t *p, uint32_t len)
{
	struct replay_ctx *c = arg;
	replay_progress(c, lsn, len);
	if (type == WAL_REC_SESSION && len == SESSION_REC_BYTES && p[0] == 3) {
		/* a session batch was durable: a retry of it is a duplicate */
		sl_sess_recover_durable(&c->w->sess, sl_get_u64(p + 1), sl_get_u64(p + 9),
					(int64_t)nd_now_ns());
		c->sessions++;
		return 0;
	}
	bool hs = type == WAL_REC_HARDSTATE && len == HARDSTATE_BYTES && p[0] == 2;
	if (!hs && (type != WAL_REC_ENTRY || len < ENTRY_HDR || p[0] != 1)) {
		c->bad++;
		return 0;
	}
	uint32_t tag = sl_get_u32(p + 1), region = tag & 0xffffu;
	if (region >= c->n->cfg.regions) {
		c->bad++;
		return 0;
	}
	if (tag == nd_wal_region_tag(&c->n->regions[region]) &&
	    c->n->regions[region].worker != c->w->idx) {
		/* its segment runs on another core, whose WAL holds its records */
		c->bad++;
		return 0;
	}
	if (tag != nd_wal_region_tag(&c->n->regions[region]) ||
	    c->n->regions[region].learn_dropped || atomic_load(&c->n->regions[region].unborn) ||
	    atomic_load(&c->n->regions[region].retired)) {
		/* a record of another segment of the region's log: one before a protocol
		 * switch, which the segment's image covers (node_switch.c) */
		c->skipped++;
		return 0;
	}
	if (!sl_cfg_region_here(&c->n->cfg, region)) {
		/* the config no longer places the region here: its entries would be lost */
		c->fail_rc = -EXDEV;
		c->fail_region = region;
		c->fail_index = 0;
		return -EXDEV;
	}
	struct region *r = &c->n->regions[region];
	if (hs) {
		r->hs = (struct sl_cons_hard_state){sl_get_u64(p + 5), sl_get_u32(p + 13),
						    sl_get_u64(p + 17)};
		r->has_hs = true;
		return 0;
	}
	uint64_t term = sl_get_u64(p + 5);
	uint64_t index = sl_get_u64(p + 13);
	uint32_t etype = sl_get_u32(p + 21);
	/* rebuild the log; the protocol hands committed entries out again through the
	 * driver and the node applies them then (a later record at an index replaces the
	 * suffix) */
	if (index <= r->rlog.base_index) {
		c->skipped++;
		return 0;
	}
	struct sl_cons_entry e = {term, index, 0, etype, len - ENTRY_HDR, p + ENTRY_HDR};
	struct sl_batch_iter it;
	/* validated here, at the file boundary: apply trusts committed entries. A
	 * multileader entry holds the protocol's origin header, then a batch that may be a
	 * peer's: the node checks those when it applies them (node.c, host_apply) */
	bool ml = c->n->regions[region].ml;
	int rc = etype == SL_CONS_ENTRY_NORMAL &&
			 (ml ? e.len < SL_ML_ENTRY_HDR : sl_batch_iter_init(&it, e.data, e.len) != 0)
		     ? -EBADMSG
		     : sl_rlog_append(&r->rlog, &e);
	if (rc != 0) {
		/* skipping it would drop it and every later entry of the region (each then
		 * lands past the log's end): acknowledged writes among them */
		c->fail_rc = rc;
		c->fail_region = region;
		c->fail_index = index;
		c->fail_last = sl_rlog_last(&r->rlog);
		return rc;
	}
	r->last_index = index;
	c->entries++;
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[SL_CFG_PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A crash mid-checkpoint leaves a half-written image (*.tmp): never read, removed. */
static void remove_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* A cluster node whose data dir was lost starts on a new one with --rejoin: DATA_DIR/REJOIN
 * is made durable before anything else is written (node.meta says the dir is not new), so
 * a crash while catching up leaves the marker and the next start rejoins again. While it
 * is there, the node's replicated regions run in the protocol's rejoin mode (no votes,
 * acks not counted: consensus.h) until each holds what the others committed; then the
 * marker goes (sl_node_housekeeping). Without --rejoin a new data dir in a cluster is
 * taken for a new member, which is unsafe if the node had voted before: refused when
 * sluice-ctld records the node as joined before, else said once. Nothing is written
 * before these checks, so a refused start can be repeated with --rejoin. */
static int rejoin_setup(struct sl_node *n, char *err, size_t err_len)
{
	char meta[SL_CFG_PATH_MAX + 32], mark[SL_CFG_PATH_MAX + 32];
	snprintf(meta, sizeof(meta), "%s/node.meta", n->cfg.data_dir);
	snprintf(mark, sizeof(mark), "%s/REJOIN", n->cfg.data_dir);
	bool fresh = access(meta, F_OK) != 0 && errno == ENOENT;
	bool marked = access(mark, F_OK) == 0;
	char state[16] = "";
	if (n->cfg.rejoin && fresh && !marked) {
		int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC, 0640);
		int rc = fd < 0 ? -errno : fsync(fd) == 0 ? 0 : -errno;
		if (fd >= 0)
			close(fd);
		int dfd = rc == 0 ? open(n->cfg.data_dir, O_RDONLY | O_DIRECTORY) : -1;
		if (rc == 0)
			rc = dfd < 0 ? -errno : fsync(dfd) == 0 ? 0 : -errno;
		if (dfd >= 0)
			close(dfd);
		if (rc != 0) {
			snprintf(err, err_len, "%s: %s", mark, strerror(-rc));
			return rc;
		}
		marked = true;
	} else if (n->cfg.rejoin && !fresh && !marked) {
		SL_LOG(NOTICE, node,
		       "--rejoin ignored: %s holds this node's state (it is for a lost data dir)\n",
		       n->cfg.data_dir);
	} else if (fresh && !marked && n->cfg.cluster_nodes > 1 && n->cfg.ctld[0] != '\0' &&
		   nd_ctld_joined_before(n, state, sizeof(state))) {
		snprintf(err, err_len,
			 "node %u joined this cluster before (sluice-ctld shows it %s) but %s is a "
			 "new data dir: the node lost its data. Start it with --rejoin, which keeps "
			 "it from voting until it caught up (docs/cluster.md)",
			 n->cfg.node_id, state, n->cfg.data_dir);
		return -EEXIST;
	} else if (fresh && !marked && n->cfg.cluster_nodes > 1) {
		SL_LOG(NOTICE, node,
		       "new data dir %s in a cluster of %u nodes: if node %u was a member before "
		       "and lost its data, stop it and start it with --rejoin (docs/cluster.md)\n",
		       n->cfg.data_dir, n->cfg.cluster_nodes, n->cfg.node_id);
	}
	n->rejoin_active = marked && n->cfg.cluster_nodes > 1;
	if (n->rejoin_active)
		SL_LOG(NOTICE, node,
		       "rejoining: this node's replicated regions catch up from the others and vote "
		       "again once they hold what was committed without them\n");
	return 0;
}

/* r's rejoining replica goes (its driver is destroyed: a switch, a join at a later
 * segment, a leave): it no longer holds the REJOIN marker back. */
void nd_rejoin_forget(struct sl_node *n, struct region *r)
{
	if (!r->rejoining)
		return;
	r->rejoining = false;
	atomic_fetch_sub(&n->rejoin_left, 1);
}

/* Called by housekeeping: every region rejoined, the marker goes. */
void nd_rejoin_done(struct sl_node *n)
{
	if (!n->rejoin_active || atomic_load(&n->rejoin_left) != 0)
		return;
	char mark[SL_CFG_PATH_MAX + 32];
	snprintf(mark, sizeof(mark), "%s/REJOIN", n->cfg.data_dir);
	int dfd = open(n->cfg.data_dir, O_RDONLY | O_DIRECTORY);
	if (unlink(mark) != 0 && errno != ENOENT) {
		SL_LOG(ERR, node, "%s: %s; tried again\n", mark, strerror(errno));
	} else {
		if (dfd >= 0)
			(void)fsync(dfd);
		n->rejoin_active = false;
		SL_LOG(NOTICE, node, "rejoined: every replicated region caught up and votes again\n");
	}
	if (dfd >= 0)
		close(dfd);
}

/* node.meta: format=1, node_id, workers (the count the data dir was made with: the
 * lineage of the regions' cores), regions (the count it was made with), and since worker
 * count changes workers_now (the count whose session tables the data dir holds; absent:
 * workers). Written atomically. */
int nd_meta_write(struct sl_node *n, unsigned workers_now, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 32], buf[160];
	snprintf(path, sizeof(path), "%s/node.meta", n->cfg.data_dir);
	int len = snprintf(buf, sizeof(buf), "format=1\nnode_id=%u\nworkers=%u\nregions=%u\n",
			   n->cfg.node_id, n->base_workers, n->regions_conf);
	if (workers_now != n->base_workers)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "workers_now=%u\n",
				workers_now);
	int rc = nd_write_file_atomic(n, path, (const uint8_t *)buf, (size_t)len);
	int dfd = rc == 0 ? open(n->cfg.data_dir, O_RDONLY | O_DIRECTORY) : -1;
	if (rc == 0)
		rc = dfd < 0 ? -errno : fsync(dfd) == 0 ? 0 : -errno; /* the rename's entry */
	if (dfd >= 0)
		close(dfd);
	if (rc != 0)
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
	return rc;
}

/* ---- a worker count change: the session tables (docs/protocol.md: a session's table
 * is on the core its client's address and port hash to, among the workers there are) */

struct sess_gather {
	uint64_t *v; /* pairs (session id, durable seq) */
	size_t n, cap;
	bool oom;
};

static int sess_gather_rec(void *arg, uint64_t lsn, uint16_t type, const uint8_t *p,
			   uint32_t len)
{
	struct sess_gather *g = arg;
	(void)lsn;
	if (type != WAL_REC_SESSION || len != SESSION_REC_BYTES || p[0] != 3)
		return 0;
	if (g->n + 2 > g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 4096;
		uint64_t *v = realloc(g->v, cap * sizeof(*v));
		if (v == NULL) {
			g->oom = true;
			return -ENOMEM;
		}
		g->v = v;
		g->cap = cap;
	}
	g->v[g->n++] = sl_get_u64(p + 1);
	g->v[g->n++] = sl_get_u64(p + 9);
	return 0;
}

/* The session records of core c's WAL, read only (its segments, each whole). Segments
 * that do not read back are counted in *damaged: what they held is not known here. */
static int sess_gather_wal(const struct sl_node *n, unsigned c, struct sess_gather *g,
			   unsigned *segments, unsigned *damaged)
{
	char dir[SL_CFG_PATH_MAX + 32], path[SL_CFG_PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/wal/core-%02u", n->cfg.data_dir, c);
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) { /* bounded by the directory */
		uint64_t lsn = 0;
		if (strlen(de->d_name) != 24 || sscanf(de->d_name, "wal-%16" SCNx64 ".log", &lsn) != 1 ||
		    lsn == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		int fd = open(path, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
			(*damaged) += fd < 0;
			if (fd >= 0)
				close(fd);
			continue;
		}
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (m == MAP_FAILED) {
			(*damaged)++;
			continue;
		}
		(*segments)++;
		int e = sl_wal_check_segment(m, (uint64_t)st.st_size, lsn, true, sess_gather_rec, g,
					     NULL);
		munmap(m, (size_t)st.st_size);
		if (g->oom)
			rc = -ENOMEM;
		else if (e != 0)
			(*damaged)++;
	}
	closedir(d);
	return rc;
}

/* The data dir last ran another number of workers, so a session's table may now be on
 * another core: every core takes the sessions of every old core (their snapshots and
 * their WALs' session records; a retry of a batch done before is then a duplicate on
 * whichever core it reaches), writes its session snapshot, and node.meta records the
 * count. A crash before that does it all again at the next start (it only raises seqs).
 * The old cores' WALs stay as they are: a core this node no longer has holds only
 * segments of regions moved off it (check_region_cores) and session records. */
static int sessions_consolidate(struct sl_node *n, char *err, size_t err_len)
{
	if (n->workers_before == n->n_workers)
		return 0;
	unsigned cores = n->workers_before > n->n_workers ? n->workers_before : n->n_workers;
	int64_t now = (int64_t)nd_now_ns();
	uint64_t from_snaps = 0, from_wal = 0;
	unsigned segments = 0, damaged = 0;
	char path[SL_CFG_PATH_MAX + 64];
	int rc = 0;
	for (unsigned c = 0; rc == 0 && c < cores; c++) {
		nd_sess_snap_path(n, c, path, sizeof(path));
		int fd = open(path, O_RDONLY);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
			uint8_t *buf = malloc((size_t)st.st_size);
			if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size) {
				rc = buf == NULL ? -ENOMEM : -EIO;
				snprintf(err, err_len, "%s: %s", path, strerror(-rc));
			}
			for (unsigned w = 0; rc == 0 && w < n->n_workers; w++) {
				uint32_t got = 0;
				if (w == c)
					continue; /* loaded by its own core */
				int e = sl_sess_snapshot_merge(&n->w[w].sess, buf, (size_t)st.st_size,
							       now, &got);
				if (e == -EBADMSG) {
					rc = e;
					snprintf(err, err_len,
						 "%s: session snapshot unreadable (%s); refusing to "
						 "start",
						 path, strerror(-e));
				}
				from_snaps += got;
			}
			free(buf);
		}
		if (fd >= 0)
			close(fd);
		if (rc != 0)
			break;
		struct sess_gather g = {0};
		rc = sess_gather_wal(n, c, &g, &segments, &damaged);
		for (unsigned w = 0; rc == 0 && w < n->n_workers; w++)
			for (size_t k = 0; w != c && k + 1 < g.n; k += 2)
				from_wal += sl_sess_recover_durable(&n->w[w].sess, g.v[k], g.v[k + 1],
								    now) == 0;
		free(g.v);
		if (rc != 0)
			snprintf(err, err_len, "reading the session records of WAL core %u: %s", c,
				 strerror(-rc));
	}
	for (unsigned w = 0; rc == 0 && w < n->n_workers; w++) {
		struct sl_sess_table *t = &n->w[w].sess;
		size_t cap = sl_sess_snapshot_bytes(t);
		uint8_t *buf = malloc(cap);
		int len = buf != NULL ? sl_sess_snapshot_write(t, 0, buf, cap) : -ENOMEM;
		nd_sess_snap_path(n, w, path, sizeof(path));
		rc = len < 0 ? len : nd_write_file_atomic(n, path, buf, (size_t)len);
		free(buf);
		if (rc != 0)
			snprintf(err, err_len, "%s: %s", path, strerror(-rc));
	}
	if (rc == 0)
		rc = nd_meta_write(n, n->n_workers, err, err_len);
	if (rc != 0)
		return rc;
	if (damaged > 0)
		SL_LOG(WARNING, node,
		       "%u WAL segment(s) of the old cores did not read back whole: the sessions "
		       "they recorded may not be known, and a retry of a batch they held may be "
		       "applied again\n",
		       damaged);
	SL_LOG(NOTICE, node,
	       "workers %u -> %u: every core took the sessions of cores 0..%u (%" PRIu64
	       " from their snapshots, %" PRIu64 " from %u WAL segments); node.meta now says %u\n",
	       n->workers_before, n->n_workers, cores - 1, from_snaps, from_wal, segments,
	       n->n_workers);
	n->workers_before = n->n_workers;
	return 0;
}

/* node.meta pins the region layout: WAL records name regions by number, and a region
 * runs on the core of its lineage (node.meta's workers) or of its last core move. */
static int check_meta(struct sl_node *n, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/node.meta", n->cfg.data_dir);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno != ENOENT) {
			snprintf(err, err_len, "%s: %s", path, strerror(errno));
			return -errno;
		}
		n->base_workers = n->workers_before = n->n_workers;
		return nd_meta_write(n, n->n_workers, err, err_len);
	}
	unsigned fmt = 0, id = 0, workers = 0, regions = 0, now = 0;
	int got = fscanf(f, "format=%u\nnode_id=%u\nworkers=%u\nregions=%u", &fmt, &id, &workers,
			 &regions);
	int more = got == 4 ? fscanf(f, " workers_now=%u", &now) : 0;
	fclose(f);
	if (got != 4 || fmt != 1 || workers == 0 || workers > SL_CFG_MAX_WORKERS ||
	    (more == 1 && (now == 0 || now > SL_CFG_MAX_WORKERS))) {
		snprintf(err, err_len, "%s: unreadable node metadata (refusing to guess)", path);
		return -EBADMSG;
	}
	n->base_workers = workers;
	n->workers_before = more == 1 ? now : workers;
	if (regions != n->regions_conf && n->cfg.ctld[0] != '\0') {
		/* the regions are ctld's map's (splits and merges change them online): the
		 * count this data dir started with stays the map's base */
		SL_LOG(NOTICE, node,
		       "%s: this data dir was written with [regions] count = %u; the config says %u, "
		       "which only seeds a new cluster: the regions are sluice-ctld's map's (to "
		       "change how many there are, set [cluster] regions_target in sluice-ctld's "
		       "config, or split and merge them with sluicectl)\n",
		       path, regions, n->regions_conf);
		n->regions_conf = n->cfg.regions = regions;
	}
	if (regions != n->regions_conf) {
		snprintf(err, err_len,
			 "%s: this data dir was written with regions=%u but the config asks for "
			 "regions=%u; start with the original value (with sluice-ctld, even for "
			 "one node, regions split and merge online: docs/cluster.md)",
			 path, regions, n->regions_conf);
		return -EINVAL;
	}
	if (n->workers_before != n->n_workers)
		SL_LOG(NOTICE, node,
		       "%s: this data dir last ran %u workers, the config says %u: regions stay on "
		       "their cores (a region no core move placed runs on core id %% %u), and every "
		       "core takes the session tables of all the old ones (docs/config.md, "
		       "\"Changing the number of workers\")\n",
		       path, n->workers_before, n->n_workers, workers);
	return 0;
}

/* After placement: every region runs on a core this node has. Fewer workers than a
 * region's core (its lineage or a core move) is refused, naming the regions to move. */
static int check_region_cores(struct sl_node *n, char *err, size_t err_len)
{
	char list[256] = "";
	size_t used = 0;
	uint32_t bad = 0, first = 0, top = 0;
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		/* ctld's map may name a core this node lacks for a region it has no replica of
		 * (nd_region_place then kept the lineage's): it must run where the others do */
		uint32_t core = n->map_core[i] != 0 && n->map_core[i] - 1 >= n->n_workers
				    ? n->map_core[i] - 1
				    : r->worker;
		if (atomic_load(&r->retired) || core < n->n_workers)
			continue;
		if (bad++ == 0)
			first = i;
		if (core > top)
			top = core;
		if (used + 24 < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%u (core %u)",
						 used ? ", " : "", i, core);
	}
	if (bad == 0)
		return 0;
	snprintf(err, err_len,
		 "%u region(s) run on worker cores this node no longer has (%u workers): %s. "
		 "Start with [eal] workers = %u or more (to run fewer, move them to lower "
		 "cores first with sluice-ctld, sluicectl region move-core %u CORE, while the "
		 "node runs, then restart it)",
		 bad, n->n_workers, list, top + 1, first);
	return -EINVAL;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The indexes of the region's deltas of the chain whose base is at `base` (index above
 * it), sorted; *any counts every delta of the region, of whatever chain. -E2BIG when
 * more than max belong to the chain. */
int nd_deltas_list(const struct sl_node *n, uint32_t region, uint64_t base, uint64_t *idx,
		   size_t max, size_t *count, size_t *any)
{
	char dir[SL_CFG_PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/snap", n->cfg.data_dir);
	*count = *any = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	int rc = 0;
	struct dirent *de;
	/* bounded by the directory's entries */
	while ((de = readdir(d)) != NULL) {
		uint32_t r = 0;
		uint64_t i = 0, b = 0;
		if (!nd_delta_name(de->d_name, &r, &i, &b) || r != region)
			continue;
		(*any)++;
		if (b != base || i <= base)
			continue;
		if (*count == max)
			rc = -E2BIG;
		else
			idx[(*count)++] = i;
	}
	closedir(d);
	qsort(idx, *count, sizeof(*idx), u64_cmp);
	return rc;
}

/* Applies the deltas of the chain of the region's base in index order; *last: the index
 * of the chain's last image. Deltas of other chains (a newer base or a peer's snapshot
 * replaced theirs; a crash came before their removal) are removed, never read. */
static int region_load_deltas(struct sl_node *n, struct region *r, uint64_t *last, char *err,
			      size_t err_len)
{
	uint64_t idx[ND_DELTAS_MAX];
	size_t count = 0, any = 0;
	char path[SL_CFG_PATH_MAX + 96];
	int rc = nd_deltas_list(n, r->id, r->snap_base_index, idx, ND_DELTAS_MAX, &count, &any);
	if (rc != 0) {
		snprintf(err, err_len,
			 "region %u: %s listing the delta images of its base at index %" PRIu64
			 " in %s/snap (at most %u are ever written); refusing to start",
			 r->id, rc == -E2BIG ? "too many found" : strerror(-rc), r->snap_base_index,
			 n->cfg.data_dir, ND_DELTAS_MAX);
		return rc;
	}
	for (size_t k = 0; k < count; k++) {
		nd_delta_path(n, r->id, idx[k], r->snap_base_index, path, sizeof(path));
		if (k > 0 && idx[k] <= idx[k - 1]) {
			snprintf(err, err_len,
				 "%s: a second delta image at index %" PRIu64
				 " of region %u; refusing to start",
				 path, idx[k], r->id);
			return -EBADMSG;
		}
		int fd = open(path, O_RDONLY);
		struct stat sb;
		uint64_t got = 0;
		rc = fd < 0 ? -errno : fstat(fd, &sb) != 0 ? -errno : 0;
		if (rc == 0)
			rc = sl_store_snapshot_apply_delta(r->store, fd, &got);
		if (fd >= 0)
			close(fd);
		if (rc == 0 && got != idx[k]) {
			snprintf(err, err_len,
				 "%s: the delta image is of index %" PRIu64 ", its name says %" PRIu64
				 "; refusing to start",
				 path, got, idx[k]);
			return -EBADMSG;
		}
		if (rc != 0) {
			snprintf(err, err_len, "%s: delta image %s (%s); refusing to start", path,
				 rc == -EBADMSG ? "is corrupt" : rc == -EINVAL ? "is of another region"
							: "unreadable",
				 strerror(-rc));
			return rc;
		}
		r->snap_deltas++;
		r->snap_delta_bytes += (uint64_t)sb.st_size;
		*last = idx[k];
	}
	if (any > count)
		nd_delta_remove_stale(n, r->id, r->snap_base_index, r->snap_base_index);
	if (count > 0)
		SL_LOG(NOTICE, ckpt,
			"region %u: base image at index %" PRIu64 " (%" PRIu64 " bytes) + %zu delta "
			"images up to index %" PRIu64 " (%" PRIu64 " bytes)\n",
			r->id, r->snap_base_index, r->snap_base_bytes, count, *last,
			r->snap_delta_bytes);
	return 0;
}

static int region_load_snapshot(struct sl_node *n, struct region *r, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 64];
	nd_snap_path(n, r->id, path, sizeof(path), "");
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		int e = errno;
		uint64_t none[1];
		size_t count = 0, any = 0;
		if (e == ENOENT)
			(void)nd_deltas_list(n, r->id, 0, none, 0, &count, &any);
		if (e == ENOENT && any == 0)
			return 0;
		if (e == ENOENT)
			snprintf(err, err_len,
				 "%s: missing, but %zu delta images of region %u are there: they "
				 "hold changes to that image only; refusing to start",
				 path, any, r->id);
		else
			snprintf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	uint64_t idx = 0;
	int rc = sl_store_snapshot_read(r->store, fd, &idx);
	off_t size = lseek(fd, 0, SEEK_END);
	/* a small image is kept for peers that fall behind the log's base */
	uint8_t *img = rc == 0 && size > 0 && size <= (off_t)(1u << 20) ? malloc((size_t)size) : NULL;
	if (img != NULL && pread(fd, img, (size_t)size, 0) != size) {
		free(img);
		img = NULL;
	}
	close(fd);
	struct sl_cons_conf conf;
	nd_region_conf(n, r->id, &conf);
	nd_region_keep_image(r, img, (size_t)size, idx, &conf);
	if (rc != 0) {
		snprintf(err, err_len, "%s: snapshot is corrupt (%s); refusing to start", path,
			 strerror(-rc));
		return rc;
	}
	r->snap_base_index = idx;
	r->snap_base_bytes = (uint64_t)size;
	rc = region_load_deltas(n, r, &idx, err, err_len);
	if (rc != 0)
		return rc;
	if (r->snap_deltas > 0) /* the base no longer matches the log's base: not for peers */
		nd_region_keep_image(r, NULL, 0, idx, &conf);
	/* the term of the chain's last image: the term record names it (node_ckpt.c) */
	r->applied_index = r->snapshot_index = r->last_index = idx;
	rc = read_term_file(n, r, idx, &r->snapshot_term, err, err_len);
	if (rc != 0)
		return rc;
	sl_rlog_compact(&r->rlog, idx, r->snapshot_term);
	/* what the chain holds is clean: the next delta holds what the WAL's replay changes */
	r->snap_since = sl_store_mark_clean(r->store);
	return 0;
}

/* The protocol refused the recovered log for an entry it could never carry or apply
 * (written under larger limits, or damaged): name it. */
static void region_report_oversized(const struct region *r, uint32_t max, const char *protocol,
				    char *err, size_t err_len)
{
	for (uint64_t i = sl_rlog_first(&r->rlog); i <= sl_rlog_last(&r->rlog); i++) {
		struct sl_cons_entry e;
		if (sl_rlog_entry(&r->rlog, i, &e) == 0 && e.len > max) {
			snprintf(err, err_len,
				 "region %u: %s log entry at index %" PRIu64 " holds %u bytes, "
				 "more than it accepts (%u); refusing to start",
				 r->id, protocol, i, e.len, max);
			return;
		}
	}
	snprintf(err, err_len, "region %u: %s refused the recovered log (%s); refusing to start",
		 r->id, protocol, strerror(EMSGSIZE));
}

/* A multileader region's options: sized by the registry from the node's limits, then the
 * node's bounds of one ready (node_limits.h), its fabric's largest message and the
 * configured ack level ([regions] multileader_ack_copies, at most the region's copies). */
static int ml_options(struct sl_node *n, struct region *r, struct sl_drv_config *dc,
		      const struct sl_cons_conf *conf, struct sl_ml_opts *mlo, char *err,
		      size_t err_len)
{
	const struct sl_cons_limits lim = {dc->max_entry_bytes, dc->max_inflight};
	_Alignas(8) uint8_t buf[SL_CONS_OPTS_BYTES];
	const void *o = sl_cons_opts(sl_cons_find(dc->protocol), &lim, buf);
	memset(mlo, 0, sizeof(*mlo));
	if (o != NULL)
		memcpy(mlo, o, sizeof(*mlo));
	if (n->cfg.ml_ack_copies > conf->n_voters) {
		snprintf(err, err_len,
			 "[regions] multileader_ack_copies = %u: region %u has %u copies",
			 n->cfg.ml_ack_copies, r->id, conf->n_voters);
		return -EINVAL;
	}
	if (ML_READY_WAL_WORST > (uint64_t)n->cfg.wal_buffer_kb << 10) {
		snprintf(err, err_len,
			 "[wal] buffer_kb = %u: a multileader region needs at least %" PRIu64
			 " KiB",
			 n->cfg.wal_buffer_kb, (ML_READY_WAL_WORST + 1023) >> 10);
		return -EINVAL;
	}
	mlo->ack_copies = n->cfg.ml_ack_copies;
	mlo->retention_entries = n->cfg.ml_retention;
	mlo->max_batch_bytes = ML_BATCH_BYTES;
	mlo->max_undurable = ML_UNDURABLE;
	/* images travel in chunks of one fabric message at most (the registry's message
	 * size, one entry and headers, is below SL_FAB_MSG_MAX) */
	mlo->max_msg_bytes = mlo->max_msg_bytes < SL_FAB_MSG_MAX ? mlo->max_msg_bytes : SL_FAB_MSG_MAX;
	dc->cons.proto_opts = mlo;
	r->ready_wal_worst = ML_READY_WAL_WORST;
	r->ready_entries = ML_UNDURABLE;
	return 0;
}

/* raft log copies come from the owning core's arena */
void *nd_rlog_alloc(void *ctx, size_t n) { return sl_arena_alloc(*(unsigned *)ctx, n); }
void nd_rlog_free(void *ctx, void *p) { sl_arena_free(*(unsigned *)ctx, p); }

/* The region's consensus group over its recovered log (r->rlog, r->hs, r->applied_index):
 * at start, and after a protocol switch (node_switch.c) for the new segment. */
int nd_region_open(struct sl_node *n, struct region *r, bool rejoin, char *err, size_t err_len)
{
	/* the same code for every protocol: the registry picks it by the configured
	 * name, the driver sizes its options from the node's limits */
	struct sl_drv_config dc;
	memset(&dc, 0, sizeof(dc));
	const char *proto = sl_cfg_region_protocol(&n->cfg, r->id);
	dc.protocol = proto;
	dc.max_entry_bytes = ENTRY_ASK_BYTES;
	dc.max_inflight = PROP_SLOTS;
	dc.applied_index = r->applied_index;
	struct sl_cons_config *cc = &dc.cons;
	/* the segment's number in the group id: a message of another segment of the
	 * region's log (a peer not switched yet, one delayed in flight) is refused by the
	 * protocol (node_switch.c) */
	cc->group_id = nd_group_id(r);
	cc->self = n->cfg.node_id;
	/* the region's replicas vote (the map from ctld, or the one derived from the
	 * config: nd_ctld_take_map); a single node is the one voter */
	struct sl_cons_conf conf;
	nd_region_conf(n, r->id, &conf);
	cc->n_voters = conf.n_voters;
	memcpy(cc->voters, conf.voters, sizeof(cc->voters));
	/* this node runs a learner only when it opens one (node_switch.c: learner_join,
	 * which records it in the epochs file first); anywhere else it stays out */
	r->learner_here = conf.n_learners > 0 && conf.learners[0] == n->cfg.node_id;
	if (r->learner_here && !r->learner_opening) {
		r->learner_here = false;
		conf.n_learners = 0;
	}
	cc->n_learners = conf.n_learners;
	memcpy(cc->learners, conf.learners, sizeof(cc->learners));
	r->drv_learner = conf.n_learners > 0 ? conf.learners[0] : 0;
	cc->seed = ((uint64_t)n->cfg.node_id << 32) ^ r->id;
	cc->election_timeout_ns = (uint64_t)n->cfg.election_timeout_ms * 1000000ull;
	cc->heartbeat_interval_ns = cc->election_timeout_ns / 10;
	cc->max_batch_entries = 64;
	cc->max_inflight_bytes = 4u << 20;
	cc->initial = r->hs; /* as recovered from the WAL */
	cc->log = &r->view;
	nd_rejoin_forget(n, r); /* a driver this one replaces */
	cc->rejoin = r->rejoining = rejoin && conf.n_voters > 1 && sl_cfg_region_here(&n->cfg, r->id);
	if (r->rejoining)
		atomic_fetch_add(&n->rejoin_left, 1);
	r->recover_target = sl_rlog_last(&r->rlog);
	/* in a cluster the log's tail may never commit (a new leader replaces it): wait
	 * only for what this replica knew to be committed (a multileader replica applies
	 * every durable entry of its log: all of it) */
	if (n->cfg.cluster_nodes > 1 && !r->ml && r->hs.commit < r->recover_target)
		r->recover_target = r->hs.commit > r->applied_index ? r->hs.commit
								    : r->applied_index;
	/* multileader: the node's own sizes (node_limits.h) and ack level */
	struct sl_ml_opts mlo;
	r->ready_wal_worst = 0;
	r->ready_entries = READY_ENTRIES_MAX;
	if (r->ml) {
		int rc = ml_options(n, r, &dc, &conf, &mlo, err, err_len);
		if (rc != 0)
			return rc;
	}
	uint32_t limit = sl_drv_entry_limit(&dc);
	/* the worst ready of a proposal this big fits the WAL gate (node_limits.h) */
	uint64_t wal_cap = PROP_CAP_FOR_WAL((uint64_t)n->cfg.wal_buffer_kb << 10);
	r->prop_cap = limit < PROP_BYTES ? limit : PROP_BYTES;
	if (r->prop_cap > wal_cap)
		r->prop_cap = (uint32_t)wal_cap;
	if (!r->ml)
		r->ready_wal_worst = WAL_READY_WORST(r->prop_cap);
	r->leader_hint = conf.voters[0];
	if (!sl_cfg_region_here(&n->cfg, r->id) && !r->learner_here) {
		/* no replica here: its points are forwarded to one (node.c) */
		r->drv = NULL;
		r->recover_target = 0;
		return 0;
	}
	struct sl_drv_host host = nd_drv_host;
	host.ctx = r;
	int rc = sl_drv_create(&dc, &host, &r->drv);
	if (rc == -EMSGSIZE) {
		region_report_oversized(r, limit, proto, err, err_len);
		return rc;
	}
	if (rc != 0) {
		snprintf(err, err_len, "region %u: protocol %s: %s", r->id, proto,
			 strerror(-rc));
		return rc;
	}
	return 0;
}

/* A region's memory on its core: an empty store, proposal buffers, forwarding streams,
 * an empty log window (at start, and for a split's child at run time). */
int nd_region_alloc(struct worker *w, struct region *r, char *err, size_t err_len)
{
	int rc;
	r->wk = w;
	sl_rlog_init(&r->rlog, 0, 0);
	sl_rlog_set_alloc(&r->rlog, nd_rlog_alloc, nd_rlog_free, &w->arena);
	sl_rlog_view(&r->rlog, &r->view);
	r->view.snapshot = nd_region_log_snapshot; /* ctx is &r->rlog */
	/* a multileader region's points keep the version of their write: replicas
	 * applying each other's writes in any order end with the same store */
	struct sl_store_config sc = {
	    .region_id = r->id, .arena = w->arena, .use_arena = true,
	    .versioned = r->ml};
	rc = sl_store_create(&sc, &r->store);
	if (rc != 0) {
		snprintf(err, err_len, "region %u: store: %s", r->id, strerror(-rc));
		return rc;
	}
	for (int k = 0; k < PROP_SLOTS; k++) {
		r->props[k].buf = sl_arena_alloc(w->arena, PROP_BYTES);
		if (r->props[k].buf == NULL) {
			snprintf(err, err_len, "out of memory for proposal buffers");
			return -ENOMEM;
		}
	}
	/* what this replica, leading, remembers of each node forwarding to it */
	r->fwd_streams = sl_arena_alloc(w->arena, sizeof(*r->fwd_streams) * SL_CFG_MAX_NODES);
	if (r->fwd_streams == NULL) {
		snprintf(err, err_len, "out of memory for forwarding streams");
		return -ENOMEM;
	}
	memset(r->fwd_streams, 0, sizeof(*r->fwd_streams) * SL_CFG_MAX_NODES);
	r->open = -1;
	return 0;
}

static int worker_init(struct sl_node *n, struct worker *w, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 64];
	w->tsc_hz = rte_get_tsc_hz();
	w->st_shm = sl_stats_core(n->stats, w->idx);
	w->st = &w->st_local;
	enum sl_arena_mode got;
	/* the arena module probes and falls back by itself; the mode is reported once */
	int rc = sl_arena_create(SL_ARENA_HUGETLB, &w->arena, &got);
	if (rc != 0) {
		snprintf(err, err_len, "worker %u: arena: %s", w->idx, strerror(-rc));
		return rc;
	}
	n->arena_mode = got;
	w->pend = calloc(PEND_MAX, sizeof(*w->pend));
	w->pend_free = calloc(PEND_MAX, sizeof(*w->pend_free));
	w->lsnq = calloc(LSNQ_SIZE, sizeof(*w->lsnq));
	w->recs = calloc(INGEST_BURST, sizeof(*w->recs));
	w->lp = calloc(1, sizeof(*w->lp));
	size_t scratch = SL_LP_SCRATCH_BYTES(SL_LP_LINE_MAX);
	char *lp_scratch = malloc(scratch);
	if (w->lp) {
		w->lp->scratch = lp_scratch;
		w->lp->scratch_cap = scratch;
	}
	sl_pkt_arp_init(&w->arp, 300ll * 1000000000ll);
	w->sessq = calloc(SESSQ_SIZE, sizeof(*w->sessq));
	for (unsigned d = 0; d < n->n_workers; d++)
		if ((w->ack_backlog[d] = calloc(ACK_BACKLOG, sizeof(struct xack))) == NULL ||
		    (w->ack_bl_slot[d] = calloc(PEND_MAX, sizeof(uint32_t))) == NULL)
			w->sessq = NULL; /* reported below */
	w->sess_mem = malloc(sl_sess_table_mem_bytes(SESS_CAPACITY, PEND_MAX));
	struct sl_sess_config scfg = {.capacity = SESS_CAPACITY,
				      .window = 1024,
				      .idle_timeout_ns = 600ll * 1000000000ll,
				      .keep_min_ns = 60ll * 1000000000ll,
				      .incarnation = ((uint64_t)time(NULL) << 16) ^ w->idx,
				      .hash_seed = rte_rdtsc(),
				      .hold_max = PEND_MAX /* cookies are pending handles */};
	if (w->sess_mem == NULL || w->sessq == NULL ||
	    sl_sess_table_init(&w->sess, w->sess_mem, sl_sess_table_mem_bytes(SESS_CAPACITY, PEND_MAX),
			       &scfg) != 0) {
		snprintf(err, err_len, "out of memory for the session table");
		return -ENOMEM;
	}
	if (!w->pend || !w->pend_free || !w->lsnq || !w->recs || !w->lp || !lp_scratch) {
		snprintf(err, err_len, "out of memory at start-up");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < PEND_MAX; i++)
		w->pend_free[w->n_pend_free++] = PEND_MAX - 1 - i;
	for (size_t i = 0; i < SL_ARRAY_LEN(w->slot_cur); i++)
		w->slot_cur[i] = UINT32_MAX;
	w->flat = malloc(FRAG_FLAT_BYTES);
	snprintf(path, sizeof(path), "sl_net_%u", w->idx);
	w->netq = n->n_workers > 1 ? rte_ring_create(path, NETQ_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ)
				   : NULL;
	if (w->flat == NULL || (n->n_workers > 1 && w->netq == NULL)) {
		snprintf(err, err_len, "worker %u: hand-over ring %s: %s", w->idx, path,
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	if (n->cfg.frag_max_flows > 0) {
		uint64_t ticks = (uint64_t)n->cfg.frag_timeout_ms * w->tsc_hz / 1000;
		rc = sl_frag_init(&w->frag, n->cfg.frag_max_flows, ticks ? ticks : 1, SOCKET_ID_ANY);
		if (rc != 0) {
			snprintf(err, err_len,
				 "worker %u: IPv4 reassembly table for [net] frag_max_flows = %u: %s "
				 "(lower it or raise [eal] memory_mb)",
				 w->idx, n->cfg.frag_max_flows, rte_strerror(rte_errno));
			return rc;
		}
	}
	snprintf(path, sizeof(path), "sl_loc_%u", w->idx);
	w->localq = rte_ring_create(path, LOCALQ_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (w->localq == NULL) {
		snprintf(err, err_len, "ring %s: %s", path, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "sl_ctl_%u", w->idx);
	w->ctlq = rte_ring_create(path, CTLQ_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (w->ctlq == NULL) {
		snprintf(err, err_len, "ring %s: %s", path, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* regions of this worker: stores, snapshots */
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker != w->idx)
			continue;
		rc = nd_region_alloc(w, r, err, err_len);
		if (rc != 0)
			return rc;
		if (atomic_load(&r->unborn) || atomic_load(&r->retired))
			continue; /* an unborn child has no state of its own yet, a merged one none */
		uint64_t t_load = nd_now_ns();
		char snap[SL_CFG_PATH_MAX + 64];
		struct stat sst;
		nd_snap_path(n, r->id, snap, sizeof(snap), "");
		if (stat(snap, &sst) == 0 && sst.st_size >= (256 << 20))
			SL_LOG(NOTICE, ckpt, "region %u: loading its image (%lld MiB)\n", r->id,
			       (long long)(sst.st_size >> 20));
		rc = region_load_snapshot(n, r, err, err_len);
		t_load = nd_now_ns() - t_load;
		if (rc == 0 && t_load >= 1000000000ull) /* a large image: say what took the time */
			SL_LOG(NOTICE, ckpt, "region %u: image at index %" PRIu64 " loaded in %.1f s\n",
			       r->id, r->snapshot_index, (double)t_load / 1e9);
		if (rc == 0 && r->ml)
			rc = nd_ml_recover(n, r, err, err_len);
		if (rc != 0)
			return rc;
		/* a multileader joiner (it holds no image of its segment: its copy went at a
		 * restart before it caught up, or it merged its peers' images only): the
		 * segment's log starts at the segment's base */
		if (r->ml && r->epoch > 0 && r->snapshot_index < nd_epoch_base(r->epoch))
			nd_region_log_at(w, r, nd_epoch_base(r->epoch));
	}
	rc = sessions_load(w, err, err_len);
	if (rc != 0)
		return rc;
	/* WAL: recover into the stores, then open the regions' protocols */
	struct sl_wal_config wc;
	sl_wal_config_default(&wc);
	snprintf(path, sizeof(path), "%s/wal/core-%02u", n->cfg.data_dir, w->idx);
	wc.dir = path;
	wc.segment_bytes = (uint64_t)n->cfg.wal_segment_mb << 20;
	wc.buffer_bytes = n->cfg.wal_buffer_kb << 10;
	wc.no_direct = !n->cfg.wal_direct_io;
	wc.salvage = n->cfg.wal_salvage;
	rc = sl_wal_open(&wc, &w->wal);
	if (rc != 0) {
		snprintf(err, err_len, "WAL %s: %s", path, strerror(-rc));
		return rc;
	}
	uint64_t t0 = nd_now_ns();
	struct replay_ctx ctx = {.n = n, .w = w, .path = path, .t0_ns = t0,
				 .next_ns = t0 + REPLAY_PROGRESS_NS};
	struct sl_wal_recovery rep;
	memset(&rep, 0, sizeof(rep));
	rc = sl_wal_recover(w->wal, replay_record, &ctx, &rep);
	if (rc != 0 && ctx.fail_rc == -EXDEV) {
		snprintf(err, err_len,
			 "WAL %s: region %u has records here, but [regions] and [cluster] no "
			 "longer place a replica of it on node %u; refusing to start (moving "
			 "regions between nodes is not supported yet)",
			 path, ctx.fail_region, n->cfg.node_id);
		return rc;
	}
	if (rc != 0 && ctx.fail_rc != 0) {
		char why[96];
		if (ctx.fail_rc == -EINVAL)
			snprintf(why, sizeof(why),
				 "entries are missing: the log ends at index %" PRIu64,
				 ctx.fail_last);
		else if (ctx.fail_rc == -EBADMSG)
			snprintf(why, sizeof(why), "its batch does not decode");
		else
			snprintf(why, sizeof(why), "%s", strerror(-ctx.fail_rc));
		snprintf(err, err_len,
			 "WAL %s: region %u: %s log entry at index %" PRIu64
			 " cannot be put back into the log (%s); refusing to start",
			 path, ctx.fail_region, sl_cfg_region_protocol(&n->cfg, ctx.fail_region),
			 ctx.fail_index, why);
		return rc;
	}
	if (rc != 0) {
		char why[384];
		sl_wal_explain(path, rc, &rep, why, sizeof(why));
		snprintf(err, err_len, "%s%s", why,
			 rc == -EBADMSG ? ". Refusing to start; [wal] salvage = true cuts the log "
					  "there, losing those lsns"
					: "");
		return rc;
	}
	n->recovered_entries += ctx.entries;
	if (rep.torn_tail_cut || rep.salvaged)
		SL_LOG(WARNING, wal,
			"WAL %s/%s offset %" PRIu64 ": %s (%s); log cut there, lsn %" PRIu64
			" on %s\n",
			path, rep.bad_segment, rep.bad_offset, sl_wal_bad_str(rep.reason),
			rep.salvaged ? "damage salvaged" : "torn tail of an unfinished write",
			rep.risk_first_lsn,
			rep.salvaged ? "lost" : "dropped (never acknowledged)");
	if (rep.records > 0)
		SL_LOG(NOTICE, wal, "WAL %s: %" PRIu64 " records replayed in %.1f s (%" PRIu64
				" entries back in the log, applied once the protocol hands them out; %" PRIu64
				" already in snapshots)\n",
			path, rep.records, (double)(nd_now_ns() - t0) / 1e9, ctx.entries, ctx.skipped);
	if (ctx.bad > 0)
		SL_LOG(WARNING, wal, "WAL %s: %" PRIu64 " unreadable entries skipped\n", path,
			ctx.bad);
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker != w->idx)
			continue;
		sl_rlog_view(&r->rlog, &r->view);
		r->view.snapshot = nd_region_log_snapshot; /* ctx is &r->rlog */
		if (atomic_load(&r->unborn) || atomic_load(&r->retired))
			continue; /* opened by its parent's split; gone in a merge */
		/* a sealed segment's log up to its SEAL was durable and committed (the epochs
		 * file says so, node_switch.c): applied again without a leader of it */
		if (r->seal_commit > r->hs.commit && r->seal_commit <= sl_rlog_last(&r->rlog) &&
		    r->seal_commit > nd_epoch_base(r->epoch))
			r->hs.commit = r->seal_commit;
		rc = nd_region_open(n, r, n->rejoin_active || r->ml_joining, err, err_len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* A region's place: its id, range and parent in the map, and its core (a split's child
 * stays on its parent's core, whose WAL holds its records: node_switch.c). */
void nd_region_place(struct sl_node *n, struct region *r, uint32_t id)
{
	r->id = id;
	sl_cfg_region_range(&n->cfg, id, &r->map_lo, &r->map_hi, &r->split_from,
			    &r->split_epoch);
	r->hash_lo = r->map_lo;
	r->hash_hi = r->map_hi;
	r->worker = r->split_from != 0 && r->split_from - 1 < id ? n->regions[r->split_from - 1].worker
								   : id % n->base_workers;
	/* moved to another core (a core move, docs/cluster.md): the map says where; the
	 * epochs file, when it names a core, says what this data dir runs (nd_switch_recover) */
	if (n->map_core[id] != 0 && n->map_core[id] - 1 < n->n_workers)
		r->worker = n->map_core[id] - 1;
	r->open = -1;
}

/* A split's child whose parent has a replica here still at a segment before the split:
 * the parent splits at run time (ctld's map is ahead of this data dir: the node stopped
 * between its sealed report and its split). */
static bool region_unborn_at_start(const struct sl_node *n, const struct region *r)
{
	if (r->split_from == 0)
		return false;
	const struct region *p = &n->regions[r->split_from - 1];
	return (sl_cfg_region_here(&n->cfg, p->id) || atomic_load(&p->unborn)) &&
	       p->epoch < r->split_epoch;
}

/* A region at start, before its store exists: unborn (its parent splits it once
 * running), or the segment its log is at (nd_switch_recover). */
static int region_start(struct sl_node *n, struct region *r, char *err, size_t err_len)
{
	if (region_unborn_at_start(n, r)) {
		/* its parent splits it once running: whatever a split cut short left */
		nd_region_drop_files(n, r->id);
		atomic_store(&r->unborn, true);
	} else {
		/* the segment of its log the region's image is of, and that one's protocol */
		int rc = nd_switch_recover(n, r, err, err_len);
		if (rc != 0)
			return rc;
	}
	if (atomic_load(&r->unborn) || r->epoch < r->split_epoch) {
		r->epoch = r->split_epoch; /* a child's log starts at its split's segment */
		atomic_store(&r->want_epoch, r->epoch);
	}
	/* every replica takes writes: versioned store, merged snapshots (node_ml.c) */
	r->ml = (sl_cons_caps(sl_cons_find(sl_cfg_region_protocol(&n->cfg, r->id))) &
		 SL_CONS_CAP_MERGE) != 0;
	return 0;
}

/* The regions the map says were merged into another (node_switch.c, region_merge), once
 * the region each went into is placed: gone here when that region's image is at the
 * merged segment or later, or that region is gone too (it merged on later, after this
 * merge was durable here); else started as any region (sealed), and the other region's
 * worker merges it again once running. A region goes after the one it went into. */
static int merged_at_start(struct sl_node *n, char *err, size_t err_len)
{
	bool done[SL_CFG_MAX_REGIONS] = {false};
	uint32_t ep = 0, left = 0;
	for (uint32_t i = 0; i < n->cfg.regions; i++)
		left += sl_cfg_region_merged(&n->cfg, i, &ep) != 0;
	for (uint32_t pass = 0; left > 0 && pass < n->cfg.regions; pass++) {
		for (uint32_t i = 0; i < n->cfg.regions; i++) {
			uint32_t into = sl_cfg_region_merged(&n->cfg, i, &ep), t = into - 1, tep = 0;
			if (into == 0 || done[i] || (sl_cfg_region_merged(&n->cfg, t, &tep) != 0 && !done[t]))
				continue;
			struct region *r = &n->regions[i], *to = &n->regions[t];
			if (atomic_load(&to->retired) || to->epoch >= ep) {
				nd_region_drop_files(n, i);
				nd_switch_drop_epochs(n, i);
				atomic_store(&r->retired, true);
				r->hash_lo = UINT64_MAX; /* an empty range */
				r->hash_hi = 0;
			} else {
				int rc = region_start(n, r, err, err_len);
				if (rc != 0)
					return rc;
				r->merge_epoch = ep;
				atomic_store(&to->merge_child, i + 1);
			}
			done[i] = true;
			left--;
		}
	}
	if (left > 0) {
		snprintf(err, err_len, "the region map's merges go round in a circle (%u regions "
				       "merged into one another): refusing to start", left);
		return -EINVAL;
	}
	return 0;
}

int sl_node_create(const struct sl_config *cfg, const struct sl_node_env *env,
		   struct sl_node **out, char *err, size_t err_len)
{
	struct sl_node *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		snprintf(err, err_len, "out of memory at start-up");
		return -ENOMEM;
	}
	n->exc_port = UINT16_MAX; /* none until nd_exc_init finds its device */
	n->cfg = *cfg;
	n->regions_conf = cfg->regions;
	rte_spinlock_init(&n->route_lock);
	n->env = *env;
	n->n_workers = env->n_workers;
	nd_clock_init();
	n->start_ns = nd_now_ns();
	/* names this process's forwarding streams: a restarted node starts new ones, which
	 * the leaders must not take for the old ones (node.c, forwarding) */
	if (getrandom(&n->fwd_life, sizeof(n->fwd_life), 0) != (ssize_t)sizeof(n->fwd_life))
		n->fwd_life = n->start_ns ^ ((uint64_t)getpid() << 32);
	n->fwd_life |= 1; /* never 0, which means "no stream yet" */
	int rc;
	char path[SL_CFG_PATH_MAX + 32];
	if (sl_cons_find(cfg->protocol) == NULL) {
		snprintf(err, err_len, "protocol '%s' is not built into this sluiced",
			 cfg->protocol);
		rc = -ENOTSUP;
		goto fail;
	}
	if ((rc = mkdir_p(cfg->data_dir)) != 0) {
		snprintf(err, err_len, "data dir %s: %s", cfg->data_dir, strerror(-rc));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/snap", cfg->data_dir);
	if ((rc = mkdir_p(path)) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		goto fail;
	}
	if ((rc = rejoin_setup(n, err, err_len)) != 0 || (rc = check_meta(n, err, err_len)) != 0 ||
	    (rc = nd_ctld_take_map(n, err, err_len)) != 0)
		goto fail;
	/* a protocol switch at run time finds every protocol's index in place */
	if (sl_cfg_protocols_register(&n->cfg) != 0) {
		snprintf(err, err_len, "more protocols built in than [regions] can name");
		rc = -ENOSPC;
		goto fail;
	}
	remove_tmp_files(path);
	/* room for the regions splits add (node_switch.c): a region's state is made on its
	 * core when it comes */
	n->regions = calloc(SL_CFG_MAX_REGIONS, sizeof(*n->regions));
	n->w = rte_zmalloc("sl_workers", sizeof(*n->w) * n->n_workers, RTE_CACHE_LINE_SIZE);
	if (n->regions == NULL || n->w == NULL) {
		snprintf(err, err_len, "out of memory at start-up");
		rc = -ENOMEM;
		goto fail;
	}
	uint32_t ep = 0;
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		nd_region_place(n, &n->regions[i], i);
		if (sl_cfg_region_merged(&n->cfg, i, &ep) == 0 &&
		    (rc = region_start(n, &n->regions[i], err, err_len)) != 0)
			goto fail;
	}
	if ((rc = merged_at_start(n, err, err_len)) != 0 ||
	    (rc = check_region_cores(n, err, err_len)) != 0)
		goto fail;
	/* an unborn child's parent splits once running (ctld's map has it past the seal) */
	for (uint32_t i = 0; i < n->cfg.regions; i++)
		if (atomic_load(&n->regions[i].unborn))
			atomic_store(&n->regions[n->regions[i].split_from - 1].split_child, i + 1);
	if (nd_route_build(n) != 0) {
		snprintf(err, err_len, "out of memory at start-up");
		rc = -ENOMEM;
		goto fail;
	}
	/* per-lcore caches only for the full-size pool: a test's small one stays shared */
	n->xpool = rte_mempool_create("sl_xmsg", cfg->xmsg_pool, sizeof(struct xmsg),
				      cfg->xmsg_pool >= XMSG_POOL ? 64 : 0, 0, NULL, NULL, NULL,
				      NULL, SOCKET_ID_ANY, 0);
	if (n->xpool == NULL) {
		snprintf(err, err_len, "mempool for cross-core messages: %s (raise [eal] memory_mb)",
			 rte_strerror(rte_errno));
		rc = -ENOMEM;
		goto fail;
	}
	rc = sl_stats_create(cfg->stats_path, n->n_workers, &n->stats);
	if (rc != 0) {
		snprintf(err, err_len, "stats segment %s: %s", cfg->stats_path, strerror(-rc));
		goto fail;
	}
	for (unsigned i = 0; i < n->n_workers; i++) {
		n->w[i].node = n;
		n->w[i].idx = i;
		n->w[i].lcore = env->worker_lcores[i];
	}
	for (unsigned s = 0; s < n->n_workers; s++)
		for (unsigned d = 0; d < n->n_workers; d++) {
			if (s == d)
				continue;
			char name[32];
			snprintf(name, sizeof(name), "sl_x_%u_%u", s, d);
			struct rte_ring *r = rte_ring_create(name, XRING_SIZE, SOCKET_ID_ANY,
							     RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (r == NULL) {
				snprintf(err, err_len, "ring %s: %s", name, rte_strerror(rte_errno));
				rc = -ENOMEM;
				goto fail;
			}
			n->w[s].out[d] = r;
			n->w[d].in[s] = r;
		}
	for (unsigned i = 0; i < n->n_workers; i++)
		if ((rc = worker_init(n, &n->w[i], err, err_len)) != 0)
			goto fail;
	if ((rc = sessions_consolidate(n, err, err_len)) != 0)
		goto fail;
	/* said once: where the workers' store memory comes from */
	SL_LOG(NOTICE, node, "worker memory arenas: %s%s\n", sl_arena_mode_name(n->arena_mode),
		n->arena_mode == SL_ARENA_HUGETLB ? ""
						  : " (no free 2 MiB hugepages: falling back, not failing)");
	rc = sl_lp_precision_parse(cfg->precision, &n->precision);
	if (rc != 0) {
		snprintf(err, err_len, "[net] precision '%s' not understood", cfg->precision);
		goto fail;
	}
	/* the pool also holds what the reassembly tables may keep, so a flood of incomplete
	 * datagrams cannot take the buffers that receive everything else */
	uint64_t mbufs = cfg->mbufs + (uint64_t)n->n_workers * cfg->frag_max_flows *
					      SL_FRAG_MAX_FRAGS;
	rc = sl_ports_init(&n->ports, (uint16_t)n->n_workers,
			   (uint32_t)(mbufs < UINT32_MAX ? mbufs : UINT32_MAX), err, err_len);
	if (rc == 0)
		rc = nd_net_tx_init(n, err, err_len);
	if (rc == 0)
		rc = nd_exc_init(n, err, err_len);
	if (rc == 0)
		rc = nd_fab_init(n, err, err_len);
	n->acks_majority = n->level2_majority = cfg->cluster_nodes > 1;
	for (uint32_t i = 0; i < n->cfg.regions && n->level2_majority; i++) {
		uint32_t reps[SL_CONS_MAX_PEERS];
		uint32_t copies = sl_cfg_region_replicas(&n->cfg, i, reps);
		if (copies < 2)
			n->acks_majority = n->level2_majority = false;
		/* a multileader region acks once durable on [regions] multileader_ack_copies
		 * replicas: a majority only when that many make one (or a write asks for 2) */
		if (n->regions[i].ml && n->cfg.ml_ack_copies < copies / 2 + 1)
			n->acks_majority = false;
	}
	if (rc == 0)
		rc = nd_ctld_init(n, err, err_len);
	if (rc != 0)
		goto fail;
	if (n->ports.n > 0) {
		memcpy(n->local.mac, n->ports.p[0].mac.addr_bytes, 6);
		n->local.n_ips = 1;
		n->local.ips[0] = cfg->ipv4_addr;
		n->local.loopback_ok = n->ports.n == 1 && strcmp(n->ports.p[0].name, SL_PORT_KERNEL) == 0;
	}
	if (cfg->shm_slots > NODE_SHM_SLOTS) { /* config.c's range: kept in step by a limit */
		snprintf(err, err_len, "[ingest] shm_slots = %u: at most %u", cfg->shm_slots,
			 NODE_SHM_SLOTS);
		rc = -EINVAL;
		goto fail;
	}
	rc = nd_ckpt_writer_start(n, err, err_len);
	if (rc != 0)
		goto fail;
	rc = sl_ingest_create(cfg->shm_ingest_path, cfg->shm_slots, cfg->shm_ring_entries,
			      &n->ingest);
	if (rc != 0) {
		snprintf(err, err_len, "shm ingest ring %s: %s", cfg->shm_ingest_path,
			 strerror(-rc));
		goto fail;
	}
	*out = n;
	return 0;
fail:
	sl_node_destroy(n);
	return rc;
}

void sl_node_housekeeping(struct sl_node *n)
{
	sl_ingest_heartbeat(n->ingest);
	nd_clock_resync();
	/* the liveness of shm clients (kill(2) each): here, off the workers' rounds; a
	 * worker resets a dead client's slot once it has drained it */
	for (uint32_t s = 0; s < sl_ingest_n_slots(n->ingest); s++)
		sl_ingest_check_owner(n->ingest, s);
	nd_fab_housekeeping(n);
	nd_ctld_housekeeping(n); /* rate-limited inside, short deadlines */
	nd_rejoin_done(n);
}

void sl_node_stop(struct sl_node *n) { atomic_store(&n->stop, true); }

bool sl_node_failed(const struct sl_node *n) { return atomic_load(&n->failed); }

bool sl_node_stopping(const struct sl_node *n) { return atomic_load(&n->stop); }

bool sl_node_recovered(const struct sl_node *n)
{
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		const struct region *r = &n->regions[i];
		/* written by the owning worker; a stale read only delays serving */
		if (__atomic_load_n(&r->applied_index, __ATOMIC_RELAXED) < r->recover_target)
			return false;
	}
	return true;
}

void sl_node_destroy(struct sl_node *n)
{
	if (n == NULL)
		return;
	if (n->ingest)
		sl_ingest_destroy(n->ingest, true);
	nd_exc_fini(n);
	sl_ports_close(&n->ports);
	nd_fab_fini(n);
	nd_ctld_fini(n);
	nd_ckpt_writer_stop(n); /* the workers have stopped: their last jobs are done here */
	for (unsigned i = 0; n->w && i < n->n_workers; i++) {
		struct worker *w = &n->w[i];
		nd_ckpt_free(w);
		nd_net_tx_fini(w);
		if (w->wal)
			sl_wal_close(w->wal);
		free(w->pend);
		free(w->pend_free);
		free(w->lsnq);
		free(w->recs);
		if (w->lp)
			free(w->lp->scratch);
		free(w->lp);
		free(w->sessq);
		free(w->sess_mem);
		for (unsigned d = 0; d < n->n_workers; d++) {
			free(w->ack_backlog[d]);
			free(w->ack_bl_slot[d]);
		}
		rte_ring_free(w->ctlq);
		rte_ring_free(w->localq);
		sl_frag_fini(&w->frag);
		free(w->flat);
		struct rte_mbuf *m;
		while (w->netq != NULL && rte_ring_dequeue(w->netq, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(w->netq);
		for (unsigned d = 0; d < n->n_workers; d++)
			rte_ring_free(w->out[d]);
	}
	for (uint32_t i = 0; n->regions && i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		sl_drv_destroy(r->drv);
		if (r->store)
			sl_store_destroy(r->store);
		sl_rlog_free(&r->rlog);
		free(r->snap_img);
		for (int k = 0; k < PROP_SLOTS; k++)
			if (r->props[k].buf)
				sl_arena_free(n->w[r->worker].arena, r->props[k].buf);
	}
	if (n->stats)
		sl_stats_destroy(n->stats, true);
	rte_mempool_free(n->xpool);
	rte_free(n->w);
	free(n->regions);
	nd_route_free(n);
	free(n);
}
