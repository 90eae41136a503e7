/* sluice.h - libsluice, the client library through which a producer on the same host
 * hands points to a sluice node over its shared-memory ingest ring, with no network
 * stack. Self-contained: needs no other sluice header. */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_KEY_MAX 256 /* bytes of a series key */

enum sluice_type { SLUICE_F64 = 1, SLUICE_I64 = 2, SLUICE_U64 = 3, SLUICE_BOOL = 4 };

struct sluice_point {
	const char *key;  /* series key, key_len bytes, no NUL needed */
	uint16_t key_len; /* 1..SLUICE_KEY_MAX */
	int64_t ts;	  /* timestamp, ns */
	uint8_t type;	  /* enum sluice_type */
	uint64_t value;	  /* f64 as IEEE-754 bits (sluice_f64()), i64 as two's complement,
			   * bool 0 or 1 */
};

struct sluice_ack {
	uint64_t batch_seq;
	int32_t status; /* 0 all stored; -EINVAL some points rejected; -EIO storage failed;
			 * -EPROTO the batch was malformed on the ring (never from libsluice) */
	uint32_t count; /* points of the batch stored (all of them when status is 0) */
};

struct sluice_client;

static inline uint64_t sluice_f64(double d)
{
	uint64_t v;
	memcpy(&v, &d, sizeof(v));
	return v;
}

/* Connects to the node's ingest segment (e.g. /dev/shm/sluice-<node>.ingest) and claims
 * a slot. -ENOENT no node, -EBUSY all slots taken, -EPROTO not a segment of this version,
 * -ENOTCONN the node is dead or shut down, other negative errno from the system. */
int sluice_connect(const char *path, struct sluice_client **out);

/* Queues one batch of n points, all or nothing; writes its sequence number (1, 2, ...
 * per connection) to *batch_seq_out when not NULL. -EAGAIN no room for all n now (ring
 * full, or sluice_capacity() batches awaiting sluice_poll_acks()), -EINVAL bad
 * arguments (n == 0, n > sluice_capacity(), a key empty or too long, a bad type or bool
 * value), -ENOTCONN the node is gone (its process died, it shut down, or a new node
 * replaced the segment): reconnect and resend unacknowledged batches. */
int sluice_write(struct sluice_client *c, const struct sluice_point *pts, uint32_t n,
		 uint64_t *batch_seq_out);

/* Copies up to max acks, in batch order. Returns the number copied (0 none yet),
 * -ENOTCONN once the node is gone and no acks remain, -EPROTO on a corrupt ring. */
int sluice_poll_acks(struct sluice_client *c, struct sluice_ack *out, uint32_t max);

/* Most points per batch, and most batches awaiting acks. */
int sluice_capacity(const struct sluice_client *c);

/* The node's liveness counter: a value that stops moving means a stuck node. */
uint64_t sluice_node_heartbeat(const struct sluice_client *c);

/* Releases the slot (the node drains what was written, then recycles the slot) and
 * frees the client. Unacknowledged batches may or may not be applied. */
void sluice_close(struct sluice_client *c);

/* A client is one producer: use each sluice_client from one thread at a time. Node
 * liveness is checked through the segment on every call and through the system (kill,
 * stat) at most once a millisecond, and whenever a call cannot make progress. */

#ifdef __cplusplus
}
#endif

#endif
