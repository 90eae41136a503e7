/* fuzz_lineproto.c - libFuzzer target for the line protocol parser: any datagram must parse
 * without a crash or sanitizer report, every accepted field must be well-formed, and every
 * accepted field formatted back to text must be one line that parses to the same key,
 * value and timestamp. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "fuzz_util.h"
#include "lineproto.h"

#define REPARSE_MAX (2 * SL_LP_LINE_MAX + 1024) /* formatting can grow a line */

static char scratch[SL_LP_SCRATCH_BYTES(SL_LP_LINE_MAX)];
static char scratch2[SL_LP_SCRATCH_BYTES(REPARSE_MAX)];
static char text[REPARSE_MAX];
static struct sl_lp_line line, again;

static void check_field(const struct sl_lp_line *l, const struct sl_lp_field *f)
{
	CHECK(f->key_len >= 3 && f->key_len <= SL_KEY_MAX);
	CHECK(f->key >= l->scratch && f->key + f->key_len <= l->scratch + l->scratch_cap);
	CHECK(f->series_id == sl_series_id(f->key, f->key_len));
	CHECK(f->type >= SL_VAL_F64 && f->type <= SL_VAL_STR);
	if (f->type == SL_VAL_BOOL)
		CHECK(f->value <= 1);
	if (f->type == SL_VAL_STR) {
		CHECK(f->str_len <= SL_LP_STR_MAX && f->value == f->str_len);
		CHECK(f->str >= l->scratch && f->str + f->str_len <= l->scratch + l->scratch_cap);
	}

	/* round trip through the formatter: the canonical form is a fixed point */
	int n = sl_lp_format(text, sizeof text, f->key, f->key_len, f->type, f->value, f->str,
			     f->str_len, l->ts);
	CHECK(n > 0);
	CHECK(sl_lp_line_end(text, (size_t)n) == (size_t)n - 1); /* one line for a datagram */
	struct sl_lp_opts o = {
	    .precision = SL_LP_PREC_NS, .now_ns = 0, .max_line_bytes = REPARSE_MAX};
	sl_lp_line_init(&again, scratch2, sizeof scratch2);
	CHECK(sl_lp_parse_line(text, (size_t)n, &o, &again) == 0);
	CHECK(again.n_fields == 1 && again.ts == l->ts);
	const struct sl_lp_field *g = &again.fields[0];
	CHECK(g->key_len == f->key_len && memcmp(g->key, f->key, f->key_len) == 0);
	CHECK(g->type == f->type && g->value == f->value && g->str_len == f->str_len);
	if (f->str_len)
		CHECK(memcmp(g->str, f->str, f->str_len) == 0);
}

static int on_line(void *arg, const struct sl_lp_line *l)
{
	(void)arg;
	CHECK(l->n_fields >= 1 && l->n_fields <= SL_LP_MAX_FIELDS && l->err == SL_LP_OK);
	for (uint32_t i = 0; i < l->n_fields; i++)
		check_field(l, &l->fields[i]);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* twice: defaults, then second precision (overflow paths) with a tiny line limit */
	const struct sl_lp_opts opts[2] = {
	    {.precision = SL_LP_PREC_NS, .now_ns = 1},
	    {.precision = SL_LP_PREC_S, .now_ns = -1, .max_line_bytes = 64},
	};
	for (int k = 0; k < 2; k++) {
		struct sl_lp_counts c = {0};
		sl_lp_line_init(&line, scratch, sizeof scratch);
		CHECK(sl_lp_parse_datagram((const char *)data, size, &opts[k], &line, on_line, NULL,
					   &c) == 0);
		uint64_t bad = 0;
		for (int e = 0; e < SL_LP_ERR_COUNT; e++)
			bad += c.bad[e];
		CHECK(c.bad[SL_LP_OK] == 0 && bad == c.lines_bad);
		CHECK(c.lines_ok + c.lines_bad + c.lines_skipped <= (uint64_t)size + 1);
	}
	return 0;
}
