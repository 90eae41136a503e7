/* ctl.h - the ctl socket: newline-delimited JSON requests and responses over a Unix stream
 * socket (protocol in docs/ctl.md), the non-blocking server a daemon polls from its main
 * lcore, and the blocking one-shot client used by sluicectl and tests. */
#ifndef SL_CTL_H
#define SL_CTL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Longest request line the server accepts, newline excluded. Longer lines are answered
 * with "too_large" and skipped up to the next newline. */
#define SL_CTL_LINE_MAX 65536
/* Longest response line the client accepts (and the server produces), newline excluded:
 * query results and region lists can be far larger than requests. */
#define SL_CTL_RESPONSE_MAX (16u << 20)
/* Connections served at once; one more is answered "busy" and closed. */
#define SL_CTL_CONNS_MAX 64

/* Error codes carried in {"error": {"code": ...}}. Handlers may use others. */
#define SL_CTL_ERR_BAD_JSON "bad_json"
#define SL_CTL_ERR_BAD_REQUEST "bad_request"
#define SL_CTL_ERR_UNKNOWN_COMMAND "unknown_command"
#define SL_CTL_ERR_TOO_LARGE "too_large"
#define SL_CTL_ERR_INTERNAL "internal"
#define SL_CTL_ERR_BUSY "busy"
#define SL_CTL_ERR_FORBIDDEN "forbidden"
#define SL_CTL_ERR_NOT_FOUND "not_found"

/* ---- protocol (ctl_proto.c) ---- */

/* Parses exactly one JSON value filling buf[0..len) (surrounding whitespace allowed,
 * trailing bytes are not). 0 with *out owned by the caller, or -EBADMSG. */
int sl_ctl_parse_json(const char *buf, size_t len, struct json_object **out);

/* A decoded request line. root owns everything; id/args/cmd point into it. */
struct sl_ctl_request {
	struct json_object *root;
	struct json_object *id; /* NULL when absent (answered as null) */
	const char *cmd;
	struct json_object *args; /* always an object (empty when absent) */
};

/* Decodes one request line (without its newline). 0, or a negative errno with *err_code
 * (SL_CTL_ERR_BAD_JSON or SL_CTL_ERR_BAD_REQUEST) and err_msg set; req->id is set whenever
 * the line was an object with an "id", so the error can still be matched. Always call
 * sl_ctl_request_release() afterwards. */
int sl_ctl_request_decode(const char *line, size_t len, struct sl_ctl_request *req,
			  const char **err_code, char *err_msg, size_t err_len);
void sl_ctl_request_release(struct sl_ctl_request *req);

/* Builders; each returns a new object or NULL on out-of-memory. id is borrowed (a
 * reference is taken; NULL means JSON null); result and args are consumed (NULL = {}). */
struct json_object *sl_ctl_request_new(struct json_object *id, const char *cmd,
				       struct json_object *args);
struct json_object *sl_ctl_response_ok(struct json_object *id, struct json_object *result);
struct json_object *sl_ctl_response_error(struct json_object *id, const char *code,
					  const char *message);

/* One-line JSON text of obj (no newline; JSON strings escape any newline). The text is
 * owned by obj. NULL on out-of-memory. */
const char *sl_ctl_to_line(struct json_object *obj, size_t *len_out);

/* A copy of s fit for a terminal: C0 control bytes and DEL become \n, \r, \t, \e or \xHH
 * and C1 controls (U+0080..U+009F in UTF-8) \u0080..\u009f, so a string a client stored
 * (a series key, a message) cannot move the cursor or rewrite the screen. Everything else,
 * backslashes included, is kept as it is. malloc'd; NULL when out of memory. */
char *sl_ctl_printable(const char *s);

/* Splits a response: 0 with *result (borrowed) when ok is true; -EREMOTEIO with *code and
 * *message (borrowed, never NULL) when ok is false; -EBADMSG when it is not a response. */
int sl_ctl_response_parse(struct json_object *resp, struct json_object **result, const char **code,
			  const char **message);

/* ---- server (ctl_server.c) ---- */

struct sl_ctl_server;

/* Called for every command except the built-ins "ping" and "ctl_stats". Return 0 with
 * *result_out set (NULL means {}), or a negative errno with *err_code set (NULL means
 * "internal", or "busy" for -EBUSY/-EAGAIN) and err_msg filled (empty means strerror).
 * Unknown commands should set SL_CTL_ERR_UNKNOWN_COMMAND. args is borrowed. */
typedef int (*sl_ctl_handler_fn)(void *arg, const char *cmd, struct json_object *args,
				 struct json_object **result_out, const char **err_code,
				 char *err_msg, size_t err_len);

struct sl_ctl_server_stats {
	uint64_t requests; /* request lines seen, valid or not */
	uint64_t errors_bad_json;
	uint64_t errors_bad_request;
	uint64_t errors_unknown; /* unknown_command, from the server or the handler */
	uint64_t errors_too_large;
	uint64_t errors_handler; /* other errors returned by the handler */
	uint64_t errors_busy;	 /* connections refused at SL_CTL_CONNS_MAX */
	uint64_t peers_rejected; /* peers whose uid is neither root nor ours */
	uint64_t connections;	 /* connections accepted and served, cumulative */
	uint64_t connections_open;
};

/* Creates the listening socket at path (mode 0600 from birth). A stale socket file is
 * replaced; -EADDRINUSE if a live server answers there, -EEXIST if path is not a socket,
 * -ENAMETOOLONG if it does not fit sockaddr_un. fn may be NULL (built-ins only). */
int sl_ctl_server_open(const char *path, sl_ctl_handler_fn fn, void *arg,
		       struct sl_ctl_server **out);
/* One poll() round over the listener and the connections: accepts, reads, dispatches
 * whole lines and writes (partial writes resumed next round). Waits at most timeout_ms
 * (0: do not wait; negative: until something happens). Returns the number of request
 * lines handled, or a negative errno if poll() itself failed (EINTR counts as 0). */
int sl_ctl_server_poll(struct sl_ctl_server *srv, int timeout_ms);
/* The listening fd (new connections only; connection fds stay internal). A main loop
 * normally just calls sl_ctl_server_poll(srv, 0) every iteration instead. */
int sl_ctl_server_fd(const struct sl_ctl_server *srv);
void sl_ctl_server_stats(const struct sl_ctl_server *srv, struct sl_ctl_server_stats *out);
/* Closes every connection and the listener and unlinks the socket file. NULL is a no-op. */
void sl_ctl_server_close(struct sl_ctl_server *srv);

/* ---- client (ctl_client.c) ---- */

/* Connects to path, sends {"id":N,"cmd":cmd,"args":args} and waits for one response line,
 * all within timeout_ms (negative: no limit). args is borrowed (NULL = {}). 0 with the
 * whole parsed response in *response_out (use sl_ctl_response_parse), else -ENOENT /
 * -ECONNREFUSED / -EACCES (cannot connect), -ETIMEDOUT, -ECONNRESET (closed without an
 * answer), -EMSGSIZE (response over SL_CTL_RESPONSE_MAX), -EBADMSG (not JSON), -ENOMEM. */
int sl_ctl_call(const char *path, const char *cmd, struct json_object *args, int timeout_ms,
		struct json_object **response_out);

#endif
