/* interact.c - data-driven interaction tests for consensus/raft.c, in the shape of
 * etcd-io/raft's testdata: a script drives in-memory replicas, a held network and per-node
 * clocks; every command's output is compared with the expected text in the file (or
 * written back with --rewrite). The script language is described in README.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "raft.h"

#define MAX_NODES SL_CONS_MAX_PEERS
#define MAX_ARGS 16
#define ET_NS 1000000000ull /* election timeout: 1 s */
#define HB_NS 100000000ull  /* heartbeat interval: 100 ms */
#define STABILIZE_ROUNDS 1000u
#define CAMPAIGN_STEPS 40u /* heartbeat steps: past any election deadline (< 2 ET) */
#define NET_MAX 4096u

/* ---- output buffer of the current command ---- */

static char *out_buf;
static size_t out_len, out_cap;

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(out_buf + out_len, out_cap - out_len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < out_cap - out_len) {
			out_len += (size_t)n;
			return;
		}
		out_cap = out_cap * 2 + (size_t)n + 1;
		out_buf = realloc(out_buf, out_cap);
		if (out_buf == NULL) {
			perror("realloc");
			exit(2);
		}
	}
}

static void *xalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (p == NULL) {
		perror("calloc");
		exit(2);
	}
	return p;
}

static const char *err_name(int rc)
{
	static char buf[32];
	static const struct {
		int e;
		const char *n;
	} names[] = {{EPERM, "EPERM"},	 {EBUSY, "EBUSY"},     {ENOBUFS, "ENOBUFS"},
		     {EIO, "EIO"},	 {EMSGSIZE, "EMSGSIZE"}, {EINVAL, "EINVAL"},
		     {EAGAIN, "EAGAIN"}, {EBADMSG, "EBADMSG"}, {ENOENT, "ENOENT"},
		     {EROFS, "EROFS"},	 {EALREADY, "EALREADY"}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (-rc == names[i].e)
			return names[i].n;
	snprintf(buf, sizeof(buf), "errno %d", -rc);
	return buf;
}

/* ---- per-node storage: the durable log, hard state and snapshot ---- */

struct ent {
	uint64_t term, pid;
	uint32_t type, len;
	uint8_t *data;
};

struct store {
	uint64_t base_index, base_term; /* covered by the snapshot */
	struct ent *e;
	uint64_t n, cap;
	bool has_snap;
	struct sl_cons_conf snap_conf;
	uint8_t *snap_data;
	uint32_t snap_len;
	struct sl_cons_hard_state hs;
};

static void store_truncate(struct store *st, uint64_t keep)
{
	while (st->n > keep)
		free(st->e[--st->n].data);
}

static void store_append(struct store *st, const struct sl_cons_entry *e)
{
	uint64_t keep = e->index - st->base_index - 1;
	if (e->index <= st->base_index || keep > st->n) {
		fprintf(stderr, "interact: persist of %" PRIu64 " leaves a gap\n", e->index);
		exit(2);
	}
	store_truncate(st, keep);
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 16;
		st->e = realloc(st->e, st->cap * sizeof(*st->e));
		if (st->e == NULL)
			exit(2);
	}
	struct ent *x = &st->e[st->n++];
	*x = (struct ent){e->term, e->proposal_id, e->type, e->len, xalloc(e->len)};
	if (e->len)
		memcpy(x->data, e->data, e->len);
}

static void store_snapshot(struct store *st, const struct sl_cons_snapshot *sn, bool drop_all)
{
	/* a snapshot installed from the leader replaces the log; one cut here keeps the tail */
	uint64_t drop = drop_all || sn->index - st->base_index > st->n ? st->n
								       : sn->index - st->base_index;
	for (uint64_t i = 0; i < drop; i++)
		free(st->e[i].data);
	memmove(st->e, st->e + drop, (st->n - drop) * sizeof(*st->e));
	st->n -= drop;
	st->base_index = sn->index;
	st->base_term = sn->term;
	st->has_snap = true;
	st->snap_conf = sn->conf;
	free(st->snap_data);
	st->snap_data = xalloc(sn->len);
	if (sn->len)
		memcpy(st->snap_data, sn->data, sn->len);
	st->snap_len = sn->len;
}

static uint64_t lg_first(void *c) { return ((struct store *)c)->base_index + 1; }
static uint64_t lg_last(void *c)
{
	struct store *st = c;
	return st->base_index + st->n;
}

static int lg_term(void *c, uint64_t i, uint64_t *t)
{
	struct store *st = c;
	if (i == st->base_index) {
		*t = st->base_term;
		return 0;
	}
	if (i < st->base_index || i > st->base_index + st->n)
		return -ENOENT;
	*t = st->e[i - st->base_index - 1].term;
	return 0;
}

static int lg_entry(void *c, uint64_t i, struct sl_cons_entry *out)
{
	struct store *st = c;
	if (i <= st->base_index || i > st->base_index + st->n)
		return -ENOENT;
	const struct ent *x = &st->e[i - st->base_index - 1];
	*out = (struct sl_cons_entry){x->term, i, x->pid, x->type, x->len, x->data};
	return 0;
}

static int lg_snapshot(void *c, struct sl_cons_snapshot *out)
{
	struct store *st = c;
	if (!st->has_snap)
		return -ENOENT;
	*out = (struct sl_cons_snapshot){st->base_index, st->base_term, st->snap_conf,
					 st->snap_len, st->snap_data};
	return 0;
}

/* ---- nodes, network, partitions ---- */

struct node {
	uint32_t id;
	void *raft;
	struct store st;
	struct sl_cons_log log;
	uint64_t now;
	char *sm; /* the state machine: applied payloads joined by ',' */
	size_t sm_len;
	uint64_t next_read_id;
	/* what was last reported, so only changes are printed */
	struct sl_cons_status seen;
	struct sl_raft_stats seen_st;
	bool precand; /* in a pre-vote round */
	/* what it was created with, for a restart */
	struct sl_cons_config cfg;
	struct sl_raft_opts opts;
};

struct netmsg {
	uint32_t from, to;
	uint32_t len;
	uint8_t *buf;
};

static struct node *nodes[MAX_NODES + 1]; /* by id */
static const struct sl_cons_ops *ops;
static struct netmsg net[NET_MAX];
static uint32_t net_n;
static uint32_t part_of[MAX_NODES + 1]; /* partition group per node; 0 everywhere: healed */
static uint64_t next_pid = 1;

static const char *role_name(const struct node *nd, uint32_t role)
{
	switch (role) {
	case SL_CONS_ROLE_LEADER:
		return "leader";
	case SL_CONS_ROLE_CANDIDATE:
		return nd->precand ? "pre-candidate" : "candidate";
	case SL_CONS_ROLE_LEARNER:
		return "learner";
	default:
		return "follower";
	}
}

/* Print what changed in a replica since the last report (etcd prints its INFO log). */
static void report(struct node *nd)
{
	struct sl_cons_status s;
	struct sl_raft_stats st;
	ops->status(nd->raft, &s);
	sl_raft_stats(nd->raft, &st);
	const struct sl_raft_stats *o = &nd->seen_st;
	if (st.check_quorum_stepdowns > o->check_quorum_stepdowns)
		outf("  INFO %u steps down: no quorum of voters heard within an election "
		     "timeout\n",
		     nd->id);
	if (st.pre_votes > o->pre_votes)
		outf("  INFO %u starts a pre-vote for term %" PRIu64 "\n", nd->id,
		     (st.elections > o->elections ? s.term - 1 : s.term) + 1);
	if (st.elections > o->elections)
		outf("  INFO %u starts an election at term %" PRIu64 "\n", nd->id, s.term);
	if (st.snapshots_installed > o->snapshots_installed)
		outf("  INFO %u installs a snapshot at index %" PRIu64 "\n", nd->id,
		     s.commit_index);
	/* consensus.h has one candidate role: a pre-vote round without an election since is
	 * the pre-candidate */
	bool pre = nd->precand;
	if (st.elections > o->elections || s.role != SL_CONS_ROLE_CANDIDATE)
		nd->precand = false;
	else if (st.pre_votes > o->pre_votes)
		nd->precand = true;
	bool changed = s.role != nd->seen.role || s.term != nd->seen.term ||
		       s.leader != nd->seen.leader || pre != nd->precand;
	nd->seen_st = st;
	if (changed) {
		outf("  INFO %u is %s at term %" PRIu64, nd->id, role_name(nd, s.role), s.term);
		if (s.role != SL_CONS_ROLE_LEADER && s.role != SL_CONS_ROLE_CANDIDATE)
			outf(s.leader ? ", leader %u\n" : ", no leader\n", s.leader);
		else
			outf("\n");
	}
	nd->seen = s;
}

static void conf_str(const struct sl_cons_conf *c, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "Voters:(");
	for (uint32_t i = 0; i < c->n_voters && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%u", i ? "," : "", c->voters[i]);
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n, ") Learners:(");
	for (uint32_t i = 0; i < c->n_learners && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%u", i ? "," : "", c->learners[i]);
	if (n < cap)
		snprintf(buf + n, cap - n, ")");
}

static void print_msg(uint32_t from, uint32_t to, const uint8_t *buf, uint32_t len,
		      const char *suffix)
{
	char d[4096];
	sl_raft_msg_describe(buf, len, d, sizeof(d));
	outf("  %u->%u %s%s\n", from, to, d, suffix);
}

static void print_entry(const char *indent, const struct sl_cons_entry *e)
{
	char d[512];
	sl_raft_entry_describe(e->type, e->data, e->len, d, sizeof(d));
	outf("%s%" PRIu64 "/%" PRIu64 " %s\n", indent, e->term, e->index, d);
}

static void sm_apply(struct node *nd, const uint8_t *data, uint32_t len)
{
	nd->sm = realloc(nd->sm, nd->sm_len + len + 2);
	if (nd->sm == NULL)
		exit(2);
	if (nd->sm_len)
		nd->sm[nd->sm_len++] = ',';
	memcpy(nd->sm + nd->sm_len, data, len);
	nd->sm_len += len;
	nd->sm[nd->sm_len] = '\0';
}

static void sm_restore(struct node *nd, const uint8_t *data, uint32_t len)
{
	nd->sm_len = 0;
	if (len)
		sm_apply(nd, data, len);
	else if (nd->sm)
		nd->sm[0] = '\0';
}

/* One ready: print it, persist, hand the messages to the network, apply, advance. */
static void process_ready(struct node *nd)
{
	struct sl_cons_ready rd;
	ops->ready(nd->raft, &rd);
	outf("> %u handling Ready\n", nd->id);
	if (rd.has_snapshot) {
		char c[256];
		conf_str(&rd.snapshot.conf, c, sizeof(c));
		outf("  Snapshot %" PRIu64 "/%" PRIu64 " %s Data:\"%.*s\"\n", rd.snapshot.term,
		     rd.snapshot.index, c, (int)rd.snapshot.len, (const char *)rd.snapshot.data);
		store_snapshot(&nd->st, &rd.snapshot, true);
		sm_restore(nd, rd.snapshot.data, rd.snapshot.len);
	}
	if (rd.has_hard_state) {
		outf("  HardState Term:%" PRIu64 " Vote:%u Commit:%" PRIu64 "\n",
		     rd.hard_state.term, rd.hard_state.vote, rd.hard_state.commit);
		nd->st.hs = rd.hard_state;
	}
	if (rd.n_persist) {
		outf("  Entries:\n");
		for (uint32_t i = 0; i < rd.n_persist; i++) {
			print_entry("  ", &rd.persist[i]);
			store_append(&nd->st, &rd.persist[i]);
		}
	}
	if (rd.n_msgs) {
		outf("  Messages%s:\n", rd.msgs_after_persist ? " (after persist)" : "");
		for (uint32_t i = 0; i < rd.n_msgs; i++) {
			const struct sl_cons_msg *m = &rd.msgs[i];
			print_msg(m->from, m->to, m->buf, m->len, "");
			if (net_n == NET_MAX) {
				fprintf(stderr, "interact: network full (%u messages)\n", NET_MAX);
				exit(2);
			}
			struct netmsg *x = &net[net_n++];
			*x = (struct netmsg){m->from, m->to, m->len, xalloc(m->len)};
			memcpy(x->buf, m->buf, m->len);
		}
	}
	if (rd.n_committed) {
		outf("  Committed:\n");
		for (uint32_t i = 0; i < rd.n_committed; i++) {
			print_entry("  ", &rd.committed[i]);
			if (rd.committed[i].type == SL_CONS_ENTRY_NORMAL)
				sm_apply(nd, rd.committed[i].data, rd.committed[i].len);
		}
	}
	static const char *const ack_names[8] = {"ok",	    "not leader", "dropped",
						 "storage", "sealed",	  "?", "?", "?"};
	if (rd.n_acks) {
		outf("  Acks:\n");
		for (uint32_t i = 0; i < rd.n_acks; i++)
			outf("  proposal %" PRIu64 " index %" PRIu64 ": %s\n", rd.acks[i].proposal_id,
			     rd.acks[i].index, ack_names[rd.acks[i].status & 7]);
	}
	if (rd.n_reads) {
		outf("  Reads:\n");
		for (uint32_t i = 0; i < rd.n_reads; i++)
			outf("  read %" PRIu64 " index %" PRIu64 ": %s\n", rd.reads[i].read_id,
			     rd.reads[i].index, ack_names[rd.reads[i].status & 7]);
	}
	uint64_t pt = 0, pi = 0;
	if (rd.n_persist) {
		pt = rd.persist[rd.n_persist - 1].term;
		pi = rd.persist[rd.n_persist - 1].index;
	} else if (rd.has_snapshot) {
		pt = rd.snapshot.term;
		pi = rd.snapshot.index;
	}
	ops->advance(nd->raft, &rd);
	/* storage here is synchronous: everything this ready wrote is durable now */
	if (pi)
		ops->persisted(nd->raft, pt, pi);
	report(nd);
}

static bool deliverable(const struct netmsg *m)
{
	return part_of[m->from] == part_of[m->to] && nodes[m->to] != NULL;
}

/* Deliver (or drop) the messages held for `to`, in send order; the answers they cause
 * stay in the replica until its next ready. Returns how many were taken. */
static uint32_t deliver_to(uint32_t to, bool drop)
{
	uint32_t n0 = net_n, k = 0, n_mine = 0;
	struct netmsg *mine = xalloc(sizeof(*mine) * (n0 ? n0 : 1));
	for (uint32_t i = 0; i < n0; i++) {
		if (net[i].to == to)
			mine[n_mine++] = net[i];
		else
			net[k++] = net[i];
	}
	net_n = k;
	int mode = 0; /* header printed: 1 dropped, 2 receiving */
	for (uint32_t i = 0; i < n_mine; i++) {
		struct netmsg *m = &mine[i];
		if (drop || !deliverable(m)) {
			if (mode != 1)
				outf("> dropped\n");
			mode = 1;
			print_msg(m->from, m->to, m->buf, m->len,
				  drop		       ? ""
				  : nodes[m->to] == NULL ? " (no such node)"
							 : " (partitioned)");
		} else {
			if (mode != 2)
				outf("> %u receiving messages\n", m->to);
			mode = 2;
			print_msg(m->from, m->to, m->buf, m->len, "");
			struct node *nd = nodes[m->to];
			struct sl_cons_msg sm = {1, m->from, m->to, m->len, m->buf};
			int rc = ops->step(nd->raft, &sm);
			if (rc != 0)
				outf("  step refused: -%s\n", err_name(rc));
			report(nd);
		}
		free(m->buf);
	}
	free(mine);
	return n_mine;
}

/* Every held message, destination by destination (ids ascending). */
static uint32_t deliver_all(void)
{
	uint32_t n = 0;
	for (uint32_t id = 1; id <= MAX_NODES; id++)
		n += deliver_to(id, false);
	return n;
}

/* ---- script arguments ---- */

struct args {
	int n;
	char *pos[MAX_ARGS]; /* positional words */
	int nkv;
	char *key[MAX_ARGS], *val[MAX_ARGS];
};

static void split_args(char *line, struct args *a)
{
	memset(a, 0, sizeof(*a));
	for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t")) {
		char *eq = strchr(tok, '=');
		if (eq && a->nkv < MAX_ARGS) {
			*eq = '\0';
			a->key[a->nkv] = tok;
			a->val[a->nkv++] = eq + 1;
		} else if (!eq && a->n < MAX_ARGS) {
			a->pos[a->n++] = tok;
		}
	}
}

static const char *kv(const struct args *a, const char *key)
{
	for (int i = 0; i < a->nkv; i++)
		if (strcmp(a->key[i], key) == 0)
			return a->val[i];
	return NULL;
}

/* "(1,2,3)" or "1,2,3" or "()" into ids; -1 on a bad list. */
static int parse_ids(const char *s, uint32_t *ids, uint32_t max)
{
	uint32_t n = 0;
	if (s == NULL)
		return 0;
	for (const char *p = s; *p;) {
		if (*p == '(' || *p == ')' || *p == ',') {
			p++;
			continue;
		}
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || v == 0 || v > MAX_NODES || n == max)
			return -1;
		ids[n++] = (uint32_t)v;
		p = end;
	}
	return (int)n;
}

static struct node *node_arg(const char *s)
{
	unsigned long id = s ? strtoul(s, NULL, 10) : 0;
	if (id == 0 || id > MAX_NODES || nodes[id] == NULL) {
		outf("error: no node %s\n", s ? s : "(missing)");
		return NULL;
	}
	return nodes[id];
}

/* ---- commands ---- */

static void tick_to(struct node *nd, uint64_t now)
{
	nd->now = now;
	ops->tick(nd->raft, now);
	report(nd);
}

/* A long quiet stretch: a node ticks every millisecond, so the first tick after a message
 * (which stamps a leader's contact, raft.c heard_leader) comes 1 ms later; then the rest
 * of the stretch in one step (one heartbeat round at most, not one per interval). */
static void quiet_for(struct node *nd, uint64_t ns)
{
	if (ns > 1000000ull) {
		tick_to(nd, nd->now + 1000000ull);
		ns -= 1000000ull;
	}
	tick_to(nd, nd->now + ns);
}

static int cmd_add_nodes(const struct args *a)
{
	unsigned long count = a->n > 1 ? strtoul(a->pos[1], NULL, 10) : 0;
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int nv = parse_ids(kv(a, "voters"), cfg.voters, MAX_NODES);
	int nl = parse_ids(kv(a, "learners"), cfg.learners, MAX_NODES);
	if (count == 0 || nv < 0 || nl < 0) {
		outf("error: add-nodes COUNT voters=(..) learners=(..)\n");
		return -1;
	}
	cfg.n_voters = (uint32_t)nv;
	cfg.n_learners = (uint32_t)nl;
	cfg.group_id = 1;
	cfg.seed = 42;
	cfg.election_timeout_ns = ET_NS;
	cfg.heartbeat_interval_ns = HB_NS;
	struct sl_raft_opts o;
	memset(&o, 0, sizeof(o));
	const char *lease = kv(a, "lease");
	o.lease_reads = lease && strcmp(lease, "true") == 0;
	cfg.proto_opts = &o;
	const char *batch = kv(a, "max-batch");
	cfg.max_batch_entries = batch ? (uint32_t)strtoul(batch, NULL, 10) : 0;
	for (unsigned long k = 0; k < count; k++) {
		uint32_t id = 1;
		while (id <= MAX_NODES && nodes[id])
			id++;
		if (id > MAX_NODES) {
			outf("error: more than %u nodes\n", MAX_NODES);
			return -1;
		}
		struct node *nd = xalloc(sizeof(*nd));
		nd->id = id;
		nd->log = (struct sl_cons_log){&nd->st, lg_first, lg_last, lg_term, lg_entry,
					       lg_snapshot};
		nd->opts = o;
		nd->cfg = cfg;
		nd->cfg.self = id;
		nd->cfg.log = &nd->log;
		nd->cfg.proto_opts = &nd->opts;
		int rc = ops->create(&nd->cfg, &nd->raft);
		if (rc != 0) {
			outf("error: create %u: -%s\n", id, err_name(rc));
			free(nd);
			return -1;
		}
		nodes[id] = nd;
		ops->status(nd->raft, &nd->seen);
		/* boot at 0, then one election timeout later: past the restart lease (a replica
		 * refuses votes for that long after it starts) and before any election timer
		 * can fire (they are drawn in [ET, 2 ET)) */
		ops->tick(nd->raft, 0);
		tick_to(nd, ET_NS);
		char c[256];
		struct sl_cons_conf conf;
		sl_raft_conf(nd->raft, &conf);
		conf_str(&conf, c, sizeof(c));
		outf("  INFO %u created: %s\n", id, c);
	}
	return 0;
}

static void print_state(struct node *nd)
{
	struct sl_cons_status s;
	struct sl_cons_conf c;
	char cs[256];
	ops->status(nd->raft, &s);
	sl_raft_conf(nd->raft, &c);
	conf_str(&c, cs, sizeof(cs));
	const char *r = s.role == SL_CONS_ROLE_LEADER	   ? "StateLeader"
			: s.role == SL_CONS_ROLE_CANDIDATE ? "StateCandidate"
			: s.role == SL_CONS_ROLE_LEARNER   ? "StateLearner"
							   : "StateFollower";
	char sealed[40] = "";
	if (s.sealed_index != 0)
		snprintf(sealed, sizeof(sealed), " Sealed:%" PRIu64, s.sealed_index);
	outf("%u: %s Term:%" PRIu64 " Lead:%u Commit:%" PRIu64 " Applied:%" PRIu64
	     " Last:%" PRIu64 " %s%s%s\n",
	     nd->id, r, s.term, s.leader, s.commit_index, s.applied_index, s.last_index, cs,
	     sl_raft_lease_valid(nd->raft) ? " Lease" : "", sealed);
}

/* A crash and restart: the replica loses everything but its storage (which is synchronous
 * here, so every handled ready survives) and comes back on the same clock; messages in
 * flight stay in the network. Its state machine is rebuilt from the snapshot, then from
 * the committed entries raft hands out again. */
static int cmd_restart(struct node *nd)
{
	ops->destroy(nd->raft);
	nd->raft = NULL;
	nd->cfg.initial = nd->st.hs;
	int rc = ops->create(&nd->cfg, &nd->raft);
	if (rc != 0) {
		outf("error: restart %u: -%s\n", nd->id, err_name(rc));
		exit(2); /* the world cannot go on without the node */
	}
	sm_restore(nd, nd->st.snap_data, nd->st.has_snap ? nd->st.snap_len : 0);
	nd->precand = false;
	ops->tick(nd->raft, nd->now); /* boot: a replica ignores votes for an election timeout */
	report(nd);
	struct sl_cons_status s;
	ops->status(nd->raft, &s);
	outf("  INFO %u restarted: term %" PRIu64 ", vote %u, commit %" PRIu64
	     ", log %" PRIu64 "..%" PRIu64 "\n",
	     nd->id, s.term, nd->st.hs.vote, s.commit_index, nd->st.base_index + 1,
	     s.last_index);
	return 0;
}

static int cmd_campaign(struct node *nd)
{
	struct sl_raft_stats st;
	for (uint32_t i = 0; i < CAMPAIGN_STEPS; i++) {
		uint64_t before = nd->seen_st.pre_votes + nd->seen_st.elections;
		tick_to(nd, nd->now + HB_NS);
		sl_raft_stats(nd->raft, &st);
		if (st.pre_votes + st.elections > before)
			return 0;
	}
	outf("error: %u did not campaign within %u heartbeat intervals\n", nd->id,
	     CAMPAIGN_STEPS);
	return -1;
}

static int run_cmd(char *line)
{
	struct args a;
	split_args(line, &a);
	if (a.n == 0)
		return -1;
	const char *c = a.pos[0];
	struct node *nd = NULL;
	if (strcmp(c, "add-nodes") == 0)
		return cmd_add_nodes(&a);
	if (strcmp(c, "raft-state") == 0) {
		for (uint32_t id = 1; id <= MAX_NODES; id++)
			if (nodes[id])
				print_state(nodes[id]);
		return 0;
	}
	if (strcmp(c, "stabilize") == 0) {
		for (uint32_t r = 0; r < STABILIZE_ROUNDS; r++) {
			bool any = false;
			for (uint32_t id = 1; id <= MAX_NODES; id++)
				if (nodes[id] && ops->has_ready(nodes[id]->raft)) {
					process_ready(nodes[id]);
					any = true;
				}
			if (deliver_all() > 0)
				any = true;
			if (!any)
				return 0;
		}
		outf("error: not stable after %u rounds\n", STABILIZE_ROUNDS);
		return -1;
	}
	if (strcmp(c, "deliver-msgs") == 0) {
		uint32_t drop[MAX_NODES];
		int nd_drop = parse_ids(kv(&a, "drop"), drop, MAX_NODES);
		for (int i = 0; i < nd_drop; i++)
			deliver_to(drop[i], true);
		for (int i = 1; i < a.n; i++)
			if ((nd = node_arg(a.pos[i])) != NULL)
				deliver_to(nd->id, false);
		if (a.n == 1 && nd_drop <= 0)
			deliver_all();
		return 0;
	}
	if (strcmp(c, "process-ready") == 0) {
		for (int i = 1; i < a.n; i++) {
			if ((nd = node_arg(a.pos[i])) == NULL)
				return -1;
			if (ops->has_ready(nd->raft))
				process_ready(nd);
			else
				outf("> %u has no Ready\n", nd->id);
		}
		return 0;
	}
	if (strcmp(c, "partition") == 0) {
		/* partition (1) (2,3): each parenthesized group is one side */
		memset(part_of, 0, sizeof(part_of));
		for (int i = 1; i < a.n; i++) {
			uint32_t ids[MAX_NODES];
			int n = parse_ids(a.pos[i], ids, MAX_NODES);
			for (int k = 0; k < n; k++)
				part_of[ids[k]] = (uint32_t)i;
		}
		return 0;
	}
	if (strcmp(c, "heal") == 0) {
		memset(part_of, 0, sizeof(part_of));
		return 0;
	}
	if (a.n < 2 || (nd = node_arg(a.pos[1])) == NULL) {
		if (a.n < 2)
			outf("error: %s needs a node id\n", c);
		return -1;
	}
	int rc = 0;
	if (strcmp(c, "campaign") == 0) {
		return cmd_campaign(nd);
	} else if (strcmp(c, "restart") == 0) {
		return cmd_restart(nd);
	} else if (strcmp(c, "tick-heartbeat") == 0) {
		unsigned long n = a.n > 2 ? strtoul(a.pos[2], NULL, 10) : 1;
		for (unsigned long i = 0; i < n && i < 1000; i++)
			tick_to(nd, nd->now + HB_NS);
	} else if (strcmp(c, "tick-election") == 0) {
		quiet_for(nd, 2 * ET_NS);
	} else if (strcmp(c, "advance") == 0) {
		const char *ms = kv(&a, "ms");
		if (ms == NULL) {
			outf("error: advance ID ms=N\n");
			return -1;
		}
		quiet_for(nd, strtoull(ms, NULL, 10) * 1000000ull);
	} else if (strcmp(c, "propose") == 0) {
		const char *d = a.n > 2 ? a.pos[2] : "";
		uint64_t pid = next_pid; /* a refused proposal does not use up an id */
		rc = ops->propose(nd->raft, pid, (const uint8_t *)d, (uint32_t)strlen(d));
		if (rc == 0)
			outf("proposal %" PRIu64 "\n", next_pid++);
		report(nd);
	} else if (strcmp(c, "seal") == 0) {
		const char *d = a.n > 2 ? a.pos[2] : "";
		rc = ops->seal(nd->raft, next_pid, (const uint8_t *)d, (uint32_t)strlen(d));
		if (rc == 0)
			outf("proposal %" PRIu64 "\n", next_pid++);
		report(nd);
	} else if (strcmp(c, "add-learner") == 0 || strcmp(c, "promote") == 0 ||
		   strcmp(c, "remove") == 0) {
		enum sl_raft_change_op op = c[0] == 'a'   ? SL_RAFT_ADD_LEARNER
					    : c[0] == 'p' ? SL_RAFT_PROMOTE
							  : SL_RAFT_REMOVE;
		unsigned long target = a.n > 2 ? strtoul(a.pos[2], NULL, 10) : 0;
		rc = sl_raft_change(nd->raft, next_pid, op, (uint32_t)target);
		if (rc == 0)
			outf("proposal %" PRIu64 "\n", next_pid++);
		report(nd);
	} else if (strcmp(c, "transfer-leader") == 0) {
		unsigned long target = a.n > 2 ? strtoul(a.pos[2], NULL, 10) : 0;
		rc = sl_raft_transfer_leader(nd->raft, (uint32_t)target);
		report(nd);
	} else if (strcmp(c, "read-index") == 0) {
		const char *lease = kv(&a, "lease");
		uint64_t id = ++nd->next_read_id;
		rc = sl_raft_read_index(nd->raft, id, lease && strcmp(lease, "true") == 0);
		if (rc == 0)
			outf("read %" PRIu64 "\n", id);
		report(nd);
	} else if (strcmp(c, "snapshot") == 0) {
		struct sl_cons_status s;
		struct sl_cons_snapshot meta;
		ops->status(nd->raft, &s);
		rc = sl_raft_snapshot_meta(nd->raft, s.applied_index, &meta);
		if (rc == 0) {
			meta.data = (const uint8_t *)(nd->sm ? nd->sm : "");
			meta.len = (uint32_t)nd->sm_len;
			store_snapshot(&nd->st, &meta, false);
			char cs[256];
			conf_str(&meta.conf, cs, sizeof(cs));
			outf("snapshot %" PRIu64 "/%" PRIu64 " %s Data:\"%s\"; log compacted\n",
			     meta.term, meta.index, cs, nd->sm ? nd->sm : "");
		}
	} else if (strcmp(c, "raft-log") == 0) {
		struct store *st = &nd->st;
		if (st->has_snap)
			outf("snapshot %" PRIu64 "/%" PRIu64 "\n", st->base_term, st->base_index);
		for (uint64_t i = 0; i < st->n; i++) {
			const struct ent *x = &st->e[i];
			struct sl_cons_entry e = {x->term, st->base_index + 1 + i, x->pid,
						  x->type, x->len, x->data};
			print_entry("", &e);
		}
		if (st->n == 0 && !st->has_snap)
			outf("log is empty\n");
	} else if (strcmp(c, "state-machine") == 0) {
		outf("%u: \"%s\"\n", nd->id, nd->sm ? nd->sm : "");
	} else if (strcmp(c, "stats") == 0) {
		struct sl_raft_stats s;
		sl_raft_stats(nd->raft, &s);
		outf("%u: pre_votes:%" PRIu64 " elections:%" PRIu64 " leader_terms:%" PRIu64
		     " check_quorum_stepdowns:%" PRIu64 " transfers:%" PRIu64
		     " snapshots_sent:%" PRIu64 " snapshots_installed:%" PRIu64
		     " reads_index:%" PRIu64 " reads_lease:%" PRIu64 " appends_rejected:%" PRIu64
		     " truncations:%" PRIu64 " conf_changes:%" PRIu64 "\n",
		     nd->id, s.pre_votes, s.elections, s.leader_terms, s.check_quorum_stepdowns,
		     s.transfers, s.snapshots_sent, s.snapshots_installed, s.reads_index,
		     s.reads_lease, s.appends_rejected, s.truncations, s.conf_changes);
	} else {
		outf("error: unknown command %s\n", c);
		return -1;
	}
	if (rc != 0)
		outf("refused: -%s\n", err_name(rc));
	return 0;
}

static void reset_world(void)
{
	for (uint32_t id = 1; id <= MAX_NODES; id++) {
		struct node *nd = nodes[id];
		if (nd == NULL)
			continue;
		ops->destroy(nd->raft);
		store_truncate(&nd->st, 0);
		free(nd->st.e);
		free(nd->st.snap_data);
		free(nd->sm);
		free(nd);
		nodes[id] = NULL;
	}
	for (uint32_t i = 0; i < net_n; i++)
		free(net[i].buf);
	net_n = 0;
	memset(part_of, 0, sizeof(part_of));
	next_pid = 1;
}

/* ---- the datadriven file format ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *b = xalloc(cap);
	size_t r;
	while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap) {
			cap *= 2;
			b = realloc(b, cap);
			if (b == NULL)
				exit(2);
		}
	}
	fclose(f);
	b[n] = '\0';
	return b;
}

/* Runs one file: every case's command, its output compared with the expected block.
 * Returns the number of mismatches; with `rewrite`, writes the actual outputs back. */
static int run_file(const char *path, bool rewrite)
{
	char *text = read_file(path);
	if (text == NULL) {
		fprintf(stderr, "interact: cannot read %s\n", path);
		return 1;
	}
	reset_world();
	size_t rcap = strlen(text) * 2 + 4096, rlen = 0;
	char *res = xalloc(rcap);
#define EMIT(s, n)                                                                                 \
	do {                                                                                       \
		size_t n_ = (n);                                                                   \
		while (rlen + n_ + 1 > rcap) {                                                     \
			rcap *= 2;                                                                 \
			res = realloc(res, rcap);                                                  \
			if (res == NULL)                                                           \
				exit(2);                                                           \
		}                                                                                  \
		memcpy(res + rlen, (s), n_);                                                       \
		rlen += n_;                                                                        \
		res[rlen] = '\0';                                                                  \
	} while (0)
	int bad = 0, lineno = 0;
	char *p = text;
	while (*p) {
		char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		char *next = nl ? nl + 1 : p + ll;
		lineno++;
		if (ll == 0 || p[0] == '#') {
			EMIT(p, ll);
			EMIT("\n", 1);
			p = next;
			continue;
		}
		/* a case: the command, "----", the expected output up to a blank line */
		char cmd[1024];
		int cmd_line = lineno;
		snprintf(cmd, sizeof(cmd), "%.*s", (int)(ll < sizeof(cmd) - 1 ? ll : sizeof(cmd) - 1),
			 p);
		p = next;
		if (strncmp(p, "----\n", 5) != 0 && strcmp(p, "----") != 0) {
			fprintf(stderr, "%s:%d: expected ---- after the command\n", path, cmd_line);
			free(text);
			free(res);
			return 1;
		}
		p += p[4] ? 5 : 4;
		lineno++;
		char *exp = p;
		while (*p && *p != '\n') {
			char *e = strchr(p, '\n');
			p = e ? e + 1 : p + strlen(p);
			lineno++;
		}
		size_t exp_len = (size_t)(p - exp);
		if (*p == '\n') {
			p++;
			lineno++;
		}
		out_len = 0;
		if (out_buf == NULL) {
			out_cap = 1 << 16;
			out_buf = xalloc(out_cap);
		}
		out_buf[0] = '\0';
		char work[1024];
		memcpy(work, cmd, sizeof(work));
		run_cmd(work);
		if (out_len == 0)
			outf("ok\n");
		if (out_len != exp_len || memcmp(out_buf, exp, exp_len) != 0) {
			bad++;
			if (!rewrite)
				fprintf(stderr,
					"%s:%d: %s\n--- expected:\n%.*s--- actual:\n%s---\n",
					path, cmd_line, cmd, (int)exp_len, exp, out_buf);
		}
		EMIT(cmd, strlen(cmd));
		EMIT("\n----\n", 6);
		EMIT(out_buf, out_len);
		EMIT("\n", 1);
	}
#undef EMIT
	if (rewrite && bad > 0) {
		FILE *f = fopen(path, "wb");
		if (f == NULL || fwrite(res, 1, rlen, f) != rlen || fclose(f) != 0) {
			fprintf(stderr, "interact: cannot write %s\n", path);
			bad = 1;
		} else {
			printf("%s: rewritten (%d cases changed)\n", path, bad);
			bad = 0;
		}
	}
	free(text);
	free(res);
	reset_world();
	return bad;
}

int main(int argc, char **argv)
{
	bool rewrite = false;
	int files = 0, bad = 0;
	ops = &sl_cons_raft_ops;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rewrite") == 0) {
			rewrite = true;
		} else if (strcmp(argv[i], "--help") == 0) {
			printf("usage: sl-raft-interact [--rewrite] FILE.txt...\n"
			       "Runs raft interaction scripts (tests/raft_interact/README.md); "
			       "--rewrite writes the actual outputs into the files.\n");
			return 0;
		}
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rewrite") == 0)
			continue;
		files++;
		int b = run_file(argv[i], rewrite);
		if (b)
			fprintf(stderr, "%s: %d case(s) differ\n", argv[i], b);
		bad += b;
	}
	free(out_buf);
	if (files == 0) {
		fprintf(stderr, "usage: sl-raft-interact [--rewrite] FILE.txt...\n");
		return 2;
	}
	return bad ? 1 : 0;
}
