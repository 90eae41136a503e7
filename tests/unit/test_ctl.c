/* test_ctl.c - cmocka tests of the ctl socket: a server polled by its own thread on a
 * temporary socket path, driven through raw sockets (to send exactly the bytes we want,
 * malformed or pipelined) and through sl_ctl_call. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"

struct fixture {
	char dir[64];
	char path[128];
	struct sl_ctl_server *srv;
	pthread_t thread;
	atomic_bool stop;
	atomic_int handler_calls;
};

/* ---- the test handler ---- */

static int test_handler(void *arg, const char *cmd, struct json_object *args,
			struct json_object **result_out, const char **err_code, char *err_msg,
			size_t err_len)
{
	struct fixture *f = arg;
	atomic_fetch_add(&f->handler_calls, 1);
	struct json_object *v = NULL;
	if (strcmp(cmd, "echo") == 0) {
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "cmd", json_object_new_string(cmd));
		json_object_object_add(r, "args", json_object_get(args));
		*result_out = r;
		return 0;
	}
	if (strcmp(cmd, "big") == 0) {
		size_t size = 0;
		if (json_object_object_get_ex(args, "size", &v))
			size = (size_t)json_object_get_int64(v);
		char *blob = malloc(size + 1);
		memset(blob, 'a', size);
		blob[size] = '\0';
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "blob", json_object_new_string(blob));
		free(blob);
		*result_out = r;
		return 0;
	}
	if (strcmp(cmd, "fail") == 0) {
		if (json_object_object_get_ex(args, "code", &v)) {
			/* Must outlive the call: args lives until the response is built. */
			*err_code = json_object_get_string(v);
			snprintf(err_msg, err_len, "failed on purpose");
		}
		return -EINVAL;
	}
	*err_code = SL_CTL_ERR_UNKNOWN_COMMAND;
	snprintf(err_msg, err_len, "no command '%s'", cmd);
	return -ENOENT;
}

/* ---- fixture: a server polled by a thread ---- */

static void *server_thread(void *arg)
{
	struct fixture *f = arg;
	while (!atomic_load(&f->stop))
		assert_true(sl_ctl_server_poll(f->srv, 20) >= 0);
	return NULL;
}

static void start_thread(struct fixture *f)
{
	atomic_store(&f->stop, false);
	assert_int_equal(pthread_create(&f->thread, NULL, server_thread, f), 0);
}

static void stop_thread(struct fixture *f)
{
	atomic_store(&f->stop, true);
	assert_int_equal(pthread_join(f->thread, NULL), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/sl-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
	assert_int_equal(sl_ctl_server_open(f->path, test_handler, f, &f->srv), 0);
	start_thread(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->srv != NULL) {
		stop_thread(f);
		sl_ctl_server_close(f->srv);
	}
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- raw socket helpers ---- */

struct conn {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
};

static void conn_open(struct conn *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	/* A server bug must fail the test, not hang it. */
	struct timeval tv = {.tv_sec = 10};
	assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	c->cap = 1 << 16;
	c->buf = malloc(c->cap);
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
}

static void conn_send(struct conn *c, const char *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void conn_sends(struct conn *c, const char *s) { conn_send(c, s, strlen(s)); }

/* Reads one response line and parses it; fails the test on EOF or timeout. */
static struct json_object *conn_recv(struct conn *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl != NULL) {
			size_t len = (size_t)(nl - c->buf);
			struct json_object *obj = NULL;
			assert_int_equal(sl_ctl_parse_json(c->buf, len, &obj), 0);
			memmove(c->buf, nl + 1, c->len - len - 1);
			c->len -= len + 1;
			return obj;
		}
		if (c->cap - c->len < 4096) {
			c->cap *= 2;
			c->buf = realloc(c->buf, c->cap);
		}
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		assert_true(n > 0);
		c->len += (size_t)n;
	}
}

/* Asserts the next response is an error with this code; returns its id (or -1 if null). */
static int64_t expect_error(struct conn *c, const char *code)
{
	struct json_object *resp = conn_recv(c), *result, *id = NULL;
	const char *got_code, *msg;
	assert_int_equal(sl_ctl_response_parse(resp, &result, &got_code, &msg), -EREMOTEIO);
	assert_string_equal(got_code, code);
	assert_true(strlen(msg) > 0);
	assert_true(json_object_object_get_ex(resp, "id", &id));
	int64_t v = id == NULL ? -1 : json_object_get_int64(id);
	json_object_put(resp);
	return v;
}

/* Asserts the next response is ok with this integer id and a result. */
static void expect_ok(struct conn *c, int64_t want_id)
{
	struct json_object *resp = conn_recv(c), *result, *id = NULL;
	const char *code, *msg;
	assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
	assert_non_null(result);
	assert_true(json_object_object_get_ex(resp, "id", &id));
	assert_true(json_object_is_type(id, json_type_int));
	assert_int_equal(json_object_get_int64(id), want_id);
	json_object_put(resp);
}

static uint64_t stat_field(struct json_object *stats, const char *name)
{
	struct json_object *field = NULL;
	assert_true(json_object_object_get_ex(stats, name, &field));
	return json_object_get_uint64(field);
}

static size_t lines_buffered(const struct conn *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->len; i++)
		n += c->buf[i] == '\n';
	return n;
}

/* ---- tests ---- */

static void test_valid_request(void **state)
{
	struct fixture *f = *state;
	struct conn c;
	conn_open(&c, f->path);
	conn_sends(&c, "{\"id\":\"abc\",\"cmd\":\"echo\",\"args\":{\"x\":[1,2]}}\n");
	struct json_object *resp = conn_recv(&c), *result, *v;
	const char *code, *msg;
	assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
	assert_true(json_object_object_get_ex(resp, "id", &v));
	assert_string_equal(json_object_get_string(v), "abc");
	assert_true(json_object_object_get_ex(result, "cmd", &v));
	assert_string_equal(json_object_get_string(v), "echo");
	assert_true(json_object_object_get_ex(result, "args", &v));
	assert_string_equal(sl_ctl_to_line(v, NULL), "{\"x\":[1,2]}");
	json_object_put(resp);
	assert_int_equal(atomic_load(&f->handler_calls), 1);

	/* No "args": the handler still gets an object; an object id comes back intact. */
	conn_sends(&c, "{\"cmd\":\"echo\",\"id\":{\"k\":[true]}}\r\n");
	resp = conn_recv(&c);
	assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
	assert_true(json_object_object_get_ex(resp, "id", &v));
	assert_string_equal(sl_ctl_to_line(v, NULL), "{\"k\":[true]}");
	assert_true(json_object_object_get_ex(result, "args", &v));
	assert_true(json_object_is_type(v, json_type_object));
	json_object_put(resp);

	/* Built-in ping never reaches the handler. */
	conn_sends(&c, "\n  \n{\"id\":3,\"cmd\":\"ping\"}\n");
	expect_ok(&c, 3);
	assert_int_equal(atomic_load(&f->handler_calls), 2);
	conn_close(&c);
}

/* Each bad line gets its error code (and the request's id when it had one); after each,
 * the same connection still serves a valid request. */
static void test_bad_lines_keep_connection(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *line; /* newline included */
		size_t len;	  /* 0: strlen */
		const char *code;
		int64_t id; /* -1: null */
	} cases[] = {
	    {"this is not json\n", 0, SL_CTL_ERR_BAD_JSON, -1},
	    {"{\"id\":1,\"cmd\":\"echo\"} trailing\n", 0, SL_CTL_ERR_BAD_JSON, -1},
	    {"{\"id\":1,\"cmd\":\"echo\",}\n", 0, SL_CTL_ERR_BAD_JSON, -1},
	    {"{\"id\":1,\0\"cmd\":\"echo\"}\n", 23, SL_CTL_ERR_BAD_JSON, -1},
	    {"{\"id\":1,\"cmd\":\"echo\",\"args\":{\"s\":\"\\xff\"}}\n", 0, SL_CTL_ERR_BAD_JSON,
	     -1}, /* invalid escape */
	    {"{\"id\":1,\"cmd\":\"echo\",\"args\":{\"s\":\"\xc3\x28\"}}\n", 0, SL_CTL_ERR_BAD_JSON,
	     -1}, /* invalid UTF-8 */
	    {"[1,2]\n", 0, SL_CTL_ERR_BAD_REQUEST, -1},
	    {"42\n", 0, SL_CTL_ERR_BAD_REQUEST, -1},
	    {"{\"id\":5}\n", 0, SL_CTL_ERR_BAD_REQUEST, 5},
	    {"{\"id\":6,\"cmd\":7}\n", 0, SL_CTL_ERR_BAD_REQUEST, 6},
	    {"{\"id\":7,\"cmd\":\"\"}\n", 0, SL_CTL_ERR_BAD_REQUEST, 7},
	    {"{\"id\":8,\"cmd\":\"echo\",\"args\":[1]}\n", 0, SL_CTL_ERR_BAD_REQUEST, 8},
	    {"{\"id\":9,\"cmd\":\"no_such_thing\"}\n", 0, SL_CTL_ERR_UNKNOWN_COMMAND, 9},
	};
	struct conn c;
	conn_open(&c, f->path);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].line);
		conn_send(&c, cases[i].line, len);
		assert_int_equal(expect_error(&c, cases[i].code), cases[i].id);
		conn_sends(&c, "{\"id\":100,\"cmd\":\"echo\"}\n");
		expect_ok(&c, 100);
	}
	/* Only the valid echoes and the unknown command reached the handler. */
	assert_int_equal(atomic_load(&f->handler_calls), 13 + 1);
	conn_close(&c);
}

static void test_handler_errors(void **state)
{
	struct fixture *f = *state;
	struct conn c;
	conn_open(&c, f->path);
	conn_sends(&c, "{\"id\":1,\"cmd\":\"fail\",\"args\":{\"code\":\"not_found\"}}\n"
		       "{\"id\":2,\"cmd\":\"fail\"}\n{\"id\":3,\"cmd\":\"echo\"}\n");
	assert_int_equal(expect_error(&c, SL_CTL_ERR_NOT_FOUND), 1);
	assert_int_equal(expect_error(&c, SL_CTL_ERR_INTERNAL), 2);
	expect_ok(&c, 3);
	conn_close(&c);
}

static void test_oversize_line(void **state)
{
	struct fixture *f = *state;
	struct conn c;
	conn_open(&c, f->path);
	/* Exactly SL_CTL_LINE_MAX bytes is still accepted. */
	const char *head = "{\"id\":1,\"cmd\":\"echo\",\"args\":{\"pad\":\"";
	const char *tail = "\"}}";
	size_t max = SL_CTL_LINE_MAX;
	char *line = malloc(max + 2);
	size_t pad = max - strlen(head) - strlen(tail);
	memcpy(line, head, strlen(head));
	memset(line + strlen(head), 'p', pad);
	memcpy(line + strlen(head) + pad, tail, strlen(tail));
	line[max] = '\n';
	conn_send(&c, line, max + 1);
	expect_ok(&c, 1);

	/* One byte more is too large, even though it is valid JSON ... */
	memmove(line + 1, line, max);
	line[0] = ' ';
	line[max + 1] = '\n';
	conn_send(&c, line, max + 2);
	assert_int_equal(expect_error(&c, SL_CTL_ERR_TOO_LARGE), -1);
	/* ... and a much longer line, sent in pieces, is answered once and then skipped
	 * up to its newline; the same connection keeps serving. */
	memset(line, 'x', max + 1);
	for (int i = 0; i < 3; i++)
		conn_send(&c, line, max + 1);
	conn_sends(&c, "tail of the long line\n{\"id\":2,\"cmd\":\"echo\"}\n");
	assert_int_equal(expect_error(&c, SL_CTL_ERR_TOO_LARGE), -1);
	expect_ok(&c, 2);
	free(line);
	conn_close(&c);
}

static void test_pipelined(void **state)
{
	struct fixture *f = *state;
	struct conn c;
	conn_open(&c, f->path);
	enum { N = 50 };
	char *batch = malloc(N * 64);
	size_t len = 0;
	for (int i = 0; i < N; i++) {
		const char *cmd = i % 3 == 0 ? "ping" : (i % 3 == 1 ? "echo" : "nope");
		len += (size_t)sprintf(batch + len, "{\"id\":%d,\"cmd\":\"%s\"}\n", i, cmd);
	}
	conn_send(&c, batch, len);
	for (int i = 0; i < N; i++) {
		if (i % 3 == 2)
			assert_int_equal(expect_error(&c, SL_CTL_ERR_UNKNOWN_COMMAND), i);
		else
			expect_ok(&c, i);
	}
	free(batch);
	conn_close(&c);
}

/* Responses far larger than a socket buffer, several queued at once: exercises partial
 * writes and the output high-water mark that pauses a connection's dispatch. */
static void test_large_responses(void **state)
{
	struct fixture *f = *state;
	struct conn c;
	conn_open(&c, f->path);
	enum { N = 16, SIZE = 300000 };
	char req[128];
	for (int i = 0; i < N; i++) {
		snprintf(req, sizeof(req), "{\"id\":%d,\"cmd\":\"big\",\"args\":{\"size\":%d}}\n",
			 i, SIZE);
		conn_sends(&c, req);
	}
	for (int i = 0; i < N; i++) {
		struct json_object *resp = conn_recv(&c), *result, *v;
		const char *code, *msg;
		assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
		assert_true(json_object_object_get_ex(resp, "id", &v));
		assert_int_equal(json_object_get_int(v), i);
		assert_true(json_object_object_get_ex(result, "blob", &v));
		assert_int_equal(json_object_get_string_len(v), SIZE);
		json_object_put(resp);
	}
	conn_close(&c);

	struct json_object *args = json_object_new_object(), *resp = NULL, *result, *v;
	json_object_object_add(args, "size", json_object_new_int(2 << 20));
	assert_int_equal(sl_ctl_call(f->path, "big", args, 10000, &resp), 0);
	const char *code, *msg;
	assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
	assert_true(json_object_object_get_ex(result, "blob", &v));
	assert_int_equal(json_object_get_string_len(v), 2 << 20);
	json_object_put(resp);
	json_object_put(args);
}

static void test_last_line_at_eof(void **state)
{
	struct fixture *f = *state;
	struct conn c;
	conn_open(&c, f->path);
	conn_sends(&c, "{\"id\":1,\"cmd\":\"ping\"}\n{\"id\":2,\"cmd\":\"ping\"}");
	assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
	expect_ok(&c, 1);
	expect_ok(&c, 2);
	char b;
	assert_int_equal(recv(c.fd, &b, 1, 0), 0); /* then the server closes */
	conn_close(&c);
}

static void test_client_call(void **state)
{
	struct fixture *f = *state;
	struct json_object *args = json_object_new_object(), *resp = NULL, *result, *v;
	json_object_object_add(args, "k", json_object_new_string("line\nbreak"));
	assert_int_equal(sl_ctl_call(f->path, "echo", args, 5000, &resp), 0);
	const char *code, *msg;
	assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
	assert_true(json_object_object_get_ex(result, "args", &v));
	assert_true(json_object_object_get_ex(v, "k", &v));
	assert_string_equal(json_object_get_string(v), "line\nbreak");
	json_object_put(resp);
	json_object_put(args);

	assert_int_equal(sl_ctl_call(f->path, "nope", NULL, 5000, &resp), 0);
	assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), -EREMOTEIO);
	assert_string_equal(code, SL_CTL_ERR_UNKNOWN_COMMAND);
	json_object_put(resp);
}

static void test_client_errors(void **state)
{
	struct fixture *f = *state;
	struct json_object *resp = NULL;
	char path[96];
	snprintf(path, sizeof(path), "%s/absent.sock", f->dir);
	assert_int_equal(sl_ctl_call(path, "ping", NULL, 1000, &resp), -ENOENT);

	/* A socket file nobody listens on. */
	snprintf(path, sizeof(path), "%s/dead.sock", f->dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	assert_int_equal(sl_ctl_call(path, "ping", NULL, 1000, &resp), -ECONNREFUSED);

	/* Listening but never answering: the deadline fires. */
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(sl_ctl_call(path, "ping", NULL, 100, &resp), -ETIMEDOUT);
	assert_null(resp);
	close(fd);
	unlink(path);
}

static void test_socket_mode(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_stale_and_live_socket(void **state)
{
	struct fixture *f = *state;
	struct sl_ctl_server *other = NULL;
	/* A live server keeps its socket. */
	assert_int_equal(sl_ctl_server_open(f->path, NULL, NULL, &other), -EADDRINUSE);
	assert_null(other);
	struct json_object *resp = NULL;
	assert_int_equal(sl_ctl_call(f->path, "ping", NULL, 5000, &resp), 0);
	json_object_put(resp);

	/* A regular file is never deleted. */
	char path[96];
	snprintf(path, sizeof(path), "%s/plain", f->dir);
	FILE *fp = fopen(path, "w");
	fclose(fp);
	assert_int_equal(sl_ctl_server_open(path, NULL, NULL, &other), -EEXIST);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	unlink(path);

	/* A stale socket file (its server died) is replaced. */
	snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(fd, 4), 0);
	close(fd);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(sl_ctl_server_open(path, NULL, NULL, &other), 0);
	struct conn c;
	conn_open(&c, path);
	conn_sends(&c, "{\"id\":1,\"cmd\":\"ping\"}\n{\"id\":2,\"cmd\":\"echo\"}\n");
	/* This server has no thread: poll it from here until both answers are in. */
	while (lines_buffered(&c) < 2) {
		assert_true(sl_ctl_server_poll(other, 100) >= 0);
		ssize_t n = recv(c.fd, c.buf + c.len, c.cap - c.len, MSG_DONTWAIT);
		if (n > 0)
			c.len += (size_t)n;
	}
	expect_ok(&c, 1);
	/* No handler: everything but the built-ins is unknown. */
	assert_int_equal(expect_error(&c, SL_CTL_ERR_UNKNOWN_COMMAND), 2);
	conn_close(&c);
	sl_ctl_server_close(other);
	assert_int_equal(lstat(path, &st), -1); /* close unlinks */
	assert_int_equal(errno, ENOENT);
}

static void test_too_many_connections(void **state)
{
	struct fixture *f = *state;
	static struct conn conns[SL_CTL_CONNS_MAX];
	for (int i = 0; i < SL_CTL_CONNS_MAX; i++) {
		conn_open(&conns[i], f->path);
		conn_sends(&conns[i], "{\"id\":1,\"cmd\":\"ping\"}\n");
		expect_ok(&conns[i], 1); /* now surely accepted */
	}
	struct conn extra;
	conn_open(&extra, f->path);
	expect_error(&extra, SL_CTL_ERR_BUSY);
	conn_close(&extra);
	conn_close(&conns[0]);
	/* A freed slot serves again (retry until the server noticed the close). */
	struct json_object *resp = NULL, *result;
	const char *code = SL_CTL_ERR_BUSY, *msg;
	for (int tries = 0; tries < 200 && strcmp(code, SL_CTL_ERR_BUSY) == 0; tries++) {
		assert_int_equal(sl_ctl_call(f->path, "ping", NULL, 5000, &resp), 0);
		code = "";
		if (sl_ctl_response_parse(resp, &result, &code, &msg) != 0 &&
		    strcmp(code, SL_CTL_ERR_BUSY) == 0) {
			json_object_put(resp);
			code = SL_CTL_ERR_BUSY;
			usleep(10000);
			continue;
		}
		assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
		json_object_put(resp);
	}
	assert_string_equal(code, "");
	for (int i = 1; i < SL_CTL_CONNS_MAX; i++)
		conn_close(&conns[i]);
}

/* Only root can make a peer with another uid; the child uses raw syscalls only since it
 * forks a threaded process. */
static void test_peer_rejected(void **state)
{
	struct fixture *f = *state;
	if (geteuid() != 0)
		skip();
	/* Let the other user reach the socket at all, so the uid check is what refuses. */
	assert_int_equal(chmod(f->dir, 0711), 0);
	assert_int_equal(chmod(f->path, 0666), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		memcpy(addr.sun_path, f->path, strlen(f->path) + 1);
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			_exit(11);
		struct timeval tv = {.tv_sec = 5};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char buf[512];
		size_t len = 0;
		ssize_t n;
		while (len < sizeof(buf) - 1 &&
		       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)n;
		buf[len] = '\0';
		_exit(strstr(buf, "\"code\":\"forbidden\"") != NULL && strchr(buf, '\n') != NULL
			  ? 0
			  : 12);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	stop_thread(f);
	struct sl_ctl_server_stats st;
	sl_ctl_server_stats(f->srv, &st);
	assert_int_equal(st.peers_rejected, 1);
	assert_int_equal(st.connections, 0);
	start_thread(f);
}

static void test_stats(void **state)
{
	struct fixture *f = *state;
	struct conn c;
	conn_open(&c, f->path);
	char *huge = malloc(SL_CTL_LINE_MAX + 10);
	memset(huge, 'z', SL_CTL_LINE_MAX + 9);
	huge[SL_CTL_LINE_MAX + 9] = '\n';
	conn_send(&c, huge, SL_CTL_LINE_MAX + 10);
	free(huge);
	conn_sends(&c, "nope\n[]\n{\"id\":1,\"cmd\":\"zzz\"}\n{\"id\":2,\"cmd\":\"fail\"}\n"
		       "{\"id\":3,\"cmd\":\"echo\"}\n{\"id\":4,\"cmd\":\"ping\"}\n\n"
		       "{\"id\":5,\"cmd\":\"ctl_stats\"}\n");
	expect_error(&c, SL_CTL_ERR_TOO_LARGE);
	expect_error(&c, SL_CTL_ERR_BAD_JSON);
	expect_error(&c, SL_CTL_ERR_BAD_REQUEST);
	assert_int_equal(expect_error(&c, SL_CTL_ERR_UNKNOWN_COMMAND), 1);
	assert_int_equal(expect_error(&c, SL_CTL_ERR_INTERNAL), 2);
	expect_ok(&c, 3);
	expect_ok(&c, 4);
	struct json_object *resp = conn_recv(&c), *result;
	const char *code, *msg;
	assert_int_equal(sl_ctl_response_parse(resp, &result, &code, &msg), 0);
	/* The blank line is not a request; ctl_stats counts itself. */
	assert_int_equal(stat_field(result, "requests"), 8);
	assert_int_equal(stat_field(result, "errors_too_large"), 1);
	assert_int_equal(stat_field(result, "errors_bad_json"), 1);
	assert_int_equal(stat_field(result, "errors_bad_request"), 1);
	assert_int_equal(stat_field(result, "errors_unknown"), 1);
	assert_int_equal(stat_field(result, "errors_handler"), 1);
	assert_int_equal(stat_field(result, "errors_busy"), 0);
	assert_int_equal(stat_field(result, "peers_rejected"), 0);
	assert_int_equal(stat_field(result, "connections"), 1);
	assert_int_equal(stat_field(result, "connections_open"), 1);
	json_object_put(resp);

	stop_thread(f);
	struct sl_ctl_server_stats st;
	sl_ctl_server_stats(f->srv, &st);
	assert_int_equal(st.requests, 8);
	assert_int_equal(st.errors_too_large, 1);
	assert_int_equal(st.errors_bad_json, 1);
	assert_int_equal(st.errors_bad_request, 1);
	assert_int_equal(st.errors_unknown, 1);
	assert_int_equal(st.errors_handler, 1);
	assert_int_equal(st.connections, 1);
	assert_int_equal(st.connections_open, 1);
	assert_int_equal(atomic_load(&f->handler_calls), 3);
	start_thread(f);
	conn_close(&c);
}

/* sluicectl prints strings clients stored: no byte of them may reach the terminal as a
 * control (cursor moves, screen rewrites, a fake second line). */
static void test_printable(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"plain key,a=b f", "plain key,a=b f"},
		{"a\nb\rc\td", "a\\nb\\rc\\td"},
		{"\x1b[2J\x1b]0;x\x07", "\\e[2J\\e]0;x\\x07"},
		{"del\x7f nul\x01", "del\\x7f nul\\x01"},
		{"c1 \xc2\x9b" "31m", "c1 \\u009b31m"},
		{"utf8 \xc3\xa9 \xc2\xa0 back\\slash", "utf8 \xc3\xa9 \xc2\xa0 back\\slash"},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = sl_ctl_printable(cases[i].in);
		assert_non_null(p);
		assert_string_equal(p, cases[i].want);
		for (const unsigned char *c = (const unsigned char *)p; *c; c++)
			assert_false(*c < 0x20 || *c == 0x7f);
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_valid_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_lines_keep_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handler_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversize_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_responses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_last_line_at_eof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_call, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_and_live_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_connections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	    cmocka_unit_test(test_printable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
