// Machine health: a first, simple model of normal (each metric standardised by its baseline
// mean and spread; the score grows with the mean squared standardised deviation). The
// interface is in analytics.h; the model behind it is chosen by measurement (docs/health.md).
#include <algorithm>
#include <cmath>

#include "analytics/analytics.h"

namespace clisonix::analytics {

struct health_model::state {
    std::vector<double> mean, spread;
};

namespace {
constexpr size_t min_rows = 30;
}

size_t health_model::min_baseline_rows() {
    return min_rows;
}

health_model::health_model(std::unique_ptr<state> s) : _s(std::move(s)) {}
health_model::health_model(health_model&&) noexcept = default;
health_model& health_model::operator=(health_model&&) noexcept = default;
health_model::~health_model() = default;

result<health_model> health_model::train(std::span<const std::vector<double>> rows) {
    if (rows.size() < min_rows)
        return make_error("invalid_argument", "the baseline has " + std::to_string(rows.size()) +
                                                  " rows; health needs at least " +
                                                  std::to_string(min_rows));
    const size_t width = rows.front().size();
    auto s = std::make_unique<state>();
    s->mean.assign(width, 0);
    s->spread.assign(width, 0);
    std::vector<size_t> n(width, 0);
    for (size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].size() != width)
            return make_error("invalid_argument", "baseline row " + std::to_string(r) + " has " +
                                                      std::to_string(rows[r].size()) +
                                                      " values; the first has " +
                                                      std::to_string(width));
        for (size_t m = 0; m < width; ++m)
            if (std::isfinite(rows[r][m])) {
                s->mean[m] += rows[r][m];
                ++n[m];
            }
    }
    for (size_t m = 0; m < width; ++m)
        s->mean[m] = n[m] ? s->mean[m] / double(n[m]) : 0;
    for (const auto& row : rows)
        for (size_t m = 0; m < width; ++m)
            if (std::isfinite(row[m]))
                s->spread[m] += (row[m] - s->mean[m]) * (row[m] - s->mean[m]);
    for (size_t m = 0; m < width; ++m) {
        double sd = n[m] > 1 ? std::sqrt(s->spread[m] / double(n[m] - 1)) : 0;
        s->spread[m] = std::max(sd, 1e-9 + 1e-6 * std::abs(s->mean[m]));
    }
    return health_model(std::move(s));
}

health_model::assessment health_model::update(std::span<const double> row) {
    assessment a;
    const size_t width = _s->mean.size();
    a.contributions.assign(width, 0);
    double sum = 0;
    size_t used = 0;
    for (size_t m = 0; m < width && m < row.size(); ++m) {
        if (!std::isfinite(row[m])) continue;
        double z = (row[m] - _s->mean[m]) / _s->spread[m];
        a.contributions[m] = z * z;
        sum += z * z;
        ++used;
    }
    if (!used) return a;
    // Mean squared z of 9 (3 sigma on average) scores 0.5.
    double d = sum / double(used);
    a.score = d / (d + 9.0);
    for (auto& c : a.contributions)
        c = sum > 0 ? a.score * c / sum : 0;
    return a;
}

size_t health_model::width() const {
    return _s->mean.size();
}

size_t health_model::state_bytes() const {
    return sizeof(*this) + sizeof(state) + 2 * _s->mean.capacity() * sizeof(double);
}

}  // namespace clisonix::analytics
