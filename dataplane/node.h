/* node.h - the node core of sluiced: regions (hash ranges of the series id) owned by worker
 * lcores, cross-core rings, the per-core WAL and store, recovery at start and the
 * requests the main lcore's ctl server sends to the workers. */
#ifndef SL_NODE_H
#define SL_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"

struct sl_node;

struct sl_node_env {
	unsigned n_workers;
	unsigned worker_lcores[SL_CFG_MAX_WORKERS];
	const char *hugepage_mode; /* "hugepages" or "no-huge" */
	const char *eal_args;      /* for status */
};

/* Before rte_eal_init: the EAL --vdev specs of the fabric: its memif links (one per peer
 * node, cluster nodes > 1), or with fabric = udp its port when that is a vdev (a PCI
 * port is allowed by main.c); the fabric's device is reserved from ingest (port.h).
 * Returns how many were written to out (0 on a single node), or a negative errno with
 * err set. */
#define SL_FAB_VDEV_MAX 512
int nd_fab_vdevs(const struct sl_config *c, char (*out)[SL_FAB_VDEV_MAX], unsigned max,
		 char *err, size_t err_len);

/* Before rte_eal_init: the EAL --vdev spec of the exception path's device ([net]
 * exception, node_exc.c): 1 with out set, 0 when the node has none. */
int nd_exc_vdev(const struct sl_config *c, unsigned workers, char *out, size_t len);

/* After rte_eal_init: allocate everything, recover regions from snapshots + WAL. */
int sl_node_create(const struct sl_config *cfg, const struct sl_node_env *env,
		   struct sl_node **out, char *err, size_t err_len);
/* Launch function of worker lcore i (arg = sl_node_worker_arg(node, i)). */
int sl_node_worker_main(void *arg);
void *sl_node_worker_arg(struct sl_node *n, unsigned i);
/* Main lcore, periodically: heartbeats, dead-client reaping. */
void sl_node_housekeeping(struct sl_node *n);
/* Ask the workers to stop: they drain, make the WAL durable, ack what is stored. */
void sl_node_stop(struct sl_node *n);
bool sl_node_failed(const struct sl_node *n);
bool sl_node_stopping(const struct sl_node *n);
/* Every region has applied the log it recovered (raft re-applies after its election). */
bool sl_node_recovered(const struct sl_node *n);
void sl_node_destroy(struct sl_node *n);

/* ctl: handle one request on the main lcore (see docs/ctl.md for the commands). */
int sl_node_ctl(void *node, const char *cmd, struct json_object *args,
		struct json_object **result, const char **err_code, char *err_msg,
		size_t err_len);

/* Region of a series id when the node has n_regions equal hash ranges. */
static inline uint32_t sl_node_region_of(uint64_t series_id, uint32_t n_regions)
{
	return (uint32_t)(((unsigned __int128)series_id * n_regions) >> 64);
}

#endif
