#!/usr/bin/env python3
"""Line-protocol write load against one Clisonix node: THREADS keep-alive connections, each
posting 1,000-point requests (10 devices x 100 points) for SECONDS; every answer must be 204.
Prints points/s and the request latency p50/p99.

    write_load.py PORT THREADS SECONDS   (admin password: test-admin-password-1)
"""
import http.client
import json
import sys
import threading
import time

port, threads, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
login = http.client.HTTPConnection("127.0.0.1", port)
login.request("POST", "/api/v1/auth/login",
              json.dumps({"username": "admin", "password": "test-admin-password-1"}),
              {"Content-Type": "application/json"})
token = json.loads(login.getresponse().read())["access_token"]
counts, latencies = [0] * threads, []


def run(k):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    ts, end = 1764892800000 + k * 10**9, time.time() + seconds
    while time.time() < end:
        body = "\n".join(f"telemetry,device=dev{k}-{d} v={i + 0.5} {ts + i}"
                         for d in range(10) for i in range(100))
        ts += 100
        start = time.time()
        conn.request("POST", "/api/v1/write?precision=ms", body,
                     {"Authorization": "Bearer " + token})
        answer = conn.getresponse()
        answer.read()
        latencies.append(time.time() - start)
        if answer.status != 204:
            sys.exit(f"write answered {answer.status}")
        counts[k] += 1000


workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
latencies.sort()
print(f"threads={threads} points/s={sum(counts) / seconds:.0f} "
      f"p50_ms={latencies[len(latencies) // 2] * 1000:.1f} "
      f"p99_ms={latencies[int(len(latencies) * 0.99)] * 1000:.1f}")
