#!/usr/bin/env python3
"""Write the request bodies for perf/http_bench: POOL files body000.lp .. of LINES
InfluxDB line-protocol lines each, one float field a line, over SERIES series.

    gen_bodies.py OUTDIR [POOL=200] [LINES=5000] [SERIES=1000]

A line: cpu,host=h0042,dc=d1 usage=0.4213 TTTTT@@@NNNNNNNNNNN
Series s is host=h%04d, dc=d(1 + s % 3). Line i of body b is series i % SERIES,
the (i // SERIES)-th point of that series in the body. Timestamps are in ns:
T0 + pass * 1e11 + (b * K + i // SERIES) * 1e8 with K = LINES // SERIES, so each
series gets a point every 100 ms of data time, rising through the pool. The three
characters "@@@" stand for the pass number (000-999, the 1e13..1e11 digits of the
timestamp): write5000.lua replaces them on every request, so no (series, timestamp)
is sent twice within 1000 passes of the pool. T0 is a multiple of 1e14 ns between
28 and 56 hours before now, so every timestamp lies between about 56 hours ago
and now (inside VictoriaMetrics' default one-month retention, never in the future).
"""
import os
import sys
import time

out = sys.argv[1]
pool = int(sys.argv[2]) if len(sys.argv) > 2 else 200
lines = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
series = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
per = lines // series
assert lines % series == 0 and pool * per <= 1000   # (b * K + k) * 1e8 < 1e11

t0 = (time.time_ns() // 10**14 - 1) * 10**14
head = str(t0)[:5]              # digits above 1e13
assert len(str(t0)) == 19 and str(t0)[5:8] == "000"
os.makedirs(out, exist_ok=True)
hosts = [f"cpu,host=h{s:04d},dc=d{1 + s % 3} usage=" for s in range(series)]
for b in range(pool):
    buf = []
    for i in range(lines):
        s, k = i % series, i // series
        v = ((b * lines + i) * 7919) % 10000
        buf.append(f"{hosts[s]}0.{v:04d} {head}@@@{(b * per + k) * 10**8:011d}\n")
    with open(os.path.join(out, f"body{b:03d}.lp"), "w") as f:
        f.write("".join(buf))
print(t0)
