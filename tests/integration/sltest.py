"""sltest.py - shared by the integration test clients: one request on a node's ctl socket
(newline-delimited JSON, docs/ctl.md), and a query that reads an unknown series as empty."""
import json
import socket


def ctl(sock_path, cmd, args=None, timeout=30.0):
    """Returns the result object; raises RuntimeError on an error response."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall((json.dumps({"id": 1, "cmd": cmd, "args": args or {}}) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    s.close()
    resp = json.loads(buf)
    if not resp.get("ok"):
        raise RuntimeError(f"{cmd}: {resp.get('error')}")
    return resp["result"]


class NotHere(RuntimeError):
    """The series' region has no replica on the node asked (a cluster)."""


# points asked per query when the caller names no limit: the node allocates room for the
# whole limit per query, which under ASan costs about 0.45 s for the maximum (10,000,000).
# A page ends at a timestamp, and the next starts after it: a page larger than any test's
# series keeps a timestamp stored twice within one page, where verify_points sees it.
QUERY_PAGE = 1000000


def _query_once(sock_path, key, args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30.0)
    s.connect(sock_path)
    req = {"id": 1, "cmd": "query", "args": dict(args, series=key)}
    s.sendall((json.dumps(req) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)


def query_points(sock_path, key, args=None):
    """The [ts, value] pairs of series key; [] for a series the node has never stored
    (the query answers not_found for it). NotHere when the node holds no replica of the
    series' region. Without a limit in args, every point: pages of QUERY_PAGE points,
    each from the previous page's next_from."""
    args = dict(args or {})
    paged = "limit" not in args
    if paged:
        args["limit"] = QUERY_PAGE
    points = []
    while True:
        resp = _query_once(sock_path, key, args)
        if not resp.get("ok"):
            code = resp.get("error", {}).get("code")
            if code == "not_found":
                return points
            if code == "not_here":
                raise NotHere(resp["error"].get("message", ""))
            raise RuntimeError(f"query: {resp.get('error')}")
        res = resp["result"]
        points += res["points"]
        if not (paged and res.get("truncated") and "next_from" in res):
            return points
        args["from"] = res["next_from"]
