/* lww.h - the last-writer-wins rule that makes multileader replicas converge: of two
 * writes to one (series, timestamp), the one with the higher hybrid logical clock value
 * wins, a tie goes to the higher origin node. Shared by the protocol's tests, the
 * simulator's model and the store, so every replica decides the same way. */
#ifndef SL_LWW_H
#define SL_LWW_H

#include <stdbool.h>
#include <stdint.h>

/* True when write a (hlc_a from origin_a) replaces write b. Deterministic and total: the
 * outcome never depends on which of the two arrived first. */
bool sl_lww_wins(uint64_t hlc_a, uint32_t origin_a, uint64_t hlc_b, uint32_t origin_b);

#endif
