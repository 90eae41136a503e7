/* node_ml.c - what a multileader region needs of the node beyond a raft one
 * (docs/multileader.md): the per-origin positions its images stand for, kept durably next
 * to them (a vector file, as the term file is for raft), snapshots from peers MERGED into
 * the store (last writer wins) and kept durably as merge files until a new base image
 * covers them, and what the protocol reads back: the vector at start, vector + image for
 * a peer past retention. */
#include "node_internal.h"

#define ML_CKPT_FOR_PEERS_NS (5ull * 1000000000ull) /* a checkpoint for peers, at most */

/* ---------------------------------------------------------------- vectors */

/* a ⊔ b (per origin the higher position) into out; the length, or -EBADMSG */
static int vec_join(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen,
		    uint8_t *out)
{
	uint32_t na = 0, nb = 0, nodes[SL_CONS_MAX_PEERS * 2];
	uint64_t ia[SL_CONS_MAX_PEERS], ib[SL_CONS_MAX_PEERS], idx[SL_CONS_MAX_PEERS * 2];
	uint32_t an[SL_CONS_MAX_PEERS], bn[SL_CONS_MAX_PEERS];
	if ((alen > 0 && sl_ml_snap_vec_get(a, alen, an, ia, SL_CONS_MAX_PEERS, &na) < 0) ||
	    (blen > 0 && sl_ml_snap_vec_get(b, blen, bn, ib, SL_CONS_MAX_PEERS, &nb) < 0))
		return -EBADMSG;
	uint32_t n = 0;
	for (uint32_t i = 0; i < na; i++) {
		nodes[n] = an[i];
		idx[n++] = ia[i];
	}
	for (uint32_t j = 0; j < nb; j++) {
		uint32_t k = 0;
		while (k < n && nodes[k] != bn[j])
			k++;
		if (k == n) {
			nodes[n] = bn[j];
			idx[n++] = ib[j];
		} else if (ib[j] > idx[k]) {
			idx[k] = ib[j];
		}
	}
	if (n > SL_CONS_MAX_PEERS)
		return -EBADMSG;
	return (int)sl_ml_snap_vec_put(out, ND_ML_VEC_BYTES, nodes, idx, n);
}

uint32_t nd_ml_vec_capture(struct region *r, uint8_t *out)
{
	struct sl_ml_origin og[SL_CONS_MAX_PEERS];
	uint32_t nodes[SL_CONS_MAX_PEERS];
	uint64_t idx[SL_CONS_MAX_PEERS];
	uint32_t n = sl_ml_origins(sl_drv_instance(r->drv), og, SL_CONS_MAX_PEERS);
	for (uint32_t i = 0; i < n; i++) {
		nodes[i] = og[i].node;
		idx[i] = og[i].applied;
	}
	return sl_ml_snap_vec_put(out, ND_ML_VEC_BYTES, nodes, idx, n);
}

/* Text: "INDEX n node:pos ..." for one vector. */
static int vec_line(char *buf, size_t cap, uint64_t index, const uint8_t *vec, uint32_t len)
{
	uint32_t n = 0, nodes[SL_CONS_MAX_PEERS];
	uint64_t idx[SL_CONS_MAX_PEERS];
	if (len == 0)
		n = 0;
	else if (sl_ml_snap_vec_get(vec, len, nodes, idx, SL_CONS_MAX_PEERS, &n) < 0)
		return -EBADMSG;
	int at = snprintf(buf, cap, "%" PRIu64 " %u", index, n);
	for (uint32_t i = 0; i < n && at > 0 && (size_t)at < cap; i++)
		at += snprintf(buf + at, cap - (size_t)at, " %u:%" PRIu64, nodes[i], idx[i]);
	if (at < 0 || (size_t)at + 2 > cap)
		return -ENOSPC;
	buf[at++] = '\n';
	buf[at] = '\0';
	return at;
}

void nd_ml_vec_path(const struct sl_node *n, uint32_t region, char *buf, size_t len)
{
	nd_snap_path(n, region, buf, len, ".vec");
}

/* Writer thread, before the image's rename (as the term file): the new image's vector
 * and the previous one's, so either image finds its own after a crash. */
int nd_ml_write_vec_file(const struct sl_node *n, uint32_t region, uint64_t index,
			 const uint8_t *vec, uint32_t len, uint64_t prev_index,
			 const uint8_t *prev, uint32_t prev_len)
{
	char text[4 * ND_ML_VEC_TEXT], path[SL_CFG_PATH_MAX + 64];
	int a = snprintf(text, sizeof(text), "sluice multileader vector v1\n");
	int b = vec_line(text + a, sizeof(text) - (size_t)a, index, vec, len);
	if (b < 0)
		return b;
	int c = prev_index != index
			? vec_line(text + a + b, sizeof(text) - (size_t)(a + b), prev_index, prev,
				   prev_len)
			: 0;
	if (c < 0)
		return c;
	nd_ml_vec_path(n, region, path, sizeof(path));
	return nd_write_file_atomic(n, path, (const uint8_t *)text, (size_t)(a + b + c));
}

/* The vector recorded for exactly `index` (an image's); -ENOENT when none names it,
 * -EBADMSG when the file is unreadable. */
static int read_vec_file(const struct sl_node *n, uint32_t region, uint64_t index,
			 uint8_t *out, uint32_t *out_len)
{
	char path[SL_CFG_PATH_MAX + 64], line[ND_ML_VEC_TEXT];
	nd_ml_vec_path(n, region, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	int rc = -ENOENT;
	if (fgets(line, sizeof(line), f) == NULL ||
	    strcmp(line, "sluice multileader vector v1\n") != 0)
		rc = -EBADMSG;
	while (rc == -ENOENT && fgets(line, sizeof(line), f) != NULL) {
		uint64_t at = 0;
		unsigned cnt = 0;
		int used = 0;
		if (sscanf(line, "%" SCNu64 " %u%n", &at, &cnt, &used) != 2 || cnt > SL_CONS_MAX_PEERS) {
			rc = -EBADMSG;
			break;
		}
		if (at != index)
			continue;
		uint32_t nodes[SL_CONS_MAX_PEERS];
		uint64_t idx[SL_CONS_MAX_PEERS];
		const char *p = line + used;
		rc = 0;
		for (unsigned i = 0; i < cnt && rc == 0; i++) {
			int k = 0;
			if (sscanf(p, " %u:%" SCNu64 "%n", &nodes[i], &idx[i], &k) != 2)
				rc = -EBADMSG;
			p += k;
		}
		if (rc == 0)
			*out_len = sl_ml_snap_vec_put(out, ND_ML_VEC_BYTES, nodes, idx, cnt);
	}
	fclose(f);
	return rc;
}

/* ---------------------------------------------------------------- merge files */

/* snap/region-RRRR.mINDEX.SEQ.snap: a peer's snapshot (vector + versioned image) merged
 * into the store at log index INDEX; removed once a base image at or after it is durable */
static void merge_path(const struct sl_node *n, uint32_t region, uint64_t index, uint32_t seq,
		       char *buf, size_t len)
{
	snprintf(buf, len, "%s/snap/region-%04u.m%" PRIu64 ".%u.snap", n->cfg.data_dir, region,
		 index, seq);
}

static bool merge_name(const char *name, uint32_t *region, uint64_t *index, uint32_t *seq)
{
	unsigned r = 0, s = 0;
	int end = 0;
	if (strncmp(name, "region-", 7) != 0 ||
	    sscanf(name, "region-%u.m%" SCNu64 ".%u.snap%n", &r, index, &s, &end) != 3 ||
	    end == 0 || name[end] != '\0')
		return false;
	*region = r;
	*seq = s;
	return true;
}

void nd_ml_remove_merged(const struct sl_node *n, uint32_t region, uint64_t upto)
{
	char dir[SL_CFG_PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/snap", n->cfg.data_dir);
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) { /* bounded by the directory's entries */
		uint32_t r = 0, seq = 0;
		uint64_t idx = 0;
		if (merge_name(de->d_name, &r, &idx, &seq) && r == region && idx <= upto)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* One merge: a vector then a versioned store image, joined into the region's store
 * (checked whole first: a bad one leaves the store as it was) and its vector into
 * r->ml_vec. */
static int merge_into(struct region *r, const uint8_t *data, uint32_t len, const char **why)
{
	uint32_t nodes[SL_CONS_MAX_PEERS], cnt = 0;
	uint64_t idx[SL_CONS_MAX_PEERS];
	int vl = sl_ml_snap_vec_get(data, len, nodes, idx, SL_CONS_MAX_PEERS, &cnt);
	if (vl < 0) {
		*why = "its origin vector does not decode";
		return -EBADMSG;
	}
	int rc = sl_store_snapshot_merge_mem(r->store, data + vl, len - (uint32_t)vl, NULL);
	if (rc != 0) {
		*why = rc == -EINVAL ? "the image is of another region or not versioned"
				     : rc == -ENOMEM ? "no memory" : "the image does not decode";
		return rc;
	}
	uint8_t joined[ND_ML_VEC_BYTES];
	int jl = vec_join(r->ml_vec, r->ml_vec_len, data, (uint32_t)vl, joined);
	if (jl > 0) {
		memcpy(r->ml_vec, joined, (size_t)jl);
		r->ml_vec_len = (uint32_t)jl;
	}
	return 0;
}

/* ---------------------------------------------------------------- recovery */

int nd_ml_recover(struct sl_node *n, struct region *r, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 96];
	r->ml_vec_len = r->ml_chain_vec_len = 0;
	if (r->snapshot_index > 0) {
		int rc = read_vec_file(n, r->id, r->snapshot_index, r->ml_chain_vec,
				       &r->ml_chain_vec_len);
		if (rc != 0) {
			nd_ml_vec_path(n, r->id, path, sizeof(path));
			snprintf(err, err_len,
				 "%s: %s for image index %" PRIu64 " of multileader region %u: "
				 "the positions its image stands for are unknown; refusing to start",
				 path, rc == -ENOENT ? "no vector recorded" : strerror(-rc),
				 r->snapshot_index, r->id);
			return rc;
		}
		memcpy(r->ml_vec, r->ml_chain_vec, r->ml_chain_vec_len);
		r->ml_vec_len = r->ml_chain_vec_len;
		if (r->snap_img != NULL && r->snap_img_index == r->snapshot_index) {
			memcpy(r->ml_img_vec, r->ml_chain_vec, r->ml_chain_vec_len);
			r->ml_img_vec_len = r->ml_chain_vec_len;
		}
	}
	/* the peers' snapshots merged since that image, in any order (merges commute) */
	char dir[SL_CFG_PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/snap", n->cfg.data_dir);
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	struct dirent *de;
	int rc = 0;
	uint32_t merged = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		uint32_t reg = 0, seq = 0;
		uint64_t idx = 0;
		if (!merge_name(de->d_name, &reg, &idx, &seq) || reg != r->id)
			continue;
		if (seq >= r->ml_merge_seq)
			r->ml_merge_seq = seq + 1;
		merge_path(n, r->id, idx, seq, path, sizeof(path));
		int fd = open(path, O_RDONLY);
		struct stat sb;
		uint8_t *buf = NULL;
		rc = fd < 0 || fstat(fd, &sb) != 0 ? -errno : 0;
		if (rc == 0 && (sb.st_size <= 0 || sb.st_size > UINT32_MAX))
			rc = -EBADMSG;
		if (rc == 0 && (buf = malloc((size_t)sb.st_size)) == NULL)
			rc = -ENOMEM;
		if (rc == 0 && pread(fd, buf, (size_t)sb.st_size, 0) != sb.st_size)
			rc = -EIO;
		const char *why = "unreadable";
		if (rc == 0)
			rc = merge_into(r, buf, (uint32_t)sb.st_size, &why);
		free(buf);
		if (fd >= 0)
			close(fd);
		if (rc != 0)
			snprintf(err, err_len,
				 "%s: a peer's snapshot merged into region %u could not be merged "
				 "again (%s: %s); refusing to start",
				 path, r->id, why, strerror(-rc));
		else
			merged++;
	}
	closedir(d);
	if (merged > 0)
		SL_LOG(NOTICE, ckpt, "region %u: %u snapshots of peers merged again\n", r->id,
		       merged);
	return rc;
}

/* ---------------------------------------------------------------- the protocol's view */

int nd_ml_log_snapshot(struct region *r, struct sl_cons_snapshot *out)
{
	if (r->drv == NULL) {
		/* the protocol being created reads the positions the store stands for: the
		 * chain's and the merged snapshots' (no image is needed for that) */
		if (r->ml_vec_len == 0)
			return -ENOENT;
		*out = (struct sl_cons_snapshot){.index = r->snapshot_index, .term = 1,
						 .len = r->ml_vec_len, .data = r->ml_vec};
		nd_region_conf(r->wk->node, r->id, &out->conf);
		return 0;
	}
	/* for a peer: the chain's image with exactly its own vector (merged snapshots are
	 * not in it, so their positions are not claimed). The protocol asks while it needs
	 * one; an image older than what this replica applied may not do (the peer needs a
	 * position past it: after a rejoin, its own stream as far as any replica holds it),
	 * and an idle region takes no checkpoint by itself: take one, at most every 5 s. */
	struct worker *w = r->wk;
	uint64_t now = nd_now_ns();
	if (r->applied_index > r->snapshot_index && !w->ckpt_active && !w->ckpt_wanted &&
	    now - w->ckpt_peers_ns >= ML_CKPT_FOR_PEERS_NS) {
		w->ckpt_wanted = true;
		w->ckpt_peers_ns = now;
		sl_stats_add(w->st, SL_STAT_checkpoints_for_peers, 1);
	}
	if (r->snap_img == NULL || r->ml_img_vec_len == 0)
		return -EAGAIN;
	if (r->ml_send == NULL || r->ml_send_gen != r->snap_img_gen) {
		free(r->ml_send);
		r->ml_send = malloc((size_t)r->ml_img_vec_len + r->snap_img_len);
		if (r->ml_send == NULL)
			return -EAGAIN;
		memcpy(r->ml_send, r->ml_img_vec, r->ml_img_vec_len);
		memcpy(r->ml_send + r->ml_img_vec_len, r->snap_img, r->snap_img_len);
		r->ml_send_len = r->ml_img_vec_len + r->snap_img_len;
		r->ml_send_gen = r->snap_img_gen;
	}
	*out = (struct sl_cons_snapshot){.index = r->snap_img_index, .term = 1,
					 .conf = r->snap_conf, .len = r->ml_send_len,
					 .data = r->ml_send};
	return 0;
}

/* A peer's snapshot, merged: joined into the store (the image is checked whole first: a
 * damaged one leaves the store as it was), then made durable as a merge file before this
 * returns (the protocol counts this replica as holding it from then on). When the write
 * fails the region fails as for any storage error (driver.c): what was merged in memory
 * is never acknowledged from here, and a restart starts from the disk. Blocking file I/O
 * on the worker, as a raft install: rare (a replica past a peer's retention). */
int nd_ml_install(struct region *r, const struct sl_cons_snapshot *snap, const char **why)
{
	if (snap->data == NULL) {
		*why = "no data";
		return -EBADMSG;
	}
	uint8_t before[ND_ML_VEC_BYTES];
	uint32_t before_len = r->ml_vec_len;
	memcpy(before, r->ml_vec, before_len);
	int rc = merge_into(r, snap->data, snap->len, why);
	if (rc != 0)
		return rc;
	char path[SL_CFG_PATH_MAX + 96];
	merge_path(r->wk->node, r->id, snap->index, r->ml_merge_seq, path, sizeof(path));
	rc = nd_write_file_atomic(r->wk->node, path, snap->data, snap->len);
	if (rc != 0) {
		memcpy(r->ml_vec, before, before_len);
		r->ml_vec_len = before_len;
		*why = "it could not be made durable";
		return rc;
	}
	r->ml_merge_seq++;
	return 0;
}
