#!/usr/bin/env bash
# Points per second from the industrial connectors into durable storage, and the server's CPU
# for them, against a real release `clisonix serve` on loopback ports and a temp data dir:
#
#   modbus P     one Modbus TCP connector polling 100 holding registers on each of 50 unit ids
#                (5,000 mapping entries: a device per unit id, a metric per register, uint16
#                and int16 with scales) every P ms, from connector_modbus_server (libmodbus);
#                points/s from clisonix_connector_points_read_total over the window
#   sparkplug    one Sparkplug B edge node (connector_sparkplug_edge: libmosquitto and the
#                product's payload encoder): NBIRTH, a DBIRTH of 1,000 metrics with aliases,
#                then DDATA of all 1,000 by alias, QoS 1 with 20 in flight, as fast as the
#                broker acknowledges (a PUBACK means durable); points/s acknowledged
#
# cores/10k is the server's CPU (utime + stime of /proc/<pid>/stat) over the same window,
# in CPU-seconds per second, per 10,000 points/s: the cores one needs per 10 k points/s.
# The server runs as shipped (anomaly scoring on every point, rules, devices).
#
#   bench/connectors/run.sh [SECONDS (10)] [POLL_MS... (100 50 20 10)]
#
# Needs build/clisonix and build/bench/connector_{modbus_server,sparkplug_edge}:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCLISONIX_BUILD_BENCH=ON
#   cmake --build build --target clisonix connector_modbus_server connector_sparkplug_edge
# (CONNECTOR_BENCH_BINARY overrides build/clisonix; CONNECTOR_BENCH_SETTINGS adds settings,
# e.g. "analytics.detector=off analytics.health=false" for the path without scoring;
# CONNECTOR_BENCH_PERF=DIR records
# `perf record -g` of the server over each step's window into DIR/<step>.data). One line per step (on a terminal the
# step's name shows while it runs), then a table.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
shift $(($# > 0 ? 1 : 0))
polls=("$@")
((${#polls[@]})) || polls=(100 50 20 10)
binary=${CONNECTOR_BENCH_BINARY:-$PWD/build/clisonix}
modbus_server=$PWD/build/bench/connector_modbus_server
edge=$PWD/build/bench/connector_sparkplug_edge
# The server takes every CLISONIX_* variable for a setting and refuses unknown ones.
perf_dir=${CONNECTOR_BENCH_PERF:-}
extra_settings=()
for setting in ${CONNECTOR_BENCH_SETTINGS:-}; do extra_settings+=(--set "$setting"); done
unset CONNECTOR_BENCH_BINARY CONNECTOR_BENCH_PERF CONNECTOR_BENCH_SETTINGS
for tool in "$binary" "$modbus_server" "$edge"; do
  [[ -x $tool ]] || {
    echo "run.sh: $tool is missing; build it: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release" \
      "-DCLISONIX_BUILD_BENCH=ON && cmake --build build --target clisonix" \
      "connector_modbus_server connector_sparkplug_edge" >&2
    exit 2
  }
done
work=$(mktemp -d /tmp/clisonix-connector-bench.XXXXXX)
server_pid='' modbus_pid='' perf_pid=''
cleanup() {
  [[ -n $perf_pid ]] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
  [[ -n $modbus_pid ]] && kill "$modbus_pid" 2>/dev/null && wait "$modbus_pid" 2>/dev/null
  if [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; then
    # A server that has not stopped in 20 s is reported and killed, so the bench always ends.
    for _ in $(seq 200); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "run.sh: the server did not stop in 20 s after SIGTERM; killed" >&2
      kill -9 "$server_pid" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
progress() { if [[ -t 1 ]]; then printf '%-14s running ...\r' "$1"; fi; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
ticks_per_s=$(getconf CLK_TCK)
# perf_start STEP / perf_stop: the server's profile over a step's window, when asked for.
perf_start() {
  [[ -n $perf_dir ]] || return 0
  mkdir -p "$perf_dir"
  perf record -q -g -o "$perf_dir/$1.data" -p "$server_pid" 2>/dev/null &
  perf_pid=$!
}
perf_stop() {
  [[ -n $perf_pid ]] || return 0
  kill -INT "$perf_pid"
  wait "$perf_pid" 2>/dev/null || true
  perf_pid=
}

http=$(port) mqtt=$(port)
password=bench-admin-password-1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; ${seconds}s per step;" \
  "settings: ${extra_settings[*]:-as shipped}"
progress "server"
CLISONIX_ADMIN_PASSWORD=$password "$binary" serve --port "$http" --data "$work/data" \
  --set http.bind=127.0.0.1 --set mqtt.bind=127.0.0.1 --set mqtt.port="$mqtt" \
  --set mqtt.rate_limit=0 --set coap.port=0 --set log.level=warn ${extra_settings[@]+"${extra_settings[@]}"} \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$http/healthz" >/dev/null || {
  echo "run.sh: the server did not start" >&2
  cat "$work/server.log" >&2
  exit 1
}

# api METHOD PATH [BODY_FILE]: the admin's request; prints the body, fails on a non-2xx status.
token=$(curl -sf -X POST "http://127.0.0.1:$http/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
api() {
  local args=(-sS -X "$1" "http://127.0.0.1:$http$2" -H "Authorization: Bearer $token" -w '\n%{http_code}')
  [[ $# -gt 2 ]] && args+=(-H 'Content-Type: application/json' --data-binary "@$3")
  local out code
  out=$(curl "${args[@]}")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 2* ]] || {
    echo "run.sh: $1 $2: HTTP $code $out" >&2
    exit 1
  }
  printf '%s' "$out"
}
points_read() {  # the connector's clisonix_connector_points_read_total
  api GET /metrics | awk -v c="connector=\"$1\"" 'index($0, "clisonix_connector_points_read_total{") == 1 && index($0, c) { print $NF; found = 1 } END { if (!found) print 0 }'
}

rows=()  # "step|points/s|cores/10k|note"
# step_result NAME POINTS TICKS SECONDS NOTE: one line and a table row.
step_result() {
  local line
  line=$(python3 -c '
import sys
name, points, ticks, secs, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
rate = points / secs
cores = ticks / hz / secs
per10k = cores / (rate / 10000) if rate else float("nan")
print(f"{rate:.0f} {cores:.2f} {per10k:.3f}")' "$1" "$2" "$3" "$4" "$ticks_per_s")
  read -r rate cores per10k <<<"$line"
  printf '%-14s points/s=%-9s server_cores=%-5s cores_per_10k_points_s=%-6s %s\n' "$1" "$rate" "$cores" "$per10k" "$5"
  rows+=("$1|$rate|$cores|$per10k|$5")
}

# Modbus: the server, then one connector per poll interval (the previous one deleted).
"$modbus_server" "$work/modbus.port" >"$work/modbus.log" 2>&1 &
modbus_pid=$!
for _ in $(seq 100); do [[ -s $work/modbus.port ]] && break; sleep 0.05; done
modbus_port=$(cat "$work/modbus.port")
for poll in "${polls[@]}"; do
  name=bench-modbus-$poll
  progress "modbus $poll"
  python3 - "$name" "$modbus_port" "$poll" >"$work/connector.json" <<'PY'
import json, sys
name, port, poll = sys.argv[1], sys.argv[2], int(sys.argv[3])
mapping = []
for unit in range(1, 51):
    for reg in range(100):
        entry = {"address": f"holding:{reg}", "unit_id": unit, "device": f"plc-unit-{unit:02d}",
                 "metric": f"reg_{reg:03d}"}
        if reg % 2:  # half are signed tenths, as temperatures are sent
            entry.update(data_type="int16", scale=0.1, unit="°C")
        mapping.append(entry)
print(json.dumps({"name": name, "type": "modbus", "endpoint": f"tcp://127.0.0.1:{port}",
                  "poll_interval_ms": poll, "timeout_ms": 2000, "mapping": mapping}))
PY
  id=$(api POST /api/v1/connectors "$work/connector.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  sleep 2  # connected, series created, the first polls stored
  perf_start "modbus-$poll"
  p0=$(points_read "$name") c0=$(cpu_ticks) t0=$(date +%s.%N)
  sleep "$seconds"
  p1=$(points_read "$name") c1=$(cpu_ticks) t1=$(date +%s.%N)
  perf_stop
  api DELETE "/api/v1/connectors/$id" >/dev/null
  elapsed=$(python3 -c "print($t1 - $t0)")
  offered=$((5000 * 1000 / poll))
  note=$(python3 -c "r = ($p1 - $p0) / $elapsed; print(f'{r / $offered * 100:.0f}% of the {$offered} points/s the interval asks')")
  step_result "modbus ${poll}ms" "$(python3 -c "print($p1 - $p0)")" $((c1 - c0)) "$elapsed" "$note"
done
kill "$modbus_pid"
wait "$modbus_pid" 2>/dev/null || true
modbus_pid=

# Sparkplug B: an operator key is the edge node's MQTT username.
progress "sparkplug"
echo '{"name":"bench-edge","role":"operator"}' >"$work/key.json"
key=$(api POST /api/v1/apikeys "$work/key.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
perf_start sparkplug
c0=$(cpu_ticks)
out=$("$edge" "$mqtt" "$key" "$seconds" 1000 20)
c1=$(cpu_ticks)
perf_stop
read -r points elapsed rebirths < <(sed -E 's/.* points=([0-9]+) seconds=([0-9.]+) .*rebirths=([0-9]+).*/\1 \2 \3/' <<<"$out")
step_result "sparkplug" "$points" $((c1 - c0)) "$elapsed" "$out"
[[ $rebirths == 0 ]] || echo "run.sh: the broker asked for $rebirths rebirths: data was refused" >&2
# Every acknowledged message is in the store: one metric's count is the DDATA acked + the birth.
# Past 1,000 messages/s the timestamps run ahead of the clock: the range reaches an hour ahead.
now=$(date +%s%3N)
stored=$(api GET "/api/v1/query?device=sp-machine-1&metric=tag_0000&from=$((now - 3600000))&to=$((now + 3600000))&agg=count" |
  python3 -c 'import json,sys; s=json.load(sys.stdin)["series"]; print(int(s[0]["points"][0][1]) if s else 0)')
acked=$(sed -E 's/messages=([0-9]+).*/\1/' <<<"$out")
verdict=ok
[[ $stored == $((acked + 1)) ]] || verdict="MISMATCH: acknowledged points are missing"
echo "stored check   sp-machine-1/tag_0000 holds $stored points for $acked DDATA acknowledged + 1 DBIRTH: $verdict"

echo
echo "| step | points/s | server cores | cores per 10 k points/s | note |"
echo "|---|---:|---:|---:|---|"
for row in "${rows[@]}"; do
  IFS='|' read -r a b c d e <<<"$row"
  echo "| $a | $b | $c | $d | $e |"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
