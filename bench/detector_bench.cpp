// Detector cost: updates per second on one core, and bytes of state per series.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "analytics/analytics.h"

namespace a = clisonix::analytics;

namespace {

std::vector<double> noisy_daily(size_t n) {
    std::mt19937 rng(1);
    std::normal_distribution<double> noise(0.0, 1.0);
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) {
        v[i] = 50 + 20 * std::sin(2 * M_PI * static_cast<double>(i % 288) / 288.0) + noise(rng);
    }
    return v;
}

constexpr int64_t step_ns = 300'000'000'000;

// One series, one detector: the per-point cost of each detector.
void bm_detector(benchmark::State& state, std::string_view name) {
    const auto v = noisy_daily(1 << 16);
    auto d = std::move(*a::make_detector(name));
    size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(d->update(static_cast<int64_t>(i) * step_ns, v[i & 0xffff]));
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["state_bytes"] = static_cast<double>(d->state_bytes());
}

// The ingest path: many series through series_detectors (lookup, striped lock, update).
void bm_series_detectors(benchmark::State& state) {
    const auto series = static_cast<uint32_t>(state.range(0));
    const auto v = noisy_daily(1 << 16);
    a::series_detectors sd;
    size_t i = 0;
    for (auto _ : state) {
        const auto id = static_cast<uint32_t>(i % series);
        const size_t t = i / series;
        benchmark::DoNotOptimize(sd.score(id, static_cast<int64_t>(t) * step_ns, v[t & 0xffff]));
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["series"] = static_cast<double>(sd.series_count());
    state.counters["bytes_per_series"] =
        static_cast<double>(sd.state_bytes()) / static_cast<double>(sd.series_count());
}

}  // namespace

BENCHMARK_CAPTURE(bm_detector, ensemble, "ensemble");
BENCHMARK_CAPTURE(bm_detector, artime, "artime");
BENCHMARK_CAPTURE(bm_detector, context, "context");
BENCHMARK_CAPTURE(bm_detector, max3, "max3");
BENCHMARK_CAPTURE(bm_detector, level, "level");
BENCHMARK_CAPTURE(bm_detector, seasonal, "seasonal");
BENCHMARK_CAPTURE(bm_detector, novelty, "novelty");
BENCHMARK(bm_series_detectors)->Arg(1000)->Arg(100000);

BENCHMARK_MAIN();
