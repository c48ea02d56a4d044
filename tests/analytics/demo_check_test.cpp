// The default detector on the demo plant, generated offline (src/app/demo_plant.h): an hour
// of healthy history at 1 Hz as the server backfills it, then 30 minutes live. Healthy
// machines, set-point steps and daily load cycle included, must stay below the product's
// decision threshold (no alarm fatigue), while the bearing-wear fault on vibration_rms goes
// above it.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "analytics/analytics.h"
#include "app/demo_plant.h"

namespace a = clisonix::analytics;
namespace sim = clisonix::app::sim;

namespace {

#if defined(__SANITIZE_ADDRESS__)
// ~1.6 M detector updates for six seeds: one seed is enough to find memory errors.
const std::vector<uint64_t> seeds = {1};
#else
const std::vector<uint64_t> seeds = {1, 2, 3, 4, 5, 6};
#endif

constexpr int64_t backfill_seconds = 3600;
constexpr int64_t live_seconds = 1800;
constexpr int64_t epoch_s = 2'000'000'000;

struct live_peak {
    double score = 0;
    int64_t at = -1;  // simulated second of the highest live score
};

// Feeds one metric of one machine from the backfill through the live part; returns the
// highest score in [from, live_seconds).
live_peak run(const sim::plant& p, size_t machine, size_t metric, int64_t from = 0) {
    auto det = a::make_detector();
    EXPECT_TRUE(static_cast<bool>(det));
    live_peak peak;
    for (int64_t t = -backfill_seconds; t < live_seconds; ++t) {
        const auto r = sim::sample(p, machine, t);
        if (!r.present) continue;
        const double s = (*det)->update((epoch_s + t) * 1'000'000'000, r.values[metric].second);
        if (t >= from && s > peak.score) peak = {s, t};
    }
    return peak;
}

}  // namespace

TEST(demo_check, healthy_machines_stay_below_the_decision_threshold_across_set_point_steps) {
    for (uint64_t seed : seeds) {
        const auto p = sim::make_plant(seed);
        std::set<size_t> faulty;
        for (const auto& f : sim::faults_between(p, 0, live_seconds))
            faulty.insert(f.machine);
        size_t checked = 0;
        for (size_t m = 0; m < p.machines.size(); ++m) {
            if (faulty.count(m)) continue;
            const auto& kind = sim::kinds()[p.machines[m].kind];
            for (size_t k = 0; k < kind.metrics.size(); ++k) {
                const auto peak = run(p, m, k);
                EXPECT_LE(peak.score, a::anomaly_decision_threshold)
                    << "seed " << seed << ": healthy " << p.machines[m].name << "."
                    << kind.metrics[k].name << " scores " << peak.score << " at +" << peak.at
                    << " s";
                ++checked;
            }
        }
        // Most of the plant is healthy: the check covers dozens of series per seed.
        EXPECT_GT(checked, 40u) << "seed " << seed;
    }
}

TEST(demo_check, bearing_wear_scores_above_the_decision_threshold_within_a_minute) {
    for (uint64_t seed : seeds) {
        const auto p = sim::make_plant(seed);
        for (const auto& f : sim::faults_between(p, 0, live_seconds)) {
            if (f.kind != sim::fault_kind::bearing_wear) continue;
            const auto& kind = sim::kinds()[p.machines[f.machine].kind];
            size_t k = 0;
            while (kind.metrics[k].name != "vibration_rms")
                ++k;
            const auto peak = run(p, f.machine, k, f.start);
            EXPECT_GT(peak.score, a::anomaly_decision_threshold)
                << "seed " << seed << ": " << p.machines[f.machine].name << " bearing wear from +"
                << f.start << " s";
            EXPECT_LT(peak.at, f.peak + 60) << "seed " << seed;
        }
    }
}
