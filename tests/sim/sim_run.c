/* sim_run.c - the command line and summary pieces both of sluice-sim's seed loops share
 * (sim.c's raft modes, sim_ml.c's multileader mode): the seed range options, the soak-size
 * override, wall time and the fault/checker count tables. The loops themselves differ. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sl_assert.h"

static bool ev_less(const struct sim_event *a, const struct sim_event *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

void sim_queue_push(struct sim_queue *q, struct sim_event e)
{
	if (q->len == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 1024;
		q->v = realloc(q->v, q->cap * sizeof(*q->v));
		SL_ASSERT(q->v != NULL);
	}
	e.seq = q->seq++;
	size_t i = q->len++;
	while (i > 0 && ev_less(&e, &q->v[(i - 1) / 2])) {
		q->v[i] = q->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	q->v[i] = e;
}

struct sim_event sim_queue_pop(struct sim_queue *q)
{
	struct sim_event top = q->v[0], last = q->v[--q->len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->len)
			break;
		if (c + 1 < q->len && ev_less(&q->v[c + 1], &q->v[c]))
			c++;
		if (!ev_less(&q->v[c], &last))
			break;
		q->v[i] = q->v[c];
		i = c;
	}
	if (q->len > 0)
		q->v[i] = last;
	return top;
}

bool sim_seed_arg(int argc, char **argv, int *i, struct sim_seed_args *a)
{
	const char *arg = argv[*i];
	if (*i + 1 >= argc) /* each takes a value: without one it is not ours (usage error) */
		return false;
	if (strcmp(arg, "--seed") == 0) {
		a->single = strtoull(argv[++*i], NULL, 0);
		a->have_single = true;
	} else if (strcmp(arg, "--seeds") == 0) {
		a->count = strtoull(argv[++*i], NULL, 0);
	} else if (strcmp(arg, "--first") == 0) {
		a->first = strtoull(argv[++*i], NULL, 0);
	} else {
		return false;
	}
	return true;
}

int sim_seed_file(const char *path, bool keep_going, int (*run)(void *ctx, uint64_t seed),
		  void *ctx)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "sluice-sim: cannot open %s: %s\n", path, strerror(errno));
		return 2;
	}
	char line[256];
	int rc = 0;
	while ((rc == 0 || keep_going) && fgets(line, sizeof(line), f)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == 0)
			continue;
		rc |= run(ctx, strtoull(p, NULL, 0));
	}
	fclose(f);
	return rc;
}

void sim_seed_count_env(uint64_t *count)
{
	const char *env = getenv("SLUICE_SIM_SEEDS");
	if (env != NULL && *env) /* a lab's soak size wins over the built-in one */
		*count = strtoull(env, NULL, 0);
}

double sim_wall_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

void sim_print_counts(const char *title, const char *const *names, const uint64_t *counts,
		      int n, int width)
{
	printf("%s:\n", title);
	for (int i = 0; i < n; i++)
		printf("  %-*s %" PRIu64 "\n", width, names[i], counts[i]);
}
