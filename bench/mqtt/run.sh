#!/usr/bin/env bash
# MQTT to durable storage: messages/s at QoS 0 and QoS 1 over many device connections, and
# memory per idle connection, against a real `clisonix serve` on loopback.
#
#   bench/mqtt/run.sh [MESSAGES (200000)] [CONNECTIONS (1000)] [extra serve flags...]
#
# Every connection is a device with its own token. The load generator (mqtt_load.cpp, built
# here with the product's codec) sends the 200-byte telemetry of ../shared/bench/mqtt/
# mqttbench.c; a QoS 1 message counts when its PUBACK (sent after the WAL fsync) arrives, and
# QoS 0 ends with a QoS 1 fence per connection (see mqtt_load.cpp). The mosquitto relay anchor
# is ../shared/bench/mqtt/run_mqtt.sh. MQTT_BENCH_BINARY overrides the binary (default
# build/clisonix); MQTT_BENCH_WINDOW the QoS 1 messages in flight per connection (20, as
# libmosquitto's default max_inflight_messages).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${MQTT_BENCH_BINARY:-$ROOT/build/clisonix}
N=${1:-200000} C=${2:-1000}
shift $(( $# > 2 ? 2 : $# ))
WORK=$(mktemp -d /tmp/clisonix-mqtt-bench.XXXXXX)
HTTP=${BENCH_HTTP_PORT:-18230} MQTT=${BENCH_MQTT_PORT:-18231}
SRV=
cleanup() { [ -z "$SRV" ] || { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null || true; }; rm -rf "$WORK"; }
trap cleanup EXIT
echo "mqtt bench: building the load generator" >&2
g++ -O2 -std=c++20 -I"$ROOT/src" "$ROOT/bench/mqtt/mqtt_load.cpp" "$ROOT/src/mqtt/codec.cpp" \
    -o "$WORK/mqtt_load"
ulimit -n 65536 2>/dev/null || true
CLISONIX_ADMIN_PASSWORD=bench-admin-password-1 "$BIN" serve --data "$WORK/data" --port "$HTTP" \
    --set http.bind=127.0.0.1 --set mqtt.bind=127.0.0.1 --set mqtt.port="$MQTT" \
    --set mqtt.rate_limit=0 --set coap.port=0 --set log.level=warn "$@" >"$WORK/server.log" 2>&1 &
SRV=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null || { echo "mqtt bench: server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
echo "mqtt bench: creating $C device tokens" >&2
python3 - "$HTTP" "$C" >"$WORK/tokens.txt" <<'PY'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/api/v1/auth/login", json.dumps({"username": "admin", "password": "bench-admin-password-1"}),
          {"Content-Type": "application/json"})
tok = json.loads(c.getresponse().read())["access_token"]
for i in range(n):
    c.request("POST", "/api/v1/devices/d%05d/token" % i, "", {"Authorization": "Bearer " + tok})
    r = c.getresponse()
    print(json.loads(r.read())["token"])
    if (i + 1) % 200 == 0:
        print("mqtt bench: %d tokens" % (i + 1), file=sys.stderr)
PY
rss() { awk '/VmRSS/{print $2}' "/proc/$SRV/status"; }
# Memory per idle connection: RSS before and while C connections (CONNECT only) are held.
r0=$(rss)
"$WORK/mqtt_load" -p "$MQTT" -t "$WORK/tokens.txt" -c "$C" -I 6 >/dev/null 2>"$WORK/idle.log" &
IDLE=$!
for _ in $(seq 300); do grep -q holding "$WORK/idle.log" && break; sleep 0.1; done
sleep 2
r1=$(rss)
wait "$IDLE"
python3 -c "import sys; r0,r1,c=map(int,sys.argv[1:]); print('{\"idle_connections\":%d,\"rss_before_kib\":%d,\"rss_with_kib\":%d,\"bytes_per_connection\":%d}' % (c,r0,r1,(r1-r0)*1024//c))" "$r0" "$r1" "$C"
sleep 1
for qos in 1 0; do
    echo "mqtt bench: QoS $qos, $N messages over $C connections" >&2
    c0=$(awk '{print $14 + $15}' "/proc/$SRV/stat")
    out=$("$WORK/mqtt_load" -p "$MQTT" -t "$WORK/tokens.txt" -c "$C" -n "$N" -q "$qos" -w "${MQTT_BENCH_WINDOW:-20}")
    c1=$(awk '{print $14 + $15}' "/proc/$SRV/stat")
    echo "${out%\}},\"server_cpu_s\":$(python3 -c "print(round(($c1 - $c0) / 100, 2))")}"
done
stats=$(curl -s -H "Authorization: Bearer $(python3 - "$HTTP" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
c.request("POST", "/api/v1/auth/login", json.dumps({"username": "admin", "password": "bench-admin-password-1"}),
          {"Content-Type": "application/json"})
print(json.loads(c.getresponse().read())["access_token"])
PY
)" "http://127.0.0.1:$HTTP/api/v1/storage/stats")
echo "mqtt bench: storage after the runs: $stats" >&2
