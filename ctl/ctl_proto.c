/* ctl_proto.c - the ctl wire format shared by server and client: strict parsing of one
 * JSON line, request decoding with precise error codes, and response builders. The
 * format itself is specified in docs/ctl.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sl_assert.h"

/* Deep enough for any real request, shallow enough to bound the parser's stack. */
#define CTL_JSON_DEPTH_MAX 64

int sl_ctl_parse_json(const char *buf, size_t len, struct json_object **out)
{
	SL_ASSERT(out != NULL);
	*out = NULL;
	if (len > (size_t)SL_CTL_RESPONSE_MAX)
		return -EMSGSIZE;
	struct json_tokener *tok = json_tokener_new_ex(CTL_JSON_DEPTH_MAX);
	if (tok == NULL)
		return -ENOMEM;
	/* Strict mode rejects trailing bytes and non-RFC syntax (comments, single quotes,
	 * NaN); UTF-8 validation keeps garbage out of strings we echo back. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *obj = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (obj == NULL && jerr == json_tokener_continue) {
		/* A bare number at the very end is only finished by a terminator: feed one
		 * NUL, exactly as json-c documents for the final chunk of a stream. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	} else if (jerr == json_tokener_success && json_tokener_get_parse_end(tok) != len) {
		/* An embedded NUL stops json-c early; whatever follows it is garbage. */
		jerr = json_tokener_error_parse_unexpected;
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success || obj == NULL) {
		json_object_put(obj);
		return -EBADMSG;
	}
	*out = obj;
	return 0;
}

void sl_ctl_request_release(struct sl_ctl_request *req)
{
	json_object_put(req->root);
	memset(req, 0, sizeof(*req));
}

int sl_ctl_request_decode(const char *line, size_t len, struct sl_ctl_request *req,
			  const char **err_code, char *err_msg, size_t err_len)
{
	memset(req, 0, sizeof(*req));
	int rc = sl_ctl_parse_json(line, len, &req->root);
	if (rc < 0) {
		*err_code = SL_CTL_ERR_BAD_JSON;
		snprintf(err_msg, err_len, "request is not valid JSON");
		return -EBADMSG;
	}
	if (!json_object_is_type(req->root, json_type_object)) {
		*err_code = SL_CTL_ERR_BAD_REQUEST;
		snprintf(err_msg, err_len, "request must be a JSON object");
		return -EINVAL;
	}
	json_object_object_get_ex(req->root, "id", &req->id);
	struct json_object *cmd = NULL;
	if (!json_object_object_get_ex(req->root, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string) || json_object_get_string_len(cmd) == 0) {
		*err_code = SL_CTL_ERR_BAD_REQUEST;
		snprintf(err_msg, err_len, "\"cmd\" must be a non-empty string");
		return -EINVAL;
	}
	req->cmd = json_object_get_string(cmd);
	struct json_object *args = NULL;
	if (json_object_object_get_ex(req->root, "args", &args) &&
	    !json_object_is_type(args, json_type_null)) {
		if (!json_object_is_type(args, json_type_object)) {
			*err_code = SL_CTL_ERR_BAD_REQUEST;
			snprintf(err_msg, err_len, "\"args\" must be an object");
			return -EINVAL;
		}
		req->args = args;
		return 0;
	}
	/* Handlers always get an object to look keys up in; root owns it. */
	args = json_object_new_object();
	if (args == NULL || json_object_object_add(req->root, "args", args) < 0) {
		json_object_put(args);
		*err_code = SL_CTL_ERR_INTERNAL;
		snprintf(err_msg, err_len, "out of memory");
		return -ENOMEM;
	}
	req->args = args;
	return 0;
}

/* Builds {"id": id, k1: v1, k2: v2} in that key order (what people read first);
 * consumes v1 and v2 whatever happens. */
static struct json_object *envelope(struct json_object *id, const char *k1, struct json_object *v1,
				    const char *k2, struct json_object *v2)
{
	struct json_object *obj = json_object_new_object();
	if (obj == NULL || v1 == NULL || v2 == NULL) {
		json_object_put(obj);
		json_object_put(v1);
		json_object_put(v2);
		return NULL;
	}
	if (json_object_object_add(obj, "id", json_object_get(id)) < 0) {
		json_object_put(v1);
		json_object_put(v2);
		goto fail;
	}
	if (json_object_object_add(obj, k1, v1) < 0) {
		json_object_put(v1);
		json_object_put(v2);
		goto fail;
	}
	if (json_object_object_add(obj, k2, v2) < 0) {
		json_object_put(v2);
		goto fail;
	}
	return obj;
fail:
	json_object_put(obj);
	return NULL;
}

static struct json_object *or_empty(struct json_object *obj)
{
	return obj != NULL ? obj : json_object_new_object();
}

struct json_object *sl_ctl_request_new(struct json_object *id, const char *cmd,
				       struct json_object *args)
{
	return envelope(id, "cmd", json_object_new_string(cmd), "args", or_empty(args));
}

struct json_object *sl_ctl_response_ok(struct json_object *id, struct json_object *result)
{
	return envelope(id, "ok", json_object_new_boolean(1), "result", or_empty(result));
}

struct json_object *sl_ctl_response_error(struct json_object *id, const char *code,
					  const char *message)
{
	struct json_object *err = json_object_new_object();
	if (err != NULL &&
	    (json_object_object_add(err, "code", json_object_new_string(code)) < 0 ||
	     json_object_object_add(err, "message", json_object_new_string(message)) < 0)) {
		json_object_put(err);
		err = NULL;
	}
	return envelope(id, "ok", json_object_new_boolean(0), "error", err);
}

const char *sl_ctl_to_line(struct json_object *obj, size_t *len_out)
{
	/* PLAIN never emits a raw newline (strings escape it), so one object is one line. */
	return json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len_out);
}

int sl_ctl_response_parse(struct json_object *resp, struct json_object **result, const char **code,
			  const char **message)
{
	struct json_object *ok = NULL;
	*result = NULL;
	*code = "";
	*message = "";
	if (!json_object_is_type(resp, json_type_object) ||
	    !json_object_object_get_ex(resp, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean))
		return -EBADMSG;
	if (json_object_get_boolean(ok)) {
		if (!json_object_object_get_ex(resp, "result", result))
			return -EBADMSG;
		return 0;
	}
	struct json_object *err = NULL, *field = NULL;
	if (!json_object_object_get_ex(resp, "error", &err) ||
	    !json_object_is_type(err, json_type_object))
		return -EBADMSG;
	if (json_object_object_get_ex(err, "code", &field) &&
	    json_object_is_type(field, json_type_string))
		*code = json_object_get_string(field);
	if (json_object_object_get_ex(err, "message", &field) &&
	    json_object_is_type(field, json_type_string))
		*message = json_object_get_string(field);
	return -EREMOTEIO;
}

char *sl_ctl_printable(const char *s)
{
	size_t len = strlen(s);
	char *out = malloc(len * 6 + 1); /* the longest escape: "\u009b" for two bytes */
	if (out == NULL)
		return NULL;
	char *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			o += sprintf(o, "\\u%04x", p[1]);
			p++;
		} else if (c == '\n') {
			o += sprintf(o, "\\n");
		} else if (c == '\r') {
			o += sprintf(o, "\\r");
		} else if (c == '\t') {
			o += sprintf(o, "\\t");
		} else if (c == 0x1b) {
			o += sprintf(o, "\\e");
		} else if (c < 0x20 || c == 0x7f) {
			o += sprintf(o, "\\x%02x", c);
		} else {
			*o++ = (char)c;
		}
	}
	*o = '\0';
	return out;
}
