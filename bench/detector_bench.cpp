// Detector cost: updates per second on one core, and bytes of state per series.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
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

// Machine health: one model per machine scoring a row of its metrics (`width` of them) per
// time step. Items are rows; `s_per_point` divides by the width, to compare with the
// univariate detectors that score one point at a time.
void bm_health(benchmark::State& state) {
    const auto width = static_cast<size_t>(state.range(0));
    const auto v = noisy_daily(1 << 16);
    auto row_at = [&](size_t i) {
        std::vector<double> row(width);
        for (size_t m = 0; m < width; ++m)
            row[m] = v[(i + 37 * m) & 0xffff] * (1.0 + 0.1 * static_cast<double>(m));
        return row;
    };
    std::vector<std::vector<double>> baseline;
    for (size_t i = 0; i < std::max<size_t>(a::health_model::min_baseline_rows(), 1000); ++i)
        baseline.push_back(row_at(i));
    auto model = a::health_model::train(baseline);
    if (!model) {
        state.SkipWithError(model.error().message.c_str());
        return;
    }
    std::vector<std::vector<double>> rows;
    for (size_t i = 0; i < 4096; ++i)
        rows.push_back(row_at(i + 5000));
    size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(model->update(rows[i & 4095]).score);
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["state_bytes"] = static_cast<double>(model->state_bytes());
    state.counters["s_per_point"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(width),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

// Every detector the product knows (analytics::detector_names()), so a new one is measured
// without touching this file; then the ingest path and machine health.
int main(int argc, char** argv) {
    for (auto name : a::detector_names())
        benchmark::RegisterBenchmark(("bm_detector/" + std::string(name)).c_str(),
                                     [name](benchmark::State& st) { bm_detector(st, name); });
    benchmark::RegisterBenchmark("bm_series_detectors", bm_series_detectors)
        ->Arg(1000)
        ->Arg(100000);
    benchmark::RegisterBenchmark("bm_health", bm_health)->Arg(4)->Arg(6)->Arg(10);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
