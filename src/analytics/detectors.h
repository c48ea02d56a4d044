// The detectors behind make_detector(). Each is a "core" that turns a point into a surprise
// z >= 0 (about 1 for ordinary points, growing with how unusual the point is), wrapped by
// alert_shaper, which maps z to [0, 1] and keeps one high score per incident.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace clisonix::analytics::detail {

// Exponentially weighted mean and mean absolute deviation. The weight starts at 1/n, so the
// first points are averaged evenly, and settles at 1/span.
struct ew_stats {
    double mean = 0;
    double dev = 0;
    uint32_t n = 0;
    void add(double x, double span);
};

// Divides a statistic by its recent extreme (a maximum that decays over about 512
// points): above 1 means "more than anything lately".
class tail_norm {
public:
    double norm(double raw);

private:
    double _max = 0;
    uint32_t _n = 0;
};

// Maps a surprise to a score and suppresses repeated alerts: after z reaches the alert level
// the following points score at most a tenth of their value, so one incident raises one alarm.
class alert_shaper {
public:
    double shape(double z);

private:
    uint32_t _n = 0;
    uint32_t _quiet = 0;
};

// Level: how far the recent mean (and the point itself) is from the long-run mean, in long-run
// mean absolute deviations. Catches spikes, steps and drifts out of the usual range.
class level_core {
public:
    double surprise(int64_t ts_ns, double x);

private:
    ew_stats _long;
    double _short = 0;
    tail_norm _tail;
};

// Seasonal: the residual from a time-of-day profile (48 half-hour slots), smoothed over the
// last points, in units of its own usual size. Catches a missing daily peak, a night that
// looks like a day, a shifted pattern.
class seasonal_core {
public:
    double surprise(int64_t ts_ns, double x);

private:
    static constexpr int slots = 48;
    std::array<float, slots> _profile{};
    std::array<float, slots> _spread{};
    std::array<uint16_t, slots> _visits{};
    int64_t _first_ts = 0;
    uint32_t _n = 0;
    double _smooth = 0;
    ew_stats _resid;  // of every residual, for a floor under the slots' own spread
    tail_norm _tail;
};

// Novelty: the recent trajectory (the value and its averages over 2..32 points, and its
// volatility at two speeds, scaled into the range seen so far) compared with a small memory
// of prototypes, as adaptive-resonance detectors do. A trajectory far from every prototype
// is new; it becomes a prototype itself, so a new normal stops being surprising.
class novelty_core {
public:
    double surprise(int64_t ts_ns, double x);

private:
    static constexpr int dims = 8;
    static constexpr int prototypes = 24;
    struct prototype {
        std::array<float, dims> center{};
        uint32_t hits = 0;
        uint32_t last = 0;
    };
    std::array<prototype, prototypes> _memory{};
    int _used = 0;
    std::array<double, dims> _features{};
    double _lo = 0;
    double _hi = 0;
    double _prev_u = 0;
    uint32_t _n = 0;
    ew_stats _dist;
    tail_norm _tail;
};

// Context: an adaptive-resonance memory of the recent trajectory, after the fashion of
// ARTime. Every second point is reduced to the one farther from a moving average (a spike
// survives the downsampling), scaled into the range seen so far and quantised to 32 levels;
// the last 8 of those form a context. A context farther from every remembered prototype than
// the vigilance (twice the usual nearest distance, at least 0.02 of the range) founds a new
// prototype. That is an alarm only when the memory had been stable (no new prototype for 24
// contexts) and no alarm was raised in the last 64 contexts, so a regime change raises one
// alarm and the learning that follows raises none. The alarm's score grows with how far the
// context is from the memory; every other point scores 0.
class context_detector_state {
public:
    // The score of the point (0 unless it raises an alarm).
    double update(double x);

private:
    static constexpr int width = 8;
    static constexpr int prototypes = 128;
    struct prototype {
        std::array<float, width> center;
        uint32_t last;
        uint32_t hits;
    };
    std::array<prototype, prototypes> _memory{};
    std::array<float, width> _context{};
    int _used = 0;
    int _filled = 0;
    uint32_t _n = 0;
    uint32_t _step = 0;  // downsampled points
    uint32_t _last_alarm = 0;
    uint32_t _last_new = 0;
    uint32_t _distances = 0;
    bool _alarmed = false;
    int _block = 0;
    double _block_min = 0;
    double _block_max = 0;
    double _block_sum = 0;
    double _average = 0;
    double _lo = 0;
    double _hi = 0;
    double _usual = 0;  // mean nearest-prototype distance
};

// The ensemble: every core above, each surprise divided by its own alert level, the largest
// taken.
class ensemble_core {
public:
    double surprise(int64_t ts_ns, double x);

private:
    level_core _level;
    seasonal_core _seasonal;
    novelty_core _novelty;
};

}  // namespace clisonix::analytics::detail

namespace clisonix::analytics::detail {

// ARTime (adaptive resonance for time series; M. Hampton's NAB entry, 2022), reimplemented
// from its published description and behaviour: the stream is downsampled (the block
// extreme farther from a moving average, so spikes survive), scaled into a range and
// quantised to 80 levels, snapped to a running median level when close to it, and the last
// 8 such levels (plus their Haar wavelet transform) form a 16-value feature vector. A
// distributed dual-vigilance fuzzy ART (DDVFA, complement coded) clusters those vectors:
// a vector resonating with no category above the lower vigilance founds a new cluster,
// which is the anomaly candidate. Both vigilances follow the recent similarities, and
// candidates are masked for a while after a new category or an alarm, so one incident
// raises one alarm.
struct artime_settings {
    // Points of the learning period (scores are 0 during it). NAB hands ARTime its
    // probationary period (15 % of the file, at most 750); a stream has no length, so one
    // fixed count serves every series: 300, NAB's probation for a 2000-point file.
    // Leave-one-category-out on the NAB subset chose it (docs/analytics.md).
    uint32_t learning = 300;
    // How the data are scaled: NAB also hands every detector the min and max of the whole
    // file (look-ahead, allowed there). Only reproduction runs set this.
    bool known_range = false;
    double range_min = 0;
    double range_max = 0;
    // Otherwise the range is the learning period's, widened by this fraction of its span on
    // each side (ordinary data then fill the middle third, as they fill part of the
    // whole-file range in NAB) and values beyond it are clamped to its ends.
    double range_margin = 1.0;
    // Alternatively the range widens to every new extreme after the learning period.
    bool widen_range = false;
    // A new operating range: after this many consecutive downsampled steps beyond the range
    // (one feature window), the series is taken to have moved to a new regime and the range
    // grows to cover it, the learned categories rescaled with it (0: never). A spike is
    // still clamped (and alarms); a level that stays is resolved again instead of sitting
    // flat at the range's end. Leave-one-category-out: docs/analytics.md.
    uint32_t regime_steps = 8;
    // Calibrated scores (the product's): an alarm is above decision_threshold only when it
    // comes with a new extreme of the series; reproduction runs turn this off to score as
    // ARTime does.
    bool calibrated = true;
};

class artime_state {
public:
    explicit artime_state(const artime_settings& s = {});
    // The score of the point (0 except at an alarm).
    double update(double x);
    // Bytes held, this object included.
    size_t state_bytes() const;
    int categories() const { return _art.used; }

    static constexpr int window = 8;         // levels per feature window
    static constexpr int dims = 2 * window;  // wavelet coefficients, then the levels
    static constexpr int levels = 80;
    // The category memory is bounded (ARTime's is not); when full, the category that
    // resonated longest ago makes room. 448 categories of 32 floats (and a step each) keep
    // the whole state under 64 KiB; NAB's noisiest series reach ~800 categories unbounded,
    // and the NAB scores move by at most 0.1 with the bound.
    static constexpr int max_categories = 448;
    static constexpr int max_block = 8;             // downsampling factor, at most
    static constexpr int max_learning_steps = 208;  // downsampled steps of learning

private:
    using features = std::array<double, dims>;
    using category = std::array<float, 2 * dims>;  // complement coded: x, then 1 - x
    // Dual-vigilance fuzzy ART with fast learning.
    struct fuzzy_art {
        struct match {
            double a = 0;   // best activation: feature similarity^3 x energy similarity^2
            double ae = 0;  // the energy similarity (of the current level) of that category
            bool new_cluster = false;  // nothing resonated above the lower vigilance
        };
        explicit fuzzy_art(int capacity);
        match train(const features& f, bool learning, uint32_t step);
        size_t bytes() const { return capacity * (sizeof(category) + sizeof(uint32_t)); }

        int capacity;
        int used = 0;
        bool started = false;
        double rho_lb = 0;
        double rho_ub = 0;
        std::unique_ptr<category[]> w;
        std::unique_ptr<uint32_t[]> last;  // step each category last resonated
    };
    void features_of(double raw, uint32_t dsi, features& out);
    void expand_range(double lo_seen, double hi_seen);
    double detect(const features& f, uint32_t i);
    void learn_period();
    double initial_vigilance(const std::vector<features>& batch) const;

    artime_settings _settings;
    uint32_t _block = 1;      // downsampling factor (NAB: the probation over 104, at least 1)
    uint32_t _trend = 0;      // downsampled steps of learning (ARTime's trend window)
    uint32_t _mask = 12;      // steps masked after an alarm (1.5 windows)
    uint32_t _i = 0;          // points seen
    uint32_t _dsi = 0;        // downsampled steps
    double _lo = 0, _hi = 0;  // the scaling range
    double _seen_lo = 0, _seen_hi = 0;  // downsampled values seen (learning and beyond)
    bool _range_set = false;
    std::array<double, max_block> _block_values{};
    double _ds_average = 0;
    std::array<double, max_learning_steps> _learning_values{};  // raw downsampled values
    // Running median of the levels (a histogram and a walking pointer).
    std::array<uint32_t, levels + 1> _level_count{};
    int _median = 0;
    uint32_t _below = 0, _above = 0;
    std::array<double, window> _recent{};  // the last levels
    fuzzy_art _art{max_categories};
    // Vigilance adaptation and masking.
    uint32_t _last_anomaly = 0;
    double _last_anomaly_sim = 0;
    uint32_t _last_rho_update = 0;
    bool _mask_after_category = false;
    uint32_t _no_new_category = 0;
    double _a_sum = 0;  // mean of every best activation: the upper vigilance follows it
    uint64_t _a_count = 0;
    std::array<double, max_learning_steps / 2 + 1> _sim{};  // recent best activations
    uint32_t _sim_len = 0, _sim_pos = 0;
    std::array<double, max_learning_steps + 1> _sim_diff{};  // rho_ub minus them
    uint32_t _diff_len = 0, _diff_pos = 0;
    double _alarm_sim_sum = 0;  // smallest activation of each alarm, all but the last
    double _alarm_sim_last = 0;
    uint32_t _alarms = 0;
    uint32_t _outside = 0;            // consecutive steps beyond the range ...
    double _out_lo = 0, _out_hi = 0;  // ... and their extremes
    bool _new_extreme = false;        // a new extreme within the last few steps
    uint32_t _extreme_at = 0;         // the step of the last new extreme
};

}  // namespace clisonix::analytics::detail
