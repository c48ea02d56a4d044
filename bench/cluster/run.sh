#!/usr/bin/env bash
# Ingest through one node alone, through a 3-node cluster (scripts/cluster up: three
# nats-server with JetStream, stream replicas 3, three nodes that each apply every shard,
# nginx) and JetStream's own publish rate on the same three nats-server, side by side, all on
# this machine. The workload is write_load.py's 1,000-point line-protocol requests with 1 and
# 4 connections per entry point; scoring and health off, so that the log is what is measured.
#
#   bench/cluster/run.sh [SECONDS]     (default 5 per step; the whole run takes ~2.5 minutes)
#
# Needs build/clisonix, nats-server, nginx, redis-server, PostgreSQL (scripts/setup) and
# build/bench/jetstream_publish (cmake -S . -B build -DCLISONIX_BUILD_BENCH=ON, then
# cmake --build build --target clisonix jetstream_publish), or $CLISONIX_JETSTREAM_PUBLISH.
# One line per step (on a terminal the step's name shows while it runs), then a table.
# Steps:
#   single 1|4        one node alone (no cluster config), 1 and 4 connections
#   nginx 1|4         the cluster through nginx (which spreads requests over n1 n2 n3)
#   n1 1|4            the cluster's node n1 directly (one entry point, no nginx)
#   spread 3x1|3x4    the cluster's three nodes directly, 1 and 4 connections to each
#   wide              the cluster through n1, 1 connection, 1,000 devices x 1 point per
#                     request: the log's worst case (one point per series per message)
#   jetstream 10|64   CLISONIX_PUBLISH_BENCH (made like the telemetry stream) on the same
#                     servers, messages of the telemetry log's measured size, 10 or 64 in
#                     flight (what 1 and ~4 connections' requests keep in flight)
# Stream bytes per point (the retention figures of docs/cluster.md's Sizing) are read from
# the telemetry stream's state before and after the steps (jetstream_publish info).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
binary=${CLISONIX_BINARY:-$PWD/build/clisonix}
publisher=${CLISONIX_JETSTREAM_PUBLISH:-$PWD/build/bench/jetstream_publish}
# The server takes every CLISONIX_* variable for a setting and refuses unknown ones.
unset CLISONIX_JETSTREAM_PUBLISH CLISONIX_BINARY
for tool in "$binary" "$publisher"; do
  [[ -x $tool ]] || {
    echo "run.sh: $tool is missing; build it: cmake -S . -B build -DCLISONIX_BUILD_BENCH=ON &&" \
      "cmake --build build --target clisonix jetstream_publish" >&2
    exit 2
  }
done
work=$(mktemp -d /tmp/clisonix-cluster-bench.XXXXXX)
single_pid=
cleanup() {
  [[ -n $single_pid ]] && kill "$single_pid" 2>/dev/null && wait "$single_pid" 2>/dev/null
  [[ -f $work/cluster/cluster.env ]] && scripts/cluster down --dir "$work/cluster" --purge 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.2; done; exit 1; }
settings="analytics.detector=off analytics.health=false gateway.api_limit=100000000"

rows=()  # "step|connections|points/s|p50|p99|ratio|note"
declare -A single_rate
progress() { if [[ -t 1 ]]; then printf '%-12s running ...\r' "$1"; fi; }
# load STEP BASELINE PORTS THREADS [write_load options]: one write_load step, one line.
load() {
  local step=$1 baseline=$2 ports=$3 threads=$4 out ratio
  shift 4
  progress "$step"
  out=$(python3 bench/cluster/write_load.py "$ports" "$threads" "$seconds" --json "$@")
  local rate p50 p99 conns points
  read -r rate p50 p99 conns points < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1])
print(r["points_per_s"], r["p50_ms"], r["p99_ms"], r["connections"], r["points"])' "$out")
  ratio=-
  [[ -n $baseline ]] && ratio=$(python3 -c "print(f'{$rate / $baseline:.2f}')")
  rows+=("$step|$conns|$rate|$p50|$p99|$ratio")
  printf '%-12s connections=%-3s points/s=%-9s p50_ms=%-6s p99_ms=%-6s x_single=%s\n' \
    "$step" "$conns" "$rate" "$p50" "$p99" "$ratio"
  last_points=$points last_rate=$rate
}
stream_state() {  # prints "messages bytes" of the telemetry stream
  "$publisher" info "$nats_urls" CLISONIX_TELEMETRY | sed -E 's/messages=([0-9]+) bytes=([0-9]+)/\1 \2/'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; ${seconds}s per step"

single=$(port)
single_settings=()
for s in $settings; do single_settings+=(--set "$s"); done
CLISONIX_ADMIN_PASSWORD=test-admin-password-1 "$binary" serve --port "$single" \
  --data "$work/single" --set http.bind=127.0.0.1 --set mqtt.enabled=false --set coap.port=0 \
  "${single_settings[@]}" >"$work/single.log" 2>&1 &
single_pid=$!
wait_http "$single"
load "single 1" "" "$single" 1
single_rate[1]=$last_rate
load "single 4" "" "$single" 4
single_rate[4]=$last_rate
kill "$single_pid"
wait "$single_pid" 2>/dev/null || true
single_pid=

progress "cluster up"
layout=$(CLISONIX_CLUSTER_NODE_SETTINGS=$settings scripts/cluster up --dir "$work/cluster" 2>"$work/cluster-up.log" | tail -n 1) ||
  {
    cat "$work/cluster-up.log" >&2
    exit 1
  }
read -r CLISONIX_ADMIN_PASSWORD nginx_port node_ports nats_urls < <(python3 -c '
import json, sys
j = json.loads(sys.argv[1])
port = lambda url: url.rsplit(":", 1)[1]
print(j["admin_password"], port(j["http"]), ",".join(port(n["http"]) for n in j["nodes"]),
      ",".join(n["url"] for n in j["nats"]))' "$layout")
export CLISONIX_ADMIN_PASSWORD
n1_port=${node_ports%%,*}
echo "cluster up   3 nats-server, 3 nodes, nginx (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"

read -r messages0 bytes0 < <(stream_state)
points=0
load "nginx 1" "${single_rate[1]}" "$nginx_port" 1 --tag nginx1
points=$((points + last_points))
load "nginx 4" "${single_rate[4]}" "$nginx_port" 4 --tag nginx4
points=$((points + last_points))
load "n1 1" "${single_rate[1]}" "$n1_port" 1 --tag n1-1
points=$((points + last_points))
load "n1 4" "${single_rate[4]}" "$n1_port" 4 --tag n1-4
points=$((points + last_points))
load "spread 3x1" "${single_rate[1]}" "$node_ports" 1 --tag spread1
points=$((points + last_points))
load "spread 3x4" "${single_rate[4]}" "$node_ports" 4 --tag spread4
points=$((points + last_points))
read -r messages1 bytes1 < <(stream_state)
load "wide" "" "$n1_port" 1 --tag wide --wide
wide_points=$last_points
read -r messages2 bytes2 < <(stream_state)

# The telemetry log's messages for the batched workload: their size and points each.
read -r per_message points_per_message bytes_per_point wide_bytes_per_point < <(python3 -c "
m, b, p = $messages1 - $messages0, $bytes1 - $bytes0, $points
print(round(b / m), round(p / m, 1), round(b / p, 1), round(($bytes2 - $bytes1) / $wide_points, 1))")
echo "stream       batched: $((messages1 - messages0)) messages, $((bytes1 - bytes0)) bytes for $points points:" \
  "$per_message B/message, $points_per_message points/message, $bytes_per_point B/point;" \
  "wide: $((messages2 - messages1)) messages, $wide_bytes_per_point B/point"

# A message's stored size is its payload plus about 100 bytes (subject, the Nats-Msg-Id
# header, the store's record); the publisher prints its own stored size to compare.
payload=$((per_message > 200 ? per_message - 100 : 100))
for in_flight in 10 64; do
  progress "jetstream $in_flight"
  out=$("$publisher" publish "$nats_urls" "$payload" "$points_per_message" "$seconds" "$in_flight" 3)
  rate=$(sed -E 's/.*points\/s=([0-9]+).*/\1/' <<<"$out")
  ratio=$(python3 -c "print(f'{$rate / ${single_rate[4]}:.2f}')")
  printf '%-12s %s x_single4=%s\n' "jetstream $in_flight" "$out" "$ratio"
  rows+=("jetstream $in_flight|$in_flight in flight|$rate|-|-|$ratio")
done

echo
echo "| step | connections | points/s | p50 ms | p99 ms | × one node alone |"
echo "|---|---:|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
  IFS='|' read -r a b c d e f <<<"$row"
  echo "| $a | $b | $c | $d | $e | $f |"
done
echo "× one node alone: against \`single\` with the same connections per entry point (jetstream: \`single 4\`)."
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
