#!/usr/bin/env bash
# The PromQL benchmark (issue 18): query_range of rate(telemetry_temperature[5m]) over 1,000
# series x 24 h at 1-minute steps, Clisonix's Prometheus API side by side with
# VictoriaMetrics' own PromQL on the same data, both loaded by the shared harness' loader.
#
#   bench/promql/run.sh [--devices N (1000)] [--hours H (24)] [--metrics M (1)] [--reps R (10)]
#                       [--seed S (42)] [--conns C (4)]
#
# Steps: build the harness' loader, generate the workload with its gen.py (reused while the
# parameters match), start VictoriaMetrics and Clisonix (build/clisonix) on loopback, load the
# same line protocol into both, flush VictoriaMetrics (/internal/force_flush; Clisonix's
# acknowledged writes are queryable already), check both hold every point, then time one
# warm-up and R repetitions of the query against each (VictoriaMetrics with nocache=1,
# Clisonix at /prometheus/api/v1/query_range with an API key as Bearer), print median and p95
# per target and the ratio Clisonix / VictoriaMetrics, and compare the answers.
#
# Environment: BENCH_DIR (the shared harness, default ../shared/bench), BENCH_WORK (servers'
# data and results, default /tmp/bench/promql), VM_PORT (18428), BENCH_CLISONIX_PORT (18430),
# BENCH_CLISONIX_BINARY, BENCH_DETECTOR / BENCH_HEALTH (Clisonix's anomaly scoring and
# machine health, default off: the benchmark measures queries, and scoring 8.6 M points
# would only delay them), BENCH_PROMQL_STAND_IN=victoriametrics (a second VictoriaMetrics
# answers in Clisonix's place: checks the script itself on a build without the PromQL API).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-$(cd "$ROOT/../shared/bench" && pwd)}
WORK=${BENCH_WORK:-/tmp/bench/promql}
DEVICES=1000 HOURS=24 NMETRICS=1 REPS=10 SEED=42 CONNS=4
while (($#)); do
    case $1 in
        --devices) DEVICES=$2; shift 2 ;;
        --hours) HOURS=$2; shift 2 ;;
        --metrics) NMETRICS=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --conns) CONNS=$2; shift 2 ;;
        -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# Progress on a terminal rewrites one line; in a pipe every step is a line of its own.
if [[ -t 2 ]]; then
    progress() { printf '\r\033[K[%s] %s' "$(date +%H:%M:%S)" "$*" >&2; }
    log() { printf '\r\033[K[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
else
    progress() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
    log() { progress "$@"; }
fi
fail() { log "run.sh: $*"; exit 1; }

# What the shared harness' target adapters expect of their caller (../shared/bench/run.sh).
port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "port $1 already in use - stop the stale server first" >&2
        return 1
    fi
}
wait_http() {
    local i
    for i in $(seq "${3:-300}"); do
        kill -0 "$2" 2>/dev/null || { echo "server pid $2 exited" >&2; return 1; }
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    return 1
}

progress "building the harness' loader"
BIN_DIR=${BENCH_BIN:-/tmp/bench/bin}
mkdir -p "$BIN_DIR"
make -s -C "$BENCH_DIR/loader" -f "$BENCH_DIR/loader/Makefile" OUT="$BIN_DIR/load" "$BIN_DIR/load" >&2
LOADER="$BIN_DIR/load"

progress "workload: $DEVICES devices x $HOURS h x $NMETRICS metric(s) every 10 s (generated once, then reused)"
DATA_DIR=$(python3 "$BENCH_DIR/gen.py" --devices "$DEVICES" --hours "$HOURS" --metrics "$NMETRICS" \
    --seed "$SEED" --reps 1 2> >(while read -r line; do progress "gen.py: $line"; done) | tail -n 1)
eval "$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))
print("POINTS=%d T_START=%d T_END=%d INTERVAL=%d MEASUREMENT=%s" % (m["points"], m["start"], m["end"], m["interval"], m["measurement"]))' \
    "$DATA_DIR/manifest.json")"
LP_DIR=$DATA_DIR/lp
cat "$LP_DIR"/*.lp >/dev/null # into the page cache, so that both loads read from memory
SERIES=$DEVICES
QUERY="rate(${MEASUREMENT}_temperature[5m])"
# From the first full 5-minute window to the last sample, at 1-minute steps.
Q_START=$((T_START + 300)) Q_END=$T_END Q_STEP=60

RUN_DIR=$WORK/results/$(date -u +%Y%m%dT%H%M%SZ)_${DEVICES}d_${HOURS}h_${NMETRICS}m
mkdir -p "$RUN_DIR"
export BENCH_DIR DATA_DIR LP_DIR LOADER CONNS RUN_DIR MEASUREMENT POINTS T_START T_END INTERVAL

VM_PID='' CLISONIX_PID=''
stop_servers() {
    local pid
    # SERVER_PID: a server whose start or load failed before its PID was kept.
    for pid in $CLISONIX_PID $VM_PID ${SERVER_PID:-}; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
}
trap stop_servers EXIT

# load NAME: start the target whose adapter is sourced, load the workload, check the count.
load() {
    TARGET=$1 WORK_DIR=$WORK/$1
    mkdir -p "$WORK_DIR"
    progress "$TARGET: starting"
    t_start
    progress "$TARGET: loading $POINTS points ($CONNS connections)"
    local started=$SECONDS
    t_ingest || fail "$TARGET: the load failed (see $RUN_DIR/$TARGET.load.json)"
    local stored
    stored=$(t_verify)
    [[ $stored == "$POINTS" ]] || fail "$TARGET holds $stored points, the workload has $POINTS"
    log "$TARGET: loaded and flushed $POINTS points in $((SECONDS - started)) s"
}

VM_PORT=${VM_PORT:-18428}
# shellcheck source=/dev/null
source "$BENCH_DIR/targets/victoriametrics.sh"
load victoriametrics
VM_PID=$SERVER_PID
VM_API=$VM_URL

if [[ ${BENCH_PROMQL_STAND_IN:-} == victoriametrics ]]; then
    log "clisonix: VictoriaMetrics stands in (BENCH_PROMQL_STAND_IN)"
    CLISONIX_API=$VM_URL CLISONIX_KEY='' CLISONIX_NOCACHE=--nocache
else
    # Not CLISONIX_PORT from the environment: the server refuses CLISONIX_* variables that
    # are no config key, and would inherit it.
    CLISONIX_PORT=${BENCH_CLISONIX_PORT:-18430}
    export -n CLISONIX_PORT
    export BENCH_DETECTOR=${BENCH_DETECTOR:-off} BENCH_HEALTH=${BENCH_HEALTH:-false}
    # shellcheck source=/dev/null
    source "$ROOT/bench/harness-target.sh"
    SERVER_PID=''
    load clisonix
    CLISONIX_PID=$SERVER_PID
    CLISONIX_API=$CLISONIX_URL/prometheus CLISONIX_NOCACHE=''
fi

# time_target NAME URL [--key K] [--nocache]: prints the timing JSON line.
time_target() {
    local name=$1 url=$2
    shift 2
    progress "$name: query_range $QUERY, $(((Q_END - Q_START) / Q_STEP + 1)) steps x $SERIES series, 1 warm-up + $REPS timed"
    python3 "$ROOT/bench/promql/query_range.py" time "$url" "$QUERY" "$Q_START" "$Q_END" "$Q_STEP" \
        "$REPS" "$RUN_DIR/$name.json" "$@"
}

vm=$(time_target victoriametrics "$VM_API" --nocache) || fail "victoriametrics: the query failed"
clisonix_args=()
[[ -n $CLISONIX_KEY ]] && clisonix_args+=(--key "$CLISONIX_KEY")
[[ -n $CLISONIX_NOCACHE ]] && clisonix_args+=("$CLISONIX_NOCACHE")
clisonix_status=0
clisonix=$(time_target clisonix "$CLISONIX_API" "${clisonix_args[@]}") || clisonix_status=$?
log "queries done"

field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("-" if v is None else v)' "$1" "$2"; }
{
    echo "PromQL query_range benchmark: $QUERY"
    echo "data: $DEVICES devices x $HOURS h x $NMETRICS metric(s) at ${INTERVAL} s = $POINTS points ($DATA_DIR)"
    echo "query: start=$Q_START end=$Q_END step=${Q_STEP}s, $REPS timed repetitions after a warm-up"
    printf '%-16s %10s %10s %8s %9s %11s\n' target median_ms p95_ms series points body_bytes
    printf '%-16s %10s %10s %8s %9s %11s\n' victoriametrics "$(field "$vm" median_ms)" \
        "$(field "$vm" p95_ms)" "$(field "$vm" series)" "$(field "$vm" points)" "$(field "$vm" bytes)"
    if ((clisonix_status == 3)); then
        echo "clisonix: $CLISONIX_API/api/v1/query_range answered $(field "$clisonix" status):" \
            "this build has no Prometheus query API yet; VictoriaMetrics alone above"
    elif ((clisonix_status != 0)); then
        echo "clisonix: the query failed (exit $clisonix_status)"
    else
        printf '%-16s %10s %10s %8s %9s %11s\n' clisonix "$(field "$clisonix" median_ms)" \
            "$(field "$clisonix" p95_ms)" "$(field "$clisonix" series)" \
            "$(field "$clisonix" points)" "$(field "$clisonix" bytes)"
        python3 -c 'import json,sys; c,v=(json.loads(a) for a in sys.argv[1:3])
print("ratio clisonix / victoriametrics: median %.2f, p95 %.2f" % (c["median_ms"]/v["median_ms"], c["p95_ms"]/v["p95_ms"]))' \
            "$clisonix" "$vm"
        agree=$(python3 "$ROOT/bench/promql/query_range.py" compare "$RUN_DIR/victoriametrics.json" \
            "$RUN_DIR/clisonix.json") && same=yes || same=no
        echo "answers: same series and timestamps: $same; $agree"
        # temperature is a gauge: rate() is defined for counters, and the two engines read a
        # gauge's decreases differently.
        echo "(values are reported, not judged: VictoriaMetrics' rate() does not extrapolate to" \
            "the window's edges, and it does not take every decrease for a counter reset, where" \
            "Prometheus' rate() does; temperature is a gauge that falls half the time, so the" \
            "values differ by design)"
    fi
    echo "raw answers: $RUN_DIR"
} | tee "$RUN_DIR/summary.txt"
