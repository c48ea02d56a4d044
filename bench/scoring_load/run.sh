#!/usr/bin/env bash
# Does anomaly scoring keep up with ingest? Starts the real `clisonix serve` on a free loopback
# port, sends line protocol over HTTP keep-alive at a paced rate across devices x metrics
# series (bench/scoring_load/load.cpp), and reads /metrics as it goes: points acknowledged,
# scored, skipped (clisonix_anomaly_points_skipped_total), the scoring queue, the server's RSS
# and CPU. Exits 0 only when every point was acknowledged and scored and none was skipped.
#
#   bench/scoring_load/run.sh [SECONDS (60)] [RATE (100000)] [extra serve flags...]
#   bench/scoring_load/run.sh 600                          # the longer version
#   bench/scoring_load/run.sh 60 100000 --set analytics.detector=context
#
# Environment: SCORING_BENCH_BINARY (default build/clisonix), SCORING_BENCH_DEVICES (1000),
# SCORING_BENCH_METRICS (10), SCORING_BENCH_CONNS (2), SCORING_BENCH_PERF=1 to record a
# `perf` profile of the server during the run (Debian's linux-perf; the report goes to
# stdout at the end), SCORING_BENCH_KEEP=1 to keep the work directory.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${SCORING_BENCH_BINARY:-$ROOT/build/clisonix}
SECONDS_TO_RUN=${1:-60} RATE=${2:-100000}
shift $(( $# > 2 ? 2 : $# ))
DEVICES=${SCORING_BENCH_DEVICES:-1000} METRICS=${SCORING_BENCH_METRICS:-10}
CONNS=${SCORING_BENCH_CONNS:-2}
WORK=$(mktemp -d /tmp/clisonix-scoring-bench.XXXXXX)
SRV= PERF=
say() { echo "scoring bench: $*" >&2; }
cleanup() {
    [ -z "$PERF" ] || { kill -INT "$PERF" 2>/dev/null; wait "$PERF" 2>/dev/null || true; }
    [ -z "$SRV" ] || { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; }
    if [ "${SCORING_BENCH_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
[ -x "$BIN" ] || { say "no binary at $BIN (build the clisonix target first)"; exit 2; }

say "building the load client"
g++ -O2 -std=c++20 -Wall -Wextra -Werror -pthread "$ROOT/bench/scoring_load/load.cpp" -o "$WORK/load"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PASSWORD=scoring-bench-password-1
CLISONIX_ADMIN_PASSWORD=$PASSWORD "$BIN" serve --data "$WORK/data" --port "$PORT" \
    --set http.bind=127.0.0.1 --set mqtt.enabled=false --set coap.port=0 --set log.level=warn \
    --set gateway.api_limit=1000000 "$@" >"$WORK/server.log" 2>&1 &
SRV=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { say "the server did not start"; cat "$WORK/server.log" >&2; exit 1; }
TOKEN=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
KEY=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/apikeys" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"name":"scoring-bench","role":"admin"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
say "server $("$BIN" version | head -n 1) on port $PORT, extra flags: ${*:-none}"
say "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${SCORING_BENCH_PERF:-0}" = 1 ]; then
    command -v perf >/dev/null || { say "SCORING_BENCH_PERF=1 needs perf (apt-get install linux-perf)"; exit 2; }
    perf record -g -F 499 -p "$SRV" -o "$WORK/perf.data" >/dev/null 2>&1 &
    PERF=$!
fi

set +e
"$WORK/load" --port "$PORT" --key "$KEY" --pid "$SRV" --rate "$RATE" --seconds "$SECONDS_TO_RUN" \
    --devices "$DEVICES" --metrics "$METRICS" --conns "$CONNS"
RC=$?
set -e
say "load average after the run $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$PERF" ]; then
    kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true; PERF=
    say "where the server's CPU went (perf, self time by symbol):"
    perf report -i "$WORK/perf.data" --no-children --sort symbol -g none --stdio 2>/dev/null |
        grep -v '^#' | grep '%' | head -25 | cut -c1-150 | sed 's/ *$//' 
fi
if grep -qi '"level":"error"\|error' "$WORK/server.log"; then say "server log:"; tail -5 "$WORK/server.log" >&2; fi
exit $RC
