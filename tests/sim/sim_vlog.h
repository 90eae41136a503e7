/* sim_vlog.h - entry of sluice-sim's reconfiguration mode (sim_vlog.c), chosen in sim.c's
 * main by --reconfig; the other modes are untouched by it. */
#ifndef SL_SIM_VLOG_H
#define SL_SIM_VLOG_H

/* Parses its own arguments (--seed, --seeds, --first, --seed-file, --all-steps,
 * --keep-going, -v); 0 when every seed passed, 1 when one failed, 2 on a usage error. */
int sim_vlog_main(int argc, char **argv);

#endif
