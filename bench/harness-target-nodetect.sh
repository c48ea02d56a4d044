# Clisonix without anomaly scoring and machine health, to measure what they cost the write
# path:
#   ../shared/bench/run.sh $PWD/bench/harness-target.sh $PWD/bench/harness-target-nodetect.sh
BENCH_DETECTOR=off
BENCH_HEALTH=false
source "$(dirname "${BASH_SOURCE[0]}")/harness-target.sh"
