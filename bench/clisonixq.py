#!/usr/bin/env python3
"""Runs the side-by-side benchmark's queries (../shared/bench, targets/INTERFACE.md) against
Clisonix's query API.

usage: clisonixq.py BASE_URL QUERIES_TSV OUT_DIR PREFIX [TOKEN]
stdout: qid<TAB>rep<TAB>ms<TAB>rows   (ms = request sent -> full body read, one keep-alive
connection). Rep-0 answers go to OUT_DIR/PREFIX.check.tsv (qid key value), normalised like
the harness's other targets, raw JSON to OUT_DIR/PREFIX.qN.json.
"""
import http.client
import json
import sys
import time
import urllib.parse

base, qfile, outdir, prefix = sys.argv[1:5]
token = sys.argv[5] if len(sys.argv) > 5 else ""
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
headers = {"Authorization": "Bearer " + token} if token else {}


def request(qid, dev, metric, s, e):
    """[s, e) in epoch seconds -> (path, params)."""
    rng = {"from": str(s * 1000), "to": str(e * 1000)}
    if qid == "q1":  # last value of every metric of one device
        return "/api/v1/last", {"device": dev}
    if qid == "q2":  # max per 1-minute bucket, one device, one metric, 1 hour
        return "/api/v1/query", dict(rng, device=dev, metric=metric, agg="max", step="1m")
    if qid == "q3":  # mean per 1-hour bucket over all devices
        return "/api/v1/query", dict(rng, metric=metric, agg="mean", step="1h", group_by="metric")
    if qid == "q4":  # top-10 devices by max temperature over the last hour
        return "/api/v1/query", dict(rng, metric=metric, agg="max", order="max_desc", limit="10")
    raise ValueError(qid)


def derived(metric):
    """A series Clisonix derives from a device's data (storage::is_derived_field)."""
    return (metric.endswith(".anomaly") or metric.endswith(".out_of_range") or metric == "health"
            or metric.startswith("health."))


def workload_series(data):
    """The workload's own series: without the anomaly scores and machine health Clisonix adds."""
    return [s for s in data["series"] if not derived(s["metric"])]


def normalise(qid, data):
    out = []
    for s in workload_series(data):
        if qid == "q1":
            out.append((s["metric"], s["points"][0][1]))
        elif qid == "q4":
            out.append((s["tags"].get("device", "?"), s["points"][0][1]))
        else:
            out += [(str(t // 1000), v) for t, v in s["points"]]
    return out


check = open("%s/%s.check.tsv" % (outdir, prefix), "w")
for line in open(qfile):
    qid, rep, _di, dev, _mi, metric, start, end = line.rstrip("\n").split("\t")
    path, params = request(qid, dev, metric, int(start), int(end))
    url = path + "?" + urllib.parse.urlencode(params)
    t0 = time.perf_counter()
    conn.request("GET", url, headers=headers)
    r = conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - t0) * 1000
    rows = -1
    try:
        d = json.loads(body)
        rows = sum(len(s["points"]) for s in workload_series(d))
        if rep == "0":
            for k, v in normalise(qid, d):
                check.write("%s\t%s\t%s\n" % (qid, k, repr(float(v)) if isinstance(v, float) else v))
            with open("%s/%s.%s.json" % (outdir, prefix, qid), "wb") as fh:
                fh.write(body)
    except Exception:
        print("query failed: %s %s -> %s %r" % (qid, url, r.status, body[:300]), file=sys.stderr)
    print("%s\t%s\t%.3f\t%d" % (qid, rep, ms, rows), flush=True)
