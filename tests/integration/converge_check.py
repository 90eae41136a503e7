#!/usr/bin/env python3
"""converge_check.py - the replicas of a multi-leader cluster hold the same data: every
series of one shm_producer key pattern is read from every node given (--socket, comma
separated) and must be identical on all of them, point for point. Each timestamp must
hold one of the values the writers wrote for it (point i: i * 0.5 + OFFSET for each
--offset), and every point of the first --points must be there. Exit 0 when all holds;
prints how many points were compared and how many conflicts each writer won."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sltest import query_points  # noqa: E402

T0 = 1700000000000000000


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--socket", required=True, help="ctl sockets, comma separated")
    ap.add_argument("--points", type=int, required=True)
    ap.add_argument("--series", type=int, required=True)
    ap.add_argument("--key", required=True, help="series key of series s (str.format)")
    ap.add_argument("--offset", type=float, action="append", default=None,
                    help="a writer's value offset (repeat for each writer; default 0)")
    a = ap.parse_args()
    offsets = a.offset or [0.0]
    socks = a.socket.split(",")
    bad = compared = 0
    wins = {o: 0 for o in offsets}
    for s in range(a.series):
        key = a.key.format(s=s)
        views = [query_points(sock, key) for sock in socks]
        first = views[0]
        for n, v in enumerate(views[1:], start=2):
            if v != first:
                diff = sum(1 for x, y in zip(first, v) if x != y) + abs(len(first) - len(v))
                print(f"converge: {key}: node 1 and node {n} differ in {diff} points "
                      f"({len(first)} and {len(v)} points)")
                bad += 1
        got = {ts: val for ts, val in first}
        for i in range(s, a.points, a.series):
            compared += 1
            val = got.get(T0 + i)
            if val is None:
                print(f"converge: {key}: point {i} missing")
                bad += 1
                continue
            won = [o for o in offsets if val == i * 0.5 + o]
            if not won:
                print(f"converge: {key}: point {i} holds {val}, which no writer wrote")
                bad += 1
                continue
            wins[won[0]] += 1
        if len(got) != len(range(s, a.points, a.series)):
            print(f"converge: {key}: {len(got)} points stored, "
                  f"{len(range(s, a.points, a.series))} written")
            bad += 1
        if bad > 20:
            break
    print(f"converge: {compared} points compared on {len(socks)} nodes; values kept per "
          f"writer offset: {wins}; {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
