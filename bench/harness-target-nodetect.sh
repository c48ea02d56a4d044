# Clisonix without anomaly scoring, to measure what detection costs the write path:
#   ../shared/bench/run.sh $PWD/bench/harness-target.sh $PWD/bench/harness-target-nodetect.sh
BENCH_DETECTOR=off
source "$(dirname "${BASH_SOURCE[0]}")/harness-target.sh"
