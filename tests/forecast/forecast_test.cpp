#include "forecast/forecast.h"

#include <gtest/gtest.h>

#include <cmath>
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
    EXPECT_NEAR(f->point[0], 0.0, 0.01);
    EXPECT_NEAR(f->point[23], 23.0, 0.01);
    EXPECT_NEAR(f->point[29], 5.0, 0.01);
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
