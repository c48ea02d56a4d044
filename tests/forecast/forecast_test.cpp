#include "forecast/forecast.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace fc = clisonix::forecast;

namespace {

// A daily pattern on an hourly grid: 0, 1, ..., 23 repeated.
std::vector<double> daily_ramp(int days) {
    std::vector<double> y;
    for (int d = 0; d < days; ++d)
        for (int h = 0; h < 24; ++h)
            y.push_back(h);
    return y;
}

}  // namespace

TEST(forecast, finds_a_daily_season_and_repeats_it) {
    auto y = daily_ramp(10);
    auto f = fc::forecast(y, {.horizon = 30, .step_ns = 3'600'000'000'000LL});
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->season, 24);
    ASSERT_EQ(f->point.size(), 30u);
    // The autoregression's small ridge penalty leaves a trace far below the pattern's steps.
    EXPECT_NEAR(f->point[0], 0.0, 0.05);
    EXPECT_NEAR(f->point[23], 23.0, 0.05);
    EXPECT_NEAR(f->point[29], 5.0, 0.05);
    for (size_t k = 0; k < f->point.size(); ++k) {
        EXPECT_LE(f->lower95[k], f->lower50[k]);
        EXPECT_LE(f->lower50[k], f->point[k]);
        EXPECT_LE(f->point[k], f->upper50[k]);
        EXPECT_LE(f->upper50[k], f->upper95[k]);
    }
}

TEST(forecast, fills_missing_steps) {
    auto y = daily_ramp(10);
    y[230] = std::numeric_limits<double>::quiet_NaN();
    auto f = fc::forecast(y, {.horizon = 24, .step_ns = 3'600'000'000'000LL});
    ASSERT_TRUE(f) << f.error().message;
    for (double v : f->point)
        EXPECT_TRUE(std::isfinite(v));
}

TEST(forecast, refuses_bad_input_naming_the_field) {
    std::vector<double> two = {1, 2};
    auto f = fc::forecast(two, {.horizon = 5});
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().field, "history");
    auto y = daily_ramp(3);
    auto g = fc::forecast(y, {.horizon = 0});
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().field, "horizon");
    auto u = fc::forecast(y, {.horizon = 5, .method = "crystal-ball"});
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().field, "method");
}

TEST(forecast, crossing_reads_the_distribution) {
    fc::result_t f;
    for (int k = 0; k < 10; ++k) {
        double p = 80 + 2 * k;  // 80, 82, ..., 98
        f.point.push_back(p);
        f.lower50.push_back(p - 1);
        f.upper50.push_back(p + 1);
        f.lower95.push_back(p - 4);
        f.upper95.push_back(p + 4);
    }
    auto c = fc::crossing(f, 89.5, true);
    EXPECT_TRUE(c.within_horizon);
    EXPECT_EQ(c.expected, 6);  // point 90 at step 6: probability above 0.5
    EXPECT_EQ(c.earliest, 4);  // upper95 90 at step 4: above 0.025
    EXPECT_EQ(c.latest, 8);    // lower95 90 at step 8: above 0.975
    auto below = fc::crossing(f, 50, false);
    EXPECT_FALSE(below.within_horizon);
    EXPECT_FALSE(below.expected);
    EXPECT_LT(below.probability, 0.025);
}

namespace {

constexpr int64_t hour_ns = 3'600'000'000'000LL;

// Hourly values over `days` days starting on a Monday at midnight: a daily shape (low at
// night, high by day) on weekdays, a quarter of it on Saturday and Sunday.
std::vector<double> weekly_plant(int days) {
    std::vector<double> y;
    for (int d = 0; d < days; ++d)
        for (int h = 0; h < 24; ++h) {
            const double shape = 100 + 50 * std::sin(3.14159265358979 * h / 24.0);
            y.push_back(d % 7 >= 5 ? 0.25 * shape : shape);
        }
    return y;
}

// A fixed pseudo-random sequence, uniform in [-1, 1).
std::vector<double> noise(size_t n, uint32_t seed) {
    std::vector<double> v(n);
    for (auto& x : v) {
        seed = seed * 1664525u + 1013904223u;
        x = static_cast<double>(seed >> 8) / static_cast<double>(1u << 23) - 1.0;
    }
    return v;
}

}  // namespace

TEST(forecast, lists_auto_and_every_single_model_and_each_one_runs) {
    auto names = fc::method_names();
    ASSERT_GE(names.size(), 8u);
    EXPECT_EQ(names[0], "auto");
    for (auto expected :
         {"snaive", "naive2", "ses", "theta", "ets-damped", "decomp-week", "ar-ridge"})
        EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
    auto y = weekly_plant(28);
    for (auto name : names) {
        auto f = fc::forecast(y, {.horizon = 48, .step_ns = hour_ns, .method = name});
        ASSERT_TRUE(f) << name << ": " << f.error().message;
        ASSERT_EQ(f->point.size(), 48u) << name;
        for (double v : f->point)
            EXPECT_TRUE(std::isfinite(v)) << name;
    }
}

TEST(forecast, finds_the_week_and_forecasts_the_weekend_low) {
    // Four weeks from a Monday end on Sunday night; five more days end on Friday night, so
    // the next 48 hours are a weekend: the quarter-height days, which the day before (a
    // Friday) does not show.
    auto y = weekly_plant(33);
    auto f = fc::forecast(y, {.horizon = 48, .step_ns = hour_ns});
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->season, 24);
    for (int k = 0; k < 48; ++k) {
        const double shape = 100 + 50 * std::sin(3.14159265358979 * (k % 24) / 24.0);
        EXPECT_NEAR(f->point[static_cast<size_t>(k)], 0.25 * shape, 0.02 * shape) << "step " << k;
    }
    // Seasonal naive repeats Friday instead: what "auto" gains from the week.
    auto naive = fc::forecast(y, {.horizon = 48, .step_ns = hour_ns, .method = "snaive"});
    ASSERT_TRUE(naive);
    EXPECT_GT(naive->point[12], 140);
}

TEST(forecast, a_damped_trend_continues_and_flattens) {
    std::vector<double> y;
    for (int t = 0; t < 200; ++t)
        y.push_back(50 + 0.5 * t);
    auto f = fc::forecast(y, {.horizon = 48, .season = 1, .method = "ets-damped"});
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_NEAR(f->point[0], 150.0, 0.1);  // the next value of the line
    for (size_t k = 1; k < 48; ++k)
        EXPECT_GT(f->point[k], f->point[k - 1]);
    // Damped: below the straight line by the end, yet well above where the history stopped.
    EXPECT_LT(f->point[47], 150 + 0.5 * 47 - 1);
    EXPECT_GT(f->point[47], 150 + 0.5 * 10);
    // The product's method also carries the trend on.
    auto a = fc::forecast(y, {.horizon = 48, .season = 1});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_NEAR(a->point[0], 150.0, 1.0);
    EXPECT_GT(a->point[47], 160.0);
}

TEST(forecast, gaps_and_leading_nans_do_not_change_the_pattern) {
    auto y = weekly_plant(33);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> gappy(10, nan);  // a sensor that started late
    gappy.insert(gappy.end(), y.begin(), y.end());
    for (size_t i = 300; i < 312; ++i)
        gappy[i] = nan;  // half a day lost
    gappy[gappy.size() - 30] = nan;
    auto clean = fc::forecast(y, {.horizon = 48, .step_ns = hour_ns});
    auto f = fc::forecast(gappy, {.horizon = 48, .step_ns = hour_ns});
    ASSERT_TRUE(clean && f) << (f ? "" : f.error().message);
    EXPECT_EQ(f->history, static_cast<int>(y.size()));
    EXPECT_EQ(f->season, 24);
    for (size_t k = 0; k < 48; ++k)
        EXPECT_NEAR(f->point[k], clean->point[k], 0.05 * std::abs(clean->point[k]) + 0.5)
            << "step " << k;
}

TEST(forecast, intervals_are_ordered_widen_and_cover_the_noise) {
    auto y = weekly_plant(35);
    auto e = noise(y.size() + 48, 7);
    for (size_t i = 0; i < y.size(); ++i)
        y[i] += 10 * e[i];
    auto f = fc::forecast(y, {.horizon = 48, .step_ns = hour_ns});
    ASSERT_TRUE(f) << f.error().message;
    for (size_t k = 0; k < 48; ++k) {
        EXPECT_LT(f->lower95[k], f->lower50[k]);
        EXPECT_LT(f->lower50[k], f->point[k]);
        EXPECT_LT(f->point[k], f->upper50[k]);
        EXPECT_LT(f->upper50[k], f->upper95[k]);
        if (k > 0) {
            EXPECT_GE(f->upper95[k] - f->lower95[k], f->upper95[k - 1] - f->lower95[k - 1] - 1e-9);
        }
    }
    // Uniform noise of ±10: the 95 % interval is about ±9.5 wide on each side, not ±1 nor ±50.
    const double half = (f->upper95[0] - f->lower95[0]) / 2;
    EXPECT_GT(half, 6);
    EXPECT_LT(half, 25);
    // The measured error is the noise's (a mean absolute error of 5 for ±10 uniform).
    EXPECT_GT(f->mae, 3);
    EXPECT_LT(f->mae, 9);
    // And the next two days' values, with their own noise, fall inside nearly always.
    auto truth = weekly_plant(37);
    int inside = 0;
    for (size_t k = 0; k < 48; ++k) {
        const double v = truth[y.size() + k] + 10 * e[y.size() + k];
        inside += v >= f->lower95[k] && v <= f->upper95[k];
    }
    EXPECT_GE(inside, 44);
}

TEST(forecast, finds_a_machine_cycle_that_no_calendar_period_explains) {
    // A 37-minute batch cycle on a one-minute grid, with a little noise: no day, shift or
    // week fits twice in 15 hours of history, so the season is the cycle itself. (With more
    // history an 8-hour shift would also correlate, 480 minutes being 12.97 cycles, and the
    // calendar periods are tried first.)
    const int64_t minute_ns = 60'000'000'000LL;
    std::vector<double> y;
    for (int t = 0; t < 37 * 25; ++t)
        y.push_back(50 + 20 * std::sin(2 * 3.14159265358979 * t / 37.0) + ((t * 7919) % 13) * 0.1);
    auto f = fc::forecast(y, {.horizon = 37, .step_ns = minute_ns});
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->season, 37);
    for (int k = 0; k < 37; ++k) {
        const double expected = 50 + 20 * std::sin(2 * 3.14159265358979 * (37 * 25 + k) / 37.0);
        EXPECT_NEAR(f->point[static_cast<size_t>(k)], expected, 2.0) << "step " << k;
    }
    // A trend is not a cycle: its autocorrelation only decays.
    std::vector<double> rising;
    for (int t = 0; t < 600; ++t)
        rising.push_back(t * 0.5 + ((t * 7919) % 13) * 0.1);
    auto g = fc::forecast(rising, {.horizon = 10, .step_ns = minute_ns});
    ASSERT_TRUE(g);
    EXPECT_EQ(g->season, 1);
}
