/* sluicectl.c - operator CLI over a ctl socket (sluiced or sluice-ctld): aligned tables for
 * people, one JSON line per result with --json for scripts. `top` reads the node's
 * shared-memory stats segment directly, so watching rates never loads the ctl socket.
 * Exit codes: 0 ok, 1 command or usage error, 2 cannot reach the daemon or its stats. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include "batch.h"
#include "ctl.h"
#include "session.h"
#include "stats.h"

#define DEFAULT_SOCKET "./sluice-data/sluiced.sock"
#define DEFAULT_TIMEOUT_MS 5000
#define EXIT_ERR 1
#define EXIT_UNREACHABLE 2

struct opts {
	const char *socket;
	bool json;
	int timeout_ms;
};

struct command {
	const char *name;
	int (*run)(const struct opts *o, int argc, char **argv);
	const char *usage;
	const char *help;
};

static const struct command commands[];

/* ---- small utilities ---- */

static void die_oom(void)
{
	fprintf(stderr, "sluicectl: out of memory\n");
	exit(EXIT_ERR);
}

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sluicectl: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(try `sluicectl --help`)\n");
	va_end(ap);
	return EXIT_ERR;
}

/* getopt_long's ':' (missing value) and '?' (unknown option) cases, for any parser. */
static int option_error(const char *cmd, int c, char **argv)
{
	const char *sep = cmd[0] != '\0' ? ": " : "";
	if (c == ':')
		return usage_error("%s%s%s needs a value", cmd, sep, argv[optind - 1]);
	return usage_error("%s%sunknown option '%s'", cmd, sep, argv[optind - 1]);
}

static bool parse_i64(const char *s, long long min, long long max, long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sl_ctl_printable or die: every string from the daemon is printed through it. */
static char *printable(const char *s)
{
	char *p = sl_ctl_printable(s);
	if (p == NULL)
		die_oom();
	return p;
}

/* Text of a JSON value for a table cell; owned by v (or static). */
static const char *cell_text(struct json_object *v)
{
	if (v == NULL)
		return "-";
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE);
}

static bool is_number(struct json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* ---- aligned tables ---- */

struct table {
	size_t ncols;
	size_t ncells;
	size_t cap;
	char **cells;  /* row-major; row 0 is the header when there is one */
	bool *numeric; /* per cell: right-align the column if all its body cells are */
};

static void table_init(struct table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

static void table_add(struct table *t, const char *text, bool numeric)
{
	if (t->ncells == t->cap) {
		size_t cap = t->cap != 0 ? t->cap * 2 : 64;
		char **cells = realloc(t->cells, cap * sizeof(*cells));
		if (cells == NULL)
			die_oom();
		t->cells = cells;
		bool *num = realloc(t->numeric, cap * sizeof(*num));
		if (num == NULL)
			die_oom();
		t->numeric = num;
		t->cap = cap;
	}
	char *copy = sl_ctl_printable(text); /* cells hold what a client stored */
	if (copy == NULL)
		die_oom();
	t->cells[t->ncells] = copy;
	t->numeric[t->ncells++] = numeric;
}

static void table_addf(struct table *t, bool numeric, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	table_add(t, buf, numeric);
}

static void table_add_json(struct table *t, struct json_object *v)
{
	/* A missing value ("-") must not stop a number column from aligning right. */
	table_add(t, cell_text(v), v == NULL || is_number(v));
}

static void table_print(const struct table *t, bool header)
{
	size_t nrows = t->ncells / t->ncols;
	size_t *width = calloc(t->ncols, sizeof(*width));
	bool *right = calloc(t->ncols, sizeof(*right));
	if (width == NULL || right == NULL)
		die_oom();
	for (size_t c = 0; c < t->ncols; c++) {
		right[c] = nrows > (header ? 1u : 0u);
		for (size_t r = 0; r < nrows; r++) {
			size_t len = strlen(t->cells[r * t->ncols + c]);
			if (len > width[c])
				width[c] = len;
			if (!(header && r == 0) && !t->numeric[r * t->ncols + c])
				right[c] = false;
		}
	}
	for (size_t r = 0; r < nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			bool last = c + 1 == t->ncols;
			if (right[c])
				printf("%*s%s", (int)width[c], s, last ? "" : "  ");
			else if (last)
				printf("%s", s);
			else
				printf("%-*s  ", (int)width[c], s);
		}
		printf("\n");
	}
	free(width);
	free(right);
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->numeric);
}

/* Union of the keys of an array of objects, in order of first appearance. */
static struct json_object *key_union(struct json_object *rows, const char *skip)
{
	struct json_object *keys = json_object_new_array();
	struct json_object *seen = json_object_new_object();
	if (keys == NULL || seen == NULL)
		die_oom();
	size_t n = json_object_array_length(rows);
	for (size_t i = 0; i < n; i++) {
		struct json_object *row = json_object_array_get_idx(rows, i);
		if (!json_object_is_type(row, json_type_object))
			continue;
		json_object_object_foreach(row, key, val)
		{
			(void)val;
			if ((skip != NULL && strcmp(key, skip) == 0) ||
			    json_object_object_get_ex(seen, key, NULL))
				continue;
			json_object_object_add(seen, key, NULL);
			json_object_array_add(keys, json_object_new_string(key));
		}
	}
	json_object_put(seen);
	return keys;
}

/* ---- talking to the daemon ---- */

/* Runs one command; on success *result_out is a new reference to the result. On failure
 * the problem is printed and the exit code returned. */
static int call(const struct opts *o, const char *cmd, struct json_object *args,
		struct json_object **result_out)
{
	struct json_object *resp = NULL, *result = NULL;
	*result_out = NULL;
	int rc = sl_ctl_call(o->socket, cmd, args, o->timeout_ms, &resp);
	switch (rc) {
	case 0:
		break;
	case -ETIMEDOUT:
		fprintf(stderr, "sluicectl: no answer from %s within %d ms\n", o->socket,
			o->timeout_ms);
		return EXIT_UNREACHABLE;
	case -ECONNRESET:
		fprintf(stderr, "sluicectl: %s closed the connection without answering\n",
			o->socket);
		return EXIT_UNREACHABLE;
	case -EBADMSG:
	case -EMSGSIZE:
		fprintf(stderr, "sluicectl: unreadable response from %s: %s\n", o->socket,
			strerror(-rc));
		return EXIT_UNREACHABLE;
	default:
		fprintf(stderr,
			"sluicectl: cannot connect to %s: %s (is the daemon running? set --socket "
			"or SLUICE_SOCKET)\n",
			o->socket, strerror(-rc));
		return EXIT_UNREACHABLE;
	}
	const char *code, *msg;
	rc = sl_ctl_response_parse(resp, &result, &code, &msg);
	if (rc == -EREMOTEIO) {
		char *pc = printable(code[0] ? code : "error"), *pm = printable(msg);
		fprintf(stderr, "sluicectl: %s: %s\n", pc, pm);
		free(pc);
		free(pm);
		json_object_put(resp);
		return EXIT_ERR;
	}
	if (rc < 0) {
		fprintf(stderr, "sluicectl: %s sent something that is not a ctl response\n",
			o->socket);
		json_object_put(resp);
		return EXIT_UNREACHABLE;
	}
	*result_out = json_object_get(result);
	json_object_put(resp);
	return 0;
}

static void print_json_line(struct json_object *obj)
{
	const char *text = sl_ctl_to_line(obj, NULL);
	if (text == NULL)
		die_oom();
	printf("%s\n", text);
}

/* Calls cmd; with --json prints the result line and returns, otherwise hands the result
 * to render. Consumes args. */
static int call_and_render(const struct opts *o, const char *cmd, struct json_object *args,
			   void (*render)(struct json_object *result))
{
	struct json_object *result = NULL;
	int rc = call(o, cmd, args, &result);
	json_object_put(args);
	if (rc != 0)
		return rc;
	if (o->json)
		print_json_line(result);
	else
		render(result);
	json_object_put(result);
	return 0;
}

/* Commands without options still honour `COMMAND --help` (handled in main) and reject
 * stray arguments. */
static int no_args(int argc, char **argv)
{
	if (argc > 1)
		return usage_error("%s: unexpected argument '%s'", argv[0], argv[1]);
	return 0;
}

/* ---- status, regions, stats ---- */

static void flatten(struct table *t, const char *prefix, struct json_object *obj)
{
	json_object_object_foreach(obj, key, val)
	{
		char name[256];
		snprintf(name, sizeof(name), "%s%s", prefix, key);
		if (json_object_is_type(val, json_type_object) &&
		    json_object_object_length(val) > 0) {
			char sub[sizeof(name) + 1];
			snprintf(sub, sizeof(sub), "%s.", name);
			flatten(t, sub, val);
			continue;
		}
		table_add(t, name, false);
		table_add(t, cell_text(val), false);
	}
}

static void render_status(struct json_object *result)
{
	struct table t;
	table_init(&t, 2);
	if (json_object_is_type(result, json_type_object))
		flatten(&t, "", result);
	table_print(&t, false);
	table_free(&t);
}

static int cmd_status(const struct opts *o, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	return rc != 0 ? rc : call_and_render(o, "status", NULL, render_status);
}

/* Renders an array of objects as a table whose columns are their keys. */
static void render_rows(struct json_object *rows, const char *empty)
{
	size_t n = json_object_array_length(rows);
	if (n == 0) {
		printf("%s\n", empty);
		return;
	}
	struct json_object *keys = key_union(rows, NULL);
	size_t ncols = json_object_array_length(keys);
	if (ncols == 0) {
		json_object_put(keys);
		printf("%s\n", empty);
		return;
	}
	struct table t;
	table_init(&t, ncols);
	for (size_t c = 0; c < ncols; c++)
		table_add(&t, json_object_get_string(json_object_array_get_idx(keys, c)), false);
	for (size_t r = 0; r < n; r++) {
		struct json_object *row = json_object_array_get_idx(rows, r), *v = NULL;
		for (size_t c = 0; c < ncols; c++) {
			const char *key =
			    json_object_get_string(json_object_array_get_idx(keys, c));
			v = NULL;
			if (json_object_is_type(row, json_type_object))
				json_object_object_get_ex(row, key, &v);
			table_add_json(&t, v);
		}
	}
	table_print(&t, true);
	table_free(&t);
	json_object_put(keys);
}

static struct json_object *get_array(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* A result holding one array under `key`: a table of its rows. */
static void render_keyed(struct json_object *result, const char *key, const char *empty)
{
	struct json_object *rows = get_array(result, key);
	if (rows == NULL) {
		render_status(result); /* unexpected shape: still show what came back */
		return;
	}
	render_rows(rows, empty);
}

/* sluice-ctld's rows (they name a preferred leader) get a state after the id: "merged into
 * R" for a region merged away (retired: its range and replicas are history), "merging
 * with S" while it takes its right neighbour and "merging into R" for that neighbour,
 * "splitting" or "switching" while its segment is sealed for that, else "live". */
static void add_region_states(struct json_object *rows)
{
	/* the neighbours pending merges take: rows are in id order, ids from 0 */
	size_t n = rows != NULL ? json_object_array_length(rows) : 0;
	int64_t *into = calloc(n + 1, sizeof(*into));
	if (into == NULL)
		die_oom();
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = NULL;
		if (json_object_object_get_ex(json_object_array_get_idx(rows, i), "merge_with", &v) &&
		    json_object_get_int64(v) >= 0 && (size_t)json_object_get_int64(v) < n)
			into[json_object_get_int64(v)] = (int64_t)i + 1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *row = json_object_array_get_idx(rows, i), *v = NULL;
		if (!json_object_is_type(row, json_type_object) ||
		    !json_object_object_get_ex(row, "preferred_leader", NULL) ||
		    json_object_object_get_ex(row, "state", NULL))
			continue;
		char state[48] = "live";
		if (json_object_object_get_ex(row, "merged_into", &v))
			snprintf(state, sizeof(state), "merged into %" PRId64, json_object_get_int64(v));
		else if (json_object_object_get_ex(row, "merge_with", &v))
			snprintf(state, sizeof(state), "merging with %" PRId64,
				 json_object_get_int64(v));
		else if (into[i] != 0)
			snprintf(state, sizeof(state), "merging into %" PRId64, into[i] - 1);
		else if (json_object_object_get_ex(row, "split_at", NULL))
			snprintf(state, sizeof(state), "splitting");
		else if (json_object_object_get_ex(row, "next_protocol", &v) && v != NULL)
			snprintf(state, sizeof(state), "switching");
		else if (json_object_object_get_ex(row, "learner", &v) && v != NULL)
			snprintf(state, sizeof(state), "node %" PRId64 " learning",
				 json_object_get_int64(v));
		/* rebuilt with the state second: the table's columns follow the first row */
		struct json_object *o = json_object_new_object();
		json_object_object_foreach(row, key, val)
		{
			json_object_object_add(o, key, json_object_get(val));
			if (strcmp(key, "id") == 0)
				json_object_object_add(o, "state", json_object_new_string(state));
		}
		json_object_array_put_idx(rows, i, o);
	}
	free(into);
}

static void render_regions(struct json_object *result)
{
	add_region_states(get_array(result, "regions"));
	render_keyed(result, "regions", "no regions");
	/* a region due for an automatic split, or a pair for a merge, that cannot be
	 * (sluice-ctld's leader) */
	struct json_object *b = NULL;
	if (json_object_object_get_ex(result, "auto_split_blocked", &b) &&
	    json_object_is_type(b, json_type_string))
		printf("auto-split blocked: %s\n", json_object_get_string(b));
	if (json_object_object_get_ex(result, "auto_merge_blocked", &b) &&
	    json_object_is_type(b, json_type_string))
		printf("auto-merge blocked: %s\n", json_object_get_string(b));
}

static int cmd_regions(const struct opts *o, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	return rc != 0 ? rc : call_and_render(o, "regions", NULL, render_regions);
}

/* ---- members, placement (sluice-ctld) ---- */

static void render_members(struct json_object *result)
{
	render_keyed(result, "members", "no data nodes");
	/* why a decommission cannot go on (sluice-ctld says null when it can) */
	struct json_object *b = NULL;
	if (json_object_object_get_ex(result, "decommission_blocked", &b) &&
	    json_object_is_type(b, json_type_string))
		printf("decommission blocked: %s\n", json_object_get_string(b));
}

static int cmd_members(const struct opts *o, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	return rc != 0 ? rc : call_and_render(o, "members", NULL, render_members);
}

static void render_placement(struct json_object *result)
{
	render_keyed(result, "placement", "no placement (the cluster is not bootstrapped)");
}

static int cmd_placement(const struct opts *o, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	return rc != 0 ? rc : call_and_render(o, "placement", NULL, render_placement);
}

/* ---- leader moves (sluice-ctld) ---- */

static void render_moves(struct json_object *result)
{
	render_keyed(result, "moves", "no moves");
}

static int cmd_moves(const struct opts *o, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	return rc != 0 ? rc : call_and_render(o, "moves", NULL, render_moves);
}

/* region set-protocol R PROTOCOL: sluice-ctld seals the region's active segment and
 * goes on under PROTOCOL (a move of kind protocol). */
static int cmd_region_set_protocol(const struct opts *o, int argc, char **argv)
{
	long long region = 0;
	if (argc != 4 || !parse_i64(argv[2], 0, UINT32_MAX, &region))
		return usage_error("region set-protocol: expected REGION (a number) PROTOCOL "
				   "(standalone, raft or multileader)");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "region", json_object_new_int64(region));
	json_object_object_add(args, "protocol", json_object_new_string(argv[3]));
	return call_and_render(o, "set_protocol", args, render_status);
}

/* region move-replica R FROM TO: sluice-ctld seals the region's active segment and the
 * next runs on its replicas with FROM replaced by TO (a move of kind replica). */
static int cmd_region_move_replica(const struct opts *o, int argc, char **argv)
{
	long long region = 0, from = 0, to = 0;
	if (argc != 5 || !parse_i64(argv[2], 0, UINT32_MAX, &region) ||
	    !parse_i64(argv[3], 1, UINT32_MAX, &from) || !parse_i64(argv[4], 1, UINT32_MAX, &to))
		return usage_error("region move-replica: expected REGION FROM TO (a region id and "
				   "two node ids)");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "region", json_object_new_int64(region));
	json_object_object_add(args, "from", json_object_new_int64(from));
	json_object_object_add(args, "to", json_object_new_int64(to));
	return call_and_render(o, "move_replica", args, render_status);
}

/* region split R [--at 0xHASH]: sluice-ctld seals the region's active segment and the
 * next is cut in two at HASH (default: the middle of its range), the upper half a new
 * region (a move of kind split). */
static int cmd_region_split(const struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"at", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	const char *at = NULL;
	long long region = 0;
	int c;
	optind = 0; /* GNU: fully re-initialise for this sub-argv ("split" is its argv[0]) */
	while ((c = getopt_long(argc - 1, argv + 1, ":", longopts, NULL)) != -1) {
		if (c != 'a')
			return option_error("region split", c, argv + 1);
		/* the form the map writes: sluice-ctld checks it is inside the region */
		if (strlen(optarg) != 18 || strncmp(optarg, "0x", 2) != 0 ||
		    strspn(optarg + 2, "0123456789abcdefABCDEF") != 16)
			return usage_error("region split: --at wants a hash, 0x and 16 hex digits");
		at = optarg;
	}
	if (optind != argc - 2 || !parse_i64(argv[1 + optind], 0, UINT32_MAX, &region))
		return usage_error("region split: expected REGION (a number) [--at 0xHASH]");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "region", json_object_new_int64(region));
	if (at != NULL)
		json_object_object_add(args, "at", json_object_new_string(at));
	return call_and_render(o, "split", args, render_status);
}

/* region merge R: sluice-ctld seals the active segments of region R and of its right
 * neighbour, and R's next one covers both ranges; the neighbour is retired (a move of
 * kind merge). */
static int cmd_region_merge(const struct opts *o, int argc, char **argv)
{
	long long region = 0;
	if (argc != 3 || !parse_i64(argv[2], 0, UINT32_MAX, &region))
		return usage_error("region merge: expected REGION (a number: the region that takes "
				   "its right neighbour's range)");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "region", json_object_new_int64(region));
	return call_and_render(o, "merge", args, render_status);
}

/* region move-core R CORE: sluice-ctld seals the region's active segment and the next
 * runs on worker core CORE of every node (a move of kind core). */
static int cmd_region_move_core(const struct opts *o, int argc, char **argv)
{
	long long region = 0, core = 0;
	if (argc != 4 || !parse_i64(argv[2], 0, UINT32_MAX, &region) ||
	    !parse_i64(argv[3], 0, UINT32_MAX, &core))
		return usage_error("region move-core: expected REGION CORE (numbers; CORE counts "
				   "from 0, below every node's [eal] workers)");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "region", json_object_new_int64(region));
	json_object_object_add(args, "core", json_object_new_int64(core));
	return call_and_render(o, "move_core", args, render_status);
}

/* region transfer-leader R NODE | set-protocol R PROTOCOL | move-replica R FROM TO |
 * split R [--at HASH] | merge R | move-core R CORE: moves
 * recorded by sluice-ctld; `moves` shows whether they are running, done or failed, and
 * why. */
static int cmd_region(const struct opts *o, int argc, char **argv)
{
	long long region = 0, node = 0;
	if (argc >= 2 && strcmp(argv[1], "set-protocol") == 0)
		return cmd_region_set_protocol(o, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "move-replica") == 0)
		return cmd_region_move_replica(o, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "split") == 0)
		return cmd_region_split(o, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "merge") == 0)
		return cmd_region_merge(o, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "move-core") == 0)
		return cmd_region_move_core(o, argc, argv);
	if (argc < 2 || strcmp(argv[1], "transfer-leader") != 0)
		return usage_error("region: expected a subcommand: transfer-leader R NODE, "
				   "set-protocol R PROTOCOL, move-replica R FROM TO, "
				   "split R [--at 0xHASH], merge R or move-core R CORE");
	if (argc != 4 || !parse_i64(argv[2], 0, UINT32_MAX, &region) ||
	    !parse_i64(argv[3], 1, UINT32_MAX, &node))
		return usage_error("region transfer-leader: expected REGION NODE (numbers)");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "region", json_object_new_int64(region));
	json_object_object_add(args, "node", json_object_new_int64(node));
	return call_and_render(o, "transfer_leader", args, render_status);
}

/* node drain|undrain N: sluice-ctld moves the node's leaders to other replicas (and none
 * to it) until undrained. node decommission|recommission N: its replicas move to other
 * nodes as well (or stop doing so). */
static int cmd_node(const struct opts *o, int argc, char **argv)
{
	long long node = 0;
	const char *sub = argc >= 2 ? argv[1] : "";
	bool drain = strcmp(sub, "drain") == 0;
	bool decom = strcmp(sub, "decommission") == 0 || strcmp(sub, "recommission") == 0;
	if (!drain && !decom && strcmp(sub, "undrain") != 0)
		return usage_error("node: expected a subcommand: drain NODE, undrain NODE, "
				   "decommission NODE or recommission NODE");
	if (argc != 3 || !parse_i64(argv[2], 1, UINT32_MAX, &node))
		return usage_error("node %s: expected NODE (a node id)", argv[1]);
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "node", json_object_new_int64(node));
	if (decom) /* the command is the subcommand's name */
		return call_and_render(o, sub, args, render_status);
	json_object_object_add(args, "on", json_object_new_boolean(drain));
	return call_and_render(o, "drain", args, render_status);
}

static void render_stats(struct json_object *result)
{
	struct json_object *cores = get_array(result, "cores"), *totals = NULL;
	if (cores == NULL) {
		render_status(result);
		return;
	}
	json_object_object_get_ex(result, "totals", &totals);
	struct json_object *counters = key_union(cores, "core");
	size_t ncores = json_object_array_length(cores);
	size_t nctr = json_object_array_length(counters);
	struct table t;
	table_init(&t, ncores + 2);
	table_add(&t, "counter", false);
	for (size_t c = 0; c < ncores; c++) {
		struct json_object *core = json_object_array_get_idx(cores, c), *id = NULL;
		if (json_object_is_type(core, json_type_object) &&
		    json_object_object_get_ex(core, "core", &id))
			table_addf(&t, false, "core %s", cell_text(id));
		else
			table_addf(&t, false, "core %zu", c);
	}
	table_add(&t, "total", false);
	for (size_t k = 0; k < nctr; k++) {
		const char *name = json_object_get_string(json_object_array_get_idx(counters, k));
		table_add(&t, name, false);
		uint64_t sum = 0;
		bool summable = true;
		for (size_t c = 0; c < ncores; c++) {
			struct json_object *core = json_object_array_get_idx(cores, c), *v = NULL;
			if (json_object_is_type(core, json_type_object))
				json_object_object_get_ex(core, name, &v);
			table_add_json(&t, v);
			if (v != NULL && json_object_is_type(v, json_type_int))
				sum += json_object_get_uint64(v);
			else
				summable = false;
		}
		struct json_object *total = NULL;
		if (totals != NULL && json_object_object_get_ex(totals, name, &total))
			table_add_json(&t, total);
		else if (summable)
			table_addf(&t, true, "%llu", (unsigned long long)sum);
		else
			table_add(&t, "-", true);
	}
	table_print(&t, true);
	table_free(&t);
	json_object_put(counters);
}

static int cmd_stats(const struct opts *o, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	return rc != 0 ? rc : call_and_render(o, "stats", NULL, render_stats);
}

/* ---- ping, call ---- */

static int cmd_ping(const struct opts *o, int argc, char **argv)
{
	int rc = no_args(argc, argv);
	if (rc != 0)
		return rc;
	struct json_object *result = NULL;
	double start = now_s();
	rc = call(o, "ping", NULL, &result);
	if (rc != 0)
		return rc;
	if (o->json)
		print_json_line(result);
	else
		printf("pong from %s in %.3f ms\n", o->socket, (now_s() - start) * 1e3);
	json_object_put(result);
	return 0;
}

static int cmd_call(const struct opts *o, int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		return usage_error("call: expected CMD [JSON_ARGS]");
	struct json_object *args = NULL;
	if (argc == 3) {
		if (sl_ctl_parse_json(argv[2], strlen(argv[2]), &args) < 0 ||
		    !json_object_is_type(args, json_type_object)) {
			json_object_put(args);
			return usage_error(
			    "call: JSON_ARGS must be a JSON object, e.g. '{\"k\":1}'");
		}
	}
	struct json_object *result = NULL;
	int rc = call(o, argv[1], args, &result);
	json_object_put(args);
	if (rc != 0)
		return rc;
	if (o->json)
		print_json_line(result);
	else
		printf("%s\n",
		       json_object_to_json_string_ext(result, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(result);
	return 0;
}

/* ---- query ---- */

static void render_query(struct json_object *result)
{
	struct json_object *v = NULL, *points = get_array(result, "points");
	const char *keys[] = {"series", "series_id", "type"};
	for (size_t i = 0; i < SL_ARRAY_LEN(keys); i++)
		if (json_object_object_get_ex(result, keys[i], &v)) {
			char *text = printable(cell_text(v));
			printf("%s%s: %s", i ? "  " : "", keys[i], text);
			free(text);
		}
	size_t n = points != NULL ? json_object_array_length(points) : 0;
	printf("%spoints: %zu\n", json_object_object_length(result) > 1 ? "  " : "", n);
	if (n == 0)
		return;
	struct table t;
	table_init(&t, 2);
	table_add(&t, "ts", false);
	table_add(&t, "value", false);
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(points, i);
		bool pair =
		    json_object_is_type(p, json_type_array) && json_object_array_length(p) >= 2;
		table_add_json(&t, pair ? json_object_array_get_idx(p, 0) : NULL);
		table_add_json(&t, pair ? json_object_array_get_idx(p, 1) : p);
	}
	table_print(&t, true);
	table_free(&t);
}

/* A UDP socket connected to a node's session port (IPV4[:PORT]); 0, or the exit code. */
static int session_socket(const char *cmd, const char *addr, int *fd_out)
{
	char host[64];
	int port = SL_SESS_PORT;
	snprintf(host, sizeof(host), "%s", addr);
	char *colon = strchr(host, ':');
	if (colon != NULL) {
		*colon = '\0';
		port = atoi(colon + 1);
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || port <= 0 || port > 65535)
		return usage_error("%s: --addr wants IPV4[:PORT]", cmd);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "sluicectl: %s: %s\n", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	*fd_out = fd;
	return 0;
}

/* Sends q and waits for an answer of type `want` with the same first body field (its
 * request id), retrying a lost datagram; bounded by --timeout. true when *r holds it. */
static bool session_exchange(const struct opts *o, int fd, uint32_t cluster,
			     const struct sl_sess_msg *q, uint8_t want, uint64_t id,
			     struct sl_sess_msg *r)
{
	uint8_t buf[SL_SESS_MSG_MAX], in[SL_SESS_MSG_MAX];
	int len = sl_sess_encode(buf, sizeof(buf), q);
	bool got = false;
	for (int tries = 0; tries < 5 && !got && len > 0; tries++) {
		(void)!send(fd, buf, (size_t)len, 0);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		while (!got && poll(&p, 1, o->timeout_ms / 5 + 1) > 0) {
			ssize_t k = recv(fd, in, sizeof(in), 0);
			uint8_t type = 0;
			uint64_t ref = 0;
			sl_sess_peek_ref(in, k > 0 ? (size_t)k : 0, &type, &ref);
			got = k > 0 && type == want && ref == id &&
			      sl_sess_decode(in, (size_t)k, cluster, r) == SL_SESS_OK;
		}
	}
	return got;
}

/* query over the binary session protocol (READ, docs/protocol.md) on UDP to the node's
 * address on its ports, instead of the ctl socket: what a remote client does. */
static int query_session(const struct opts *o, const char *addr, uint32_t cluster,
			 const char *series, long long from, long long to, uint64_t limit,
			 uint8_t level, struct json_object **out)
{
	size_t klen = strlen(series);
	if (klen == 0 || klen > SL_KEY_MAX)
		return usage_error("query: series key must be 1..%d bytes", SL_KEY_MAX);
	int fd = -1;
	int src = session_socket("query", addr, &fd);
	if (src != 0)
		return src;
	struct sl_sess_msg q = {.type = SL_SESS_READ, .cluster_id = cluster}, r;
	q.u.read = (struct sl_sess_read){.request_id = (uint64_t)time(NULL) << 20,
					  .from_ts = from,
					  .to_ts = to,
					  .max_points = SL_SESS_RESULT_POINTS_MAX,
					  .level = level,
					  .key_len = (uint16_t)klen,
					  .key = series};
	struct json_object *res = json_object_new_object(), *pts = json_object_new_array();
	uint8_t type = 0;
	uint64_t n = 0;
	int rc = 0;
	bool more = true;
	while (more && n < limit && rc == 0) {
		/* UDP: a lost request is retried, bounded by --timeout */
		if (!session_exchange(o, fd, cluster, &q, SL_SESS_READ_RESULT, q.u.read.request_id,
				      &r)) {
			fprintf(stderr, "sluicectl: no answer from %s (session protocol, cluster %u)\n",
				addr, cluster);
			rc = 2;
			break;
		}
		if (r.u.result.status != SL_SESS_ST_OK) {
			fprintf(stderr, "sluicectl: query: %s\n", sl_sess_status_name(r.u.result.status));
			rc = 1;
			break;
		}
		type = r.u.result.type ? r.u.result.type : type;
		for (uint32_t i = 0; i < r.u.result.count && n < limit; i++, n++) {
			int64_t ts;
			uint64_t v;
			sl_sess_result_pair(&r.u.result, i, &ts, &v);
			struct json_object *pair = json_object_new_array();
			json_object_array_add(pair, json_object_new_int64(ts));
			double d;
			memcpy(&d, &v, 8);
			json_object_array_add(pair, type == SL_VAL_F64	 ? json_object_new_double(d)
						    : type == SL_VAL_I64 ? json_object_new_int64((int64_t)v)
						    : type == SL_VAL_BOOL ? json_object_new_boolean(v != 0)
									  : json_object_new_uint64(v));
			json_object_array_add(pts, pair);
		}
		more = r.u.result.more;
		q.u.read.cont = true;
		q.u.read.cont_ts = r.u.result.cont_ts;
		q.u.read.request_id++;
	}
	close(fd);
	static const char *const names[] = {"", "f64", "i64", "u64", "bool", "str"};
	json_object_object_add(res, "series", json_object_new_string(series));
	json_object_object_add(res, "type", json_object_new_string(type < 6 ? names[type] : "?"));
	json_object_object_add(res, "via", json_object_new_string("session"));
	json_object_object_add(res, "points", pts);
	if (rc != 0) {
		json_object_put(res);
		return rc;
	}
	*out = res;
	return 0;
}

static int cmd_query(const struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 't'},
	    {"limit", required_argument, NULL, 'l'},
	    {"addr", required_argument, NULL, 'a'},
	    {"cluster", required_argument, NULL, 'c'},
	    {"level", required_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	long long from = LLONG_MIN, to = LLONG_MAX, limit = -1; /* default: the whole series */
	uint8_t level = SL_SESS_READ_LOCAL;
	long long cluster = 1;
	const char *addr = NULL;
	int c;
	optind = 0; /* GNU: fully re-initialise for this sub-argv */
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!parse_i64(optarg, LLONG_MIN, LLONG_MAX, &from))
				return usage_error("query: --from wants an integer timestamp");
			break;
		case 't':
			if (!parse_i64(optarg, LLONG_MIN, LLONG_MAX, &to))
				return usage_error("query: --to wants an integer timestamp");
			break;
		case 'l':
			if (!parse_i64(optarg, 1, LLONG_MAX, &limit))
				return usage_error("query: --limit wants a positive integer");
			break;
		case 'a':
			addr = optarg;
			break;
		case 'c':
			if (!parse_i64(optarg, 1, UINT32_MAX - 1, &cluster))
				return usage_error("query: --cluster wants a cluster id");
			break;
		case 'L':
			if (strcmp(optarg, "local") == 0)
				level = SL_SESS_READ_LOCAL;
			else if (strcmp(optarg, "leader") == 0)
				level = SL_SESS_READ_LEADER;
			else if (strcmp(optarg, "durable") == 0)
				level = SL_SESS_READ_DURABLE;
			else if (strcmp(optarg, "sync") == 0)
				level = SL_SESS_READ_SYNC;
			else
				return usage_error("query: --level wants local, leader, durable or sync");
			break;
		default:
			return option_error("query", c, argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("query: expected exactly one SERIES");
	if (level != SL_SESS_READ_LOCAL && addr == NULL)
		return usage_error("query: --level needs --addr (a READ over the session protocol)");
	if (addr != NULL) {
		struct json_object *result = NULL;
		int rc = query_session(o, addr, (uint32_t)cluster, argv[optind], from, to,
				       limit > 0 ? (uint64_t)limit : UINT64_MAX, level, &result);
		if (rc != 0)
			return rc;
		if (o->json)
			print_json_line(result);
		else
			render_query(result);
		json_object_put(result);
		return 0;
	}
	struct json_object *args = json_object_new_object();
	if (args == NULL)
		die_oom();
	json_object_object_add(args, "series", json_object_new_string(argv[optind]));
	json_object_object_add(args, "from", json_object_new_int64(from));
	json_object_object_add(args, "to", json_object_new_int64(to));
	if (limit > 0)
		json_object_object_add(args, "limit", json_object_new_int64(limit));
	return call_and_render(o, "query", args, render_query);
}

/* routes --addr IP[:PORT]: ROUTES over the session protocol (docs/protocol.md): per
 * region its hash range, protocol and home node, as a client doing its own routing sees
 * them. */
static int cmd_routes(const struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {{"addr", required_argument, NULL, 'a'},
						 {"cluster", required_argument, NULL, 'c'},
						 {NULL, 0, NULL, 0}};
	long long cluster = 1;
	const char *addr = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == 'a')
			addr = optarg;
		else if (c == 'c' && parse_i64(optarg, 1, UINT32_MAX - 1, &cluster))
			continue;
		else if (c == 'c')
			return usage_error("routes: --cluster wants a cluster id");
		else
			return option_error("routes", c, argv);
	}
	if (addr == NULL || argc != optind)
		return usage_error("routes: expected --addr IPV4[:PORT] and nothing else");
	int fd = -1;
	int rc = session_socket("routes", addr, &fd);
	if (rc != 0)
		return rc;
	uint64_t id = ((uint64_t)time(NULL) << 20) | (uint64_t)getpid();
	struct sl_sess_msg q = {.type = SL_SESS_ROUTES, .cluster_id = (uint32_t)cluster}, r;
	q.u.routes_req.request_id = id;
	bool got = session_exchange(o, fd, (uint32_t)cluster, &q, SL_SESS_ROUTES_OK, id, &r);
	close(fd);
	if (!got) {
		fprintf(stderr, "sluicectl: no answer from %s (session protocol, cluster %u)\n", addr,
			(unsigned)cluster);
		return 2;
	}
	static const char *const protos[] = {"?", "standalone", "raft", "multileader"};
	struct json_object *res = json_object_new_object(), *arr = json_object_new_array();
	json_object_object_add(res, "node", json_object_new_int((int)r.u.routes.node));
	for (uint32_t i = 0; i < r.u.routes.n_regions; i++) {
		struct sl_sess_route rt;
		sl_sess_route(&r.u.routes, i, &rt);
		char lo[24], hi[24];
		snprintf(lo, sizeof(lo), "0x%016" PRIx64, rt.hash_lo);
		snprintf(hi, sizeof(hi), "0x%016" PRIx64, rt.hash_hi);
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "region", json_object_new_int((int)i));
		json_object_object_add(e, "hash_lo", json_object_new_string(lo));
		json_object_object_add(e, "hash_hi", json_object_new_string(hi));
		json_object_object_add(e, "protocol",
				       json_object_new_string(protos[rt.protocol < 4 ? rt.protocol : 0]));
		json_object_object_add(e, "home",
				       rt.home ? json_object_new_int((int)rt.home) : NULL);
		json_object_array_add(arr, e);
	}
	json_object_object_add(res, "routes", arr);
	if (o->json)
		print_json_line(res);
	else
		render_keyed(res, "routes", "no regions");
	json_object_put(res);
	return 0;
}

/* ---- top ---- */

static volatile sig_atomic_t top_stop;

static void on_sigint(int sig)
{
	(void)sig;
	top_stop = 1;
}

/* Rates shown by top, as (label, counter) pairs; idle % is derived separately. */
static const struct {
	const char *label;
	const char *json_key;
	enum sl_stat counter;
} top_rates[] = {
    {"points_in/s", "points_in_per_s", SL_STAT_points_in},
    {"points_applied/s", "points_applied_per_s", SL_STAT_points_applied},
    {"acks/s", "acks_per_s", SL_STAT_acks_sent},
    {"wal_fsyncs/s", "wal_fsyncs_per_s", SL_STAT_wal_fsyncs},
    {"ring_full/s", "ring_full_per_s", SL_STAT_ring_full},
};

struct top_core {
	bool valid; /* both snapshots were read */
	double rate[SL_ARRAY_LEN(top_rates)];
	double idle_pct; /* negative: the core did not poll in the interval */
};

static uint64_t delta(const struct sl_stats_snapshot *a, const struct sl_stats_snapshot *b,
		      enum sl_stat id)
{
	/* A counter that went backwards means a restarted node: count nothing, not 2^64. */
	return b->counters[id] >= a->counters[id] ? b->counters[id] - a->counters[id] : 0;
}

static void top_compute(const struct sl_stats_snapshot *a, const struct sl_stats_snapshot *b,
			double dt_s, struct top_core *out)
{
	for (size_t i = 0; i < SL_ARRAY_LEN(top_rates); i++)
		out->rate[i] = (double)delta(a, b, top_rates[i].counter) / dt_s;
	uint64_t idle = delta(a, b, SL_STAT_polls_idle);
	uint64_t busy = delta(a, b, SL_STAT_polls_busy);
	out->idle_pct = idle + busy > 0 ? 100.0 * (double)idle / (double)(idle + busy) : -1.0;
}

static struct json_object *json_fixed(double v, const char *fmt)
{
	char buf[64];
	snprintf(buf, sizeof(buf), fmt, v);
	return json_object_new_double_s(v, buf);
}

/* core < 0: the totals object, which has no "core" key. */
static struct json_object *top_core_json(const struct top_core *tc, int core)
{
	struct json_object *o = json_object_new_object();
	if (o == NULL)
		die_oom();
	if (core >= 0)
		json_object_object_add(o, "core", json_object_new_int(core));
	for (size_t i = 0; i < SL_ARRAY_LEN(top_rates); i++)
		json_object_object_add(o, top_rates[i].json_key,
				       tc->valid ? json_fixed(tc->rate[i], "%.1f") : NULL);
	json_object_object_add(o, "idle_pct",
			       tc->valid && tc->idle_pct >= 0 ? json_fixed(tc->idle_pct, "%.1f")
							      : NULL);
	return o;
}

static void top_row(struct table *t, const char *name, const struct top_core *tc)
{
	table_add(t, name, false);
	for (size_t i = 0; i < SL_ARRAY_LEN(top_rates); i++) {
		if (tc->valid)
			table_addf(t, true, "%.0f", tc->rate[i]);
		else
			table_add(t, "-", true);
	}
	if (tc->valid && tc->idle_pct >= 0)
		table_addf(t, true, "%.1f", tc->idle_pct);
	else
		table_add(t, "-", true);
}

static void top_print(const struct opts *o, const char *path, uint32_t n_cores, double dt_s,
		      const struct top_core *cores, const struct top_core *total)
{
	if (o->json) {
		struct json_object *obj = json_object_new_object(), *arr = json_object_new_array();
		if (obj == NULL || arr == NULL)
			die_oom();
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		json_object_object_add(
		    obj, "time_ns",
		    json_object_new_int64((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec));
		json_object_object_add(obj, "interval_s", json_fixed(dt_s, "%.3f"));
		for (uint32_t c = 0; c < n_cores; c++) {
			json_object_array_add(arr, top_core_json(&cores[c], (int)c));
		}
		json_object_object_add(obj, "cores", arr);
		json_object_object_add(obj, "totals", top_core_json(total, -1));
		print_json_line(obj);
		json_object_put(obj);
		fflush(stdout);
		return;
	}
	if (isatty(STDOUT_FILENO))
		printf("\033[H\033[J"); /* redraw in place like top(1) */
	char *shown = printable(path);
	printf("sluice top  %s  %u cores  interval %.2fs\n", shown, n_cores, dt_s);
	free(shown);
	struct table t;
	table_init(&t, SL_ARRAY_LEN(top_rates) + 2);
	table_add(&t, "core", false);
	for (size_t i = 0; i < SL_ARRAY_LEN(top_rates); i++)
		table_add(&t, top_rates[i].label, false);
	table_add(&t, "idle%", false);
	for (uint32_t c = 0; c < n_cores; c++) {
		char name[16];
		snprintf(name, sizeof(name), "%u", c);
		top_row(&t, name, &cores[c]);
	}
	top_row(&t, "total", total);
	table_print(&t, true);
	table_free(&t);
	printf("\n");
	fflush(stdout);
}

/* Snapshots every core; a core the writer kept busy past the reader's retries is marked
 * unread for this round rather than blocking the display. */
static void top_snapshot(struct sl_stats_reader *r, uint32_t n_cores,
			 struct sl_stats_snapshot *snap, bool *ok)
{
	for (uint32_t c = 0; c < n_cores; c++)
		ok[c] = sl_stats_read_core(r, c, &snap[c]) == 0;
}

static int top_loop(const struct opts *o, const char *path, double interval_s, long long count)
{
	struct sl_stats_reader *r = NULL;
	int rc = sl_stats_open(path, &r);
	if (rc < 0) {
		fprintf(stderr, "sluicectl: cannot open stats segment %s: %s\n", path,
			rc == -EPROTO ? "not a stats segment of this version" : strerror(-rc));
		return EXIT_UNREACHABLE;
	}
	uint32_t n = sl_stats_n_cores(r);
	struct sl_stats_snapshot *prev = calloc(n + 1u, sizeof(*prev));
	struct sl_stats_snapshot *cur = calloc(n + 1u, sizeof(*cur));
	bool *prev_ok = calloc(n + 1u, sizeof(bool)), *cur_ok = calloc(n + 1u, sizeof(bool));
	struct top_core *rows = calloc(n + 1u, sizeof(*rows));
	if (prev == NULL || cur == NULL || prev_ok == NULL || cur_ok == NULL || rows == NULL)
		die_oom();
	struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: wake the sleep */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	top_snapshot(r, n, prev, prev_ok);
	double t_prev = now_s();
	for (long long iter = 0; (count < 0 || iter < count) && !top_stop; iter++) {
		struct timespec ts = {.tv_sec = (time_t)interval_s,
				      .tv_nsec =
					  (long)((interval_s - (double)(time_t)interval_s) * 1e9)};
		while (!top_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (top_stop)
			break;
		top_snapshot(r, n, cur, cur_ok);
		double t_cur = now_s(), dt_s = t_cur - t_prev;
		struct sl_stats_snapshot sum_a = {0}, sum_b = {0};
		bool all_ok = true;
		for (uint32_t c = 0; c < n; c++) {
			rows[c].valid = prev_ok[c] && cur_ok[c];
			all_ok = all_ok && rows[c].valid;
			if (!rows[c].valid)
				continue;
			top_compute(&prev[c], &cur[c], dt_s, &rows[c]);
			for (size_t k = 0; k < SL_STATS_N_COUNTERS; k++) {
				sum_a.counters[k] += prev[c].counters[k];
				sum_b.counters[k] += cur[c].counters[k];
			}
		}
		struct top_core total = {.valid = all_ok};
		if (all_ok)
			top_compute(&sum_a, &sum_b, dt_s, &total);
		top_print(o, path, n, dt_s, rows, &total);
		struct sl_stats_snapshot *tmp = prev;
		prev = cur;
		cur = tmp;
		bool *tmp_ok = prev_ok;
		prev_ok = cur_ok;
		cur_ok = tmp_ok;
		t_prev = t_cur;
	}
	free(prev);
	free(cur);
	free(prev_ok);
	free(cur_ok);
	free(rows);
	sl_stats_close(r);
	return 0;
}

static int cmd_top(const struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"stats", required_argument, NULL, 's'},
	    {"interval", required_argument, NULL, 'i'},
	    {"count", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	double interval_s = 1.0;
	long long count = -1;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		char *end = NULL;
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'i':
			interval_s = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(interval_s >= 0.01) ||
			    interval_s > 3600)
				return usage_error("top: --interval wants seconds in [0.01, 3600]");
			break;
		case 'c':
			if (!parse_i64(optarg, 1, LLONG_MAX, &count))
				return usage_error("top: --count wants a positive integer");
			break;
		default:
			return option_error("top", c, argv);
		}
	}
	if (optind != argc)
		return usage_error("top: unexpected argument '%s'", argv[optind]);
	if (path != NULL)
		return top_loop(o, path, interval_s, count);
	/* Ask the daemon where its segment lives; only this one call uses the socket. */
	struct json_object *status = NULL, *v = NULL;
	int rc = call(o, "status", NULL, &status);
	if (rc != 0)
		return rc;
	if (!json_object_object_get_ex(status, "stats_path", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		json_object_put(status);
		fprintf(stderr, "sluicectl: status has no stats_path; pass --stats PATH\n");
		return EXIT_ERR;
	}
	rc = top_loop(o, json_object_get_string(v), interval_s, count);
	json_object_put(status);
	return rc;
}

/* ---- main ---- */

static const struct command commands[] = {
    {"status", cmd_status, "status",
     "node id, pid, uptime, version, modes and totals (sluiced); this replica's role,\n"
     "      term, leader and log indexes, and the ctld group (sluice-ctld)"},
    {"regions", cmd_regions, "regions",
     "the regions this daemon serves (sluiced), or the cluster's region map with replicas,\n"
     "      preferred and observed leader, commit lag, size (bytes) and write rate\n"
     "      (points_per_s) as the replicas report them (sluice-ctld)"},
    {"members", cmd_members, "members",
     "sluice-ctld: the data nodes: address, cores, up/down, age of the last heartbeat"},
    {"placement", cmd_placement, "placement",
     "sluice-ctld: per data node and core, the regions it replicates and leads"},
    {"region", cmd_region,
     "region transfer-leader REGION NODE | set-protocol REGION PROTOCOL |\n"
     "         move-replica REGION FROM TO | split REGION [--at 0xHASH] | merge REGION |\n"
     "         move-core REGION CORE",
     "sluice-ctld: transfer-leader makes NODE the region's preferred leader; its leader\n"
     "      hands over (a multileader region: its home moves). set-protocol switches the\n"
     "      region to PROTOCOL (standalone, raft, multileader) online: its replicas seal the\n"
     "      active segment, the next (epoch + 1) runs PROTOCOL. move-replica moves a raft\n"
     "      region's replica from node FROM (alive or dead) to node TO: the next segment\n"
     "      runs on the new replica set, TO catches up by snapshot. split cuts a raft or\n"
     "      standalone region in two at hash 0xHASH (0x and 16 hex digits; default: the\n"
     "      middle of its range): the replicas seal the active segment, the next (epoch\n"
     "      + 1) runs in the region (below HASH) and a new region (HASH and above, same\n"
     "      replicas; `regions` shows split_at while pending, split_from on the new one).\n"
     "      merge joins REGION and its right neighbour (the region starting right above\n"
     "      it: same protocol, raft or standalone, same replicas, same core on every node):\n"
     "      both seal, the next segment of REGION (epoch + 1) covers both ranges and the\n"
     "      neighbour is retired (`regions`: merge_with while pending, merged_into on the\n"
     "      retired one; its id is never reused). move-core moves a raft or standalone\n"
     "      region to worker core CORE of every node: the replicas seal the active segment,\n"
     "      the next runs there (e.g. a split's half, onto a core of its own; `regions`\n"
     "      shows core). All are recorded as moves: see `moves`"},
    {"node", cmd_node, "node drain|undrain|decommission|recommission NODE",
     "sluice-ctld: drain moves every leader off NODE (moves of kind drain, one after the\n"
     "      other) and none to it, e.g. before maintenance; undrain ends it (the balance\n"
     "      gives it its share back). decommission also moves its replicas to other nodes\n"
     "      (moves of kind decommission) until it holds none; recommission stops that.\n"
     "      `members` shows draining, decommissioning, replicas and decommissioned"},
    {"moves", cmd_moves, "moves",
     "sluice-ctld: the last 64 moves: leader moves (region, from, to), protocol\n"
     "      switches (from_protocol, to_protocol), replica moves (from, to: nodes) and\n"
     "      splits (split_at, new_region; kind auto-split: ctld's own, by size or write\n"
     "      rate), merges (merge_with), while running what they wait for,\n"
     "      running/done/failed, how long, and why"},
    {"stats", cmd_stats, "stats", "counters per core and in total"},
    {"top", cmd_top, "top [--stats PATH] [--interval S] [--count N]",
     "live per-core rates from the shared-memory stats segment, every S seconds\n"
     "      (default 1) until Ctrl-C or N times; the segment path comes from `status`\n"
     "      unless --stats is given"},
    {"query", cmd_query,
     "query SERIES [--from T] [--to T] [--limit N] [--addr IP[:PORT] [--cluster ID] [--level L]]",
     "points of one series in [from, to] (integer timestamps); with --addr over the session "
     "protocol (UDP READ to the node's port address) instead of the ctl socket, at read "
     "level L: local (default: what that node applied), leader or durable (linearizable, "
     "from any node of a cluster; a multileader region: durable only, a CAD read), or sync "
     "(every write acknowledged before it, whichever node took it)"},
    {"routes", cmd_routes, "routes --addr IP[:PORT] [--cluster ID]",
     "per region its hash range, protocol and home node (where its points should go), "
     "over the session protocol (ROUTES): what a client that routes by itself reads"},
    {"ping", cmd_ping, "ping", "check that the daemon answers"},
    {"call", cmd_call, "call CMD [JSON_ARGS]",
     "send any command with a JSON object of arguments and print its result"},
};

static void print_help(FILE *out)
{
	fprintf(out,
		"usage: sluicectl [--socket PATH] [--json] [--timeout MS] COMMAND [ARGS]\n"
		"       sluicectl COMMAND --help\n\n"
		"options:\n"
		"  --socket PATH  ctl socket (default: $SLUICE_SOCKET, else %s)\n"
		"  --json         print the result as one JSON line (for scripts)\n"
		"  --timeout MS   give up waiting for the daemon after MS ms (default %d)\n"
		"  --help         this text\n"
		"  --version      print the version\n\ncommands:\n",
		DEFAULT_SOCKET, DEFAULT_TIMEOUT_MS);
	for (size_t i = 0; i < SL_ARRAY_LEN(commands); i++)
		fprintf(out, "  %s\n      %s\n", commands[i].usage, commands[i].help);
	fprintf(out, "\nexit status: 0 ok, 1 error (\"sluicectl: CODE: MESSAGE\"), 2 daemon "
		     "unreachable\n");
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

static const struct option global_opts[] = {
    {"socket", required_argument, NULL, 's'},
    {"json", no_argument, NULL, 'j'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Applies one global option; returns 0, or the exit code of a usage error. */
static int apply_global(struct opts *o, int c, const char *arg)
{
	long long v;
	switch (c) {
	case 's':
		o->socket = arg;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	case 't':
		if (!parse_i64(arg, 1, INT_MAX, &v))
			return usage_error("--timeout wants milliseconds > 0");
		o->timeout_ms = (int)v;
		return 0;
	default:
		SL_ASSERT(0);
		return EXIT_ERR;
	}
}

/* Scripts write `sluicectl status --json` as often as `sluicectl --json status`: take the
 * global options out of the command's arguments (up to a "--") before it parses them. */
static int extract_globals(struct opts *o, int *argc, char **argv)
{
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		int c = 0;
		const char *val = NULL;
		for (const struct option *g = global_opts; g->name != NULL && c == 0; g++) {
			size_t n = strlen(g->name);
			if (g->val == 'h' || g->val == 'V' || strncmp(a, "--", 2) != 0 ||
			    strncmp(a + 2, g->name, n) != 0)
				continue;
			if (a[2 + n] == '\0' && g->has_arg == no_argument) {
				c = g->val;
			} else if (a[2 + n] == '=' && g->has_arg == required_argument) {
				c = g->val;
				val = a + 3 + n;
			} else if (a[2 + n] == '\0') {
				if (i + 1 >= *argc)
					return usage_error("%s needs a value", a);
				c = g->val;
				val = argv[++i];
			}
		}
		if (c == 0) {
			argv[out++] = argv[i];
			continue;
		}
		int rc = apply_global(o, c, val);
		if (rc != 0)
			return rc;
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	const char *env = getenv("SLUICE_SOCKET");
	struct opts o = {
	    .socket = env != NULL && env[0] != '\0' ? env : DEFAULT_SOCKET,
	    .timeout_ms = DEFAULT_TIMEOUT_MS,
	};
	int c, rc;
	/* '+': stop at the command name; what follows belongs to the command. */
	while ((c = getopt_long(argc, argv, "+:hV", global_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_help(stdout);
			return 0;
		case 'V':
			printf("sluicectl %s\n", SLUICE_VERSION);
			return 0;
		case ':':
		case '?':
			return option_error("", c, argv);
		default:
			rc = apply_global(&o, c, optarg);
			if (rc != 0)
				return rc;
		}
	}
	if (optind >= argc) {
		print_help(stderr);
		return EXIT_ERR;
	}
	const char *name = argv[optind];
	int cmd_argc = argc - optind;
	char **cmd_argv = argv + optind;
	for (size_t i = 0; i < SL_ARRAY_LEN(commands); i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		if (wants_help(cmd_argc, cmd_argv)) {
			printf("usage: sluicectl [OPTIONS] %s\n      %s\n", commands[i].usage,
			       commands[i].help);
			return 0;
		}
		rc = extract_globals(&o, &cmd_argc, cmd_argv);
		if (rc != 0)
			return rc;
		return commands[i].run(&o, cmd_argc, cmd_argv);
	}
	return usage_error("unknown command '%s'", name);
}
