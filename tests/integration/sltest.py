"""sltest.py - shared by the integration test clients: one request on a node's ctl socket
(newline-delimited JSON, docs/ctl.md)."""
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
