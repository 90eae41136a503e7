#!/usr/bin/env python3
"""prom_check.py - prom_remote.sh's checks against a real Prometheus server that scrapes
sluiced's /metrics and remote-writes to its /api/v1/write. Each subcommand prints what it
saw and exits 1 when a check fails:

  scrape PROM_URL             the scrapes show sluice's counters moving (Prometheus' query API)
  reloaded PROM_URL T0 SECS   a reload after T0 (the last success timestamp before it) is
                              done and successful, and no target is scraped any more
  drain PROM_URL SECS         remote write has sent every sample Prometheus took in: no
                              sample pending, none failed or dropped (bounded wait)
  compare PROM_URL SLUICE_URL SOCK
                              every sample Prometheus holds is in sluice, same key (built from
                              the label set as docs/prometheus.md says), timestamp and value
  lp SOCK KEY N               the line protocol series KEY has N points in sluice
"""
import json
import math
import struct
import sys
import time
import urllib.parse
import urllib.request
from decimal import Decimal

from sltest import QUERY_PAGE, _query_once, query_points


def get(url, data=None, timeout=30):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, body, timeout=timeout) as r:
        return r.read().decode()


def api_query(prom, expr, parse_float=float):
    """Instant query: the result list (status must be success)."""
    resp = json.loads(get(prom + "/api/v1/query", {"query": expr, "time": f"{time.time():.3f}"}),
                      parse_float=parse_float)
    if resp.get("status") != "success":
        raise RuntimeError(f"query {expr}: {resp}")
    return resp["data"]["result"]


def scalar(prom, expr):
    """The value of a query that gives one sample; None when it gives none."""
    r = api_query(prom, expr)
    if not r:
        return None
    if len(r) != 1:
        raise RuntimeError(f"query {expr}: {len(r)} series, one expected")
    return float(r[0]["value"][1])


def metrics(url):
    """A /metrics page: {name: [(labels text, value)]}, in the text format's simple form."""
    out = {}
    for line in get(url + "/metrics").splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, val = line.rpartition(" ")
        name, _, labels = head.partition("{")
        out.setdefault(name, []).append((labels.rstrip("}"), float(val)))
    return out


def total(m, name):
    """Sum of a metric's series on a parsed page (0 when it has none)."""
    return sum(v for _, v in m.get(name, []))


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def cmd_scrape(prom):
    bad = []
    checks = [
        # a scrape may time out on a loaded machine (1 s): most must succeed
        ('sum_over_time(up{job="sluice"}[20s])', lambda v: v >= 10,
         "sluice's /metrics scraped"),
        ('sum_over_time(up{job="prometheus"}[20s])', lambda v: v >= 10,
         "Prometheus scrapes itself"),
        ('sum_over_time(up{job="odd"}[20s])', lambda v: v >= 10,
         "the page of odd series scraped"),
        ('count({job="odd",__name__=~"odd.*"})', lambda v: v == 11, "its 11 series"),
        ('count(sluice_points_in_total)', lambda v: v == 2, "points_in of both cores"),
        ('count(sluice_points_in_total{core="0"}) + count(sluice_points_in_total{core="1"})',
         lambda v: v == 2, "core labels 0 and 1"),
        ("sum(increase(sluice_points_in_total[20s]))", lambda v: v > 0, "points_in moves"),
        ("sum(increase(sluice_points_applied_total[20s]))", lambda v: v > 0,
         "points_applied moves"),
        ("increase(sluice_http_prom_samples_total[20s])", lambda v: v > 0,
         "remote write samples stored move"),
        ("increase(sluice_http_prom_requests_total[20s])", lambda v: v > 0,
         "remote write requests move"),
        ("increase(sluice_http_writes_ok_total[20s])", lambda v: v > 0,
         "line protocol writes (curl) move"),
        ("increase(sluice_http_metrics_scrapes_total[20s])", lambda v: v >= 10,
         "scrapes counted (1 s interval)"),
        ("sluice_http_prom_refused_total + sluice_http_prom_bad_total", lambda v: v == 0,
         "no sample or body refused"),
        ("sluice_http_status_4xx_total + sluice_http_status_5xx_total", lambda v: v == 0,
         "no 4xx/5xx answer"),
        ('sum(rate(prometheus_remote_storage_samples_total[20s]))', lambda v: v > 0,
         "Prometheus sends samples"),
        ('sum(prometheus_remote_storage_samples_failed_total) + '
         'sum(prometheus_remote_storage_samples_dropped_total)', lambda v: v == 0,
         "Prometheus fails or drops no sample"),
    ]
    for expr, ok, what in checks:
        v = scalar(prom, expr)
        good = v is not None and ok(v)
        print(f"{'ok' if good else 'FAIL'}: scrape: {what}: {expr} = {v}")
        if not good:
            bad.append(what)
    if bad:
        fail(f"scrape checks: {', '.join(bad)}")


def cmd_reloaded(prom, t0, secs):
    deadline = time.time() + float(secs)
    while True:
        m = metrics(prom)
        ts = total(m, "prometheus_config_last_reload_success_timestamp_seconds")
        ok = total(m, "prometheus_config_last_reload_successful")
        if ts > float(t0) and ok == 1:
            break
        if time.time() > deadline:
            fail(f"no successful reload in {secs} s (successful={ok}, last success {ts}, "
                 f"before {t0})")
        time.sleep(0.2)
    while True:
        t = json.loads(get(prom + "/api/v1/targets"))["data"]
        if not t["activeTargets"]:
            break
        if time.time() > deadline:
            fail(f"still scraping after the reload: {[a['scrapeUrl'] for a in t['activeTargets']]}")
        time.sleep(0.2)
    print("ok: reloaded with no scrape target: no active target")


REMOTE = "prometheus_remote_storage_"


def cmd_drain(prom, secs):
    """Waits until the queue has sent all: pending 0, samples sent (less retries) equal to
    samples in, highest sent timestamp >= highest in; the same twice in a row, at least 4 s
    after the call (scraping stopped just before it: the end-of-run staleness markers come
    about two scrape intervals later). Failed or dropped samples fail at once."""
    t_start = time.time()
    deadline = t_start + float(secs)
    prev = None
    while True:
        m = metrics(prom)
        if not m.get(REMOTE + "samples_total"):
            fail(f"Prometheus shows no {REMOTE}samples_total: is remote write configured?")
        s = {
            "in": total(m, REMOTE + "samples_in_total"),
            "sent": total(m, REMOTE + "samples_total"),
            "retried": total(m, REMOTE + "samples_retried_total"),
            "pending": total(m, REMOTE + "samples_pending"),
            "failed": total(m, REMOTE + "samples_failed_total"),
            "dropped": total(m, REMOTE + "samples_dropped_total"),
            "highest_in": total(m, REMOTE + "highest_timestamp_in_seconds"),
            "highest_sent": min(v for _, v in
                                m[REMOTE + "queue_highest_sent_timestamp_seconds"]),
        }
        if s["failed"] or s["dropped"]:
            fail(f"Prometheus failed or dropped samples: {s}")
        done = (s["pending"] == 0 and s["sent"] - s["retried"] == s["in"] and
                s["highest_sent"] >= s["highest_in"] and time.time() - t_start >= 4)
        if done and s == prev:
            print(f"ok: drained in {time.time() - t_start:.1f} s: samples in {s['in']:.0f}, "
                  f"sent {s['sent']:.0f}, retried {s['retried']:.0f}, pending 0, failed 0, "
                  f"dropped 0, highest sent {s['highest_sent']:.0f} >= highest in "
                  f"{s['highest_in']:.0f}")
            return
        prev = s if done else None
        if time.time() > deadline:
            fail(f"remote write not drained in {secs} s: {s}")
        time.sleep(1)


# InfluxDB line protocol escapes (docs/prometheus.md)
def esc_measurement(s):
    return s.replace(",", "\\,").replace(" ", "\\ ")


def esc_tag(s):
    return s.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def series_key(labels):
    tags = sorted(((esc_tag(k), esc_tag(v)) for k, v in labels.items()
                   if k != "__name__" and v != ""), key=lambda t: t[0].encode())
    return esc_measurement(labels["__name__"]) + "".join(f",{k}={v}" for k, v in tags) + " value"


def bits(x):
    return struct.pack("<d", x)


def same(a, b):
    """Bit for bit, but any NaN matches any NaN (the ctl socket's JSON has one NaN), and
    -0 matches +0: Prometheus (2.42's gogo protobuf code, `if m.Value != 0`) leaves a -0
    value out of the Sample it sends, which a receiver then reads as the default, +0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == 0 and b == 0:
        return True
    return bits(a) == bits(b)


def stored_points(sock, key, badkeys):
    """query_points, and the key the node found must be key itself: the node canonicalizes
    the key asked (tags in any order), so only its answer shows the key stored."""
    args = {"limit": QUERY_PAGE}
    points = []
    while True:
        resp = _query_once(sock, key, args)
        if not resp.get("ok"):
            if resp.get("error", {}).get("code") == "not_found":
                return points
            raise RuntimeError(f"query {key!r}: {resp.get('error')}")
        res = resp["result"]
        if res["series"] != key:
            badkeys.append((key, res["series"]))
        if res["type"] != "f64":
            badkeys.append((key, f"type {res['type']}"))
        points += res["points"]
        if not (res.get("truncated") and "next_from" in res):
            return points
        args["from"] = res["next_from"]


def cmd_compare(prom, sluice, sock):
    t0 = time.time()
    badkeys = []
    res = api_query(prom, '{__name__=~".+"}[10m]', parse_float=Decimal)
    nseries = len(res)
    checked = missing = wrong = extra = extra_nan = 0
    jobs = {}
    shown = 0
    for s in res:
        labels = s["metric"]
        jobs[labels.get("job")] = jobs.get(labels.get("job"), 0) + 1
        key = series_key(labels)
        if labels["__name__"].startswith("odd"):
            print(f"  job odd: {key!r}")
        got = {}
        for ts, v in stored_points(sock, key, badkeys):
            got.setdefault(ts, []).append(v)
        want = set()
        for ts, v in s["values"]:
            ts_ns = int(ts * 1000) * 1000000  # ms as a decimal number of seconds
            pv = float(v)  # "NaN", "+Inf", "-Inf" included
            want.add(ts_ns)
            checked += 1
            if ts_ns not in got:
                missing += 1
                if shown < 20:
                    shown += 1
                    print(f"  missing: {key!r} ts {ts_ns} value {v} "
                          f"(sluice has {sum(map(len, got.values()))} points of the key)")
            elif not any(same(pv, x) for x in got[ts_ns]):
                wrong += 1
                if shown < 20:
                    shown += 1
                    print(f"  wrong: {key!r} ts {ts_ns}: Prometheus {v}, sluice {got[ts_ns]}")
        for ts, vs in got.items():
            if ts not in want:
                extra += len(vs)
                extra_nan += sum(1 for x in vs if isinstance(x, float) and math.isnan(x))
    # a failed scrape (up 0) writes a staleness marker to each series of its target
    for r in api_query(prom, 'count_over_time(up[10m]) - sum_over_time(up[10m])'):
        if float(r["value"][1]):
            print(f"compare: job {r['metric'].get('job')}: {float(r['value'][1]):.0f} failed "
                  f"scrapes (their staleness markers are extras)")
    sm = metrics(sluice)
    pm = metrics(prom)
    stored = total(sm, "sluice_http_prom_samples_total")
    p_in = total(pm, REMOTE + "samples_in_total")
    retried = total(pm, REMOTE + "samples_retried_total")
    print(f"compare: {nseries} series ({', '.join(f'job {k}: {v}' for k, v in sorted(jobs.items(), key=str))}), "
          f"{checked} samples checked, {missing} missing, {wrong} wrong; "
          f"{extra} extra samples in sluice ({extra_nan} of them NaN: staleness markers), "
          f"in {time.time() - t0:.1f} s")
    print(f"compare: sluice stored {stored:.0f} remote write samples "
          f"(checked + extra = {checked + extra}); Prometheus took in {p_in:.0f}, "
          f"retried {retried:.0f}")
    for want, found in badkeys[:10]:
        print(f"  key: asked {want!r}, sluice has {found!r}")
    bad = []
    if badkeys:
        bad.append(f"{len(badkeys)} keys not stored as built (or not f64)")
    if missing or wrong:
        bad.append(f"{missing} missing, {wrong} wrong")
    if nseries < 100 or checked < 20 * nseries:
        bad.append(f"too little data: {nseries} series, {checked} samples")
    if not all(jobs.get(j) for j in ("sluice", "prometheus", "odd")):
        bad.append(f"series of the three jobs expected: {jobs}")
    if extra != extra_nan:
        bad.append(f"{extra - extra_nan} extra samples in sluice that are not NaN")
    if retried == 0 and not (checked + extra == stored == p_in):
        bad.append(f"counts differ: checked + extra {checked + extra}, sluice stored "
                   f"{stored:.0f}, Prometheus samples in {p_in:.0f}")
    for name in ("sluice_http_prom_refused_total", "sluice_http_prom_bad_total",
                 "sluice_http_status_4xx_total", "sluice_http_status_5xx_total",
                 "sluice_http_timeouts_write_total"):
        if total(sm, name):
            bad.append(f"{name} {total(sm, name):.0f}")
    if bad:
        fail("compare: " + "; ".join(bad))
    print("ok: every sample Prometheus holds is in sluice, same key, timestamp and value")


def cmd_lp(sock, key, n):
    got = query_points(sock, key)
    if len(got) != int(n):
        fail(f"{key}: {len(got)} points in sluice, {n} written")
    print(f"ok: {key}: {n} points written over /write, {len(got)} read back")


def main():
    cmds = {"scrape": (cmd_scrape, 1), "reloaded": (cmd_reloaded, 3), "drain": (cmd_drain, 2),
            "compare": (cmd_compare, 3), "lp": (cmd_lp, 3)}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or len(sys.argv) - 2 != cmds[sys.argv[1]][1]:
        print(__doc__)
        sys.exit(2)
    fn, _ = cmds[sys.argv[1]]
    fn(*sys.argv[2:])


if __name__ == "__main__":
    main()
