/* log.h - sluiced's DPDK log types, one per module: sluice.node, sluice.net, sluice.wal,
 * sluice.ckpt, sluice.ingest, sluice.fabric. SL_LOG writes a line through rte_log, so the
 * EAL option --log-level=sluice.net:debug (or sluice.*:warning) sets each level. A line is
 * "2026-12-02T20:24:03.123Z NOTICE sluiced: message" (UTC, milliseconds), or, when
 * stderr is the systemd journal's stream (JOURNAL_STREAM), "<5>sluiced: message": the
 * journal keeps its own time and takes the level from the <N> prefix (syslog's
 * priority). */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <rte_log.h>

/* registered before main() (constructors); default level INFO */
extern int sl_logtype_node, sl_logtype_net, sl_logtype_wal, sl_logtype_ckpt, sl_logtype_ingest,
	sl_logtype_fabric;

/* SL_LOG(ERR, wal, "core %u: ...\n", ...): level is an rte_log level without its
 * RTE_LOG_ prefix (EMERG ... DEBUG), module one of the types above; fmt ends in "\n". */
#define SL_LOG(level, module, fmt, ...)                                                            \
	sl_log_emit(RTE_LOG_##level, (uint32_t)sl_logtype_##module, fmt, ##__VA_ARGS__)

/* Formats one line (at most SL_LOG_LINE_MAX bytes; a longer message is cut and ends in
 * "...") and hands it to rte_log when the module's level lets it through. */
#define SL_LOG_LINE_MAX 2048
void sl_log_emit(uint32_t level, uint32_t logtype, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same line straight to stderr, whatever the log levels (sluiced's start and stop,
 * before the EAL and after it). */
void sl_log_plain(uint32_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Level names as SL_LOG prints them ("NOTICE"), "" out of range. */
const char *sl_log_level_name(uint32_t level);

#endif
