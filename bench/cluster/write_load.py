#!/usr/bin/env python3
"""Line-protocol write load against Clisonix: THREADS keep-alive connections to each of the
PORTS (comma-separated: one connection set per node), each posting 1,000-point requests for
SECONDS; every answer must be 204. Prints points/s and the request latency p50/p99 as one line
(`--json`: one JSON object with the same figures and the request count).

    write_load.py PORTS THREADS SECONDS [--tag TAG] [--wide] [--json]
    (admin password: $CLISONIX_ADMIN_PASSWORD, else test-admin-password-1)

A request is 10 devices x 100 points (`--wide`: 1,000 devices x 1 point, the worst case for
the cluster log, one point per series per message). Devices are named TAG-dev<k>-<d> (TAG
defaults to "load"), so that runs with different tags write different series.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("ports")
parser.add_argument("threads", type=int)
parser.add_argument("seconds", type=float)
parser.add_argument("--tag", default="load")
parser.add_argument("--wide", action="store_true")
parser.add_argument("--json", action="store_true")
args = parser.parse_args()
ports = [int(p) for p in args.ports.split(",")]
password = os.environ.get("CLISONIX_ADMIN_PASSWORD", "test-admin-password-1")


def token_for(port):
    login = http.client.HTTPConnection("127.0.0.1", port)
    login.request("POST", "/api/v1/auth/login",
                  json.dumps({"username": "admin", "password": password}),
                  {"Content-Type": "application/json"})
    return json.loads(login.getresponse().read())["access_token"]


tokens = {port: token_for(port) for port in ports}
workers_total = len(ports) * args.threads
counts, latencies, failures = [0] * workers_total, [], []
devices, points_per_device = (1000, 1) if args.wide else (10, 100)


def run(k, port):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    ts, end = 1764892800000 + k * 10**9, time.time() + args.seconds
    while time.time() < end:
        body = "\n".join(f"telemetry,device={args.tag}-dev{k}-{d} v={i + 0.5} {ts + i}"
                         for d in range(devices) for i in range(points_per_device))
        ts += points_per_device
        start = time.time()
        conn.request("POST", "/api/v1/write?precision=ms", body,
                     {"Authorization": "Bearer " + tokens[port]})
        answer = conn.getresponse()
        text = answer.read()
        latencies.append(time.time() - start)
        if answer.status != 204:
            failures.append(f"write to port {port} answered {answer.status}: {text[:200]!r}")
            return
        counts[k] += 1000


workers = [threading.Thread(target=run, args=(i * args.threads + t, port))
           for i, port in enumerate(ports) for t in range(args.threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
if failures:
    sys.exit(failures[0])
latencies.sort()
result = {"connections": workers_total, "points": sum(counts), "requests": len(latencies),
          "points_per_s": round(sum(counts) / args.seconds),
          "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
          "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1)}
if args.json:
    print(json.dumps(result))
else:
    print(f"threads={workers_total} points/s={result['points_per_s']} "
          f"p50_ms={result['p50_ms']} p99_ms={result['p99_ms']}")
