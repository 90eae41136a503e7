/* ctl_server.c - the node-side ctl socket server: a non-blocking Unix stream listener and
 * a fixed table of connections, driven one poll() round at a time by the daemon's main
 * lcore (never a worker). Input and output are bounded per connection; a slow reader
 * stops its own request processing instead of growing memory. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "sl_assert.h"

/* Input buffer: one maximal line plus its newline. */
#define CTL_IN_CAP ((size_t)SL_CTL_LINE_MAX + 1)
/* Stop dispatching a connection's requests while this much output is unsent. */
#define CTL_OUT_HIGH_WATER ((size_t)256 << 10)
/* Accepts per poll round, so a connect storm cannot starve established clients. */
#define CTL_ACCEPTS_PER_ROUND 16
#define CTL_LISTEN_BACKLOG 64
#define CTL_ERR_MSG_LEN 256

struct ctl_conn {
	int fd; /* -1: free slot */
	bool eof;
	bool discarding; /* inside an oversize line: drop input up to the next newline */
	char *in;
	size_t in_start; /* first unconsumed byte */
	size_t in_len;	 /* end of received bytes */
	char *out;
	size_t out_off; /* first unsent byte */
	size_t out_len;
	size_t out_cap;
};

struct sl_ctl_server {
	int listen_fd;
	uid_t uid;
	dev_t sock_dev; /* identity of our socket file, so close never unlinks a successor's */
	ino_t sock_ino;
	sl_ctl_handler_fn fn;
	void *arg;
	struct sl_ctl_server_stats stats;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_conn conns[SL_CTL_CONNS_MAX];
	struct pollfd pfds[1 + SL_CTL_CONNS_MAX];
	int pfd_conn[1 + SL_CTL_CONNS_MAX]; /* pfds index -> conns index */
};

static int make_addr(const char *path, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	size_t len = strlen(path);
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	memcpy(addr->sun_path, path, len + 1);
	return 0;
}

/* A socket file whose server died stays behind; only remove it once we know nobody is
 * listening, so two daemons can never silently steal each other's socket. */
static int remove_stale(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	int err = rc < 0 ? errno : 0;
	close(fd);
	if (rc == 0 || err == EAGAIN)
		return -EADDRINUSE; /* answered, or alive with a full backlog */
	if (err != ECONNREFUSED)
		return -err;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int sl_ctl_server_open(const char *path, sl_ctl_handler_fn fn, void *arg,
		       struct sl_ctl_server **out)
{
	SL_ASSERT(path != NULL && out != NULL);
	*out = NULL;
	struct sockaddr_un addr;
	int rc = make_addr(path, &addr);
	if (rc < 0)
		return rc;
	rc = remove_stale(path, &addr);
	if (rc < 0)
		return rc;
	struct sl_ctl_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return -ENOMEM;
	srv->uid = geteuid();
	srv->fn = fn;
	srv->arg = arg;
	memcpy(srv->path, addr.sun_path, sizeof(srv->path));
	for (size_t i = 0; i < SL_CTL_CONNS_MAX; i++)
		srv->conns[i].fd = -1;
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->listen_fd < 0) {
		rc = -errno;
		free(srv);
		return rc;
	}
	/* bind() creates the file with the umask applied: narrowing the umask around it
	 * means the socket is never reachable by others, not even between bind and chmod.
	 * The chmod stays as a guard against a umask changed concurrently. */
	mode_t old_mask = umask(0177);
	rc = bind(srv->listen_fd, (const struct sockaddr *)&addr, sizeof(addr));
	int bind_err = errno;
	umask(old_mask);
	if (rc < 0) {
		rc = -bind_err;
		goto fail_close;
	}
	struct stat st;
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0 ||
	    listen(srv->listen_fd, CTL_LISTEN_BACKLOG) < 0) {
		rc = -errno;
		unlink(path);
		goto fail_close;
	}
	srv->sock_dev = st.st_dev;
	srv->sock_ino = st.st_ino;
	*out = srv;
	return 0;
fail_close:
	close(srv->listen_fd);
	free(srv);
	return rc;
}

int sl_ctl_server_fd(const struct sl_ctl_server *srv) { return srv->listen_fd; }

void sl_ctl_server_stats(const struct sl_ctl_server *srv, struct sl_ctl_server_stats *out)
{
	*out = srv->stats;
}

static void conn_close(struct sl_ctl_server *srv, struct ctl_conn *c)
{
	SL_ASSERT(c->fd >= 0);
	close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	SL_ASSERT(srv->stats.connections_open > 0);
	srv->stats.connections_open--;
}

void sl_ctl_server_close(struct sl_ctl_server *srv)
{
	if (srv == NULL)
		return;
	for (size_t i = 0; i < SL_CTL_CONNS_MAX; i++)
		if (srv->conns[i].fd >= 0)
			conn_close(srv, &srv->conns[i]);
	close(srv->listen_fd);
	struct stat st;
	if (lstat(srv->path, &st) == 0 && st.st_dev == srv->sock_dev && st.st_ino == srv->sock_ino)
		unlink(srv->path);
	free(srv);
}

/* Best effort single error line to a socket we are about to close: the peer learns why,
 * and a full socket buffer just loses the courtesy. */
static void send_error_and_close(int fd, const char *code, const char *message)
{
	struct json_object *resp = sl_ctl_response_error(NULL, code, message);
	size_t len = 0;
	const char *text = resp != NULL ? sl_ctl_to_line(resp, &len) : NULL;
	if (text != NULL) {
		struct iovec iov[2] = {{(void *)text, len}, {"\n", 1}};
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
		(void)sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	json_object_put(resp);
	close(fd);
}

static struct ctl_conn *free_slot(struct sl_ctl_server *srv)
{
	for (size_t i = 0; i < SL_CTL_CONNS_MAX; i++)
		if (srv->conns[i].fd < 0)
			return &srv->conns[i];
	return NULL;
}

static void accept_conns(struct sl_ctl_server *srv)
{
	for (int n = 0; n < CTL_ACCEPTS_PER_ROUND; n++) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a transient error the next round retries */
		struct ucred cred;
		socklen_t cred_len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0 ||
		    (cred.uid != 0 && cred.uid != srv->uid)) {
			srv->stats.peers_rejected++;
			send_error_and_close(fd, SL_CTL_ERR_FORBIDDEN,
					     "only root or the daemon's user may use this socket");
			continue;
		}
		struct ctl_conn *c = free_slot(srv);
		if (c == NULL) {
			srv->stats.errors_busy++;
			send_error_and_close(fd, SL_CTL_ERR_BUSY, "too many ctl connections");
			continue;
		}
		c->in = malloc(CTL_IN_CAP);
		if (c->in == NULL) {
			send_error_and_close(fd, SL_CTL_ERR_INTERNAL, "out of memory");
			continue;
		}
		c->fd = fd;
		srv->stats.connections++;
		srv->stats.connections_open++;
	}
}

static int out_append(struct ctl_conn *c, const char *text, size_t len)
{
	/* Keep only unsent bytes, so a reader that never fully drains cannot make the buffer
	 * creep forward without bound. */
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	size_t need = c->out_len + len + 1;
	if (need > c->out_cap) {
		size_t cap = c->out_cap != 0 ? c->out_cap : 4096;
		while (cap < need)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (p == NULL)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	return 0;
}

static size_t out_pending(const struct ctl_conn *c) { return c->out_len - c->out_off; }

/* Queues resp (consumed) as one line; falls back to a static internal error when the
 * response cannot be encoded or is larger than clients accept. */
static int queue_response(struct ctl_conn *c, struct json_object *id, struct json_object *resp)
{
	size_t len = 0;
	const char *text = resp != NULL ? sl_ctl_to_line(resp, &len) : NULL;
	int rc;
	if (text != NULL && len <= SL_CTL_RESPONSE_MAX) {
		rc = out_append(c, text, len);
	} else {
		json_object_put(resp);
		resp = sl_ctl_response_error(id, SL_CTL_ERR_INTERNAL,
					     text == NULL ? "out of memory" : "response too large");
		text = resp != NULL ? sl_ctl_to_line(resp, &len) : NULL;
		rc = text != NULL ? out_append(c, text, len) : -ENOMEM;
	}
	json_object_put(resp);
	return rc;
}

static struct json_object *stats_json(const struct sl_ctl_server_stats *s)
{
	struct json_object *o = json_object_new_object();
	if (o == NULL)
		return NULL;
	const struct {
		const char *name;
		uint64_t value;
	} fields[] = {
	    {"requests", s->requests},
	    {"errors_bad_json", s->errors_bad_json},
	    {"errors_bad_request", s->errors_bad_request},
	    {"errors_unknown", s->errors_unknown},
	    {"errors_too_large", s->errors_too_large},
	    {"errors_handler", s->errors_handler},
	    {"errors_busy", s->errors_busy},
	    {"peers_rejected", s->peers_rejected},
	    {"connections", s->connections},
	    {"connections_open", s->connections_open},
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(fields); i++)
		json_object_object_add(o, fields[i].name, json_object_new_uint64(fields[i].value));
	return o;
}

/* Runs one decoded request: built-ins first, then the daemon's handler. */
static struct json_object *dispatch(struct sl_ctl_server *srv, const struct sl_ctl_request *req)
{
	if (strcmp(req->cmd, "ping") == 0) {
		struct json_object *r = json_object_new_object();
		if (r != NULL)
			json_object_object_add(r, "pong", json_object_new_boolean(1));
		return sl_ctl_response_ok(req->id, r);
	}
	if (strcmp(req->cmd, "ctl_stats") == 0)
		return sl_ctl_response_ok(req->id, stats_json(&srv->stats));
	if (srv->fn == NULL) {
		srv->stats.errors_unknown++;
		return sl_ctl_response_error(req->id, SL_CTL_ERR_UNKNOWN_COMMAND,
					     "unknown command");
	}
	struct json_object *result = NULL;
	const char *code = NULL;
	char msg[CTL_ERR_MSG_LEN] = "";
	int rc = srv->fn(srv->arg, req->cmd, req->args, &result, &code, msg, sizeof(msg));
	if (rc >= 0)
		return sl_ctl_response_ok(req->id, result);
	json_object_put(result);
	if (code == NULL)
		code = (rc == -EBUSY || rc == -EAGAIN) ? SL_CTL_ERR_BUSY : SL_CTL_ERR_INTERNAL;
	if (msg[0] == '\0')
		snprintf(msg, sizeof(msg), "%s", strerror(-rc));
	if (strcmp(code, SL_CTL_ERR_UNKNOWN_COMMAND) == 0)
		srv->stats.errors_unknown++;
	else
		srv->stats.errors_handler++;
	return sl_ctl_response_error(req->id, code, msg);
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* Handles one complete line (newline removed). Returns 1 if it was a request, 0 if it was
 * blank, negative errno if the connection must be dropped. */
static int handle_line(struct sl_ctl_server *srv, struct ctl_conn *c, const char *line, size_t len)
{
	if (is_blank(line, len))
		return 0; /* lets people type at the socket with nc without noise */
	srv->stats.requests++;
	struct sl_ctl_request req;
	const char *code = NULL;
	char msg[CTL_ERR_MSG_LEN];
	struct json_object *resp;
	if (sl_ctl_request_decode(line, len, &req, &code, msg, sizeof(msg)) == 0) {
		resp = dispatch(srv, &req);
	} else {
		if (strcmp(code, SL_CTL_ERR_BAD_JSON) == 0)
			srv->stats.errors_bad_json++;
		else
			srv->stats.errors_bad_request++;
		resp = sl_ctl_response_error(req.id, code, msg);
	}
	int rc = queue_response(c, req.id, resp);
	sl_ctl_request_release(&req);
	return rc < 0 ? rc : 1;
}

static int too_large(struct sl_ctl_server *srv, struct ctl_conn *c)
{
	srv->stats.requests++;
	srv->stats.errors_too_large++;
	char msg[64];
	snprintf(msg, sizeof(msg), "request line longer than %d bytes", SL_CTL_LINE_MAX);
	return queue_response(c, NULL, sl_ctl_response_error(NULL, SL_CTL_ERR_TOO_LARGE, msg));
}

/* Consumes complete lines from the input buffer while output is below the high-water
 * mark. Returns the number of requests handled or a negative errno. */
static int process_input(struct sl_ctl_server *srv, struct ctl_conn *c)
{
	int handled = 0;
	while (out_pending(c) < CTL_OUT_HIGH_WATER && c->in_start < c->in_len) {
		char *start = c->in + c->in_start;
		size_t avail = c->in_len - c->in_start;
		char *nl = memchr(start, '\n', avail);
		if (nl == NULL) {
			if (c->discarding) {
				c->in_start = c->in_len = 0;
			} else if (avail == CTL_IN_CAP) {
				int rc = too_large(srv, c);
				if (rc < 0)
					return rc;
				handled++;
				c->discarding = true;
				c->in_start = c->in_len = 0;
			} else if (c->eof) {
				/* A last line without newline, e.g. from `printf ... | nc -U`. */
				c->in_start = c->in_len;
				int rc = handle_line(srv, c, start, avail);
				if (rc < 0)
					return rc;
				handled += rc;
			}
			break;
		}
		size_t len = (size_t)(nl - start);
		c->in_start += len + 1;
		if (c->discarding) {
			c->discarding = false;
			continue;
		}
		int rc = handle_line(srv, c, start, len);
		if (rc < 0)
			return rc;
		handled += rc;
	}
	if (c->in_start == c->in_len) {
		c->in_start = c->in_len = 0;
	} else if (c->in_start > 0) {
		memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
		c->in_len -= c->in_start;
		c->in_start = 0;
	}
	return handled;
}

static int conn_read(struct ctl_conn *c)
{
	SL_ASSERT(c->in_start == 0 && c->in_len < CTL_IN_CAP);
	ssize_t n = recv(c->fd, c->in + c->in_len, CTL_IN_CAP - c->in_len, 0);
	if (n > 0) {
		c->in_len += (size_t)n;
		return 0;
	}
	if (n == 0) {
		c->eof = true;
		return 0;
	}
	return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
}

static int conn_write(struct ctl_conn *c)
{
	while (out_pending(c) > 0) {
		ssize_t n =
		    send(c->fd, c->out + c->out_off, out_pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	/* Give back the memory of one huge response instead of keeping it per connection. */
	if (c->out_cap > CTL_OUT_HIGH_WATER) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return 0;
}

static bool wants_input(const struct ctl_conn *c)
{
	return !c->eof && c->in_len < CTL_IN_CAP && out_pending(c) < CTL_OUT_HIGH_WATER;
}

/* True when process_input() would consume something given room to write. */
static bool has_line(const struct ctl_conn *c)
{
	return c->in_len > 0 && (c->eof || memchr(c->in, '\n', c->in_len) != NULL);
}

/* Runs one connection's share of a round; returns requests handled or negative errno
 * when the connection is finished (error, or peer gone with nothing left to send). */
static int conn_service(struct sl_ctl_server *srv, struct ctl_conn *c, short revents)
{
	int rc = 0;
	if (revents & (POLLERR | POLLNVAL))
		return -EPIPE;
	if (revents & POLLIN)
		rc = conn_read(c);
	else if (revents & POLLHUP)
		c->eof = true;
	if (rc < 0)
		return rc;
	/* Dispatch, then write at once (most responses fit the socket buffer). If that
	 * drained the output while whole lines are still buffered, go again: with nothing
	 * left to send and no new input, no poll event would ever bring us back to them.
	 * A pass that starts with no output pending consumes at least one buffered line, so
	 * the loop is bounded by the input buffer. */
	int handled = 0;
	for (;;) {
		rc = process_input(srv, c);
		if (rc < 0)
			return rc;
		handled += rc;
		rc = conn_write(c);
		if (rc < 0)
			return rc;
		if (out_pending(c) > 0 || !has_line(c))
			break;
	}
	if (c->eof && out_pending(c) == 0 && c->in_len == 0)
		return -ECONNRESET;
	return handled;
}

int sl_ctl_server_poll(struct sl_ctl_server *srv, int timeout_ms)
{
	nfds_t n = 0;
	srv->pfds[n] = (struct pollfd){.fd = srv->listen_fd, .events = POLLIN};
	srv->pfd_conn[n++] = -1;
	for (int i = 0; i < SL_CTL_CONNS_MAX; i++) {
		struct ctl_conn *c = &srv->conns[i];
		if (c->fd < 0)
			continue;
		short events = 0;
		if (wants_input(c))
			events |= POLLIN;
		if (out_pending(c) > 0)
			events |= POLLOUT;
		srv->pfds[n] = (struct pollfd){.fd = c->fd, .events = events};
		srv->pfd_conn[n++] = i;
	}
	int ready = poll(srv->pfds, n, timeout_ms);
	if (ready < 0)
		return errno == EINTR ? 0 : -errno;
	int handled = 0;
	for (nfds_t k = 1; k < n && ready > 0; k++) {
		if (srv->pfds[k].revents == 0)
			continue;
		ready--;
		struct ctl_conn *c = &srv->conns[srv->pfd_conn[k]];
		int rc = conn_service(srv, c, srv->pfds[k].revents);
		if (rc < 0)
			conn_close(srv, c);
		else
			handled += rc;
	}
	/* Accept last, so new connections join the next round's poll set. */
	if (srv->pfds[0].revents & POLLIN)
		accept_conns(srv);
	return handled;
}
