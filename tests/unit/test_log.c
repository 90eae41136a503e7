/* test_log.c - cmocka tests of sluiced's per-module log types (log.h): registered under
 * their names before the EAL starts, so --log-level=sluice.<module>:<level> sets each one
 * alone; SL_LOG writes "<UTC time> <LEVEL> sluiced: <message>", drops what is below the
 * module's level, and cuts an overlong message visibly. */
/* cmocka needs these before it, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>

#include "log.h"
#include "sl_assert.h"

static char *text; /* what the log stream received */
static size_t text_len;
static FILE *stream;

static int setup(void **state)
{
	(void)state;
	char *argv[] = {"test_log", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
			"-m", "64", "--log-level=lib.eal:error", "--log-level=sluice.net:debug",
			"--log-level=sluice.wal:warning"};
	if (rte_eal_init((int)SL_ARRAY_LEN(argv), argv) < 0)
		return -1;
	stream = open_memstream(&text, &text_len);
	return stream == NULL || rte_openlog_stream(stream) != 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	rte_openlog_stream(NULL);
	fclose(stream);
	free(text);
	return 0;
}

/* The EAL option reached each type by its name; the others keep the default. */
static void test_levels(void **state)
{
	(void)state;
	assert_int_equal(rte_log_get_level((uint32_t)sl_logtype_net), RTE_LOG_DEBUG);
	assert_int_equal(rte_log_get_level((uint32_t)sl_logtype_wal), RTE_LOG_WARNING);
	int others[] = {sl_logtype_node, sl_logtype_ckpt, sl_logtype_ingest};
	for (size_t i = 0; i < SL_ARRAY_LEN(others); i++)
		assert_int_equal(rte_log_get_level((uint32_t)others[i]), RTE_LOG_INFO);
	/* five distinct types of their own, none the EAL's fallback */
	int all[] = {sl_logtype_node, sl_logtype_net, sl_logtype_wal, sl_logtype_ckpt,
		     sl_logtype_ingest};
	for (size_t i = 0; i < SL_ARRAY_LEN(all); i++) {
		assert_true(all[i] >= RTE_LOGTYPE_FIRST_EXT_ID);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(all[i], all[j]);
	}
}

/* One line: "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL sluiced: rest" with a time within a minute
 * of now; returns where the next line starts. */
static const char *expect_line(const char *p, const char *level, const char *rest)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(p, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(end);
	assert_true(end[0] == '.' && end[1] >= '0' && end[1] <= '9' && end[2] >= '0' &&
		    end[2] <= '9' && end[3] >= '0' && end[3] <= '9' && end[4] == 'Z' &&
		    end[5] == ' ');
	time_t t = timegm(&tm), now = time(NULL);
	assert_true(t <= now && t > now - 60);
	end += 6;
	assert_memory_equal(end, level, strlen(level));
	end += strlen(level);
	assert_memory_equal(end, " sluiced: ", 10);
	end += 10;
	assert_memory_equal(end, rest, strlen(rest));
	return end + strlen(rest);
}

/* Messages carry the time, the level and the prefix; a module's level filters only that
 * module. */
static void test_messages(void **state)
{
	(void)state;
	SL_LOG(DEBUG, net, "net debug %d\n", 1);
	SL_LOG(INFO, wal, "wal info %d\n", 2);       /* below sluice.wal's warning */
	SL_LOG(WARNING, wal, "wal warning %d\n", 3);
	SL_LOG(DEBUG, node, "node debug %d\n", 4);   /* below the default INFO */
	SL_LOG(ERR, ckpt, "ckpt error\n");
	fflush(stream);
	const char *p = expect_line(text, "DEBUG", "net debug 1\n");
	p = expect_line(p, "WARNING", "wal warning 3\n");
	p = expect_line(p, "ERR", "ckpt error\n");
	assert_int_equal(*p, '\0');
	assert_string_equal(sl_log_level_name(RTE_LOG_NOTICE), "NOTICE");
	assert_string_equal(sl_log_level_name(99), "");
}

/* A message longer than a line is cut, and ends in "...\n". */
static void test_long_message(void **state)
{
	(void)state;
	static char big[3 * SL_LOG_LINE_MAX];
	memset(big, 'x', sizeof(big) - 1);
	fseek(stream, 0, SEEK_SET);
	SL_LOG(ERR, node, "%s\n", big);
	fflush(stream);
	size_t n = strlen(text);
	assert_true(n > SL_LOG_LINE_MAX && n < SL_LOG_LINE_MAX + 64);
	assert_memory_equal(text + n - 5, "x...\n", 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_long_message),
	};
	return cmocka_run_group_tests_name("log", tests, setup, teardown);
}
