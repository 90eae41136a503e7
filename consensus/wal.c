/* wal.c - the per-core write-ahead log on io_uring. Appends fill one of two aligned
 * buffers; a flush writes whole blocks of one buffer linked to an fdatasync while the
 * other buffer takes new appends, so one fdatasync covers everything appended during the
 * previous one (group commit). Recovery maps the segments read-only; wal_format.c judges
 * them, this file cuts a torn tail and resumes appends. */
#include "wal.h"
#include "wal_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_assert.h"

#define PROBE_NAME ".wal-direct-probe"
/* The next segment, created and preallocated ahead through the ring and renamed to its
 * segment name at the roll (never a wal-*.log name, so recovery never reads it). */
#define SPARE_NAME ".wal-spare"
/* ring user data of the spare's own operations (flush operations are enum sl_wal_op) */
#define OP_SPARE_OPEN 8u
#define OP_SPARE_ALLOC 9u
#define WAL_OPS 4u

enum spare_state { SPARE_NONE = 0, SPARE_OPENING, SPARE_ALLOCATING, SPARE_READY };

struct wal_buf {
	uint8_t *data;
	uint32_t used_bytes;
	uint64_t first_lsn;
	uint64_t last_lsn;
};

struct wal_fault {
	bool armed;
	int err;
	uint32_t after_ops;
};

struct sl_wal {
	struct io_uring ring;
	struct sl_wal_config cfg;
	char *dir;
	int dir_fd;
	int direct_flag; /* O_DIRECT or 0 */
	bool recovered;
	bool failed;
	bool fenced;
	int error;

	int seg_fd; /* active segment, -1: the next flush creates one */
	uint64_t seg_lsn;
	uint64_t seg_off_bytes;
	/* the segment was just rolled: the next flush renames the spare (when taken) and
	 * syncs the directory in its chain, before any record in it is durable */
	bool roll_rename, roll_dirsync;

	enum spare_state spare;
	int spare_fd;
	unsigned spare_pending; /* its operations in the ring */

	struct wal_buf buf[2];
	unsigned active;
	bool flush_wanted;

	/* The one flush in flight. */
	bool inflight;
	unsigned cqes_pending;
	unsigned flight_buf;
	uint32_t flight_bytes;
	uint64_t flight_seg_lsn;
	uint64_t flight_end_off;

	uint64_t next_lsn;
	uint64_t durable_lsn;
	uint64_t first_lsn;
	/* Where the durable log ends, so a failed flush can be fenced off. */
	uint64_t durable_seg_lsn; /* 0: no segment yet */
	uint64_t durable_off;

	struct wal_fault faults[WAL_OPS];
	struct sl_wal_stats stats;
};

/* Strict parse of "wal-<16 lowercase hex>.log". */
static bool parse_seg_name(const char *name, uint64_t *lsn)
{
	if (strlen(name) != 24 || strncmp(name, "wal-", 4) != 0 || strcmp(name + 20, ".log") != 0)
		return false;
	uint64_t v = 0;
	for (int i = 4; i < 20; i++) {
		char c = name[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = (v << 4) | d;
	}
	*lsn = v;
	return v != 0;
}

/* ---- segment files ---- */

static int map_segment(struct sl_wal *w, uint64_t lsn, struct sl_wal_map *m)
{
	char name[NAME_BYTES];
	sl_wal_seg_name(name, lsn);
	int fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = 0;
	m->p = NULL;
	m->size = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			rc = -errno;
		} else {
			m->p = p;
			m->size = (uint64_t)st.st_size;
		}
	}
	close(fd);
	return rc;
}

static void unmap_segment(struct sl_wal_map *m)
{
	if (m->p)
		munmap(m->p, m->size);
	m->p = NULL;
	m->size = 0;
}

static int file_get(void *ctx, uint64_t seg_lsn, struct sl_wal_map *m)
{
	return map_segment(ctx, seg_lsn, m);
}

static void file_put(void *ctx, struct sl_wal_map *m)
{
	(void)ctx;
	unmap_segment(m);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted first lsns of the segment files (slow path: recovery and release). */
static int list_segments_in(const char *dir, uint64_t **out, size_t *n_out)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t lsn;
		if (!parse_seg_name(de->d_name, &lsn))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = lsn;
	}
	closedir(d);
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_u64);
	*out = v;
	*n_out = n;
	return 0;
}

static int list_segments(struct sl_wal *w, uint64_t **out, size_t *n_out)
{
	return list_segments_in(w->dir, out, n_out);
}

static int unlink_segment(struct sl_wal *w, uint64_t lsn)
{
	char name[NAME_BYTES];
	sl_wal_seg_name(name, lsn);
	return unlinkat(w->dir_fd, name, 0) < 0 ? -errno : 0;
}

/* ---- failure handling ---- */

static void enter_failed(struct sl_wal *w, int err)
{
	SL_ASSERT(err < 0);
	if (!w->failed) {
		w->failed = true;
		w->error = err;
	}
}

/* Best effort, once no I/O is in flight: remove what a failed flush may have left on
 * disk, so a restart replays exactly the durable records. Never touches durable bytes:
 * the durable log ends at (durable_seg_lsn, durable_off). */
static void fence_failed(struct sl_wal *w)
{
	if (!w->failed || w->fenced || w->cqes_pending > 0 || w->seg_fd < 0)
		return;
	w->fenced = true;
	if (w->seg_lsn != w->durable_seg_lsn) {
		/* Created by the failed flush: holds nothing durable. */
		close(w->seg_fd);
		w->seg_fd = -1;
		(void)unlink_segment(w, w->seg_lsn);
		(void)fsync(w->dir_fd);
	} else {
		(void)ftruncate(w->seg_fd, (off_t)w->durable_off);
	}
}

/* ---- flush ---- */

/* Starts preparing the next segment: open (create) the spare, then preallocate it, both
 * through the ring, so neither blocks the owner; the roll then only renames it. */
static void spare_start(struct sl_wal *w)
{
	if (w->spare != SPARE_NONE || w->failed)
		return;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	if (sqe == NULL)
		return; /* the roll creates the segment itself */
	io_uring_prep_openat(sqe, w->dir_fd, SPARE_NAME,
			     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | w->direct_flag, 0644);
	io_uring_sqe_set_data64(sqe, OP_SPARE_OPEN);
	if (io_uring_submit(&w->ring) != 1) {
		w->stats.spare_errors++;
		return;
	}
	w->spare = SPARE_OPENING;
	w->spare_pending++;
}

static void spare_complete(struct sl_wal *w, unsigned op, int res)
{
	SL_ASSERT(w->spare_pending > 0);
	w->spare_pending--;
	if (op == OP_SPARE_OPEN) {
		if (res < 0) {
			w->stats.spare_errors++;
			w->spare = SPARE_NONE;
			return;
		}
		w->spare_fd = res;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
		if (sqe != NULL) {
			/* zeros read as end of log; preallocation spares fdatasync most metadata work */
			io_uring_prep_fallocate(sqe, res, 0, 0, (off_t)w->cfg.segment_bytes);
			io_uring_sqe_set_data64(sqe, OP_SPARE_ALLOC);
			if (io_uring_submit(&w->ring) == 1) {
				w->spare = SPARE_ALLOCATING;
				w->spare_pending++;
				return;
			}
		}
		w->spare = SPARE_READY; /* usable without preallocation, as a plain create is */
		return;
	}
	if (res < 0)
		w->stats.spare_errors++; /* best effort, like the plain create's fallocate */
	w->spare = SPARE_READY;
}

/* Starts a new segment named by the first lsn it will hold. No blocking call when a spare
 * is ready: the flush's chain renames it, writes, fdatasyncs it and fsyncs the
 * directory, so no record in it is durable before its directory entry is. Without a
 * spare (the first roll after open, a failed preparation) the file is created here. */
static int roll_segment(struct sl_wal *w, uint64_t first_lsn)
{
	if (w->seg_fd >= 0) {
		close(w->seg_fd);
		w->seg_fd = -1;
	}
	if (w->spare == SPARE_READY) {
		w->seg_fd = w->spare_fd;
		w->spare_fd = -1;
		w->spare = SPARE_NONE;
		w->roll_rename = true;
		w->stats.segments_prepared++;
	} else {
		char name[NAME_BYTES];
		sl_wal_seg_name(name, first_lsn);
		int fd = openat(w->dir_fd, name,
				O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | w->direct_flag, 0644);
		if (fd < 0)
			return -errno;
		(void)fallocate(fd, 0, 0, (off_t)w->cfg.segment_bytes);
		w->seg_fd = fd;
		w->roll_rename = false;
	}
	w->roll_dirsync = true;
	w->seg_lsn = first_lsn;
	w->seg_off_bytes = 0;
	w->stats.segments_created++;
	return 0;
}

/* Ends the buffer on a block boundary so no block is ever written twice. */
static uint32_t pad_to_block(struct sl_wal *w, struct wal_buf *b)
{
	uint32_t end = (uint32_t)sl_wal_align_up(b->used_bytes, SL_WAL_BLOCK_BYTES);
	uint32_t gap = end - b->used_bytes;
	uint8_t *p = b->data + b->used_bytes;
	if (gap >= SL_WAL_HDR_BYTES) {
		uint32_t len = gap - SL_WAL_HDR_BYTES;
		memset(p + SL_WAL_HDR_BYTES, 0, len);
		sl_wal_seal(p, b->used_bytes, KIND_PAD, 0, len, b->last_lsn, b->first_lsn);
	} else {
		memset(p, 0, gap);
	}
	w->stats.pad_bytes += gap;
	return end;
}

static int submit_flush(struct sl_wal *w)
{
	struct wal_buf *b = &w->buf[w->active];
	SL_ASSERT(!w->inflight && !w->failed && b->used_bytes > 0);
	uint32_t len = pad_to_block(w, b);
	if (w->seg_fd < 0 || w->seg_off_bytes + len > w->cfg.segment_bytes) {
		int rc = roll_segment(w, b->first_lsn);
		if (rc < 0) {
			enter_failed(w, rc);
			fence_failed(w);
			return rc;
		}
	}
	/* one chain: [rename spare ->] write -> fdatasync [-> fsync dir]; a failed link
	 * cancels the rest, and the flush is durable only once every link succeeded */
	int want = 2 + w->roll_rename + w->roll_dirsync;
	char name[NAME_BYTES];
	if (w->roll_rename) {
		struct io_uring_sqe *rn = io_uring_get_sqe(&w->ring);
		SL_ASSERT(rn); /* ring >= 4 entries, submitted at once */
		sl_wal_seg_name(name, w->seg_lsn);
		io_uring_prep_renameat(rn, w->dir_fd, SPARE_NAME, w->dir_fd, name, 0);
		rn->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(rn, SL_WAL_OP_RENAME);
	}
	struct io_uring_sqe *wr = io_uring_get_sqe(&w->ring);
	struct io_uring_sqe *fs = io_uring_get_sqe(&w->ring);
	SL_ASSERT(wr && fs);
	io_uring_prep_write(wr, w->seg_fd, b->data, len, w->seg_off_bytes);
	wr->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(wr, SL_WAL_OP_WRITE);
	io_uring_prep_fsync(fs, w->seg_fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(fs, SL_WAL_OP_FSYNC);
	if (w->roll_dirsync) {
		fs->flags |= IOSQE_IO_LINK;
		struct io_uring_sqe *ds = io_uring_get_sqe(&w->ring);
		SL_ASSERT(ds);
		io_uring_prep_fsync(ds, w->dir_fd, 0);
		io_uring_sqe_set_data64(ds, SL_WAL_OP_DIRSYNC);
	}
	w->roll_rename = w->roll_dirsync = false;
	int rc = io_uring_submit(&w->ring);
	w->inflight = true;
	w->cqes_pending = rc > 0 ? (unsigned)rc : 0;
	w->flight_buf = w->active;
	w->flight_bytes = len;
	w->flight_seg_lsn = w->seg_lsn;
	w->flight_end_off = w->seg_off_bytes + len;
	w->seg_off_bytes += len;
	w->active ^= 1u;
	w->flush_wanted = false;
	w->stats.flushes_submitted++;
	w->stats.bytes_written += len;
	SL_ASSERT(w->buf[w->active].used_bytes == 0);
	if (rc != want) {
		rc = rc < 0 ? rc : -EIO;
		enter_failed(w, rc);
		if (w->cqes_pending == 0)
			w->inflight = false;
		fence_failed(w);
		return rc;
	}
	return 0;
}

static int apply_fault(struct sl_wal *w, unsigned op, int res)
{
	SL_ASSERT(op < WAL_OPS);
	struct wal_fault *f = &w->faults[op];
	if (!f->armed)
		return res;
	if (f->after_ops == 0) {
		f->armed = false;
		w->stats.faults_injected++;
		return f->err;
	}
	if (res >= 0)
		f->after_ops--;
	return res;
}

static void finish_flight(struct sl_wal *w)
{
	w->inflight = false;
	if (w->failed) {
		fence_failed(w);
		return;
	}
	struct wal_buf *b = &w->buf[w->flight_buf];
	w->durable_lsn = b->last_lsn;
	w->durable_seg_lsn = w->flight_seg_lsn;
	w->durable_off = w->flight_end_off;
	b->used_bytes = 0;
	w->stats.flushes_durable++;
	if (w->flush_wanted && w->buf[w->active].used_bytes > 0)
		(void)submit_flush(w); /* an error is sticky and returned by poll */
}

static void complete_op(struct sl_wal *w, unsigned op, int res)
{
	if (op == OP_SPARE_OPEN || op == OP_SPARE_ALLOC) {
		spare_complete(w, op, res);
		return;
	}
	SL_ASSERT(op < WAL_OPS && w->cqes_pending > 0);
	res = apply_fault(w, op, res);
	w->cqes_pending--;
	if (res == -ECANCELED && w->failed) {
		/* an earlier link of the chain failed: this one never ran */
	} else if (op == SL_WAL_OP_WRITE) {
		if (res < 0 || (uint32_t)res != w->flight_bytes) {
			w->stats.write_errors++;
			enter_failed(w, res < 0 ? res : -EIO); /* short write */
		}
	} else if (res < 0) {
		/* Never retried: after a failed fsync the page cache state is unknown. */
		if (op != SL_WAL_OP_RENAME)
			w->stats.fsync_errors++;
		enter_failed(w, res);
	} else if (op == SL_WAL_OP_FSYNC) {
		w->stats.fsyncs++;
	} else if (op == SL_WAL_OP_RENAME) {
		spare_start(w); /* the spare's name is free again: prepare the next one */
	}
	if (w->cqes_pending == 0)
		finish_flight(w);
}

/* ---- public API ---- */

void sl_wal_config_default(struct sl_wal_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->segment_bytes = 64ull << 20;
	cfg->buffer_bytes = 1u << 20;
	cfg->ring_entries = 64;
}

static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		path[i] = c;
	}
	return 0;
}

/* O_DIRECT is refused by some filesystems at open, by others only at the first write. */
static bool probe_direct(struct sl_wal *w)
{
	int fd = openat(w->dir_fd, PROBE_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT,
			0644);
	if (fd < 0)
		return false;
	memset(w->buf[0].data, 0, SL_WAL_BLOCK_BYTES);
	bool ok = pwrite(fd, w->buf[0].data, SL_WAL_BLOCK_BYTES, 0) == SL_WAL_BLOCK_BYTES;
	close(fd);
	(void)unlinkat(w->dir_fd, PROBE_NAME, 0);
	return ok;
}

static int check_config(const struct sl_wal_config *cfg, struct sl_wal_config *out)
{
	if (!cfg || !cfg->dir || cfg->dir[0] == '\0')
		return -EINVAL;
	*out = *cfg;
	out->buffer_bytes = (uint32_t)sl_wal_align_up(cfg->buffer_bytes, SL_WAL_BLOCK_BYTES);
	if (out->buffer_bytes == 0 || out->buffer_bytes > (1u << 30) || out->ring_entries < 4 ||
	    out->ring_entries > 4096 || out->segment_bytes % SL_WAL_BLOCK_BYTES != 0 ||
	    out->segment_bytes < out->buffer_bytes)
		return -EINVAL;
	return 0;
}

int sl_wal_open(const struct sl_wal_config *cfg, struct sl_wal **out)
{
	struct sl_wal_config c;
	int rc = check_config(cfg, &c);
	if (rc < 0)
		return rc;
	rc = mkdir_p(c.dir);
	if (rc < 0)
		return rc;
	struct sl_wal *w = aligned_alloc(64, sl_wal_align_up(sizeof(*w), 64));
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->cfg = c;
	w->seg_fd = -1;
	w->spare_fd = -1;
	w->dir_fd = -1;
	w->dir = strdup(c.dir);
	w->cfg.dir = w->dir;
	if (!w->dir) {
		free(w);
		return -ENOMEM;
	}
	w->dir_fd = open(c.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0) {
		rc = -errno;
		goto err_free;
	}
	/* One owner per directory: a second process appending would interleave lsns. */
	if (flock(w->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto err_free;
	}
	for (int i = 0; i < 2; i++) {
		void *p = NULL;
		if (posix_memalign(&p, SL_WAL_BLOCK_BYTES, c.buffer_bytes) != 0) {
			rc = -ENOMEM;
			goto err_free;
		}
		w->buf[i].data = p;
	}
	rc = io_uring_queue_init(c.ring_entries, &w->ring, 0);
	if (rc < 0)
		goto err_free;
	w->direct_flag = !c.no_direct && probe_direct(w) ? O_DIRECT : 0;
	w->stats.direct_io = w->direct_flag != 0;
	w->next_lsn = 1;
	w->first_lsn = 1;
	*out = w;
	return 0;
err_free:
	free(w->buf[0].data);
	free(w->buf[1].data);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	free(w->dir);
	free(w);
	return rc;
}

/* Cuts the log at the bad record: deletes every later segment, then truncates its
 * segment there (or deletes it when it would be left empty and is not the first). In
 * this order a crash midway leaves the same bad record to find again. */
static int cut_log(struct sl_wal *w, const uint64_t *segs, size_t n, const struct sl_wal_scan *sc,
		   struct sl_wal_recovery *rep)
{
	size_t first_deleted = sc->end_seg == sc->bad_seg ? sc->bad_seg + 1 : sc->bad_seg;
	for (size_t j = n; j-- > first_deleted;) {
		int rc = unlink_segment(w, segs[j]);
		if (rc < 0)
			return rc;
		rep->segments_deleted++;
	}
	if (fsync(w->dir_fd) < 0)
		return -errno;
	if (sc->end_seg != sc->bad_seg)
		return 0;
	char name[NAME_BYTES];
	sl_wal_seg_name(name, segs[sc->bad_seg]);
	int fd = openat(w->dir_fd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = ftruncate(fd, (off_t)sc->bad_off) < 0 || fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Positions appends after the last valid record: in the last segment when its valid end
 * is on a block boundary, else in a new segment at the next flush. */
static int resume_appends(struct sl_wal *w, uint64_t seg_lsn, uint64_t end_off)
{
	w->durable_seg_lsn = seg_lsn;
	w->durable_off = end_off;
	if (end_off % SL_WAL_BLOCK_BYTES != 0 ||
	    end_off + SL_WAL_BLOCK_BYTES > w->cfg.segment_bytes)
		return 0;
	char name[NAME_BYTES];
	sl_wal_seg_name(name, seg_lsn);
	int fd = openat(w->dir_fd, name, O_WRONLY | O_CLOEXEC | w->direct_flag);
	if (fd < 0)
		return -errno;
	w->seg_fd = fd;
	w->seg_lsn = seg_lsn;
	w->seg_off_bytes = end_off;
	return 0;
}

int sl_wal_recover(struct sl_wal *w, sl_wal_replay_fn fn, void *arg, struct sl_wal_recovery *report)
{
	struct sl_wal_recovery rep;
	memset(&rep, 0, sizeof(rep));
	if (w->recovered)
		return -EINVAL;
	(void)unlinkat(w->dir_fd, PROBE_NAME, 0);
	(void)unlinkat(w->dir_fd, SPARE_NAME, 0); /* a crash's spare: never a segment */
	uint64_t *segs = NULL;
	size_t n = 0;
	int rc = list_segments(w, &segs, &n);
	if (rc < 0)
		return rc;
	if (n == 0)
		goto done;
	struct sl_wal_src src = {.get = file_get, .put = file_put, .ctx = w, .segs = segs, .n = n};
	struct sl_wal_scan sc;
	rc = sl_wal_classify(&src, w->cfg.salvage, &sc, &rep);
	if (rc < 0)
		goto out;
	if (sc.bad != SL_WAL_BAD_NONE) {
		if (rep.salvaged)
			w->stats.salvage_cuts++;
		else
			w->stats.torn_tail_cuts++;
		rc = cut_log(w, segs, n, &sc, &rep);
		if (rc < 0)
			goto out;
		src.n = sc.end_seg + 1;
	}
	rc = sl_wal_replay_log(&src, src.n, sc.end_off, fn, arg, &rep);
	if (rc < 0)
		goto out;
	rc = resume_appends(w, segs[src.n - 1], sc.end_off);
	if (rc < 0)
		goto out;
	w->first_lsn = segs[0];
	w->next_lsn = sc.last_lsn + 1;
	w->durable_lsn = sc.last_lsn;
	rep.segments = (uint32_t)src.n;
done:
	w->recovered = true;
	spare_start(w);
	w->stats.records_recovered = rep.records;
	rep.first_lsn = w->first_lsn;
	rep.last_lsn = w->next_lsn - 1;
out:
	free(segs);
	if (report)
		*report = rep;
	return rc;
}

/* ---- appends and completions ---- */

int sl_wal_append(struct sl_wal *w, uint16_t type, const uint8_t *payload, uint32_t len,
		  uint64_t *lsn_out)
{
	return sl_wal_append2(w, type, NULL, 0, payload, len, lsn_out);
}

int sl_wal_append2(struct sl_wal *w, uint16_t type, const uint8_t *head, uint32_t head_len,
		   const uint8_t *payload, uint32_t payload_len, uint64_t *lsn_out)
{
	if (!w->recovered || (payload_len > 0 && !payload) || (head_len > 0 && !head) ||
	    head_len > UINT32_MAX - payload_len)
		return -EINVAL;
	uint32_t len = head_len + payload_len;
	if (w->failed)
		return -EIO;
	uint64_t rec = SL_WAL_RECORD_BYTES(len);
	if (rec > w->cfg.buffer_bytes)
		return -EMSGSIZE;
	struct wal_buf *b = &w->buf[w->active];
	/* A header never straddles a block boundary (recovery skips such gaps as zeros). */
	uint32_t to_block = SL_WAL_BLOCK_BYTES - b->used_bytes % SL_WAL_BLOCK_BYTES;
	uint32_t skip = to_block < SL_WAL_HDR_BYTES ? to_block : 0;
	if (b->used_bytes + skip + rec > w->cfg.buffer_bytes) {
		if (w->inflight) {
			w->flush_wanted = true; /* submitted by the completion */
			w->stats.enobufs++;
			return -ENOBUFS;
		}
		int rc = submit_flush(w);
		if (rc < 0)
			return rc;
		b = &w->buf[w->active];
		skip = 0; /* a fresh buffer starts on a block boundary */
	}
	if (skip > 0) {
		memset(b->data + b->used_bytes, 0, skip);
		b->used_bytes += skip;
		w->stats.pad_bytes += skip;
	}
	uint64_t lsn = w->next_lsn++;
	uint8_t *p = b->data + b->used_bytes;
	if (head_len > 0)
		memcpy(p + SL_WAL_HDR_BYTES, head, head_len);
	if (payload_len > 0)
		memcpy(p + SL_WAL_HDR_BYTES + head_len, payload, payload_len);
	if (b->used_bytes == 0)
		b->first_lsn = lsn; /* one buffer = one flush */
	sl_wal_seal(p, b->used_bytes, KIND_DATA, type, len, lsn, b->first_lsn);
	b->last_lsn = lsn;
	b->used_bytes += (uint32_t)rec;
	w->stats.appends++;
	w->stats.append_bytes += len;
	if (lsn_out)
		*lsn_out = lsn;
	return 0;
}

uint32_t sl_wal_room(const struct sl_wal *w)
{
	if (w->inflight)
		return w->cfg.buffer_bytes - w->buf[w->active].used_bytes;
	return w->cfg.buffer_bytes;
}

int sl_wal_flush(struct sl_wal *w)
{
	if (!w->recovered)
		return -EINVAL;
	if (w->failed)
		return -EIO;
	w->stats.flush_calls++;
	if (w->buf[w->active].used_bytes == 0)
		return 0;
	if (w->inflight) {
		w->flush_wanted = true; /* group commit: rides on the next fdatasync */
		return 0;
	}
	return submit_flush(w);
}

/* Handles one completion if there is one; false if none is ready. */
static bool reap_one(struct sl_wal *w)
{
	struct io_uring_cqe *cqe;
	if (io_uring_peek_cqe(&w->ring, &cqe) != 0)
		return false;
	unsigned op = (unsigned)io_uring_cqe_get_data64(cqe);
	int res = cqe->res;
	io_uring_cqe_seen(&w->ring, cqe);
	complete_op(w, op, res);
	return true;
}

int sl_wal_poll(struct sl_wal *w)
{
	/* Bounded: at most the four completions of the flight, those of the flush the last
	 * one may submit, and the spare's. */
	for (unsigned i = 0; i < 12 && w->cqes_pending + w->spare_pending > 0; i++)
		if (!reap_one(w))
			break;
	return w->failed ? w->error : 0;
}

/* Blocks for the next completion (sync and close only). */
static int wait_one(struct sl_wal *w)
{
	struct io_uring_cqe *cqe;
	int rc;
	do {
		rc = io_uring_wait_cqe(&w->ring, &cqe);
	} while (rc == -EINTR);
	return rc;
}

int sl_wal_sync(struct sl_wal *w)
{
	int rc = sl_wal_flush(w);
	if (rc < 0)
		return rc;
	/* Each round reaps a completion or submits a flush, and the appends are fixed. */
	while (w->durable_lsn < w->next_lsn - 1) {
		if (w->failed)
			return w->error;
		if (!w->inflight) {
			SL_ASSERT(w->buf[w->active].used_bytes > 0);
			rc = submit_flush(w);
			if (rc < 0)
				return rc;
			continue;
		}
		w->flush_wanted = true;
		rc = wait_one(w);
		if (rc < 0) {
			enter_failed(w, rc);
			return rc;
		}
		rc = sl_wal_poll(w);
		if (rc < 0)
			return rc;
	}
	return w->failed ? w->error : 0;
}

int sl_wal_shutdown(struct sl_wal *w)
{
	int rc = sl_wal_sync(w);
	if (rc < 0)
		return rc;
	/* Everything is durable and no flush is in flight: the close record gets a flush
	 * (and so a block) of its own, whose flush lsn is the next lsn. */
	SL_ASSERT(!w->inflight && w->buf[w->active].used_bytes == 0);
	struct wal_buf *b = &w->buf[w->active];
	b->first_lsn = w->next_lsn;
	b->last_lsn = w->next_lsn - 1;
	sl_wal_seal(b->data, 0, KIND_CLOSE, 0, 0, b->last_lsn, b->first_lsn);
	b->used_bytes = SL_WAL_HDR_BYTES;
	rc = submit_flush(w);
	/* Bounded: one write and one fdatasync to reap. */
	while (rc == 0 && w->inflight) {
		rc = wait_one(w);
		if (rc < 0)
			enter_failed(w, rc);
		else
			rc = sl_wal_poll(w);
	}
	return rc < 0 ? rc : (w->failed ? w->error : 0);
}

int sl_wal_release_files(const char *dir, uint64_t lsn, uint64_t keep_seg_lsn,
			 uint64_t *first_lsn, uint32_t *deleted)
{
	*first_lsn = 0;
	*deleted = 0;
	uint64_t *segs = NULL;
	size_t n = 0;
	int rc = list_segments_in(dir, &segs, &n);
	if (rc < 0)
		return rc;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		free(segs);
		return -errno;
	}
	size_t k = 0;
	/* Oldest first, so the log stays contiguous; the newest segment always stays. */
	for (; k + 1 < n && segs[k + 1] - 1 <= lsn && segs[k] < keep_seg_lsn; k++) {
		char name[NAME_BYTES];
		sl_wal_seg_name(name, segs[k]);
		if (unlinkat(dfd, name, 0) < 0) {
			rc = -errno;
			break;
		}
	}
	if (k > 0) {
		*first_lsn = segs[k];
		*deleted = (uint32_t)k;
		if (fsync(dfd) < 0 && rc == 0)
			rc = -errno;
	}
	close(dfd);
	free(segs);
	return rc;
}

void sl_wal_released(struct sl_wal *w, uint64_t first_lsn, uint32_t deleted)
{
	if (deleted > 0 && first_lsn > w->first_lsn)
		w->first_lsn = first_lsn;
	w->stats.segments_deleted += deleted;
}

uint64_t sl_wal_segment_lsn(const struct sl_wal *w) { return w->seg_fd >= 0 ? w->seg_lsn : 0; }

int sl_wal_release(struct sl_wal *w, uint64_t lsn)
{
	if (!w->recovered)
		return -EINVAL;
	uint64_t first = 0;
	uint32_t deleted = 0;
	/* no active segment yet: keep everything from the newest on (the loop does) */
	int rc = sl_wal_release_files(w->dir, lsn, w->seg_fd >= 0 ? w->seg_lsn : UINT64_MAX,
				      &first, &deleted);
	sl_wal_released(w, first, deleted);
	return rc;
}

int sl_wal_inject_fault(struct sl_wal *w, enum sl_wal_op op, int err, uint32_t after_ops)
{
	if ((unsigned)op >= WAL_OPS || err >= 0)
		return -EINVAL;
	w->faults[op] = (struct wal_fault){.armed = true, .err = err, .after_ops = after_ops};
	return 0;
}

uint64_t sl_wal_durable_lsn(const struct sl_wal *w) { return w->durable_lsn; }

uint64_t sl_wal_last_lsn(const struct sl_wal *w) { return w->next_lsn - 1; }

uint64_t sl_wal_first_lsn(const struct sl_wal *w) { return w->first_lsn; }

uint32_t sl_wal_pending_bytes(const struct sl_wal *w) { return w->buf[w->active].used_bytes; }

void sl_wal_stats(const struct sl_wal *w, struct sl_wal_stats *out)
{
	*out = w->stats;
	out->durable_lsn = w->durable_lsn;
	out->last_lsn = w->next_lsn - 1;
	out->failed = w->failed;
	out->error = w->error;
}

void sl_wal_close(struct sl_wal *w)
{
	if (!w)
		return;
	/* The kernel may still be reading a buffer: wait before freeing it. */
	w->flush_wanted = false; /* no new flush from inside close */
	while (w->cqes_pending + w->spare_pending > 0 && wait_one(w) == 0)
		(void)reap_one(w);
	io_uring_queue_exit(&w->ring);
	if (w->seg_fd >= 0)
		close(w->seg_fd);
	if (w->spare_fd >= 0) {
		close(w->spare_fd);
		(void)unlinkat(w->dir_fd, SPARE_NAME, 0); /* the next recovery would anyway */
	}
	close(w->dir_fd);
	free(w->buf[0].data);
	free(w->buf[1].data);
	free(w->dir);
	free(w);
}
