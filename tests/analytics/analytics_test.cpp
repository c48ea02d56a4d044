#include "analytics/analytics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "analytics/detectors.h"
#include "analytics/timestamp.h"
#include "common/progress.h"

namespace a = clisonix::analytics;
using clisonix::progress_bar;
using clisonix::progress_display;

namespace {

const a::nab_profile& profile(std::string_view name) {
    for (const auto& p : a::nab_profiles()) {
        if (p.name == name) return p;
    }
    throw std::runtime_error("no profile");
}

// 20 rows (probation: the first 3), one window over rows 10..14 (width 5).
a::nab_series one_window(std::vector<std::pair<size_t, double>> detections) {
    a::nab_series s;
    s.scores.assign(20, 0.0);
    for (auto [row, score] : detections)
        s.scores[row] = score;
    s.windows = {{10, 14}};
    return s;
}

constexpr int64_t minute_ns = 60'000'000'000;

// A daily pattern with noise: 5-minute points, 12 days.
std::vector<double> daily_series(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> noise(0.0, 1.0);
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) {
        v[i] = 50 + 20 * std::sin(2 * M_PI * static_cast<double>(i % 288) / 288.0) + noise(rng);
    }
    return v;
}

}  // namespace

TEST(nab_scoring, profiles_are_nab_weights) {
    const auto p = a::nab_profiles();
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[0].name, "standard");
    EXPECT_EQ(p[0].a_tp, 1.0);
    EXPECT_EQ(p[0].a_fn, 1.0);
    EXPECT_EQ(p[0].a_fp, 0.11);
    EXPECT_EQ(p[1].name, "reward_low_FP_rate");
    EXPECT_EQ(p[1].a_fp, 0.22);
    EXPECT_EQ(p[2].name, "reward_low_FN_rate");
    EXPECT_EQ(p[2].a_fn, 2.0);
    EXPECT_EQ(p[2].a_fp, 0.11);
}

TEST(nab_scoring, probation_is_15_percent_capped_at_750) {
    EXPECT_EQ(a::nab_probation(20), 3u);
    EXPECT_EQ(a::nab_probation(1127), 169u);
    EXPECT_EQ(a::nab_probation(4032), 604u);
    EXPECT_EQ(a::nab_probation(5000), 750u);
    EXPECT_EQ(a::nab_probation(22695), 750u);
}

TEST(nab_scoring, scaled_sigmoid) {
    EXPECT_NEAR(a::nab_sigmoid(-1.0), 0.9866142981514305, 1e-15);
    EXPECT_EQ(a::nab_sigmoid(0.0), 0.0);
    EXPECT_NEAR(a::nab_sigmoid(0.75), -0.9540452601799487, 1e-15);
    EXPECT_NEAR(a::nab_sigmoid(3.0), -0.9999993881955468, 1e-15);
    EXPECT_EQ(a::nab_sigmoid(3.01), -1.0);
}

TEST(nab_scoring, perfect_detector_scores_100) {
    const std::vector<a::nab_series> files = {one_window({{10, 1.0}})};
    for (const auto& p : a::nab_profiles()) {
        const auto s = a::score_nab(files, p);
        EXPECT_DOUBLE_EQ(s.normalized, 100.0) << p.name;
        EXPECT_DOUBLE_EQ(s.raw, 1.0) << p.name;
        EXPECT_EQ(s.tp, 1u);
        EXPECT_EQ(s.fn, 0u);
        EXPECT_EQ(s.fp, 0u);
    }
}

TEST(nab_scoring, null_detector_scores_0) {
    // 100 rows, a 5-row window: firing everywhere costs more than the window is worth, so
    // the best threshold is "never fire".
    a::nab_series quiet;
    quiet.scores.assign(100, 0.0);
    quiet.windows = {{50, 54}};
    const std::vector<a::nab_series> files = {quiet};
    for (const auto& p : a::nab_profiles()) {
        const auto s = a::score_nab(files, p);
        EXPECT_DOUBLE_EQ(s.normalized, 0.0) << p.name;
        EXPECT_DOUBLE_EQ(s.raw, -p.a_fn) << p.name;
        EXPECT_EQ(s.tp, 0u);
        EXPECT_EQ(s.fn, 1u);
        EXPECT_GT(s.threshold, 1.0);  // never fire
    }
}

// Row 5 is a false positive before any window (-A_FP), row 12 a detection 3 rows before
// the window's end (y = -3/5: 1 * sigma(-0.6) / sigma(-1) = 0.917428...), row 17 a false
// positive 3 rows after it (y = 3/4: A_FP * sigma(0.75)). The best threshold is 0.8: rows 5
// and 12 fire.
TEST(nab_scoring, hand_computed_case) {
    const std::vector<a::nab_series> files = {one_window({{5, 0.9}, {12, 0.8}, {17, 0.7}})};
    const auto st = a::score_nab(files, profile("standard"));
    EXPECT_NEAR(st.raw, -0.11 + 0.9174286804284079, 1e-12);
    EXPECT_NEAR(st.normalized, 90.3714340214204, 1e-9);
    EXPECT_EQ(st.threshold, 0.8);
    EXPECT_EQ(st.tp, 1u);
    EXPECT_EQ(st.fp, 1u);
    const auto low_fp = a::score_nab(files, profile("reward_low_FP_rate"));
    EXPECT_NEAR(low_fp.normalized, 84.87143402142038, 1e-9);
    const auto low_fn = a::score_nab(files, profile("reward_low_FN_rate"));
    EXPECT_NEAR(low_fn.normalized, 93.58095601428026, 1e-9);
}

TEST(nab_scoring, only_the_earliest_detection_in_a_window_counts) {
    // Rows 10..14 all fire: the window is worth its first row (1.0), the rest add nothing.
    const std::vector<a::nab_series> files = {
        one_window({{10, 1.0}, {11, 1.0}, {12, 1.0}, {13, 1.0}, {14, 1.0}})};
    const auto s = a::score_nab(files, profile("standard"));
    EXPECT_DOUBLE_EQ(s.raw, 1.0);
    EXPECT_EQ(s.fp, 0u);
}

TEST(nab_scoring, detections_in_the_probation_are_ignored) {
    // Row 2 is inside the 3-row probation: firing there costs nothing.
    const std::vector<a::nab_series> files = {one_window({{2, 1.0}, {10, 1.0}})};
    const auto s = a::score_nab(files, profile("standard"));
    EXPECT_DOUBLE_EQ(s.normalized, 100.0);
    EXPECT_EQ(s.fp, 0u);
}

TEST(nab_scoring, false_positive_right_after_a_window_costs_less) {
    // Row 15 is 1 row after the window: A_FP * sigma(1/4) = 0.11 * -0.5545997223493823.
    const std::vector<a::nab_series> files = {one_window({{10, 1.0}, {15, 1.0}})};
    const auto s = a::score_nab(files, profile("standard"));
    EXPECT_NEAR(s.raw, 1.0 + 0.11 * -0.5545997223493823, 1e-12);
    EXPECT_EQ(s.fp, 1u);
}

TEST(nab_scoring, one_threshold_for_all_files) {
    // File 1 is perfect at 0.9; file 2 has a false positive at 0.95 before its window and a
    // detection at its window's start at 0.5. Threshold 0.5: 1 + (1 - 0.11) = 1.89.
    a::nab_series second = one_window({{4, 0.95}, {10, 0.5}});
    const std::vector<a::nab_series> files = {one_window({{10, 0.9}}), second};
    const auto s = a::score_nab(files, profile("standard"));
    EXPECT_EQ(s.threshold, 0.5);
    EXPECT_NEAR(s.raw, 1.89, 1e-12);
    EXPECT_NEAR(s.normalized, 100.0 * (1.89 + 2.0) / 4.0, 1e-9);
    EXPECT_EQ(s.tp, 2u);
    EXPECT_EQ(s.fp, 1u);
}

// A threshold chosen elsewhere: everything at or above it fires, whatever is best here.
TEST(nab_scoring, score_at_a_given_threshold) {
    const std::vector<a::nab_series> files = {one_window({{5, 0.9}, {12, 0.8}, {17, 0.7}})};
    const auto& standard = profile("standard");
    // 0.7: rows 5, 12 and 17 fire; row 17 is 3 rows after the window: 0.11 * sigma(0.75).
    const auto low = a::score_nab_at(files, standard, 0.7);
    EXPECT_NEAR(low.raw, 0.7024837018086135, 1e-12);
    EXPECT_NEAR(low.normalized, 85.12418509043067, 1e-9);
    EXPECT_EQ(low.threshold, 0.7);
    EXPECT_EQ(low.tp, 1u);
    EXPECT_EQ(low.fp, 2u);
    // At the swept best threshold it agrees with score_nab.
    const auto best = a::score_nab(files, standard);
    const auto at_best = a::score_nab_at(files, standard, best.threshold);
    EXPECT_DOUBLE_EQ(at_best.raw, best.raw);
    EXPECT_DOUBLE_EQ(at_best.normalized, best.normalized);
    EXPECT_EQ(at_best.fp, best.fp);
    // Above every score nothing fires: the window is missed, the null score.
    const auto none = a::score_nab_at(files, standard, 0.95);
    EXPECT_DOUBLE_EQ(none.raw, -1.0);
    EXPECT_DOUBLE_EQ(none.normalized, 0.0);
    EXPECT_EQ(none.fn, 1u);
    EXPECT_EQ(none.fp, 0u);
}

TEST(timestamps, parse_nab_formats) {
    auto t = a::parse_timestamp("1970-01-02 00:00:01");
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, 86401LL * 1'000'000'000);
    auto u = a::parse_timestamp("2014-04-10 07:15:00.000000");
    ASSERT_TRUE(u);
    auto v = a::parse_timestamp("2014-04-10 07:15:00");
    ASSERT_TRUE(v);
    EXPECT_EQ(*u, *v);
    EXPECT_EQ(*v, 1397114100LL * 1'000'000'000);
    EXPECT_FALSE(a::parse_timestamp("2014-04-10"));
    EXPECT_FALSE(a::parse_timestamp("2014-13-10 00:00:00"));
}

TEST(progress, bar_shows_fraction) {
    EXPECT_EQ(progress_bar(5, 10, 10), "[#####     ]  50% 5/10");
    EXPECT_EQ(progress_bar(0, 4, 4), "[    ]   0% 0/4");
    EXPECT_EQ(progress_bar(4, 4, 4), "[####] 100% 4/4");
    EXPECT_EQ(progress_bar(0, 0, 2), "[##] 100% 0/0");
}

TEST(progress, off_a_terminal_one_plain_line_per_step) {
    std::ostringstream out;
    progress_display p(out, "nab", false);
    p.update(0, 3);
    p.update(1, 3, "a.csv");
    p.update(2, 3, "b.csv");
    p.update(3, 3, "c.csv");
    EXPECT_EQ(out.str(), "nab: 1/3 (33%) a.csv\nnab: 2/3 (66%) b.csv\nnab: 3/3 (100%) c.csv\n");
}

TEST(progress, off_a_terminal_every_percent_gives_a_line_per_tenth) {
    std::ostringstream out;
    progress_display p(out, "import", false, 10);
    for (size_t done = 1; done <= 1000; ++done)
        p.update(done, 1000);
    const std::string text = out.str();
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 11);  // 0.1 %, 10 %, ..., 100 %
    EXPECT_EQ(text.find('\r'), std::string::npos);
    EXPECT_NE(text.find("import: 1000/1000 (100%)\n"), std::string::npos) << text;
}

TEST(progress, on_a_terminal_redraws_one_line_and_ends_it) {
    std::ostringstream out;
    progress_display p(out, "nab", true);
    p.update(1, 2);
    p.update(2, 2);
    const std::string text = out.str();
    EXPECT_EQ(text.rfind("\rnab: [", 0), 0u) << text;
    EXPECT_EQ(text.back(), '\n');
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST(detectors, names_and_factory) {
    const auto names = a::detector_names();
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(names.front(), "ensemble");
    for (auto n : names) {
        auto d = a::make_detector(n);
        ASSERT_TRUE(d) << n;
        EXPECT_EQ((*d)->name(), n);
    }
    auto bad = a::make_detector("nope");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, "invalid_argument");
    EXPECT_NE(bad.error().message.find("ensemble"), std::string::npos);
}

TEST(detectors, scores_in_unit_range_and_deterministic) {
    auto v = daily_series(3456, 7);
    v[3000] += 200;   // a spike
    v[3100] = NAN;    // a hole
    v[3101] = 1e300;  // an absurd value
    v[3102] = -1e300;
    for (auto n : a::detector_names()) {
        auto d1 = std::move(*a::make_detector(n));
        auto d2 = std::move(*a::make_detector(n));
        for (size_t i = 0; i < v.size(); ++i) {
            const int64_t ts = static_cast<int64_t>(i) * 5 * minute_ns;
            const double s1 = d1->update(ts, v[i]);
            const double s2 = d2->update(ts, v[i]);
            ASSERT_TRUE(s1 >= 0.0 && s1 <= 1.0) << n << " row " << i << " " << s1;
            ASSERT_EQ(s1, s2) << n << " row " << i;
        }
    }
}

TEST(detectors, no_look_ahead) {
    // The score of point i is the same whether or not later points are fed.
    const auto v = daily_series(2000, 11);
    for (auto n : a::detector_names()) {
        std::vector<double> full;
        auto d = std::move(*a::make_detector(n));
        for (size_t i = 0; i < v.size(); ++i) {
            full.push_back(d->update(static_cast<int64_t>(i) * 5 * minute_ns, v[i]));
        }
        for (size_t cut : {200u, 777u, 1500u}) {
            auto p = std::move(*a::make_detector(n));
            double last = -1;
            for (size_t i = 0; i < cut; ++i) {
                last = p->update(static_cast<int64_t>(i) * 5 * minute_ns, v[i]);
            }
            EXPECT_EQ(last, full[cut - 1]) << n << " cut " << cut;
        }
    }
}

TEST(detectors, state_is_bounded_and_constant) {
    const auto v = daily_series(5000, 3);
    for (auto n : a::detector_names()) {
        auto d = std::move(*a::make_detector(n));
        const size_t before = d->state_bytes();
        for (size_t i = 0; i < v.size(); ++i) {
            d->update(static_cast<int64_t>(i) * 5 * minute_ns, v[i]);
        }
        EXPECT_EQ(d->state_bytes(), before) << n;
        // ARTime's category memory takes up to 64 KiB; every other detector stays small.
        const bool artime = n == "ensemble" || n == "artime";
        EXPECT_LE(d->state_bytes(), artime ? 65536u : 8192u) << n;
    }
}

TEST(detectors, quiet_on_a_regular_pattern_and_alert_on_a_spike) {
    auto v = daily_series(288 * 12, 5);
    const size_t spike = 288 * 10 + 17;
    v[spike] += 100;
    auto d = std::move(*a::make_detector("ensemble"));
    double max_before = 0;
    double at_spike = 0;
    for (size_t i = 0; i <= spike; ++i) {
        const double s = d->update(static_cast<int64_t>(i) * 5 * minute_ns, v[i]);
        if (i >= 288 * 3 && i < spike) max_before = std::max(max_before, s);
        if (i == spike) at_spike = s;
    }
    EXPECT_LT(max_before, 0.5);
    EXPECT_GE(at_spike, 0.5);
}

TEST(artime, silent_while_learning_then_one_alarm_for_a_level_shift) {
    // A square wave (period 40) for 1500 points, then it jumps to a new level.
    auto wave = [](size_t i) { return (i / 20) % 2 == 0 ? 10.0 : 20.0; };
    a::detail::artime_state d;
    double during_learning = 0;
    for (size_t i = 0; i < 300; ++i)
        during_learning = std::max(during_learning, d.update(wave(i)));
    EXPECT_EQ(during_learning, 0.0);
    double before = 0;
    for (size_t i = 300; i < 1500; ++i)
        before = std::max(before, d.update(wave(i)));
    int alarms = 0;
    double at_shift = 0;
    for (size_t i = 1500; i < 1700; ++i) {
        const double s = d.update(wave(i) + 25);
        at_shift = std::max(at_shift, s);
        alarms += s > 0;
    }
    EXPECT_LT(before, at_shift);
    EXPECT_GT(at_shift, 0.5);
    // Masking after an alarm and after new categories: one incident, few alarms.
    EXPECT_LE(alarms, 3);
}

// The calibrated score: a jump to a level never seen is a decision (above the product's
// threshold); a new shape within the usual range is an alarm below it.
TEST(artime, only_alarms_with_a_new_extreme_cross_the_decision_threshold) {
    auto wave = [](size_t i) { return (i / 20) % 2 == 0 ? 10.0 : 20.0; };
    a::detail::artime_state jump, shape;
    for (size_t i = 0; i < 1500; ++i) {
        jump.update(wave(i));
        shape.update(wave(i));
    }
    double jump_peak = 0, shape_peak = 0;
    for (size_t i = 1500; i < 1700; ++i) {
        jump_peak = std::max(jump_peak, jump.update(wave(i) + 25));
        // Within [10, 20]: the wave stops and sits at 15, a shape it never had.
        shape_peak = std::max(shape_peak, shape.update(15.0));
    }
    EXPECT_GT(jump_peak, a::anomaly_decision_threshold);
    EXPECT_GT(shape_peak, 0.0);
    EXPECT_LT(shape_peak, a::anomaly_decision_threshold);
    // ARTime's own confidence (calibration off) ranks them the other way round or alike.
    a::detail::artime_settings raw;
    raw.calibrated = false;
    a::detail::artime_state uncalibrated(raw);
    double raw_peak = 0;
    for (size_t i = 0; i < 1500; ++i)
        uncalibrated.update(wave(i));
    for (size_t i = 1500; i < 1700; ++i)
        raw_peak = std::max(raw_peak, uncalibrated.update(15.0));
    EXPECT_GT(raw_peak, shape_peak);
}

// A level that stays beyond the learned range is a new operating range: after one alarm
// the detector resolves the new level again (it is not stuck at the range's end), so a
// second, different change there raises a new alarm.
TEST(artime, a_level_that_stays_beyond_the_range_becomes_a_new_operating_range) {
    auto wave = [](size_t i) { return (i / 20) % 2 == 0 ? 10.0 : 20.0; };
    auto run = [&](uint32_t regime_steps) {
        a::detail::artime_settings s;
        s.regime_steps = regime_steps;
        a::detail::artime_state d(s);
        for (size_t i = 0; i < 1500; ++i)
            d.update(wave(i));
        // The wave moves up by 100 (far beyond the range [0, 30]) and stays there ...
        for (size_t i = 1500; i < 3000; ++i)
            d.update(wave(i) + 100);
        // ... then its amplitude halves: only visible if the new level is resolved.
        double peak = 0;
        for (size_t i = 3000; i < 3300; ++i)
            peak = std::max(peak, d.update(wave(i) / 2 + 107.5));
        return peak;
    };
    EXPECT_GT(run(8), 0.0);
    EXPECT_EQ(run(0), 0.0);  // clamped at the range's end, the change is invisible
}

// The learning period ends when the series has shown its range: a stream that starts just
// before a rise keeps learning until the rise is over (no new extreme for a feature
// window, 8 downsampled steps = 16 points), instead of ending at 300 points in the middle
// of it; a stream that has shown its range by then stops at 300.
TEST(artime, learning_goes_on_while_the_series_still_sets_new_extremes) {
    auto series = [](size_t i, bool rises) {
        const double wave = (i / 20) % 2 == 0 ? 0.0 : 1.0;
        const double rise = !rises || i < 280 ? 0.0
                            : i < 360         ? (static_cast<double>(i) - 280) / 4
                                              : 20.0;
        return 10.0 + rise + wave;
    };
    auto learned = [&](uint32_t stable_steps, bool rises) {
        a::detail::artime_settings s;
        s.stable_steps = stable_steps;
        a::detail::artime_state d(s);
        for (size_t i = 0; i < 1000; ++i) {
            d.update(series(i, rises));
            if (i < 299) {
                EXPECT_EQ(d.learned_points(), 0u);
            }
        }
        return d.learned_points();
    };
    // The last new maximum comes at point 359 (downsampled step 180): learning ends 8
    // steps after it, at step 188, point 376.
    EXPECT_EQ(learned(8, true), 376u);
    EXPECT_EQ(learned(0, true), 300u);
    EXPECT_EQ(learned(8, false), 300u);
}

TEST(artime, flat_series_never_alarms_and_memory_stays_bounded) {
    a::detail::artime_state flat;
    for (int i = 0; i < 5000; ++i)
        EXPECT_EQ(flat.update(7.0), 0.0);
    EXPECT_LE(flat.categories(), 4);
    // Noise founds categories without end; the memory stops at its bound.
    a::detail::artime_state noisy;
    std::mt19937 rng(1);
    std::uniform_real_distribution<double> u(0, 1);
    const size_t bytes = noisy.state_bytes();
    for (int i = 0; i < 60000; ++i)
        noisy.update(u(rng));
    EXPECT_LE(noisy.categories(), a::detail::artime_state::max_categories);
    EXPECT_EQ(noisy.state_bytes(), bytes);
    EXPECT_LE(bytes, 65536u);
}

TEST(artime, values_outside_the_learned_range_are_clamped) {
    a::detail::artime_state d;
    for (int i = 0; i < 400; ++i)
        d.update(i % 2);
    // Far beyond the range: still a score in [0, 1], no out-of-range level.
    for (int i = 0; i < 50; ++i) {
        const double s = d.update(1e300);
        EXPECT_GE(s, 0.0);
        EXPECT_LE(s, 1.0);
    }
    for (int i = 0; i < 50; ++i) {
        const double s = d.update(-1e300);
        EXPECT_GE(s, 0.0);
        EXPECT_LE(s, 1.0);
    }
}

TEST(series_detectors, one_state_per_series_same_scores_as_a_detector) {
    a::series_detectors sd("ensemble", 8);
    ASSERT_TRUE(sd.valid());
    const auto v = daily_series(1000, 9);
    auto ref = std::move(*a::make_detector("ensemble"));
    for (size_t i = 0; i < v.size(); ++i) {
        const int64_t ts = static_cast<int64_t>(i) * 5 * minute_ns;
        const double expect = ref->update(ts, v[i]);
        ASSERT_EQ(sd.score(1, ts, v[i]), expect);
        sd.score(2, ts, -v[i]);
    }
    EXPECT_EQ(sd.series_count(), 2u);
    EXPECT_EQ(sd.state_bytes(), 2 * ref->state_bytes());
    sd.erase(2);
    EXPECT_EQ(sd.series_count(), 1u);
}

TEST(series_detectors, max_series_drops_new_series) {
    a::series_detectors sd("ensemble", 2);
    sd.score(1, 0, 1.0);
    sd.score(2, 0, 1.0);
    EXPECT_EQ(sd.score(3, 0, 1.0), 0.0);
    EXPECT_EQ(sd.series_count(), 2u);
    EXPECT_EQ(sd.dropped(), 1u);
    a::series_detectors bad("nope");
    EXPECT_FALSE(bad.valid());
    EXPECT_EQ(bad.score(1, 0, 1.0), 0.0);
}

TEST(series_detectors, parallel_threads_match_sequential) {
    // Four threads, each its own series: the scores equal those of a lone detector.
    a::series_detectors sd;
    const auto v = daily_series(3000, 13);
    std::vector<double> expect;
    auto ref = std::move(*a::make_detector("ensemble"));
    for (size_t i = 0; i < v.size(); ++i) {
        expect.push_back(ref->update(static_cast<int64_t>(i) * 5 * minute_ns, v[i]));
    }
    std::vector<int> mismatches(4, 0);
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (uint32_t series = t * 16; series < t * 16 + 16; ++series) {
                for (size_t i = 0; i < v.size(); ++i) {
                    const int64_t ts = static_cast<int64_t>(i) * 5 * minute_ns;
                    if (sd.score(series, ts, v[i]) != expect[i]) ++mismatches[t];
                }
            }
        });
    }
    for (auto& th : threads)
        th.join();
    for (int m : mismatches)
        EXPECT_EQ(m, 0);
    EXPECT_EQ(sd.series_count(), 64u);
}

class nab_runner : public ::testing::Test {
protected:
    void SetUp() override {
        _dir =
            std::filesystem::temp_directory_path() /
            ("clisonix-nab-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(_dir);
        std::filesystem::create_directories(_dir / "data" / "cat");
    }
    void TearDown() override { std::filesystem::remove_all(_dir); }
    void write(const std::filesystem::path& p, const std::string& text) {
        std::ofstream(p) << text;
    }
    std::filesystem::path _dir;
};

TEST_F(nab_runner, writes_results_with_labels_and_scores) {
    std::string csv = "timestamp,value\n";
    for (int i = 0; i < 40; ++i) {
        char line[64];
        std::snprintf(line, sizeof line, "2020-01-01 00:%02d:00,%d\n", i, i % 3);
        csv += line;
    }
    write(_dir / "data" / "cat" / "f.csv", csv);
    write(_dir / "labels.json",
          R"({"cat/f.csv": [["2020-01-01 00:20:00.000000", "2020-01-01 00:24:00.000000"]]})");
    a::nab_options o{(_dir / "data").string(),
                     (_dir / "labels.json").string(),
                     (_dir / "out").string(),
                     {"level"},
                     nullptr};
    std::vector<std::pair<size_t, size_t>> progress;
    std::vector<std::string> steps;
    o.progress = [&](size_t done, size_t total, const std::string& step) {
        progress.emplace_back(done, total);
        steps.push_back(step);
    };
    auto r = a::run_nab(o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->files, 1u);
    EXPECT_EQ(r->rows, 40u);
    EXPECT_EQ(r->windows, 1u);
    ASSERT_EQ(r->detectors.size(), 1u);
    EXPECT_EQ(r->detectors[0].scores.size(), 3u);
    EXPECT_EQ(progress, (std::vector<std::pair<size_t, size_t>>{{0, 1}, {1, 1}}));
    EXPECT_EQ(steps, (std::vector<std::string>{"", "level cat/f.csv"}));
    std::ifstream in(_dir / "out" / "cat" / "level_f.csv");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "timestamp,value,anomaly_score,label");
    std::vector<std::string> labels;
    size_t rows = 0;
    while (std::getline(in, line)) {
        ++rows;
        labels.push_back(line.substr(line.rfind(',') + 1));
        if (rows == 1) {
            EXPECT_EQ(line, "2020-01-01 00:00:00,0,0,0");
        }
    }
    EXPECT_EQ(rows, 40u);
    for (size_t i = 0; i < labels.size(); ++i) {
        EXPECT_EQ(labels[i], (i >= 20 && i <= 24) ? "1" : "0") << i;
    }
    const auto table = a::format_nab_table(*r);
    EXPECT_NE(table.find("standard"), std::string::npos);
    EXPECT_NE(table.find("level"), std::string::npos);
}

TEST_F(nab_runner, leave_one_category_out_carries_the_threshold_over) {
    // Two categories with a spike each inside a window; each fold is scored at the
    // threshold chosen on the other category.
    std::filesystem::create_directories(_dir / "data" / "other");
    std::string labels = "{";
    for (const char* cat : {"cat", "other"}) {
        std::string csv = "timestamp,value\n";
        for (int i = 0; i < 600; ++i) {
            char line[64];
            const int v = i == 500 ? 50 : i % 3;
            std::snprintf(line, sizeof line, "2020-01-%02d %02d:%02d:00,%d\n", 1 + i / 1440,
                          i / 60 % 24, i % 60, v);
            csv += line;
        }
        write(_dir / "data" / cat / "f.csv", csv);
        if (labels.size() > 1) labels += ",";
        labels += std::string("\"") + cat +
                  "/f.csv\": [[\"2020-01-01 08:10:00.000000\", \"2020-01-01 08:30:00.000000\"]]";
    }
    write(_dir / "labels.json", labels + "}");
    a::nab_options o;
    o.data_dir = (_dir / "data").string();
    o.labels_file = (_dir / "labels.json").string();
    o.detectors = {"level"};
    o.loco = true;
    auto r = a::run_nab(o);
    ASSERT_TRUE(r) << r.error().message;
    const auto& d = r->detectors.at(0);
    ASSERT_EQ(d.folds.size(), 2u);
    EXPECT_EQ(d.folds[0].category, "cat");
    EXPECT_EQ(d.folds[1].category, "other");
    for (const auto& f : d.folds) {
        EXPECT_EQ(f.files, 1u);
        EXPECT_EQ(f.windows, 1u);
        EXPECT_EQ(f.held_out.threshold, f.threshold);
        EXPECT_LE(f.held_out.normalized, f.own.normalized);
    }
    // The same data in both categories: the same threshold both ways.
    EXPECT_EQ(d.folds[0].threshold, d.folds[1].threshold);
    const auto table = a::format_nab_loco(*r);
    EXPECT_NE(table.find("other"), std::string::npos);
    EXPECT_NE(table.find("worst fold"), std::string::npos);
    // Without --loco there are no folds.
    o.loco = false;
    EXPECT_TRUE(a::run_nab(o)->detectors.at(0).folds.empty());
}

TEST_F(nab_runner, skip_starts_every_stream_later_and_moves_the_windows) {
    std::string csv = "timestamp,value\n";
    for (int i = 0; i < 40; ++i) {
        char line[64];
        std::snprintf(line, sizeof line, "2020-01-01 00:%02d:00,%d\n", i, i % 3);
        csv += line;
    }
    write(_dir / "data" / "cat" / "f.csv", csv);
    write(_dir / "labels.json",
          R"({"cat/f.csv": [["2020-01-01 00:05:00.000000", "2020-01-01 00:08:00.000000"],)"
          R"(["2020-01-01 00:20:00.000000", "2020-01-01 00:24:00.000000"]]})");
    a::nab_options o;
    o.data_dir = (_dir / "data").string();
    o.labels_file = (_dir / "labels.json").string();
    o.out_dir = (_dir / "out").string();
    o.detectors = {"level"};
    o.skip_rows = 10;
    auto r = a::run_nab(o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->rows, 30u);
    EXPECT_EQ(r->windows, 1u);  // the first window ended before row 10
    std::ifstream in(_dir / "out" / "cat" / "level_f.csv");
    std::string line;
    std::getline(in, line);
    std::getline(in, line);
    EXPECT_EQ(line.substr(0, 19), "2020-01-01 00:10:00");
    std::vector<std::string> labels;
    labels.push_back(line.substr(line.rfind(',') + 1));
    while (std::getline(in, line))
        labels.push_back(line.substr(line.rfind(',') + 1));
    ASSERT_EQ(labels.size(), 30u);
    for (size_t i = 0; i < labels.size(); ++i)
        EXPECT_EQ(labels[i], (i >= 10 && i <= 14) ? "1" : "0") << i;
    // Nothing left to score: an error that names the file.
    o.skip_rows = 39;
    r = a::run_nab(o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "invalid_argument");
    EXPECT_EQ(r.error().field, "skip");
    EXPECT_NE(r.error().message.find("cat/f.csv has 40 rows"), std::string::npos);
}

TEST_F(nab_runner, errors_name_the_problem) {
    write(_dir / "labels.json", "{}");
    a::nab_options o{(_dir / "missing").string(), (_dir / "labels.json").string(), "", {}, {}};
    auto r = a::run_nab(o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "not_found");

    write(_dir / "data" / "cat" / "f.csv", "timestamp,value\n2020-01-01 00:00:00,abc\n");
    o.data_dir = (_dir / "data").string();
    r = a::run_nab(o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "invalid_argument");
    EXPECT_NE(r.error().field.find("f.csv:2"), std::string::npos);

    o.detectors = {"nope"};
    r = a::run_nab(o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "invalid_argument");
}
