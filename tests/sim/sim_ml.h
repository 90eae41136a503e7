/* sim_ml.h - entry of sluice-sim's multileader mode (sim_ml.c), chosen in sim.c's main by
 * --protocol multileader; the raft modes of sim.c are untouched by it. */
#ifndef SL_SIM_ML_H
#define SL_SIM_ML_H

/* Parses its own arguments (--seed, --seeds, --first, --keep-going, -v); 0 when every
 * seed passed, 1 when one failed, 2 on a usage error. */
int sim_ml_main(int argc, char **argv);

#include <stdint.h>

#include "multileader.h"

/* The multileader options of this mode (small batches and windows, short timers, a
 * retention of 2000 entries); --reconfig starts from them. */
extern const struct sl_ml_opts sim_ml_opts;

/* The end of replica `self`'s own stream as its multileader instance `ml` knows it (0: not
 * sealed); --reconfig's multileader segments use it too. */
uint64_t sim_ml_own_end(void *ml, uint32_t self);

#endif
