#!/usr/bin/env bash
# The demo's end-to-end check for longer: `clisonix demo --speed 10` for WALL_MINUTES of wall
# time (default 30, i.e. 5 simulated hours, 20 fault cycles), then the same assertions as the
# ctest `demo_test.thirty_simulated_minutes_...`: every injected fault raised its alarm on its
# machine while it was on, and every alarm is explained by a fault of its machine.
#
#   bench/demo_soak.sh [WALL_MINUTES (30)]
#
# Needs the demo_test target built (cmake --build build --target demo_test clisonix).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST=${DEMO_SOAK_TEST_BINARY:-$ROOT/build/tests/demo/demo_test}
MINUTES=${1:-30}
[[ "$MINUTES" =~ ^[1-9][0-9]*$ ]] || { echo "demo soak: WALL_MINUTES must be a positive integer" >&2; exit 2; }
[ -x "$TEST" ] || { echo "demo soak: no $TEST (build the demo_test target)" >&2; exit 2; }
echo "demo soak: $MINUTES min of wall time at --speed 10 = $((MINUTES * 600)) simulated seconds" >&2
DEMO_E2E_SIMULATED_SECONDS=$((MINUTES * 600)) exec "$TEST" \
    --gtest_filter='demo_test.thirty_simulated_minutes_every_fault_alarms_and_healthy_machines_stay_quiet'
