/* sim_run.c - the command line and summary pieces both of sluice-sim's seed loops share
 * (sim.c's raft modes, sim_ml.c's multileader mode): the seed range options, the soak-size
 * override, wall time and the fault/checker count tables. The loops themselves differ. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

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
