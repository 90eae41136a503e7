/* ctl_client.c - one-shot blocking ctl client: connect, send one request line, read one
 * response line, all under a single deadline. Used by sluicectl, sluice-ctld's tools
 * and tests; never by a data-path core. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "sl_assert.h"

#define CTL_READ_CHUNK 65536

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline_ms (negative: forever). */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int timeout = -1;
		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			timeout = left > 1000000 ? 1000000 : (int)left;
		}
		struct pollfd pfd = {.fd = fd, .events = events};
		int rc = poll(&pfd, 1, timeout);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_to(const char *path, int *fd_out)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, len + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Unix-domain connect completes at once or fails; EAGAIN means a full backlog. */
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline_ms)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == EPIPE ? -ECONNRESET : -errno;
		int rc = wait_fd(fd, POLLOUT, deadline_ms);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Reads up to the first newline into a buffer that grows up to SL_CTL_RESPONSE_MAX plus
 * one read chunk. Bytes after the newline are dropped: one response per connection. */
static int recv_line(int fd, int64_t deadline_ms, char **line_out, size_t *len_out)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;
	for (;;) {
		if (len > SL_CTL_RESPONSE_MAX) {
			rc = -EMSGSIZE;
			break;
		}
		if (cap - len < CTL_READ_CHUNK) {
			size_t ncap = cap == 0 ? CTL_READ_CHUNK : cap * 2;
			if (ncap > (size_t)SL_CTL_RESPONSE_MAX + 2 * CTL_READ_CHUNK)
				ncap = (size_t)SL_CTL_RESPONSE_MAX + 2 * CTL_READ_CHUNK;
			char *p = realloc(buf, ncap);
			if (p == NULL) {
				rc = -ENOMEM;
				break;
			}
			buf = p;
			cap = ncap;
		}
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		if (n > 0) {
			char *nl = memchr(buf + len, '\n', (size_t)n);
			len += (size_t)n;
			if (nl != NULL) {
				*line_out = buf;
				*len_out = (size_t)(nl - buf);
				return *len_out > SL_CTL_RESPONSE_MAX ? (free(buf), -EMSGSIZE) : 0;
			}
			continue;
		}
		if (n == 0) {
			rc = -ECONNRESET;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			rc = -errno;
			break;
		}
		rc = wait_fd(fd, POLLIN, deadline_ms);
		if (rc < 0)
			break;
	}
	free(buf);
	return rc;
}

int sl_ctl_call(const char *path, const char *cmd, struct json_object *args, int timeout_ms,
		struct json_object **response_out)
{
	SL_ASSERT(path != NULL && cmd != NULL && response_out != NULL);
	*response_out = NULL;
	int64_t deadline_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	/* Ids only need to be unique per connection; one request per connection here. */
	struct json_object *id = json_object_new_int(1);
	struct json_object *req =
	    sl_ctl_request_new(id, cmd, args != NULL ? json_object_get(args) : NULL);
	json_object_put(id);
	size_t req_len = 0;
	const char *text = req != NULL ? sl_ctl_to_line(req, &req_len) : NULL;
	if (text == NULL) {
		json_object_put(req);
		return -ENOMEM;
	}
	int fd = -1;
	int rc = connect_to(path, &fd);
	if (rc < 0) {
		json_object_put(req);
		return rc;
	}
	rc = send_all(fd, text, req_len, deadline_ms);
	if (rc == 0)
		rc = send_all(fd, "\n", 1, deadline_ms);
	json_object_put(req);
	char *line = NULL;
	size_t line_len = 0;
	if (rc == 0)
		rc = recv_line(fd, deadline_ms, &line, &line_len);
	close(fd);
	if (rc < 0)
		return rc;
	rc = sl_ctl_parse_json(line, line_len, response_out);
	free(line);
	return rc;
}
