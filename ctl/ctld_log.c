/* ctld_log.c - durable storage of ctld's metadata raft log: one append-only file of
 * CRC32C-checked records (cut back when raft replaces a suffix) and a hard-state file
 * replaced atomically. Small and synchronous: the control plane is off the data path. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctld.h"
#include "sl_crc.h"
#include "sl_le.h"

#define LOG_MAGIC 0x4c43534cu /* "LSCL" */
#define HS_MAGIC 0x5348534cu  /* "LSHS" */
#define REC_HDR 32u           /* magic, crc, term, index, type, len */
#define REC_MAX_DATA (1u << 20)
#define HS_BYTES 32u          /* magic, crc, term, commit, vote, pad */

static int write_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int remember(struct sl_ctld_log *l, uint64_t index, uint64_t off)
{
	if (index > l->cap) {
		uint64_t cap = l->cap ? l->cap * 2 : 1024;
		while (cap < index)
			cap *= 2;
		uint64_t *o = realloc(l->offsets, cap * sizeof(*o));
		if (o == NULL)
			return -ENOMEM;
		l->offsets = o;
		l->cap = cap;
	}
	l->offsets[index - 1] = off;
	return 0;
}

static uint32_t rec_crc(const uint8_t *hdr, const uint8_t *data, uint32_t len)
{
	uint32_t c = sl_crc32c(hdr + 8, REC_HDR - 8, 0xffffffffu);
	return sl_crc32c(data, len, c);
}

static int hs_path(const struct sl_ctld_log *l, char *buf, size_t len, const char *suffix)
{
	int n = snprintf(buf, len, "%s/ctld.hs%s", l->dir, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int load_hs(struct sl_ctld_log *l, char *err, size_t err_len)
{
	char path[SL_CTLD_PATH_MAX + 16];
	int rc = hs_path(l, path, sizeof(path), "");
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* a fresh replica */
		rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	uint8_t b[HS_BYTES];
	rc = read_all(fd, b, sizeof(b), 0);
	close(fd);
	if (rc != 0 || sl_get_u32(b) != HS_MAGIC ||
	    sl_get_u32(b + 4) != sl_crc32c(b + 8, HS_BYTES - 8, 0xffffffffu)) {
		/* written by rename only: a damaged one is not a torn write */
		snprintf(err, err_len, "%s: damaged hard state (bad size, magic or CRC)", path);
		return -EBADMSG;
	}
	l->hs.term = sl_get_u64(b + 8);
	l->hs.commit = sl_get_u64(b + 16);
	l->hs.vote = sl_get_u32(b + 24);
	return 0;
}

/* Reads every record; stops at an unfinished one (torn tail, cut) and refuses damage. */
static int recover(struct sl_ctld_log *l, char *err, size_t err_len)
{
	struct stat st;
	if (fstat(l->fd, &st) < 0)
		return -errno;
	uint64_t size = (uint64_t)st.st_size, off = 0;
	uint8_t *data = NULL;
	int rc = 0;
	while (off < size) {
		uint8_t hdr[REC_HDR];
		if (size - off < REC_HDR)
			break; /* torn header */
		if ((rc = read_all(l->fd, hdr, REC_HDR, off)) != 0)
			break;
		uint32_t magic = sl_get_u32(hdr), len = sl_get_u32(hdr + 28);
		uint64_t term = sl_get_u64(hdr + 8), index = sl_get_u64(hdr + 16);
		uint32_t type = sl_get_u32(hdr + 24);
		bool zero = true;
		for (size_t i = 0; i < REC_HDR && zero; i++)
			zero = hdr[i] == 0;
		if (zero)
			break; /* the file grew but the record never reached it: torn */
		if (magic != LOG_MAGIC || len > REC_MAX_DATA) {
			snprintf(err, err_len, "ctld.log offset %" PRIu64 ": not a record header",
				 off);
			rc = -EBADMSG;
			break;
		}
		if (size - off - REC_HDR < len)
			break; /* torn data */
		uint8_t *d = realloc(data, len ? len : 1);
		if (d == NULL) {
			rc = -ENOMEM;
			break;
		}
		data = d;
		if ((rc = read_all(l->fd, data, len, off + REC_HDR)) != 0)
			break;
		if (rec_crc(hdr, data, len) != sl_get_u32(hdr + 4)) {
			snprintf(err, err_len,
				 "ctld.log offset %" PRIu64 ": record of index %" PRIu64
				 " fails its CRC (damaged; refusing to start)",
				 off, index);
			rc = -EBADMSG;
			break;
		}
		if (index != l->last + 1 || term < l->last_term) {
			snprintf(err, err_len,
				 "ctld.log offset %" PRIu64 ": index %" PRIu64 " term %" PRIu64
				 " after index %" PRIu64 " term %" PRIu64 " (out of order)",
				 off, index, term, l->last, l->last_term);
			rc = -EBADMSG;
			break;
		}
		struct sl_cons_entry e = {term, index, 0, type, len, data};
		if ((rc = sl_rlog_append(&l->rlog, &e)) != 0 || (rc = remember(l, index, off)) != 0)
			break;
		l->last = index;
		l->last_term = term;
		off += REC_HDR + len;
	}
	free(data);
	if (rc != 0) {
		if (err[0] == '\0')
			snprintf(err, err_len, "ctld.log: %s", strerror(-rc));
		return rc;
	}
	if (off < size) {
		l->torn_bytes = size - off;
		if (ftruncate(l->fd, (off_t)off) < 0 || fdatasync(l->fd) < 0) {
			rc = -errno;
			snprintf(err, err_len, "ctld.log: cutting the torn tail: %s", strerror(-rc));
			return rc;
		}
	}
	l->end = off;
	return 0;
}

int sl_ctld_log_open(struct sl_ctld_log *l, const char *dir, char *err, size_t err_len)
{
	memset(l, 0, sizeof(*l));
	l->fd = l->dir_fd = -1;
	if (err_len > 0)
		err[0] = '\0';
	sl_rlog_init(&l->rlog, 0, 0);
	if (snprintf(l->dir, sizeof(l->dir), "%s", dir) >= (int)sizeof(l->dir)) {
		snprintf(err, err_len, "data_dir too long");
		return -ENAMETOOLONG;
	}
	char path[SL_CTLD_PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/ctld.log", dir);
	int rc;
	l->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (l->dir_fd < 0 || l->fd < 0) {
		rc = -errno;
		snprintf(err, err_len, "%s: %s", l->dir_fd < 0 ? dir : path, strerror(-rc));
		goto fail;
	}
	if (fsync(l->dir_fd) < 0) { /* a log file created just now stays */
		rc = -errno;
		snprintf(err, err_len, "%s: fsync: %s", dir, strerror(-rc));
		goto fail;
	}
	if ((rc = load_hs(l, err, err_len)) != 0 || (rc = recover(l, err, err_len)) != 0)
		goto fail;
	if (l->hs.commit > l->last) {
		/* the hard state is written after the log is synced: this is damage */
		snprintf(err, err_len,
			 "ctld.hs names commit %" PRIu64 " but ctld.log ends at %" PRIu64,
			 l->hs.commit, l->last);
		rc = -EBADMSG;
		goto fail;
	}
	return 0;
fail:
	sl_ctld_log_close(l);
	return rc;
}

void sl_ctld_log_close(struct sl_ctld_log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	if (l->dir_fd >= 0)
		close(l->dir_fd);
	l->fd = l->dir_fd = -1;
	free(l->offsets);
	l->offsets = NULL;
	l->cap = 0;
	sl_rlog_free(&l->rlog);
}

int sl_ctld_log_append(struct sl_ctld_log *l, const struct sl_cons_entry *e)
{
	if (e->index == 0 || e->index > l->last + 1 || e->len > REC_MAX_DATA)
		return -EINVAL;
	if (e->index <= l->last) { /* raft replaces a conflicting suffix: cut the file there */
		uint64_t off = l->offsets[e->index - 1];
		if (ftruncate(l->fd, (off_t)off) < 0)
			return -errno;
		l->end = off;
		l->last = e->index - 1;
		uint64_t t = 0;
		if (l->last > 0 && sl_rlog_term(&l->rlog, l->last, &t) != 0)
			return -EIO; /* every entry of the file is in the window */
		l->last_term = t;
	}
	uint8_t hdr[REC_HDR];
	sl_put_u32(hdr, LOG_MAGIC);
	sl_put_u64(hdr + 8, e->term);
	sl_put_u64(hdr + 16, e->index);
	sl_put_u32(hdr + 24, e->type);
	sl_put_u32(hdr + 28, e->len);
	sl_put_u32(hdr + 4, rec_crc(hdr, e->data, e->len));
	int rc = write_all(l->fd, hdr, REC_HDR, l->end);
	if (rc == 0 && e->len > 0)
		rc = write_all(l->fd, e->data, e->len, l->end + REC_HDR);
	if (rc == 0)
		rc = remember(l, e->index, l->end);
	if (rc == 0)
		rc = sl_rlog_append(&l->rlog, e);
	if (rc != 0)
		return rc;
	l->end += REC_HDR + e->len;
	l->last = e->index;
	l->last_term = e->term;
	l->dirty = true;
	return 0;
}

void sl_ctld_log_set_hs(struct sl_ctld_log *l, const struct sl_cons_hard_state *hs)
{
	l->hs_next = *hs;
	l->hs_pending = true;
}

static int write_hs(struct sl_ctld_log *l)
{
	char tmp[SL_CTLD_PATH_MAX + 16], path[SL_CTLD_PATH_MAX + 16];
	int rc = hs_path(l, tmp, sizeof(tmp), ".tmp");
	if (rc == 0)
		rc = hs_path(l, path, sizeof(path), "");
	if (rc != 0)
		return rc;
	uint8_t b[HS_BYTES] = {0};
	sl_put_u32(b, HS_MAGIC);
	sl_put_u64(b + 8, l->hs_next.term);
	sl_put_u64(b + 16, l->hs_next.commit);
	sl_put_u32(b + 24, l->hs_next.vote);
	sl_put_u32(b + 4, sl_crc32c(b + 8, HS_BYTES - 8, 0xffffffffu));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, b, sizeof(b), 0);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0 && fsync(l->dir_fd) < 0)
		rc = -errno;
	if (rc == 0) {
		l->hs = l->hs_next;
		l->hs_pending = false;
	}
	return rc;
}

int sl_ctld_log_sync(struct sl_ctld_log *l)
{
	if (l->dirty) {
		if (fdatasync(l->fd) < 0)
			return -errno;
		l->dirty = false;
	}
	return l->hs_pending ? write_hs(l) : 0;
}
