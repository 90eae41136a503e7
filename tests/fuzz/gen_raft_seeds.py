#!/usr/bin/env python3
# gen_raft_seeds.py - writes the seed corpus of fuzz_raft into corpus/raft/: scripts in the
# op encoding of fuzz_raft.c that reach the interesting states (an election won, a follower
# appending, a snapshot installed, a lagging follower sent a snapshot, a restart), so the
# fuzzer starts from there. Rerun after changing fuzz_raft.c's encoding.
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# rel() bytes: a value near the replica's own (base + b % 24 - 8)
SAME, NEXT = 8, 9
PREVOTE_RESP, VOTE_RESP, APPEND, APPEND_RESP, HEARTBEAT, HEARTBEAT_RESP, SNAPSHOT = 1, 3, 4, 5, 6, 7, 8


def tick(ms):
    return bytes([0, ms - 1])


def msg(type_b, frm=2, flags=0, term=SAME, body=b"", tail=0):
    return bytes([2, 0, frm - 2, type_b, flags, term]) + body + bytes([tail])


def entries(n, term=NEXT, data=b"abcd"):
    out = bytes([n])
    for i in range(n):
        out += bytes([0, term, len(data)]) + data
    return out


def append(term=NEXT, prev=SAME, commit=SAME + 2, n=3):
    return msg(APPEND, term=term, body=bytes([prev, SAME, commit]) + entries(n, term))


def elect():
    # time out, win the pre-vote (a grant carries term + 1), then the vote
    return tick(250) + msg(PREVOTE_RESP, term=NEXT) + msg(VOTE_RESP, term=SAME)


def propose(b):
    return bytes([6, b])


def main():
    d = os.path.join(HERE, "corpus", "raft")
    os.makedirs(d, exist_ok=True)
    snap_body = bytes([SAME + 5, SAME, 3, 1, 2, 3, 4, 0]) + b"snap"  # 4 bytes at offset 0
    seeds = {
        "tick": tick(5),
        "elect": elect() + propose(10) + propose(20)
        + msg(APPEND_RESP, body=bytes([SAME, SAME])) + tick(30)
        + msg(HEARTBEAT_RESP, body=bytes([1])),
        "follow": append() + msg(HEARTBEAT, term=SAME, body=bytes([SAME, 1])) + append(term=SAME),
        "follow_conflict": append(commit=SAME) + append(term=NEXT, prev=SAME - 2, n=2),
        "snapshot_in": msg(SNAPSHOT, term=NEXT, body=snap_body) + append(term=SAME),
        "snapshot_out": elect() + b"".join(propose(i) for i in range(8))
        + msg(APPEND_RESP, body=bytes([SAME, SAME])) + bytes([10, 1])
        + msg(APPEND_RESP, frm=3, flags=1, body=bytes([0, 0])) + tick(30),
        "restart": append() + bytes([11, 0]) + append(term=SAME, prev=SAME),
        "stall": elect() + bytes([9, 0]) + propose(5) + tick(30) + bytes([9, 0]),
        "read_transfer": elect() + bytes([7, 1, 7, 0, 8, 0x82]) + tick(50),
        "raw": bytes([5, 0x0a, 4]) + bytes([1, 5, 0, 0, 0, 0, 0, 0] + [0] * 24),
        "oversized": msg(APPEND, term=NEXT,
                         body=bytes([SAME, SAME, SAME, 1, 0x80, NEXT, 0x50, 0x00])),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
