# Clisonix as a target of the side-by-side benchmark harness (../shared/bench/run.sh).
# Contract: ../shared/bench/targets/INTERFACE.md. Run from the project root:
#   ../shared/bench/run.sh $PWD/bench/harness-target.sh victoriametrics postgres
# Uses build/clisonix (scripts/setup builds it), or BENCH_CLISONIX_BINARY (not a CLISONIX_*
# name: the server refuses environment variables of that prefix that are no config key).
# Writes are durable (storage.sync = always).
# BENCH_DETECTOR=off runs without anomaly scoring, BENCH_HEALTH=false without machine health
# (default: the product's defaults, both on).
CLISONIX_ROOT=${CLISONIX_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CLISONIX_BIN=${BENCH_CLISONIX_BINARY:-$CLISONIX_ROOT/build/clisonix}
CLISONIX_PORT=${CLISONIX_PORT:-18030}
CLISONIX_URL=http://127.0.0.1:$CLISONIX_PORT
CLISONIX_ADMIN_PASSWORD=${CLISONIX_ADMIN_PASSWORD:-bench-admin-password}
export CLISONIX_ADMIN_PASSWORD
CLISONIX_KEY=

# curl with the benchmark's API key.
ccurl() { curl -sf -H "Authorization: Bearer $CLISONIX_KEY" "$@"; }

t_version() { "$CLISONIX_BIN" version | head -n 1; }

t_start() {
    port_free "$CLISONIX_PORT"
    rm -rf "$WORK_DIR/data"
    mkdir -p "$WORK_DIR/data"
    "$CLISONIX_BIN" serve --port "$CLISONIX_PORT" --data "$WORK_DIR/data" \
        --set http.bind=127.0.0.1 --set log.level=warn --set mqtt.port=0 --set coap.port=0 \
        --set analytics.detector="${BENCH_DETECTOR:-ensemble}" \
        --set analytics.health="${BENCH_HEALTH:-true}" >"$WORK_DIR/server.log" 2>&1 &
    SERVER_PID=$!
    wait_http "$CLISONIX_URL/healthz" "$SERVER_PID" || { cat "$WORK_DIR/server.log" >&2; return 1; }
    # An API key for the loader (InfluxDB 1.x style: the key as the `p` parameter of /write,
    # since the loader sends no headers) and for the queries.
    local token
    token=$(curl -sf -X POST "$CLISONIX_URL/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$CLISONIX_ADMIN_PASSWORD\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    CLISONIX_KEY=$(curl -sf -X POST "$CLISONIX_URL/api/v1/apikeys" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"name":"bench","role":"admin"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
}

t_setup() { :; }

t_ingest() {
    # Acknowledged writes are durable and at once queryable: nothing to flush afterwards.
    "$LOADER" --mode http --url "$CLISONIX_URL/write?db=bench&precision=ns&p=$CLISONIX_KEY" --dir "$LP_DIR" \
        --conns "$CONNS" >"$RUN_DIR/$TARGET.load.json"
}

t_verify() {
    # Points of the workload's own metrics (the engine also stores the derived series:
    # <metric>.anomaly, health, health.<metric>).
    ccurl "$CLISONIX_URL/api/v1/query?measurement=$MEASUREMENT&agg=count&group_by=metric&from=0&to=4102444800000" |
        python3 -c 'import json,sys; m=lambda s: s.endswith((".anomaly",".out_of_range")) or s=="health" or s.startswith("health."); print(sum(s["points"][0][1] for s in json.load(sys.stdin)["series"] if not m(s["metric"])))'
}

t_size() { du -sb "$WORK_DIR/data/tsdb" | cut -f1; }

# Before queries: let the anomaly scores catch up with the load, as a deployment would have
# by the time anyone looks (the wait is reported as prep_s).
t_prep() {
    local i scrape
    for i in $(seq 1 600); do
        scrape=$(ccurl "$CLISONIX_URL/metrics") || return 1
        grep -q '^clisonix_anomaly_queue_points [1-9]' <<<"$scrape" || return 0
        sleep 0.2
    done
}

t_query() { python3 "$CLISONIX_ROOT/bench/clisonixq.py" "$CLISONIX_URL" "$1" "$RUN_DIR" "$TARGET" "$CLISONIX_KEY"; }

t_compact() {
    ccurl -X POST "$CLISONIX_URL/api/v1/storage/compact" >/dev/null
}

t_extra() { ccurl "$CLISONIX_URL/api/v1/storage/stats" | tr -d '{}"' | tr ',:' '\n='; }

t_stop() {
    [ -n "${SERVER_PID:-}" ] || return 0
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}
