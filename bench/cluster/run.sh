#!/usr/bin/env bash
# Writes through one node alone, then through node 1 of a cluster (three nats-server with
# JetStream, two nodes applying every shard), all on this machine; write_load.py with 1 and
# 4 connections against each. Scoring off, so that the log is what is measured.
#
#   bench/cluster/run.sh [SECONDS]        (default 5; needs build/clisonix and nats-server)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
binary=$PWD/build/clisonix
work=$(mktemp -d /tmp/clisonix-cluster-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
common=(--set http.bind=127.0.0.1 --set mqtt.enabled=false --set analytics.detector=off
  --set analytics.health=false --set gateway.api_limit=100000000)
export CLISONIX_ADMIN_PASSWORD=test-admin-password-1
wait_http() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.2; done; exit 1; }

single=$(port)
"$binary" serve --port "$single" --data "$work/single" "${common[@]}" >"$work/single.log" 2>&1 &
pids+=($!)
wait_http "$single"
echo "single node:"
python3 bench/cluster/write_load.py "$single" 1 "$seconds"
python3 bench/cluster/write_load.py "$single" 4 "$seconds"
kill "${pids[0]}"

routes="" urls="" clients=() cluster_ports=()
for i in 0 1 2; do clients+=("$(port)"); cluster_ports+=("$(port)"); done
for i in 0 1 2; do
  routes+="${routes:+,}nats://127.0.0.1:${cluster_ports[$i]}"
  urls+="${urls:+,}nats://127.0.0.1:${clients[$i]}"
done
for i in 0 1 2; do
  mkdir -p "$work/nats$i"
  /usr/sbin/nats-server -js -sd "$work/nats$i" -a 127.0.0.1 -p "${clients[$i]}" -n "bench-$i" \
    --cluster_name clisonix-bench --cluster "nats://127.0.0.1:${cluster_ports[$i]}" \
    --routes "$routes" >"$work/nats$i.log" 2>&1 &
  pids+=($!)
done
node_ports=()
for n in 1 2; do
  p=$(port)
  node_ports+=("$p")
  "$binary" serve --port "$p" --data "$work/node$n" "${common[@]}" --set "cluster.node_id=n$n" \
    --set "cluster.nats=$urls" >"$work/node$n.log" 2>&1 &
  pids+=($!)
done
for p in "${node_ports[@]}"; do wait_http "$p"; done
echo "cluster node 1 (3 nats-server, stream replicas 3, 2 nodes applying):"
python3 bench/cluster/write_load.py "${node_ports[0]}" 1 "$seconds"
python3 bench/cluster/write_load.py "${node_ports[0]}" 4 "$seconds"
