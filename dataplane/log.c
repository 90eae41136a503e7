/* log.c - registers sluiced's per-module log types with DPDK (see log.h). Registered in
 * constructors, before the EAL parses --log-level, which then finds them by name. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* INFO: what sluiced always printed (errors, warnings, start-up notes) shows by default;
 * DEBUG lines only when asked for */
RTE_LOG_REGISTER(sl_logtype_node, sluice.node, INFO);
RTE_LOG_REGISTER(sl_logtype_net, sluice.net, INFO);
RTE_LOG_REGISTER(sl_logtype_wal, sluice.wal, INFO);
RTE_LOG_REGISTER(sl_logtype_ckpt, sluice.ckpt, INFO);
RTE_LOG_REGISTER(sl_logtype_ingest, sluice.ingest, INFO);
RTE_LOG_REGISTER(sl_logtype_fabric, sluice.fabric, INFO);

const char *sl_log_level_name(uint32_t level)
{
	static const char *const names[] = {"",	  "EMERG",  "ALERT", "CRIT",
					    "ERR",	  "WARNING", "NOTICE", "INFO", "DEBUG"};
	return level < sizeof(names) / sizeof(names[0]) ? names[level] : "";
}

/* stderr is the journal's stream: JOURNAL_STREAM names its device:inode (systemd.exec) */
static bool to_journal(void)
{
	static int known = -1;
	if (known < 0) {
		const char *js = getenv("JOURNAL_STREAM");
		unsigned long long dev = 0, ino = 0;
		struct stat st;
		known = js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
			fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
			(unsigned long long)st.st_ino == ino;
	}
	return known == 1;
}

/* The line for msg: "<time> <LEVEL> sluiced: msg", or "<N>sluiced: msg" to the journal. */
static void format_line(uint32_t level, const char *msg, char *out, size_t cap)
{
	if (to_journal()) {
		snprintf(out, cap, "<%u>sluiced: %s", level > 0 ? level - 1 : 0, msg);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);
	snprintf(out, cap, "%s %s sluiced: %s", when, sl_log_level_name(level), msg);
}

static void format_msg(char *msg, size_t cap, const char *fmt, va_list ap)
{
	int len = vsnprintf(msg, cap, fmt, ap);
	if (len >= (int)cap) /* cut: say so, keep the line's end */
		memcpy(msg + cap - 5, "...\n", 5);
}

/* The whole line of a message, into line[SL_LOG_LINE_MAX + 48]. */
static void vline(uint32_t level, const char *fmt, va_list ap, char *line)
{
	char msg[SL_LOG_LINE_MAX];
	format_msg(msg, sizeof(msg), fmt, ap);
	format_line(level, msg, line, SL_LOG_LINE_MAX + 48);
}

void sl_log_emit(uint32_t level, uint32_t logtype, const char *fmt, ...)
{
	if (!rte_log_can_log(logtype, level))
		return;
	char line[SL_LOG_LINE_MAX + 48];
	va_list ap;
	va_start(ap, fmt);
	vline(level, fmt, ap, line);
	va_end(ap);
	rte_log(level, logtype, "%s", line);
}

void sl_log_plain(uint32_t level, const char *fmt, ...)
{
	char line[SL_LOG_LINE_MAX + 48];
	va_list ap;
	va_start(ap, fmt);
	vline(level, fmt, ap, line);
	va_end(ap);
	fputs(line, stderr);
	fflush(stderr);
}
