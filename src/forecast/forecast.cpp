// The product's forecast (see forecast.h): a combination of simple models, chosen by
// rolling-origin cross-validation on M4's hourly series (docs/forecasting.md), with prediction
// intervals measured from the series' own rolling-origin errors; and the crossing estimate.
#include "forecast/forecast.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "forecast/models.h"

namespace clisonix::forecast {
namespace {

// The members of "auto" and how they are combined (the median of their forecasts at every
// step): chosen by cross-validation inside M4's training series (docs/forecasting.md).
constexpr std::string_view auto_members[] = {"ar-ridge", "ar-ridge-linear", "ar-ridge-day24"};

// Interval half-widths as multiples of the measured mean absolute error at each step,
// calibrated on the same cross-validation for 50 % and 95 % coverage.
constexpr double width50 = 0.6;
constexpr double width95 = 2.55;

// Seasonal naive replaces the autoregressions on a series where its rolling-origin error is
// below this share of theirs (cross-validated among 1.0, 0.8 and 0.6).
constexpr double naive_preferred_below = 0.8;

std::vector<double> median_of(std::vector<std::vector<double>>& forecasts, size_t h) {
    std::vector<double> out(h), at(forecasts.size());
    for (size_t k = 0; k < h; ++k) {
        for (size_t i = 0; i < forecasts.size(); ++i)
            at[i] = forecasts[i][k];
        std::sort(at.begin(), at.end());
        const size_t c = at.size();
        out[k] = c % 2 ? at[c / 2] : 0.5 * (at[c / 2 - 1] + at[c / 2]);
    }
    return out;
}

// The point forecast of `method` ("auto" or a single model) from the history y.
std::vector<double> point_forecast(const std::vector<double>& y, const detail::series_shape& s,
                                   std::string_view method, int h) {
    if (method != "auto") {
        for (const auto& m : detail::models())
            if (m.name == method) return m.fn(y, s, h);
    }
    std::vector<std::vector<double>> forecasts;
    for (auto name : auto_members)
        for (const auto& m : detail::models())
            if (m.name == name) forecasts.push_back(m.fn(y, s, h));
    return median_of(forecasts, static_cast<size_t>(h));
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
    std::vector<std::string_view> names = {"auto"};
    for (const auto& m : detail::models())
        names.push_back(m.name);
    return names;
}

result<result_t> forecast(std::span<const double> history, const options& o) {
    if (o.horizon < 1)
        return make_error("invalid_argument", "horizon must be at least 1 step", "horizon");
    auto names = method_names();
    if (std::find(names.begin(), names.end(), o.method) == names.end()) {
        std::string known;
        for (auto n : names)
            known += (known.empty() ? "" : ", ") + std::string(n);
        return make_error("invalid_argument",
                          "unknown method '" + std::string(o.method) + "' (" + known + ")",
                          "method");
    }
    const size_t finite = static_cast<size_t>(
        std::count_if(history.begin(), history.end(), [](double v) { return std::isfinite(v); }));
    if (finite < 3)
        return make_error(
            "invalid_argument",
            "a forecast needs at least 3 values in the history, got " + std::to_string(finite),
            "history");
    const std::vector<double> y = detail::filled(history);
    const size_t n = y.size();
    const auto shape = detail::shape_of(y, o.season, o.step_ns);
    const size_t h = static_cast<size_t>(o.horizon);

    result_t r;
    r.season = shape.season;
    r.history = static_cast<int>(n);
    if (o.method == "auto") {
        r.model = "median(";
        for (auto name : auto_members)
            r.model += std::string(name) +
                       (name == auto_members[std::size(auto_members) - 1] ? ")" : ", ");
    } else {
        r.model = std::string(o.method);
    }
    r.point = point_forecast(y, shape, o.method, o.horizon);

    // Rolling origins in the last part of the history, one horizon apart (up to four, each
    // keeping at least half of the history): the same method's errors at every step ahead.
    struct errors_t {
        std::vector<double> abs_sum;
        std::vector<int> count;
        double total_abs = 0, total_smape = 0;
        int total = 0;
    };
    auto measure = [&](std::string_view method) {
        errors_t m;
        m.abs_sum.assign(h, 0.0);
        m.count.assign(h, 0);
        for (size_t j = 1; j <= 4; ++j) {
            const size_t back = j * h;
            if (back + 3 > n || n - back < n / 2 || n - back < 3) break;
            const size_t origin = n - back;
            const std::vector<double> past(y.begin(),
                                           y.begin() + static_cast<std::ptrdiff_t>(origin));
            const auto past_shape = detail::shape_of(past, shape.season, o.step_ns);
            const auto f = point_forecast(past, past_shape, method, o.horizon);
            for (size_t k = 0; k < h && origin + k < n; ++k) {
                const double e = std::abs(y[origin + k] - f[k]);
                m.abs_sum[k] += e;
                ++m.count[k];
                m.total_abs += e;
                const double d = std::abs(y[origin + k]) + std::abs(f[k]);
                m.total_smape += d > 0 ? 200 * e / d : 0;
                ++m.total;
            }
        }
        return m;
    };
    errors_t measured = measure(o.method);
    // "auto" falls back to seasonal naive on a series whose own history says that repeating
    // the last season is clearly better (its rolling-origin error below 0.8 of the
    // autoregressions'): a pattern that repeats exactly, or one the regressions misread.
    if (o.method == "auto" && measured.total > 0) {
        errors_t naive = measure("snaive");
        if (naive.total_abs < naive_preferred_below * measured.total_abs) {
            measured = std::move(naive);
            r.point = point_forecast(y, shape, "snaive", o.horizon);
            r.model = "snaive";
        }
    }
    const auto& abs_sum = measured.abs_sum;
    const auto& count = measured.count;
    const double total_abs = measured.total_abs, total_smape = measured.total_smape;
    const int total = measured.total;
    // With no origin (a short history): the spread of one-step changes, growing with sqrt(k).
    std::vector<double> scale(h, 0.0);
    if (total == 0) {
        double diff = 0;
        for (size_t t = 1; t < n; ++t)
            diff += std::abs(y[t] - y[t - 1]);
        diff /= static_cast<double>(n - 1);
        for (size_t k = 0; k < h; ++k)
            scale[k] = diff * std::sqrt(static_cast<double>(k + 1));
    } else {
        r.mae = total_abs / total;
        r.smape = total_smape / total;
        // Each step's mean absolute error, smoothed over its neighbours (a few origins alone
        // are noisy), then never narrower than an earlier step: uncertainty grows with time.
        const size_t half = 3;
        for (size_t k = 0; k < h; ++k) {
            double s = 0;
            int c = 0;
            for (size_t i = k > half ? k - half : 0; i <= k + half && i < h; ++i)
                s += abs_sum[i], c += count[i];
            scale[k] = c ? s / c : (k ? scale[k - 1] : r.mae);
            if (k > 0) scale[k] = std::max(scale[k], scale[k - 1]);
        }
    }
    for (size_t k = 0; k < h; ++k) {
        const double p = r.point[k];
        r.lower50.push_back(p - width50 * scale[k]);
        r.upper50.push_back(p + width50 * scale[k]);
        r.lower95.push_back(p - width95 * scale[k]);
        r.upper95.push_back(p + width95 * scale[k]);
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
