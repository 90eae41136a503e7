#!/usr/bin/env python3
"""cluster_top.py SOCKET [SOCKET ...] - live per-node and per-core rates of a cluster: every
--interval seconds (default 1), --count times (default 10), one line per node with the
points its replicas stored per second in all and per worker core (from each node's ctl
`regions`: the points of the regions each core owns), the regions it leads, and '(down)'
for a node that does not answer. Standard library only."""
import argparse
import json
import socket
import sys
import time


def regions(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
        s.sendall(b'{"id": 1, "cmd": "regions", "args": {}}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        resp = json.loads(buf)
        return resp["result"]["regions"] if resp.get("ok") else None
    except (OSError, ValueError, KeyError):
        return None
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sockets", nargs="+")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--count", type=int, default=10)
    a = ap.parse_args()
    last = {}
    t0 = time.monotonic()
    for _ in range(a.count + 1):
        now = time.monotonic()
        line = []
        for n, path in enumerate(a.sockets, 1):
            rs = regions(path)
            if rs is None:
                line.append(f"node {n}: (down)")
                last.pop(n, None)
                continue
            cores = {}
            for r in rs:
                cores[r["core"]] = cores.get(r["core"], 0) + r["points"]
            leads = sum(1 for r in rs if r.get("role") == "leader")
            prev = last.get(n)
            last[n] = (now, cores)
            if prev is None:
                line.append(f"node {n}: -")
                continue
            dt = now - prev[0]
            rates = {c: (cores[c] - prev[1].get(c, 0)) / dt for c in cores}
            per_core = " ".join(f"c{c} {rates[c] / 1e3:.0f}k" for c in sorted(rates))
            line.append(f"node {n}: {sum(rates.values()) / 1e3:.0f}k/s [{per_core}] leads {leads}")
        if now > t0:
            print(f"{now - t0:5.1f}s  " + "  |  ".join(line), flush=True)
        time.sleep(a.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
