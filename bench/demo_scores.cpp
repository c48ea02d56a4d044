// How far apart are the anomaly scores of the demo's healthy machines and of its bearing
// fault? Replays what the server's detector sees for every vibration series of the simulated
// plant (an hour of backfill at 1 s, then 30 simulated minutes at --speed 10, stamped 100 ms
// apart), over many seeds, and chooses the vibration rule's threshold by cross-validation:
// the seeds are split into folds; on the other folds the threshold is the midpoint between
// the highest healthy live score and the lowest bearing-fault peak; on the held-out fold it
// is judged by false alarms (healthy machines above it) and missed faults.
//
//   build/bench/demo_scores [SEEDS (20)] [FOLDS (4)] [DETECTOR (ensemble)]
//
// Not a Google Benchmark: a deterministic study, a few seconds per seed.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "analytics/analytics.h"
#include "app/demo_plant.h"

namespace sim = clisonix::app::sim;
namespace analytics = clisonix::analytics;

namespace {

constexpr int64_t backfill_s = 3600, live_s = 1800;
constexpr double speed = 10;

struct seed_result {
    uint64_t seed = 0;
    double healthy_max = 0;  // the highest live score of a machine without bearing wear then
    std::string healthy_where;
    std::vector<double> fault_peaks;  // per bearing fault: its top score within 60 s of the jump
    // Healthy live scores above 0.8 (the demo's rule), by what preceded them.
    int above_after_step = 0;  // within 10 s after the machine's speed set-point stepped
    int above_elsewhere = 0;
};

seed_result study(uint64_t seed, const std::string& detector) {
    seed_result out;
    out.seed = seed;
    const auto p = sim::make_plant(seed);
    const auto faults = sim::faults_between(p, 0, live_s);
    const int64_t start_ms = 1'800'000'000'000;
    for (size_t m = 0; m < p.machines.size(); ++m) {
        auto det = analytics::make_detector(detector);
        if (!det) {
            std::fprintf(stderr, "demo_scores: %s\n", det.error().message.c_str());
            std::exit(2);
        }
        std::vector<const sim::fault*> bearing;
        for (const auto& f : faults)
            if (f.machine == m && f.kind == sim::fault_kind::bearing_wear) bearing.push_back(&f);
        std::vector<double> peaks(bearing.size(), 0.0);
        for (int64_t k = -backfill_s; k < live_s; ++k) {
            auto r = sim::sample(p, m, k);
            if (!r.present) continue;
            double v = 0;
            for (const auto& [name, value] : r.values)
                if (name == "vibration_rms") v = value;
            const int64_t ts_ms =
                k < 0 ? start_ms + k * 1000 : start_ms + static_cast<int64_t>(k * 1000 / speed);
            const double s = (*det)->update(ts_ms * 1'000'000, v);
            if (k < 0) continue;  // the backfill: rules are installed after it
            bool in_fault = false;
            for (size_t i = 0; i < bearing.size(); ++i) {
                const auto& f = *bearing[i];
                if (k >= f.start && k < f.end) in_fault = true;
                if (k >= f.peak && k < f.peak + 60) peaks[i] = std::max(peaks[i], s);
            }
            if (!in_fault && s > 0.8) {
                bool stepped = false;
                for (int64_t b = k; b > k - 10 && !stepped; --b)
                    stepped = sim::setpoint(p, m, b) != sim::setpoint(p, m, b - 1);
                ++(stepped ? out.above_after_step : out.above_elsewhere);
            }
            if (!in_fault && s > out.healthy_max) {
                out.healthy_max = s;
                out.healthy_where = p.machines[m].name + " at " + std::to_string(k) + " s";
            }
        }
        out.fault_peaks.insert(out.fault_peaks.end(), peaks.begin(), peaks.end());
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const int seeds = argc > 1 ? std::atoi(argv[1]) : 20;
    const int folds = argc > 2 ? std::atoi(argv[2]) : 4;
    const std::string detector = argc > 3 ? argv[3] : "ensemble";
    if (seeds < 2 || folds < 2 || folds > seeds) {
        std::fprintf(stderr, "usage: demo_scores [SEEDS >= 2] [FOLDS in 2..SEEDS] [DETECTOR]\n");
        return 2;
    }
    std::vector<seed_result> all;
    for (int s = 1; s <= seeds; ++s) {
        all.push_back(study(static_cast<uint64_t>(s), detector));
        const auto& r = all.back();
        double low = *std::min_element(r.fault_peaks.begin(), r.fault_peaks.end());
        std::printf(
            "seed %2d: healthy live max %.3f (%s), lowest bearing-fault peak %.3f; "
            "healthy scores > 0.8: %d within 10 s after a set-point step, %d elsewhere\n",
            s, r.healthy_max, r.healthy_where.c_str(), low, r.above_after_step, r.above_elsewhere);
        std::fflush(stdout);
    }
    int seeds_above = 0, after_step = 0, elsewhere = 0;
    for (const auto& r : all) {
        seeds_above += r.healthy_max > 0.8;
        after_step += r.above_after_step;
        elsewhere += r.above_elsewhere;
    }
    std::printf(
        "rule threshold 0.8: %d of %d seeds raise a false vibration alarm in 30 live "
        "minutes; healthy scores above it: %d after a set-point step, %d elsewhere\n",
        seeds_above, seeds, after_step, elsewhere);
    int fixed_fp = 0, fixed_fn = 0, fixed_faults = 0;
    for (const auto& r : all) {
        fixed_fp += r.healthy_max > 0.8;
        for (double peak : r.fault_peaks) {
            ++fixed_faults;
            fixed_fn += peak <= 0.8;
        }
    }
    std::printf(
        "the product's fixed threshold 0.8: %d of %d seeds with a false alarm, %d of %d "
        "bearing faults not above it within 60 s of the jump\n",
        fixed_fp, seeds, fixed_fn, fixed_faults);
    int total_fp = 0, total_fn = 0, total_faults = 0, total_machines = 0;
    for (int f = 0; f < folds; ++f) {
        double healthy = 0, low = 1;
        for (int s = 0; s < seeds; ++s) {
            if (s % folds == f) continue;
            healthy = std::max(healthy, all[static_cast<size_t>(s)].healthy_max);
            for (double peak : all[static_cast<size_t>(s)].fault_peaks)
                low = std::min(low, peak);
        }
        const double threshold = (healthy + low) / 2;
        int fp = 0, fn = 0, faults = 0, held = 0;
        for (int s = f; s < seeds; s += folds) {
            const auto& r = all[static_cast<size_t>(s)];
            fp += r.healthy_max > threshold;
            ++held;
            for (double peak : r.fault_peaks) {
                ++faults;
                fn += peak <= threshold;
            }
        }
        std::printf(
            "fold %d: trained on %d seeds (healthy max %.3f, fault min %.3f) -> "
            "threshold %.3f; held-out %d seeds: %d with a false alarm, %d of %d faults "
            "missed\n",
            f, seeds - held, healthy, low, threshold, held, fp, fn, faults);
        total_fp += fp;
        total_fn += fn;
        total_faults += faults;
        total_machines += held;
    }
    std::printf("held-out total: %d of %d seeds with a false alarm, %d of %d faults missed\n",
                total_fp, total_machines, total_fn, total_faults);
    return 0;
}
