/* datadir.h - a data dir belongs to one sluiced: it is created (never its missing parents,
 * a typo must not serve an empty node) and locked before anything else is created. */
#ifndef SL_DATADIR_H
#define SL_DATADIR_H

#include <stddef.h>

#define SL_DATADIR_LOCK_FILE "sluiced.lock"

/* Create dir if absent (its parent must exist), then take flock(LOCK_EX) on
 * dir/sluiced.lock and write our pid into it. *lock_fd stays open for the process's life
 * (the lock goes with it, also on a crash). 0, or -ENOENT (the parent is missing),
 * -ENOTDIR (dir is not a directory), -EBUSY (another process holds the lock: err names
 * its pid), another negative errno; err says what in every case. */
int sl_datadir_lock(const char *dir, int *lock_fd, char *err, size_t err_len);

#endif
