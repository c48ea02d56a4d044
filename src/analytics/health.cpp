// Machine health: each metric is smoothed over the last ~20 rows (an exponential moving average)
// and standardised by the spread its smoothed value showed over the baseline, that spread
// widened by the slow drift seen inside the baseline; the row's statistic is the mean squared
// standardised deviation, smoothed again over time, and the score compares it with a threshold
// taken from the baseline's own statistic. Why this model and these constants (chosen by
// cross-validation on SKAB, PCA T² + Q measured against it): docs/health.md and
// docs/decisions/0034-machine-health-model.md.
#include <algorithm>
#include <cmath>
#include <limits>

#include "analytics/analytics.h"

namespace clisonix::analytics {

namespace {

// The constants, chosen by 4-fold cross-validation on SKAB valve1 and checked for false alarms
// on SKAB's anomaly-free run (docs/health.md). Fixed in advance for every device.
constexpr size_t min_rows = 60;
// Weight of the newest row in each metric's moving average (~20 rows of memory at 1 Hz): a
// fault is a sustained change, a single noisy reading is not.
constexpr double value_smoothing = 0.05;
// Weight of the newest row in the moving average of the statistic.
constexpr double statistic_smoothing = 0.1;
// The baseline is cut into this many consecutive blocks; the range of the block means of a
// metric is the drift it showed while the baseline was recorded. Its square is added to the
// metric's variance, so that a slowly drifting temperature does not raise alarms by itself.
constexpr size_t drift_blocks = 4;
constexpr double drift_weight = 1.0;
// Threshold: this factor times this quantile of the statistic over the baseline.
constexpr double threshold_quantile = 1.0;  // the highest
constexpr double threshold_factor = 4.0;
// Rows at the start of the baseline whose statistic is not used for the threshold (the moving
// averages are still settling there); min_rows leaves 40 after them.
constexpr size_t warm_up_rows = 20;
// A statistic of 1 is one baseline spread on average over the metrics; never alarm below that,
// even when the baseline was perfectly still (every metric constant).
constexpr double min_threshold = 1.0;
// A squared deviation is capped so that a constant metric that moves cannot overflow the sum.
constexpr double max_squared_deviation = 1e12;

bool usable(const std::vector<double>& row) {
    return std::any_of(row.begin(), row.end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

struct health_model::state {
    struct metric {
        double mean = 0;
        double spread = 1;
        bool modelled = false;           // false: never measured in the baseline, never scored
        double smoothed = std::nan("");  // the moving average of the value (NaN before the first)
        double share = 0;                // this metric's part of the smoothed statistic
        double squared = 0;              // scratch: this row's squared standardised deviation
    };
    std::vector<metric> metrics;
    double threshold = min_threshold;
    bool started = false;  // whether the statistic's moving average has a first value

    // The statistic of the next row, and each metric's share of it (they sum to it).
    double advance(std::span<const double> row) {
        size_t used = 0;
        for (size_t m = 0; m < metrics.size(); ++m) {
            auto& mt = metrics[m];
            const double v = m < row.size() ? row[m] : std::nan("");
            if (std::isfinite(v))
                mt.smoothed = std::isfinite(mt.smoothed)
                                  ? value_smoothing * v + (1 - value_smoothing) * mt.smoothed
                                  : v;
            // A metric not measured this row keeps its last smoothed value (sample-and-hold).
            mt.squared = 0;
            if (!mt.modelled || !std::isfinite(mt.smoothed)) continue;
            const double z = (mt.smoothed - mt.mean) / mt.spread;
            mt.squared = std::min(z * z, max_squared_deviation);
            ++used;
        }
        double total = 0;
        for (auto& mt : metrics) {
            const double now = used ? mt.squared / double(used) : 0;
            auto& share = mt.share;
            share = started ? statistic_smoothing * now + (1 - statistic_smoothing) * share : now;
            total += share;
        }
        started = true;
        return total;
    }
};

size_t health_model::min_baseline_rows() {
    return min_rows;
}

health_model::health_model(std::unique_ptr<state> s) : _s(std::move(s)) {}
health_model::health_model(health_model&&) noexcept = default;
health_model& health_model::operator=(health_model&&) noexcept = default;
health_model::~health_model() = default;

result<health_model> health_model::train(std::span<const std::vector<double>> rows) {
    if (rows.empty())
        return make_error("invalid_argument", "the baseline has no rows; health needs at least " +
                                                  std::to_string(min_rows));
    const size_t width = rows.front().size();
    if (width == 0) return make_error("invalid_argument", "the baseline rows have no metrics");
    size_t usable_rows = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].size() != width)
            return make_error("invalid_argument", "baseline row " + std::to_string(r) + " has " +
                                                      std::to_string(rows[r].size()) +
                                                      " values; the first has " +
                                                      std::to_string(width));
        usable_rows += usable(rows[r]);
    }
    if (usable_rows < min_rows)
        return make_error("invalid_argument",
                          "the baseline has " + std::to_string(usable_rows) +
                              " rows with a measured value; health needs at least " +
                              std::to_string(min_rows));

    // Each metric's smoothed value over the baseline, as update() will see it.
    std::vector<std::vector<double>> smoothed(width);
    for (size_t m = 0; m < width; ++m) {
        double s = std::nan("");
        smoothed[m].reserve(rows.size());
        for (const auto& row : rows) {
            if (std::isfinite(row[m]))
                s = std::isfinite(s) ? value_smoothing * row[m] + (1 - value_smoothing) * s
                                     : row[m];
            if (std::isfinite(s)) smoothed[m].push_back(s);
        }
    }

    auto st = std::make_unique<state>();
    st->metrics.resize(width);
    for (size_t m = 0; m < width; ++m) {
        const auto& v = smoothed[m];
        auto& mt = st->metrics[m];
        if (v.empty()) continue;  // never measured: nothing to compare with
        mt.modelled = true;
        double mean = 0;
        for (double x : v)
            mean += x;
        mean /= double(v.size());
        double var = 0;
        for (double x : v)
            var += (x - mean) * (x - mean);
        var = v.size() > 1 ? var / double(v.size() - 1) : 0;
        if (v.size() >= drift_blocks) {
            double lo = std::numeric_limits<double>::infinity(), hi = -lo;
            for (size_t b = 0; b < drift_blocks; ++b) {
                const size_t from = b * v.size() / drift_blocks;
                const size_t to = (b + 1) * v.size() / drift_blocks;
                double block = 0;
                for (size_t i = from; i < to; ++i)
                    block += v[i];
                block /= double(to - from);
                lo = std::min(lo, block);
                hi = std::max(hi, block);
            }
            var += drift_weight * (hi - lo) * (hi - lo);
        }
        mt.mean = mean;
        // A metric constant over the baseline gets a tiny spread relative to its level: when it
        // moves, it counts (strongly), and nothing divides by zero.
        mt.spread = std::max(std::sqrt(var), 1e-6 * std::max(std::abs(mean), 1.0));
    }

    // The threshold: the baseline streamed through the model as update() would stream it.
    // The first rows are left out: the moving averages start from a single raw row there.
    std::vector<double> statistic;
    statistic.reserve(rows.size());
    size_t seen = 0;
    for (const auto& row : rows)
        if (usable(row)) {
            const double s = st->advance(row);
            if (seen++ >= warm_up_rows) statistic.push_back(s);
        }
    const size_t at =
        std::min(statistic.size() - 1, size_t(threshold_quantile * double(statistic.size())));
    std::nth_element(statistic.begin(), statistic.begin() + std::ptrdiff_t(at), statistic.end());
    st->threshold = std::max(min_threshold, threshold_factor * statistic[at]);
    // The moving averages carry on from the end of the baseline: the first live rows are
    // judged against recent normal, not from a cold start that would look like a jump.
    return health_model(std::move(st));
}

health_model::assessment health_model::update(std::span<const double> row) {
    assessment a;
    const double statistic = _s->advance(row);
    a.contributions.assign(_s->metrics.size(), 0);
    if (!(statistic > 0)) return a;
    // statistic == threshold scores exactly 0.5: the model's own "abnormal" decision.
    a.score = statistic / (statistic + _s->threshold);
    for (size_t m = 0; m < _s->metrics.size(); ++m)
        a.contributions[m] = a.score * _s->metrics[m].share / statistic;
    return a;
}

size_t health_model::width() const {
    return _s->metrics.size();
}

size_t health_model::state_bytes() const {
    return sizeof(*this) + sizeof(state) + _s->metrics.capacity() * sizeof(state::metric);
}

}  // namespace clisonix::analytics
