// Queries over a fleet, run against a real engine: top-k and per-device aggregates over many
// series (evaluated over the cores in runs) give exactly the one-by-one answer.
#include <gtest/gtest.h>

#include "query/query.h"
#include "support/test_support.h"

namespace clisonix::query {
namespace {

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t t0 = 1704067200LL * sec;  // 2024-01-01T00:00:00Z
constexpr int devices = 300;

// Device d<i>'s temperature: 60 points a minute apart, peaking at (i * 37) % 1000 at
// minute i % 60; every other point is 0.
std::unique_ptr<storage::engine> fleet(const testing::temp_dir& dir) {
    storage::options o;
    o.dir = dir.str() + "/tsdb";
    auto e = storage::engine::open(o);
    EXPECT_TRUE(e.ok());
    storage::write_batch b;
    for (int i = 0; i < devices; ++i) {
        auto id = *b.series("telemetry,device=d" + std::to_string(1000 + i) + " temperature",
                            storage::value_type::float64);
        for (int m = 0; m < 60; ++m)
            b.add(id, t0 + m * 60 * sec, m == i % 60 ? (i * 37) % 1000 : 0.0);
    }
    EXPECT_TRUE((*e)->write(b).ok());
    return std::move(*e);
}

double peak_of(int i) {
    return (i * 37) % 1000;
}

TEST(query_run, top_k_over_hundreds_of_devices_ranks_exactly) {
    testing::temp_dir dir;
    auto e = fleet(dir);
    auto s = parse_spec({{"metric", "temperature"},
                         {"agg", "max"},
                         {"order", "max_desc"},
                         {"limit", "4"},
                         {"from", std::to_string(t0 / 1'000'000)},
                         {"to", std::to_string(t0 / 1'000'000 + 3'600'000)}},
                        t0);
    ASSERT_TRUE(s.ok());
    auto r = run(*e, *s);
    ASSERT_TRUE(r.ok()) << r.error().message;
    // Peaks (i * 37) % 1000 for i < 300: 999 (i=27), 998 (i=54), 997 (i=81), 996 (i=108).
    std::vector<std::pair<std::string, double>> got;
    for (const auto& series : *r)
        got.emplace_back(series.tags.at(0).second, std::get<double>(series.points.at(0).second));
    EXPECT_EQ(got, (std::vector<std::pair<std::string, double>>{
                       {"d1027", 999}, {"d1054", 998}, {"d1081", 997}, {"d1108", 996}}));
}

TEST(query_run, a_bucketed_aggregate_per_device_over_hundreds_of_devices_is_exact) {
    testing::temp_dir dir;
    auto e = fleet(dir);
    auto s = parse_spec({{"device", "d1*"},
                         {"agg", "max"},
                         {"step", "10m"},
                         {"from", std::to_string(t0 / 1'000'000)},
                         {"to", std::to_string(t0 / 1'000'000 + 3'600'000)}},
                        t0);
    ASSERT_TRUE(s.ok());
    auto r = run(*e, *s);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), static_cast<size_t>(devices));
    for (int i = 0; i < devices; ++i) {
        const auto& series = (*r)[static_cast<size_t>(i)];
        ASSERT_EQ(series.tags.at(0).second, "d" + std::to_string(1000 + i));
        ASSERT_EQ(series.points.size(), 6u);
        for (int b = 0; b < 6; ++b) {
            const double expected = (i % 60) / 10 == b ? peak_of(i) : 0.0;
            ASSERT_EQ(series.points[static_cast<size_t>(b)].first, t0 + b * 600 * sec);
            ASSERT_EQ(std::get<double>(series.points[static_cast<size_t>(b)].second), expected)
                << "device " << i << " bucket " << b;
        }
    }
}

TEST(query_run, first_and_last_of_a_string_series_are_its_texts) {
    testing::temp_dir dir;
    storage::options o;
    o.dir = dir.str() + "/tsdb";
    auto e = storage::engine::open(o);
    ASSERT_TRUE(e.ok());
    storage::write_batch b;
    auto id = *b.series("telemetry,device=press-1 state", storage::value_type::string);
    const char* states[] = {"idle", "running", "fault", "running", "idle", "stopped"};
    for (int m = 0; m < 6; ++m)
        b.add_string(id, t0 + m * 10 * 60 * sec, states[m]);
    ASSERT_TRUE((*e)->write(b).ok());
    auto answer = [&](const std::string& agg, const std::string& step) {
        std::map<std::string, std::string, std::less<>> params{
            {"metric", "state"},
            {"agg", agg},
            {"from", std::to_string(t0 / 1'000'000)},
            {"to", std::to_string(t0 / 1'000'000 + 3'600'000)}};
        if (!step.empty()) params["step"] = step;
        auto s = parse_spec(params, t0);
        EXPECT_TRUE(s.ok());
        auto r = run(**e, *s);
        EXPECT_TRUE(r.ok()) << r.error().message;
        std::vector<std::pair<int64_t, std::string>> got;
        for (const auto& p : r->at(0).points)
            got.emplace_back(p.first / sec - t0 / sec, std::get<std::string>(p.second));
        return got;
    };
    using texts = std::vector<std::pair<int64_t, std::string>>;
    EXPECT_EQ(answer("first", ""), (texts{{0, "idle"}}));
    EXPECT_EQ(answer("last", ""), (texts{{0, "stopped"}}));
    // Half-hour buckets: minutes 0, 10, 20 and 30, 40, 50.
    EXPECT_EQ(answer("first", "30m"), (texts{{0, "idle"}, {1800, "running"}}));
    EXPECT_EQ(answer("last", "30m"), (texts{{0, "fault"}, {1800, "stopped"}}));
}

}  // namespace
}  // namespace clisonix::query
