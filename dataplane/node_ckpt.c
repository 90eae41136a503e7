/* node_ckpt.c - checkpoints off the worker's critical path: the worker serialises its
 * regions' store images in bounded steps between applies (fuzzy images, store.h) and the
 * node's checkpoint writer thread does every file operation (write, fdatasync, term
 * record, rename, directory fsync, WAL segment release). A region's images form a chain:
 * a full base, then deltas of the chunks changed since the image before (the policy is
 * at ckpt_region_begin). Also a snapshot from a peer. */
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "log.h"
#include "node_internal.h"
#include "range.h"

#define CKPT_STEP_BYTES (256u << 10) /* serialised per worker round */
#define CKPT_BUF_BYTES (512u << 10)  /* a step's buffer (grows for one larger series) */
#define CKPT_WAIT_NS (60ull * 1000000000ull) /* install: waiting for the writer */
#define SNAP_KEEP_BYTES (1u << 20) /* images up to this size are kept to send to peers */
#define CKPT_DELTAS_MAX 16u /* deltas after a base; then a full image again */
#define EXPORT_RETRY_NS (1000000000ull) /* after a failed export: the next one */

enum ckpt_phase {
	CK_IDLE = 0,
	CK_REGION, /* pick the next region of this worker */
	CK_WALK,   /* serialise a step, hand it to the writer */
	CK_CLOSE,  /* the writer makes the region's image durable */
	CK_SESS,   /* the session table's image */
	CK_HS,     /* hard states appended again: wait until they are durable */
	CK_REL,    /* the writer releases WAL segments */
};

enum ckw_kind { CKW_OPEN = 1, CKW_DATA, CKW_CLOSE, CKW_ABORT, CKW_SESS, CKW_RELEASE, CKW_EXPORT };

/* What the writer keeps between the jobs of one worker's region image. */
struct ckw_file {
	int fd;
	int err;
	uint64_t off;
};

struct ckpt_writer {
	struct sl_node *n;
	pthread_t th;
	bool started;
	atomic_bool stop;
	struct rte_ring *q; /* jobs, from every worker, in order per worker */
	struct ckw_file files[SL_CFG_MAX_WORKERS];
};

/* ---------------------------------------------------------------- file helpers */

void nd_snap_path(const struct sl_node *n, uint32_t region, char *buf, size_t len,
		  const char *suffix)
{
	snprintf(buf, len, "%s/snap/region-%04u.snap%s", n->cfg.data_dir, region, suffix);
}

void nd_sess_snap_path(const struct sl_node *n, unsigned core, char *buf, size_t len)
{
	snprintf(buf, len, "%s/snap/sessions-core-%02u.snap", n->cfg.data_dir, core);
}

/* A delta image's file names its applied index and its base's: a delta belongs to the
 * chain of the base at that index only, so deltas a newer base (or a peer's snapshot)
 * left behind are never applied to it, whatever their index. */
void nd_delta_path(const struct sl_node *n, uint32_t region, uint64_t index, uint64_t base,
		   char *buf, size_t len)
{
	snprintf(buf, len, "%s/snap/region-%04u.d%" PRIu64 ".b%" PRIu64 ".snap", n->cfg.data_dir,
		 region, index, base);
}

/* true for a delta image's file name (nd_delta_path's last part), with what it names. */
bool nd_delta_name(const char *name, uint32_t *region, uint64_t *index, uint64_t *base)
{
	unsigned r = 0;
	int end = 0;
	if (strncmp(name, "region-", 7) != 0 ||
	    sscanf(name, "region-%u.d%" SCNu64 ".b%" SCNu64 ".snap%n", &r, index, base, &end) != 3 ||
	    end == 0 || name[end] != '\0')
		return false;
	*region = r;
	return true;
}

/* Removes the region's delta images but those of the chain of the base at `base` with an
 * index above keep_after. Not synced: a delta of another chain is never read. */
void nd_delta_remove_stale(const struct sl_node *n, uint32_t region, uint64_t base,
			   uint64_t keep_after)
{
	char dir[SL_CFG_PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/snap", n->cfg.data_dir);
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	/* bounded by the directory's entries */
	while ((de = readdir(d)) != NULL) {
		uint32_t r = 0;
		uint64_t idx = 0, b = 0;
		if (nd_delta_name(de->d_name, &r, &idx, &b) && r == region &&
		    (b != base || idx <= keep_after))
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	/* Bounded: each turn writes bytes or fails (EINTR retries, as the kernel moved on) */
	while (done < len) {
		ssize_t k = pwrite(fd, buf + done, len - done, (off_t)(off + done));
		if (k < 0 && errno != EINTR)
			return -errno;
		if (k == 0)
			return -EIO;
		if (k > 0)
			done += (size_t)k;
	}
	return 0;
}

static void snap_dir(const struct sl_node *n, char *buf, size_t len)
{
	snprintf(buf, len, "%s/snap", n->cfg.data_dir);
}

/* path.tmp, fdatasync, rename over path, fsync the directory. */
int nd_write_file_atomic(const struct sl_node *n, const char *path, const uint8_t *buf,
			     size_t len)
{
	char tmp[SL_CFG_PATH_MAX + 80], dir[SL_CFG_PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snap_dir(n, dir, sizeof(dir));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -errno;
	int rc = pwrite_all(fd, buf, len, 0);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp); /* a failed write leaves nothing behind */
	return rc == 0 ? fsync_dir(dir) : rc;
}

/* The raft base record of a region's snapshot (sl_rlog_base_format): the new snapshot's
 * index and term and the previous snapshot's, made durable (directory included) before
 * the new snapshot is renamed in, so either snapshot finds its own term. */
static int write_term_file(const struct sl_node *n, uint32_t region, uint64_t index,
			   uint64_t term, uint64_t prev_index, uint64_t prev_term)
{
	char fin[SL_CFG_PATH_MAX + 64], rec[96];
	nd_snap_path(n, region, fin, sizeof(fin), ".term");
	int len = sl_rlog_base_format(rec, sizeof(rec), index, term, prev_index, prev_term);
	if (len < 0)
		return len;
	return nd_write_file_atomic(n, fin, (const uint8_t *)rec, (size_t)len);
}

/* ---------------------------------------------------------------- the writer thread */

static void ckw_open(struct ckpt_writer *cw, struct ckw_file *f, const struct ckpt_job *j)
{
	char tmp[SL_CFG_PATH_MAX + 64];
	nd_snap_path(cw->n, j->region, tmp, sizeof(tmp), ".tmp");
	if (f->fd >= 0)
		close(f->fd);
	f->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	f->err = f->fd < 0 ? -errno : 0;
	f->off = SL_STORE_SNAP_HDR_BYTES; /* the header goes last, once the count is known */
}

/* The image's end: header, fdatasync, term record, rename, directory fsync (the order
 * of a crash-safe snapshot: docs/architecture.md). */
static int ckw_close(struct ckpt_writer *cw, struct ckw_file *f, const struct ckpt_job *j)
{
	char tmp[SL_CFG_PATH_MAX + 64], fin[SL_CFG_PATH_MAX + 96], dir[SL_CFG_PATH_MAX + 16];
	nd_snap_path(cw->n, j->region, tmp, sizeof(tmp), ".tmp");
	if (j->delta)
		nd_delta_path(cw->n, j->region, j->index, j->base_index, fin, sizeof(fin));
	else
		nd_snap_path(cw->n, j->region, fin, sizeof(fin), "");
	snap_dir(cw->n, dir, sizeof(dir));
	int rc = f->fd < 0 ? (f->err ? f->err : -EBADF) : f->err;
	if (rc == 0 && j->kind == CKW_CLOSE)
		rc = pwrite_all(f->fd, j->hdr, sizeof(j->hdr), 0);
	if (rc == 0 && j->kind == CKW_CLOSE && fdatasync(f->fd) != 0)
		rc = -errno;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (j->kind == CKW_ABORT) {
		unlink(tmp);
		return -ECANCELED;
	}
	if (rc == 0)
		rc = write_term_file(cw->n, j->region, j->index, j->term, j->prev_index,
				     j->prev_term);
	if (rc == 0 && j->ml) /* a multileader image's positions, durable before it is */
		rc = nd_ml_write_vec_file(cw->n, j->region, j->index, j->vec, j->vec_len,
					  j->prev_index, j->prev_vec, j->prev_vec_len);
	if (rc == 0 && rename(tmp, fin) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp); /* a failed snapshot leaves no half-written file behind */
		return rc;
	}
	rc = fsync_dir(dir);
	if (rc != 0 && j->delta)
		unlink(fin); /* not durable: the next delta, taken since the same image, covers it */
	if (rc == 0 && !j->delta) { /* the new base is durable: the old chain's deltas go */
		nd_delta_remove_stale(cw->n, j->region, j->index, UINT64_MAX);
		if (j->ml) /* and the merges it holds (merged before its walk began) */
			nd_ml_remove_merged(cw->n, j->region, j->index);
	}
	return rc;
}

/* A small image is kept in memory for peers that need it (read back here, off the
 * worker); the worker takes it over with the job. */
static void ckw_keep(struct ckpt_writer *cw, struct ckpt_job *j)
{
	char fin[SL_CFG_PATH_MAX + 64];
	nd_snap_path(cw->n, j->region, fin, sizeof(fin), "");
	int fd = open(fin, O_RDONLY);
	struct stat sb;
	if (fd >= 0 && fstat(fd, &sb) == 0 && (uint64_t)sb.st_size <= SNAP_KEEP_BYTES) {
		j->keep = malloc((size_t)sb.st_size + 1);
		if (j->keep != NULL && pread(fd, j->keep, (size_t)sb.st_size, 0) == sb.st_size) {
			j->keep_len = (size_t)sb.st_size;
		} else {
			free(j->keep);
			j->keep = NULL;
		}
	}
	if (fd >= 0)
		close(fd);
}

/* The whole of file `fd` into a malloc'd buffer (j->keep); 0 or -errno. */
static int read_whole(int fd, struct ckpt_job *j)
{
	if (fd < 0)
		return -errno;
	off_t size = lseek(fd, 0, SEEK_END);
	int rc = size < 0 ? -errno : size > (off_t)UINT32_MAX ? -EFBIG : 0;
	if (rc == 0 && (j->keep = malloc((size_t)size + 1)) == NULL)
		rc = -ENOMEM;
	if (rc == 0 && pread(fd, j->keep, (size_t)size, 0) != size)
		rc = -EIO;
	if (rc != 0) {
		free(j->keep);
		j->keep = NULL;
		return rc;
	}
	j->keep_len = (size_t)size;
	return 0;
}

/* A full image of the region's chain as it is on disk (base, then its deltas in order),
 * for a peer behind the log's base: the base file itself when it has no deltas, else the
 * chain loaded into a private store and written out whole (through a memfd). j->index:
 * the chain's last index (the worker checks it is still the region's snapshot). */
static int ckw_export(struct ckpt_writer *cw, struct ckpt_job *j)
{
	struct sl_node *n = cw->n;
	char path[SL_CFG_PATH_MAX + 96];
	nd_snap_path(n, j->region, path, sizeof(path), "");
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	struct sl_store_config sc = {.region_id = j->region, .versioned = n->regions[j->region].ml};
	struct sl_store *st = NULL;
	uint64_t base = 0, last = 0;
	int rc = sl_store_create(&sc, &st);
	if (rc == 0)
		rc = sl_store_snapshot_read(st, fd, &base);
	uint64_t idx[ND_DELTAS_MAX];
	size_t count = 0, any = 0;
	if (rc == 0)
		rc = nd_deltas_list(n, j->region, base, idx, ND_DELTAS_MAX, &count, &any);
	last = base;
	for (size_t k = 0; rc == 0 && k < count; k++) {
		nd_delta_path(n, j->region, idx[k], base, path, sizeof(path));
		uint64_t got = 0;
		int dfd = open(path, O_RDONLY);
		rc = dfd < 0 ? -errno : sl_store_snapshot_apply_delta(st, dfd, &got);
		if (dfd >= 0)
			close(dfd);
		if (rc == 0 && got != idx[k])
			rc = -EBADMSG;
		last = idx[k];
	}
	if (rc == 0 && count == 0) {
		rc = read_whole(fd, j); /* the base alone: the file as it is */
	} else if (rc == 0) {
		int mfd = memfd_create("sluice-export", MFD_CLOEXEC);
		rc = mfd < 0 ? -errno : sl_store_snapshot_write(st, mfd, last);
		if (rc == 0)
			rc = read_whole(mfd, j);
		if (mfd >= 0)
			close(mfd);
	}
	close(fd);
	sl_store_destroy(st);
	j->index = last;
	return rc;
}

static void ckw_run(struct ckpt_writer *cw, struct ckpt_job *j)
{
	struct ckw_file *f = &cw->files[j->worker];
	char path[SL_CFG_PATH_MAX + 64];
	int rc = 0;
	switch (j->kind) {
	case CKW_OPEN:
		ckw_open(cw, f, j);
		rc = f->err;
		break;
	case CKW_DATA:
		if (f->err == 0 && f->fd >= 0) {
			f->err = pwrite_all(f->fd, j->data, j->len, f->off);
			/* written back now, a step at a time: dirty pages of a large image left
			 * for its fdatasync would be flushed by the journal commit of the WAL's
			 * next fdatasync too (ext4 data=ordered), stalling the acks behind it */
			uint64_t t0 = nd_now_ns();
			if (f->err == 0 &&
			    sync_file_range(f->fd, (off_t)f->off, (off_t)j->len,
					    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
						SYNC_FILE_RANGE_WAIT_AFTER) != 0)
				f->err = -errno;
			f->off += j->len;
			/* at most half the disk's time: after a write-back that had to wait, as
			 * long again idle, so the WAL's flushes find the device free */
			uint64_t took = nd_now_ns() - t0;
			if (took > 1000000) {
				struct timespec ts = {(time_t)(took / 1000000000ull),
						      (long)(took % 1000000000ull)};
				nanosleep(&ts, NULL);
			}
		}
		rc = f->err;
		break;
	case CKW_CLOSE:
	case CKW_ABORT:
		rc = ckw_close(cw, f, j);
		if (rc == 0 && !j->delta) /* a delta is no snapshot a peer can load */
			ckw_keep(cw, j);
		break;
	case CKW_SESS:
		nd_sess_snap_path(cw->n, j->worker, path, sizeof(path));
		rc = nd_write_file_atomic(cw->n, path, j->data, j->len);
		break;
	case CKW_EXPORT:
		rc = ckw_export(cw, j);
		break;
	case CKW_RELEASE:
		snprintf(path, sizeof(path), "%s/wal/core-%02u", cw->n->cfg.data_dir, j->worker);
		rc = sl_wal_release_files(path, j->index, j->term, &j->prev_index, &j->deleted);
		break;
	default:
		rc = -EINVAL;
	}
	j->rc = rc;
	atomic_store_explicit(&j->done, true, memory_order_release);
}

static void *ckw_main(void *arg)
{
	struct ckpt_writer *cw = arg;
	/* The WAL's writes go first: this thread's own I/O (the image's write-back and
	 * syncs) in the idle I/O class, which the block schedulers that know classes
	 * (mq-deadline, bfq) serve after the others (mq-deadline still ages it in, so a
	 * checkpoint always completes). Best effort: without it the images only compete. */
	(void)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS: this thread */, 0,
		      3 << 13 /* IOPRIO_CLASS_IDLE */);
	/* Bounded by the node's life: stop is set at teardown, after the workers stopped;
	 * what is queued then is still done (it points into the workers' buffers, alive
	 * until this thread is joined). */
	for (;;) {
		void *obj;
		if (rte_ring_sc_dequeue(cw->q, &obj) == 0) {
			ckw_run(cw, obj);
			continue;
		}
		if (atomic_load(&cw->stop))
			break;
		struct timespec ts = {0, 500000}; /* a checkpoint waits 0.5 ms at most for it */
		nanosleep(&ts, NULL);
	}
	for (unsigned i = 0; i < SL_CFG_MAX_WORKERS; i++)
		if (cw->files[i].fd >= 0)
			close(cw->files[i].fd);
	return NULL;
}

int nd_ckpt_writer_start(struct sl_node *n, char *err, size_t err_len)
{
	struct ckpt_writer *cw = calloc(1, sizeof(*cw));
	if (cw == NULL) {
		snprintf(err, err_len, "out of memory at start-up");
		return -ENOMEM;
	}
	cw->n = n;
	for (unsigned i = 0; i < SL_CFG_MAX_WORKERS; i++)
		cw->files[i].fd = -1;
	n->ckw = cw;
	cw->q = rte_ring_create("sl_ckw", rte_align32pow2(n->n_workers * CKPT_JOBS + 1),
				SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (cw->q == NULL) {
		snprintf(err, err_len, "ring sl_ckw: %s", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* a plain thread, not an lcore: it blocks in the kernel (fdatasync) by design */
	int rc = pthread_create(&cw->th, NULL, ckw_main, cw);
	if (rc != 0) {
		snprintf(err, err_len, "checkpoint writer thread: %s", strerror(rc));
		return -rc;
	}
	cw->started = true;
	return 0;
}

void nd_ckpt_writer_stop(struct sl_node *n)
{
	struct ckpt_writer *cw = n->ckw;
	if (cw == NULL)
		return;
	if (cw->started) {
		atomic_store(&cw->stop, true);
		pthread_join(cw->th, NULL);
	}
	rte_ring_free(cw->q);
	free(cw);
	n->ckw = NULL;
}

/* ---------------------------------------------------------------- the worker's side */

/* The next job slot of this worker, or NULL while the writer still owns it. */
static struct ckpt_job *job_get(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	struct ckpt_job *j = &c->jobs[c->job_next % CKPT_JOBS];
	if (j->busy && !atomic_load_explicit(&j->done, memory_order_acquire))
		return NULL;
	for (int b = 0; b < CKPT_BUFS; b++)
		if (c->buf_job[b] == j) /* done: its buffer is free */
			c->buf_job[b] = NULL;
	free(j->keep); /* an image nobody took (an abandoned checkpoint) */
	memset(j, 0, sizeof(*j));
	j->worker = w->idx;
	return j;
}

static bool job_submit(struct worker *w, struct ckpt_job *j)
{
	atomic_store_explicit(&j->done, false, memory_order_relaxed);
	if (rte_ring_mp_enqueue(w->node->ckw->q, j) != 0)
		return false; /* ring full: tried again next round */
	j->busy = true;
	w->ckpt.job_next++;
	return true;
}

static bool job_done(const struct ckpt_job *j)
{
	return atomic_load_explicit(&j->done, memory_order_acquire);
}

static void ckpt_fail(struct worker *w, const char *what, uint32_t id, int rc)
{
	SL_LOG(ERR, ckpt, "worker %u: %s %u: snapshot failed (%s); WAL kept\n", w->idx,
		what, id, strerror(-rc));
	sl_stats_add(w->st, SL_STAT_wal_errors, 1);
	sl_stats_add(w->st, SL_STAT_snapshots_failed, 1);
	w->ckpt.phase = CK_IDLE;
	w->ckpt_active = false;
}

/* A buffer the writer does not hold, of at least need bytes (from the core's arena). */
static int ckpt_buf(struct worker *w, size_t need)
{
	struct wk_ckpt *c = &w->ckpt;
	for (int b = 0; b < CKPT_BUFS; b++) {
		if (c->buf_job[b] != NULL && c->buf_job[b]->busy && !job_done(c->buf_job[b]))
			continue;
		c->buf_job[b] = NULL;
		if (c->cap[b] < need) {
			size_t cap = need > CKPT_BUF_BYTES ? need : CKPT_BUF_BYTES;
			uint8_t *p = sl_arena_alloc(w->arena, cap);
			if (p == NULL)
				return -ENOMEM;
			if (c->buf[b] != NULL)
				sl_arena_free(w->arena, c->buf[b]);
			c->buf[b] = p;
			c->cap[b] = cap;
		}
		return b;
	}
	return -EBUSY;
}

/* Whether ckpt_buf would find a buffer the writer is done with (no allocation). */
static bool ckpt_buf_free(const struct worker *w)
{
	const struct wk_ckpt *c = &w->ckpt;
	for (int b = 0; b < CKPT_BUFS; b++)
		if (c->buf_job[b] == NULL || !c->buf_job[b]->busy || job_done(c->buf_job[b]))
			return true;
	return false;
}

/* A delta when the region has a durable base that is not small ([wal]
 * checkpoint_delta_min_kb: a small image is cheap to write whole, and only a full image
 * is kept for peers) and the deltas after it are few and together smaller than it, so
 * recovery reads at most about twice the live data; else a full image, the new base. */
static bool ckpt_wants_delta(const struct sl_node *n, const struct region *r)
{
	/* with peers, an image small enough to be kept for them stays full whatever the
	 * setting: a delta would leave a replica behind the log's base nothing to load */
	struct sl_cons_conf conf;
	nd_region_conf(n, r->id, &conf);
	if (conf.n_voters > 1 && r->snap_base_bytes <= SNAP_KEEP_BYTES)
		return false;
	return r->snap_since != 0 &&
	       r->snap_base_bytes >= (uint64_t)n->cfg.checkpoint_delta_min_kb << 10 &&
	       r->snap_deltas < CKPT_DELTAS_MAX && r->snap_delta_bytes < r->snap_base_bytes;
}

/* Starts the next region's image; false when this worker has none left. */
static bool ckpt_region_begin(struct worker *w)
{
	struct sl_node *n = w->node;
	struct wk_ckpt *c = &w->ckpt;
	for (; c->next < n->cfg.regions; c->next++) {
		struct region *r = &n->regions[c->next];
		/* an image at the same index exists already: nothing to write */
		if (r->worker == w->idx && r->applied_index != r->snapshot_index)
			break;
	}
	if (c->next == n->cfg.regions)
		return false;
	struct ckpt_job *j = job_get(w);
	if (j == NULL)
		return true; /* next round */
	struct region *r = &n->regions[c->next];
	uint64_t term = 0;
	/* the log's base term, for the protocol after a restart. The log holds every index
	 * from its base on, so a miss means no exact term: no snapshot then rather than one
	 * with a guessed term */
	int rc = sl_rlog_term(&r->rlog, r->applied_index, &term);
	if (rc != 0) {
		ckpt_fail(w, "region", r->id, rc);
		return true;
	}
	j->kind = CKW_OPEN;
	j->region = r->id;
	if (!job_submit(w, j))
		return true;
	c->r = r;
	c->index = r->applied_index;
	c->term = term;
	c->ml_vec_len = r->ml ? nd_ml_vec_capture(r, c->ml_vec) : 0;
	sl_store_snap_begin_since(r->store, c->index, ckpt_wants_delta(n, r) ? r->snap_since : 0,
				  &c->cur);
	c->delta = (c->cur.flags & SL_STORE_SNAP_F_DELTA) != 0;
	c->phase = CK_WALK;
	c->next++;
	return true;
}

/* One step of the region's image: at most CKPT_STEP_BYTES serialised (or one series). */
static void ckpt_walk(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	struct ckpt_job *j = job_get(w);
	if (j == NULL)
		return;
	/* the writer is behind: the store keeps serving meanwhile. Asked before the next
	 * series' size, whose count walks all its chunks: a writer behind for many rounds
	 * had the same walk repeated every round (a growing share of a loaded worker's CPU,
	 * perf/README.md) */
	if (!ckpt_buf_free(w))
		return;
	int b = ckpt_buf(w, sl_store_snap_next_bytes(&c->cur));
	if (b == -EBUSY)
		return;
	if (b < 0) {
		ckpt_fail(w, "region", c->r->id, b);
		return;
	}
	size_t len = 0;
	int done = sl_store_snap_step(&c->cur, c->buf[b], c->cap[b], CKPT_STEP_BYTES, &len);
	SL_ASSERT(done >= 0); /* the buffer holds the next series */
	if (len > 0) {
		j->kind = CKW_DATA;
		j->region = c->r->id;
		j->data = c->buf[b];
		j->len = len;
		if (!job_submit(w, j)) {
			/* nothing lost: the step is encoded again from a restarted walk */
			ckpt_fail(w, "region", c->r->id, -EAGAIN);
			return;
		}
		c->buf_job[b] = j;
	}
	if (done == 1) { /* the close job goes out next round */
		c->phase = CK_CLOSE;
		c->wait = NULL;
	}
}

/* The close of the region's image failed. A delta's failure leaves the chain as it was
 * (the writer removes a delta it renamed but could not make durable). A base's may have
 * renamed the new base in over the old one (a failed directory fsync): the chain on disk
 * is then that base alone, whose deltas do not exist yet, so the next image must be a
 * full one too (and it replaces that file). */
static void ckpt_region_failed(struct worker *w, struct region *r, int rc)
{
	if (!w->ckpt.delta)
		r->snap_since = 0;
	ckpt_fail(w, "region", r->id, rc);
}

static bool kept_image_usable(const struct region *r, uint64_t *term);

/* The region's image is durable: the log starts after it. */
static void ckpt_region_done(struct worker *w, struct ckpt_job *j)
{
	struct wk_ckpt *c = &w->ckpt;
	struct region *r = c->r;
	r->snapshot_index = c->index;
	r->snapshot_term = c->term;
	if (r->ml) { /* the image's positions; the store's are at least those */
		memcpy(r->ml_chain_vec, c->ml_vec, c->ml_vec_len);
		r->ml_chain_vec_len = c->ml_vec_len;
		if (r->ml_vec_len == 0) {
			memcpy(r->ml_vec, c->ml_vec, c->ml_vec_len);
			r->ml_vec_len = c->ml_vec_len;
		}
	}
	/* entries still kept ([regions] log_keep_mb) stay for replicas that are behind: they
	 * get entries, not a snapshot, after a short outage even across checkpoints */
	sl_rlog_compact_kept(&r->rlog, c->index);
	uint64_t bytes = SL_STORE_SNAP_HDR_BYTES + c->cur.bytes;
	if (c->delta) {
		r->snap_deltas++;
		r->snap_delta_bytes += bytes;
	} else {
		r->snap_base_index = c->index;
		r->snap_base_bytes = bytes;
		r->snap_deltas = 0;
		r->snap_delta_bytes = 0;
	}
	/* every chunk changed before the walk began is in the chain now (store.h) */
	r->snap_since = c->cur.gen + 1;
	sl_stats_add(w->st, c->delta ? SL_STAT_snapshots_delta : SL_STAT_snapshots_full, 1);
	sl_stats_add(w->st, SL_STAT_snapshot_bytes_written, bytes);
	/* a small base is kept as it is; an older image stays while the log continues from
	 * it (a transfer to a peer may be under way), else it goes */
	uint64_t t;
	struct sl_cons_conf conf;
	nd_region_conf(w->node, r->id, &conf);
	if (j->keep != NULL || !kept_image_usable(r, &t))
		nd_region_keep_image(r, j->keep, j->keep_len, c->index, &conf);
	j->keep = NULL;
	c->r = NULL;
}

static void ckpt_close(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	struct region *r = c->r;
	if (c->wait == NULL) {
		struct ckpt_job *j = job_get(w);
		if (j == NULL)
			return;
		j->kind = CKW_CLOSE;
		j->region = r->id;
		j->index = c->index;
		j->term = c->term;
		/* the chain's last image: a crash before the rename leaves it the one read */
		j->prev_index = r->snapshot_index;
		j->prev_term = r->snapshot_term;
		j->delta = c->delta;
		j->base_index = r->snap_base_index;
		j->ml = r->ml;
		j->vec_len = c->ml_vec_len;
		memcpy(j->vec, c->ml_vec, c->ml_vec_len);
		j->prev_vec_len = r->ml_chain_vec_len;
		memcpy(j->prev_vec, r->ml_chain_vec, r->ml_chain_vec_len);
		sl_store_snap_header(&c->cur, j->hdr);
		if (job_submit(w, j))
			c->wait = j;
		return;
	}
	if (!job_done(c->wait))
		return;
	struct ckpt_job *j = c->wait;
	c->wait = NULL;
	if (j->rc != 0) {
		ckpt_region_failed(w, r, j->rc);
		return;
	}
	ckpt_region_done(w, j);
	c->phase = CK_REGION;
}

/* The session table's image (small: serialised here, written by the writer), then the
 * hard states again, then the release once those are durable. */
static void ckpt_sessions(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	if (c->wait == NULL) {
		struct ckpt_job *j = job_get(w);
		if (j == NULL)
			return;
		size_t cap = sl_sess_snapshot_bytes(&w->sess);
		if (c->sess_cap < cap) {
			uint8_t *p = sl_arena_alloc(w->arena, cap);
			if (p == NULL) {
				ckpt_fail(w, "core", w->idx, -ENOMEM);
				return;
			}
			if (c->sess_buf != NULL)
				sl_arena_free(w->arena, c->sess_buf);
			c->sess_buf = p;
			c->sess_cap = cap;
		}
		int len = sl_sess_snapshot_write(&w->sess, 0, c->sess_buf, c->sess_cap);
		if (len < 0) {
			ckpt_fail(w, "core", w->idx, len);
			return;
		}
		j->kind = CKW_SESS;
		j->data = c->sess_buf;
		j->len = (size_t)len;
		if (job_submit(w, j))
			c->wait = j;
		return;
	}
	if (!job_done(c->wait))
		return;
	/* the hard states below are appended without waiting: with no WAL room for all of
	 * them, this step runs again next round */
	if (!w->wal_failed &&
	    !nd_wal_room(w, (uint64_t)w->node->cfg.regions * WAL_REC_WORST(HARDSTATE_BYTES)))
		return;
	int rc = c->wait->rc;
	c->wait = NULL;
	if (rc != 0) {
		ckpt_fail(w, "sessions of core", w->idx, rc);
		return;
	}
	/* hard states (raft's term and vote) live in WAL records: written again before the
	 * segments holding older copies go; the release waits until they are durable, the
	 * worker does not */
	struct sl_node *n = w->node;
	c->hs_lsn = 0;
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker == w->idx && r->has_hs) {
			struct sl_cons_hard_state hs = r->hs;
			if (nd_wal_append_hardstate(w, r, &hs, &c->hs_lsn) != 0) {
				nd_wal_fail(w, -EIO);
				ckpt_fail(w, "core", w->idx, -EIO);
				return;
			}
		}
	}
	c->phase = CK_HS;
}

static void ckpt_release(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	if (c->wait == NULL) {
		if (w->wal_failed) {
			ckpt_fail(w, "core", w->idx, -EIO);
			return;
		}
		if (sl_wal_durable_lsn(w->wal) < c->hs_lsn)
			return;
		struct ckpt_job *j = job_get(w);
		if (j == NULL)
			return;
		uint64_t seg = sl_wal_segment_lsn(w->wal);
		j->kind = CKW_RELEASE;
		j->index = c->upto;
		j->term = seg != 0 ? seg : UINT64_MAX; /* never the active segment */
		if (job_submit(w, j)) {
			c->wait = j;
			c->phase = CK_REL;
		}
		return;
	}
	if (!job_done(c->wait))
		return;
	struct ckpt_job *j = c->wait;
	c->wait = NULL;
	sl_wal_released(w->wal, j->prev_index, j->deleted);
	if (j->rc != 0)
		SL_LOG(ERR, ckpt, "worker %u: WAL release failed: %s\n", w->idx,
			strerror(-j->rc));
	c->phase = CK_IDLE;
	w->ckpt_active = false;
}

/* One step of a checkpoint per worker round: a bounded slice of CPU work, never a file
 * operation. WAL records <= upto were applied when the checkpoint began: every image
 * taken after that covers them. */
void nd_checkpoint_step(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	if (c->phase == CK_IDLE) {
		w->ckpt_active = true;
		w->ckpt_wanted = false;
		c->upto = nd_lsnq_trim(w);
		c->next = 0;
		c->phase = CK_REGION;
		w->wal_bytes_since_ckpt = 0;
	}
	switch (c->phase) {
	case CK_REGION:
		if (!ckpt_region_begin(w))
			c->phase = CK_SESS;
		break;
	case CK_WALK:
		ckpt_walk(w);
		break;
	case CK_CLOSE:
		ckpt_close(w);
		break;
	case CK_SESS:
		ckpt_sessions(w);
		break;
	case CK_HS:
	case CK_REL:
		ckpt_release(w);
		break;
	default:
		break;
	}
}

/* Waits (bounded) until the writer holds nothing of this worker, abandoning a running
 * checkpoint: a snapshot install replaces a store a walk may be reading. */
static int ckpt_quiesce(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	uint64_t deadline = nd_now_ns() + CKPT_WAIT_NS;
	if (c->phase == CK_WALK || (c->phase == CK_CLOSE && c->wait == NULL)) {
		struct ckpt_job *j = NULL;
		while ((j = job_get(w)) == NULL && nd_now_ns() < deadline)
			rte_delay_us_sleep(100);
		if (j == NULL)
			return -ETIMEDOUT;
		j->kind = CKW_ABORT; /* the half-written image goes */
		j->region = c->r->id;
		while (!job_submit(w, j) && nd_now_ns() < deadline)
			rte_delay_us_sleep(100);
	}
	for (int i = 0; i <= CKPT_JOBS; i++) {
		struct ckpt_job *j = i < CKPT_JOBS ? &c->jobs[i] : &c->exp;
		while (j->busy && !job_done(j) && nd_now_ns() < deadline)
			rte_delay_us_sleep(100);
		if (j->busy && !job_done(j))
			return -ETIMEDOUT;
	}
	if (c->phase == CK_REL && c->wait != NULL) /* its segments are gone: say so */
		sl_wal_released(w->wal, c->wait->prev_index, c->wait->deleted);
	if (c->phase == CK_CLOSE && c->wait != NULL && c->wait->rc == 0)
		ckpt_region_done(w, c->wait); /* that image is in place: as if finished */
	else if (c->phase == CK_CLOSE && c->wait != NULL && !c->delta)
		c->r->snap_since = 0; /* as ckpt_region_failed: a new base may be in place */
	c->wait = NULL;
	c->r = NULL;
	c->phase = CK_IDLE;
	w->ckpt_active = false; /* the next one starts over */
	return 0;
}

void nd_ckpt_free(struct worker *w)
{
	struct wk_ckpt *c = &w->ckpt;
	for (int b = 0; b < CKPT_BUFS; b++)
		if (c->buf[b] != NULL)
			sl_arena_free(w->arena, c->buf[b]);
	if (c->sess_buf != NULL)
		sl_arena_free(w->arena, c->sess_buf);
	free(c->exp.keep);
	memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------- snapshots of peers */

static void refuse(struct region *r, const struct sl_cons_snapshot *snap, const char *why, int rc)
{
	sl_stats_add(r->wk->st, SL_STAT_cons_snapshots_refused, 1);
	SL_LOG(ERR, ckpt,
	       "region %u: snapshot at index %" PRIu64 " term %" PRIu64
		" (%u bytes) refused: %s (%s); the region's store is unchanged\n",
		r->id, snap->index, snap->term, snap->len, why, strerror(-rc));
}

/* The region's latest image for peers (owned from now on; NULL: none kept). */
void nd_region_keep_image(struct region *r, uint8_t *img, size_t len, uint64_t index,
			  const struct sl_cons_conf *conf)
{
	free(r->snap_img);
	r->snap_img_gen++;
	/* a multileader image goes to peers with its own positions: those of the chain's
	 * image at that index (node_ml.c), known here when it is the chain's last */
	r->ml_img_vec_len = 0;
	if (r->ml && img != NULL && index == r->snapshot_index && r->ml_chain_vec_len > 0) {
		memcpy(r->ml_img_vec, r->ml_chain_vec, r->ml_chain_vec_len);
		r->ml_img_vec_len = r->ml_chain_vec_len;
	}
	r->snap_img = img;
	r->snap_img_len = img != NULL ? (uint32_t)len : 0;
	r->snap_img_index = index;
	r->snap_conf = *conf;
}

/* A peer's snapshot (snap->data: a store image v2 of this region at snap->index):
 * decoded into a new store first, so a bad image leaves the region as it was; written
 * durably as the region's snapshot (term record first, as a checkpoint does); then the
 * new store replaces the old one and the log starts after snap->index. Blocking: rare
 * (a replica that fell behind its leader's compaction). */
int nd_install_snapshot(struct region *r, const struct sl_cons_snapshot *snap)
{
	struct worker *w = r->wk;
	struct sl_node *n = w->node;
	if (r->ml) { /* a multileader snapshot merges into the store (node_ml.c) */
		const char *why = "";
		int rc = nd_ml_install(r, snap, &why);
		if (rc != 0) {
			refuse(r, snap, why, rc);
			return rc;
		}
		sl_stats_add(w->st, SL_STAT_cons_snapshots_installed, 1);
		SL_LOG(INFO, ckpt, "region %u: snapshot of a peer at index %" PRIu64
				" merged (%u bytes)\n", r->id, snap->index, snap->len);
		return 0;
	}
	if (snap->data == NULL || snap->len < SL_STORE_SNAP_HDR_BYTES) {
		refuse(r, snap, "no store image", -EBADMSG);
		return -EBADMSG;
	}
	struct sl_store_config sc = {.region_id = r->id, .arena = w->arena, .use_arena = true};
	struct sl_store *st = NULL;
	uint64_t idx = 0;
	const char *why = "no memory for a new store";
	int rc = sl_store_create(&sc, &st);
	if (rc == 0) {
		rc = sl_store_snapshot_read_mem(st, snap->data, snap->len, &idx);
		why = rc == -EINVAL ? "the image is of another region" : "the image does not decode";
	}
	if (rc == 0 && idx != snap->index) {
		rc = -EINVAL;
		why = "the image is of another log index";
	}
	if (rc != 0) {
		sl_store_destroy(st);
		refuse(r, snap, why, rc);
		return rc;
	}
	rc = ckpt_quiesce(w);
	char fin[SL_CFG_PATH_MAX + 64];
	nd_snap_path(n, r->id, fin, sizeof(fin), "");
	if (rc == 0)
		rc = write_term_file(n, r->id, snap->index, snap->term, r->snapshot_index,
				     r->snapshot_term);
	if (rc == 0)
		rc = nd_write_file_atomic(n, fin, snap->data, snap->len);
	if (rc != 0) {
		sl_store_destroy(st);
		refuse(r, snap, "it could not be made durable", rc);
		sl_stats_add(w->st, SL_STAT_snapshots_failed, 1);
		return rc;
	}
	/* the new base replaces the chain: deltas of the old one are never read again */
	nd_delta_remove_stale(n, r->id, snap->index, UINT64_MAX);
	sl_store_destroy(r->store);
	r->store = st;
	r->snap_since = sl_store_mark_clean(st);
	r->snap_base_index = snap->index;
	r->snap_base_bytes = snap->len;
	r->snap_deltas = 0;
	r->snap_delta_bytes = 0;
	r->snapshot_index = r->applied_index = r->last_index = snap->index;
	r->snapshot_term = snap->term;
	/* the log starts after the snapshot: every entry goes, later ones included */
	sl_rlog_free(&r->rlog);
	sl_rlog_init(&r->rlog, snap->index, snap->term);
	sl_rlog_set_alloc(&r->rlog, nd_rlog_alloc, nd_rlog_free, &w->arena);
	uint8_t *copy = snap->len <= SNAP_KEEP_BYTES ? malloc(snap->len) : NULL;
	if (copy != NULL)
		memcpy(copy, snap->data, snap->len);
	nd_region_keep_image(r, copy, snap->len, snap->index, &snap->conf);
	sl_stats_add(w->st, SL_STAT_cons_snapshots_installed, 1);
	SL_LOG(INFO, ckpt, "region %u: snapshot at index %" PRIu64 " term %" PRIu64
			" installed (%u bytes)\n",
		r->id, snap->index, snap->term, snap->len);
	return 0;
}

/* The region's image chain and its side files go (a replica that left, or one that
 * joins a later segment empty). Not synced: what decides the segment at a restart is the
 * epochs file, written before (node_switch.c), which makes any image left here unread. */
void nd_region_drop_files(const struct sl_node *n, uint32_t region)
{
	nd_region_drop_older(n, region, UINT64_MAX);
}

/* The same, but a multileader region's merged snapshots at `keep_from` and above stay
 * (a joiner's merged images of the segment it runs: its state when it has no image). */
void nd_region_drop_older(const struct sl_node *n, uint32_t region, uint64_t keep_from)
{
	static const char *const sfx[] = {"", ".term", ".vec"};
	char path[SL_CFG_PATH_MAX + 64];
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		nd_snap_path(n, region, path, sizeof(path), sfx[i]);
		(void)unlink(path);
	}
	nd_delta_remove_stale(n, region, UINT64_MAX, UINT64_MAX);
	nd_ml_remove_merged(n, region, keep_from == UINT64_MAX ? UINT64_MAX : keep_from - 1);
}

int nd_ckpt_quiesce(struct worker *w) { return ckpt_quiesce(w); }

/* The region's image at the start of a new segment of its log (a protocol switch,
 * node_switch.c): the store as the sealed segment left it, labelled `index` (the new
 * segment's base), in the kind the new protocol keeps (versioned for multileader: *out is
 * then a new store holding the same points, else r->store itself), made durable as the
 * region's new base image after its term record (term 1) and, for multileader, a vector
 * naming no position. The rename is the switch's commit point: a restart finds the new
 * segment by the image's index. Older deltas and merge files go. Blocking, as a snapshot
 * install is. */
int nd_switch_image(struct region *r, bool versioned, uint64_t index, struct sl_store **out,
		    uint64_t *bytes)
{
	struct worker *w = r->wk;
	struct sl_node *n = w->node;
	char tmp[SL_CFG_PATH_MAX + 64], fin[SL_CFG_PATH_MAX + 64], dir[SL_CFG_PATH_MAX + 16];
	nd_snap_path(n, r->id, fin, sizeof(fin), "");
	nd_snap_path(n, r->id, tmp, sizeof(tmp), ".switch.tmp");
	snap_dir(n, dir, sizeof(dir));
	struct sl_store *st = r->store;
	int rc = ckpt_quiesce(w);
	int fd = rc == 0 ? open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0640) : -1;
	if (rc == 0 && fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = sl_store_snapshot_write(r->store, fd, index);
	if (rc == 0 && versioned != sl_store_versioned(r->store)) {
		/* the points keep their values; the kind of store changes (store.h) */
		struct sl_store_config sc = {.region_id = r->id, .arena = w->arena,
					     .use_arena = true, .versioned = versioned};
		uint64_t idx = 0;
		st = NULL;
		rc = sl_store_create(&sc, &st);
		if (rc == 0)
			rc = lseek(fd, 0, SEEK_SET) == 0 ? 0 : -errno;
		if (rc == 0)
			rc = sl_store_snapshot_read_convert(st, fd, &idx);
		if (rc == 0)
			rc = ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 ? 0 : -errno;
		if (rc == 0)
			rc = sl_store_snapshot_write(st, fd, index);
	}
	off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : 0;
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = write_term_file(n, r->id, index, 1, r->snapshot_index, r->snapshot_term);
	if (rc == 0 && versioned) {
		uint8_t none[ND_ML_VEC_BYTES];
		uint32_t len = sl_ml_snap_vec_put(none, sizeof(none), NULL, NULL, 0);
		rc = nd_ml_write_vec_file(n, r->id, index, none, len, r->snapshot_index,
					  r->ml ? r->ml_chain_vec : NULL,
					  r->ml ? r->ml_chain_vec_len : 0);
	}
	if (rc == 0 && rename(tmp, fin) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc != 0) {
		(void)unlink(tmp);
		if (st != r->store)
			sl_store_destroy(st);
		return rc;
	}
	/* the new base replaces the chain, and covers what peers' snapshots merged */
	nd_delta_remove_stale(n, r->id, index, UINT64_MAX);
	nd_ml_remove_merged(n, r->id, UINT64_MAX);
	*out = st;
	*bytes = (uint64_t)size;
	return 0;
}

/* One half of a split: the series of the whole image (at fd) within [lo, hi] as a new
 * store of region `id`. */
static int split_load(struct worker *w, int fd, uint32_t id, bool versioned, uint64_t lo,
		      uint64_t hi, struct sl_store **out)
{
	struct sl_store_config sc = {.region_id = id, .arena = w->arena, .use_arena = true,
				     .versioned = versioned};
	uint64_t idx = 0;
	*out = NULL;
	int rc = sl_store_create(&sc, out);
	if (rc == 0)
		rc = lseek(fd, 0, SEEK_SET) == 0 ? 0 : -errno;
	if (rc == 0)
		rc = sl_store_snapshot_read_range(*out, fd, lo, hi, &idx);
	return rc;
}

/* ...written durable as region `id`'s base image at `index` (term record first, the
 * rename last). */
static int split_write(struct worker *w, uint32_t id, const struct sl_store *st,
		       uint64_t index, uint64_t *bytes)
{
	struct sl_node *n = w->node;
	char tmp[SL_CFG_PATH_MAX + 64], fin[SL_CFG_PATH_MAX + 64], dir[SL_CFG_PATH_MAX + 16];
	nd_snap_path(n, id, fin, sizeof(fin), "");
	nd_snap_path(n, id, tmp, sizeof(tmp), ".split.tmp");
	snap_dir(n, dir, sizeof(dir));
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0640);
	int rc = fd < 0 ? -errno : sl_store_snapshot_write(st, fd, index);
	off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : 0;
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = write_term_file(n, id, index, 1, 0, 0);
	if (rc == 0 && rename(tmp, fin) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc != 0) {
		(void)unlink(tmp);
		return rc;
	}
	nd_delta_remove_stale(n, id, index, UINT64_MAX);
	*bytes += (uint64_t)size;
	return 0;
}

/* A region split (node_switch.c): the sealed store of r, whose range as routed now is
 * [r->hash_lo, r->hash_hi], cut at `at` into the child's base image (the series from `at`
 * up, region c) and then r's own (the rest), both at `index`, the new segment's base.
 * Every series of the store lands in exactly one half (checked before anything is
 * renamed in). The child's image is written first: the parent's rename is the split's
 * commit point (a restart before it splits again and writes the child's image anew).
 * New stores in *r_st and *c_st; blocking, as nd_switch_image. */
int nd_split_images(struct region *r, struct region *c, uint64_t at, uint64_t index,
		    struct sl_store **r_st, struct sl_store **c_st, uint64_t *bytes)
{
	struct worker *w = r->wk;
	struct sl_node *n = w->node;
	char whole[SL_CFG_PATH_MAX + 64];
	struct sl_hash_range lo_h, hi_h; /* the cut the simulator checks (range.h) */
	if (sl_range_split(r->hash_lo, r->hash_hi, at, &lo_h, &hi_h) != 0)
		return -ERANGE;
	nd_snap_path(n, r->id, whole, sizeof(whole), ".whole.tmp");
	int rc = ckpt_quiesce(w);
	int fd = rc == 0 ? open(whole, O_RDWR | O_CREAT | O_TRUNC, 0640) : -1;
	if (rc == 0 && fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = sl_store_snapshot_write(r->store, fd, index);
	struct sl_store *lo_st = NULL, *hi_st = NULL;
	bool v = sl_store_versioned(r->store);
	if (rc == 0)
		rc = split_load(w, fd, c->id, v, hi_h.lo, hi_h.hi, &hi_st);
	if (rc == 0)
		rc = split_load(w, fd, r->id, v, lo_h.lo, lo_h.hi, &lo_st);
	if (fd >= 0)
		close(fd);
	(void)unlink(whole);
	if (rc == 0) {
		struct sl_store_stats a, b, all;
		sl_store_stats(r->store, &all);
		sl_store_stats(lo_st, &a);
		sl_store_stats(hi_st, &b);
		if (a.series + b.series != all.series || a.points + b.points != all.points)
			rc = -EBADMSG; /* a point outside the region's range: not split */
	}
	*bytes = 0;
	if (rc == 0)
		rc = split_write(w, c->id, hi_st, index, bytes);
	if (rc == 0)
		rc = split_write(w, r->id, lo_st, index, bytes);
	if (rc != 0) {
		sl_store_destroy(hi_st);
		sl_store_destroy(lo_st);
		return rc;
	}
	*r_st = lo_st;
	*c_st = hi_st;
	return 0;
}

/* A region merge (node_switch.c): the sealed stores of r and s, whose ranges as routed
 * now are adjacent, as one base image of r at `index`, the new segment's base: r's store
 * is written and read back, then s's is read into the same store (a series both held is
 * damage: not merged). The counts of series and points add up, checked before r's image
 * is renamed in, the merge's commit point (a restart before it merges again). The new
 * store in *out; blocking, as nd_switch_image. */
int nd_merge_images(struct region *r, struct region *s, uint64_t index, struct sl_store **out,
		    uint64_t *bytes)
{
	struct worker *w = r->wk;
	char whole[SL_CFG_PATH_MAX + 64];
	struct sl_store *m = NULL;
	bool v = sl_store_versioned(r->store);
	nd_snap_path(w->node, r->id, whole, sizeof(whole), ".whole.tmp");
	int rc = v == sl_store_versioned(s->store) ? ckpt_quiesce(w) : -EINVAL;
	for (int k = 0; k < 2 && rc == 0; k++) {
		const struct region *from = k == 0 ? r : s;
		int fd = open(whole, O_RDWR | O_CREAT | O_TRUNC, 0640);
		rc = fd < 0 ? -errno : sl_store_snapshot_write(from->store, fd, index);
		uint64_t idx = 0;
		if (rc == 0 && k == 0)
			rc = split_load(w, fd, r->id, v, r->hash_lo, r->hash_hi, &m);
		else if (rc == 0)
			rc = lseek(fd, 0, SEEK_SET) == 0
				 ? sl_store_snapshot_read_more(m, fd, s->hash_lo, s->hash_hi, &idx)
				 : -errno;
		if (fd >= 0)
			close(fd);
	}
	(void)unlink(whole);
	if (rc == 0) {
		struct sl_store_stats a, b, all;
		sl_store_stats(r->store, &a);
		sl_store_stats(s->store, &b);
		sl_store_stats(m, &all);
		if (a.series + b.series != all.series || a.points + b.points != all.points)
			rc = -EBADMSG; /* a point outside its region's range: not merged */
	}
	*bytes = 0;
	if (rc == 0)
		rc = split_write(w, r->id, m, index, bytes);
	if (rc != 0) {
		sl_store_destroy(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* The kept image, when the log continues from it (its index at or after the log's first
 * index - 1, and its term known): a replica that installs it gets entries from there. */
static bool kept_image_usable(const struct region *r, uint64_t *term)
{
	if (r->snap_img == NULL || r->snap_img_index == 0 ||
	    r->snap_img_index + 1 < sl_rlog_first_readable(&r->rlog) ||
	    r->snap_img_index > r->applied_index)
		return false;
	if (r->snap_img_index == r->snapshot_index) {
		*term = r->snapshot_term;
		return true;
	}
	return sl_rlog_term(&r->rlog, r->snap_img_index, term) == 0;
}

/* The worker's export job: collected for whichever region it was of (only while that
 * region's chain still ends where the job found it), else started for `r`. */
static void export_poll(struct worker *w, struct region *r)
{
	struct wk_ckpt *c = &w->ckpt;
	struct ckpt_job *j = &c->exp;
	if (j->busy) {
		if (!job_done(j))
			return;
		j->busy = false;
		struct region *owner = &w->node->regions[j->region];
		if (j->rc == 0 && j->index == owner->snapshot_index) {
			struct sl_cons_conf conf;
			nd_region_conf(w->node, owner->id, &conf);
			nd_region_keep_image(owner, j->keep, j->keep_len, j->index, &conf);
			j->keep = NULL;
			sl_stats_add(w->st, SL_STAT_snapshot_exports, 1);
			SL_LOG(INFO, ckpt,
			       "region %u: full image at index %" PRIu64 " (%zu bytes) ready for peers\n",
			       owner->id, j->index, j->keep_len);
		} else if (j->rc != 0) {
			sl_stats_add(w->st, SL_STAT_snapshot_exports_failed, 1);
			SL_LOG(ERR, ckpt, "region %u: no image for peers (%s); tried again in 1 s\n",
			       owner->id, strerror(-j->rc));
			c->exp_next_ns = nd_now_ns() + EXPORT_RETRY_NS;
		}
		free(j->keep); /* of a chain that moved on: the next export is newer */
		j->keep = NULL;
		return;
	}
	/* not before the writer runs (a protocol created at recovery asks already) */
	if (r->snapshot_index == 0 || w->node->ckw == NULL || nd_now_ns() < c->exp_next_ns)
		return;
	memset(j, 0, sizeof(*j));
	j->kind = CKW_EXPORT;
	j->worker = w->idx;
	j->region = r->id;
	atomic_store_explicit(&j->done, false, memory_order_relaxed);
	if (rte_ring_mp_enqueue(w->node->ckw->q, j) == 0)
		j->busy = true;
}

/* sl_cons_log.snapshot: what a leader sends a replica behind its log's base: the kept
 * image while the log continues from it, else a full image of the chain on disk that the
 * writer thread builds (-EAGAIN until it is there: the protocol asks again each round).
 * Never a file read on the worker. */
int nd_region_log_snapshot(void *ctx, struct sl_cons_snapshot *out)
{
	struct region *r = (struct region *)((char *)ctx - offsetof(struct region, rlog));
	if (r->ml) {
		/* an image with its vector (node_ml.c): the chain's latest, exported when
		 * large (an older one is of little use: the protocol ships a laggard only
		 * the own entries of its retention window after the image) */
		if (r->drv != NULL && r->snapshot_index > 0 &&
		    (r->snap_img == NULL || r->snap_img_index != r->snapshot_index))
			export_poll(r->wk, r);
		return nd_ml_log_snapshot(r, out);
	}
	/* a replica needs an image: the log keeps more until it has it and caught up from
	 * it ([regions] log_keep_peer_mb; not at create(), which asks for the base's) */
	if (r->drv != NULL && r->wk != NULL) {
		if (r->wk->now_ns >= r->peer_pin_until_ns)
			sl_stats_add(r->wk->st, SL_STAT_log_kept_for_peers, 1);
		r->peer_pin_until_ns = r->wk->now_ns + PEER_PIN_NS;
	}
	/* no image yet: a peer can still be caught up by log while the log is read from
	 * its start; once released ([regions] log_keep_mb), a checkpoint makes one (below) */
	if (r->snapshot_index == 0 && sl_rlog_first_readable(&r->rlog) <= 1)
		return -ENOENT;
	uint64_t term = 0;
	if (!kept_image_usable(r, &term) && r->wk != NULL) {
		if (r->snapshot_index + 1 < sl_rlog_first_readable(&r->rlog)) {
			/* the log kept in memory ([regions] log_keep_mb) starts after the latest
			 * image: no image the log continues from exists, and sending an older
			 * one only brings the peer back here. A checkpoint makes one. */
			if (!r->wk->ckpt_active && !r->wk->ckpt_wanted) {
				r->wk->ckpt_wanted = true;
				sl_stats_add(r->wk->st, SL_STAT_checkpoints_for_peers, 1);
			}
			return -EAGAIN;
		}
		export_poll(r->wk, r);
		if (!kept_image_usable(r, &term))
			return -EAGAIN;
	}
	/* the segment's voters, and the learner the map names now (a replica move's: what
	 * it installs must name it, or it would not know itself a learner) */
	struct sl_cons_conf conf = r->snap_conf;
	if (r->wk != NULL)
		nd_region_conf(r->wk->node, r->id, &conf);
	*out = (struct sl_cons_snapshot){.index = r->snap_img_index,
					 .term = term,
					 .conf = conf,
					 .len = r->snap_img_len,
					 .data = r->snap_img};
	return 0;
}
