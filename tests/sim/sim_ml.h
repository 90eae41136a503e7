/* sim_ml.h - entry of sluice-sim's multileader mode (sim_ml.c), chosen in sim.c's main by
 * --protocol multileader; the raft modes of sim.c are untouched by it. */
#ifndef SL_SIM_ML_H
#define SL_SIM_ML_H

/* Parses its own arguments (--seed, --seeds, --first, --keep-going, -v); 0 when every
 * seed passed, 1 when one failed, 2 on a usage error. */
int sim_ml_main(int argc, char **argv);

#endif
