/* fabric.c - the node-to-node frame codec (fabric.h). Frame, little-endian:
 *   header (40): magic u32 | version u8 | reserved u8 (0) | n_recs u16 | cluster u32 |
 *                src_node u16 | dst_node u16 | src_core u16 | dst_core u16 | epoch u64 |
 *                seq u32 | body_len u32 | crc32c u32 (over the 36 header bytes before it,
 *                then the body)
 *   record (28 + len): group u64 | from u32 | to u32 | total u32 | off u32 | len u16 |
 *                kind u16 (enum sl_fab_kind) | len bytes of the message from off on */
#include <string.h>

#include "fabric.h"
#include "sl_crc.h"
#include "sl_le.h"

/* a fragment smaller than this is left for the next frame (unless the frame is empty) */
#define FAB_FRAG_MIN 64u

const char *sl_fab_drop_name(enum sl_fab_drop d)
{
	static const char *const names[SL_FAB_DROP_COUNT] = {
		[SL_FAB_OK] = "ok",
		[SL_FAB_DROP_SHORT] = "short",
		[SL_FAB_DROP_MAGIC] = "magic",
		[SL_FAB_DROP_VERSION] = "version",
		[SL_FAB_DROP_LENGTH] = "length",
		[SL_FAB_DROP_CRC] = "crc",
		[SL_FAB_DROP_CLUSTER] = "cluster",
		[SL_FAB_DROP_DEST] = "dest",
		[SL_FAB_DROP_EPOCH] = "epoch",
		[SL_FAB_DROP_RECORDS] = "records",
	};
	return (unsigned)d < SL_FAB_DROP_COUNT ? names[d] : "unknown";
}

bool sl_fab_msg_fits(uint32_t len)
{
	return len > 0 && len <= SL_FAB_MSG_MAX;
}

void sl_fab_enc_begin(struct sl_fab_enc *e, uint8_t *buf, uint32_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->used = SL_FAB_HDR_BYTES;
	e->n_recs = 0;
}

bool sl_fab_enc_add(struct sl_fab_enc *e, enum sl_fab_kind kind, const struct sl_cons_msg *m,
		    uint32_t *off)
{
	uint32_t left = m->len - *off;
	if (e->n_recs == UINT16_MAX || e->used + SL_FAB_REC_HDR_BYTES >= e->cap)
		return false;
	uint32_t room = e->cap - e->used - SL_FAB_REC_HDR_BYTES;
	if (room > UINT16_MAX)
		room = UINT16_MAX;
	uint32_t n = left < room ? left : room;
	if (n < left && n < FAB_FRAG_MIN && e->n_recs > 0)
		return false; /* a sliver: the next frame takes a real fragment */
	uint8_t *p = e->buf + e->used;
	sl_put_u64(p, m->group_id);
	sl_put_u32(p + 8, m->from);
	sl_put_u32(p + 12, m->to);
	sl_put_u32(p + 16, m->len);
	sl_put_u32(p + 20, *off);
	sl_put_u16(p + 24, (uint16_t)n);
	sl_put_u16(p + 26, (uint16_t)kind);
	memcpy(p + SL_FAB_REC_HDR_BYTES, m->buf + *off, n);
	e->used += SL_FAB_REC_HDR_BYTES + n;
	e->n_recs++;
	*off += n;
	return *off == m->len;
}

uint32_t sl_fab_enc_finish(struct sl_fab_enc *e, const struct sl_fab_hdr *h)
{
	if (e->n_recs == 0)
		return 0;
	uint8_t *p = e->buf;
	sl_put_u32(p, SL_FAB_MAGIC);
	p[4] = SL_FAB_VERSION;
	p[5] = 0;
	sl_put_u16(p + 6, e->n_recs);
	sl_put_u32(p + 8, h->cluster_id);
	sl_put_u16(p + 12, h->src_node);
	sl_put_u16(p + 14, h->dst_node);
	sl_put_u16(p + 16, h->src_core);
	sl_put_u16(p + 18, h->dst_core);
	sl_put_u64(p + 20, h->epoch);
	sl_put_u32(p + 28, h->seq);
	sl_put_u32(p + 32, e->used - SL_FAB_HDR_BYTES);
	uint32_t crc = sl_crc32c(p, 36, 0xffffffffu);
	crc = sl_crc32c(p + SL_FAB_HDR_BYTES, e->used - SL_FAB_HDR_BYTES, crc);
	sl_put_u32(p + 36, crc);
	return e->used;
}

/* The records tile the body exactly and each is well-formed. */
static bool recs_ok(const uint8_t *p, const uint8_t *end, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		if ((size_t)(end - p) < SL_FAB_REC_HDR_BYTES)
			return false;
		uint32_t total = sl_get_u32(p + 16), off = sl_get_u32(p + 20);
		uint16_t len = sl_get_u16(p + 24);
		if (sl_get_u16(p + 26) >= SL_FAB_KIND_COUNT || len == 0 || !sl_fab_msg_fits(total) ||
		    off >= total || len > total - off)
			return false;
		p += SL_FAB_REC_HDR_BYTES;
		if ((size_t)(end - p) < len)
			return false;
		p += len;
	}
	return p == end;
}

enum sl_fab_drop sl_fab_decode(const uint8_t *f, size_t len, const struct sl_fab_self *self,
			       struct sl_fab_hdr *h)
{
	if (len < SL_FAB_HDR_BYTES)
		return SL_FAB_DROP_SHORT;
	if (sl_get_u32(f) != SL_FAB_MAGIC)
		return SL_FAB_DROP_MAGIC;
	if (f[4] != SL_FAB_VERSION || f[5] != 0)
		return SL_FAB_DROP_VERSION;
	uint32_t body = sl_get_u32(f + 32);
	if ((uint64_t)body + SL_FAB_HDR_BYTES != len)
		return SL_FAB_DROP_LENGTH;
	uint32_t crc = sl_crc32c(f, 36, 0xffffffffu);
	crc = sl_crc32c(f + SL_FAB_HDR_BYTES, body, crc);
	if (crc != sl_get_u32(f + 36))
		return SL_FAB_DROP_CRC;
	h->cluster_id = sl_get_u32(f + 8);
	h->src_node = sl_get_u16(f + 12);
	h->dst_node = sl_get_u16(f + 14);
	h->src_core = sl_get_u16(f + 16);
	h->dst_core = sl_get_u16(f + 18);
	h->epoch = sl_get_u64(f + 20);
	h->seq = sl_get_u32(f + 28);
	h->n_recs = sl_get_u16(f + 6);
	h->body_len = body;
	h->body = f + SL_FAB_HDR_BYTES;
	if (h->cluster_id != self->cluster_id)
		return SL_FAB_DROP_CLUSTER;
	if (h->dst_node != self->node || h->src_node == self->node || h->src_node == 0)
		return SL_FAB_DROP_DEST;
	if (h->epoch < self->min_epoch)
		return SL_FAB_DROP_EPOCH;
	if (h->n_recs == 0 || !recs_ok(h->body, h->body + body, h->n_recs))
		return SL_FAB_DROP_RECORDS;
	return SL_FAB_OK;
}

void sl_fab_recs_init(struct sl_fab_rec_iter *it, const struct sl_fab_hdr *h)
{
	it->p = h->body;
	it->end = h->body + h->body_len;
	it->left = h->n_recs;
}

int sl_fab_recs_next(struct sl_fab_rec_iter *it, struct sl_fab_rec *r)
{
	if (it->left == 0 || (size_t)(it->end - it->p) < SL_FAB_REC_HDR_BYTES)
		return 0;
	const uint8_t *p = it->p;
	r->group_id = sl_get_u64(p);
	r->from = sl_get_u32(p + 8);
	r->to = sl_get_u32(p + 12);
	r->total = sl_get_u32(p + 16);
	r->off = sl_get_u32(p + 20);
	r->len = sl_get_u16(p + 24);
	r->kind = sl_get_u16(p + 26);
	r->data = p + SL_FAB_REC_HDR_BYTES;
	it->p = r->data + r->len;
	it->left--;
	return 1;
}

void sl_fab_reasm_init(struct sl_fab_reasm *r, uint8_t *buf, uint32_t cap)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->cap = cap;
}

int sl_fab_reasm_add(struct sl_fab_reasm *r, const struct sl_fab_rec *rec, struct sl_cons_msg *out,
		     uint16_t *kind)
{
	if (rec->off == 0 && rec->len == rec->total) { /* whole: no copy */
		*kind = rec->kind;
		if (r->active)
			r->gaps++; /* the message in progress lost its tail */
		r->active = false;
		*out = (struct sl_cons_msg){.group_id = rec->group_id, .from = rec->from,
					    .to = rec->to, .len = rec->len, .buf = rec->data};
		return 1;
	}
	if (rec->off == 0) {
		if (r->active)
			r->gaps++;
		r->active = false;
		if (rec->total > r->cap) {
			r->too_big++;
			return 0;
		}
		r->active = true;
		r->kind = rec->kind;
		r->group_id = rec->group_id;
		r->from = rec->from;
		r->to = rec->to;
		r->total = rec->total;
		r->filled = 0;
	} else if (!r->active || rec->kind != r->kind || rec->group_id != r->group_id || rec->from != r->from ||
		   rec->to != r->to || rec->total != r->total || rec->off != r->filled) {
		if (r->active)
			r->gaps++;
		r->active = false; /* a fragment of a message whose head was lost: skipped */
		return 0;
	}
	memcpy(r->buf + r->filled, rec->data, rec->len);
	r->filled += rec->len;
	if (r->filled < r->total)
		return 0;
	r->active = false;
	*kind = r->kind;
	*out = (struct sl_cons_msg){.group_id = r->group_id, .from = r->from, .to = r->to,
				    .len = r->total, .buf = r->buf};
	return 1;
}
