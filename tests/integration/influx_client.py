#!/usr/bin/python3
"""influx_client.py NODE_IP SOCKET [POINTS_PER_DATAGRAM [MIN_DATAGRAM_BYTES]] - a real
InfluxDB client nobody here wrote (Debian's python3-influxdb) writes points to sluiced over
UDP (line protocol, the InfluxDB UDP listener convention; one write = one datagram), then
every point is read back over the node's ctl socket and compared exactly. With 10 points
(the default) a datagram fits a 1500-byte frame; with more, the kernel sends IP fragments
and the node must reassemble them (every datagram must then be at least MIN_DATAGRAM_BYTES).
Run inside the test's network namespace."""
import os
import sys
import time

from influxdb import InfluxDBClient
from influxdb.line_protocol import make_lines

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sltest import query_points  # noqa: E402

T0 = 1700000000000000000


def main():
    node_ip, sock_path = sys.argv[1], sys.argv[2]
    per_batch = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    min_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    client = InfluxDBClient(host=node_ip, use_udp=True, udp_port=8089)
    expected = {}  # series key -> {ts: value}
    n_batches = 100
    sizes = []
    for b in range(n_batches):
        points = []
        for k in range(per_batch):
            i = b * per_batch + k
            host = f"h{i % 5}"
            # tags given out of order: the node sorts them into the series key
            points.append({
                "measurement": "weather",
                "tags": {"site": "lab", "host": host},
                "time": T0 + i,
                "fields": {"temp": i * 0.25, "count": i, "ok": (i % 2 == 0),
                           "note": f"r\u00e9sum\u00e9 \"{i}\", a=b"},
            })
            base = f"weather,host={host},site=lab"
            expected.setdefault(f"{base} temp", {})[T0 + i] = i * 0.25
            expected.setdefault(f"{base} count", {})[T0 + i] = i
            expected.setdefault(f"{base} ok", {})[T0 + i] = (i % 2 == 0)
            expected.setdefault(f"{base} note", {})[T0 + i] = f"r\u00e9sum\u00e9 \"{i}\", a=b"
        sizes.append(len(make_lines({"points": points}, precision="n").encode()))
        client.write_points(points, time_precision="n")
        time.sleep(0.01)
    # UDP has no acknowledgement: wait (bounded) until the node has applied everything
    want = sum(len(v) for v in expected.values())
    deadline = time.time() + 20
    missing = wrong = 0
    while True:
        missing = wrong = 0
        for key, pts in expected.items():
            try:
                got = {ts: v for ts, v in query_points(sock_path, key)}
            except RuntimeError:
                missing += len(pts)
                continue
            for ts, v in pts.items():
                if ts not in got:
                    missing += 1
                elif got[ts] != v or type(got[ts]) != type(v):
                    wrong += 1
            if len(got) != len(pts):
                wrong += abs(len(got) - len(pts))
        if (missing == 0 and wrong == 0) or time.time() > deadline:
            break
        time.sleep(0.2)
    print(f"influx_client: {want} points written by python3-influxdb over UDP in "
          f"{len(expected)} series ({n_batches} datagrams of {min(sizes)}..{max(sizes)} "
          f"bytes): {missing} missing, {wrong} wrong")
    if min(sizes) < min_bytes:
        print(f"influx_client: datagrams of {min(sizes)} bytes, {min_bytes} wanted")
        return 1
    return 0 if missing == 0 and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
