/* raft_wal_craft.c - integration-test helper: writes a worker's WAL the way sluiced would
 * for a raft region (hard state, then entry records), with whatever indexes the test asks
 * for, so a test can give sluiced a log it must refuse (a gap, an oversized entry).
 * Usage: raft_wal_craft WAL_DIR REGION SPEC... where SPEC is INDEX (a no-op entry of term
 * 1), INDEX:LEN (a no-op entry carrying LEN zero bytes) or INDEX:junk (a normal entry whose
 * batch does not decode). */
#include "node_internal.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s WAL_DIR REGION INDEX[:LEN]...\n", argv[0]);
		return 2;
	}
	struct sl_wal_config wc;
	sl_wal_config_default(&wc);
	wc.dir = argv[1];
	wc.no_direct = true;
	uint32_t region = (uint32_t)strtoul(argv[2], NULL, 10);
	struct sl_wal *wal = NULL;
	int rc = sl_wal_open(&wc, &wal);
	if (rc == 0)
		rc = sl_wal_recover(wal, NULL, NULL, NULL);
	static uint8_t rec[ENTRY_HDR + (512u << 10)];
	uint64_t lsn;
	if (rc == 0) {
		rec[0] = 2; /* hard state: term 1, no vote, nothing committed yet */
		sl_put_u32(rec + 1, region);
		sl_put_u64(rec + 5, 1);
		sl_put_u32(rec + 13, 0);
		sl_put_u64(rec + 17, 0);
		rc = sl_wal_append(wal, WAL_REC_HARDSTATE, rec, HARDSTATE_BYTES, &lsn);
	}
	for (int i = 3; i < argc && rc == 0; i++) {
		char *end;
		uint64_t index = strtoull(argv[i], &end, 10);
		bool junk = strcmp(end, ":junk") == 0;
		uint32_t len = junk ? 64 : *end == ':' ? (uint32_t)strtoul(end + 1, NULL, 10) : 0;
		if (len > sizeof(rec) - ENTRY_HDR) {
			rc = -EINVAL;
			break;
		}
		memset(rec, 0, ENTRY_HDR + len);
		rec[0] = 1;
		sl_put_u32(rec + 1, region);
		sl_put_u64(rec + 5, 1);
		sl_put_u64(rec + 13, index);
		sl_put_u32(rec + 21, junk ? SL_CONS_ENTRY_NORMAL : SL_CONS_ENTRY_NOOP);
		if (junk)
			memset(rec + ENTRY_HDR, 0x5a, len);
		rc = sl_wal_append(wal, WAL_REC_ENTRY, rec, ENTRY_HDR + len, &lsn);
	}
	if (rc == 0)
		rc = sl_wal_sync(wal);
	if (wal != NULL)
		sl_wal_close(wal);
	if (rc != 0) {
		fprintf(stderr, "raft_wal_craft: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
