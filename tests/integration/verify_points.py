#!/usr/bin/env python3
"""verify_points.py - reads back the points shm_producer wrote, over the node's ctl socket,
and checks them exactly: every expected point present with its exact timestamp and value,
no timestamp twice, nothing that was never written. Expected = all N points (--all) or the
batches listed in an ack log (--acked FILE). Exit 0 when every check holds."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sltest import NotHere, query_points  # noqa: E402

T0 = 1700000000000000000


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--socket", required=True,
                    help="ctl socket; several, comma-separated: each series is read from "
                    "the first node that holds a replica of its region")
    ap.add_argument("--points", type=int, required=True)
    ap.add_argument("--series", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--acked", help="ack log: only these batches must be present")
    ap.add_argument("--key", default="itest,host=h{s:03d} value",
                    help="series key of series s (a str.format pattern)")
    ap.add_argument("--ts-period", type=int, default=0,
                    help="the producer's --ts-period: point i at T0 + i %% M, the last "
                    "point written at a (series, ts) is the one expected there")
    ap.add_argument("--exact", action="store_true",
                    help="also require that nothing outside the expected set is stored")
    a = ap.parse_args()

    if a.acked:
        with open(a.acked) as f:
            batches = {int(line) for line in f if line.strip()}
    else:
        batches = set(range((a.points + a.batch - 1) // a.batch))
    expected = {}  # series index -> {ts: value}
    for b in sorted(batches):  # in write order: a rewritten (series, ts) keeps the last
        for i in range(b * a.batch, min((b + 1) * a.batch, a.points)):
            ts = T0 + (i % a.ts_period if a.ts_period else i)
            expected.setdefault(i % a.series, {})[ts] = i * 0.5

    missing = wrong = dup = extra = checked = 0
    for s in range(a.series):
        key = a.key.format(s=s)
        pts = None
        for sock in a.socket.split(","):
            try:
                pts = query_points(sock, key)
                break
            except NotHere:
                continue
        if pts is None:
            raise RuntimeError(f"no node in {a.socket} holds a replica of {key}")
        seen = {}
        for ts, v in pts:
            if ts in seen:
                dup += 1
            seen[ts] = v
        exp = expected.get(s, {})
        for ts, v in exp.items():
            checked += 1
            if ts not in seen:
                missing += 1
                if missing <= 5:
                    print(f"missing: {key} ts={ts}", file=sys.stderr)
            elif seen[ts] != v:
                wrong += 1
                if wrong <= 5:
                    print(f"wrong value: {key} ts={ts} got {seen[ts]} want {v}",
                          file=sys.stderr)
        for ts, v in seen.items():
            i = ts - T0
            if a.ts_period:  # values were checked above: only where they are
                extra += ts not in exp
            elif i < 0 or i >= a.points or i % a.series != s or v != i * 0.5:
                extra += 1
            elif a.exact and ts not in exp:
                extra += 1
    print(f"verify: {checked} expected points checked over {a.series} series: "
          f"{missing} missing, {wrong} wrong, {dup} duplicated, {extra} unexpected")
    return 0 if missing == wrong == dup == extra == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
