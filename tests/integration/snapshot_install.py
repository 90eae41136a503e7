#!/usr/bin/env python3
"""snapshot_install.py SOCK_B SOCK_REF ACTION ... - the checks of snapshot_install.sh on
two running nodes: B (that installs an image) and REF (that holds only that image).
  region R                  print region R's "series points" on B
  same R SERIES PREFIX      region R of B equals region R of REF (counts and every series
                            PREFIX,host=hNNN value for NNN < SERIES, point by point)
  install R FILE            B installs FILE into region R: must succeed
  refuse R FILE             B must refuse FILE for region R (ctl error, counter)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sltest import ctl, query_points  # noqa: E402


def region(sock, rid):
    res = ctl(sock, "regions")
    regs = res["regions"] if isinstance(res, dict) else res
    for r in regs:
        if r["id"] == rid:
            return r
    raise SystemExit(f"FAIL: no region {rid}")


def main():
    b, ref, action = sys.argv[1], sys.argv[2], sys.argv[3]
    rid = int(sys.argv[4])
    if action == "region":
        r = region(b, rid)
        print(r["series"], r["points"])
    elif action == "same":
        n, prefix = int(sys.argv[5]), sys.argv[6]
        rb, rr = region(b, rid), region(ref, rid)
        if (rb["series"], rb["points"]) != (rr["series"], rr["points"]):
            raise SystemExit(f"FAIL: region {rid}: {rb['series']} series {rb['points']} points,"
                             f" the image holds {rr['series']} series {rr['points']} points")
        checked = 0
        for s in range(n):
            key = f"{prefix},host=h{s:03d} value"
            pb, pr = query_points(b, key), query_points(ref, key)
            if pb != pr:
                raise SystemExit(f"FAIL: {key}: {len(pb)} points, the image holds {len(pr)}")
            checked += len(pb)
        print(f"same: region {rid}: {rb['series']} series, {rb['points']} points;"
              f" {checked} points compared one by one")
    elif action == "install":
        res = ctl(b, "debug_install_snapshot", {"region": rid, "file": sys.argv[5], "term": 3})
        print(f"installed: region {res['region']} at index {res['index']}")
    elif action == "refuse":
        before = ctl(b, "stats")["totals"]["cons_snapshots_refused"]
        try:
            ctl(b, "debug_install_snapshot", {"region": rid, "file": sys.argv[5]})
        except RuntimeError as e:
            if "refused" not in str(e):
                raise
            print(f"refused as it should: {e}")
        else:
            raise SystemExit("FAIL: a bad image was installed")
        # the counter is published by the worker's next round (bounded wait)
        for _ in range(200):
            after = ctl(b, "stats")["totals"]["cons_snapshots_refused"]
            if after == before + 1:
                return
            import time
            time.sleep(0.01)
        raise SystemExit(f"FAIL: cons_snapshots_refused {before} -> {after}, not counted")


if __name__ == "__main__":
    main()
