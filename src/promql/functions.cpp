// The functions over windows of samples, with Prometheus' semantics (promql/functions.go).
#include "promql/functions.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace clisonix::promql {

namespace {

using vk = value_kind;

const std::vector<function_info>& functions() {
    static const std::vector<function_info> table = {
        {"abs", {vk::instant_vector}, 1, vk::instant_vector},
        {"avg_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"ceil", {vk::instant_vector}, 1, vk::instant_vector},
        {"changes", {vk::range_vector}, 1, vk::instant_vector},
        {"clamp", {vk::instant_vector, vk::scalar, vk::scalar}, 3, vk::instant_vector},
        {"clamp_max", {vk::instant_vector, vk::scalar}, 2, vk::instant_vector},
        {"clamp_min", {vk::instant_vector, vk::scalar}, 2, vk::instant_vector},
        {"count_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"delta", {vk::range_vector}, 1, vk::instant_vector},
        {"exp", {vk::instant_vector}, 1, vk::instant_vector},
        {"floor", {vk::instant_vector}, 1, vk::instant_vector},
        {"idelta", {vk::range_vector}, 1, vk::instant_vector},
        {"increase", {vk::range_vector}, 1, vk::instant_vector},
        {"irate", {vk::range_vector}, 1, vk::instant_vector},
        {"last_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"ln", {vk::instant_vector}, 1, vk::instant_vector},
        {"log10", {vk::instant_vector}, 1, vk::instant_vector},
        {"log2", {vk::instant_vector}, 1, vk::instant_vector},
        {"max_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"min_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"present_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"quantile_over_time", {vk::scalar, vk::range_vector}, 2, vk::instant_vector},
        {"rate", {vk::range_vector}, 1, vk::instant_vector},
        {"resets", {vk::range_vector}, 1, vk::instant_vector},
        {"round", {vk::instant_vector, vk::scalar}, 1, vk::instant_vector},
        {"scalar", {vk::instant_vector}, 1, vk::scalar},
        {"sgn", {vk::instant_vector}, 1, vk::instant_vector},
        {"sqrt", {vk::instant_vector}, 1, vk::instant_vector},
        {"stddev_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"stdvar_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"sum_over_time", {vk::range_vector}, 1, vk::instant_vector},
        {"time", {}, 0, vk::scalar},
        {"vector", {vk::scalar}, 1, vk::instant_vector},
    };
    return table;
}

// Kahan-compensated sum, as Prometheus sums windows.
struct kahan {
    double sum = 0, c = 0;
    void add(double v) {
        double t = sum + v;
        if (std::abs(sum) >= std::abs(v))
            c += (sum - t) + v;
        else
            c += (v - t) + sum;
        sum = t;
    }
    double value() const { return sum + c; }
};

// Prometheus' extrapolatedRate (promql/functions.go), for rate, increase and delta: the
// change over the window, counter resets added back for counters, extrapolated to the
// window's edges when the first/last sample is within 110 % of the average sample spacing
// of them (else by half a spacing), never below a counter's zero point.
bool extrapolated_rate(const window& w, bool is_counter, bool is_rate, double& out) {
    size_t n = w.values.size();
    if (n < 2) return false;
    double result = w.values[n - 1] - w.values[0];
    if (is_counter)
        for (size_t i = 1; i < n; ++i)
            if (w.values[i] < w.values[i - 1]) result += w.values[i - 1];
    const double first_t = static_cast<double>(w.ts[0]), last_t = static_cast<double>(w.ts[n - 1]);
    double to_start = (first_t - static_cast<double>(w.range_start)) / 1000;
    double to_end = (static_cast<double>(w.range_end) - last_t) / 1000;
    const double sampled = (last_t - first_t) / 1000;
    const double average = sampled / static_cast<double>(n - 1);
    const double threshold = average * 1.1;
    if (to_start >= threshold) to_start = average / 2;
    if (is_counter) {
        double to_zero = to_start;
        if (result > 0 && w.values[0] >= 0) to_zero = sampled * (w.values[0] / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    if (to_end >= threshold) to_end = average / 2;
    double factor = 1;
    if (sampled != 0) factor = (sampled + to_start + to_end) / sampled;
    if (is_rate) factor /= static_cast<double>(w.range_ms) / 1000;
    out = result * factor;
    return true;
}

// irate and idelta: the last two samples.
bool instant_value(const window& w, bool is_rate, double& out) {
    size_t n = w.values.size();
    if (n < 2) return false;
    double last = w.values[n - 1], previous = w.values[n - 2];
    int64_t interval = w.ts[n - 1] - w.ts[n - 2];
    if (interval == 0) return false;
    out = is_rate && last < previous ? last : last - previous;
    if (is_rate) out /= static_cast<double>(interval) / 1000;
    return true;
}

}  // namespace

const function_info* find_function(std::string_view name) {
    for (const auto& f : functions())
        if (f.name == name) return &f;
    return nullptr;
}

std::string_view supported_function_names() {
    static const std::string names = [] {
        std::string s;
        for (const auto& f : functions()) {
            if (!s.empty()) s += ", ";
            s += f.name;
        }
        return s;
    }();
    return names;
}

bool is_range_function(std::string_view name) {
    const auto* f = find_function(name);
    return f && std::find(f->args.begin(), f->args.end(), vk::range_vector) != f->args.end();
}

double quantile(double q, std::vector<double>& values) {
    if (values.empty() || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
    if (q < 0) return -std::numeric_limits<double>::infinity();
    if (q > 1) return std::numeric_limits<double>::infinity();
    std::sort(values.begin(), values.end());
    double n = static_cast<double>(values.size());
    double rank = q * (n - 1);
    double lower = std::max(0.0, std::floor(rank));
    double upper = std::min(n - 1, lower + 1);
    double weight = rank - std::floor(rank);
    return values[static_cast<size_t>(lower)] * (1 - weight) +
           values[static_cast<size_t>(upper)] * weight;
}

bool apply_range_function(std::string_view name, const window& w, double param, double& out) {
    const size_t n = w.values.size();
    if (name == "rate") return extrapolated_rate(w, true, true, out);
    if (name == "increase") return extrapolated_rate(w, true, false, out);
    if (name == "delta") return extrapolated_rate(w, false, false, out);
    if (name == "irate") return instant_value(w, true, out);
    if (name == "idelta") return instant_value(w, false, out);
    if (n == 0) return false;
    if (name == "count_over_time") {
        out = static_cast<double>(n);
    } else if (name == "present_over_time") {
        out = 1;
    } else if (name == "last_over_time") {
        out = w.values[n - 1];
    } else if (name == "sum_over_time" || name == "avg_over_time") {
        kahan k;
        for (double v : w.values)
            k.add(v);
        out = name == "sum_over_time" ? k.value() : k.value() / static_cast<double>(n);
    } else if (name == "min_over_time" || name == "max_over_time") {
        bool is_max = name == "max_over_time";
        out = w.values[0];
        for (double v : w.values.subspan(1))
            if ((is_max ? v > out : v < out) || std::isnan(out)) out = v;
    } else if (name == "stddev_over_time" || name == "stdvar_over_time") {
        // Welford's running mean and squared deviations, as Prometheus.
        double mean = 0, m2 = 0, count = 0;
        for (double v : w.values) {
            count += 1;
            double delta = v - mean;
            mean += delta / count;
            m2 += delta * (v - mean);
        }
        double variance = m2 / count;
        out = name == "stdvar_over_time" ? variance : std::sqrt(variance);
    } else if (name == "quantile_over_time") {
        std::vector<double> values(w.values.begin(), w.values.end());
        out = quantile(param, values);
    } else if (name == "changes" || name == "resets") {
        bool resets = name == "resets";
        double count = 0;
        for (size_t i = 1; i < n; ++i) {
            double prev = w.values[i - 1], cur = w.values[i];
            if (resets ? cur < prev : (cur != prev && !(std::isnan(cur) && std::isnan(prev))))
                count += 1;
        }
        out = count;
    } else {
        return false;
    }
    return true;
}

}  // namespace clisonix::promql
