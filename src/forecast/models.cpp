// The single forecasting models (see models.h): seasonal naive (day and week), M4's Naive2,
// exponential smoothing (SES, damped trend) and Theta on the seasonally adjusted series, a
// two-season decomposition, and a local autoregression on seasonal lags fitted by ridge
// regression on the series' own history.
#include "forecast/models.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace clisonix::forecast::detail {
namespace {

double mean_of(const double* first, const double* last) {
    return first == last ? 0
                         : std::accumulate(first, last, 0.0) / static_cast<double>(last - first);
}

// Autocorrelation at `lag` (0 when the series is flat).
std::vector<double> acf(const std::vector<double>& y, int max_lag) {
    const size_t n = y.size();
    const double mean = mean_of(y.data(), y.data() + n);
    double var = 0;
    for (double v : y)
        var += (v - mean) * (v - mean);
    std::vector<double> r(static_cast<size_t>(max_lag) + 1, 0.0);
    if (var <= 0) return r;
    for (int lag = 1; lag <= max_lag && static_cast<size_t>(lag) < n; ++lag) {
        double c = 0;
        for (size_t i = static_cast<size_t>(lag); i < n; ++i)
            c += (y[i] - mean) * (y[i - static_cast<size_t>(lag)] - mean);
        r[static_cast<size_t>(lag)] = c / var;
    }
    return r;
}

// Classical decomposition's seasonal indices: index[t % m] belongs to y[t]. Built from the
// last `window` values (0: all) as the mean ratio (or difference) of the series to its
// centred moving average at each position of the period; ratios when every value is > 0.
struct seasonal_indices {
    std::vector<double> index;
    bool multiplicative = true;

    double adjust(double v, size_t t) const {
        const double s = index[t % index.size()];
        return multiplicative ? v / s : v - s;
    }
    double restore(double v, size_t t) const {
        const double s = index[t % index.size()];
        return multiplicative ? v * s : v + s;
    }
};

seasonal_indices classical(const std::vector<double>& y, int m, size_t window) {
    seasonal_indices out;
    const size_t n = y.size();
    const size_t p = static_cast<size_t>(std::max(m, 1));
    out.multiplicative = std::all_of(y.begin(), y.end(), [](double v) { return v > 0; });
    out.index.assign(p, out.multiplicative ? 1.0 : 0.0);
    if (p < 2 || n < 2 * p) return out;
    const size_t start = window > 0 && window < n ? n - window : 0;
    std::vector<double> sum(p, 0.0);
    std::vector<int> count(p, 0);
    const size_t half = p / 2;
    // A running sum gives each centred average in O(1): for an even period the 2×m average
    // (half weight on the two ends), for an odd one the plain m average.
    const size_t t0 = std::max(start, half);
    if (t0 + half >= n) return out;
    double run = 0;  // sum of y[t - half .. t + half - 1] (even) or y[t - half .. t + half] (odd)
    for (size_t i = t0 - half; i < t0 - half + p; ++i)
        run += y[i];
    for (size_t t = t0; t + half < n; ++t) {
        if (t > t0) run += y[t - half + p - 1] - y[t - half - 1];
        const double cma =
            p % 2 ? run / static_cast<double>(p)
                  : (run - 0.5 * y[t - half] + 0.5 * y[t + half]) / static_cast<double>(p);
        if (out.multiplicative && cma <= 0) continue;
        sum[t % p] += out.multiplicative ? y[t] / cma : y[t] - cma;
        ++count[t % p];
    }
    double total = 0;
    for (size_t i = 0; i < p; ++i) {
        out.index[i] = count[i] ? sum[i] / count[i] : (out.multiplicative ? 1.0 : 0.0);
        total += out.index[i];
    }
    const double norm = total / static_cast<double>(p);
    for (double& v : out.index)
        v = out.multiplicative ? (norm > 0 ? v / norm : 1.0) : v - norm;
    return out;
}

// Whether the lag-m autocorrelation is significant at 90 % (M4's seasonality test).
bool seasonal_test(const std::vector<double>& y, int m) {
    const size_t n = y.size();
    if (m < 2 || n < 3 * static_cast<size_t>(m)) return false;
    auto r = acf(y, m);
    double s = 0;
    for (int k = 1; k < m; ++k)
        s += r[static_cast<size_t>(k)] * r[static_cast<size_t>(k)];
    const double limit = 1.645 * std::sqrt((1 + 2 * s) / static_cast<double>(n));
    return std::abs(r[static_cast<size_t>(m)]) > limit;
}

// ---- smoothing on an adjusted series -----------------------------------------------------

struct ses_fit {
    double level = 0;
    double alpha = 0.5;
};

ses_fit fit_ses(const std::vector<double>& x) {
    ses_fit best;
    double best_sse = INFINITY;
    for (double a : {0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0}) {
        double l = x[0], sse = 0;
        for (size_t t = 1; t < x.size(); ++t) {
            const double e = x[t] - l;
            sse += e * e;
            l += a * e;
        }
        if (sse < best_sse) best_sse = sse, best = {l, a};
    }
    return best;
}

// Additive damped trend (Gardner): the grid minimising the one-step squared error.
std::vector<double> damped_trend(const std::vector<double>& x, int h) {
    double best_sse = INFINITY, best_l = x.back(), best_b = 0, best_phi = 0.9;
    const size_t n = x.size();
    for (double a : {0.1, 0.3, 0.5, 0.8})
        for (double b : {0.01, 0.05, 0.2})
            for (double phi : {0.8, 0.9, 0.98}) {
                double l = x[0], tr = n > 1 ? 0.0 : 0.0, sse = 0;
                for (size_t t = 1; t < n; ++t) {
                    const double f = l + phi * tr;
                    const double e = x[t] - f;
                    sse += e * e;
                    const double nl = f + a * e;
                    tr = phi * tr + a * b * e;
                    l = nl;
                }
                if (sse < best_sse) best_sse = sse, best_l = l, best_b = tr, best_phi = phi;
            }
    std::vector<double> f(static_cast<size_t>(h));
    double damp = 0, p = 1;
    for (int k = 0; k < h; ++k) {
        p *= best_phi;
        damp += p;
        f[static_cast<size_t>(k)] = best_l + damp * best_b;
    }
    return f;
}

std::vector<double> theta_line(const std::vector<double>& x, int h) {
    const size_t n = x.size();
    // Ordinary least squares slope over t = 0..n-1.
    const double tm = (static_cast<double>(n) - 1) / 2, xm = mean_of(x.data(), x.data() + n);
    double sxy = 0, sxx = 0;
    for (size_t t = 0; t < n; ++t) {
        sxy += (static_cast<double>(t) - tm) * (x[t] - xm);
        sxx += (static_cast<double>(t) - tm) * (static_cast<double>(t) - tm);
    }
    const double b0 = sxx > 0 ? sxy / sxx : 0;
    const ses_fit s = fit_ses(x);
    const double a = s.alpha;
    const double tail = std::pow(1 - a, static_cast<double>(n)) / a;
    std::vector<double> f(static_cast<size_t>(h));
    for (int k = 0; k < h; ++k)
        f[static_cast<size_t>(k)] = s.level + 0.5 * b0 * (k + 1 / a - tail);
    return f;
}

// Runs `inner` on the series adjusted by its daily indices (last 8 weeks' worth of data at
// most, so that a changing pattern is followed), then restores the season.
template <class Inner>
std::vector<double> on_adjusted(const std::vector<double>& y, const series_shape& s, int h,
                                Inner inner) {
    const size_t n = y.size();
    if (s.season < 2 || n < 2 * static_cast<size_t>(s.season)) return inner(y, h);
    const auto idx = classical(y, s.season, static_cast<size_t>(s.season) * 56);
    std::vector<double> x(n);
    for (size_t t = 0; t < n; ++t)
        x[t] = idx.adjust(y[t], t);
    auto f = inner(x, h);
    for (size_t k = 0; k < f.size(); ++k)
        f[k] = idx.restore(f[k], n + k);
    return f;
}

// ---- the models --------------------------------------------------------------------------

std::vector<double> repeat_last(const std::vector<double>& y, size_t m, int h) {
    const size_t n = y.size();
    m = std::clamp<size_t>(m, 1, n);
    std::vector<double> f(static_cast<size_t>(h));
    for (size_t k = 0; k < f.size(); ++k)
        f[k] = y[n - m + (k % m)];
    return f;
}

std::vector<double> snaive(const std::vector<double>& y, const series_shape& s, int h) {
    return repeat_last(y, static_cast<size_t>(s.season), h);
}

std::vector<double> snaive_week(const std::vector<double>& y, const series_shape& s, int h) {
    return repeat_last(y, static_cast<size_t>(s.week > 0 ? s.week : s.season), h);
}

std::vector<double> naive2_model(const std::vector<double>& y, const series_shape& s, int h) {
    return naive2(y, s.season, h);
}

std::vector<double> ses(const std::vector<double>& y, const series_shape& s, int h) {
    return on_adjusted(y, s, h, [](const std::vector<double>& x, int hh) {
        return std::vector<double>(static_cast<size_t>(hh), fit_ses(x).level);
    });
}

std::vector<double> theta(const std::vector<double>& y, const series_shape& s, int h) {
    return on_adjusted(y, s, h, theta_line);
}

std::vector<double> ets_damped(const std::vector<double>& y, const series_shape& s, int h) {
    return on_adjusted(y, s, h, damped_trend);
}

// Two seasons: the daily indices of the last 8 weeks, then weekly indices of what remains
// (shrunk towards none by how few weeks back them), then a damped trend on the rest.
std::vector<double> decomp_week(const std::vector<double>& y, const series_shape& s, int h) {
    const size_t n = y.size();
    if (s.week == 0) return ets_damped(y, s, h);
    const auto day = classical(y, s.season, static_cast<size_t>(s.season) * 56);
    std::vector<double> x(n);
    for (size_t t = 0; t < n; ++t)
        x[t] = day.adjust(y[t], t);
    auto week = classical(x, s.week, static_cast<size_t>(s.week) * 8);
    const double weeks = std::min<double>(8, static_cast<double>(n) / s.week);
    const double keep = weeks / (weeks + 1);
    for (double& v : week.index)
        v = week.multiplicative ? 1 + keep * (v - 1) : keep * v;
    for (size_t t = 0; t < n; ++t)
        x[t] = week.adjust(x[t], t);
    auto f = damped_trend(x, h);
    for (size_t k = 0; k < f.size(); ++k)
        f[k] = day.restore(week.restore(f[k], n + k), n + k);
    return f;
}

// Solves (A) w = b for a symmetric positive definite A (row-major, d×d) by Cholesky.
bool solve_spd(std::vector<double>& a, std::vector<double>& b, size_t d) {
    for (size_t j = 0; j < d; ++j) {
        double s = a[j * d + j];
        for (size_t k = 0; k < j; ++k)
            s -= a[j * d + k] * a[j * d + k];
        if (s <= 0) return false;
        const double l = std::sqrt(s);
        a[j * d + j] = l;
        for (size_t i = j + 1; i < d; ++i) {
            double t = a[i * d + j];
            for (size_t k = 0; k < j; ++k)
                t -= a[i * d + k] * a[j * d + k];
            a[i * d + j] = t / l;
        }
    }
    for (size_t i = 0; i < d; ++i) {
        double t = b[i];
        for (size_t k = 0; k < i; ++k)
            t -= a[i * d + k] * b[k];
        b[i] = t / a[i * d + i];
    }
    for (size_t i = d; i-- > 0;) {
        double t = b[i];
        for (size_t k = i + 1; k < d; ++k)
            t -= a[k * d + i] * b[k];
        b[i] = t / a[i * d + i];
    }
    return true;
}

// A linear autoregression on the recent lags and the same hours of past days and weeks,
// fitted by ridge regression on the series' own (standardised) history and run recursively
// over the horizon. Falls back to the damped trend when the history is too short.
// One autoregression's design: which lags, how the series is transformed, how much history.
struct ar_design {
    int recent_lags = 3;              // lags 1..recent_lags
    int days = 1;                     // the same hour 1..days periods back
    bool day_neighbours_all = false;  // the hours beside it on every one of those days
    bool week = true;      // the same hour a week back (and beside it), when the history holds it
    bool log = true;       // on the logarithm when every value is > 0 (a multiplicative pattern)
    size_t rows = 1000;    // the most recent rows fitted
    double lambda = 3e-4;  // ridge penalty per row on the standardised lags
};

std::vector<double> autoregression(const std::vector<double>& full, const series_shape& s, int h,
                                   const ar_design& design) {
    // Only the rows fitted and the lags behind them are read: a long history (a 5-minute grid
    // over a year) costs no more than the last few thousand values.
    const size_t longest_lag = std::max<size_t>(
        {static_cast<size_t>(design.recent_lags),
         static_cast<size_t>(design.days) * static_cast<size_t>(std::max(s.season, 1)) + 1,
         s.week > 0 ? static_cast<size_t>(s.week) + 1 : 0});
    const size_t keep = std::min(full.size(), design.rows + longest_lag + 200);
    const std::vector<double> y0(full.end() - static_cast<std::ptrdiff_t>(keep), full.end());
    const bool use_log =
        design.log && std::all_of(y0.begin(), y0.end(), [](double v) { return v > 0; });
    std::vector<double> ylog;
    if (use_log) {
        ylog.resize(y0.size());
        for (size_t t = 0; t < y0.size(); ++t)
            ylog[t] = std::log(y0[t]);
    }
    const std::vector<double>& y = use_log ? ylog : y0;
    const size_t n = y.size();
    const size_t m = static_cast<size_t>(std::max(s.season, 1));
    std::vector<size_t> lags;
    for (int l = 1; l <= design.recent_lags; ++l)
        lags.push_back(static_cast<size_t>(l));
    if (m > 4) {
        for (size_t d = 1; d <= static_cast<size_t>(design.days); ++d) {
            lags.push_back(d * m);
            if (d == 1 || design.day_neighbours_all) {
                lags.push_back(d * m - 1);
                lags.push_back(d * m + 1);
            }
        }
    }
    // The weekly lags need enough rows beyond them to be learned.
    if (design.week && s.week > 0 && n > static_cast<size_t>(s.week) + 200) {
        const size_t w = static_cast<size_t>(s.week);
        for (size_t l : {w - 1, w, w + 1})
            lags.push_back(l);
    }
    std::sort(lags.begin(), lags.end());
    lags.erase(std::unique(lags.begin(), lags.end()), lags.end());
    const size_t max_lag = lags.back();
    if (n < max_lag + 4 * (lags.size() + 1)) return ets_damped(y0, s, h);
    // Standardised by the recent level and spread, so that one penalty fits every scale.
    const size_t recent = std::min(n, std::max<size_t>(4 * m, 168));
    const double mu = mean_of(&y[n - recent], y.data() + n);
    double var = 0;
    for (size_t t = n - recent; t < n; ++t)
        var += (y[t] - mu) * (y[t] - mu);
    const double sd = std::sqrt(var / static_cast<double>(recent));
    if (!(sd > 0)) return repeat_last(y0, m, h);
    std::vector<double> z(n + static_cast<size_t>(h));
    for (size_t t = 0; t < n; ++t)
        z[t] = (y[t] - mu) / sd;
    const size_t d = lags.size() + 1;
    std::vector<double> a(d * d, 0.0), b(d, 0.0), row(d);
    const size_t first = std::max(max_lag, n > design.rows ? n - design.rows : 0);
    size_t rows = 0;
    for (size_t t = first; t < n; ++t, ++rows) {
        row[0] = 1;
        for (size_t j = 0; j < lags.size(); ++j)
            row[j + 1] = z[t - lags[j]];
        for (size_t i = 0; i < d; ++i) {
            b[i] += row[i] * z[t];
            for (size_t j = 0; j <= i; ++j)
                a[i * d + j] += row[i] * row[j];
        }
    }
    for (size_t i = 0; i < d; ++i)
        for (size_t j = 0; j < i; ++j)
            a[j * d + i] = a[i * d + j];
    const double lambda = design.lambda * static_cast<double>(rows);
    for (size_t i = 1; i < d; ++i)
        a[i * d + i] += lambda;
    a[0] += 1e-9 * static_cast<double>(rows);
    if (!solve_spd(a, b, d)) return ets_damped(y0, s, h);
    // The forecasts stay within the history's range widened by half of it: a recursion that
    // drifts off is cut where a person would stop believing it.
    const auto [lo, hi] = std::minmax_element(y0.begin(), y0.end());
    const double range = *hi - *lo;
    std::vector<double> f(static_cast<size_t>(h));
    for (size_t k = 0; k < f.size(); ++k) {
        const size_t t = n + k;
        double v = b[0];
        for (size_t j = 0; j < lags.size(); ++j)
            v += b[j + 1] * z[t - lags[j]];
        z[t] = v;
        double out = mu + sd * v;
        if (use_log) out = std::exp(std::min(out, 700.0));
        f[k] = std::clamp(out, *lo - 0.5 * range, *hi + 0.5 * range);
    }
    return f;
}

// The variants differ in what they look back at; their errors differ, so they combine well.
std::vector<double> ar_ridge(const std::vector<double>& y, const series_shape& s, int h) {
    return autoregression(y, s, h, {});
}
std::vector<double> ar_ridge_2day(const std::vector<double>& y, const series_shape& s, int h) {
    return autoregression(y, s, h, {.days = 2, .day_neighbours_all = true});
}
std::vector<double> ar_ridge_recent(const std::vector<double>& y, const series_shape& s, int h) {
    return autoregression(y, s, h, {.rows = 500});
}
std::vector<double> ar_ridge_linear(const std::vector<double>& y, const series_shape& s, int h) {
    return autoregression(y, s, h, {.log = false});
}
std::vector<double> ar_ridge_day24(const std::vector<double>& y, const series_shape& s, int h) {
    return autoregression(y, s, h, {.recent_lags = 24, .lambda = 3e-3});
}

constexpr std::array<model, 12> all_models = {{
    {"snaive", snaive},
    {"snaive-week", snaive_week},
    {"naive2", naive2_model},
    {"ses", ses},
    {"theta", theta},
    {"ets-damped", ets_damped},
    {"decomp-week", decomp_week},
    {"ar-ridge", ar_ridge},
    {"ar-ridge-2day", ar_ridge_2day},
    {"ar-ridge-recent", ar_ridge_recent},
    {"ar-ridge-linear", ar_ridge_linear},
    {"ar-ridge-day24", ar_ridge_day24},
}};

// A machine's own cycle (a batch, a compressed test day), when no calendar period fits the
// history or repeats in it: the lag of the autocorrelation's highest peak in [4, n/3],
// counted only when it is a clear peak (above 0.5, and at least 0.3 above the lowest value
// before it, so that a trend, whose autocorrelation only decays, has none). Searching many
// lags finds chance peaks, hence the stricter 0.5 than the calendar periods' 0.3. Lags are
// capped at 720 to bound the cost (n × 720).
int cycle_period(const std::vector<double>& y) {
    const size_t n = y.size();
    const size_t max_lag = std::min<size_t>(n / 3, 720);
    if (max_lag < 5) return 1;
    const double mean = mean_of(y.data(), y.data() + n);
    double var = 0;
    for (double v : y)
        var += (v - mean) * (v - mean);
    if (var <= 0) return 1;
    std::vector<double> r(max_lag + 2, 0.0);
    for (size_t lag = 1; lag <= max_lag + 1 && lag < n; ++lag) {
        double c = 0;
        for (size_t i = lag; i < n; ++i)
            c += (y[i] - mean) * (y[i - lag] - mean);
        r[lag] = c / var;
    }
    int best = 1;
    double best_r = 0.5, lowest = r[1];
    for (size_t lag = 2; lag <= max_lag; ++lag) {
        lowest = std::min(lowest, r[lag]);
        const bool peak = r[lag] > r[lag - 1] && r[lag] >= r[lag + 1];
        if (lag >= 4 && peak && r[lag] > best_r && r[lag] - lowest >= 0.3)
            best_r = r[lag], best = static_cast<int>(lag);
    }
    return best;
}

}  // namespace

std::span<const model> models() {
    return all_models;
}

std::vector<double> filled(std::span<const double> history) {
    size_t first = 0;
    while (first < history.size() && !std::isfinite(history[first]))
        ++first;
    std::vector<double> y(history.begin() + static_cast<std::ptrdiff_t>(first), history.end());
    size_t last_known = y.size();
    for (size_t i = 0; i < y.size(); ++i) {
        if (!std::isfinite(y[i])) continue;
        if (last_known != y.size() && last_known + 1 < i) {
            const double a = y[last_known], b = y[i];
            for (size_t k = last_known + 1; k < i; ++k)
                y[k] = a + (b - a) * static_cast<double>(k - last_known) /
                               static_cast<double>(i - last_known);
        }
        last_known = i;
    }
    if (last_known < y.size())
        for (size_t k = last_known + 1; k < y.size(); ++k)
            y[k] = y[last_known];
    return y;
}

int find_season(const std::vector<double>& y, long long step_ns) {
    std::vector<int> candidates;
    if (step_ns > 0) {
        const long long hour = 3'600'000'000'000LL;
        for (long long period : {24 * hour, 8 * hour, 12 * hour})
            if (period % step_ns == 0) candidates.push_back(static_cast<int>(period / step_ns));
    } else {
        candidates = {24, 12, 8};
    }
    const size_t n = y.size();
    int longest = 0;
    for (int c : candidates)
        if (c >= 2 && static_cast<size_t>(c) * 2 <= n) longest = std::max(longest, c);
    if (longest == 0) return cycle_period(y);
    // Among the periods the autocorrelation supports (above 0.3), the one whose own repeat
    // fits best: a smooth daily curve also correlates at 8 and 12 hours, but only a day
    // repeats it.
    // Only the candidates' lags: a 5-minute grid's day is 288 lags, and every one costs n.
    const double mean = mean_of(y.data(), y.data() + n);
    double var = 0;
    for (double v : y)
        var += (v - mean) * (v - mean);
    std::vector<double> r(static_cast<size_t>(longest) + 1, 0.0);
    for (int lag : candidates) {
        if (lag < 2 || static_cast<size_t>(lag) * 2 > n || var <= 0) continue;
        double c = 0;
        for (size_t i = static_cast<size_t>(lag); i < n; ++i)
            c += (y[i] - mean) * (y[i - static_cast<size_t>(lag)] - mean);
        r[static_cast<size_t>(lag)] = c / var;
    }
    int best = 1;
    double best_error = INFINITY;
    for (int lag : candidates) {
        if (lag < 2 || static_cast<size_t>(lag) * 2 > n || r[static_cast<size_t>(lag)] <= 0.3)
            continue;
        double e = 0;
        for (size_t t = static_cast<size_t>(lag); t < n; ++t)
            e += std::abs(y[t] - y[t - static_cast<size_t>(lag)]);
        e /= static_cast<double>(n - static_cast<size_t>(lag));
        if (e < best_error) best_error = e, best = lag;
    }
    // A weekly pattern (weekends, a shift rota) breaks the day's repeat on the days it
    // changes, so that a shorter lag can look better: when the week repeats best, the day is
    // the season (and the week the second one, see shape_of).
    const size_t day = static_cast<size_t>(candidates[0]), week = 7 * day;
    if (day >= 2 && n >= 3 * week && r[day] > 0.3) {
        double e = 0;
        for (size_t t = week; t < n; ++t)
            e += std::abs(y[t] - y[t - week]);
        e /= static_cast<double>(n - week);
        if (e < best_error) best = static_cast<int>(day);
    }
    return best > 1 ? best : cycle_period(y);
}

series_shape shape_of(const std::vector<double>& y, int season, long long step_ns) {
    series_shape s;
    s.season = season > 0 ? season : find_season(y, step_ns);
    s.season = std::clamp(s.season, 1, static_cast<int>(std::max<size_t>(y.size(), 1)));
    // A week of days when three weeks of history show it.
    if (s.season >= 2 && y.size() >= 3 * 7 * static_cast<size_t>(s.season)) s.week = 7 * s.season;
    return s;
}

std::vector<double> naive2(const std::vector<double>& y, int m, int h) {
    const size_t n = y.size();
    if (!seasonal_test(y, m)) return std::vector<double>(static_cast<size_t>(h), y.back());
    auto idx = classical(y, m, 0);
    idx.multiplicative = true;  // M4's Naive2 is multiplicative (its data is positive)
    if (!std::all_of(y.begin(), y.end(), [](double v) { return v > 0; }))
        return std::vector<double>(static_cast<size_t>(h), y.back());
    const double last = idx.adjust(y.back(), n - 1);
    std::vector<double> f(static_cast<size_t>(h));
    for (size_t k = 0; k < f.size(); ++k)
        f[k] = idx.restore(last, n + k);
    return f;
}

}  // namespace clisonix::forecast::detail
