/* log.h - sluiced's DPDK log types, one per module: sluice.node, sluice.net, sluice.wal,
 * sluice.ckpt, sluice.ingest, sluice.fabric. SL_LOG writes "sluiced: " and the message through rte_log,
 * so the EAL option --log-level=sluice.net:debug (or sluice.*:warning) sets each level. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <rte_log.h>

/* registered before main() (constructors); default level INFO */
extern int sl_logtype_node, sl_logtype_net, sl_logtype_wal, sl_logtype_ckpt, sl_logtype_ingest,
	sl_logtype_fabric;

/* SL_LOG(ERR, wal, "core %u: ...\n", ...): level is an rte_log level without its
 * RTE_LOG_ prefix (EMERG ... DEBUG), module one of the types above; fmt ends in "\n". */
#define SL_LOG(level, module, fmt, ...)                                                            \
	rte_log(RTE_LOG_##level, sl_logtype_##module, "sluiced: " fmt, ##__VA_ARGS__)

#endif
