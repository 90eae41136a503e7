#!/usr/bin/env python3
"""region_move_poll.py - used by perf/region_move.sh: follows a rejoining node until its
replicas caught up, polling every 100 ms (bounded by --timeout), and prints one JSON
object with when each step happened, in seconds from --t0 (the node's launch).

Caught up: for every raft region the node replicates, the node's applied_index is at
least the commit_index its leader showed in the same poll (the leader is asked first).
Steps, seen from the leader's view of the follower and from the node logs (lines are
stamped with the poll that first read them, so within 100 ms):
  up           the node answers on its ctl socket
  export       the leader logged a full image of the region ready for peers
  transfer     the leader's view of the follower is in state "snapshot"
  received     the leader saw every chunk acknowledged but its window (or the state
               left "snapshot"): the image is on the node
  installed    the node logged the snapshot installed
  caught_up    applied >= the leader's commit for every region
  rejoined     the node logged that every region caught up and votes again
"""
import argparse
import os
import json
import re
import subprocess
import sys
import time


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from sltest import ctl  # noqa: E402

# the image bytes a leader keeps in flight beyond the follower's acknowledgement (raft's
# SNAP_WINDOW chunks of one message of about 270 KB each): all of it is sent at this point
CHUNKS_AHEAD = 4 * 270000
SENT = ("snapshots_sent", "snapshot_chunks_sent", "snapshot_bytes_sent", "leader_terms",
        "check_quorum_stepdowns", "transfers")


def regions(sock):
    """The node's regions, or None when it does not answer (a worker busy installing a
    large image answers its ctl requests only after it)."""
    try:
        return ctl(sock, "regions", timeout=10)["regions"]
    except (OSError, ValueError, KeyError, RuntimeError):
        return None


def sent_counters(rs_by_node):
    """The leaders' side of the transfers: SENT summed over every raft region of the
    other nodes (per-instance counters, so a change of leader loses nothing)."""
    return {k: sum(r.get("consensus", {}).get(k, 0) for rs in rs_by_node for r in rs or [])
            for k in SENT}


class LogTail:
    """New lines of a log file since the last read."""

    def __init__(self, path, pos):
        self.path, self.pos = path, pos

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return []
        cut = data.rfind(b"\n") + 1
        self.pos += cut
        return data[:cut].decode(errors="replace").splitlines()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socks", required=True, help="ctl sockets of nodes 1..N, comma separated")
    ap.add_argument("--node", type=int, required=True, help="the rejoining node")
    ap.add_argument("--counters", action="store_true",
                    help="only print the other nodes' snapshot counters (a baseline)")
    ap.add_argument("--base", default="{}", help="--counters printed before the move")
    ap.add_argument("--logs", help="node logs 1..N, comma separated")
    ap.add_argument("--log-from",
                    help="byte offsets in each log where this move starts, comma separated")
    ap.add_argument("--t0", type=float, help="the node's launch (epoch seconds)")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    socks = a.socks.split(",")
    me = a.node - 1
    if a.counters:
        print(json.dumps(sent_counters([regions(x) for i, x in enumerate(socks) if i != me])))
        return 0
    base = json.loads(a.base)
    tails = [LogTail(p, int(off)) for p, off in zip(a.logs.split(","), a.log_from.split(","))]
    steps = {}
    installed_bytes = []
    export_bytes = []
    follower = {}
    # changes of a leader's view of the follower: [t, region, leader, state, acked], the
    # last acked offset seen in that state updated in place
    trace = []
    others = {}  # the other nodes' regions, last seen
    silent_polls = polls = 0
    patterns = [("export", re.compile(r"full image at index \d+ \((\d+) bytes\) ready for peers")),
                ("installed", re.compile(r"snapshot at index \d+ term \d+ installed \((\d+) bytes\)")),
                ("rejoined", re.compile(r"rejoined: every replicated region"))]

    def at(name):
        steps.setdefault(name, round(time.time() - a.t0, 2))

    deadline = time.time() + a.timeout
    while time.time() < deadline:
        polls += 1
        for i, t in enumerate(tails):
            for line in t.lines():
                for name, rx in patterns:
                    m = rx.search(line)
                    if m is None:
                        continue
                    if name == "installed" and i == me:
                        installed_bytes.append(int(m.group(1)))
                    elif name == "export" and i != me:
                        export_bytes.append(int(m.group(1)))
                    elif name == "installed" or (name == "rejoined" and i != me):
                        continue
                    at(name)
        # the leaders first, then the node: a commit read before the node's applied index
        commit = {}
        for i, s in enumerate(socks):
            if i == me:
                continue
            others[i] = regions(s) or others.get(i)
            for r in others[i] or []:
                if r.get("role") != "leader" or r.get("protocol") != "raft":
                    continue
                commit[r["id"]] = r["commit_index"]
                for f in r.get("consensus", {}).get("followers", []):
                    if f["node"] == a.node:
                        follower[r["id"]] = f
                        acked = f.get("snapshot_acked", 0)
                        view = [r["id"], i + 1, f["state"]]
                        # a new state, or the transfer went back (a restart)
                        if not trace or trace[-1][1:4] != view or acked < trace[-1][4]:
                            trace.append([round(time.time() - a.t0, 2)] + view + [acked])
                        trace[-1][4] = acked
                        if f["state"] == "snapshot" and \
                                acked + CHUNKS_AHEAD >= f.get("snapshot_bytes", 0):
                            at("received")
                        elif f["state"] != "snapshot" and "transfer" in steps:
                            at("received")
                        if f["state"] == "snapshot":
                            at("transfer")
        mine = regions(socks[me])
        if mine is None:
            silent_polls += 1
        else:
            at("up")
            want = [r for r in mine if r.get("protocol") == "raft" and a.node in r["replicas"]]
            if want and all(r["id"] in commit and r["applied_index"] >= commit[r["id"]]
                            for r in want):
                at("caught_up")
                if "rejoined" in steps or not any(r["rejoining"] for r in want):
                    out = {"ok": True, "steps": steps, "image_bytes": installed_bytes,
                           "export_bytes": export_bytes, "polls": polls,
                           "silent_polls": silent_polls, "trace": trace,
                           "regions": [{k: r[k] for k in ("id", "points", "series", "bytes",
                                                          "applied_index", "snapshot_index")}
                                       for r in want],
                           "consensus": {r["id"]: r.get("consensus", {}) for r in want},
                           "leaders_sent": {k: v - base.get(k, 0) for k, v in
                                            sent_counters(list(others.values())).items()}}
                    print(json.dumps(out))
                    return 0
        time.sleep(0.1)
    print(json.dumps({"ok": False, "steps": steps, "image_bytes": installed_bytes,
                      "polls": polls, "silent_polls": silent_polls, "follower": follower,
                      "trace": trace}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
