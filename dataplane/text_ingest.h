/* text_ingest.h - points from threads that are not worker cores (the HTTP server, the
 * kernel UDP listener) into the node: a writer gathers points in chunks (the points and
 * the bytes of their keys and strings), hands each full chunk to a worker core through
 * local_ingest.h, keeps a few chunks in flight and waits for the answers. A request's
 * answer is known only when every chunk is answered: stored at its region's ack level,
 * refused, or failed.
 *
 * Not for worker cores: it allocates (chunks come from a shared free list) and it waits
 * (short sleeps). */
#ifndef SL_TEXT_INGEST_H
#define SL_TEXT_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "lineproto.h"

struct sl_node;
struct ti_chunk;

#define SL_TI_INFLIGHT 4 /* chunks of one writer in flight at once */

struct sl_ti_writer {
	struct sl_node *node;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0: wait without a bound */
	bool wait;            /* false: fire and forget (UDP): chunks are answered unseen */
	struct ti_chunk *cur; /* filling */
	struct ti_chunk *inflight[SL_TI_INFLIGHT];
	unsigned n_inflight;
	/* outcome so far */
	uint64_t points;  /* handed to the node */
	uint64_t stored;  /* answered stored */
	uint64_t refused; /* answered refused (type conflicts) */
	int error;	  /* first of -EIO (storage), -ETIMEDOUT, -ESHUTDOWN, -ENOMEM; 0 none */
};

/* Counters of everything the writers saw (all threads), for /metrics and ctl stats. */
struct sl_ti_counters {
	uint64_t chunks, points, stored, refused, storage_errors, timeouts, queue_full_waits;
	uint64_t chunks_abandoned; /* a writer stopped waiting: freed once answered */
};
void sl_ti_counters(struct sl_ti_counters *out);

void sl_ti_begin(struct sl_ti_writer *wr, struct sl_node *n, uint64_t timeout_ns, bool wait);
/* Adds one point, copying its key (and string) into the chunk. 0, or the writer's error
 * (nothing more is taken once one happened). The point must pass sl_batch_point_check. */
int sl_ti_add(struct sl_ti_writer *wr, const struct sl_point *pt);
/* Parses one line of line protocol (sl_lp_parse_line) straight into the chunk and adds
 * its fields. Returns 0, SL_LP_SKIP, -EBADMSG (line->err says why; nothing added) or the
 * writer's error. `line` is the caller's work area (its scratch is set here). */
int sl_ti_add_line(struct sl_ti_writer *wr, const char *text, size_t len,
		   const struct sl_lp_opts *opts, struct sl_lp_line *line);
/* Hands the last chunk over and waits for every answer (wait = true) or the deadline.
 * Returns 0 or the writer's error; wr->stored/refused tell the rest. */
int sl_ti_end(struct sl_ti_writer *wr);

/* Chunks nobody waits for any more (timeouts, UDP) are freed once answered: call now and
 * then from any thread (cheap when there are none). */
void sl_ti_reap(void);

/* A line's reason in InfluxDB's words ("missing fields", "invalid number", ...). */
const char *sl_ti_lp_reason(int lp_err);

#endif
