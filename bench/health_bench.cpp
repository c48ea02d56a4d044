// Machine-health cost on the scoring thread: per row (a device's metrics at one timestamp:
// sort, sample-and-hold, the model's update, the health points added to the write batch)
// and the bytes of state per device, for 8 and 32 metrics per device.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "app/health_scoring.h"
#include "storage/storage.h"

namespace {

using clisonix::app::health_scoring;
namespace storage = clisonix::storage;

constexpr int64_t step_ns = 1'000'000'000;

void bm_health_row(benchmark::State& state) {
    const auto metrics = static_cast<size_t>(state.range(0));
    constexpr size_t devices = 100;
    const auto dir = std::filesystem::temp_directory_path() / "clisonix-health-bench";
    std::filesystem::remove_all(dir);
    storage::options opts;
    opts.dir = dir.string();
    auto engine = std::move(*storage::engine::open(opts));  // only retrain() reads it
    health_scoring health(*engine, devices);
    // Streams of every device's metrics; one second of baseline so that it trains at once.
    std::vector<uint32_t> streams;
    for (size_t d = 0; d < devices; ++d)
        for (size_t m = 0; m < metrics; ++m)
            streams.push_back(*health.stream_of(
                "telemetry,device=m" + std::to_string(d) + " metric_" + std::to_string(m),
                "m" + std::to_string(d), step_ns));
    std::mt19937 rng(1);
    std::normal_distribution<double> noise(0.0, 1.0);
    std::vector<health_scoring::sample> samples;
    storage::write_batch out;
    int64_t ts = 0;
    auto round = [&] {
        // One round = one row per device, as a batch of one timestamp arrives.
        samples.clear();
        for (auto s : streams)
            samples.push_back({s, ts, 10 + noise(rng)});
        out.clear();
        ts += step_ns;
        return health.score(samples, out);
    };
    // Learning first (the model's minimum of rows), outside the timing.
    while (health.devices_with_model() < devices)
        round();
    size_t rows = 0;
    for (auto _ : state)
        rows += round();
    state.SetItemsProcessed(static_cast<int64_t>(rows));
    state.counters["rows_per_s"] =
        benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
    state.counters["state_bytes_per_device"] = static_cast<double>(health.state_bytes()) / devices;
    engine.reset();
    std::filesystem::remove_all(dir);
}
BENCHMARK(bm_health_row)->Arg(8)->Arg(32)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
