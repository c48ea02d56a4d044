#include "analytics/detectors.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "analytics/analytics.h"

namespace clisonix::analytics {

namespace detail {

namespace {

// Points a detector learns from before it may score anything.
constexpr uint32_t warmup_points = 128;
// A surprise at or above this level is an alert; its score is 0.5.
constexpr double alert_level = 1.5;
// Points over which the usual extreme of a statistic is remembered.
constexpr double tail_span = 512;
// Points after an alert during which scores are damped.
constexpr uint32_t quiet_points = 128;
constexpr double quiet_damping = 0.1;

constexpr int64_t ns_per_day = 86'400'000'000'000;

}  // namespace

void ew_stats::add(double x, double span) {
    ++n;
    const double a = std::max(1.0 / n, 1.0 / span);
    const double d = x - mean;
    mean += a * d;
    dev += a * (std::abs(d) - dev);
}

double tail_norm::norm(double raw) {
    // The first points only set the scale: early statistics are erratic.
    ++_n;
    if (_n <= warmup_points / 2) return 0.0;
    if (_n <= warmup_points) {
        _max = std::max(_max, raw);
        return 0.0;
    }
    const double z = raw / (_max + 1e-9);
    _max = std::max(std::min(raw, 2 * _max), _max * (1.0 - 1.0 / tail_span));
    return z;
}

double alert_shaper::shape(double z) {
    ++_n;
    if (!(z > 0) || _n <= warmup_points) return 0.0;
    double s = z / (z + alert_level);
    if (_quiet > 0) {
        --_quiet;
        return s * quiet_damping;
    }
    if (z >= alert_level) _quiet = quiet_points;
    return s;
}

double level_core::surprise(int64_t, double x) {
    const double scale = _long.dev + 1e-9 * (std::abs(_long.mean) + 1e-9);
    const bool ready = _long.n > 8;
    _short = _long.n == 0 ? x : _short + 0.125 * (x - _short);
    const double raw = ready ? std::max(std::abs(x - _long.mean) / (3 * scale),
                                        std::abs(_short - _long.mean) / scale)
                             : 0.0;
    _long.add(x, 1024);
    return _tail.norm(raw);
}

double seasonal_core::surprise(int64_t ts, double x) {
    if (_n++ == 0) _first_ts = ts;
    int64_t tod = ts % ns_per_day;
    if (tod < 0) tod += ns_per_day;
    const auto slot = static_cast<size_t>(tod / (ns_per_day / slots));
    const bool seen = _visits[slot] > 0;
    const double resid = seen ? x - _profile[slot] : 0.0;
    // Each slot's usual residual, so that the slots where the daily pattern steps up or down
    // (large residuals every day) are not mistaken for anomalies.
    const double usual = _spread[slot] + 0.25 * _resid.dev + 1e-9;
    const double a = 1.0 / std::min<double>(_visits[slot] + 1, 16);
    _profile[slot] = static_cast<float>(seen ? _profile[slot] + a * resid : x);
    if (seen) _spread[slot] += static_cast<float>(a * (std::abs(resid) - _spread[slot]));
    if (_visits[slot] < UINT16_MAX) ++_visits[slot];
    if (!seen || ts - _first_ts < ns_per_day) return 0.0;
    _resid.add(resid, 1024);
    _smooth += 0.125 * (resid / usual - _smooth);
    return _tail.norm(std::abs(_smooth));
}

double novelty_core::surprise(int64_t, double x) {
    ++_n;
    if (_n == 1) {
        _lo = _hi = x;
    }
    const double range = _hi - _lo;
    const double u = range > 0 ? (x - _lo) / range : 0.5;
    _lo = std::min(_lo, x);
    _hi = std::max(_hi, x);
    constexpr std::array<double, 5> rates = {1.0, 0.5, 0.25, 0.125, 0.03125};
    if (_n == 1) {
        _features.fill(0.0);
        for (size_t i = 0; i < rates.size(); ++i)
            _features[i] = u;
        _prev_u = u;
    }
    for (size_t i = 0; i < rates.size(); ++i)
        _features[i] += rates[i] * (u - _features[i]);
    const double step = std::abs(u - _prev_u);
    _prev_u = u;
    _features[5] += 0.25 * (step - _features[5]);
    _features[6] += 0.03125 * (step - _features[6]);
    _features[7] = std::clamp(u, 0.0, 1.0);

    double best = 1e9;
    int best_i = -1;
    for (int p = 0; p < _used; ++p) {
        double d = 0;
        for (int k = 0; k < dims; ++k)
            d += std::abs(_features[k] - _memory[p].center[k]);
        d /= dims;
        if (d < best) {
            best = d;
            best_i = p;
        }
    }
    const double typical = _dist.mean + 0.005;
    if (best_i < 0 || best > 2 * typical) {
        int slot = _used;
        if (_used < prototypes) {
            ++_used;
        } else {
            slot = 0;
            for (int p = 1; p < prototypes; ++p) {
                if (_memory[p].last < _memory[slot].last) slot = p;
            }
        }
        for (int k = 0; k < dims; ++k)
            _memory[slot].center[k] = static_cast<float>(_features[k]);
        _memory[slot].hits = 1;
        _memory[slot].last = _n;
    } else {
        auto& m = _memory[best_i];
        m.hits = std::min<uint32_t>(m.hits + 1, 64);
        m.last = _n;
        for (int k = 0; k < dims; ++k) {
            m.center[k] += static_cast<float>((_features[k] - m.center[k]) / m.hits);
        }
    }
    if (best_i < 0) best = 0;
    _dist.add(std::min(best, 4 * typical), 512);
    return _tail.norm(best / typical);
}

namespace {
// Context detector constants (see context_detector_state).
constexpr int context_downsample = 2;
constexpr double context_levels = 32;
constexpr double context_min_vigilance = 0.02;
constexpr double context_vigilance_factor = 2.0;
constexpr uint32_t context_stable = 24;
constexpr uint32_t context_quiet = 64;
constexpr double context_score_half = 4.0;  // excess distance / usual distance scoring 0.75
}  // namespace

double context_detector_state::update(double x) {
    ++_n;
    if (_n == 1) _lo = _hi = _average = x;
    if (_block == 0) {
        _block_min = _block_max = x;
        _block_sum = 0;
    }
    _block_min = std::min(_block_min, x);
    _block_max = std::max(_block_max, x);
    _block_sum += x;
    if (++_block < context_downsample) return 0.0;
    const double mean = _block_sum / _block;
    _block = 0;
    // Keep whichever extreme is farther from the recent average, so that a one-point spike
    // survives the downsampling.
    _average = 0.5 * (_average + mean);
    const double v = std::abs(_block_max - _average) >= std::abs(_block_min - _average)
                         ? _block_max
                         : _block_min;
    _lo = std::min(_lo, v);
    _hi = std::max(_hi, v);
    const double range = _hi - _lo;
    const double u =
        range > 0 ? std::round((v - _lo) / range * context_levels) / context_levels : 0.5;
    std::copy(_context.begin() + 1, _context.end(), _context.begin());
    _context.back() = static_cast<float>(u);
    ++_step;
    if (_filled < width) {
        ++_filled;
        return 0.0;
    }

    double best = 1e9;
    int best_i = -1;
    for (int p = 0; p < _used; ++p) {
        double d = 0;
        for (int k = 0; k < width; ++k)
            d += std::abs(_context[k] - _memory[p].center[k]);
        if (d < best) {
            best = d;
            best_i = p;
        }
    }
    best /= width;
    const double vigilance = std::max(context_min_vigilance, context_vigilance_factor * _usual);
    const bool novel = best_i < 0 || best > vigilance;
    if (novel) {
        int slot = _used;
        if (_used < prototypes) {
            ++_used;
        } else {
            // The memory is full: the prototype unused the longest makes room.
            slot = 0;
            for (int p = 1; p < prototypes; ++p) {
                if (_memory[p].last < _memory[slot].last) slot = p;
            }
        }
        _memory[slot] = {_context, _step, 1};
    } else {
        auto& m = _memory[best_i];
        m.hits = std::min<uint32_t>(m.hits + 1, 32);
        m.last = _step;
        for (int k = 0; k < width; ++k)
            m.center[k] += (_context[k] - m.center[k]) / static_cast<float>(m.hits);
    }
    if (best_i >= 0) {
        ++_distances;
        _usual += (std::min(best, 4 * vigilance) - _usual) / std::min<uint32_t>(_distances, 256);
    }
    double score = 0.0;
    const bool quiet = _alarmed && _step - _last_alarm <= context_quiet;
    const bool settled = _step - _last_new >= context_stable;
    if (novel && best_i >= 0 && _n > warmup_points && !quiet && settled) {
        // An alarm scores at least 0.5 (the alert level of every detector here), more the
        // farther the context is beyond the vigilance, in usual distances.
        const double z = std::max(0.0, (best - vigilance) / std::max(_usual, 1e-3));
        score = 0.5 + 0.5 * z / (z + context_score_half);
        _alarmed = true;
        _last_alarm = _step;
    }
    if (novel) _last_new = _step;
    return score;
}

double ensemble_core::surprise(int64_t ts, double x) {
    const double a = _level.surprise(ts, x);
    const double b = _seasonal.surprise(ts, x);
    const double c = _novelty.surprise(ts, x);
    return std::max({a, b, c});
}

namespace {

template <typename Core>
class shaped_detector final : public detector {
public:
    explicit shaped_detector(std::string_view name) : _name(name) {}
    double update(int64_t ts_ns, double value) override {
        if (!std::isfinite(value)) return 0.0;
        return _shaper.shape(_core.surprise(ts_ns, value));
    }
    size_t state_bytes() const override { return sizeof(*this); }
    std::string_view name() const override { return _name; }

private:
    Core _core;
    alert_shaper _shaper;
    std::string_view _name;
};

// The context detector shapes its own output (alarms at onsets only).
class context_detector final : public detector {
public:
    explicit context_detector(std::string_view name) : _name(name) {}
    double update(int64_t, double value) override {
        if (!std::isfinite(value)) return 0.0;
        return _state.update(value);
    }
    size_t state_bytes() const override { return sizeof(*this); }
    std::string_view name() const override { return _name; }

private:
    context_detector_state _state;
    std::string_view _name;
};

// ARTime scores 0 except at an alarm.
class artime_detector final : public detector {
public:
    explicit artime_detector(std::string_view name) : _name(name) {}
    double update(int64_t, double value) override {
        if (!std::isfinite(value)) return 0.0;
        return _state.update(value);
    }
    size_t state_bytes() const override {
        return sizeof(*this) - sizeof(_state) + _state.state_bytes();
    }
    std::string_view name() const override { return _name; }

private:
    artime_state _state;
    std::string_view _name;
};

}  // namespace

}  // namespace detail

std::vector<std::string_view> detector_names() {
    return {"ensemble", "artime", "context", "max3", "level", "seasonal", "novelty"};
}

result<std::unique_ptr<detector>> make_detector(std::string_view name) {
    using namespace detail;
    std::unique_ptr<detector> d;
    // ARTime (streaming: fixed learning period, range learned in it) scores best on NAB of
    // all detectors here (docs/analytics.md), so it is the default; context was the previous
    // default, max3 the one before.
    if (name == "ensemble") d = std::make_unique<artime_detector>("ensemble");
    if (name == "artime") d = std::make_unique<artime_detector>("artime");
    if (name == "context") d = std::make_unique<context_detector>("context");
    if (name == "max3") d = std::make_unique<shaped_detector<ensemble_core>>("max3");
    if (name == "level") d = std::make_unique<shaped_detector<level_core>>("level");
    if (name == "seasonal") d = std::make_unique<shaped_detector<seasonal_core>>("seasonal");
    if (name == "novelty") d = std::make_unique<shaped_detector<novelty_core>>("novelty");
    if (d) return d;
    std::string known;
    for (auto n : detector_names())
        known += (known.empty() ? "" : ", ") + std::string(n);
    return make_error("invalid_argument",
                      "unknown detector '" + std::string(name) + "' (known: " + known + ")",
                      "detector");
}

}  // namespace clisonix::analytics
