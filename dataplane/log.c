/* log.c - registers sluiced's per-module log types with DPDK (see log.h). Registered in
 * constructors, before the EAL parses --log-level, which then finds them by name. */
#include "log.h"

/* INFO: what sluiced always printed (errors, warnings, start-up notes) shows by default;
 * DEBUG lines only when asked for */
RTE_LOG_REGISTER(sl_logtype_node, sluice.node, INFO);
RTE_LOG_REGISTER(sl_logtype_net, sluice.net, INFO);
RTE_LOG_REGISTER(sl_logtype_wal, sluice.wal, INFO);
RTE_LOG_REGISTER(sl_logtype_ckpt, sluice.ckpt, INFO);
RTE_LOG_REGISTER(sl_logtype_ingest, sluice.ingest, INFO);
RTE_LOG_REGISTER(sl_logtype_fabric, sluice.fabric, INFO);
