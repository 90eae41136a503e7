#!/usr/bin/python3
"""influx_http_client.py HOST PORT SOCKET - Debian's python3-influxdb (a real InfluxDB 1.x
client nobody here wrote) talks to sluiced's HTTP API: ping, create_database, write_points
in 5,000-point batches with tags, floats, integers, booleans and strings (quotes, a
newline), a write in seconds precision, a raw line-protocol write, and a bad point that
must raise the client's InfluxDBClientError with status 400 while the good points of the
same request are stored. Every point written is then read back over the node's ctl socket
and compared exactly; nothing refused may be there."""
import os
import sys

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sltest import query_points  # noqa: E402

T0 = 1700000000000000000


def main():
    host, port, sock = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    c = InfluxDBClient(host=host, port=port, database="metrics", timeout=30)
    version = c.ping()
    assert version and version.startswith("1.8"), f"ping: version {version!r}"
    c.create_database("metrics")
    expected = {}  # key -> {ts: value}
    points = []
    n = 40000
    for i in range(n):
        h = f"h{i % 8}"
        points.append({"measurement": "cpu", "tags": {"region": "eu", "host": h},
                       "time": T0 + i,
                       "fields": {"usage": i * 0.5, "n": i, "ok": i % 3 == 0,
                                  "note": f'say "{i}"\nbye' if i % 1000 == 0 else f"n{i}"}})
        expected.setdefault(f"cpu,host={h},region=eu usage", {})[T0 + i] = i * 0.5
        expected.setdefault(f"cpu,host={h},region=eu n", {})[T0 + i] = i
        expected.setdefault(f"cpu,host={h},region=eu ok", {})[T0 + i] = i % 3 == 0
        # the client writes a newline in a string as backslash + n, and InfluxDB 1.x keeps
        # those two bytes (checked against influxd 1.6.7): so does sluice
        expected.setdefault(f"cpu,host={h},region=eu note", {})[T0 + i] = (
            f'say "{i}"\\nbye' if i % 1000 == 0 else f"n{i}")
    assert c.write_points(points, time_precision="n", batch_size=5000), "write_points"
    # seconds precision
    sec = [{"measurement": "disk", "tags": {"dev": "sda"}, "time": 1700000000 + i,
            "fields": {"free": float(i)}} for i in range(100)]
    assert c.write_points(sec, time_precision="s")
    expected["disk,dev=sda free"] = {(1700000000 + i) * 10**9: float(i) for i in range(100)}
    # raw line protocol
    assert c.write(["mem,host=a used=12i 1700000000000000001"],
                   params={"db": "metrics"}, protocol="line")
    expected["mem,host=a used"] = {1700000000000000001: 12}
    # a bad line among good ones: 400, the good ones stored
    try:
        c.write(["bad,host=a v=1 1700000000000000001", "bad,host=a v= 2",
                 "bad,host=a v=3 1700000000000000003"], params={"db": "metrics"},
                protocol="line")
        raise AssertionError("a bad line was answered as a success")
    except InfluxDBClientError as e:
        assert e.code == 400 and "unable to parse" in str(e), f"bad line: {e.code} {e}"
    expected["bad,host=a v"] = {1700000000000000001: 1.0, 1700000000000000003: 3.0}

    missing = wrong = extra = 0
    for key, want in expected.items():
        got = {ts: v for ts, v in query_points(sock, key)}
        for ts, v in want.items():
            if ts not in got:
                missing += 1
            elif got[ts] != v or type(got[ts]) is not type(v):
                wrong += 1
                if wrong <= 5:
                    print(f"wrong: {key} {ts}: {got[ts]!r} != {v!r}")
        extra += len(set(got) - set(want))
    total = sum(len(v) for v in expected.values())
    print(f"influx_http: {total} points in {len(expected)} series read back: "
          f"{missing} missing, {wrong} wrong, {extra} extra")
    sys.exit(0 if missing == wrong == extra == 0 else 1)


if __name__ == "__main__":
    main()
