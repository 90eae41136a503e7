/* ingest_format.h - layout of the shared-memory ingest segment, shared by the node side
 * (ingest.c) and the client library (libsluice.c). Same-host shared memory holding live
 * atomics, so native byte order and C11 atomics; sizes in the header guard mismatches.
 *
 * File layout (offsets in bytes from the start of the file):
 *
 *   0          header, SL_INGEST_HDR_SIZE bytes (struct sl_ingest_hdr)
 *                +0   u64 magic          SL_INGEST_MAGIC
 *                +8   u32 version        SL_INGEST_VERSION; a mismatch is -EPROTO
 *                +12  u32 hdr_size       SL_INGEST_HDR_SIZE
 *                +16  u32 n_slots        client slots
 *                +20  u32 ring_entries   records per submission ring = acks per
 *                                        completion ring; a power of two
 *                +24  u32 rec_size       sizeof(struct sl_ingest_wire_rec) = 296
 *                +28  u32 ack_size       sizeof(struct sl_ingest_wire_ack) = 16
 *                +32  u64 slot_size      bytes per slot (multiple of 64)
 *                +40  u64 slots_off      offset of slot 0 (= hdr_size)
 *                +48  u64 file_size
 *                +56  i32 node_pid
 *                +60  u32 node_state     atomic: 1 running, 2 closed (clean shutdown)
 *                +64  u64 generation     random per node start
 *                +128 u64 heartbeat      atomic, own cache line; the node bumps it
 *   slots_off + i * slot_size: slot i
 *                +0   i32 owner_pid      atomic: 0 free, > 0 owning client pid,
 *                                        -1 draining (released; the node drains, resets
 *                                        the indices to 0 and frees it)
 *                +64  u64 sub_head       atomic, client (producer) writes
 *                +128 u64 sub_tail       atomic, node (consumer) writes
 *                +192 u64 comp_head      atomic, node (producer) writes
 *                +256 u64 comp_tail      atomic, client (consumer) writes
 *                +320 records            ring_entries x rec_size
 *                +320 + ring_entries * rec_size: acks, ring_entries x ack_size
 *
 * Each index is a free-running u64 on its own cache line; entry = index & (entries - 1).
 * The producer fills entries then publishes its head with a release store; the consumer
 * loads the head with acquire, copies the entries out, then publishes its tail with a
 * release store. A client publishes a whole batch with one head store, which makes a
 * batch all-or-nothing. One ack per batch and at most ring_entries batches in flight
 * (enforced by libsluice) mean the completion ring never overflows.
 *
 * Trust: the node never trusts client-written memory. It keeps its own copies of its
 * indices and of the segment geometry, copies a record before validating it, and treats
 * a head that runs more than ring_entries ahead as a corrupt ring.
 */
#ifndef SL_INGEST_FORMAT_H
#define SL_INGEST_FORMAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SL_INGEST_MAGIC 0x3154534e474e4c53ULL /* "SLNGNST1" */
#define SL_INGEST_VERSION 1u
#define SL_INGEST_HDR_SIZE 256u
#define SL_INGEST_SLOT_CTL_SIZE 320u
#define SL_KEY_MAX 256
#define SL_INGEST_SLOTS_MAX 1024u
#define SL_INGEST_RING_MAX 65536u
#define SL_INGEST_FILE_MAX ((uint64_t)1 << 30)

#define SL_INGEST_NODE_RUNNING 1u
#define SL_INGEST_NODE_CLOSED 2u
#define SL_INGEST_OWNER_FREE 0
#define SL_INGEST_OWNER_DRAINING (-1)

enum sl_ingest_type { SL_TYPE_F64 = 1, SL_TYPE_I64 = 2, SL_TYPE_U64 = 3, SL_TYPE_BOOL = 4 };

struct sl_ingest_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint32_t n_slots;
	uint32_t ring_entries;
	uint32_t rec_size;
	uint32_t ack_size;
	uint64_t slot_size;
	uint64_t slots_off;
	uint64_t file_size;
	int32_t node_pid;
	_Atomic uint32_t node_state;
	uint64_t generation;
	_Alignas(64) _Atomic uint64_t heartbeat;
	uint8_t reserved[SL_INGEST_HDR_SIZE - 136];
};

struct sl_ingest_slot_ctl {
	_Alignas(64) _Atomic int32_t owner_pid;
	_Alignas(64) _Atomic uint64_t sub_head;
	_Alignas(64) _Atomic uint64_t sub_tail;
	_Alignas(64) _Atomic uint64_t comp_head;
	_Alignas(64) _Atomic uint64_t comp_tail;
};

struct sl_ingest_wire_rec {
	uint64_t batch_seq;
	uint32_t index; /* position in the batch, 0..batch_count-1 */
	uint32_t batch_count;
	int64_t ts;
	uint64_t value; /* f64 as its IEEE-754 bits; bool 0 or 1 */
	uint16_t key_len;
	uint8_t type; /* enum sl_ingest_type */
	uint8_t reserved[5];
	uint8_t key[SL_KEY_MAX];
};

struct sl_ingest_wire_ack {
	uint64_t batch_seq;
	int32_t status; /* 0 ok, else a negative errno */
	uint32_t count; /* points of the batch the status covers */
};

_Static_assert(sizeof(struct sl_ingest_hdr) == SL_INGEST_HDR_SIZE, "header layout");
_Static_assert(offsetof(struct sl_ingest_hdr, generation) == 64, "header layout");
_Static_assert(offsetof(struct sl_ingest_hdr, heartbeat) == 128, "header layout");
_Static_assert(sizeof(struct sl_ingest_slot_ctl) == SL_INGEST_SLOT_CTL_SIZE, "slot layout");
_Static_assert(offsetof(struct sl_ingest_slot_ctl, comp_tail) == 256, "slot layout");
_Static_assert(offsetof(struct sl_ingest_wire_rec, key) == 40, "record layout");
_Static_assert(sizeof(struct sl_ingest_wire_rec) == 296, "record layout");
_Static_assert(sizeof(struct sl_ingest_wire_ack) == 16, "ack layout");

/* Geometry both sides derive from (n_slots, ring_entries); the client checks that the
 * header agrees with it before touching any slot. */
static inline uint64_t sl_ingest_slot_size(uint32_t ring_entries)
{
	uint64_t sz = SL_INGEST_SLOT_CTL_SIZE +
		      (uint64_t)ring_entries *
			  (sizeof(struct sl_ingest_wire_rec) + sizeof(struct sl_ingest_wire_ack));
	return (sz + 63) & ~(uint64_t)63;
}

static inline uint64_t sl_ingest_file_size(uint32_t n_slots, uint32_t ring_entries)
{
	return SL_INGEST_HDR_SIZE + (uint64_t)n_slots * sl_ingest_slot_size(ring_entries);
}

static inline int sl_ingest_geometry_ok(uint32_t n_slots, uint32_t ring_entries)
{
	return n_slots >= 1 && n_slots <= SL_INGEST_SLOTS_MAX && ring_entries >= 1 &&
	       ring_entries <= SL_INGEST_RING_MAX && (ring_entries & (ring_entries - 1)) == 0 &&
	       sl_ingest_file_size(n_slots, ring_entries) <= SL_INGEST_FILE_MAX;
}

static inline struct sl_ingest_slot_ctl *sl_ingest_slot_ctl(uint8_t *base, uint32_t ring_entries,
							    uint32_t slot)
{
	return (struct sl_ingest_slot_ctl *)(base + SL_INGEST_HDR_SIZE +
					     (uint64_t)slot * sl_ingest_slot_size(ring_entries));
}

static inline struct sl_ingest_wire_rec *sl_ingest_slot_recs(struct sl_ingest_slot_ctl *ctl)
{
	return (struct sl_ingest_wire_rec *)((uint8_t *)ctl + SL_INGEST_SLOT_CTL_SIZE);
}

static inline struct sl_ingest_wire_ack *sl_ingest_slot_acks(struct sl_ingest_slot_ctl *ctl,
							     uint32_t ring_entries)
{
	return (struct sl_ingest_wire_ack *)((uint8_t *)sl_ingest_slot_recs(ctl) +
					     (uint64_t)ring_entries *
						 sizeof(struct sl_ingest_wire_rec));
}

/* Point validity shared by both sides: the client refuses with -EINVAL, the node flags. */
static inline int sl_ingest_key_ok(uint16_t key_len)
{
	return key_len >= 1 && key_len <= SL_KEY_MAX;
}
static inline int sl_ingest_type_ok(uint8_t type)
{
	return type >= SL_TYPE_F64 && type <= SL_TYPE_BOOL;
}
static inline int sl_ingest_value_ok(uint8_t type, uint64_t value)
{
	return type != SL_TYPE_BOOL || value <= 1;
}

#endif
