// The forecast service's grid (regularisation of stored buckets) and its bounded cache, on a
// real engine in a temp dir.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/time.h"
#include "forecast/forecast.h"
#include "storage/storage.h"
#include "support/test_support.h"

namespace fc = clisonix::forecast;
namespace storage = clisonix::storage;

namespace {

constexpr int64_t second = 1'000'000'000;
constexpr int64_t minute = 60 * second;
constexpr int64_t hour = 60 * minute;

TEST(forecast_grid, empty_buckets_are_nan_and_buckets_outside_are_ignored) {
    // Buckets at 0, 2 and 3 steps; the one at 5 is past the end, the one at -1 before start.
    std::vector<std::pair<int64_t, double>> buckets{
        {-1 * minute, 9}, {0, 1}, {2 * minute, 3}, {3 * minute, 4}, {5 * minute, 6}};
    auto g = fc::to_grid(buckets, minute, 4 * minute, 4);
    ASSERT_EQ(g.values.size(), 4u);
    EXPECT_EQ(g.values[0], 1);
    EXPECT_TRUE(std::isnan(g.values[1]));
    EXPECT_EQ(g.values[2], 3);
    EXPECT_EQ(g.values[3], 4);
    EXPECT_EQ(g.end_ns, 4 * minute);
}

TEST(forecast_grid, ends_before_the_bucket_still_filling_or_after_the_last_point) {
    // A live series: now is 10:07 with a point at 10:06; the 10:05 bucket is still filling.
    EXPECT_EQ(fc::grid_end(10 * hour + 6 * minute, 10 * hour + 7 * minute, 5 * minute),
              10 * hour + 5 * minute);
    // A point exactly at a bucket start: that bucket is still filling too.
    EXPECT_EQ(fc::grid_end(10 * hour, 10 * hour + 1, hour), 10 * hour);
    // A series that stopped at 07:40: its last bucket (07:00) is complete and kept.
    EXPECT_EQ(fc::grid_end(7 * hour + 40 * minute, 10 * hour + 7 * minute, hour), 8 * hour);
}

TEST(forecast_grid, nice_steps_round_up) {
    EXPECT_EQ(fc::nice_step(1), second);
    EXPECT_EQ(fc::nice_step(7 * second), 10 * second);
    EXPECT_EQ(fc::nice_step(60 * second), minute);
    EXPECT_EQ(fc::nice_step(61 * second), 5 * minute);
    EXPECT_EQ(fc::nice_step(86'400 * second / 1000), 5 * minute);  // a day over 1,000 steps
    EXPECT_EQ(fc::nice_step(90 * minute), 2 * hour);
    EXPECT_EQ(fc::nice_step(36 * hour), 48 * hour);
}

class forecast_service : public ::testing::Test {
protected:
    void SetUp() override {
        storage::options opts;
        opts.dir = (dir.path() / "tsdb").string();
        auto e = storage::engine::open(opts);
        ASSERT_TRUE(e) << e.error().message;
        engine = std::move(*e);
    }

    // An hourly series over the last 3 days, ending in the hour before now.
    void write_hourly(const std::string& device, const std::string& metric, double offset) {
        storage::write_batch batch;
        auto id =
            batch.series("plant,device=" + device + " " + metric, storage::value_type::float64);
        ASSERT_TRUE(id);
        const int64_t last = (clisonix::now_ns() / hour - 1) * hour;
        for (int64_t t = last - 72 * hour; t <= last; t += hour)
            batch.add(*id, t, offset + static_cast<double>((t / hour) % 24));
        ASSERT_TRUE(engine->write(batch));
    }

    clisonix::testing::temp_dir dir{"clisonix-forecast"};
    std::unique_ptr<storage::engine> engine;
};

TEST_F(forecast_service, reads_mean_per_bucket_and_continues_the_grid) {
    write_hourly("a", "t", 100);
    fc::service svc(*engine);
    auto f = svc.forecast_series("a", "t", 6 * hour, hour);
    ASSERT_TRUE(f) << f.error().message;
    const int64_t last = (clisonix::now_ns() / hour - 1) * hour;
    EXPECT_EQ(f->last_ns, last);
    EXPECT_EQ(f->last_value, 100 + static_cast<double>((last / hour) % 24));
    EXPECT_EQ(f->first_ns, last + hour);
    EXPECT_EQ(f->history_points, 73);
    EXPECT_EQ(f->horizon(), 6);
    EXPECT_EQ(f->result->season, 24);
    EXPECT_NEAR(f->result->point[0], 100 + static_cast<double>((last / hour + 1) % 24), 1e-9);

    // Without a step, the hourly spacing gives an hourly grid.
    auto automatic = svc.forecast_series("a", "t", 6 * hour);
    ASSERT_TRUE(automatic);
    EXPECT_EQ(automatic->step_ns, hour);

    EXPECT_EQ(svc.forecast_series("a", "missing", hour, hour).error().code, "not_found");
}

TEST_F(forecast_service, cache_holds_at_most_its_bound_least_recently_used_out) {
    for (auto d : {"a", "b", "c"})
        write_hourly(d, "t", 0);
    fc::service svc(*engine, {.cache_entries = 2});
    ASSERT_TRUE(svc.forecast_series("a", "t", 6 * hour, hour));
    ASSERT_TRUE(svc.forecast_series("b", "t", 6 * hour, hour));
    ASSERT_TRUE(svc.forecast_series("a", "t", 6 * hour, hour));  // a hit; b is now the oldest
    EXPECT_EQ(svc.cache().hits, 1u);
    ASSERT_TRUE(svc.forecast_series("c", "t", 6 * hour, hour));  // evicts b
    EXPECT_EQ(svc.cache().entries, 2u);
    ASSERT_TRUE(svc.forecast_series("a", "t", 6 * hour, hour));
    EXPECT_EQ(svc.cache().hits, 2u);
    ASSERT_TRUE(svc.forecast_series("b", "t", 6 * hour, hour));  // computed again
    auto stats = svc.cache();
    EXPECT_EQ(stats.hits, 2u);
    EXPECT_EQ(stats.misses, 4u);
    EXPECT_EQ(stats.entries, 2u);
    // Another horizon is another forecast.
    ASSERT_TRUE(svc.forecast_series("b", "t", 12 * hour, hour));
    EXPECT_EQ(svc.cache().misses, 5u);
}

}  // namespace
