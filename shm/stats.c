/* stats.c - creation and consistent reading of the stats segment (see stats.h), plus the
 * module's shared-memory file helper. The segment is same-host shared memory holding
 * live atomics, so it uses native layout; the header's sizes guard against mismatch. */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest_format.h"

#define STATS_MAGIC 0x3154415453534c53ULL /* "SLSSTAT1" */
#define STATS_VERSION 1u
#define STATS_READ_TRIES 4096u

struct stats_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint32_t n_cores;
	uint32_t n_counters;
	uint32_t n_hist_buckets;
	uint32_t core_size;
	uint64_t names_off; /* char[n_counters][SL_STATS_NAME_MAX] */
	uint64_t cores_off; /* struct sl_stats_core[n_cores], 64-byte aligned */
	uint64_t file_size;
	int32_t node_pid;
	uint32_t reserved;
	uint64_t start_time_ns;
};

_Static_assert(sizeof(struct sl_stats_core) % 64 == 0, "core blocks must not share lines");
/* Both segments keep their creator's pid at the same place, so a probe can name the holder
 * of either without knowing which kind it found. */
#define SHM_PID_OFFSET 56
_Static_assert(offsetof(struct stats_hdr, node_pid) == SHM_PID_OFFSET, "stats pid offset");
_Static_assert(offsetof(struct sl_ingest_hdr, node_pid) == SHM_PID_OFFSET, "ingest pid offset");
#define SHM_PUBLISH_TRIES 16

struct sl_stats_writer {
	struct sl_shm_file file;
	struct sl_stats_core *cores;
	uint32_t n_cores;
};

struct sl_stats_reader {
	const uint8_t *base;
	size_t size;
	uint32_t n_cores;
	int32_t node_pid;
	uint64_t start_time_ns;
	uint64_t names_off;
	struct sl_stats_core *cores;
};

static const char *const counter_names[SL_STATS_N_COUNTERS] = {
#define SL_STATS_NAME_(name) #name,
    SL_STATS_COUNTERS(SL_STATS_NAME_)
#undef SL_STATS_NAME_
};

const char *sl_stats_counter_name(enum sl_stat id)
{
	return (unsigned)id < SL_STATS_N_COUNTERS ? counter_names[id] : "";
}

int sl_shm_file_create(const char *path, size_t size, mode_t mode, struct sl_shm_file *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (snprintf(f->path, sizeof(f->path), "%s", path) >= (int)sizeof(f->path) ||
	    snprintf(f->tmp_path, sizeof(f->tmp_path), "%s.tmp.%d", path, (int)getpid()) >=
		(int)sizeof(f->tmp_path))
		return -ENAMETOOLONG;
	(void)unlink(f->tmp_path); /* a leftover of a crashed earlier run with our pid */
	f->fd = open(f->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (f->fd < 0)
		return -errno;
	int rc = 0;
	/* fchmod: the mode must not depend on the caller's umask. The lock (on a file nobody
	 * else can have opened yet) marks the segment live until this process exits. */
	if (fchmod(f->fd, mode) != 0 || ftruncate(f->fd, (off_t)size) != 0 ||
	    flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		goto fail;
	}
	f->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (f->base == MAP_FAILED) {
		rc = -errno;
		f->base = NULL;
		goto fail;
	}
	f->size = size;
	return 0;
fail:
	close(f->fd);
	unlink(f->tmp_path);
	f->fd = -1;
	return rc;
}

static int32_t header_pid(int fd)
{
	int32_t pid = 0;
	if (pread(fd, &pid, sizeof(pid), SHM_PID_OFFSET) != (ssize_t)sizeof(pid) || pid < 0)
		pid = 0;
	return pid;
}

int sl_shm_file_probe(const char *path, int32_t *pid)
{
	*pid = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int rc = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		*pid = header_pid(fd);
	}
	close(fd); /* also drops the probe's own shared lock */
	return rc;
}

/* The file at path is replaced only while this process holds the lock of exactly that
 * file (checked by inode after locking), so two starters cannot both replace a leftover,
 * and a live holder's file is never replaced. An absent path is taken with link(), which
 * fails if someone else got there first. */
int sl_shm_file_publish(struct sl_shm_file *f)
{
	for (int i = 0; i < SHM_PUBLISH_TRIES; i++) {
		int old = open(f->path, O_RDONLY | O_CLOEXEC);
		if (old < 0) {
			if (errno != ENOENT)
				return -errno;
			if (link(f->tmp_path, f->path) == 0) {
				unlink(f->tmp_path);
				f->published = true;
				return 0;
			}
			if (errno != EEXIST)
				return -errno;
			continue; /* someone published meanwhile: look at theirs */
		}
		if (flock(old, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;
			close(old);
			if (e != EWOULDBLOCK)
				return -e;
			usleep(1000); /* a probe's shared lock is brief; a holder's is not */
			continue;
		}
		struct stat held, now;
		bool same = fstat(old, &held) == 0 && stat(f->path, &now) == 0 &&
			    held.st_ino == now.st_ino && held.st_dev == now.st_dev;
		int rc = same && rename(f->tmp_path, f->path) != 0 ? -errno : 0;
		close(old);
		if (rc != 0)
			return rc;
		if (same) {
			f->published = true;
			return 0;
		}
	}
	return -EBUSY;
}

void sl_shm_file_close(struct sl_shm_file *f, bool unlink_file)
{
	if (f->base != NULL)
		munmap(f->base, f->size);
	if (f->fd < 0)
		return;
	if (!f->published) {
		unlink(f->tmp_path);
	} else if (unlink_file) {
		struct stat mine, now;
		if (fstat(f->fd, &mine) == 0 && stat(f->path, &now) == 0 &&
		    mine.st_ino == now.st_ino && mine.st_dev == now.st_dev)
			unlink(f->path);
	}
	close(f->fd);
	f->fd = -1;
	f->base = NULL;
}

static uint64_t cores_offset(void)
{
	size_t names_end = sizeof(struct stats_hdr) + SL_STATS_N_COUNTERS * SL_STATS_NAME_MAX;
	return (names_end + 63) & ~(uint64_t)63;
}

int sl_stats_create(const char *path, uint32_t n_cores, struct sl_stats_writer **out)
{
	if (path == NULL || out == NULL || n_cores == 0 || n_cores > SL_STATS_CORES_MAX)
		return -EINVAL;
	struct sl_stats_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	uint64_t cores_off = cores_offset();
	size_t size = cores_off + (size_t)n_cores * sizeof(struct sl_stats_core);
	int rc = sl_shm_file_create(path, size, 0640, &w->file);
	if (rc != 0) {
		free(w);
		return rc;
	}
	uint8_t *base = w->file.base;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct stats_hdr h = {
	    .magic = STATS_MAGIC,
	    .version = STATS_VERSION,
	    .hdr_size = sizeof(struct stats_hdr),
	    .n_cores = n_cores,
	    .n_counters = SL_STATS_N_COUNTERS,
	    .n_hist_buckets = SL_STATS_HIST_BUCKETS,
	    .core_size = sizeof(struct sl_stats_core),
	    .names_off = sizeof(struct stats_hdr),
	    .cores_off = cores_off,
	    .file_size = size,
	    .node_pid = (int32_t)getpid(),
	    .start_time_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
	};
	memcpy(base, &h, sizeof(h));
	for (uint32_t i = 0; i < SL_STATS_N_COUNTERS; i++) {
		SL_ASSERT(strlen(counter_names[i]) < SL_STATS_NAME_MAX);
		memcpy(base + h.names_off + (size_t)i * SL_STATS_NAME_MAX, counter_names[i],
		       strlen(counter_names[i]));
	}
	/* The file is zero-filled: every seq starts even (0) and every counter at 0. */
	w->cores = (struct sl_stats_core *)(base + cores_off);
	w->n_cores = n_cores;
	rc = sl_shm_file_publish(&w->file);
	if (rc != 0) {
		sl_stats_destroy(w, false);
		return rc;
	}
	*out = w;
	return 0;
}

struct sl_stats_core *sl_stats_core(struct sl_stats_writer *w, uint32_t core)
{
	SL_ASSERT(core < w->n_cores);
	return &w->cores[core];
}

void sl_stats_destroy(struct sl_stats_writer *w, bool unlink_file)
{
	if (w == NULL)
		return;
	sl_shm_file_close(&w->file, unlink_file);
	free(w);
}

static bool header_valid(const struct stats_hdr *h, size_t file_size)
{
	if (h->magic != STATS_MAGIC || h->version != STATS_VERSION || h->hdr_size != sizeof(*h) ||
	    h->n_counters != SL_STATS_N_COUNTERS || h->n_hist_buckets != SL_STATS_HIST_BUCKETS ||
	    h->core_size != sizeof(struct sl_stats_core) || h->n_cores == 0 ||
	    h->n_cores > SL_STATS_CORES_MAX || h->file_size != file_size)
		return false;
	if (h->names_off < h->hdr_size ||
	    h->names_off + (uint64_t)h->n_counters * SL_STATS_NAME_MAX > h->cores_off ||
	    h->cores_off % 64 != 0)
		return false;
	return h->cores_off + (uint64_t)h->n_cores * h->core_size <= file_size;
}

int sl_stats_open(const char *path, struct sl_stats_reader **out)
{
	if (path == NULL || out == NULL)
		return -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out_fd;
	}
	if ((size_t)st.st_size < sizeof(struct stats_hdr)) {
		rc = -EPROTO;
		goto out_fd;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out_fd;
	}
	struct stats_hdr h;
	memcpy(&h, base, sizeof(h));
	struct sl_stats_reader *r = NULL;
	if (!header_valid(&h, size))
		rc = -EPROTO;
	else if ((r = calloc(1, sizeof(*r))) == NULL)
		rc = -ENOMEM;
	if (rc != 0) {
		munmap(base, size);
		goto out_fd;
	}
	/* Everything used later is copied from the validated header, never re-read. */
	r->base = base;
	r->size = size;
	r->n_cores = h.n_cores;
	r->node_pid = h.node_pid;
	r->start_time_ns = h.start_time_ns;
	r->names_off = h.names_off;
	r->cores = (struct sl_stats_core *)(base + h.cores_off);
	*out = r;
out_fd:
	close(fd); /* the mapping keeps the file alive */
	return rc;
}

uint32_t sl_stats_n_cores(const struct sl_stats_reader *r) { return r->n_cores; }
int32_t sl_stats_node_pid(const struct sl_stats_reader *r) { return r->node_pid; }
uint64_t sl_stats_start_time_ns(const struct sl_stats_reader *r) { return r->start_time_ns; }

const char *sl_stats_segment_counter_name(const struct sl_stats_reader *r, uint32_t i)
{
	if (i >= SL_STATS_N_COUNTERS)
		return "";
	const char *name = (const char *)r->base + r->names_off + (size_t)i * SL_STATS_NAME_MAX;
	/* The writer could be buggy; never hand out an unterminated string. */
	return memchr(name, 0, SL_STATS_NAME_MAX) != NULL ? name : "";
}

static void copy_relaxed(uint64_t *dst, _Atomic uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = atomic_load_explicit(&src[i], memory_order_relaxed);
}

int sl_stats_read_core(const struct sl_stats_reader *r, uint32_t core,
		       struct sl_stats_snapshot *out)
{
	if (r == NULL || out == NULL || core >= r->n_cores)
		return -EINVAL;
	struct sl_stats_core *c = &r->cores[core];
	for (uint32_t attempt = 0; attempt < STATS_READ_TRIES; attempt++) {
		uint64_t s1 = atomic_load_explicit(&c->seq, memory_order_acquire);
		if ((s1 & 1) == 0) {
			copy_relaxed(out->counters, c->counters, SL_STATS_N_COUNTERS);
			copy_relaxed(out->ack_latency_hist, c->ack_latency_hist,
				     SL_STATS_HIST_BUCKETS);
			out->ack_latency_sum_ns =
			    atomic_load_explicit(&c->ack_latency_sum_ns, memory_order_relaxed);
			/* Orders the data loads before the second seq load (Boehm seqlock). */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&c->seq, memory_order_relaxed) == s1) {
				out->seq = s1;
				return 0;
			}
		}
		/* The owner may be descheduled mid-update on a shared core: let it run. */
		if (attempt % 16 == 15)
			sched_yield();
	}
	return -EAGAIN;
}

int sl_stats_read_core_sum(const struct sl_stats_reader *r, uint32_t core,
			   struct sl_stats_snapshot *out)
{
	int rc = sl_stats_read_core(r, core, out);
	if (rc != -EAGAIN)
		return rc;
	struct sl_stats_core *c = &r->cores[core];
	copy_relaxed(out->counters, c->counters, SL_STATS_N_COUNTERS);
	copy_relaxed(out->ack_latency_hist, c->ack_latency_hist, SL_STATS_HIST_BUCKETS);
	out->ack_latency_sum_ns = atomic_load_explicit(&c->ack_latency_sum_ns, memory_order_relaxed);
	out->seq = atomic_load_explicit(&c->seq, memory_order_relaxed) | 1u; /* odd: not one */
	return 1;
}

void sl_stats_close(struct sl_stats_reader *r)
{
	if (r == NULL)
		return;
	munmap((void *)r->base, r->size);
	free(r);
}
