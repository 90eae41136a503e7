/* config.c - one table describes every configuration key (section, name, type, default,
 * range, help); the INI loader (rte_cfgfile), the command line and `sluiced
 * --print-config` all go through it, so a key cannot be documented but not parsed. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <rte_cfgfile.h>

#include "config.h"
#include "fabric.h"
#include "fabric_udp.h"
#include "consensus.h"
#include "ingest_format.h"
#include "node_limits.h"

enum key_type { K_U32, K_BOOL, K_STR, K_HUGE, K_POLL, K_FABRIC };

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t off;
	size_t size; /* for strings */
	uint32_t min, max;
	const char *help;
};

#define U32(sec, nm, field, lo, hi, h)                                                      \
	{sec, nm, K_U32, offsetof(struct sl_config, field), 0, lo, hi, h}
#define STR(sec, nm, field, h)                                                              \
	{sec, nm, K_STR, offsetof(struct sl_config, field),                                 \
	 sizeof(((struct sl_config *)0)->field), 0, 0, h}
#define BOOL(sec, nm, field, h) {sec, nm, K_BOOL, offsetof(struct sl_config, field), 0, 0, 1, h}

static const struct key keys[] = {
	U32("node", "id", node_id, 1, 65535, "node id in the cluster (1..65535)"),
	STR("node", "name", name, "node name: names the shm segments /dev/shm/sluice-<name>.*"),
	STR("node", "data_dir", data_dir, "WAL, snapshots and node metadata live here"),
	STR("node", "ctl_socket", ctl_socket, "ctl socket path; empty = <data_dir>/sluiced.sock"),
	U32("eal", "workers", workers, 0, SL_CFG_MAX_WORKERS,
	    "worker lcores; 0 = one per CPU beyond the main one, at least 1"),
	{"eal", "hugepages", K_HUGE, offsetof(struct sl_config, hugepages), 0, 0, 0,
	 "auto | on | off: auto uses hugepages when free ones exist, else --no-huge"},
	U32("eal", "memory_mb", memory_mb, 64, 1 << 20, "EAL memory (MiB) when running --no-huge"),
	STR("eal", "pci_allow", pci_allow,
	    "PCI addresses of NICs the operator allows (comma separated); empty = --no-pci"),
	STR("eal", "extra_args", eal_extra, "extra EAL arguments, space separated"),
	U32("regions", "count", regions, 1, SL_CFG_MAX_REGIONS,
	    "regions (hash ranges of the series id) on this node, spread over the workers"),
	STR("regions", "protocol", protocol,
	    "consensus protocol of the regions, a name from the registry: standalone (the "
	    "default; one node only), raft (replicated on every node of [cluster] nodes) or "
	    "multileader (every replica takes writes; docs/multileader.md)"),
	U32("regions", "election_timeout_ms", election_timeout_ms, 10, 60000,
	    "raft election timeout (heartbeats every tenth of it)"),
	STR("regions", "protocols", region_protocols,
	    "per-region protocols over `protocol`: comma-separated FIRST[-LAST]:NAME, e.g. "
	    "0-3:raft,4-7:standalone (a standalone region has one copy, on node "
	    "(region mod nodes) + 1)"),
	U32("regions", "replicas", replicas, 0, SL_CONS_MAX_PEERS,
	    "copies of each region whose protocol replicates (0 = one on every node of the "
	    "cluster); at most [cluster] nodes"),
	U32("regions", "multileader_ack_copies", ml_ack_copies, 1, SL_CONS_MAX_PEERS,
	    "multileader regions: a write is acknowledged once durable on this many replicas "
	    "(1: the WAL of the replica that took it; at most the region's copies)"),
	BOOL("regions", "multileader_home", ml_home,
	     "multileader regions: writes go to the region's home replica (its preferred "
	     "replica, the next live one while it is down), forwarded there by the others, so "
	     "a series has one writer at a time; false: every replica takes writes itself"),
	U32("regions", "multileader_retention", ml_retention, 16, 1u << 24,
	    "multileader regions: own entries kept for a lagging peer; one further behind is "
	    "caught up by a snapshot (counted, alarmed), and writes never wait for it"),
	U32("regions", "log_keep_mb", log_keep_mb, 1, RLOG_KEEP_MB_MAX,
	    "MiB of applied entries each region keeps for replicas that fall behind; one "
	    "further behind needs a snapshot"),
	U32("regions", "log_keep_peer_mb", log_keep_peer_mb, 0, RLOG_KEEP_MB_MAX,
	    "MiB of applied entries a raft region keeps while it sends a replica a snapshot, so "
	    "its log still continues from the image when that arrives (under a write load, a "
	    "large image is built and sent for seconds); 0: log_keep_mb only"),
	U32("wal", "segment_mb", wal_segment_mb, 1, 4096, "WAL segment file size (MiB)"),
	U32("wal", "buffer_kb", wal_buffer_kb, 64, 65536,
	    "WAL write buffer per core (KiB); two of them: one in flight, one filling"),
	BOOL("wal", "direct_io", wal_direct_io, "O_DIRECT writes when the filesystem allows"),
	BOOL("wal", "salvage", wal_salvage,
	     "on damage to durable WAL records cut the log there instead of refusing to start"),
	U32("wal", "checkpoint_mb", checkpoint_mb, 1, 1 << 20,
	    "snapshot the regions and release WAL segments after this much WAL (MiB)"),
	U32("wal", "checkpoint_delta_min_kb", checkpoint_delta_min_kb, 0, 1 << 30,
	    "a region whose full image is at least this big (KiB) is checkpointed as a delta "
	    "(the chunks changed since its last image) while its deltas stay fewer than 16 "
	    "and smaller in sum than the full image; smaller regions are written whole"),
	{"poll", "mode", K_POLL, offsetof(struct sl_config, poll_mode), 0, 0, 0,
	 "adaptive (idle workers back off) | perf (busy-poll, never sleep)"},
	U32("poll", "idle_sleep_us_max", idle_sleep_us_max, 1, 100000,
	    "longest sleep of an idle worker in adaptive mode (microseconds)"),
	U32("ingest", "shm_slots", shm_slots, 1, SL_CFG_SHM_SLOTS_MAX, "client slots of the shm ingest ring"),
	U32("ingest", "shm_ring_entries", shm_ring_entries, 64, SL_INGEST_RING_MAX,
	    "points per client submission ring (power of two)"),
	STR("ingest", "shm_path", shm_ingest_path, "empty = /dev/shm/sluice-<name>.ingest"),
	STR("ingest", "stats_path", stats_path, "empty = /dev/shm/sluice-<name>.stats"),
	U32("ingest", "batch_points", batch_points, 1, 65536, "points per proposal at most"),
	STR("net", "vdevs", vdevs,
	    "virtual devices: EAL --vdev specs separated by spaces (';' also works with --set, "
	    "but starts a comment in a config file), e.g. net_tap0,iface=sl0; empty = none"),
	STR("net", "ipv4", ipv4, "the node's IPv4 address on its ports (needed with ports)"),
	U32("net", "line_port", line_port, 1, 65535, "UDP port of the InfluxDB line protocol"),
	U32("net", "session_port", session_port, 1, 65535,
	    "UDP port of the binary session protocol (docs/protocol.md)"),
	STR("net", "precision", precision,
	    "line protocol timestamp unit: ns, us, ms or s (lines without one get node time)"),
	STR("net", "kernel_udp", kernel_udp,
	    "line protocol and the session protocol on kernel UDP sockets at "
	    "kernel_address:line_port and :session_port (docs/http.md): auto (when the node "
	    "has no DPDK ingest port; a port another process holds is then a warning), on, "
	    "or off"),
	STR("net", "kernel_address", kernel_address,
	    "IPv4 address the kernel UDP sockets bind to; 0.0.0.0 = all"),
	STR("net", "exception", exception,
	    "exception path of a DPDK ingest port (TCP to the node's address goes to the "
	    "host's kernel, whose sockets serve HTTP there): virtio_user, tap, off, or auto "
	    "(for a NIC named to the EAL: virtio_user with /dev/vhost-net, else tap)"),
	STR("net", "exception_iface", exception_iface,
	    "name of the exception path's kernel interface (empty = slx-<name>, cut to 15)"),
	U32("net", "exception_prefix", exception_prefix, 1, 32,
	    "prefix length of the node's address on the exception path's kernel interface"),
	U32("net", "cluster_id", cluster_id, 1, UINT32_MAX - 1,
	    "cluster id carried by session frames; frames of another cluster are dropped"),
	U32("net", "mbufs", mbufs, 1024, 1 << 22,
	    "packet buffers per port (the pool also gets room for the fragments reassembly "
	    "may hold)"),
	U32("net", "frag_max_flows", frag_max_flows, 0, 65536,
	    "UDP datagrams each worker reassembles from IPv4 fragments at once (line protocol "
	    "and session ports); 0 = drop fragments"),
	U32("net", "frag_timeout_ms", frag_timeout_ms, 10, 60000,
	    "fragments of a datagram not complete after this are freed (counted frag_expired)"),
	BOOL("http", "enabled", http_enabled,
	     "serve the HTTP APIs (InfluxDB 1.x /write, /ping, /query; 2.x /api/v2/write, "
	     "/health; Prometheus /api/v1/write, /metrics) on kernel sockets"),
	STR("http", "listen", http_listen,
	    "ADDRESS:PORT of the HTTP APIs (InfluxDB's port by default); a port another "
	    "process holds is an error when set, a warning (no HTTP) when left at the default"),
	U32("http", "max_body_bytes", http_max_body, 1024, 1u << 30,
	    "largest request body, after gzip decoding (InfluxDB's max-body-size); larger "
	    "is 413"),
	U32("http", "max_connections", http_max_connections, 1, 4096,
	    "open HTTP connections at most (each has a thread); more are refused"),
	U32("http", "idle_timeout_s", http_idle_timeout_s, 1, 3600,
	    "a connection idle this long is closed"),
	U32("http", "write_timeout_ms", http_write_timeout_ms, 100, 600000,
	    "a write not stored within this is answered 500 timeout (it may still be "
	    "stored, as with InfluxDB)"),
	U32("cluster", "nodes", cluster_nodes, 1, SL_CONS_MAX_PEERS,
	    "nodes in the cluster, ids 1..N; every region is replicated on all of them by "
	    "[regions] protocol (1 = a single node, no fabric)"),
	{"cluster", "fabric", K_FABRIC, offsetof(struct sl_config, fabric), 0, 0, 0,
	 "memif (nodes on one host, linked by memif sockets in fabric_dir) | udp (nodes on "
	 "any hosts: Ethernet/IPv4/UDP on the DPDK device fabric_port)"},
	STR("cluster", "fabric_dir", fabric_dir,
	    "directory of the memif sockets linking the nodes of one host (same on every "
	    "node; needed when nodes > 1 with fabric = memif)"),
	STR("cluster", "fabric_port", fabric_port,
	    "fabric = udp: the DPDK device of the fabric network, a PCI address (allowed to "
	    "the EAL by itself) or vdev arguments such as net_af_packet0,iface=eth1,qpairs=2; "
	    "one queue pair per worker; never used for ingest"),
	STR("cluster", "addresses", fabric_addresses,
	    "fabric = udp: every node's IPv4 address on the fabric network, ID=ADDRESS comma "
	    "separated, e.g. 1=10.9.0.1,2=10.9.0.2,3=10.9.0.3 (same on every node)"),
	U32("cluster", "fabric_udp_port", fabric_udp_port, 1, 65536 - SL_CFG_MAX_WORKERS,
	    "fabric = udp: UDP port of worker core 0; core c sends from and receives on this "
	    "+ c (open base .. base + workers - 1 between the nodes)"),
	STR("cluster", "fabric_macs", fabric_macs,
	    "fabric = udp, optional: static MACs of peers, ID=aa:bb:cc:dd:ee:ff comma "
	    "separated; the others are learned by ARP"),
	U32("cluster", "fabric_mtu", fabric_mtu, SL_FAB_MTU_MIN, SL_FAB_MTU_MAX,
	    "bytes of a fabric frame after its Ethernet header (memif links between nodes of one "
	    "host take jumbo frames; with fabric = udp the IP packet's size, at most the "
	    "network's MTU, and at least 284); larger messages are split"),
	STR("cluster", "ctld", ctld,
	    "ctl sockets of the sluice-ctld replicas on this host, comma separated: the node "
	    "takes the region map there at start (kept in DATA_DIR/regions.map for starts "
	    "while ctld is down), then joins and heartbeats (it keeps serving whatever ctld "
	    "does); empty = none"),
	BOOL("cluster", "balance_leaders", balance_leaders,
	     "hand each region's leadership to its preferred replica (spread evenly over the "
	     "nodes) when that replica is up and this one leads"),
	BOOL("debug", "fault_injection", fault_injection,
	     "tests only: allow the debug_wal_fault (inject disk errors), debug_hold_core "
	     "(hold a worker back) and debug_fabric (drop, delay, cut links) ctl commands"),
	U32("debug", "xmsg_pool", xmsg_pool, XMSG_POOL_MIN, XMSG_POOL,
	    "tests only: cross-core messages in the pool; fewer make routing run out of room "
	    "sooner (ingress then keeps what it read for the next round)"),
};

void sl_config_default(struct sl_config *c)
{
	memset(c, 0, sizeof(*c));
	c->node_id = 1;
	snprintf(c->name, sizeof(c->name), "node1");
	snprintf(c->data_dir, sizeof(c->data_dir), "./sluice-data");
	c->workers = 0;
	c->hugepages = SL_HUGE_AUTO;
	c->memory_mb = 512;
	c->regions = 8;
	snprintf(c->protocol, sizeof(c->protocol), "%s", sl_cons_default_name());
	c->election_timeout_ms = 300;
	c->log_keep_mb = 1;
	c->log_keep_peer_mb = 256;
	c->wal_segment_mb = 64;
	c->wal_buffer_kb = 4096;
	c->wal_direct_io = true;
	c->wal_salvage = false;
	c->checkpoint_mb = 256;
	c->checkpoint_delta_min_kb = 4096;
	c->poll_mode = SL_POLL_ADAPTIVE;
	c->idle_sleep_us_max = 1000;
	c->shm_slots = 16;
	c->shm_ring_entries = 16384;
	c->batch_points = 4096;
	c->line_port = 8089;
	c->session_port = 7400;
	snprintf(c->precision, sizeof(c->precision), "ns");
	c->cluster_id = 1;
	snprintf(c->kernel_udp, sizeof(c->kernel_udp), "auto");
	snprintf(c->kernel_address, sizeof(c->kernel_address), "0.0.0.0");
	snprintf(c->exception, sizeof(c->exception), "auto");
	c->exception_prefix = 24;
	c->http_enabled = true;
	snprintf(c->http_listen, sizeof(c->http_listen), "%s", SL_CFG_HTTP_LISTEN_DEFAULT);
	c->http_max_body = 25000000;
	c->http_max_connections = 64;
	c->http_idle_timeout_s = 30;
	c->http_write_timeout_ms = 10000;
	c->mbufs = 16384;
	c->frag_max_flows = 128;
	c->frag_timeout_ms = 1000;
	c->cluster_nodes = 1;
	c->fabric_mtu = 8000;
	c->fabric = SL_FABRIC_MEMIF;
	c->fabric_udp_port = 7600;
	c->balance_leaders = true;
	c->ml_ack_copies = 1;
	c->ml_home = true;
	c->ml_retention = 65536;
	c->xmsg_pool = XMSG_POOL;
}

static const struct key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

int sl_config_set(struct sl_config *c, const char *section, const char *name, const char *value,
		  char *err, size_t err_len)
{
	const struct key *k = find_key(section, name);
	if (k == NULL) {
		snprintf(err, err_len, "unknown key [%s] %s", section, name);
		return -ENOENT;
	}
	char *field = (char *)c + k->off;
	switch (k->type) {
	case K_U32: {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < k->min ||
		    v > k->max) {
			snprintf(err, err_len, "[%s] %s = '%s': expected an integer in %u..%u",
				 section, name, value, k->min, k->max);
			return -EINVAL;
		}
		*(uint32_t *)field = (uint32_t)v;
		return 0;
	}
	case K_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1") ||
		    !strcmp(value, "on")) {
			*(bool *)field = true;
		} else if (!strcmp(value, "false") || !strcmp(value, "no") ||
			   !strcmp(value, "0") || !strcmp(value, "off")) {
			*(bool *)field = false;
		} else {
			snprintf(err, err_len, "[%s] %s = '%s': expected true or false", section,
				 name, value);
			return -EINVAL;
		}
		return 0;
	case K_STR:
		if (strlen(value) >= k->size) {
			snprintf(err, err_len, "[%s] %s: value longer than %zu bytes", section,
				 name, k->size - 1);
			return -ENAMETOOLONG;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case K_HUGE:
		if (!strcmp(value, "auto"))
			c->hugepages = SL_HUGE_AUTO;
		else if (!strcmp(value, "on"))
			c->hugepages = SL_HUGE_ON;
		else if (!strcmp(value, "off"))
			c->hugepages = SL_HUGE_OFF;
		else {
			snprintf(err, err_len, "[eal] hugepages = '%s': expected auto, on or off",
				 value);
			return -EINVAL;
		}
		return 0;
	case K_FABRIC:
		if (!strcmp(value, "memif"))
			c->fabric = SL_FABRIC_MEMIF;
		else if (!strcmp(value, "udp"))
			c->fabric = SL_FABRIC_UDP;
		else {
			snprintf(err, err_len, "[cluster] fabric = '%s': expected memif or udp",
				 value);
			return -EINVAL;
		}
		return 0;
	case K_POLL:
		if (!strcmp(value, "adaptive"))
			c->poll_mode = SL_POLL_ADAPTIVE;
		else if (!strcmp(value, "perf"))
			c->poll_mode = SL_POLL_PERF;
		else {
			snprintf(err, err_len, "[poll] mode = '%s': expected adaptive or perf",
				 value);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

/* rte_cfgfile drops a line it cannot parse without a word (a typo'd key with no '=' is
 * silently lost) and names no line when it fails: every line is checked here first. */
static int check_lines(const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		int e = errno;
		snprintf(err, err_len, "config file %s: %s", path, strerror(e));
		return -e;
	}
	char line[1024];
	int rc = 0;
	bool in_section = false;
	for (unsigned no = 1; rc == 0 && fgets(line, sizeof(line), f) != NULL; no++) {
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
			snprintf(err, err_len, "config file %s line %u: longer than %zu bytes", path,
				 no, sizeof(line) - 2);
			rc = -E2BIG;
			break;
		}
		char *semi = strchr(line, ';'); /* a comment runs to the end of the line */
		if (semi != NULL)
			*semi = '\0';
		char *p = line, *end = line + strlen(line);
		while (isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*p == '\0')
			continue;
		const char *why = NULL;
		char *eq = strchr(p, '=');
		if (*p == '#') {
			why = "comments start with ';' ('#' is read as part of a key)";
		} else if (*p == '[') {
			if (end[-1] != ']' || end - p < 3)
				why = "a section header must be [name]";
			in_section = true;
		} else if (eq == NULL) {
			why = "expected key = value, a [section] or a comment (comments start "
			      "with ';')";
		} else if (eq == p) {
			why = "the key before '=' is missing";
		} else if (!in_section) {
			why = "key = value before any [section]";
		}
		if (why != NULL) {
			snprintf(err, err_len, "config file %s line %u: '%s': %s", path, no, p, why);
			rc = -EINVAL;
		}
	}
	fclose(f);
	return rc;
}

int sl_config_load(struct sl_config *c, const char *path, char *err, size_t err_len)
{
	if (access(path, R_OK) != 0) {
		snprintf(err, err_len, "config file %s: %s", path, strerror(errno));
		return -errno;
	}
	int lrc = check_lines(path, err, err_len);
	if (lrc != 0)
		return lrc;
	struct rte_cfgfile *f = rte_cfgfile_load(path, CFG_FLAG_EMPTY_VALUES);
	if (f == NULL) {
		snprintf(err, err_len, "config file %s: not a valid INI file", path);
		return -EINVAL;
	}
	int rc = 0;
	int nsec = rte_cfgfile_num_sections(f, NULL, 0);
	for (int s = 0; s < nsec && rc == 0; s++) {
		struct rte_cfgfile_entry ents[64];
		char secname[CFG_NAME_LEN];
		int n = rte_cfgfile_section_entries_by_index(f, s, secname, ents, 64);
		if (n < 0) {
			snprintf(err, err_len, "config file %s: cannot read section %d", path, s);
			rc = -EINVAL;
			break;
		}
		if (rte_cfgfile_section_num_entries(f, secname) > 64) {
			snprintf(err, err_len, "config file %s: too many keys in [%s]", path,
				 secname);
			rc = -E2BIG;
			break;
		}
		for (int e = 0; e < n && rc == 0; e++) {
			char e2[256];
			rc = sl_config_set(c, secname, ents[e].name, ents[e].value, e2, sizeof(e2));
			if (rc != 0)
				snprintf(err, err_len, "config file %s: %s", path, e2);
		}
	}
	rte_cfgfile_close(f);
	return rc;
}

static int region_protocols_parse(struct sl_config *c, char *err, size_t err_len);

_Static_assert(SL_CFG_MAX_NODES == SL_CONS_MAX_PEERS, "a node id indexes fabric_ip");

/* "ID=VALUE,ID=VALUE": each item's node id (1..nodes, once each) and value, to `one`. */
static int node_list_parse(struct sl_config *c, const char *key, const char *list,
			   int (*one)(struct sl_config *c, uint32_t id, const char *v),
			   const char *what, char *err, size_t err_len)
{
	char spec[SL_CFG_PATH_MAX];
	bool seen[SL_CFG_MAX_NODES + 1] = {false};
	snprintf(spec, sizeof(spec), "%s", list);
	char *save = NULL;
	for (char *it = strtok_r(spec, ", ", &save); it != NULL; it = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(it, '='), *end = NULL;
		unsigned long id = strtoul(it, &end, 10);
		if (eq == NULL || end != eq || !isdigit((unsigned char)it[0]) || id == 0 ||
		    id > c->cluster_nodes) {
			snprintf(err, err_len,
				 "[cluster] %s: '%s': expected ID=%s with ID a node id 1..%u", key,
				 it, what, c->cluster_nodes);
			return -EINVAL;
		}
		if (seen[id]) {
			snprintf(err, err_len, "[cluster] %s: node %lu is given twice", key, id);
			return -EINVAL;
		}
		seen[id] = true;
		if (one(c, (uint32_t)id, eq + 1) != 0) {
			snprintf(err, err_len, "[cluster] %s: '%s': not %s", key, it, what);
			return -EINVAL;
		}
	}
	return 0;
}

/* A unicast IPv4 address (not 0/8, loopback, multicast, class E or broadcast). */
static int fabric_ip_one(struct sl_config *c, uint32_t id, const char *v)
{
	struct in_addr a;
	if (inet_pton(AF_INET, v, &a) != 1)
		return -EINVAL;
	uint32_t ip = ntohl(a.s_addr);
	if ((ip >> 24) == 0 || (ip >> 24) == 127 || (ip >> 24) >= 224)
		return -EINVAL;
	c->fabric_ip[id] = ip;
	return 0;
}

static int fabric_mac_one(struct sl_config *c, uint32_t id, const char *v)
{
	unsigned m[6];
	char tail;
	if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
		   &tail) != 6 || (m[0] & 1) != 0)
		return -EINVAL; /* a unicast MAC: the group bit clear */
	for (int i = 0; i < 6; i++)
		c->fabric_mac[id][i] = (uint8_t)m[i];
	c->fabric_mac_set[id] = true;
	return 0;
}

/* fabric = udp: the device, every node's address (distinct), the ports, the MTU. */
static int fabric_udp_check(struct sl_config *c, char *err, size_t err_len)
{
	if (c->fabric_port[0] == '\0') {
		snprintf(err, err_len, "[cluster] fabric = udp needs [cluster] fabric_port, the "
				       "DPDK device of the fabric network (a PCI address or vdev "
				       "arguments)");
		return -EINVAL;
	}
	/* the ethdev's name: a PCI address in its long form, or the vdev's name */
	unsigned dom = 0, bus, dev, fn;
	char tail;
	c->fabric_pci = sscanf(c->fabric_port, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) == 4;
	if (!c->fabric_pci) { /* BB:DD.F, domain 0 (a failed match above may have set dom) */
		dom = 0;
		c->fabric_pci = sscanf(c->fabric_port, "%x:%x.%x%c", &bus, &dev, &fn, &tail) == 3;
	}
	if (c->fabric_pci) {
		if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7) {
			snprintf(err, err_len, "[cluster] fabric_port = '%s': not a PCI address",
				 c->fabric_port);
			return -EINVAL;
		}
		snprintf(c->fabric_dev, sizeof(c->fabric_dev), "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	} else {
		size_t n = strcspn(c->fabric_port, ",");
		if (n == 0 || n >= sizeof(c->fabric_dev) || strncmp(c->fabric_port, "net_", 4) != 0) {
			snprintf(err, err_len,
				 "[cluster] fabric_port = '%s': expected a PCI address "
				 "(0000:01:00.0) or vdev arguments (net_af_packet0,iface=eth1,...)",
				 c->fabric_port);
			return -EINVAL;
		}
		memcpy(c->fabric_dev, c->fabric_port, n);
		c->fabric_dev[n] = '\0';
	}
	memset(c->fabric_ip, 0, sizeof(c->fabric_ip));
	memset(c->fabric_mac_set, 0, sizeof(c->fabric_mac_set));
	int rc = node_list_parse(c, "addresses", c->fabric_addresses, fabric_ip_one,
				 "a unicast IPv4 address", err, err_len);
	if (rc == 0)
		rc = node_list_parse(c, "fabric_macs", c->fabric_macs, fabric_mac_one,
				     "a unicast MAC (aa:bb:cc:dd:ee:ff)", err, err_len);
	if (rc != 0)
		return rc;
	for (uint32_t i = 1; i <= c->cluster_nodes; i++) {
		if (c->fabric_ip[i] == 0) {
			snprintf(err, err_len,
				 "[cluster] addresses: node %u has no address (fabric = udp needs "
				 "ID=ADDRESS for each of the %u nodes)",
				 i, c->cluster_nodes);
			return -EINVAL;
		}
		for (uint32_t j = 1; j < i; j++)
			if (c->fabric_ip[j] == c->fabric_ip[i]) {
				snprintf(err, err_len,
					 "[cluster] addresses: nodes %u and %u have the same address",
					 j, i);
				return -EINVAL;
			}
	}
	if (c->fabric_mtu < SL_FAB_MTU_MIN + SL_FU_IP_UDP_BYTES) {
		snprintf(err, err_len,
			 "[cluster] fabric_mtu = %u: with fabric = udp at least %u (a frame of %u "
			 "bytes in the IPv4 and UDP headers)",
			 c->fabric_mtu, SL_FAB_MTU_MIN + SL_FU_IP_UDP_BYTES, SL_FAB_MTU_MIN);
		return -EINVAL;
	}
	/* net_af_packet copies each frame into a ring slot of framesz bytes (2048 unless
	 * set), 66 of them before the frame: a larger frame would be cut on receipt and
	 * silently dropped on send, with ARP still working */
	if (strncmp(c->fabric_dev, "net_af_packet", 13) == 0 ||
	    strncmp(c->fabric_dev, "eth_af_packet", 13) == 0) {
		const char *fs = strstr(c->fabric_port, ",framesz=");
		unsigned long framesz = fs != NULL ? strtoul(fs + 9, NULL, 10) : 2048;
		if (framesz < (unsigned long)c->fabric_mtu + 80) {
			snprintf(err, err_len,
				 "[cluster] fabric_port %s: af_packet frames of %lu bytes hold IP "
				 "packets of %lu bytes at most: give framesz=%u (and blocksz as "
				 "large) or lower fabric_mtu = %u",
				 c->fabric_dev, framesz, framesz > 80 ? framesz - 80 : 0,
				 (c->fabric_mtu + 80 + 4095) / 4096 * 4096, c->fabric_mtu);
			return -EINVAL;
		}
	}
	return 0; /* fabric_udp_port's range leaves room for every worker's port */
}

int sl_config_finish(struct sl_config *c, char *err, size_t err_len)
{
	if (c->ctl_socket[0] == '\0' &&
	    snprintf(c->ctl_socket, sizeof(c->ctl_socket), "%s/sluiced.sock", c->data_dir) >=
		    (int)sizeof(c->ctl_socket)) {
		snprintf(err, err_len, "data_dir too long for the ctl socket path");
		return -ENAMETOOLONG;
	}
	if (strlen(c->ctl_socket) >= 108) {
		snprintf(err, err_len, "ctl socket path '%s' is longer than a Unix socket allows",
			 c->ctl_socket);
		return -ENAMETOOLONG;
	}
	if (c->shm_ingest_path[0] == '\0')
		snprintf(c->shm_ingest_path, sizeof(c->shm_ingest_path),
			 "/dev/shm/sluice-%s.ingest", c->name);
	if (c->stats_path[0] == '\0')
		snprintf(c->stats_path, sizeof(c->stats_path), "/dev/shm/sluice-%s.stats",
			 c->name);
	for (const char *p = c->name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
			snprintf(err, err_len, "node name '%s': use letters, digits, - and _",
				 c->name);
			return -EINVAL;
		}
	if (c->name[0] == '\0') {
		snprintf(err, err_len, "node name is empty");
		return -EINVAL;
	}
	if ((uint64_t)c->wal_segment_mb * 1024 < c->wal_buffer_kb) {
		snprintf(err, err_len,
			 "[wal] segment_mb = %u (%" PRIu64 " KiB) is smaller than [wal] buffer_kb = "
			 "%u: a WAL segment must hold a whole write buffer",
			 c->wal_segment_mb, (uint64_t)c->wal_segment_mb * 1024, c->wal_buffer_kb);
		return -EINVAL;
	}
	if ((uint64_t)c->wal_buffer_kb << 10 < NODE_WAL_BUFFER_MIN_BYTES) {
		snprintf(err, err_len,
			 "[wal] buffer_kb = %u is too small: a WAL buffer must hold a consensus "
			 "ready with the largest point (%" PRIu64 " KiB at least)",
			 c->wal_buffer_kb, ((uint64_t)NODE_WAL_BUFFER_MIN_BYTES + 1023) >> 10);
		return -EINVAL;
	}
	if ((c->shm_ring_entries & (c->shm_ring_entries - 1)) != 0) {
		snprintf(err, err_len, "[ingest] shm_ring_entries = %u: must be a power of two",
			 c->shm_ring_entries);
		return -EINVAL;
	}
	if (sl_ingest_file_size(c->shm_slots, c->shm_ring_entries) > SL_INGEST_FILE_MAX) {
		snprintf(err, err_len,
			 "[ingest] shm_slots = %u with shm_ring_entries = %u makes a %" PRIu64
			 " MiB ingest ring: at most %" PRIu64 " MiB",
			 c->shm_slots, c->shm_ring_entries,
			 sl_ingest_file_size(c->shm_slots, c->shm_ring_entries) >> 20,
			 SL_INGEST_FILE_MAX >> 20);
		return -EINVAL;
	}
	if (c->ipv4[0] != '\0') {
		struct in_addr a;
		if (inet_pton(AF_INET, c->ipv4, &a) != 1) {
			snprintf(err, err_len, "[net] ipv4 = '%s': not an IPv4 address", c->ipv4);
			return -EINVAL;
		}
		c->ipv4_addr = ntohl(a.s_addr);
	} else if (c->vdevs[0] != '\0') {
		snprintf(err, err_len, "[net] vdevs is set but [net] ipv4 is empty: give the "
				       "node an address on its ports");
		return -EINVAL;
	}
	if (strcmp(c->exception, "auto") && strcmp(c->exception, "virtio_user") &&
	    strcmp(c->exception, "tap") && strcmp(c->exception, "off")) {
		snprintf(err, err_len, "[net] exception = '%s': auto, virtio_user, tap or off",
			 c->exception);
		return -EINVAL;
	}
	if (strcmp(c->kernel_udp, "auto") && strcmp(c->kernel_udp, "on") &&
	    strcmp(c->kernel_udp, "off")) {
		snprintf(err, err_len, "[net] kernel_udp = '%s': auto, on or off", c->kernel_udp);
		return -EINVAL;
	}
	{
		struct in_addr a;
		if (inet_pton(AF_INET, c->kernel_address, &a) != 1) {
			snprintf(err, err_len, "[net] kernel_address = '%s': not an IPv4 address",
				 c->kernel_address);
			return -EINVAL;
		}
		uint32_t port;
		if (sl_cfg_parse_listen(c->http_listen, &a, &port) != 0) {
			snprintf(err, err_len,
				 "[http] listen = '%s': give IPV4:PORT, e.g. 127.0.0.1:8086",
				 c->http_listen);
			return -EINVAL;
		}
	}
	if (strcmp(c->precision, "ns") && strcmp(c->precision, "us") &&
	    strcmp(c->precision, "ms") && strcmp(c->precision, "s")) {
		snprintf(err, err_len, "[net] precision = '%s': expected ns, us, ms or s",
			 c->precision);
		return -EINVAL;
	}
	if (c->line_port == c->session_port) {
		snprintf(err, err_len, "[net] line_port and session_port must differ");
		return -EINVAL;
	}
	if (c->cluster_nodes > 1 && c->node_id > c->cluster_nodes) {
		snprintf(err, err_len, "[node] id = %u: a cluster of %u nodes has ids 1..%u",
			 c->node_id, c->cluster_nodes, c->cluster_nodes);
		return -EINVAL;
	}
	if (c->cluster_nodes > 1 && c->fabric == SL_FABRIC_UDP) {
		int rc = fabric_udp_check(c, err, err_len);
		if (rc != 0)
			return rc;
	}
	if (c->cluster_nodes > 1 && c->fabric == SL_FABRIC_MEMIF && c->fabric_dir[0] == '\0') {
		snprintf(err, err_len, "[cluster] nodes = %u: give [cluster] fabric_dir, the "
				       "directory of the memif sockets between the nodes",
			 c->cluster_nodes);
		return -EINVAL;
	}
	if (sl_cons_find(c->protocol) == NULL) {
		char names[128];
		sl_cons_names(names, sizeof(names));
		snprintf(err, err_len, "[regions] protocol = '%s': expected one of %s",
			 c->protocol, names);
		return -EINVAL;
	}
	if (c->replicas > c->cluster_nodes) {
		snprintf(err, err_len, "[regions] replicas = %u: the cluster has %u nodes",
			 c->replicas, c->cluster_nodes);
		return -EINVAL;
	}
	return region_protocols_parse(c, err, err_len);
}

/* protocol name -> index in proto_names (added when new); -1 when unknown or too many */
static int proto_index(struct sl_config *c, const char *name)
{
	for (uint32_t i = 0; i < c->n_proto_names; i++)
		if (strcmp(c->proto_names[i], name) == 0)
			return (int)i;
	if (sl_cons_find(name) == NULL || c->n_proto_names == SL_CFG_MAX_PROTOS)
		return -1;
	snprintf(c->proto_names[c->n_proto_names], sizeof(c->proto_names[0]), "%s", name);
	return (int)c->n_proto_names++;
}

/* [regions] protocols: FIRST[-LAST]:NAME items over the default protocol. */
static int region_protocols_parse(struct sl_config *c, char *err, size_t err_len)
{
	c->n_proto_names = 0;
	(void)proto_index(c, c->protocol);
	memset(c->region_proto, 0, sizeof(c->region_proto));
	char spec[SL_CFG_PATH_MAX];
	snprintf(spec, sizeof(spec), "%s", c->region_protocols);
	char *save = NULL;
	for (char *it = strtok_r(spec, ", ", &save); it != NULL; it = strtok_r(NULL, ", ", &save)) {
		char *colon = strchr(it, ':'), *end = NULL;
		unsigned long lo = strtoul(it, &end, 10), hi = lo;
		if (colon != NULL && end != NULL && *end == '-')
			hi = strtoul(end + 1, &end, 10);
		int pi = colon != NULL ? proto_index(c, colon + 1) : -1;
		if (colon == NULL || end != colon || !isdigit((unsigned char)it[0]) || lo > hi ||
		    hi >= c->regions || pi < 0) {
			char names[128];
			sl_cons_names(names, sizeof(names));
			snprintf(err, err_len,
				 "[regions] protocols: '%s': expected FIRST[-LAST]:NAME with regions "
				 "0..%u and NAME one of %s (at most %u different)",
				 it, c->regions - 1, names, SL_CFG_MAX_PROTOS);
			return -EINVAL;
		}
		for (unsigned long r = lo; r <= hi; r++)
			c->region_proto[r] = (uint8_t)pi;
	}
	return 0;
}

const char *sl_cfg_region_protocol(const struct sl_config *c, uint32_t r)
{
	/* a protocol switch changes it at run time (sl_cfg_region_set_protocol) */
	return c->proto_names[__atomic_load_n(&c->region_proto[r], __ATOMIC_ACQUIRE)];
}

int sl_cfg_protocols_register(struct sl_config *c)
{
	char names[256];
	sl_cons_names(names, sizeof(names)); /* "a, b, c": the registry's */
	char *save = NULL;
	for (char *t = strtok_r(names, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save))
		if (proto_index(c, t) < 0)
			return -ENOSPC;
	return 0;
}

int sl_cfg_region_set_protocol(struct sl_config *c, uint32_t r, const char *name)
{
	for (uint32_t i = 0; r < c->regions && i < c->n_proto_names; i++)
		if (strcmp(c->proto_names[i], name) == 0) {
			__atomic_store_n(&c->region_proto[r], (uint8_t)i, __ATOMIC_RELEASE);
			return 0;
		}
	return -ENOENT;
}

int sl_cfg_region_set_replicas(struct sl_config *c, uint32_t r, const uint32_t *nodes,
			       uint32_t copies, uint32_t preferred)
{
	if (!c->map_set || r >= c->regions || copies < 1 || copies > SL_CFG_MAP_COPIES)
		return -EINVAL;
	bool pref = false;
	for (uint32_t k = 0; k < copies; k++) {
		if (nodes[k] < 1 || nodes[k] > c->cluster_nodes)
			return -EINVAL;
		for (uint32_t j = 0; j < k; j++)
			if (nodes[j] == nodes[k])
				return -EINVAL;
		pref = pref || nodes[k] == preferred;
	}
	/* readers on other cores may see the old set, the new one, or for one read a mix
	 * (forwarding then asks a node that answers "not here": tried again) */
	for (uint32_t k = 0; k < copies; k++)
		__atomic_store_n(&c->map_nodes[r][k], (uint8_t)nodes[k], __ATOMIC_RELAXED);
	__atomic_store_n(&c->map_copies[r], (uint8_t)copies, __ATOMIC_RELEASE);
	__atomic_store_n(&c->map_preferred[r], (uint8_t)(pref ? preferred : nodes[0]),
			 __ATOMIC_RELAXED);
	return 0;
}

uint32_t sl_cfg_region_replicas(const struct sl_config *c, uint32_t r, uint32_t *nodes)
{
	if (c->map_set) {
		for (uint32_t k = 0; k < c->map_copies[r]; k++)
			nodes[k] = c->map_nodes[r][k];
		return c->map_copies[r];
	}
	uint32_t n = c->cluster_nodes;
	if (n <= 1) {
		nodes[0] = c->node_id;
		return 1;
	}
	uint32_t copies = c->replicas ? c->replicas : n;
	uint32_t max = sl_cons_max_copies(sl_cons_find(sl_cfg_region_protocol(c, r)));
	if (copies > max)
		copies = max;
	for (uint32_t k = 0; k < copies; k++)
		nodes[k] = (r + k) % n + 1;
	return copies;
}

uint32_t sl_cfg_region_preferred(const struct sl_config *c, uint32_t r)
{
	if (c->map_set) /* changed at run time by the main lcore (sl_cfg_region_set_preferred) */
		return __atomic_load_n(&c->map_preferred[r], __ATOMIC_RELAXED);
	uint32_t nodes[SL_CONS_MAX_PEERS];
	uint32_t k = sl_cfg_region_replicas(c, r, nodes);
	return nodes[(r / (c->cluster_nodes ? c->cluster_nodes : 1)) % k];
}

int sl_cfg_region_set_preferred(struct sl_config *c, uint32_t r, uint32_t node)
{
	uint32_t nodes[SL_CONS_MAX_PEERS];
	uint32_t k = r < c->regions ? sl_cfg_region_replicas(c, r, nodes) : 0;
	if (!c->map_set)
		return -ENOTSUP;
	for (uint32_t i = 0; i < k; i++)
		if (nodes[i] == node) {
			__atomic_store_n(&c->map_preferred[r], (uint8_t)node, __ATOMIC_RELAXED);
			return 0;
		}
	return -EINVAL;
}

bool sl_cfg_region_here(const struct sl_config *c, uint32_t r)
{
	uint32_t nodes[SL_CONS_MAX_PEERS];
	uint32_t k = sl_cfg_region_replicas(c, r, nodes);
	for (uint32_t i = 0; i < k; i++)
		if (nodes[i] == c->node_id)
			return true;
	return false;
}

void sl_cfg_region_range(const struct sl_config *c, uint32_t r, uint64_t *lo, uint64_t *hi,
			 uint32_t *split_from, uint32_t *split_epoch)
{
	if (c->map_ranged) {
		*lo = c->map_lo[r];
		*hi = c->map_hi[r];
		*split_from = c->map_split_from[r];
		*split_epoch = c->map_split_epoch[r];
		return;
	}
	uint32_t n = c->regions;
	*lo = (uint64_t)((((unsigned __int128)r << 64) + n - 1) / n);
	*hi = r + 1 == n ? UINT64_MAX
			 : (uint64_t)((((unsigned __int128)(r + 1) << 64) + n - 1) / n) - 1;
	*split_from = *split_epoch = 0;
}

uint32_t sl_cfg_region_merged(const struct sl_config *c, uint32_t r, uint32_t *epoch)
{
	*epoch = c->map_ranged ? c->map_merge_epoch[r] : 0;
	return c->map_ranged ? c->map_merged_into[r] : 0;
}

void sl_cfg_map_get(const struct sl_config *c, uint32_t r, struct sl_cfg_map_region *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->protocol, sizeof(out->protocol), "%s", sl_cfg_region_protocol(c, r));
	out->copies = sl_cfg_region_replicas(c, r, out->nodes);
	out->preferred = sl_cfg_region_preferred(c, r);
	out->ranged = c->map_ranged;
	sl_cfg_region_range(c, r, &out->hash_lo, &out->hash_hi, &out->split_from,
			    &out->split_epoch);
	out->merged_into = sl_cfg_region_merged(c, r, &out->merge_epoch);
}

/* A ranged map's live ranges tile the hash space, a region past the first `base` ones was
 * split from a lower one (which comes first), and a merged region names another one. */
static bool map_ranges_ok(const struct sl_cfg_map_region *m, uint32_t n, uint32_t base)
{
	uint32_t order[SL_CFG_MAX_REGIONS], live = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (m[i].hash_lo > m[i].hash_hi || m[i].split_from > i ||
		    (i >= base && m[i].split_from == 0))
			return false;
		if (m[i].merged_into != 0) {
			uint32_t t = m[i].merged_into - 1;
			if (t >= n || t == i || m[i].merge_epoch == 0)
				return false;
			continue;
		}
		uint32_t k = live++;
		while (k > 0 && m[order[k - 1]].hash_lo > m[i].hash_lo) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	if (live == 0 || m[order[0]].hash_lo != 0 || m[order[live - 1]].hash_hi != UINT64_MAX)
		return false;
	for (uint32_t k = 1; k < live; k++)
		if (m[order[k]].hash_lo != m[order[k - 1]].hash_hi + 1)
			return false;
	return true;
}

int sl_cfg_map_set(struct sl_config *c, const struct sl_cfg_map_region *m, uint32_t n,
		   char *err, size_t err_len)
{
	bool ranged = n > 0 && m[0].ranged;
	if (n > SL_CFG_MAX_REGIONS || n < c->regions || (n != c->regions && !ranged)) {
		snprintf(err, err_len, "the region map has %u regions, this node is set up for %u",
			 n, c->regions);
		return -EINVAL;
	}
	if (ranged && !map_ranges_ok(m, n, c->regions)) {
		snprintf(err, err_len, "the region map's hash ranges do not cover the hash space "
				       "once each, or a region past the first %u was not split from "
				       "a lower one",
			 c->regions);
		return -EINVAL;
	}
	struct sl_config t = *c; /* checked whole before anything changes */
	t.regions = n;
	t.map_ranged = ranged;
	t.n_proto_names = 0;
	(void)proto_index(&t, t.protocol);
	for (uint32_t r = 0; r < n; r++) {
		const struct sl_cfg_map_region *e = &m[r];
		int pi = proto_index(&t, e->protocol);
		uint32_t max = pi < 0 ? 0 : sl_cons_max_copies(sl_cons_find(e->protocol));
		bool ok = pi >= 0 && e->copies >= 1 && e->copies <= max &&
			  e->copies <= SL_CFG_MAP_COPIES;
		bool pref = false;
		for (uint32_t k = 0; ok && k < e->copies; k++) {
			ok = e->nodes[k] >= 1 && e->nodes[k] <= c->cluster_nodes;
			for (uint32_t j = 0; ok && j < k; j++)
				ok = e->nodes[j] != e->nodes[k];
			pref = pref || e->nodes[k] == e->preferred;
		}
		if (!ok || !pref) {
			snprintf(err, err_len,
				 "the region map's region %u does not fit this node: protocol '%s' "
				 "(built in, at most %u kinds), %u replicas among nodes 1..%u, "
				 "preferred leader %u one of them",
				 r, e->protocol, SL_CFG_MAX_PROTOS, e->copies, c->cluster_nodes,
				 e->preferred);
			return -EINVAL;
		}
		t.region_proto[r] = (uint8_t)pi;
		t.map_copies[r] = (uint8_t)e->copies;
		for (uint32_t k = 0; k < e->copies; k++)
			t.map_nodes[r][k] = (uint8_t)e->nodes[k];
		t.map_preferred[r] = (uint8_t)e->preferred;
		t.map_lo[r] = e->hash_lo;
		t.map_hi[r] = e->hash_hi;
		t.map_split_from[r] = (uint16_t)e->split_from;
		t.map_split_epoch[r] = e->split_epoch;
		t.map_merged_into[r] = (uint16_t)e->merged_into;
		t.map_merge_epoch[r] = e->merge_epoch;
	}
	t.map_set = true;
	*c = t;
	return 0;
}

int sl_cfg_map_format(const struct sl_config *c, char *buf, size_t len)
{
	size_t used = 0;
	int k = snprintf(buf, len, "regions %u\n", c->regions);
	for (uint32_t r = 0; k >= 0 && (size_t)k < len - used && r < c->regions; r++) {
		used += (size_t)k;
		struct sl_cfg_map_region e;
		sl_cfg_map_get(c, r, &e);
		k = snprintf(buf + used, len - used, "%u %s %u ", r, e.protocol, e.preferred);
		for (uint32_t i = 0; k >= 0 && (size_t)k < len - used && i < e.copies; i++) {
			used += (size_t)k;
			k = snprintf(buf + used, len - used, "%s%u", i ? "," : "", e.nodes[i]);
		}
		if (k >= 0 && (size_t)k < len - used && e.ranged) {
			used += (size_t)k;
			k = snprintf(buf + used, len - used, " %016" PRIx64 " %016" PRIx64 " %u %u",
				     e.hash_lo, e.hash_hi, e.split_from, e.split_epoch);
		}
		if (k >= 0 && (size_t)k < len - used && e.ranged && e.merged_into != 0) {
			used += (size_t)k; /* a merged region: into which, at which segment */
			k = snprintf(buf + used, len - used, " %u %u", e.merged_into, e.merge_epoch);
		}
		if (k >= 0 && (size_t)k < len - used) {
			used += (size_t)k;
			k = snprintf(buf + used, len - used, "\n");
		}
	}
	if (k < 0 || (size_t)k >= len - used)
		return -ENOSPC;
	return (int)(used + (size_t)k);
}

int sl_cfg_map_parse(const char *text, struct sl_cfg_map_region *out, uint32_t max)
{
	unsigned n = 0;
	int pos = 0;
	if (sscanf(text, "regions %u\n%n", &n, &pos) != 1 || pos == 0 || n == 0 || n > max)
		return -EBADMSG;
	const char *p = text + pos;
	for (uint32_t r = 0; r < n; r++) {
		struct sl_cfg_map_region *e = &out[r];
		memset(e, 0, sizeof(*e));
		unsigned id = 0, pref = 0;
		int used = 0;
		if (sscanf(p, "%u %31s %u %n", &id, e->protocol, &pref, &used) != 3 || id != r)
			return -EBADMSG;
		p += used;
		e->preferred = pref;
		/* bounded: SL_CFG_MAP_COPIES numbers */
		for (;;) {
			char *end = NULL;
			unsigned long v = strtoul(p, &end, 10);
			if (end == p || v > UINT32_MAX || e->copies == SL_CFG_MAP_COPIES)
				return -EBADMSG;
			e->nodes[e->copies++] = (uint32_t)v;
			p = end;
			if (*p != ',')
				break;
			p++;
		}
		if (*p == ' ') { /* a ranged map: every line says its range */
			uint64_t lo = 0, hi = 0;
			unsigned from = 0, ep = 0;
			if (sscanf(p, " %16" SCNx64 " %16" SCNx64 " %u %u%n", &lo, &hi, &from, &ep,
				   &used) != 4 || (r > 0 && !out[0].ranged))
				return -EBADMSG;
			p += used;
			e->ranged = true;
			e->hash_lo = lo;
			e->hash_hi = hi;
			e->split_from = from;
			e->split_epoch = ep;
			unsigned into = 0, mep = 0;
			if (*p == ' ') { /* merged: "INTO EPOCH" */
				if (sscanf(p, " %u %u%n", &into, &mep, &used) != 2 || into == 0 ||
				    mep == 0)
					return -EBADMSG;
				p += used;
			}
			e->merged_into = into;
			e->merge_epoch = mep;
		}
		if (*p != '\n' || (r > 0 && out[0].ranged && !e->ranged))
			return -EBADMSG;
		p++;
	}
	return *p == '\0' ? (int)n : -EBADMSG;
}

int sl_cfg_map_diff(const struct sl_cfg_map_region *a, const struct sl_cfg_map_region *b,
		    uint32_t n)
{
	for (uint32_t r = 0; r < n; r++)
		if (a[r].copies != b[r].copies ||
		    memcmp(a[r].nodes, b[r].nodes, a[r].copies * sizeof(a[r].nodes[0])) != 0)
			return (int)r;
	return -1;
}

void sl_config_dump(const struct sl_config *c, FILE *out)
{
	const char *sec = "";
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		const char *field = (const char *)c + k->off;
		if (strcmp(sec, k->section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
			sec = k->section;
		}
		fprintf(out, "; %s\n%s = ", k->help, k->name);
		switch (k->type) {
		case K_U32:
			fprintf(out, "%" PRIu32 "\n", *(const uint32_t *)field);
			break;
		case K_BOOL:
			fprintf(out, "%s\n", *(const bool *)field ? "true" : "false");
			break;
		case K_STR:
			fprintf(out, "%s\n", field);
			break;
		case K_HUGE:
			fprintf(out, "%s\n",
				c->hugepages == SL_HUGE_AUTO ? "auto"
				: c->hugepages == SL_HUGE_ON ? "on"
							     : "off");
			break;
		case K_POLL:
			fprintf(out, "%s\n", c->poll_mode == SL_POLL_PERF ? "perf" : "adaptive");
			break;
		case K_FABRIC:
			fprintf(out, "%s\n", c->fabric == SL_FABRIC_UDP ? "udp" : "memif");
			break;
		}
	}
}

int sl_cfg_parse_listen(const char *s, struct in_addr *addr, uint32_t *port)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon[1] == '\0' || (size_t)(colon - s) >= 32)
		return -EINVAL;
	char host[32];
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (host[0] == '\0')
		snprintf(host, sizeof(host), "0.0.0.0");
	if (inet_pton(AF_INET, host, addr) != 1)
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || p < 1 || p > 65535 || !isdigit((unsigned char)colon[1]))
		return -EINVAL;
	*port = (uint32_t)p;
	return 0;
}
