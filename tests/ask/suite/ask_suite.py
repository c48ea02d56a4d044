#!/usr/bin/env python3
"""The Ask Clisonix question suite: every question of questions.json against the real server.

Starts `clisonix demo` (fixed seed, a day of backfilled history, the plant fed live at a fixed
speed), then for each question POSTs /api/v1/ask with a fixed "now" (`at`), compares the plan
it answers with the expected plan member by member, and checks the answer's `data` and `text`
against numbers computed here, independently of the server's Ask code, through the public
read APIs (/api/v1/query, /api/v1/series, /api/v1/devices, /api/v1/assets, /api/v1/alarms,
/api/v1/forecast/crossing). README.md says how a question is written and checked.

  ask_suite.py --binary build/clisonix            the whole suite (exit 0: every question passed)
  ask_suite.py --check-file                       only the questions file's own rules (no server)
  ask_suite.py --binary ... --expect-only         start the plant and compute every expected
                                                  answer without asking (checks the harness)
"""

import argparse
import collections
import ctypes
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "ask-suite-password-1"

CATEGORIES = [
    "telemetry value", "aggregate", "ranking", "comparison", "per line", "time words", "alarms",
    "health", "offline", "forecast", "ambiguous", "out of vocabulary", "worker phrasing",
]
KINDS = ["telemetry", "alarms", "health", "offline", "forecast"]
AGGREGATES = ["last", "mean", "min", "max", "sum", "count", "p50", "p90", "p95", "p99", "change",
              "trend", "time_above", "time_below"]
GROUPINGS = ["device", "asset", "none"]
OPS = [">", ">=", "<", "<=", "=", "!="]
# The members of a plan the suite compares, with their value when a question leaves them out.
PLAN_DEFAULTS = {
    "kind": "telemetry", "devices": [], "device_type": "", "asset": "", "metric": "", "unit": "",
    "aggregate": "last", "group_by": "device", "asset_level": "", "threshold": None,
    "filter": None, "order": "", "limit": None, "alarm_status": "",
}
PLAN_KEYS = set(PLAN_DEFAULTS) | {"from", "to"}
ENTRY_KEYS = {"id", "category", "question", "at", "plan", "understood", "reasons", "note"}


class SuiteError(Exception):
    """The suite cannot go on (the server did not start, the route is missing)."""


# ---- the questions file ------------------------------------------------------------------

def load_questions(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return doc


def check_file(doc):
    """The questions file's own rules; returns a list of problems (empty: fine)."""
    problems = []
    qs = doc.get("questions", [])
    ids = collections.Counter(q.get("id") for q in qs)
    for i, n in ids.items():
        if n > 1:
            problems.append(f"id {i!r} is used {n} times")
    texts = collections.Counter(q.get("question") for q in qs)
    for t, n in texts.items():
        if n > 1:
            problems.append(f"question {t!r} appears {n} times")
    for q in qs:
        where = f"question {q.get('id')!r}"
        extra = set(q) - ENTRY_KEYS
        if extra:
            problems.append(f"{where}: unknown members {sorted(extra)}")
        if q.get("category") not in CATEGORIES:
            problems.append(f"{where}: category {q.get('category')!r} is not one of {CATEGORIES}")
        if not isinstance(q.get("question"), str) or not q["question"].strip():
            problems.append(f"{where}: no question text")
        if q.get("at", "history") not in ("history", "live"):
            problems.append(f"{where}: at must be \"history\" or \"live\"")
        if q.get("understood", True):
            p = q.get("plan")
            if not isinstance(p, dict):
                problems.append(f"{where}: an understood question needs a plan")
                continue
            extra = set(p) - PLAN_KEYS
            if extra:
                problems.append(f"{where}: unknown plan members {sorted(extra)}")
            plan = {**PLAN_DEFAULTS, **p}
            if plan["kind"] not in KINDS:
                problems.append(f"{where}: kind {plan['kind']!r}")
            if plan["aggregate"] not in AGGREGATES:
                problems.append(f"{where}: aggregate {plan['aggregate']!r}")
            if plan["group_by"] not in GROUPINGS:
                problems.append(f"{where}: group_by {plan['group_by']!r}")
            if plan["group_by"] == "asset" and plan["asset_level"] not in ("line", "site"):
                problems.append(f"{where}: group_by asset needs asset_level line or site")
            for name in ("filter", "threshold"):
                c = plan[name]
                if c is not None and (c.get("op") not in OPS or
                                      not isinstance(c.get("value"), (int, float))):
                    problems.append(f"{where}: {name} needs op in {OPS} and a numeric value")
            if plan["aggregate"] in ("time_above", "time_below") and plan["threshold"] is None:
                problems.append(f"{where}: {plan['aggregate']} needs a threshold")
            if plan["kind"] == "forecast" and plan["threshold"] is None:
                problems.append(f"{where}: a forecast needs a threshold")
            if plan["kind"] in ("telemetry",) and not plan["metric"]:
                problems.append(f"{where}: a telemetry plan needs a metric")
            if plan["kind"] != "forecast":
                for name in ("from", "to"):
                    if name not in p:
                        problems.append(f"{where}: plan needs {name}")
                    else:
                        try:
                            parse_time_expr(p[name])
                        except ValueError as e:
                            problems.append(f"{where}: {name}: {e}")
            if plan["kind"] in ("alarms", "health", "offline", "forecast") and \
                    q.get("at") != "live":
                problems.append(f"{where}: a {plan['kind']} question reads the live plant "
                                "(at: \"live\")")
        else:
            if "plan" in q:
                problems.append(f"{where}: a not-understood question has no plan")
            if not isinstance(q.get("reasons"), list):
                problems.append(f"{where}: a not-understood question lists the words its "
                                "reasons must name (reasons, may be empty)")
    by_cat = collections.Counter(q.get("category") for q in qs)
    if len(qs) < 150:
        problems.append(f"{len(qs)} questions; the suite needs at least 150")
    if by_cat["worker phrasing"] < 40:
        problems.append(f"{by_cat['worker phrasing']} worker-phrased questions; at least 40")
    not_understood = sum(1 for q in qs if not q.get("understood", True))
    if not_understood < 10:
        problems.append(f"{not_understood} not-understood questions; at least 10")
    return problems


# ---- time expressions ----------------------------------------------------------------------

TIME_EXPR = re.compile(r"^(last\()?(at|day|week|month)((?:[+-]\d+[smhd])*)\)?$")
OFFSET = re.compile(r"([+-])(\d+)([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time_expr(text):
    m = TIME_EXPR.match(text)
    if not m or (m.group(1) and not text.endswith(")")):
        raise ValueError(f"{text!r} is not a time expression (README: at, day, week, month, "
                         "then +/-N s|m|h|d, optionally inside last(...))")
    offsets = [(1 if s == "+" else -1) * int(n) * UNIT_SECONDS[u]
               for s, n, u in OFFSET.findall(m.group(3))]
    return bool(m.group(1)), m.group(2), offsets


def eval_time_expr(text, at_ms, zone):
    """Unix ms of a time expression, `at` being now; calendar bases are read in `zone`."""
    latest, base, offsets = parse_time_expr(text)
    if base == "at":
        return at_ms + sum(offsets) * 1000
    local = dt.datetime.fromtimestamp(at_ms / 1000, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if base == "day":
        start = midnight
    elif base == "week":
        start = midnight - dt.timedelta(days=local.weekday())
    else:
        start = midnight.replace(day=1)

    def at_offset(s):  # wall-clock arithmetic in the zone, then back to an instant
        naive = s + dt.timedelta(seconds=sum(offsets))
        return int(naive.replace(tzinfo=zone).timestamp() * 1000)

    ms = at_offset(start)
    if latest:  # the most recent such time at or before now: "since Monday 06:00"
        step = dt.timedelta(days=7 if base == "week" else 1)
        while ms > at_ms:
            start -= step
            ms = at_offset(start)
    return ms


def rfc3339_ms(text):
    """Unix ms of an RFC 3339 time, and its UTC offset in seconds."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return round(t.timestamp() * 1000), int(t.utcoffset().total_seconds())


def local_text(ms, zone):
    return dt.datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="milliseconds")


# ---- the server ----------------------------------------------------------------------------

def die_with_parent():
    """In the demo's process before exec: killed when the harness goes, however it goes (a
    CTest timeout kills the harness, which then cannot stop the demo itself)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`clisonix demo` on free ports and a temp data dir; an admin token for the API."""

    def __init__(self, binary, setup):
        self.binary, self.setup = binary, setup
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="clisonix-ask-suite-")
        self.token = None
        self.proc = None

    def has_key(self, key):
        r = subprocess.run([self.binary, "config", "reference"], capture_output=True, text=True)
        return f"`{key}`" in r.stdout

    def start(self):
        args = [self.binary, "demo", "--port", str(self.port), "--data", self.dir + "/data",
                "--seed", str(self.setup["seed"]), "--speed", str(self.setup["speed"]),
                "--backfill", self.setup["backfill"], "--set", "coap.port=0",
                "--set", f"mqtt.port={free_port()}"]
        # The suite needs no anomaly scores; without them the history is ready in half the time.
        args += ["--set", "analytics.detector=off"]
        # Without the key (a build before Ask) the first question names the missing route.
        self.zone_set = self.has_key("ask.time_zone")
        if self.zone_set:
            args += ["--set", f"ask.time_zone={self.setup['time_zone']}"]
        env = dict(os.environ, CLISONIX_ADMIN_PASSWORD=PASSWORD)
        self.out = open(os.path.join(self.dir, "demo.out"), "w")
        self.err = open(os.path.join(self.dir, "demo.err"), "w")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.err, env=env,
                                     preexec_fn=die_with_parent)

    def stderr_tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, "demo.err"), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (getattr(self, "out", None), getattr(self, "err", None)):
            if f:
                f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, target, body=None, auth=True, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{target}", data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth and self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            return 0, str(e)

    def get(self, target):
        status, body = self.request("GET", target)
        if status != 200:
            raise SuiteError(f"GET {target} answered {status}: {body[:300]}")
        return json.loads(body)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SuiteError(f"clisonix demo exited with {self.proc.returncode}:\n"
                                 + self.stderr_tail())
            status, body = self.request("POST", "/api/v1/auth/login",
                                        {"username": "admin", "password": PASSWORD}, auth=False)
            if status == 200:
                self.token = json.loads(body)["access_token"]
                break
            time.sleep(0.5)
        else:
            raise SuiteError("the demo's server did not let the admin log in in time:\n"
                             + self.stderr_tail())
        # The demo installs its rules after the backfill: then the history is complete.
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SuiteError(f"clisonix demo exited with {self.proc.returncode}:\n"
                                 + self.stderr_tail())
            if len(self.get("/api/v1/rules")["rules"]) >= self.setup["rules"]:
                return
            time.sleep(0.5)
        raise SuiteError(f"the demo did not install its {self.setup['rules']} rules within "
                         f"{timeout} s (backfill still running?):\n" + self.stderr_tail())


# ---- the plant as the public API shows it --------------------------------------------------

def series_points(answer):
    """{device: [(ts_ms, value), ...]} of a /api/v1/query answer."""
    out = {}
    for s in answer["series"]:
        dev = s["tags"].get("device")
        if dev is None or s.get("measurement", "telemetry") != "telemetry":
            continue
        out.setdefault(dev, []).extend(
            (p[0], p[1]) for p in s["points"] if isinstance(p[1], (int, float))
            and not isinstance(p[1], bool))
    return out


class Plant:
    def __init__(self, server):
        self.server = server
        self.devices = {d["name"]: d for d in server.get("/api/v1/devices")["devices"]}
        self.assets = {a["name"]: a for a in server.get("/api/v1/assets")["assets"]}
        self._under = {}
        self._with_metric = {}
        self._cache = {}

    def devices_under(self, asset):
        if asset not in self._under:
            q = urllib.parse.quote(asset, safe="")
            self._under[asset] = set(self.server.get(f"/api/v1/assets/{q}/devices")["devices"])
        return self._under[asset]

    def with_metric(self, metric):
        if metric not in self._with_metric:
            q = urllib.parse.quote(metric, safe="")
            ans = self.server.get(f"/api/v1/series?metric={q}")
            self._with_metric[metric] = {s["tags"]["device"] for s in ans["series"]
                                         if "device" in s["tags"]}
        return self._with_metric[metric]

    def scope(self, plan):
        names = set(plan["devices"]) if plan["devices"] else set(self.devices)
        if plan["device_type"]:
            names = {n for n in names
                     if self.devices.get(n, {}).get("type") == plan["device_type"]}
        if plan["asset"]:
            names &= self.devices_under(plan["asset"])
        return names

    def query(self, metric, frm, to, agg, device="*"):
        key = (metric, frm, to, agg, device)
        if key not in self._cache:
            params = {"device": device, "metric": metric, "from": str(frm), "to": str(to)}
            if agg != "raw":
                params["agg"] = agg
            self._cache[key] = series_points(
                self.server.get("/api/v1/query?" + urllib.parse.urlencode(params)))
        return self._cache[key]

    def lines_of(self, level):
        return sorted(n for n, a in self.assets.items() if a["type"] == level)


# ---- the independent computation -----------------------------------------------------------

def nearest_rank(values, p):
    v = sorted(values)
    rank = math.ceil(p / 100.0 * len(v))
    return v[max(rank, 1) - 1]


def slope_per_hour(points):
    t0 = points[0][0]
    xs = [(t - t0) / 3_600_000.0 for t, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def holds(op, a, b):
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b, "=": a == b, "!=": a != b}[op]


def time_beyond(points, threshold, to_ms):
    """Seconds the metric satisfied `threshold`, sample-and-hold between points; also with the
    last point held to the end of the range (the suite accepts either reading)."""
    total = 0
    for (t, v), (t2, _) in zip(points, points[1:]):
        if holds(threshold["op"], v, threshold["value"]):
            total += t2 - t
    tail = total
    if points and holds(threshold["op"], points[-1][1], threshold["value"]):
        tail += max(0, to_ms - points[-1][0])
    return total / 1000.0, tail / 1000.0


class Expected:
    """The rows an answer must hold: [(name or None, value, tolerance)] plus what to say."""

    def __init__(self):
        self.rows = []          # [(key, value)], in the order the answer must give them
        self.groups = {}        # every group's value before filter and limit (ties, lookups)
        self.ordered = False
        self.relative = 0.0     # relative tolerance of values
        self.absolute = 0.0     # absolute tolerance (on top)
        self.alt_values = {}    # key -> other acceptable value (time above: tail held)
        self.requests = []      # the independent requests, for the report
        self.reduction = ""
        self.count = None       # alarms: the number the answer must contain
        self.volatile = None    # a snapshot to compare before/after (live questions)


def telemetry_expected(plant, plan, frm, to):
    e = Expected()
    metric, agg = plan["metric"], plan["aggregate"]
    scope = plant.scope(plan) & plant.with_metric(metric)
    group = plan["group_by"]
    need_raw = agg in ("p95", "trend", "time_above", "time_below") or (
        group != "device" and agg in ("p50", "p90", "p99"))
    per_device = {}
    if agg == "last":
        pts = plant.query(metric, 0, to + 1, "last")
        e.requests.append(f"/api/v1/query?metric={metric}&from=0&to={to + 1}&agg=last")
        per_device = {d: pts[d][0][1] for d in scope if pts.get(d)}
    elif need_raw:
        raw = {}
        for d in sorted(scope):  # one device at a time: a day of a fleet is over the cap
            pts = plant.query(metric, frm, to, "raw", device=d).get(d)
            if pts:
                raw[d] = pts
        e.requests.append(f"/api/v1/query?device=<each>&metric={metric}&from={frm}&to={to}")
        if agg == "trend":
            per_device = {d: slope_per_hour(p) for d, p in raw.items() if len(p) >= 2}
            e.relative = 1e-6
        elif agg in ("time_above", "time_below"):
            for d, p in raw.items():
                between, tail = time_beyond(p, plan["threshold"], to)
                per_device[d] = between
                e.alt_values[d] = tail
            e.absolute = 1.0
        else:
            p = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}[agg]
            if group == "device":
                per_device = {d: nearest_rank([v for _, v in pts], p) for d, pts in raw.items()}
            else:
                per_device = {d: [v for _, v in pts] for d, pts in raw.items()}
    elif agg == "change":
        first = plant.query(metric, frm, to, "first")
        last = plant.query(metric, frm, to, "last")
        e.requests.append(f"/api/v1/query?metric={metric}&from={frm}&to={to}&agg=first|last")
        per_device = {d: last[d][0][1] - first[d][0][1] for d in scope
                      if first.get(d) and last.get(d)}
        e.relative = 1e-9
    else:
        for a in (("sum", "count") if agg == "mean" and group != "device" else (agg,)):
            pts = plant.query(metric, frm, to, a)
            e.requests.append(f"/api/v1/query?metric={metric}&from={frm}&to={to}&agg={a}")
            for d in scope:
                if pts.get(d):
                    per_device.setdefault(d, {})[a] = pts[d][0][1]
        if group == "device" or agg != "mean":
            per_device = {d: v[agg] for d, v in per_device.items()}
        if agg in ("mean", "sum"):
            e.relative = 1e-9

    def combine(values):  # one group's value from its devices' values
        values = list(values)
        if agg == "mean":
            return sum(v["sum"] for v in values) / sum(v["count"] for v in values)
        if agg in ("max",):
            return max(values)
        if agg in ("min",):
            return min(values)
        if agg in ("sum", "count"):
            return sum(values)
        if agg in ("p50", "p90", "p99", "p95"):
            return nearest_rank([x for v in values for x in v], int(agg[1:]))
        raise SuiteError(f"aggregate {agg} cannot be combined over a group")

    if group == "device":
        groups = dict(per_device)
    elif group == "none":
        groups = {None: combine(per_device.values())} if per_device else {}
    else:
        groups = {}
        for a in plant.lines_of(plan["asset_level"]):
            members = [per_device[d] for d in sorted(plant.devices_under(a)) if d in per_device]
            if members:
                groups[a] = combine(members)
    e.reduction = f"{agg} per {group}{' ' + plan['asset_level'] if plan['asset_level'] else ''}"
    e.groups = dict(groups)
    rows = list(groups.items())
    if plan["filter"]:
        f = plan["filter"]
        rows = [(k, v) for k, v in rows if holds(f["op"], v, f["value"])]
        e.reduction += f", keep {f['op']} {f['value']:g}"
    if plan["order"]:
        rows.sort(key=lambda kv: (kv[1], kv[0] or ""), reverse=plan["order"] == "desc")
        e.ordered = True
        e.reduction += f", sort {plan['order']}"
    else:
        rows.sort(key=lambda kv: kv[0] or "")
    if plan["limit"] is not None:
        rows = rows[:plan["limit"]]
        e.reduction += f", first {plan['limit']}"
    e.rows = rows
    return e


def health_expected(plant, plan, at):
    metric = "health" if not plan["metric"] else "health." + plan["metric"]
    sub = dict(plan, metric=metric, aggregate="last")
    e = telemetry_expected(plant, sub, at, at)
    return e


def offline_expected(plant, plan):
    e = Expected()
    devices = {d["name"]: d for d in plant.server.get("/api/v1/devices")["devices"]}
    plant.devices = devices
    scope = plant.scope(plan)
    e.rows = [(d, None) for d in sorted(scope) if not devices[d]["online"]]
    e.requests.append("/api/v1/devices")
    e.reduction = "devices in scope with online false"
    e.volatile = [k for k, _ in e.rows]
    return e


def alarms_expected(plant, plan, frm, to):
    e = Expected()
    params = {"limit": "1000"}
    status = plan["alarm_status"]
    if status in ("open", "active"):
        params["status"] = status  # the state now: no range
    else:
        params["from"], params["to"] = str(frm), str(to)  # alarms that met [from, to)
    if plan["asset"]:
        params["asset"] = plan["asset"]
    target = "/api/v1/alarms?" + urllib.parse.urlencode(params)
    alarms = plant.server.get(target)["alarms"]
    e.requests.append(target)
    scope = plant.scope(plan)
    alarms = [a for a in alarms if a["device"] in scope]
    counts = collections.Counter(a["device"] for a in alarms)
    group = plan["group_by"]
    if group == "none":
        e.count = len(alarms)
        e.rows = []
    else:
        if group == "asset":
            per = collections.Counter()
            for line in plant.lines_of(plan["asset_level"]):
                n = sum(c for d, c in counts.items() if d in plant.devices_under(line))
                if n:
                    per[line] = n
            counts = per
        e.groups = dict(counts)
        rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]) if plan["order"] == "desc"
                      else (kv[1], kv[0]))
        if plan["limit"] is not None:
            rows = rows[:plan["limit"]]
        e.rows = rows
        e.ordered = bool(plan["order"])
    e.reduction = f"alarms ({status or 'any'}) counted per {group}"
    e.volatile = (e.count, e.rows)
    return e


def forecast_expected(plant, plan):
    e = Expected()
    th = plan["threshold"]
    side = "above" if th["op"] in (">", ">=") else "below"
    (device,) = plan["devices"]
    # "When will it reach" looks a day ahead: the horizon Ask uses when the plan has no range.
    target = "/api/v1/forecast/crossing?" + urllib.parse.urlencode(
        {"device": device, "metric": plan["metric"], side: f"{th['value']:g}",
         "horizon": "24h"})
    ans = plant.server.get(target)
    e.requests.append(target)
    c = ans["crossings"][0] if ans["crossings"] else None
    expected_ms = c["expected_ms"] if c and c["within_horizon"] else None
    e.rows = [(device, expected_ms)]
    # The forecast is fitted again as points arrive: a step either way is the same answer.
    e.absolute = float(c["step_ms"]) if c else 0.0
    e.reduction = "the crossing's expected_ms (null: not within the horizon)"
    e.volatile = expected_ms is None
    return e


# ---- comparing an answer -------------------------------------------------------------------

def snapshot(e):
    return (e.count, e.rows, e.volatile)


def normalise_plan(p):
    return {**PLAN_DEFAULTS, **p}


def point_in_time(plan):
    return plan["aggregate"] == "last" or plan["kind"] == "offline" or (
        plan["kind"] == "alarms" and plan["alarm_status"] in ("open", "active"))


def compare_plan(expected, got, zone):
    """Differences between the expected plan (with evaluated times) and the answer's plan."""
    diffs = []
    for key, want in expected.items():
        if key in ("from", "to"):
            continue
        have = got.get(key, PLAN_DEFAULTS.get(key))
        if have is None and isinstance(PLAN_DEFAULTS.get(key), (str, list)):
            have = PLAN_DEFAULTS[key]  # null for "none" reads the same as "" or []
        if key == "devices":
            have = sorted(have or [])
            want = sorted(want)
        if key in ("filter", "threshold") and have is not None and want is not None:
            same = have.get("op") == want["op"] and isinstance(have.get("value"), (int, float)) \
                and float(have["value"]) == float(want["value"])
        else:
            same = have == want
        if not same:
            diffs.append(f"plan.{key}: expected {json.dumps(want, ensure_ascii=False)}, "
                         f"got {json.dumps(have, ensure_ascii=False)}")
    if got.get("source") != "parser":
        diffs.append(f"plan.source: expected \"parser\", got {json.dumps(got.get('source'))}")
    if expected["kind"] == "forecast":
        return diffs
    for key in ("from", "to"):
        # For a state "now" (`last`, open alarms) the plan's `to` is the time it is read at;
        # `from` is the executor's look-back, not a reading of the question.
        if key == "from" and point_in_time(expected):
            continue
        want = expected[key]
        text = got.get(key)
        if not isinstance(text, str):
            diffs.append(f"plan.{key}: expected {local_text(want, zone)}, got {text!r}")
            continue
        try:
            ms, offset = rfc3339_ms(text)
        except ValueError as e:
            diffs.append(f"plan.{key}: {e}")
            continue
        zone_offset = dt.datetime.fromtimestamp(ms / 1000, zone).utcoffset().total_seconds()
        if ms != want or offset != zone_offset:
            diffs.append(f"plan.{key}: expected {local_text(want, zone)}, got {text}")
    return diffs


def numbers_in(cells):
    return [c for c in cells if isinstance(c, (int, float)) and not isinstance(c, bool)]


def value_column(columns, rows, plan):
    if plan["kind"] == "forecast":
        names = ["expected_ms", "expected", "expected_at"]
    else:
        names = [plan["aggregate"], "value", "slope_per_hour", plan["metric"], "health", "count"]
    for n in names:
        if n in columns:
            return columns.index(n)
    if plan["kind"] == "forecast":
        return None  # the row's first time is taken instead
    for i in range(len(columns)):
        if any(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows
               if i < len(r)):
            return i
    return None


def close(a, b, e, key):
    if a is None or b is None:
        return a is None and b is None
    for want in (b, e.alt_values.get(key)):
        if want is None:
            continue
        if a == want or abs(a - want) <= e.absolute + e.relative * abs(want):
            return True
        if e.absolute >= 1.0 and e.alt_values:  # durations: seconds, or ms, or hours
            for scale in (1000.0, 1 / 3600.0):
                if abs(a - want * scale) <= (e.absolute + e.relative * abs(want)) * scale:
                    return True
    return False


def compare_data(e, data, plan):
    diffs = []
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        return [f"data: expected {{\"columns\",\"rows\"}}, got {json.dumps(data)[:200]}"]
    columns = data.get("columns", [])
    rows = data["rows"]
    if e.count is not None:
        # A count column must hold the count; without one, the rows are the things counted.
        # (Either-or would let a one-row answer with any number pass when the count is 1.)
        count_column = next((c for c in ("count", "alarms") if c in columns), None)
        if count_column:
            i = columns.index(count_column)
            cells = numbers_in(r[i] for r in rows if isinstance(r, list) and len(r) > i)
            if e.count not in cells:
                diffs.append(f"data: expected the count {e.count} in the count column, got "
                             f"{json.dumps(rows)[:300]}")
        elif len(rows) != e.count:
            diffs.append(f"data: expected the count {e.count} as {e.count} rows, got "
                         f"{json.dumps(rows)[:300]}")
        return diffs
    if len(rows) != len(e.rows):
        diffs.append(f"data: expected {len(e.rows)} rows, got {len(rows)}: "
                     f"{json.dumps(rows, ensure_ascii=False)[:300]}")
    keyed = [k for k, _ in e.rows if k is not None]
    vi = value_column(columns, rows, plan)
    got_keys = []
    for r in rows:
        names = [c for c in r if isinstance(c, str)]
        got_keys.append(names[0] if names else None)
    if keyed:
        # Groups with equal values may come in any order, and a limit may cut between them:
        # the answer's groups must be real ones whose values run as the expected ones do.
        want_values = [v for _, v in e.rows]
        got_values = [e.groups.get(k, "missing") for k in got_keys]
        if e.ordered and e.groups and got_values != want_values:
            diffs.append(f"data: expected the rows in the order {keyed} (values {want_values}), "
                         f"got {got_keys}")
        elif not e.ordered and sorted(k for k in got_keys if k) != sorted(keyed):
            diffs.append(f"data: expected the rows {sorted(keyed)}, got {got_keys}")
        elif e.ordered and not e.groups and got_keys != keyed:
            diffs.append(f"data: expected the rows in the order {keyed}, got {got_keys}")
    expected_rows = e.rows
    if e.ordered and e.groups:
        expected_rows = [(k, e.groups[k]) for k in got_keys if k in e.groups]
    for key, want in expected_rows:
        if want is None and plan["kind"] == "offline":
            continue
        row = rows[got_keys.index(key)] if key in got_keys else (
            rows[0] if key is None and rows else None)
        if row is None:
            continue
        have = row[vi] if vi is not None and vi < len(row) else None
        if plan["kind"] == "forecast" and isinstance(have, str):
            try:
                have = rfc3339_ms(have)[0]
            except ValueError:
                pass
        elif plan["kind"] == "forecast" and vi is None:
            have = None  # no named column: the first time in the row, ms or RFC 3339 text
            for cell in row:
                if isinstance(cell, (int, float)) and not isinstance(cell, bool) and \
                        cell > 1e12:
                    have = cell
                    break
                if isinstance(cell, str):
                    try:
                        have = rfc3339_ms(cell)[0]
                        break
                    except ValueError:
                        continue
        if plan["kind"] == "forecast" and want is None:
            if have is not None:
                diffs.append(f"data: {key}: expected no crossing within the horizon, got {have}")
            continue
        if not isinstance(have, (int, float)) or not close(float(have), want, e, key):
            diffs.append(f"data: {key or 'value'}: expected {want!r}"
                         f"{' (or ' + repr(e.alt_values[key]) + ')' if key in e.alt_values else ''}"
                         f", got {have!r} (column {columns[vi] if vi is not None and vi < len(columns) else '?'})")
    return diffs


def least_decimals(v):
    """Decimals that keep three significant digits (83.1, 4.43, 0.727, 1041), at most 3."""
    if v == 0 or float(v).is_integer():
        return 0
    digits = math.floor(math.log10(abs(v))) + 1
    return min(3, max(0, 3 - digits))


def renderings(v):
    """The ways an answer may round `v` for a reader: three significant digits or more (up
    to three decimals), trailing zeros kept or not, and the value as stored."""
    out = {repr(v), str(v)}
    if float(v).is_integer():
        out.add(str(int(v)))
    for d in range(least_decimals(v), 4):
        s = f"{v:.{d}f}"
        out.add(s)
        if "." in s:
            out.add(s.rstrip("0").rstrip("."))
    out |= {s.replace("-", "−") for s in out}
    return out


def mentions(text, number_text):
    """`number_text` in `text` as a whole number, not as part of a longer one."""
    return re.search(r"(?<![\d.])" + re.escape(number_text) + r"(?![\d]|\.\d)", text) is not None


def compare_text(e, text, plan):
    diffs = []
    if not isinstance(text, str) or not text.strip():
        return ["answer: empty"]
    # Thousands separators (1,041 or 1 041 with a thin space) go; a plain space separates.
    flat = re.sub(r"(?<=\d)[,\u2009\u202f](?=\d{3}\b)", "", text)
    if plan["kind"] == "telemetry" and plan["unit"] and e.rows and \
            plan["aggregate"] not in ("count", "time_above", "time_below") and \
            plan["unit"] not in text:
        diffs.append(f"answer: the unit {plan['unit']!r} is missing: {text!r}")
    if e.count is not None and str(e.count) not in flat and not (e.count == 0 and
                                                                 re.search(r"\bno\b", text, re.I)):
        diffs.append(f"answer: expected the count {e.count}: {text!r}")
    if plan["aggregate"] == "trend" and plan["kind"] == "telemetry":
        words = {w for w in ("rising", "falling", "flat") if w in text.lower()}
        contrary = {"rising": lambda v: v < 0, "falling": lambda v: v > 0}
        if not words:
            diffs.append(f"answer: says neither rising, falling nor flat: {text!r}")
        for key, v in e.rows:
            if len(e.rows) == 1 and any(contrary[w](v) for w in words & set(contrary)):
                diffs.append(f"answer: the slope is {v:+.4g} per hour: {text!r}")
    if len(e.rows) <= 3:
        for key, v in e.rows:
            # A group tied with the expected one may stand in its place, as in compare_data
            # (a limit may cut between equal values: two health scores of 0.143).
            stand_ins = [k for k, gv in e.groups.items() if gv == v] if e.ordered and e.groups \
                else []
            if key is not None and not any(k.lower() in text.lower() for k in [key] + stand_ins):
                diffs.append(f"answer: {key} is not named: {text!r}")
            if v is None or plan["kind"] in ("forecast", "alarms") or \
                    plan["aggregate"] in ("time_above", "time_below", "trend"):
                continue
            if not any(mentions(flat, r) for r in renderings(v)):
                diffs.append(f"answer: the value {v!r} ({key or 'value'}) is not in the text, "
                             f"rounded or not: {text!r}")
    return diffs


# ---- running the suite ---------------------------------------------------------------------

class Suite:
    def __init__(self, doc, server, expect_only, oracle=None):
        self.doc, self.server, self.expect_only = doc, server, expect_only
        self.oracle = oracle  # --self-test: answers made here instead of the server's
        self.answers = {}  # question id -> the answer it got
        self.setup = doc["setup"]
        self.zone = zoneinfo.ZoneInfo(self.setup["time_zone"])
        self.plant = Plant(server)
        self.history_at = self.find_history_at()
        self.results = []

    def find_history_at(self):
        """Half a second before the simulation's start: every backfilled second is stored,
        nothing live is, so a question "now" reads the same numbers on every run."""
        first = series_points(self.server.get(
            "/api/v1/query?device=pump-01&metric=temperature&from=0&limit=1"))
        ts = first["pump-01"][0][0]
        seconds = parse_backfill(self.setup["backfill"])
        return ts + seconds * 1000 - 500

    def at_of(self, q):
        if q.get("at", "history") == "history":
            return self.history_at
        # The live plant, two seconds ago: its points up to then have arrived.
        return int(time.time() * 1000) - 2000

    def ask(self, question, at_ms, entry=None):
        if self.oracle:
            return self.oracle(self, question, at_ms, entry), None
        status, body = self.server.request("POST", "/api/v1/ask",
                                           {"question": question, "at": at_ms})
        if status == 404:
            raise SuiteError("POST /api/v1/ask answered 404: this build has no Ask route "
                             f"(body: {body[:200]})")
        if status != 200:
            return None, f"POST /api/v1/ask answered {status}: {body[:300]}"
        try:
            return json.loads(body), None
        except json.JSONDecodeError as e:
            return None, f"the answer is not JSON ({e}): {body[:300]}"

    def expected_of(self, plan, at_ms):
        frm = to = None
        if plan["kind"] != "forecast":
            frm = eval_time_expr(plan["from"], at_ms, self.zone)
            to = eval_time_expr(plan["to"], at_ms, self.zone)
        kind = plan["kind"]
        if kind == "telemetry":
            return telemetry_expected(self.plant, plan, frm, to), frm, to
        if kind == "health":
            return health_expected(self.plant, plan, to), frm, to
        if kind == "offline":
            return offline_expected(self.plant, plan), frm, to
        if kind == "alarms":
            return alarms_expected(self.plant, plan, frm, to), frm, to
        return forecast_expected(self.plant, plan), frm, to

    def run_one(self, q):
        if not q.get("understood", True):
            return self.run_not_understood(q)
        plan = normalise_plan(q["plan"])
        live = q.get("at") == "live"
        for attempt in range(3):
            at_ms = self.at_of(q)
            if self.expect_only:
                return [], self.expected_of(plan, at_ms)[0]
            # The live plant moves (a late point stamped before `at`, a health score, an
            # alarm): its expected answer is read before and after asking, and the question
            # is asked again when the two differ.
            before = self.expected_of(plan, at_ms)[0] if live else None
            answer, error = self.ask(q["question"], at_ms, q)
            if error:
                return [error], None
            expected, frm, to = self.expected_of(plan, at_ms)
            if live and snapshot(before) != snapshot(expected) and attempt < 2:
                continue
            break
        self.answers[q["id"]] = answer
        diffs = []
        if answer.get("understood") is not True:
            return [f"understood: expected true, got {answer.get('understood')!r}; "
                    f"not_understood: {answer.get('not_understood')}"], expected
        if answer.get("question") != q["question"]:
            diffs.append(f"question: not echoed: {answer.get('question')!r}")
        want_plan = dict(plan, **{"from": frm, "to": to})
        diffs += compare_plan(want_plan, answer.get("plan") or {}, self.zone)
        diffs += compare_data(expected, answer.get("data"), plan)
        diffs += compare_text(expected, answer.get("answer"), plan)
        if not isinstance(answer.get("chart"), dict) or "type" not in answer.get("chart", {}):
            diffs.append(f"chart: expected an object with a type, got {answer.get('chart')!r}")
        return diffs, expected

    def run_not_understood(self, q):
        at_ms = self.at_of(q)
        if self.expect_only:
            return [], None
        answer, error = self.ask(q["question"], at_ms, q)
        if error:
            return [error], None
        self.answers[q["id"]] = answer
        diffs = []
        if answer.get("understood") is not False:
            return [f"understood: expected false, got {answer.get('understood')!r} with plan "
                    f"{json.dumps(answer.get('plan'), ensure_ascii=False)} and answer "
                    f"{answer.get('answer')!r}"], None
        reasons = answer.get("not_understood")
        if not isinstance(reasons, list) or not reasons or not all(
                isinstance(r, str) and r.strip() for r in reasons):
            diffs.append(f"not_understood: expected one or more reasons, got {reasons!r}")
            reasons = []
        def loose(t):  # "pump-99" and "pump 99" name the same thing
            return re.sub(r"[\s-]+", " ", t.lower())

        joined = loose(" ".join(reasons))
        for word in q["reasons"]:
            if loose(word) not in joined:
                diffs.append(f"not_understood: expected a reason naming {word!r}, got {reasons}")
        suggestions = answer.get("suggestions")
        if not isinstance(suggestions, list) or not 2 <= len(suggestions) <= 3:
            diffs.append(f"suggestions: expected 2 or 3, got {suggestions!r}")
            suggestions = []
        for s in suggestions:  # a suggestion is a question the server does understand
            again, error = self.ask(s, at_ms) if isinstance(s, str) else (None, "not text")
            if error or again.get("understood") is not True:
                diffs.append(f"suggestion {s!r} is not understood itself: "
                             f"{error or again.get('not_understood')}")
        return diffs, None

    def run(self, only=None):
        for q in self.doc["questions"]:
            if only and not re.search(only, q["id"]):
                continue
            try:
                diffs, expected = self.run_one(q)
            except SuiteError:
                raise
            except Exception as e:  # a harness error on one question fails that question
                diffs, expected = [f"harness error: {type(e).__name__}: {e}"], None
            self.results.append((q, diffs, expected))


# ---- the harness's own test (--self-test) ---------------------------------------------------

def oracle_answer(suite, question, at_ms, entry):
    """The answer a correct server would give, made from the questions file and the numbers
    the harness computes: every question must pass against it."""
    entry = entry or next((q for q in suite.doc["questions"] if q["question"] == question), None)
    if entry is None:
        return {"understood": False, "question": question, "not_understood": ["unknown"],
                "suggestions": []}
    if not entry.get("understood", True):
        understood = [q["question"] for q in suite.doc["questions"]
                      if q.get("understood", True) and q.get("at", "history") == "history"]
        return {"understood": False, "question": question,
                "not_understood": ["could not read " + ", ".join(entry["reasons"]) or "it"],
                "suggestions": understood[:2]}
    plan = normalise_plan(entry["plan"])
    expected, frm, to = suite.expected_of(plan, at_ms)
    out_plan = {k: plan[k] for k in PLAN_DEFAULTS}
    out_plan["source"] = "parser"
    if plan["kind"] != "forecast":
        out_plan["from"] = local_text(to if point_in_time(plan) else frm, suite.zone)
        out_plan["to"] = local_text(to, suite.zone)
    key_column = "asset" if plan["group_by"] == "asset" else "device"
    value_name = {"alarms": "count", "forecast": "expected_ms"}.get(plan["kind"],
                                                                  plan["aggregate"])
    if expected.count is not None:
        data = {"columns": ["count"], "rows": [[expected.count]]}
        text = f"{expected.count} alarms."
    else:
        rows = [[k, v] if k is not None else [v] for k, v in expected.rows]
        columns = [key_column, value_name] if any(k is not None for k, _ in expected.rows) \
            else [value_name]
        data = {"columns": columns, "rows": rows}
        parts = [f"{k or 'all'} {v:.{least_decimals(v)}f} {plan['unit']}".strip()
                 if isinstance(v, (int, float)) and plan["kind"] != "forecast" else
                 f"{k or 'all'} {v}" for k, v in expected.rows]
        text = ("; ".join(parts) or "none") + "."
        if plan["aggregate"] == "trend":
            text += " Rising." if expected.rows and expected.rows[0][1] > 0 else " Falling."
    return {"understood": True, "question": question, "answer": text, "plan": out_plan,
            "data": data, "chart": {"type": "table"}}


def corrupt_answer(suite, question, at_ms, entry):
    """A correct answer with one thing wrong, chosen by the question: each must fail."""
    a = oracle_answer(suite, question, at_ms, entry)
    n = suite.doc["questions"].index(entry) if entry in suite.doc["questions"] else 0
    if not a["understood"]:
        if n % 2:
            return {**a, "suggestions": a["suggestions"][:1]}
        return {**a, "not_understood": ["something"]} if entry and entry["reasons"] else \
            {"understood": True, "question": question, "answer": "42.", "plan": {},
             "data": {"columns": [], "rows": []}, "chart": {"type": "table"}}
    plan = a["plan"]
    if n % 4 == 0 and "to" in plan:
        ms, _ = rfc3339_ms(plan["to"])
        plan["to"] = local_text(ms + 3_600_000, suite.zone)
    elif n % 4 == 1:
        plan["aggregate"] = "p99" if plan["aggregate"] != "p99" else "mean"
    elif n % 4 == 2 and a["data"]["rows"] and any(
            isinstance(c, (int, float)) for c in a["data"]["rows"][0]):
        row = a["data"]["rows"][0]
        i = max(i for i, c in enumerate(row) if isinstance(c, (int, float)))
        row[i] = row[i] * 1.01 + 1
    else:
        plan["devices"] = plan["devices"] + ["pump-99"]
    return a


def self_test(doc, server, verbose):
    """The suite against a correct stand-in answer (all must pass) and against answers with
    one fault each (all must fail): the harness can tell a right answer from a wrong one."""
    ok = True
    suite = Suite(doc, server, False, oracle=oracle_answer)
    suite.run()
    bad = [(q["id"], d) for q, d, _ in suite.results if d]
    print(f"self-test: {len(suite.results) - len(bad)} of {len(suite.results)} correct "
          "stand-in answers pass")
    for i, d in bad:
        ok = False
        print(f"  {i}: {d}")
    suite = Suite(doc, server, False, oracle=corrupt_answer)
    suite.run()
    missed = [q["id"] for q, d, _ in suite.results if not d]
    print(f"self-test: {len(suite.results) - len(missed)} of {len(suite.results)} wrong "
          "stand-in answers fail")
    if missed:
        ok = False
        print(f"  not caught: {missed}")
    if verbose:
        for q, d, _ in suite.results:
            print(f"  {q['id']}: {d[0] if d else '-'}")
    return ok


def parse_backfill(text):
    m = re.fullmatch(r"(\d+)([smh]?)", text)
    if not m:
        raise SuiteError(f"setup.backfill {text!r}: expected N, Ns, Nm or Nh")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def report(suite, out, verbose, show_answers=False):
    by_cat = collections.OrderedDict((c, [0, 0]) for c in CATEGORIES)
    failed = []
    for q, diffs, expected in suite.results:
        cell = by_cat[q["category"]]
        cell[0 if not diffs else 1] += 1
        if diffs:
            failed.append((q, diffs, expected))
    passed = sum(c[0] for c in by_cat.values())
    total = sum(sum(c) for c in by_cat.values())
    at = suite.history_at
    print(f"Ask suite: seed {suite.setup['seed']}, history \"now\" {local_text(at, suite.zone)} "
          f"({at} ms), zone {suite.setup['time_zone']}", file=out)
    print(f"{'category':<20} {'passed':>7} {'failed':>7}", file=out)
    for c, (p, f) in by_cat.items():
        if p or f:
            print(f"{c:<20} {p:>7} {f:>7}", file=out)
    print(f"{'all':<20} {passed:>7} {total - passed:>7}", file=out)
    for q, diffs, expected in failed:
        print(f"\nFAILED {q['id']} [{q['category']}] {q['question']!r}", file=out)
        for d in diffs:
            print(f"  - {d}", file=out)
        if expected is not None and verbose:
            print(f"  expected: {expected.reduction} of {expected.requests}", file=out)
            print(f"  rows: {json.dumps(expected.rows, ensure_ascii=False)[:400]}", file=out)
        if verbose and q["id"] in suite.answers:
            a = suite.answers[q["id"]]
            print(f"  answer: {a.get('answer') or a.get('not_understood')!r}", file=out)
    if show_answers:
        print("\nAnswers:", file=out)
        for q, diffs, _ in suite.results:
            a = suite.answers.get(q["id"], {})
            said = a.get("answer") if a.get("understood") else \
                f"(not understood) {a.get('not_understood')} suggestions {a.get('suggestions')}"
            print(f"{'ok  ' if not diffs else 'FAIL'} {q['id']}: {q['question']}\n     {said}",
                  file=out)
    if suite.expect_only:
        for q, diffs, expected in suite.results:
            if expected is None:
                continue
            print(f"{q['id']}: {expected.reduction}; "
                  f"{json.dumps(expected.rows if expected.count is None else expected.count, ensure_ascii=False)[:300]}",
                  file=out)
    return not failed


def main():
    # SIGTERM (CTest, Ctrl-C's cousin) goes through `finally`, which stops the demo.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", help="the clisonix binary")
    ap.add_argument("--questions", default=os.path.join(HERE, "questions.json"))
    ap.add_argument("--check-file", action="store_true", help="only check the questions file")
    ap.add_argument("--expect-only", action="store_true",
                    help="compute the expected answers without asking")
    ap.add_argument("--only", help="a regular expression over question ids")
    ap.add_argument("--backfill", help="override setup.backfill (quicker local runs)")
    ap.add_argument("--self-test", action="store_true",
                    help="the harness against stand-in answers, right and wrong")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--show-answers", action="store_true",
                    help="print every question's answer, passed or not")
    args = ap.parse_args()

    doc = load_questions(args.questions)
    problems = check_file(doc)
    qs = doc["questions"]
    cats = collections.Counter(q["category"] for q in qs)
    print(f"{len(qs)} questions, {cats['worker phrasing']} worker-phrased, "
          f"{sum(1 for q in qs if not q.get('understood', True))} not understood")
    if problems:
        print("the questions file breaks its rules:\n  " + "\n  ".join(problems))
        return 1
    if args.check_file:
        return 0
    if not args.binary:
        ap.error("--binary is required to run the suite")
    if args.backfill:
        doc["setup"]["backfill"] = args.backfill
    server = Server(args.binary, doc["setup"])
    started = time.monotonic()
    try:
        server.start()
        server.wait_ready(timeout=doc["setup"].get("ready_timeout_s", 240))
        print(f"plant ready in {time.monotonic() - started:.0f} s")
        if args.self_test:
            ok = self_test(doc, server, args.verbose)
            print(f"suite time {time.monotonic() - started:.0f} s")
            return 0 if ok else 1
        suite = Suite(doc, server, args.expect_only)
        if not args.expect_only:
            suite.ask("what is the temperature of pump-01 now?", suite.history_at)
            if not server.zone_set:
                raise SuiteError("`ask.time_zone` is not a config key of this build: the suite "
                                 "reads every time in a fixed zone and needs it")
        suite.run(args.only)
        ok = report(suite, sys.stdout, args.verbose or args.expect_only, args.show_answers)
        print(f"suite time {time.monotonic() - started:.0f} s")
        return 0 if ok else 1
    except SuiteError as e:
        print(f"ask suite: {e}")
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
