/* standalone.c - the single-copy protocol: one replica, an entry commits as soon as the
 * local log is durable up to it. Same interface as raft so a region can switch protocol.
 * Pure: bounded queues sized at create, no I/O. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "sl_assert.h"

#define SA_QUEUE 4096u /* proposals waiting for persist or commit */
#define SA_READS 64u   /* linearizable reads asked and not yet handed out */

struct sa_state {
	uint32_t self; /* its own leader */
	uint64_t term;
	uint64_t last_index;    /* last index handed out */
	uint64_t durable_index; /* log durable up to here */
	uint64_t applied_index; /* committed and handed to the caller */
	uint64_t seal_index;    /* the SEAL entry (0: none): no proposal is taken after it */
	bool failed;
	int fail_err;
	/* recovered log entries (durable, hence committed) handed out again for apply */
	const struct sl_cons_log *log;
	uint64_t replay_next, replay_end;
	uint32_t rd_replayed;
	/* ring of entries proposed but not yet reported committed */
	struct sl_cons_entry q[SA_QUEUE];
	uint32_t q_head, q_len;       /* q_head = oldest uncommitted */
	uint32_t n_unpersisted;       /* the last n_unpersisted of q not yet handed to persist */
	/* outputs of the current ready */
	struct sl_cons_entry out_persist[SA_QUEUE];
	struct sl_cons_entry out_committed[SA_QUEUE];
	struct sl_cons_ack out_acks[SA_QUEUE];
	uint32_t rd_persist, rd_committed; /* sizes handed out in the last ready */
	/* reads: one copy is linearizable at what is durable (acks come after apply) */
	struct sl_cons_read reads[SA_READS];
	uint32_t n_reads, rd_reads;
};

static int sa_create(const struct sl_cons_config *cfg, void **out)
{
	if (cfg->n_voters > 1)
		return -EINVAL;
	struct sa_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->self = cfg->self;
	s->term = cfg->initial.term ? cfg->initial.term : 1;
	if (cfg->log != NULL) {
		/* every recovered entry was durable, so committed: the ones after the log's
		 * start (the caller's snapshot) go out again in `committed` for apply */
		s->log = cfg->log;
		s->last_index = cfg->log->last_index(cfg->log->ctx);
		s->durable_index = s->last_index;
		uint64_t first = cfg->log->first_index(cfg->log->ctx);
		s->applied_index = first > 0 ? first - 1 : 0;
		s->replay_next = first;
		s->replay_end = s->last_index;
		/* a SEAL in the recovered log still ends it */
		for (uint64_t i = first; i <= s->last_index && s->seal_index == 0; i++) {
			struct sl_cons_entry e;
			if (cfg->log->entry(cfg->log->ctx, i, &e) == 0 &&
			    e.type == SL_CONS_ENTRY_SEAL)
				s->seal_index = i;
		}
	}
	*out = s;
	return 0;
}

static void sa_destroy(void *st) { free(st); }

static int sa_append(struct sa_state *s, uint64_t pid, uint32_t type, const uint8_t *data,
		     uint32_t len)
{
	if (s->failed)
		return -EIO;
	if (s->seal_index != 0)
		return type == SL_CONS_ENTRY_SEAL ? -EALREADY : -EROFS;
	if (s->q_len == SA_QUEUE)
		return -ENOBUFS;
	struct sl_cons_entry *e = &s->q[(s->q_head + s->q_len) % SA_QUEUE];
	e->term = s->term;
	e->index = ++s->last_index;
	e->proposal_id = pid;
	e->type = type;
	e->len = len;
	e->data = data;
	s->q_len++;
	s->n_unpersisted++;
	if (type == SL_CONS_ENTRY_SEAL)
		s->seal_index = e->index;
	return 0;
}

static int sa_propose(void *st, uint64_t pid, const uint8_t *data, uint32_t len)
{
	return sa_append(st, pid, SL_CONS_ENTRY_NORMAL, data, len);
}

/* The end of this log: nothing is taken after it (-EROFS), -EALREADY once there. */
static int sa_seal(void *st, uint64_t pid, const uint8_t *data, uint32_t len)
{
	return sa_append(st, pid, SL_CONS_ENTRY_SEAL, data, len);
}

static int sa_step(void *st, const struct sl_cons_msg *m)
{
	(void)st;
	(void)m;
	return -EPROTO; /* a single copy has no peers */
}

static void sa_tick(void *st, uint64_t now_ns)
{
	(void)st;
	(void)now_ns;
}

static void sa_persisted(void *st, uint64_t term, uint64_t index)
{
	struct sa_state *s = st;
	(void)term;
	SL_ASSERT(index <= s->last_index);
	if (!s->failed && index > s->durable_index)
		s->durable_index = index;
}

static void sa_storage_failed(void *st, uint64_t index, int err)
{
	struct sa_state *s = st;
	(void)index;
	s->failed = true;
	s->fail_err = err;
}

static bool sa_replaying(const struct sa_state *s)
{
	return s->log != NULL && s->replay_next <= s->replay_end;
}

static uint32_t sa_n_commit(const struct sa_state *s)
{
	uint32_t n = 0;
	if (sa_replaying(s))
		return 0; /* new entries commit after the recovered ones */
	uint32_t persisted_slots = s->q_len - s->n_unpersisted;
	while (n < persisted_slots && s->q[(s->q_head + n) % SA_QUEUE].index <= s->durable_index)
		n++;
	return n;
}

static bool sa_has_ready(void *st)
{
	struct sa_state *s = st;
	if (s->failed)
		return s->q_len > 0;
	return s->n_unpersisted > 0 || sa_n_commit(s) > 0 || sa_replaying(s) || s->n_reads > 0;
}

static int sa_read(void *st, uint64_t read_id)
{
	struct sa_state *s = st;
	if (s->failed)
		return -EIO;
	if (s->n_reads == SA_READS)
		return -ENOBUFS;
	s->reads[s->n_reads++] = (struct sl_cons_read){read_id, s->durable_index, SL_CONS_ACK_OK};
	return 0;
}

static void sa_ready(void *st, struct sl_cons_ready *rd)
{
	struct sa_state *s = st;
	memset(rd, 0, sizeof(*rd));
	if (s->failed) {
		/* fail everything still queued: none of it may be acknowledged as durable */
		for (uint32_t i = 0; i < s->q_len; i++) {
			const struct sl_cons_entry *e = &s->q[(s->q_head + i) % SA_QUEUE];
			s->out_acks[i] = (struct sl_cons_ack){e->proposal_id, 0, SL_CONS_ACK_STORAGE};
		}
		rd->acks = s->out_acks;
		rd->n_acks = s->q_len;
		s->rd_persist = 0;
		s->rd_committed = s->q_len; /* drop them on advance */
		return;
	}
	rd->reads = s->reads;
	rd->n_reads = s->n_reads;
	s->rd_reads = s->n_reads;
	uint32_t first_unp = s->q_len - s->n_unpersisted;
	for (uint32_t i = 0; i < s->n_unpersisted; i++)
		s->out_persist[i] = s->q[(s->q_head + first_unp + i) % SA_QUEUE];
	rd->persist = s->out_persist;
	rd->n_persist = s->n_unpersisted;
	s->rd_persist = s->n_unpersisted;

	uint32_t nc = sa_n_commit(s);
	for (uint32_t i = 0; i < nc; i++) {
		const struct sl_cons_entry *e = &s->q[(s->q_head + i) % SA_QUEUE];
		s->out_committed[i] = *e;
		s->out_acks[i] = (struct sl_cons_ack){e->proposal_id, e->index, SL_CONS_ACK_OK};
	}
	rd->committed = s->out_committed;
	rd->n_committed = nc;
	rd->acks = s->out_acks;
	rd->n_acks = nc;
	s->rd_committed = nc;
	if (nc == 0 && sa_replaying(s)) {
		/* recovered entries: applied, not acknowledged (nobody waits for them) */
		uint32_t n = 0;
		while (n < SA_QUEUE && s->replay_next + n <= s->replay_end) {
			int rc = s->log->entry(s->log->ctx, s->replay_next + n, &s->out_committed[n]);
			if (rc != 0) {
				/* the caller's log lost a durable entry: stop acknowledging */
				s->failed = true;
				s->fail_err = rc;
				break;
			}
			struct sl_cons_entry *e = &s->out_committed[n];
			if (e->type == SL_CONS_ENTRY_NORMAL && s->seal_index != 0 &&
			    s->replay_next + n > s->seal_index) {
				/* a write past the SEAL (the log was not written by this code):
				 * never applied */
				e->type = SL_CONS_ENTRY_NOOP;
				e->len = 0;
			}
			n++;
		}
		rd->n_committed = n;
		s->rd_replayed = n;
	}
}

static void sa_advance(void *st, const struct sl_cons_ready *rd)
{
	struct sa_state *s = st;
	(void)rd;
	SL_ASSERT(s->rd_persist <= s->n_unpersisted);
	s->n_unpersisted -= s->rd_persist;
	SL_ASSERT(s->rd_committed <= s->q_len);
	if (!s->failed && s->rd_committed > 0)
		s->applied_index = s->q[(s->q_head + s->rd_committed - 1) % SA_QUEUE].index;
	s->q_head = (s->q_head + s->rd_committed) % SA_QUEUE;
	s->q_len -= s->rd_committed;
	if (s->failed)
		s->n_unpersisted = 0;
	if (s->rd_replayed > 0) {
		s->replay_next += s->rd_replayed;
		s->applied_index = s->replay_next - 1;
	}
	if (s->rd_reads > 0) { /* reads asked during the ready stay for the next one */
		memmove(s->reads, s->reads + s->rd_reads,
			(s->n_reads - s->rd_reads) * sizeof(s->reads[0]));
		s->n_reads -= s->rd_reads;
	}
	s->rd_persist = s->rd_committed = s->rd_replayed = s->rd_reads = 0;
}

static void sa_status(void *st, struct sl_cons_status *o)
{
	struct sa_state *s = st;
	memset(o, 0, sizeof(*o));
	o->role = SL_CONS_ROLE_LEADER;
	o->leader = s->self;
	o->term = s->term;
	o->commit_index = s->durable_index;
	o->applied_index = s->applied_index;
	o->last_index = s->last_index;
	o->durable_index = s->durable_index;
	o->sealed_index = s->seal_index != 0 && s->applied_index >= s->seal_index ? s->seal_index
										 : 0;
}

const struct sl_cons_ops sl_cons_standalone_ops = {
	.name = "standalone",
	.create = sa_create,
	.destroy = sa_destroy,
	.propose = sa_propose,
	.step = sa_step,
	.tick = sa_tick,
	.persisted = sa_persisted,
	.storage_failed = sa_storage_failed,
	.has_ready = sa_has_ready,
	.ready = sa_ready,
	.advance = sa_advance,
	.status = sa_status,
	.read = sa_read,
	.seal = sa_seal,
};
