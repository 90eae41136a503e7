/* rlog.h - an in-memory window over a region's log for protocols that read entries back
 * (raft: apply after restart, followers, log matching). Entries are copied in when they are
 * handed out to persist (the WAL keeps the durable copy); payloads are dropped once
 * applied, terms are kept until a snapshot compacts them. One owner thread, no locks. */
#ifndef SL_RLOG_H
#define SL_RLOG_H

#include <stddef.h>
#include <stdint.h>

#include "consensus.h"

struct sl_rlog_ent {
	uint64_t term;
	uint64_t proposal_id;
	uint32_t type;
	uint32_t len;
	uint8_t *data; /* NULL once released */
};

struct sl_rlog {
	uint64_t base_index; /* last index covered by the snapshot (0: none) */
	uint64_t base_term;
	uint64_t count;      /* entries after base_index */
	uint64_t head;       /* ring position of base_index + 1 */
	uint64_t cap;        /* ring capacity, a power of two */
	struct sl_rlog_ent *ring;
	uint64_t bytes;      /* payload bytes held */
	uint64_t released;   /* payloads <= this index are dropped */
	/* where payload copies come from (default malloc/free); the node gives its core's
	 * jemalloc arena so the hot path does not touch the shared heap */
	void *(*alloc)(void *ctx, size_t bytes);
	void (*free)(void *ctx, void *p);
	void *alloc_ctx;
};

void sl_rlog_init(struct sl_rlog *l, uint64_t base_index, uint64_t base_term);
/* Payload allocator for the entries appended from now on (set it before the first). */
void sl_rlog_set_alloc(struct sl_rlog *l, void *(*alloc)(void *ctx, size_t bytes),
		       void (*release)(void *ctx, void *p), void *ctx);
void sl_rlog_free(struct sl_rlog *l);
/* Appends a copy of e at e->index; an index <= last replaces that entry and every later
 * one (a conflicting suffix). -EINVAL for an index beyond last + 1 or at/below the base,
 * -ENOMEM. */
int sl_rlog_append(struct sl_rlog *l, const struct sl_cons_entry *e);
/* Drops the payloads of entries <= index (applied); their terms stay. */
void sl_rlog_release(struct sl_rlog *l, uint64_t index);
/* Like sl_rlog_release, oldest first, but only while the window holds more than
 * keep_bytes of payload: the latest applied entries stay readable, so a peer that is a
 * little behind gets entries rather than a whole snapshot. */
void sl_rlog_release_keep(struct sl_rlog *l, uint64_t index, uint64_t keep_bytes);
/* A snapshot covers everything <= index (term): forget those entries. */
void sl_rlog_compact(struct sl_rlog *l, uint64_t index, uint64_t term);
/* A snapshot covers everything <= index, but entries whose payloads are still kept
 * (sl_rlog_release_keep) stay readable for peers a little behind: forgets only up to
 * min(index, released), with that entry's own term. */
void sl_rlog_compact_kept(struct sl_rlog *l, uint64_t index);
uint64_t sl_rlog_first(const struct sl_rlog *l);
/* The first index whose entry can still be read (after the base and what was released:
 * sl_rlog_release_keep keeps terms, not payloads); sl_rlog_last() + 1 when none. A peer
 * that needs an earlier one needs a snapshot at or after this index - 1. */
uint64_t sl_rlog_first_readable(const struct sl_rlog *l);
uint64_t sl_rlog_last(const struct sl_rlog *l);
/* 0, or -ENOENT (compacted or beyond the end). */
int sl_rlog_term(const struct sl_rlog *l, uint64_t index, uint64_t *term);
/* 0, or -ENOENT (compacted, released or beyond the end). data is borrowed. */
int sl_rlog_entry(const struct sl_rlog *l, uint64_t index, struct sl_cons_entry *out);
/* The read side for the protocol. */
void sl_rlog_view(struct sl_rlog *l, struct sl_cons_log *out);

/* The base (snapshot index and term) as the caller keeps it beside a snapshot file: a text
 * record "index term\nprev_index prev_term\n" written durably BEFORE the new snapshot is
 * renamed into place. Whichever snapshot a crash leaves (the new one or the previous one),
 * the record holds the term of exactly its index. Returns the length written, or -ENOSPC. */
int sl_rlog_base_format(char *buf, size_t len, uint64_t index, uint64_t term, uint64_t prev_index,
			uint64_t prev_term);
/* The term the record gives for exactly `index`: 0, -ENOENT when no pair names that
 * index (never the term of another one: the term of a newer snapshot is not this
 * snapshot's), -EBADMSG when the record is unreadable. One-pair records (older
 * versions) are read too. */
int sl_rlog_base_term(const char *text, uint64_t index, uint64_t *term);

#endif
