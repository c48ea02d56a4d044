#!/usr/bin/env python3
"""Cost of the forecast service on a small fleet, against the real binary.

    python3 bench/forecast_service.py [build/clisonix] [devices]

Starts `clisonix serve` on a temp dir, writes `devices` tanks (a daily ramp, hourly, 28 days)
and one 5-minute series (7 days), then prints the latency of a forecast computed and answered
from the cache, of a 100-series selection, the background predicted round's time, and the
forecast cache's size against its bound (forecast.cache_entries, set to 100 here so that
a fleet of 300 overflows it).
"""
import json, math, os, subprocess, sys, tempfile, time, urllib.request

binary = sys.argv[1] if len(sys.argv) > 1 else "build/clisonix"
devices = int(sys.argv[2]) if len(sys.argv) > 2 else 300
port = 18000 + os.getpid() % 1000
data = tempfile.mkdtemp(prefix="clisonix-measure-")
env = dict(os.environ, CLISONIX_ADMIN_PASSWORD="measure-password-1")
srv = subprocess.Popen([binary, "serve", "--port", str(port), "--data", data, "--set",
                        "http.bind=127.0.0.1", "--set", "mqtt.enabled=false", "--set", "coap.port=0", "--set",
                        "analytics.detector=off", "--set", "analytics.health=false",
                        "--set", "forecast.refresh_interval=2s",
                        "--set", "forecast.cache_entries=100"],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"


def call(path, body=None, token=None, ctype="application/json"):
    req = urllib.request.Request(base + path, data=body.encode() if body else None)
    if token: req.add_header("Authorization", "Bearer " + token)
    if body: req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode()


try:
    for _ in range(100):
        try:
            call("/healthz"); break
        except Exception:
            time.sleep(0.1)
    token = json.loads(call("/api/v1/auth/login",
                            json.dumps({"username": "admin", "password": "measure-password-1"})))["access_token"]
    call("/api/v1/device-types", json.dumps({"name": "tank", "metrics": {"level": {"max": 95}}}), token)
    now = int(time.time()); h = 3600
    for d in range(devices):
        call("/api/v1/devices", json.dumps({"name": f"t{d}", "type": "tank"}), token)
    lines = []
    for d in range(devices):
        for t in range((now // h) * h - 28 * 24 * h, now + 1, h):
            lines.append(f"plant,device=t{d} level={100 * ((t // h + d) % 24) / 24:.3f} {t}")
        if len(lines) > 50000:
            call("/api/v1/write?precision=s", "\n".join(lines), token, "text/plain"); lines = []
    for t in range(now - 7 * 24 * h, now + 1, 300):
        lines.append(f"plant,device=fast temp={20 + 10 * math.sin(2 * math.pi * (t % 86400) / 86400):.3f} {t}")
    call("/api/v1/write?precision=s", "\n".join(lines), token, "text/plain")

    def timed(path):
        t0 = time.perf_counter(); body = call(path, token=token); return time.perf_counter() - t0, body

    for path in ["/api/v1/forecast?device=t0&metric=level&horizon=24h&step=1h",
                 "/api/v1/forecast?device=fast&metric=temp&horizon=6h&step=5m",
                 "/api/v1/forecast?device=t1%3F%3F&metric=level&horizon=24h&step=1h"]:
        cold, body = timed(path)
        warm = sorted(timed(path)[0] for _ in range(5))[2]  # the median of 5 cache hits
        doc = json.loads(body)
        n = len(doc["forecasts"])
        hp = doc["forecasts"][0]["history_points"] if n else 0
        print(f"{path}: {n} series, history_points {hp}: computed {cold * 1000:.1f} ms, cached {warm * 1000:.1f} ms")
    # Two rounds that started after every write: the second one sees every target's grid.
    def rounds():
        for l in call("/metrics", token=token).splitlines():
            if l.startswith("clisonix_forecast_predicted_rounds_total "):
                return float(l.split()[1])
        return 0
    def round_seconds():
        for l in call("/metrics", token=token).splitlines():
            if l.startswith("clisonix_forecast_predicted_round_seconds "):
                return float(l.split()[1])
        return 0
    first = rounds()
    slowest = 0
    deadline = time.time() + 120
    while time.time() < deadline and rounds() < first + 3:
        slowest = max(slowest, round_seconds())
        time.sleep(0.1)
    print(f"predicted: the slowest round seen took {slowest * 1000:.0f} ms")
    p = json.loads(call("/api/v1/forecast/predicted", token=token))
    metrics = call("/metrics", token=token)
    rounds = [l for l in metrics.splitlines() if l.startswith("clisonix_forecast_predicted")]
    print(f"predicted: {len(p['predictions'])} predictions over {p['targets']} targets, evaluated {p['evaluated']}")
    print("\n".join(rounds))
    for l in call("/metrics", token=token).splitlines():
        if l.startswith("clisonix_forecast_cache_"):
            print(l)
    print("forecast.cache_entries (the bound): 100")
finally:
    srv.terminate(); srv.wait()
    subprocess.run(["rm", "-rf", data])
