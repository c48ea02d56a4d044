#!/usr/bin/env python3
"""Times a Prometheus query_range against one HTTP API, and compares two answers.

  query_range.py time URL QUERY START END STEP REPS OUT.json [--key KEY] [--nocache]
      One warm-up request, then REPS timed ones on one keep-alive connection; the time of a
      request is from sending it to having read the whole body (as the shared harness'
      lib/promq.py measures). The warm-up's answer is saved to OUT.json. Prints one JSON
      line: {"status":..,"median_ms":..,"p95_ms":..,"series":..,"points":..,"bytes":..}.
      Exit 3 when the API answers anything but 200 with JSON (the body is printed to stderr).

  query_range.py compare REFERENCE.json OTHER.json
      Prints one JSON line: whether both hold the same series (by labels) with the same
      timestamps, and the median and maximum relative difference of their values. Exit 1
      when series or timestamps differ; values are reported, not judged (VictoriaMetrics'
      rate() does not extrapolate to the window's edges the way Prometheus' does, and it does
      not take every decrease for a counter reset as Prometheus' does).
"""
import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def time_query(args):
    base = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=600)
    params = {"query": args.query, "start": args.start, "end": args.end, "step": args.step}
    if args.nocache:
        params["nocache"] = "1"  # VictoriaMetrics: bypass the rollup result cache
    target = base.path.rstrip("/") + "/api/v1/query_range?" + urllib.parse.urlencode(params)
    headers = {"Authorization": "Bearer " + args.key} if args.key else {}
    times = []
    for rep in range(args.reps + 1):
        started = time.perf_counter()
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        # A server without the API may answer 404, or 200 with its web dashboard's page.
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        if response.status != 200 or not is_json:
            sys.stderr.write("%s answered %d (%s): %s\n" % (args.url, response.status,
                             response.getheader("Content-Type", "no Content-Type"),
                             body[:300].decode(errors="replace")))
            print(json.dumps({"status": response.status if response.status != 200 else "200, not JSON"}))
            return 3
        if rep == 0:
            answer = json.loads(body)
            with open(args.out, "wb") as f:
                f.write(body)
            size = len(body)
        else:
            times.append(elapsed_ms)
    result = answer["data"]["result"]
    print(json.dumps({
        "status": 200,
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 0.95), 2),
        "series": len(result),
        "points": sum(len(s["values"]) for s in result),
        "bytes": size,
    }))
    return 0


def by_labels(path):
    with open(path) as f:
        result = json.load(f)["data"]["result"]
    return {tuple(sorted(s["metric"].items())): s["values"] for s in result}


def compare(args):
    reference, other = by_labels(args.reference), by_labels(args.other)
    same_series = reference.keys() == other.keys()
    timestamp_mismatches = 0
    differences = []
    for labels, values in reference.items():
        if labels not in other:
            continue
        theirs = other[labels]
        if [t for t, _ in values] != [t for t, _ in theirs]:
            timestamp_mismatches += 1
            continue
        for (_, a), (_, b) in zip(values, theirs):
            a, b = float(a), float(b)
            scale = max(abs(a), abs(b))
            differences.append(0.0 if scale == 0 else abs(a - b) / scale)
    report = {
        "same_series": same_series,
        "series_only_in_reference": len(reference.keys() - other.keys()),
        "series_only_in_other": len(other.keys() - reference.keys()),
        "series_with_other_timestamps": timestamp_mismatches,
        "values_compared": len(differences),
        "median_relative_difference": statistics.median(differences) if differences else None,
        "max_relative_difference": max(differences) if differences else None,
    }
    print(json.dumps(report))
    return 0 if same_series and timestamp_mismatches == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    timing = commands.add_parser("time")
    for name in ("url", "query", "start", "end", "step"):
        timing.add_argument(name)
    timing.add_argument("reps", type=int)
    timing.add_argument("out")
    timing.add_argument("--key", default="")
    timing.add_argument("--nocache", action="store_true")
    comparing = commands.add_parser("compare")
    comparing.add_argument("reference")
    comparing.add_argument("other")
    args = parser.parse_args()
    return time_query(args) if args.command == "time" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
