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


def query_points(sock_path, key, args=None):
    """The [ts, value] pairs of series key; [] for a series the node has never stored
    (the query answers not_found for it). NotHere when the node holds no replica of the
    series' region."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30.0)
    s.connect(sock_path)
    req = {"id": 1, "cmd": "query", "args": dict(args or {}, series=key)}
    s.sendall((json.dumps(req) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    s.close()
    resp = json.loads(buf)
    if resp.get("ok"):
        return resp["result"]["points"]
    if resp.get("error", {}).get("code") == "not_found":
        return []
    if resp.get("error", {}).get("code") == "not_here":
        raise NotHere(resp["error"].get("message", ""))
    raise RuntimeError(f"query: {resp.get('error')}")
