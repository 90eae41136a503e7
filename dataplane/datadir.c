/* datadir.c - the data dir's creation and its ownership lock (see datadir.h). flock, not
 * fcntl record locks: those vanish when the process closes any descriptor of the file. */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* The parent of dir ("." for a bare name), trailing slashes ignored. */
static void parent_of(const char *dir, char *out, size_t len)
{
	snprintf(out, len, "%s", dir);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	char *slash = strrchr(out, '/');
	if (slash == NULL)
		snprintf(out, len, ".");
	else if (slash == out)
		out[1] = '\0'; /* "/x": the root */
	else
		*slash = '\0';
}

static int make_dir(const char *dir, char *err, size_t err_len)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, err_len, "data dir %s exists but is not a directory", dir);
		return -ENOTDIR;
	}
	char parent[SL_CFG_PATH_MAX];
	parent_of(dir, parent, sizeof(parent));
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, err_len,
			 "data dir %s: its parent directory %s does not exist; sluiced creates only "
			 "the data dir itself (check the path, or create %s first)",
			 dir, parent, parent);
		return -ENOENT;
	}
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, err_len, "data dir %s: %s", dir, strerror(e));
		return -e;
	}
	return 0;
}

int sl_datadir_lock(const char *dir, int *lock_fd, char *err, size_t err_len)
{
	*lock_fd = -1;
	int rc = make_dir(dir, err, err_len);
	if (rc != 0)
		return rc;
	char path[SL_CFG_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, SL_DATADIR_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_len, "data dir lock %s: %s", path, strerror(e));
		return -e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char buf[32] = "";
		ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[k > 0 ? k : 0] = '\0';
		long pid = strtol(buf, NULL, 10);
		close(fd);
		if (e != EWOULDBLOCK) {
			snprintf(err, err_len, "data dir lock %s: %s", path, strerror(e));
			return -e;
		}
		if (pid > 0)
			snprintf(err, err_len,
				 "data dir %s is in use by another sluiced (pid %ld); a data dir "
				 "serves one node at a time",
				 dir, pid);
		else
			snprintf(err, err_len,
				 "data dir %s is in use by another process (lock %s held)", dir,
				 path);
		return -EBUSY;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		int e = errno;
		close(fd);
		snprintf(err, err_len, "data dir lock %s: %s", path, strerror(e));
		return -e;
	}
	*lock_fd = fd;
	return 0;
}
