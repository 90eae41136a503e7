/* config.h - sluiced's configuration: defaults for every key, the INI file (rte_cfgfile)
 * and command-line overrides. docs/config.md documents each key; sluice.conf.example
 * lists them all with their defaults. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SL_CFG_PATH_MAX 512
#define SL_CFG_MAX_WORKERS 32
#define SL_CFG_MAX_REGIONS 256
#define SL_CFG_MAX_PROTOS 4 /* distinct protocols in [regions] protocols */
#define SL_CFG_MAP_COPIES 9 /* replicas of a region in a map (SL_CONS_MAX_PEERS) */
#define SL_CFG_SHM_SLOTS_MAX 256 /* [ingest] shm_slots; the node's per-slot arrays (node_limits.h) */

enum sl_hugepage_mode { SL_HUGE_AUTO = 0, SL_HUGE_ON = 1, SL_HUGE_OFF = 2 };
enum sl_poll_mode { SL_POLL_ADAPTIVE = 0, SL_POLL_PERF = 1 };
/* how the nodes of a cluster are linked: memif on one host, Ethernet/UDP on a NIC port */
enum sl_fabric_kind { SL_FABRIC_MEMIF = 0, SL_FABRIC_UDP = 1 };
#define SL_CFG_MAX_NODES 9 /* = SL_CONS_MAX_PEERS (checked in config.c) */

struct sl_config {
	/* [node] */
	uint32_t node_id;
	char name[64];
	char data_dir[SL_CFG_PATH_MAX];
	char ctl_socket[SL_CFG_PATH_MAX]; /* "" = <data_dir>/sluiced.sock */
	/* [eal] */
	uint32_t workers;         /* worker lcores; 0 = one per spare CPU, at least 1 */
	enum sl_hugepage_mode hugepages;
	uint32_t memory_mb;       /* EAL memory when running with --no-huge */
	char pci_allow[SL_CFG_PATH_MAX]; /* "" = --no-pci (never touch a real NIC) */
	char eal_extra[SL_CFG_PATH_MAX];
	/* [regions] */
	uint32_t regions;         /* hash ranges on this node, spread over the workers */
	char protocol[32];        /* consensus protocol of every region */
	uint32_t election_timeout_ms; /* raft */
	uint32_t log_keep_mb;     /* applied entries kept per region for replicas behind */
	uint32_t log_keep_peer_mb; /* ...while a snapshot for a replica is built or sent */
	char region_protocols[SL_CFG_PATH_MAX]; /* "0-3:raft,4-7:standalone": overrides */
	uint32_t replicas;        /* copies of a replicated region; 0 = every node */
	/* derived (sl_config_validate): each region's protocol, an index into proto_names
	 * ([0] is `protocol`) */
	uint8_t region_proto[SL_CFG_MAX_REGIONS];
	char proto_names[SL_CFG_MAX_PROTOS][32];
	uint32_t n_proto_names;
	/* set (sl_cfg_map_set): the region map as sluice-ctld holds it, in place of the one
	 * derived from [regions] and [cluster] (node_ctld.c takes it at start) */
	bool map_set;
	uint8_t map_copies[SL_CFG_MAX_REGIONS];
	uint8_t map_nodes[SL_CFG_MAX_REGIONS][SL_CFG_MAP_COPIES];
	uint8_t map_preferred[SL_CFG_MAX_REGIONS];
	/* ...and once a region was split (docs/cluster.md, "Splitting a region"): each
	 * region's hash range and the region it was split from (+ 1; 0: none) at which
	 * segment; map_ranged false: regions split the hash space evenly */
	bool map_ranged;
	uint64_t map_lo[SL_CFG_MAX_REGIONS], map_hi[SL_CFG_MAX_REGIONS];
	uint16_t map_split_from[SL_CFG_MAX_REGIONS];
	uint32_t map_split_epoch[SL_CFG_MAX_REGIONS];
	/* a region merged into another ("Merging regions"): that one's id + 1 (0: live) and
	 * the segment the merged region starts at; its range stays as it was (history) */
	uint16_t map_merged_into[SL_CFG_MAX_REGIONS];
	uint32_t map_merge_epoch[SL_CFG_MAX_REGIONS];
	/* [wal] */
	uint32_t wal_segment_mb;
	uint32_t wal_buffer_kb;
	bool wal_direct_io;
	bool wal_salvage;         /* cut at damaged durable WAL records instead of refusing */
	uint32_t checkpoint_mb;   /* snapshot + WAL release after this much WAL */
	uint32_t checkpoint_delta_min_kb; /* regions with full images this big: delta images */
	/* [poll] */
	enum sl_poll_mode poll_mode;
	uint32_t idle_sleep_us_max;
	/* [ingest] */
	uint32_t shm_slots;
	uint32_t shm_ring_entries;
	char shm_ingest_path[SL_CFG_PATH_MAX]; /* "" = /dev/shm/sluice-<name>.ingest */
	char stats_path[SL_CFG_PATH_MAX];      /* "" = /dev/shm/sluice-<name>.stats */
	uint32_t batch_points;    /* points per proposal at most */
	/* [net] */
	char vdevs[SL_CFG_PATH_MAX]; /* ';'-separated EAL --vdev specs; "" = no ports */
	char ipv4[32];               /* the node's address on its ports */
	uint32_t ipv4_addr;          /* derived, host byte order */
	uint32_t line_port;          /* InfluxDB line protocol over UDP */
	uint32_t session_port;       /* binary session protocol over UDP */
	char precision[8];           /* line protocol timestamp unit: ns, us, ms, s */
	uint32_t cluster_id;
	char kernel_udp[8];          /* auto | on | off */
	char kernel_address[32];     /* the kernel sockets' bind address */
	char exception[16];          /* auto | virtio_user | tap | off */
	char exception_iface[16];    /* "" = slx-<name> */
	uint32_t exception_prefix;   /* of the node's address on that interface */
	/* [http] */
	bool http_enabled;
	char http_listen[64];        /* ADDRESS:PORT */
	uint32_t http_max_body;      /* bytes, after gzip decoding */
	uint32_t http_max_connections;
	uint32_t http_idle_timeout_s;
	uint32_t http_write_timeout_ms;
	uint32_t mbufs;              /* per port */
	uint32_t frag_max_flows;     /* datagrams in IPv4 reassembly per worker; 0 = none */
	/* [cluster] */
	uint32_t cluster_nodes;      /* node ids 1..N replicate every region; 1 = one node */
	enum sl_fabric_kind fabric;
	char fabric_dir[SL_CFG_PATH_MAX]; /* memif sockets of the links between nodes */
	char fabric_port[SL_CFG_PATH_MAX]; /* udp: the DPDK device, a PCI address or vdev args */
	char fabric_addresses[SL_CFG_PATH_MAX]; /* udp: "1=10.0.0.1,2=10.0.0.2,..." */
	char fabric_macs[SL_CFG_PATH_MAX];      /* udp: static "2=02:00:00:00:00:02,..." */
	uint32_t fabric_udp_port;    /* udp: port of core 0; core c gets this + c */
	/* derived (sl_config_finish), fabric = udp: each node's address (host order) and
	 * static MAC, indexed by node id; the ethdev name of fabric_port */
	uint32_t fabric_ip[SL_CFG_MAX_NODES + 1];
	uint8_t fabric_mac[SL_CFG_MAX_NODES + 1][6];
	bool fabric_mac_set[SL_CFG_MAX_NODES + 1];
	char fabric_dev[64];
	bool fabric_pci;             /* fabric_port is a PCI address (else a vdev) */
	uint32_t fabric_mtu;         /* bytes of a fabric frame after its Ethernet header */
	bool balance_leaders;        /* move each region's leadership to its preferred replica */
	char ctld[SL_CFG_PATH_MAX];  /* ctl sockets of the sluice-ctld replicas; "" = none */
	bool rejoin; /* --rejoin: a new data dir replaces a lost one (not an INI key) */
	uint32_t frag_timeout_ms;    /* a datagram's fragments are freed after this */
	/* [debug] */
	bool fault_injection;     /* allow the debug_* ctl commands (tests only) */
	uint32_t ml_ack_copies;   /* multileader: durable copies before a write is acked */
	bool ml_home;             /* multileader: writes go to the region's home replica */
	uint32_t ml_retention;    /* multileader: own entries kept for a lagging peer */
	uint32_t xmsg_pool;       /* cross-core messages (tests shrink it) */
};

#define SL_CFG_HTTP_LISTEN_DEFAULT "0.0.0.0:8086"

void sl_config_default(struct sl_config *c);
/* "A.B.C.D:PORT" (or ":PORT" for all addresses) -> address (network order) and port;
 * -EINVAL otherwise. */
struct in_addr;
int sl_cfg_parse_listen(const char *s, struct in_addr *addr, uint32_t *port);
/* Load an INI file over the current values. Unknown sections/keys and bad values are
 * errors (message in err). */
int sl_config_load(struct sl_config *c, const char *path, char *err, size_t err_len);
/* Set one key ("section.key" = value), as the file and the command line do. */
int sl_config_set(struct sl_config *c, const char *section, const char *key, const char *value,
		  char *err, size_t err_len);
/* Fill the derived defaults (paths) and check ranges. */
int sl_config_finish(struct sl_config *c, char *err, size_t err_len);
/* Placement of region r: from the map sluice-ctld gave (sl_cfg_map_set), else derived from
 * [regions] and [cluster] the way ctld derives its map: its protocol's name, and its
 * replicas: `copies` nodes (1 for a single-copy protocol, else [regions] replicas or
 * every node) starting at node (r mod nodes) + 1, in turn. */
const char *sl_cfg_region_protocol(const struct sl_config *c, uint32_t r);
uint32_t sl_cfg_region_replicas(const struct sl_config *c, uint32_t r, uint32_t *nodes);
bool sl_cfg_region_here(const struct sl_config *c, uint32_t r);
/* The replica that should lead region r: the slot moves on once per lap over the nodes,
 * so leaders spread evenly over nodes (and over the replica slots); sluice-ctld's map
 * names the same one. */
uint32_t sl_cfg_region_preferred(const struct sl_config *c, uint32_t r);
/* A new preferred leader for region r at run time (from sluice-ctld's map; workers read it
 * with sl_cfg_region_preferred): 0, -EINVAL (not a replica), -ENOTSUP (no ctld map). */
int sl_cfg_region_set_preferred(struct sl_config *c, uint32_t r, uint32_t node);

/* Gives every protocol built in an index in proto_names now (at start, before the
 * workers run), so that a protocol switch at run time only looks one up. 0 or -ENOSPC. */
int sl_cfg_protocols_register(struct sl_config *c);
/* Region r runs protocol `name` from now on (a protocol switch, on the region's worker;
 * readers on other cores see the old or the new one). 0, or -ENOENT when not registered. */
int sl_cfg_region_set_protocol(struct sl_config *c, uint32_t r, const char *name);

/* Region r's replicas from now on (a membership change through a protocol switch, on
 * the region's worker, or at start): `copies` distinct node ids of the cluster; the
 * preferred leader stays `preferred` when it is one of them, else the first. 0, or -EINVAL
 * (no map set, or a bad set: nothing changes). */
int sl_cfg_region_set_replicas(struct sl_config *c, uint32_t r, const uint32_t *nodes,
			       uint32_t copies, uint32_t preferred);

/* One region of a region map: protocol, replicas in order, preferred leader; with
 * `ranged`, its hash range [hash_lo, hash_hi] and, for a region made by a split, the
 * region it was split from (split_from = that id + 1) and the segment both start at. */
struct sl_cfg_map_region {
	char protocol[32];
	uint32_t copies;
	uint32_t nodes[SL_CFG_MAP_COPIES];
	uint32_t preferred;
	bool ranged;
	uint64_t hash_lo, hash_hi;
	uint32_t split_from, split_epoch;
	/* merged into region merged_into - 1 (0: live), whose segment merge_epoch holds it;
	 * a merged region's range is outside the tiling */
	uint32_t merged_into, merge_epoch;
};
/* Region r merged into another: that region's id + 1 and *epoch the segment that holds
 * both; 0 for a live region. */
uint32_t sl_cfg_region_merged(const struct sl_config *c, uint32_t r, uint32_t *epoch);
/* Region r's hash range and parent (split_from: id + 1, 0: none) in the map in effect:
 * an even share of the hash space until a split made the map ranged. */
void sl_cfg_region_range(const struct sl_config *c, uint32_t r, uint64_t *lo, uint64_t *hi,
			 uint32_t *split_from, uint32_t *split_epoch);
/* The map in effect for region r (set or derived). */
void sl_cfg_map_get(const struct sl_config *c, uint32_t r, struct sl_cfg_map_region *out);
/* Put a map (one entry per region, `n` of them) in place of the derived one, after
 * checking it fits this node: as many regions (more when ranged: the ranges tile the hash
 * space, regions past [regions] regions were split from a lower one; `regions` becomes n), known protocols (at most SL_CFG_MAX_PROTOS
 * in all) and copies within each protocol's bound, distinct replicas among 1..nodes, the
 * preferred leader one of them. 0 or -EINVAL with a message naming the region. */
int sl_cfg_map_set(struct sl_config *c, const struct sl_cfg_map_region *m, uint32_t n,
		   char *err, size_t err_len);
/* The map in effect as text, one line per region ("R PROTOCOL PREFERRED N1,N2,...", and
 * once ranged " LO HI FROM EPOCH", hex range, parent + 1 and its segment) after a
 * "regions N" line: what a data dir keeps. Bytes written (NUL excluded), or
 * -ENOSPC. Parsing gives entries for sl_cfg_map_set: count, or -EBADMSG. */
int sl_cfg_map_format(const struct sl_config *c, char *buf, size_t len);
int sl_cfg_map_parse(const char *text, struct sl_cfg_map_region *out, uint32_t max);
/* The first region whose replicas differ (-1: none). The preferred leader is not
 * compared (sluice-ctld moves it at run time: transfer_leader), nor the protocol (a
 * switch changes it at run time, and a data dir records its regions' own: the node
 * runs the protocol of the log segment its image is of, docs/cluster.md). */
int sl_cfg_map_diff(const struct sl_cfg_map_region *a, const struct sl_cfg_map_region *b,
		    uint32_t n);

/* Print every key with its current value, as an INI file. */
void sl_config_dump(const struct sl_config *c, FILE *out);

#endif
