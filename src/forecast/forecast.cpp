// The forecasting models and the crossing estimate (see forecast.h).
//
// This first version ships the baseline only: seasonal naive with the period found from the
// autocorrelation, and intervals from the spread of its own rolling-origin errors.
#include "forecast/forecast.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace clisonix::forecast {
namespace {

// Drops leading NaNs; fills inner gaps by linear interpolation (the ends by the nearest value).
std::vector<double> filled(std::span<const double> history) {
    size_t first = 0;
    while (first < history.size() && !std::isfinite(history[first]))
        ++first;
    std::vector<double> y(history.begin() + static_cast<std::ptrdiff_t>(first), history.end());
    size_t last_known = y.size();
    for (size_t i = 0; i < y.size(); ++i) {
        if (!std::isfinite(y[i])) continue;
        if (last_known != y.size() && last_known + 1 < i) {
            double a = y[last_known], b = y[i];
            for (size_t k = last_known + 1; k < i; ++k)
                y[k] = a + (b - a) * static_cast<double>(k - last_known) /
                               static_cast<double>(i - last_known);
        }
        last_known = i;
    }
    for (size_t k = last_known + 1; k < y.size(); ++k)
        y[k] = y[last_known];
    return y;
}

// The lag in [2, n/2] with the highest autocorrelation above 0.3, among the candidates.
int find_season(const std::vector<double>& y, int64_t step_ns) {
    std::vector<int> candidates;
    if (step_ns > 0) {
        const int64_t hour = 3'600'000'000'000LL;
        for (int64_t period : {24 * hour, 7 * 24 * hour, 8 * hour, 12 * hour})
            if (period % step_ns == 0) candidates.push_back(static_cast<int>(period / step_ns));
    } else {
        candidates = {24, 168, 12, 7};
    }
    const size_t n = y.size();
    double mean = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(n);
    double var = 0;
    for (double v : y)
        var += (v - mean) * (v - mean);
    if (var <= 0) return 1;
    int best = 1;
    double best_acf = 0.3;
    for (int lag : candidates) {
        if (lag < 2 || static_cast<size_t>(lag) * 2 > n) continue;
        double c = 0;
        for (size_t i = static_cast<size_t>(lag); i < n; ++i)
            c += (y[i] - mean) * (y[i - static_cast<size_t>(lag)] - mean);
        if (c / var > best_acf) best_acf = c / var, best = lag;
    }
    return best;
}

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    double pos = q * static_cast<double>(v.size() - 1);
    size_t i = static_cast<size_t>(pos);
    double frac = pos - static_cast<double>(i);
    return i + 1 < v.size() ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

// P(Y > x) from the five quantiles of one step, linear between them, normal tails beyond.
double probability_above(const result_t& f, size_t s, double x) {
    const double q[5] = {f.lower95[s], f.lower50[s], f.point[s], f.upper50[s], f.upper95[s]};
    const double p[5] = {0.025, 0.25, 0.5, 0.75, 0.975};
    auto normal_tail = [](double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); };
    if (x <= q[0]) {
        double sigma = (q[2] - q[0]) / 1.96;
        return sigma > 0 ? 1 - normal_tail((q[2] - x) / sigma) : 1;
    }
    if (x >= q[4]) {
        double sigma = (q[4] - q[2]) / 1.96;
        return sigma > 0 ? normal_tail((x - q[2]) / sigma) : 0;
    }
    for (int i = 0; i < 4; ++i)
        if (x <= q[i + 1]) {
            double w = q[i + 1] > q[i] ? (x - q[i]) / (q[i + 1] - q[i]) : 1;
            return 1 - (p[i] + w * (p[i + 1] - p[i]));
        }
    return 0;
}

}  // namespace

std::vector<std::string_view> method_names() {
    return {"auto", "snaive"};
}

result<result_t> forecast(std::span<const double> history, const options& o) {
    if (o.horizon < 1)
        return make_error("invalid_argument", "horizon must be at least 1 step", "horizon");
    auto names = method_names();
    if (std::find(names.begin(), names.end(), o.method) == names.end())
        return make_error("invalid_argument",
                          "unknown method '" + std::string(o.method) + "' (auto, snaive)",
                          "method");
    std::vector<double> y = filled(history);
    size_t finite = static_cast<size_t>(
        std::count_if(history.begin(), history.end(), [](double v) { return std::isfinite(v); }));
    if (finite < 3)
        return make_error(
            "invalid_argument",
            "a forecast needs at least 3 values in the history, got " + std::to_string(finite),
            "history");
    const size_t n = y.size();
    const int season =
        std::min(o.season > 0 ? o.season : find_season(y, o.step_ns), static_cast<int>(n));
    const size_t m = static_cast<size_t>(season);
    const size_t h = static_cast<size_t>(o.horizon);

    result_t r;
    r.model = "snaive";
    r.season = season;
    r.history = static_cast<int>(n);
    // Rolling-origin errors of the same model, per step ahead, over the last part.
    std::vector<std::vector<double>> errors(h);
    double abs_sum = 0, smape_sum = 0;
    size_t count = 0;
    for (size_t origin = std::max(m, n > 10 * m ? n - 10 * m : m); origin + 1 < n; ++origin)
        for (size_t k = 0; k < h && origin + k < n; ++k) {
            double f = y[origin - m + (k % m)];
            double e = y[origin + k] - f;
            errors[k].push_back(e);
            abs_sum += std::abs(e);
            double d = std::abs(y[origin + k]) + std::abs(f);
            smape_sum += d > 0 ? 200 * std::abs(e) / d : 0;
            ++count;
        }
    r.mae = count ? abs_sum / static_cast<double>(count) : 0;
    r.smape = count ? smape_sum / static_cast<double>(count) : 0;
    for (size_t k = 0; k < h; ++k) {
        double f = y[n - m + (k % m)];
        // Steps beyond the measured ones reuse the last measured spread.
        const auto& e = errors[k].size() >= 5 ? errors[k] : errors[0];
        r.point.push_back(f);
        r.lower50.push_back(f + std::min(0.0, quantile(e, 0.25)));
        r.upper50.push_back(f + std::max(0.0, quantile(e, 0.75)));
        r.lower95.push_back(f + std::min(0.0, quantile(e, 0.025)));
        r.upper95.push_back(f + std::max(0.0, quantile(e, 0.975)));
    }
    return r;
}

crossing_t crossing(const result_t& f, double limit, bool above) {
    crossing_t c;
    double running = 0;
    for (size_t s = 0; s < f.point.size(); ++s) {
        double p = probability_above(f, s, limit);
        if (!above) p = 1 - p;
        running = std::max(running, p);
        int step = static_cast<int>(s) + 1;
        if (!c.earliest && running >= 0.025) c.earliest = step;
        if (!c.expected && running >= 0.5) c.expected = step;
        if (!c.latest && running >= 0.975) c.latest = step;
    }
    c.probability = running;
    c.within_horizon = c.expected.has_value();
    return c;
}

}  // namespace clisonix::forecast
