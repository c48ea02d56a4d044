// Forecast cost: one series of 1,000 hourly points, 48 steps ahead, on one core (the product's
// bar: <= 2 ms with "auto", rolling-origin intervals included), and each single model.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "forecast/forecast.h"

namespace fc = clisonix::forecast;

namespace {

// Hourly: a daily curve, quieter weekends, a slow drift and noise; every value > 0.
std::vector<double> plant_series(size_t n) {
    std::mt19937 rng(3);
    std::normal_distribution<double> noise(0.0, 3.0);
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) {
        const double day = 60 + 25 * std::sin(2 * M_PI * static_cast<double>(i % 24) / 24.0);
        const bool weekend = (i / 24) % 7 >= 5;
        v[i] = (weekend ? 0.6 : 1.0) * day + 0.01 * static_cast<double>(i) + noise(rng);
    }
    return v;
}

void bm_forecast(benchmark::State& state, std::string method) {
    const auto y = plant_series(1000);
    const fc::options o{.horizon = 48, .step_ns = 3'600'000'000'000LL, .method = method};
    for (auto _ : state) {
        auto f = fc::forecast(y, o);
        benchmark::DoNotOptimize(f);
    }
    state.SetItemsProcessed(state.iterations());
}

void register_all() {
    for (auto name : fc::method_names())
        benchmark::RegisterBenchmark(("forecast/" + std::string(name) + "/1000x48").c_str(),
                                     bm_forecast, std::string(name))
            ->Unit(benchmark::kMicrosecond);
}

const int registered = (register_all(), 0);

}  // namespace

BENCHMARK_MAIN();
