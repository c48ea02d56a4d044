// ARTime, reimplemented (see artime_state in detectors.h). The constants are ARTime's
// published defaults; the comments say what each step is for.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "analytics/detectors.h"

namespace clisonix::analytics::detail {

namespace {

// Feature windows per learning period: the downsampling factor is chosen so that the
// learning period yields about this many windows of levels.
constexpr uint32_t windows_per_learning = 13;
// A block extreme closer to the block mean than this fraction of it is not a spike.
constexpr double spike_fraction = 0.1;
// Levels this close to the running median level are snapped to it: small wobbles around
// the usual value then look alike.
constexpr double median_snap = 0.075;
// Vigilance of the pass that sets the initial vigilance.
constexpr double initial_rho = 0.80;
constexpr double rho_ub_cap = 0.97;
// Share of the gap to the lowest recent similarity by which the lower vigilance rises.
constexpr double rho_lb_rise = 0.19;
// Differences (rho_ub - similarity) above this count as "below the vigilance"; each is
// capped, and half their mean lowers the lower vigilance, at least by half the floor.
constexpr double below_rho_min = 0.05;
constexpr double below_rho_cap = 0.37;
constexpr double below_rho_floor = 0.01;
// A candidate while masked must be this much less similar than the last alarm.
constexpr double below_last_masked = 0.90;
constexpr double below_last_unmasked = 0.70;
// Confidence: weights of the upper and lower vigilance margins and of the energy.
constexpr double confidence_ub = 0.35;
constexpr double confidence_lb = 0.65;
constexpr double confidence_energy = 1.5;
// Calibration (ours, not ARTime's): a new extreme lies beyond the values seen so far by this
// share of their span, and stays "new" for this many downsampled steps (one feature window).
constexpr double extreme_margin = 0.1;
constexpr uint32_t extreme_steps = 8;
// Alarms with a new extreme score in [decision_floor, 1] (above decision_threshold when
// ARTime's confidence exceeds 0.5), the others in [0, decision_floor].
constexpr double decision_floor = 0.6;

// Full multilevel Haar transform of 8 values: [approximation, detail level 3, details
// level 2 (2), details level 1 (4)], orthonormal, detail = (second - first) / sqrt 2.
std::array<double, 8> haar8(const std::array<double, 8>& x) {
    const double r = 1.0 / std::sqrt(2.0);
    std::array<double, 8> out{};
    std::array<double, 4> s1{};
    for (int k = 0; k < 4; ++k) {
        s1[k] = (x[2 * k] + x[2 * k + 1]) * r;
        out[4 + k] = (x[2 * k + 1] - x[2 * k]) * r;
    }
    std::array<double, 2> s2{};
    for (int k = 0; k < 2; ++k) {
        s2[k] = (s1[2 * k] + s1[2 * k + 1]) * r;
        out[2 + k] = (s1[2 * k + 1] - s1[2 * k]) * r;
    }
    out[0] = (s2[0] + s2[1]) * r;
    out[1] = (s2[1] - s2[0]) * r;
    return out;
}

// Shifts x into the window, oldest value out.
template <typename T, size_t n>
void push_back_shift(std::array<T, n>& a, size_t len, T x) {
    std::copy(a.begin() + 1, a.begin() + len, a.begin());
    a[len - 1] = x;
}

}  // namespace

artime_state::fuzzy_art::fuzzy_art(int cap)
    : capacity(cap),
      w(std::make_unique<category[]>(static_cast<size_t>(cap))),
      last(std::make_unique<uint32_t[]>(static_cast<size_t>(cap))) {}

artime_state::fuzzy_art::match artime_state::fuzzy_art::train(const features& f, bool learning,
                                                              uint32_t step) {
    category x;
    for (int k = 0; k < dims; ++k) {
        x[k] = static_cast<float>(f[k]);
        x[dims + k] = static_cast<float>(1.0 - f[k]);
    }
    match m;
    if (!started) {
        // The first category is uncommitted (all ones) and the first sample is not
        // learned: every later sample matches it at 1/32, so it never resonates.
        started = true;
        w[0].fill(1.0f);
        last[0] = step;
        used = 1;
        m.new_cluster = true;
        return m;
    }
    // Every category at or above the upper vigilance learns (fast commit: w = min(x, w)).
    bool resonated = false;
    for (int j = 0; j < used; ++j) {
        const category& wj = w[j];
        double num = 0, den = 0;
        for (int k = 0; k < 2 * dims; ++k) {
            num += std::min(x[k], wj[k]);
            den += wj[k];
        }
        if (den == 0) den = 0.001;
        const double fs = num / den;
        // Energy: the current level alone (the last feature and its complement).
        const double e_num =
            std::min(x[dims - 1], wj[dims - 1]) + std::min(x[2 * dims - 1], wj[2 * dims - 1]);
        const double e_den = static_cast<double>(wj[dims - 1]) + wj[2 * dims - 1];
        const double es = e_den > 0 ? e_num / e_den : 0.0;
        const double a = fs * fs * fs * es * es;
        if (a > m.a) {
            m.a = a;
            m.ae = es;
        }
        if (learning && a >= rho_ub) {
            for (int k = 0; k < 2 * dims; ++k)
                w[j][k] = std::min(x[k], w[j][k]);
            last[j] = step;
            resonated = true;
        }
    }
    if (!learning) {
        m.new_cluster = true;
        return m;
    }
    if (resonated) return m;
    // Nothing resonated: the sample founds a category, in the best category's cluster when
    // that passes the lower vigilance, else in a new cluster (the anomaly candidate).
    m.new_cluster = m.a < rho_lb;
    int slot = used;
    if (used < capacity) {
        ++used;
    } else {
        // Full: the category that resonated longest ago makes room (never the uncommitted
        // one, which has no influence but keeps the memory's start as ARTime has it).
        slot = 1;
        for (int j = 2; j < used; ++j)
            if (last[j] < last[slot]) slot = j;
    }
    w[slot] = x;
    last[slot] = step;
    return m;
}

artime_state::artime_state(const artime_settings& s) : _settings(s) {
    uint32_t probation = std::clamp<uint32_t>(s.learning, 4 * window, 750);
    probation -= probation % 2;
    _block = std::max<uint32_t>(1, probation / (window * windows_per_learning));
    _trend = probation / _block;
    _mask = window * 3 / 2;
    if (s.known_range) {
        _lo = s.range_min;
        _hi = s.range_max;
        _range_set = true;
    }
    _sim_len = _trend / 2 + 1;
    std::fill(_sim.begin(), _sim.begin() + _sim_len, 1.0);
    _diff_len = _trend + 1;
}

size_t artime_state::state_bytes() const {
    return sizeof(*this) + _art.bytes();
}

void artime_state::expand_range(double lo_seen, double hi_seen) {
    // The scaling range becomes the values seen widened as in learn_period(). What the
    // memory learned is rescaled with it: per level dimension a category is a box (its
    // weights are the box's lower corner and the complement of its upper corner), and an
    // affine map with a positive factor maps a box onto a box, so a learned shape keeps
    // matching the same raw values. The running median and the last levels move alike.
    const double span = hi_seen - lo_seen;
    const double lo = lo_seen - _settings.range_margin * span;
    const double hi = hi_seen + _settings.range_margin * span;
    if (!(hi > lo)) return;
    const double a = (_hi - _lo) / (hi - lo);
    const double b = (_lo - lo) / (hi - lo);
    auto map = [&](double u) { return std::clamp(a * u + b, 0.0, 1.0); };
    for (int j = 1; j < _art.used; ++j) {
        auto& w = _art.w[j];
        for (int k = window; k < dims; ++k) {
            const double box_lo = w[k];
            const double box_hi = 1.0 - w[dims + k];
            w[k] = static_cast<float>(map(box_lo));
            w[dims + k] = static_cast<float>(1.0 - map(box_hi));
        }
    }
    auto map_level = [&](int level) {
        return static_cast<int>(std::nearbyint(map(static_cast<double>(level) / levels) * levels));
    };
    std::array<uint32_t, levels + 1> counts{};
    for (int l = 0; l <= levels; ++l)
        counts[map_level(l)] += _level_count[l];
    _level_count = counts;
    _median = map_level(_median);
    _below = _above = 0;
    for (int l = 0; l <= levels; ++l) {
        if (l < _median) _below += _level_count[l];
        if (l > _median) _above += _level_count[l];
    }
    for (auto& v : _recent)
        v = static_cast<double>(map_level(static_cast<int>(std::nearbyint(v * levels)))) / levels;
    _lo = lo;
    _hi = hi;
}

void artime_state::features_of(double raw, uint32_t dsi, features& out) {
    // A series that stays beyond the range has moved to a new operating range: follow it.
    if (_settings.regime_steps > 0 && dsi > _trend && !_range_set) {
        if (raw < _lo || raw > _hi) {
            ++_outside;
            _out_lo = _outside == 1 ? raw : std::min(_out_lo, raw);
            _out_hi = _outside == 1 ? raw : std::max(_out_hi, raw);
            if (_outside >= _settings.regime_steps) {
                expand_range(std::min(_seen_lo, _out_lo), std::max(_seen_hi, _out_hi));
                _outside = 0;
            }
        } else {
            _outside = 0;
        }
    }
    // Scale into the range, quantise to levels.
    double ds = raw - _lo;
    if (_hi - _lo != 0) ds /= _hi - _lo;
    // Beyond the range: clamped to its ends (NaN, from overflowing input sums, to 0).
    ds = std::isnan(ds) ? 0.0 : std::clamp(ds, 0.0, 1.0);
    const int level = static_cast<int>(std::nearbyint(ds * levels));
    ds = static_cast<double>(level) / levels;
    // Running median of the levels: a histogram and a pointer that walks one occupied
    // level at a time, enough to follow a drifting median.
    ++_level_count[level];
    const uint32_t half = dsi / 2;
    if (dsi == 1) _median = level;
    if (_median > level) ++_below;
    if (_median < level) ++_above;
    if (half < _above) {
        _below += _level_count[_median];
        ++_median;
        while (_level_count[_median] == 0)
            ++_median;
        _above -= _level_count[_median];
    } else if (half < _below) {
        _above += _level_count[_median];
        --_median;
        while (_level_count[_median] == 0)
            --_median;
        _below -= _level_count[_median];
    }
    const double median = static_cast<double>(_median) / levels;
    if (std::abs(ds - median) < median_snap) ds = median;
    push_back_shift(_recent, window, ds);
    out.fill(0.0);
    if (dsi < static_cast<uint32_t>(window)) return;
    // The window's shape (min-max scaled, then its wavelet coefficients, min-max scaled)
    // and its levels.
    std::array<double, window> dw = _recent;
    const double lo = *std::min_element(dw.begin(), dw.end());
    for (auto& v : dw)
        v -= lo;
    const double hi = *std::max_element(dw.begin(), dw.end());
    if (hi != 0)
        for (auto& v : dw)
            v /= hi;
    auto fw = haar8(dw);
    const double flo = *std::min_element(fw.begin(), fw.end());
    for (auto& v : fw)
        v -= flo;
    const double fhi = *std::max_element(fw.begin(), fw.end());
    if (fhi != 0)
        for (auto& v : fw)
            v /= fhi;
    std::copy(fw.begin(), fw.end(), out.begin());
    std::copy(_recent.begin(), _recent.end(), out.begin() + window);
}

double artime_state::initial_vigilance(const std::vector<features>& batch) const {
    // Order the learning windows from the least to the most typical (summed similarity to
    // all others), learn them at the initial vigilance, and take the mean best activation
    // over the later (typical) part: how similar ordinary windows are to each other.
    // The sum over all others is one dot product with the sum of the unit vectors: O(m)
    // rather than O(m^2) comparisons, which made the learning step of many series at once
    // (a bulk load, a restart) the scorer's largest cost.
    // The similarity of two windows is their cosine; a zero vector's similarity to another
    // is 1 - the other's norm (1 to another zero vector).
    const size_t m = batch.size();
    std::vector<double> norm(m), sum(m, 1.0);
    features units{};
    double zeros = 0, nonzero_norms = 0;  // count of zero vectors, sum of the others' norms
    for (size_t i = 0; i < m; ++i) {
        double n = 0;
        for (double x : batch[i])
            n += x * x;
        norm[i] = std::sqrt(n);
        if (norm[i] == 0) {
            ++zeros;
            continue;
        }
        nonzero_norms += norm[i];
        for (int k = 0; k < dims; ++k)
            units[k] += batch[i][k] / norm[i];
    }
    const double nonzero = static_cast<double>(m) - zeros;
    for (size_t i = 0; i < m; ++i) {
        if (norm[i] == 0) {
            sum[i] += (zeros - 1) + (nonzero - nonzero_norms);
            continue;
        }
        double dot = 0;
        for (int k = 0; k < dims; ++k)
            dot += batch[i][k] / norm[i] * units[k];
        sum[i] += (dot - 1) + zeros * (1 - norm[i]);
    }
    std::vector<size_t> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return sum[a] < sum[b]; });
    fuzzy_art art(static_cast<int>(m) + 1);
    art.rho_lb = art.rho_ub = initial_rho;
    std::vector<double> a(m);
    for (size_t k = 0; k < m; ++k)
        a[k] = art.train(batch[order[k]], true, 0).a;
    const size_t from = std::min<size_t>(_trend / 2 > 0 ? _trend / 2 - 1 : 0, m);
    double total = 0;
    for (size_t k = from; k < m; ++k)
        total += a[k];
    return m > from ? total / static_cast<double>(m - from) : initial_rho;
}

void artime_state::learn_period() {
    _seen_lo = _lo;
    _seen_hi = _hi;
    if (!_range_set) {
        const double span = _hi - _lo;
        _lo -= _settings.range_margin * span;
        _hi += _settings.range_margin * span;
    }
    std::vector<features> batch(_trend);
    for (uint32_t k = 1; k <= _trend; ++k)
        features_of(_learning_values[k - 1], k, batch[k - 1]);
    const std::vector<features> full(batch.begin() + (window - 1), batch.end());
    const double rho = initial_vigilance(full);
    _art.rho_lb = _art.rho_ub = rho;
    for (uint32_t k = 1; k <= _trend; ++k)
        detect(batch[k - 1], k);
}

double artime_state::detect(const features& f, uint32_t i) {
    const uint32_t since_alarm = i - _last_anomaly;
    const bool update_after_alarm = since_alarm == _mask;
    const bool update_for_trend = i - _last_rho_update >= _trend / 2;
    const bool mask_after_alarm = since_alarm <= _mask;
    // New categories keep alarms masked until the memory has been stable for a while.
    if (i > _trend + _mask && _mask_after_category && _no_new_category >= _mask)
        _mask_after_category = false;
    // Windows before the first full one are matched but not learned.
    const auto r = _art.train(f, i >= static_cast<uint32_t>(window), i);
    const bool new_cluster = i < static_cast<uint32_t>(window) || r.new_cluster;
    _no_new_category = new_cluster ? 0 : _no_new_category + 1;
    _a_sum += r.a;
    ++_a_count;
    _sim[_sim_pos] = r.a;
    _sim_pos = (_sim_pos + 1) % _sim_len;
    _sim_diff[_diff_pos] = _art.rho_ub - r.a;
    _diff_pos = (_diff_pos + 1) % _diff_len;
    // Each alarm remembers the lowest similarity seen while it is masked.
    if (since_alarm < _mask && _alarms > 0) _alarm_sim_last = std::min(_alarm_sim_last, r.a);
    const bool masking = _mask_after_category || mask_after_alarm;
    const double scale = mask_after_alarm ? below_last_masked : below_last_unmasked;
    const bool below_last = r.a < _last_anomaly_sim * scale;
    double anomaly = 0.0;
    if (i > _trend && new_cluster && (!masking || below_last)) {
        // Confidence: how far below each vigilance the match is, relative to the room
        // left above it, plus how different the current level is.
        const double s = std::min(0.999, r.a);
        const double ub = ((1 - s) - (1 - _art.rho_ub)) / (1 - s);
        const double lb = ((1 - s) - (1 - _art.rho_lb)) / (1 - s);
        anomaly = std::min(
            1.0, ub * confidence_ub + lb * confidence_lb + (1.0 - r.ae) * confidence_energy);
        anomaly = std::round(anomaly * 1e6) / 1e6;
        // Calibration for a fixed decision threshold: ARTime raises alarms for every new
        // shape, at a base rate that depends on the series (a noisy healthy sensor founds
        // new categories every few minutes forever). Only an alarm that comes with a new
        // extreme of the series (the value left everything seen so far by a margin) enters
        // the decision band above decision_threshold; any other alarm stays below it.
        if (_settings.calibrated)
            anomaly = _new_extreme ? decision_floor + (1 - decision_floor) * anomaly
                                   : decision_floor * anomaly;
        if (_alarms > 0) _alarm_sim_sum += _alarm_sim_last;
        _alarm_sim_last = r.a;
        ++_alarms;
        _last_anomaly_sim = r.a;
        _last_anomaly = i;
    }
    _mask_after_category = new_cluster || _mask_after_category;
    // The vigilances follow the data: the upper one the mean best activation, the lower
    // one rises towards the lowest recent similarity, or falls by how far recent
    // similarities sit below the upper one (not below the alarms' own similarities).
    if (i > _trend && (update_after_alarm || update_for_trend)) {
        const double min_sim = *std::min_element(_sim.begin(), _sim.begin() + _sim_len);
        const double new_ub = std::min(rho_ub_cap, _a_sum / static_cast<double>(_a_count));
        const double prev_lb = _art.rho_lb;
        double new_lb;
        if (prev_lb <= min_sim) {
            new_lb = prev_lb + (min_sim - prev_lb) * rho_lb_rise;
        } else {
            double decr = 0.0;
            if (i > 2 * _trend) {
                double sum = 0;
                int n = 0;
                for (uint32_t k = 0; k < _diff_len; ++k) {
                    if (_sim_diff[k] > below_rho_min) {
                        sum += std::min(below_rho_cap, _sim_diff[k]);
                        ++n;
                    }
                }
                if (n > 0) decr = sum / n;
            }
            decr = std::max(below_rho_floor, decr);
            new_lb = prev_lb - decr / 2;
            if (_alarms > 0)
                new_lb = std::max((_alarm_sim_sum + _alarm_sim_last) / _alarms, new_lb);
        }
        new_lb = std::min(new_ub, new_lb);
        _art.rho_lb = new_lb;
        _art.rho_ub = new_ub;
        _last_rho_update = i;
        _mask_after_category = true;
    }
    return anomaly;
}

double artime_state::update(double x) {
    ++_i;
    const bool learning = _dsi < _trend;
    if (!_range_set && (learning || _settings.widen_range)) {
        if (_i == 1) _lo = _hi = x;
        _lo = std::min(_lo, x);
        _hi = std::max(_hi, x);
    }
    push_back_shift(_block_values, _block, x);
    if (_i % _block != 0) return 0.0;
    // Downsample: the block's extreme farther from the moving average of block means,
    // unless it is within a tenth of the block mean (then the mean).
    const auto first = _block_values.begin();
    const auto end = first + _block;
    const double mean = std::accumulate(first, end, 0.0) / _block;
    const double hi = *std::max_element(first, end);
    const double lo = *std::min_element(first, end);
    ++_dsi;
    if (_dsi == 1) _ds_average = mean;
    _ds_average = (_ds_average + mean) / 2;
    double ds = std::abs(hi - _ds_average) < std::abs(lo - _ds_average) ? lo : hi;
    if (std::abs(ds - mean) < spike_fraction * mean) ds = mean;
    if (_dsi <= _trend) {
        _learning_values[_dsi - 1] = ds;
        // The learning period ends when the series has shown its range: at the learning
        // length if no new minimum or maximum came in the last stable_steps, else as soon as
        // none has for that long (at most max_learning_steps). What the learning period
        // happens to contain then matters less: a period that ends in the middle of a rise
        // or of the series' first excursion goes on until the excursion is over.
        if (_dsi == 1 || ds < _learn_lo || ds > _learn_hi) {
            _learn_lo = _dsi == 1 ? ds : std::min(_learn_lo, ds);
            _learn_hi = _dsi == 1 ? ds : std::max(_learn_hi, ds);
            _learn_growth = _dsi;
        }
        if (_dsi == _trend) {
            if (!_range_set && _settings.stable_steps > 0 &&
                _dsi - _learn_growth < _settings.stable_steps &&
                _trend < static_cast<uint32_t>(max_learning_steps)) {
                ++_trend;
                return 0.0;
            }
            // The trend windows of the vigilance updates follow the learning length.
            _sim_len = _trend / 2 + 1;
            std::fill(_sim.begin(), _sim.begin() + _sim_len, 1.0);
            _diff_len = _trend + 1;
            learn_period();
        }
        return 0.0;
    }
    // A value beyond every value seen so far (learning included) by a share of their span
    // is a new extreme; it counts for the alarms of the next few steps, as ARTime's alarm
    // may come a few steps after the value that caused it.
    const double seen_span = _seen_hi - _seen_lo;
    if (ds > _seen_hi + extreme_margin * seen_span || ds < _seen_lo - extreme_margin * seen_span)
        _extreme_at = _dsi;
    _new_extreme = _extreme_at > 0 && _dsi - _extreme_at <= extreme_steps;
    _seen_lo = std::min(_seen_lo, ds);
    _seen_hi = std::max(_seen_hi, ds);
    features f;
    features_of(ds, _dsi, f);
    return detect(f, _dsi);
}

}  // namespace clisonix::analytics::detail
