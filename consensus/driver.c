/* driver.c - see driver.h. One ready at a time, in the order consensus.h prescribes;
 * messages that must wait for durability are copied into a bounded FIFO (sized at create)
 * and go out when the host reports their storage position durable. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "sl_assert.h"

struct held {
	uint64_t pos;   /* storage position that must be durable first (0: none) */
	uint64_t group_id;
	uint32_t from, to, len;
	uint32_t off;   /* into bytes */
};

struct sl_drv {
	const struct sl_cons_ops *ops;
	void *st;
	struct sl_drv_host host;
	_Alignas(8) unsigned char opts[SL_CONS_OPTS_BYTES];
	uint64_t applied;     /* last index handed to host->apply */
	uint64_t floor;       /* covered by a snapshot: committed entries at or below it are
			       * already in the state machine */
	uint64_t issued_pos;  /* highest storage position handed out */
	uint64_t durable_pos; /* highest reported durable */
	bool in_ready;
	bool failed;          /* storage failed: nothing held is sent any more */
	bool fail_pending;    /* a failure reported during a ready, for after advance() */
	uint64_t fail_index;
	int fail_err;
	/* held messages: a FIFO ring of headers and a ring of bytes */
	struct held *q;
	uint32_t q_cap, q_head, q_len;
	uint8_t *bytes;
	uint32_t b_cap, b_head, b_tail; /* in use: [head, tail), or [head, cap) + [0, tail) */
	bool b_wrapped;
	struct sl_drv_stats stats;
};

uint32_t sl_drv_entry_limit(const struct sl_drv_config *cfg)
{
	const struct sl_cons_ops *ops = sl_cons_find(cfg->protocol);
	if (ops == NULL)
		return 0;
	_Alignas(8) unsigned char buf[SL_CONS_OPTS_BYTES];
	struct sl_cons_limits lim = {cfg->max_entry_bytes, cfg->max_inflight};
	return sl_cons_entry_limit(ops, sl_cons_opts(ops, &lim, buf));
}

int sl_drv_create(const struct sl_drv_config *cfg, const struct sl_drv_host *host,
		  struct sl_drv **out)
{
	const struct sl_cons_ops *ops = sl_cons_find(cfg->protocol);
	if (ops == NULL)
		return -ENOENT;
	if (host->install_snapshot == NULL || host->save_hard_state == NULL ||
	    host->save_entry == NULL || host->send == NULL || host->apply == NULL ||
	    host->ack == NULL)
		return -EINVAL;
	struct sl_drv *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->ops = ops;
	d->host = *host;
	d->applied = d->floor = cfg->applied_index;
	d->q_cap = cfg->held_msgs ? cfg->held_msgs : 256u;
	d->b_cap = cfg->held_bytes ? cfg->held_bytes : 4u << 20;
	d->q = calloc(d->q_cap, sizeof(*d->q));
	d->bytes = malloc(d->b_cap);
	if (d->q == NULL || d->bytes == NULL) {
		sl_drv_destroy(d);
		return -ENOMEM;
	}
	struct sl_cons_limits lim = {cfg->max_entry_bytes, cfg->max_inflight};
	struct sl_cons_config cc = cfg->cons;
	if (cc.proto_opts == NULL)
		cc.proto_opts = sl_cons_opts(ops, &lim, d->opts);
	int rc = ops->create(&cc, &d->st);
	if (rc != 0) {
		d->st = NULL;
		sl_drv_destroy(d);
		return rc;
	}
	*out = d;
	return 0;
}

void sl_drv_destroy(struct sl_drv *d)
{
	if (d == NULL)
		return;
	if (d->st != NULL)
		d->ops->destroy(d->st);
	free(d->q);
	free(d->bytes);
	free(d);
}

int sl_drv_propose(struct sl_drv *d, uint64_t pid, const uint8_t *data, uint32_t len)
{
	SL_ASSERT(!d->in_ready);
	return d->ops->propose(d->st, pid, data, len);
}

int sl_drv_step(struct sl_drv *d, const struct sl_cons_msg *m)
{
	SL_ASSERT(!d->in_ready);
	return d->ops->step(d->st, m);
}

int sl_drv_read(struct sl_drv *d, uint64_t read_id)
{
	SL_ASSERT(!d->in_ready);
	return d->ops->read != NULL ? d->ops->read(d->st, read_id) : -ENOTSUP;
}

int sl_drv_transfer(struct sl_drv *d, uint32_t target)
{
	SL_ASSERT(!d->in_ready);
	return d->ops->transfer != NULL ? d->ops->transfer(d->st, target) : -ENOTSUP;
}

int sl_drv_seal(struct sl_drv *d, uint64_t pid, const uint8_t *data, uint32_t len)
{
	SL_ASSERT(!d->in_ready);
	return d->ops->seal != NULL ? d->ops->seal(d->st, pid, data, len) : -ENOTSUP;
}

int sl_drv_set_learners(struct sl_drv *d, const uint32_t *ids, uint32_t n)
{
	SL_ASSERT(!d->in_ready);
	return d->ops->set_learners != NULL ? d->ops->set_learners(d->st, ids, n) : -ENOTSUP;
}

uint32_t sl_drv_refusal(int rc)
{
	switch (rc) {
	case -EPERM:
	case -EBUSY:
		return SL_CONS_ACK_NOT_LEADER;
	case -EROFS:
		return SL_CONS_ACK_SEALED;
	case -EIO:
		return SL_CONS_ACK_STORAGE;
	default:
		return SL_CONS_ACK_DROPPED;
	}
}

void sl_drv_tick(struct sl_drv *d, uint64_t now_ns)
{
	SL_ASSERT(!d->in_ready);
	d->ops->tick(d->st, now_ns);
}

/* ---------------------------------------------------------------- held messages */

/* Where `len` contiguous bytes can go in the byte ring, or UINT32_MAX when full. A
 * message never wraps: a tail end too short for it is left unused for this lap. */
static uint32_t bytes_reserve(struct sl_drv *d, uint32_t len)
{
	uint32_t off;
	if (!d->b_wrapped && d->b_cap - d->b_tail >= len) {
		off = d->b_tail;
	} else if (!d->b_wrapped && d->b_head >= len) {
		off = 0;
		d->b_wrapped = true;
	} else if (d->b_wrapped && d->b_head - d->b_tail >= len) {
		off = d->b_tail;
	} else {
		return UINT32_MAX;
	}
	d->b_tail = off + len;
	return off;
}

static void hold(struct sl_drv *d, const struct sl_cons_msg *m, uint64_t pos)
{
	uint32_t off = d->q_len < d->q_cap ? bytes_reserve(d, m->len) : UINT32_MAX;
	if (off == UINT32_MAX) {
		/* a lost message, as the network may lose any: the protocol retries */
		d->stats.msgs_dropped_held++;
		return;
	}
	if (m->len > 0)
		memcpy(d->bytes + off, m->buf, m->len);
	d->q[(d->q_head + d->q_len++) % d->q_cap] =
		(struct held){pos, m->group_id, m->from, m->to, m->len, off};
	d->stats.msgs_held++;
}

static void drop_held(struct sl_drv *d)
{
	d->stats.msgs_dropped_held += d->q_len;
	d->q_len = d->q_head = 0;
	d->b_head = d->b_tail = 0;
	d->b_wrapped = false;
}

/* Frees the oldest held message; the next one's offset is the new start of the bytes. */
static void unhold(struct sl_drv *d)
{
	uint32_t off = d->q[d->q_head].off;
	d->q_head = (d->q_head + 1) % d->q_cap;
	if (--d->q_len == 0) {
		d->q_head = 0;
		d->b_head = d->b_tail = 0;
		d->b_wrapped = false;
		return;
	}
	uint32_t next = d->q[d->q_head].off;
	if (next < off)
		d->b_wrapped = false; /* the start moved back to the front: one lap done */
	d->b_head = next;
}

static void release_held(struct sl_drv *d)
{
	while (d->q_len > 0 && d->q[d->q_head].pos <= d->durable_pos && !d->failed) {
		const struct held *h = &d->q[d->q_head];
		struct sl_cons_msg m = {h->group_id, h->from, h->to, h->len, d->bytes + h->off};
		d->host.send(d->host.ctx, &m);
		d->stats.msgs_sent++;
		unhold(d);
	}
}

/* ---------------------------------------------------------------- one ready */

static void fail_storage(struct sl_drv *d, uint64_t index, int err)
{
	d->stats.storage_failures++;
	d->failed = true;
	drop_held(d);
	if (d->in_ready) {
		/* keep the lowest index named (0: the log's end, resolved after advance) */
		if (!d->fail_pending || d->fail_index == 0 || (index != 0 && index < d->fail_index))
			d->fail_index = index;
		d->fail_pending = true;
		d->fail_err = err;
	} else {
		d->ops->storage_failed(d->st, index, err);
	}
}

static void run_ready(struct sl_drv *d)
{
	struct sl_cons_ready rd;
	d->ops->ready(d->st, &rd);
	d->in_ready = true;
	d->stats.readies++;
	/* 0. a snapshot replaces the state machine before any entry after it is stored */
	bool snap_durable = false;
	if (rd.has_snapshot && !d->failed) {
		int rc = d->host.install_snapshot(d->host.ctx, &rd.snapshot);
		if (rc != 0) {
			fail_storage(d, rd.snapshot.index, rc);
		} else {
			d->stats.snapshots_installed++;
			snap_durable = true;
			if (rd.snapshot.index > d->floor)
				d->floor = rd.snapshot.index;
			if (rd.snapshot.index > d->applied)
				d->applied = rd.snapshot.index;
		}
	}
	/* 1. entries, then hard state: storage keeps a prefix of what it was handed, so a
	 * hard state that survives a crash never names a commit index whose entries (a
	 * replaced suffix) were lost behind it */
	for (uint32_t i = 0; i < rd.n_persist && !d->failed; i++) {
		uint64_t pos = 0;
		int rc = d->host.save_entry(d->host.ctx, &rd.persist[i], &pos);
		if (rc != 0) {
			fail_storage(d, rd.persist[i].index, rc);
			break;
		}
		if (pos > d->issued_pos)
			d->issued_pos = pos;
		d->stats.entries_saved++;
	}
	if (rd.has_hard_state && !d->failed) {
		uint64_t pos = 0;
		int rc = d->host.save_hard_state(d->host.ctx, &rd.hard_state, &pos);
		if (rc != 0) /* no entry of this ready is known durable; else the log end */
			fail_storage(d, rd.n_persist ? rd.persist[0].index : 0, rc);
		else if (pos > d->issued_pos)
			d->issued_pos = pos;
		d->stats.hard_states_saved += rc == 0;
	}
	/* 2. messages: after every write issued so far is durable when the protocol says so;
	 * behind any message still held either way, so a peer sees them in order */
	uint64_t need = rd.msgs_after_persist ? d->issued_pos : 0;
	for (uint32_t i = 0; i < rd.n_msgs && !d->failed; i++) {
		if (d->q_len == 0 && need <= d->durable_pos) {
			d->host.send(d->host.ctx, &rd.msgs[i]);
			d->stats.msgs_sent++;
		} else {
			hold(d, &rd.msgs[i], need);
		}
	}
	/* 3. committed entries, in order, exactly once */
	for (uint32_t i = 0; i < rd.n_committed; i++) {
		const struct sl_cons_entry *e = &rd.committed[i];
		if (e->index <= d->floor)
			continue; /* in the state machine through a snapshot already */
		SL_ASSERT(e->index == d->applied + 1); /* a gap or a repeat is a protocol bug */
		d->host.apply(d->host.ctx, e);
		d->applied = e->index;
		d->stats.entries_applied++;
	}
	/* 4. acknowledgements and read results */
	for (uint32_t i = 0; i < rd.n_acks; i++)
		d->host.ack(d->host.ctx, &rd.acks[i]);
	d->stats.acks += rd.n_acks;
	for (uint32_t i = 0; i < rd.n_reads && d->host.read != NULL; i++)
		d->host.read(d->host.ctx, &rd.reads[i]);
	d->stats.reads += rd.n_reads;
	d->ops->advance(d->st, &rd);
	d->in_ready = false;
	if (snap_durable) /* the installed snapshot is durable: the log is, up to it */
		d->ops->persisted(d->st, rd.snapshot.term, rd.snapshot.index);
	if (d->fail_pending) {
		d->fail_pending = false;
		if (d->fail_index == 0) { /* only the hard state failed: the log is intact */
			struct sl_cons_status st;
			d->ops->status(d->st, &st);
			d->fail_index = st.last_index + 1;
		}
		d->ops->storage_failed(d->st, d->fail_index, d->fail_err);
	}
	release_held(d); /* durability reported while the ready ran */
}

uint32_t sl_drv_process(struct sl_drv *d, uint32_t max_rounds)
{
	SL_ASSERT(!d->in_ready); /* a host callback must not re-enter the driver */
	uint32_t n = 0;
	while (n < max_rounds && d->ops->has_ready(d->st)) {
		run_ready(d);
		n++;
	}
	return n;
}

void sl_drv_durable(struct sl_drv *d, uint64_t pos)
{
	if (pos > d->durable_pos)
		d->durable_pos = pos;
	if (!d->in_ready)
		release_held(d);
}

void sl_drv_persisted(struct sl_drv *d, uint64_t term, uint64_t index)
{
	SL_ASSERT(!d->in_ready);
	d->ops->persisted(d->st, term, index);
}

void sl_drv_storage_failed(struct sl_drv *d, uint64_t index, int err)
{
	fail_storage(d, index, err);
}

bool sl_drv_has_ready(const struct sl_drv *d) { return d->ops->has_ready(d->st); }
uint64_t sl_drv_applied(const struct sl_drv *d) { return d->applied; }
void sl_drv_status(const struct sl_drv *d, struct sl_cons_status *out)
{
	d->ops->status(d->st, out);
}
void sl_drv_stats(const struct sl_drv *d, struct sl_drv_stats *out) { *out = d->stats; }
const char *sl_drv_protocol(const struct sl_drv *d) { return d->ops->name; }
void *sl_drv_instance(const struct sl_drv *d) { return d->st; }
