/* ctld_conf.c - sluice-ctld's configuration: one key table drives the INI file, the
 * --set overrides and --print-config, and the lists (peers, per-region protocols) are
 * parsed and range-checked once everything is set. No EAL: a plain line parser. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "ctld.h"

enum key_type { K_U32, K_U64, K_STR };

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t off, size;
	uint64_t min, max;
	const char *help;
};

#define U32(sec, nm, field, lo, hi, h)                                                      \
	{sec, nm, K_U32, offsetof(struct sl_ctld_conf, field), 0, lo, hi, h}
#define U64(sec, nm, field, lo, hi, h)                                                      \
	{sec, nm, K_U64, offsetof(struct sl_ctld_conf, field), 0, lo, hi, h}
#define STR(sec, nm, field, h)                                                              \
	{sec, nm, K_STR, offsetof(struct sl_ctld_conf, field),                              \
	 sizeof(((struct sl_ctld_conf *)0)->field), 0, 0, h}

static const struct key keys[] = {
	U32("ctld", "id", id, 1, 255, "this replica's id, one of the ids in peers"),
	STR("ctld", "peers", peers_text,
	    "the ctld replicas, 1 or 3: ID@IPV4:PORT,... (UDP; the own entry is the listen "
	    "address)"),
	STR("ctld", "data_dir", data_dir, "the metadata log and hard state live here"),
	STR("ctld", "ctl_socket", ctl_socket, "ctl socket; empty = <data_dir>/ctld.sock"),
	U32("ctld", "node_timeout_ms", node_timeout_ms, 100, 3600000,
	    "a data node without a heartbeat for this long is marked down"),
	U32("ctld", "learner_timeout_ms", learner_timeout_ms, 1000, 86400000,
	    "a replica move whose new node has not caught up as a learner within this long "
	    "ends failed (nothing is sealed before: the region runs on as it was)"),
	U32("ctld", "election_timeout_ms", election_timeout_ms, 50, 60000,
	    "raft election timeout of the ctld group (heartbeats every tenth of it)"),
	U32("ctld", "balance_interval_ms", balance_interval_ms, 0, 3600000,
	    "leader balance: at most one move this often, when no move is running, of a "
	    "region whose preferred leader is down, or from the node preferred for the most "
	    "regions to a replica preferred for two fewer (regions an operator moved are left "
	    "alone for 10 min); also paces the rebalance and automatic splits (one each per "
	    "interval); 0 = off (all of them)"),
	U32("cluster", "id", cluster.cluster_id, 1, UINT32_MAX - 1,
	    "cluster id (also guards the ctld replicas' UDP messages)"),
	U32("cluster", "nodes", cluster.nodes, 1, SL_CTLD_MAX_NODES,
	    "expected data nodes, ids 1..nodes"),
	U32("cluster", "regions", cluster.regions, 1, SL_CTLD_MAX_REGIONS,
	    "regions (hash ranges of the series id) in the cluster"),
	U32("cluster", "replication", cluster.replication, 1, SL_CTLD_MAX_RF,
	    "replicas per region: 1 or 3 (at most nodes)"),
	U32("cluster", "initial_nodes", cluster.initial_nodes, 0, SL_CTLD_MAX_NODES,
	    "the bootstrap places replicas on nodes 1..initial_nodes only; the others hold "
	    "nothing until the rebalance gives them replicas (0 = all nodes)"),
	U32("cluster", "cores", cluster.cores, 0, SL_CTLD_MAX_CORES,
	    "worker cores of each data node ([eal] workers; region r runs on core r mod cores): "
	    "preferred leaders are spread over the nodes and, on each node, over its cores; "
	    "0 = over the nodes only (the rule a node without ctld derives)"),
	STR("cluster", "protocol", cluster.protocol, "default consensus protocol of a region"),
	STR("cluster", "protocols", protocols_text,
	    "per-region protocol overrides, e.g. 0-3:raft,4-7:standalone (standalone: RF 1)"),
	U64("cluster", "split_bytes", split.bytes, 0, INT64_MAX,
	    "automatic split: a raft or standalone region whose size (the largest a live "
	    "replica reports) stays above this many bytes for split_sustain_ms is split at its "
	    "middle (one split per [ctld] balance_interval_ms, none when that is 0); 0 = off"),
	U64("cluster", "split_points_per_s", split.points_per_s, 0, INT64_MAX,
	    "automatic split: a region whose write rate (points per second, from the points "
	    "its replicas report in heartbeats) stays above this for split_sustain_ms is split "
	    "at its middle, as for split_bytes; 0 = off"),
	U32("cluster", "split_sustain_ms", split.sustain_ms, 0, 86400000,
	    "automatic split: how long a region's size or write rate must stay above its "
	    "threshold (a dip below starts the wait over, as does a new ctld leader); also how "
	    "long a pair must stay below the merge rule"),
	U32("cluster", "regions_target", split.regions_target, 0, SL_CTLD_MAX_REGIONS,
	    "the number of live regions ctld splits or merges toward after the bootstrap, one "
	    "move per [ctld] balance_interval_ms (a split: the widest region at its middle; a "
	    "merge: the narrowest pair of neighbours that may merge); 0 = off"),
	U64("cluster", "merge_bytes", split.merge_bytes, 0, INT64_MAX,
	    "automatic merge: a region and its right neighbour whose sizes add up to less than "
	    "this for split_sustain_ms merge (same replicas, protocol raft or standalone, same "
	    "core on every node; one merge per [ctld] balance_interval_ms, none when that is "
	    "0); at most half of split_bytes when both are set; 0 = off"),
	U64("cluster", "merge_points_per_s", split.merge_points_per_s, 0, INT64_MAX,
	    "automatic merge: the pair's write rates must also add up to less than this "
	    "(points per second; at most half of split_points_per_s when both are set); 0 = "
	    "rates are not looked at"),
	STR("cluster", "balance_by", balance_by_text,
	    "leader balance ([ctld] balance_interval_ms): count = each node (and core) the "
	    "preferred leader of about as many regions; rate = of about as much write rate "
	    "(points per second, from heartbeats): a region of the busiest node moves to a "
	    "lighter replica when that node leads more than balance_rate_slack percent above "
	    "the least busy one"),
	U32("cluster", "balance_rate_slack", balance.rate_slack_pct, 1, 100,
	    "balance_by = rate: the busiest node's load may exceed the least busy node's by "
	    "this percentage of its own before a leader moves"),
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

void sl_ctld_conf_default(struct sl_ctld_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->id = 1;
	snprintf(c->peers_text, sizeof(c->peers_text), "1@127.0.0.1:7610");
	snprintf(c->data_dir, sizeof(c->data_dir), "./ctld-data");
	c->node_timeout_ms = 3000;
	c->learner_timeout_ms = 600000;
	c->election_timeout_ms = 1000;
	c->balance_interval_ms = 10000;
	c->split.sustain_ms = 30000;
	snprintf(c->balance_by_text, sizeof(c->balance_by_text), "count");
	c->balance.rate_slack_pct = 25;
	c->cluster.cluster_id = 1;
	c->cluster.nodes = 1;
	c->cluster.regions = 8;
	c->cluster.replication = 1;
	snprintf(c->cluster.protocol, sizeof(c->cluster.protocol), "%s", sl_cons_default_name());
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

int sl_ctld_conf_set(struct sl_ctld_conf *c, const char *section, const char *key,
		     const char *value, char *err, size_t err_len)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->section, section) != 0 || strcmp(k->name, key) != 0)
			continue;
		char *base = (char *)c + k->off;
		if (k->type == K_STR) {
			size_t n = strlen(value);
			if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
				value++; /* quotes are allowed around a string */
				n -= 2;
			}
			if (n >= k->size) {
				snprintf(err, err_len, "[%s] %s: value longer than %zu bytes",
					 section, key, k->size - 1);
				return -EINVAL;
			}
			memcpy(base, value, n);
			base[n] = '\0';
			return 0;
		}
		char *end = NULL;
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < k->min ||
		    v > k->max) {
			snprintf(err, err_len, "[%s] %s = '%s': expected an integer in [%" PRIu64
				 ", %" PRIu64 "]", section, key, value, k->min, k->max);
			return -EINVAL;
		}
		if (k->type == K_U64)
			*(uint64_t *)(void *)base = (uint64_t)v;
		else
			*(uint32_t *)(void *)base = (uint32_t)v;
		return 0;
	}
	snprintf(err, err_len, "unknown key [%s] %s (see sluice-ctld --print-config)", section,
		 key);
	return -ENOENT;
}

int sl_ctld_conf_load(struct sl_ctld_conf *c, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		int rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return rc;
	}
	char line[1024], section[64] = "";
	int rc = 0;
	for (unsigned ln = 1; fgets(line, sizeof(line), f) != NULL; ln++) {
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, err_len, "%s:%u: line too long", path, ln);
			rc = -EINVAL;
			break;
		}
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');
			if (e == NULL || e[1] != '\0' || (size_t)(e - s - 1) >= sizeof(section)) {
				snprintf(err, err_len, "%s:%u: bad section header", path, ln);
				rc = -EINVAL;
				break;
			}
			*e = '\0';
			snprintf(section, sizeof(section), "%s", trim(s + 1));
			continue;
		}
		char *eq = strchr(s, '=');
		if (eq == NULL || section[0] == '\0') {
			snprintf(err, err_len, "%s:%u: expected KEY = VALUE inside a [section]", path,
				 ln);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		char msg[256];
		rc = sl_ctld_conf_set(c, section, trim(s), trim(eq + 1), msg, sizeof(msg));
		if (rc != 0) {
			snprintf(err, err_len, "%s:%u: %s", path, ln, msg);
			break;
		}
	}
	fclose(f);
	return rc;
}

/* "ID@IPV4:PORT" */
static int parse_peer(const char *text, struct sl_ctld_peer *p, char *err, size_t err_len)
{
	unsigned id = 0, port = 0;
	char host[64];
	int used = 0;
	if (sscanf(text, "%u@%63[0-9.]:%u%n", &id, host, &port, &used) != 3 ||
	    text[used] != '\0' || id == 0 || id > 255 || port == 0 || port > 65535) {
		snprintf(err, err_len, "[ctld] peers: '%s' is not ID@IPV4:PORT", text);
		return -EINVAL;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) != 1) {
		snprintf(err, err_len, "[ctld] peers: '%s' is not an IPv4 address", host);
		return -EINVAL;
	}
	p->id = id;
	p->port = (uint16_t)port;
	snprintf(p->host, sizeof(p->host), "%s", host);
	return 0;
}

static int parse_peers(struct sl_ctld_conf *c, char *err, size_t err_len)
{
	char buf[sizeof(c->peers_text)];
	snprintf(buf, sizeof(buf), "%s", c->peers_text);
	c->n_peers = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (c->n_peers == SL_CTLD_MAX_REPLICAS) {
			snprintf(err, err_len, "[ctld] peers: at most %u replicas",
				 SL_CTLD_MAX_REPLICAS);
			return -EINVAL;
		}
		struct sl_ctld_peer *p = &c->peers[c->n_peers];
		int rc = parse_peer(trim(t), p, err, err_len);
		if (rc != 0)
			return rc;
		for (uint32_t i = 0; i < c->n_peers; i++)
			if (c->peers[i].id == p->id) {
				snprintf(err, err_len, "[ctld] peers: id %u given twice", p->id);
				return -EINVAL;
			}
		c->n_peers++;
	}
	if (c->n_peers != 1 && c->n_peers != 3) {
		snprintf(err, err_len, "[ctld] peers: %u replicas given; ctld runs as 1 or 3",
			 c->n_peers);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == c->id)
			return 0;
	snprintf(err, err_len, "[ctld] id %u is not among [ctld] peers '%s'", c->id,
		 c->peers_text);
	return -EINVAL;
}

static int check_protocol(const char *name, char *err, size_t err_len)
{
	if (sl_cons_find(name) != NULL)
		return 0;
	char names[128];
	sl_cons_names(names, sizeof(names));
	snprintf(err, err_len, "protocol '%s' unknown (known: %s)", name, names);
	return -EINVAL;
}

/* "0-3:raft,4-7:standalone" (a single region: "5:raft") */
static int parse_protocols(struct sl_ctld_conf *c, char *err, size_t err_len)
{
	struct sl_ctld_cluster *cl = &c->cluster;
	memset(cl->region_protocol, 0, sizeof(cl->region_protocol));
	char buf[sizeof(c->protocols_text)];
	snprintf(buf, sizeof(buf), "%s", c->protocols_text);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		unsigned lo = 0, hi = 0;
		char name[SL_CTLD_PROTO_MAX];
		int used = 0;
		if (sscanf(t, "%u-%u:%15[a-z_]%n", &lo, &hi, name, &used) != 3) {
			used = 0;
			if (sscanf(t, "%u:%15[a-z_]%n", &lo, name, &used) != 2)
				used = -1;
			hi = lo;
		}
		if (used < 0 || t[used] != '\0' || lo > hi || hi >= cl->regions) {
			snprintf(err, err_len,
				 "[cluster] protocols: '%s' is not FIRST-LAST:PROTOCOL with regions "
				 "below %u",
				 t, cl->regions);
			return -EINVAL;
		}
		int rc = check_protocol(name, err, err_len);
		if (rc != 0)
			return rc;
		for (unsigned r = lo; r <= hi; r++)
			snprintf(cl->region_protocol[r], sizeof(cl->region_protocol[r]), "%s", name);
	}
	return 0;
}

int sl_ctld_conf_finish(struct sl_ctld_conf *c, char *err, size_t err_len)
{
	int rc = parse_peers(c, err, err_len);
	if (rc == 0)
		rc = check_protocol(c->cluster.protocol, err, err_len);
	if (rc == 0)
		rc = parse_protocols(c, err, err_len);
	if (rc != 0)
		return rc;
	if (strcmp(c->balance_by_text, "count") == 0) {
		c->balance.by = SL_CTLD_BALANCE_COUNT;
	} else if (strcmp(c->balance_by_text, "rate") == 0) {
		c->balance.by = SL_CTLD_BALANCE_RATE;
	} else {
		snprintf(err, err_len, "[cluster] balance_by = '%s': count or rate",
			 c->balance_by_text);
		return -EINVAL;
	}
	/* the count ctld keeps and the automatic splits and merges by load would undo each
	 * other's moves */
	if (c->split.regions_target != 0 &&
	    (c->split.bytes != 0 || c->split.points_per_s != 0 || c->split.merge_bytes != 0)) {
		snprintf(err, err_len, "[cluster] regions_target = %u is set with automatic splits "
			 "or merges by size or write rate (split_bytes, split_points_per_s, "
			 "merge_bytes): they would undo each other's moves; use one or the other",
			 c->split.regions_target);
		return -EINVAL;
	}
	/* a merged region must not be due to split again (nor the halves of a split to merge) */
	if (c->split.merge_bytes != 0 && c->split.bytes != 0 &&
	    c->split.merge_bytes > c->split.bytes / 2) {
		snprintf(err, err_len, "[cluster] merge_bytes = %" PRIu64 " is above half of "
			 "split_bytes (%" PRIu64 "): a merged region could be split again at once",
			 c->split.merge_bytes, c->split.bytes);
		return -EINVAL;
	}
	if (c->split.merge_bytes != 0 && c->split.points_per_s != 0 &&
	    c->split.merge_points_per_s == 0) {
		snprintf(err, err_len, "[cluster] merge_bytes is set with split_points_per_s but "
			 "merge_points_per_s is 0: a region split for its write rate would be merged "
			 "back for its size; set merge_points_per_s (at most half of "
			 "split_points_per_s)");
		return -EINVAL;
	}
	if (c->split.merge_points_per_s != 0 && c->split.points_per_s != 0 &&
	    c->split.merge_points_per_s > c->split.points_per_s / 2) {
		snprintf(err, err_len, "[cluster] merge_points_per_s = %" PRIu64 " is above half "
			 "of split_points_per_s (%" PRIu64 "): a merged region could be split again "
			 "at once", c->split.merge_points_per_s, c->split.points_per_s);
		return -EINVAL;
	}
	if (c->cluster.replication != 1 && c->cluster.replication != 3) {
		snprintf(err, err_len, "[cluster] replication = %u: 1 or 3", c->cluster.replication);
		return -EINVAL;
	}
	if (c->cluster.replication > c->cluster.nodes) {
		snprintf(err, err_len, "[cluster] replication = %u needs at least as many nodes "
			 "(nodes = %u)", c->cluster.replication, c->cluster.nodes);
		return -EINVAL;
	}
	if (c->cluster.initial_nodes > c->cluster.nodes) {
		snprintf(err, err_len, "[cluster] initial_nodes = %u is more than nodes = %u",
			 c->cluster.initial_nodes, c->cluster.nodes);
		return -EINVAL;
	}
	if (c->cluster.initial_nodes != 0 && c->cluster.replication > c->cluster.initial_nodes) {
		snprintf(err, err_len, "[cluster] replication = %u needs at least as many initial "
			 "nodes (initial_nodes = %u)", c->cluster.replication,
			 c->cluster.initial_nodes);
		return -EINVAL;
	}
	if (c->data_dir[0] == '\0') {
		snprintf(err, err_len, "[ctld] data_dir must not be empty");
		return -EINVAL;
	}
	if (c->ctl_socket[0] == '\0' &&
	    snprintf(c->ctl_socket, sizeof(c->ctl_socket), "%s/ctld.sock", c->data_dir) >=
		    (int)sizeof(c->ctl_socket)) {
		snprintf(err, err_len, "[ctld] data_dir too long for the ctl socket path");
		return -ENAMETOOLONG;
	}
	return 0;
}

void sl_ctld_conf_dump(const struct sl_ctld_conf *c, FILE *out)
{
	const char *section = "";
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		if (strcmp(section, k->section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(out, "# %s\n", k->help);
		const char *base = (const char *)c + k->off;
		if (k->type == K_STR)
			fprintf(out, "%s = \"%s\"\n", k->name, base);
		else if (k->type == K_U64)
			fprintf(out, "%s = %" PRIu64 "\n", k->name,
				*(const uint64_t *)(const void *)base);
		else
			fprintf(out, "%s = %u\n", k->name, *(const uint32_t *)(const void *)base);
	}
}
