/* consensus.c - registry of replication protocols by name, and each protocol's options
 * sized from protocol-neutral host limits. A new protocol adds its ops struct (and, if it
 * has options, one sizing function) here and nowhere else. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "consensus.h"
#include "multileader.h"
#include "raft.h"

_Static_assert(sizeof(struct sl_raft_opts) <= SL_CONS_OPTS_BYTES, "raft options fit");

#define MSG_OVERHEAD (16u << 10) /* headers of one append message around its entry */

static const void *raft_opts(const struct sl_cons_limits *lim, void *buf)
{
	struct sl_raft_opts *o = buf;
	memset(o, 0, sizeof(*o));
	if (lim->max_entry_bytes == 0)
		return NULL;
	uint32_t msg = lim->max_entry_bytes + MSG_OVERHEAD;
	o->max_msg_bytes = msg;
	o->max_unstable_bytes = (lim->max_inflight ? lim->max_inflight : 1u) * msg;
	o->max_apply_bytes = 4u * msg;
	/* a snapshot is a region's whole state, sent in chunks: as large as an image's
	 * length field allows */
	o->max_snapshot_bytes = UINT32_MAX;
	return o;
}

static uint32_t raft_limit(const void *opts) { return sl_raft_max_entry_bytes(opts); }

_Static_assert(sizeof(struct sl_ml_opts) <= SL_CONS_OPTS_BYTES, "multileader options fit");

static const void *ml_opts(const struct sl_cons_limits *lim, void *buf)
{
	struct sl_ml_opts *o = buf;
	memset(o, 0, sizeof(*o));
	if (lim->max_entry_bytes == 0)
		return NULL;
	o->max_entry_bytes = lim->max_entry_bytes;
	/* one batch of the largest entry fits a message; a snapshot, the region's whole
	 * state, travels in chunks of that size and may be as large as its length field */
	o->max_msg_bytes = lim->max_entry_bytes + MSG_OVERHEAD;
	o->max_snapshot_bytes = UINT32_MAX;
	if (lim->max_inflight > 0)
		o->max_pending = o->max_undurable = lim->max_inflight;
	return o;
}

static uint32_t ml_limit(const void *opts) { return sl_ml_max_entry_bytes(opts); }

static const struct {
	const struct sl_cons_ops *ops;
	const void *(*opts)(const struct sl_cons_limits *lim, void *buf); /* NULL: none */
	uint32_t (*entry_limit)(const void *opts); /* NULL: no limit of its own */
	uint32_t max_copies; /* replicas one group may have */
	uint32_t caps;	     /* SL_CONS_CAP_* */
} protocols[] = {
	{&sl_cons_standalone_ops, NULL, NULL, 1, 0},
	{&sl_cons_raft_ops, raft_opts, raft_limit, SL_CONS_MAX_PEERS, SL_CONS_CAP_LEADER},
	{&sl_cons_multileader_ops, ml_opts, ml_limit, SL_CONS_MAX_PEERS, SL_CONS_CAP_MERGE},
};

#define N_PROTOCOLS (sizeof(protocols) / sizeof(protocols[0]))

const struct sl_cons_ops *sl_cons_find(const char *name)
{
	for (size_t i = 0; i < N_PROTOCOLS; i++)
		if (strcmp(protocols[i].ops->name, name) == 0)
			return protocols[i].ops;
	return NULL;
}

const char *sl_cons_default_name(void) { return protocols[0].ops->name; }


uint32_t sl_cons_caps(const struct sl_cons_ops *ops)
{
	for (size_t i = 0; i < N_PROTOCOLS; i++)
		if (protocols[i].ops == ops)
			return protocols[i].caps;
	return 0;
}

uint32_t sl_cons_max_copies(const struct sl_cons_ops *ops)
{
	for (size_t i = 0; i < N_PROTOCOLS; i++)
		if (protocols[i].ops == ops)
			return protocols[i].max_copies;
	return 1;
}

const char *sl_cons_role_name(uint32_t role)
{
	static const char *const names[] = {
		[SL_CONS_ROLE_FOLLOWER] = "follower",	[SL_CONS_ROLE_CANDIDATE] = "candidate",
		[SL_CONS_ROLE_LEADER] = "leader",	[SL_CONS_ROLE_LEARNER] = "learner",
		[SL_CONS_ROLE_REPLICA] = "replica",
	};
	return role < sizeof(names) / sizeof(names[0]) ? names[role] : "unknown";
}

void sl_cons_names(char *buf, size_t len)
{
	size_t at = 0;
	if (len > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < N_PROTOCOLS && at < len; i++) {
		int n = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", protocols[i].ops->name);
		if (n < 0)
			break;
		at += (size_t)n;
	}
}

const void *sl_cons_opts(const struct sl_cons_ops *ops, const struct sl_cons_limits *lim,
			 void *buf)
{
	for (size_t i = 0; i < N_PROTOCOLS; i++)
		if (protocols[i].ops == ops && protocols[i].opts != NULL)
			return protocols[i].opts(lim, buf);
	return NULL;
}

uint32_t sl_cons_entry_limit(const struct sl_cons_ops *ops, const void *opts)
{
	for (size_t i = 0; i < N_PROTOCOLS; i++)
		if (protocols[i].ops == ops && protocols[i].entry_limit != NULL)
			return protocols[i].entry_limit(opts);
	return UINT32_MAX;
}
