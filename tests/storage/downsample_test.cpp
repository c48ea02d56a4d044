// Downsampling: days past the raw retention keep only their rollup rows; aggregates over them
// equal those of the raw points, scans return nothing there, the newer days stay raw, and all
// of it survives a restart. A per-measurement raw retention applies to its measurement only.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "naive_aggregate.h"
#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix::storage {
namespace {

namespace fs = std::filesystem;

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t minute = 60 * sec;
constexpr int64_t hour = 3600 * sec;
constexpr int64_t day = 24 * hour;

using points = std::map<int64_t, double>;

const std::vector<std::string> keys = {"telemetry,dev=a temp", "telemetry,dev=b temp",
                                       "vibration,dev=a rms"};

int64_t today_start() {
    int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    return now / day * day;
}

// The reference answer: every point, bucket by bucket, the sum in long double.
std::vector<std::pair<int64_t, summary>> naive(const points& pts, int64_t from, int64_t to,
                                               int64_t step) {
    return testing_ref::naive_aggregate(pts.lower_bound(from), pts.lower_bound(to), step,
                                        [](double v) { return v; });
}

void expect_same_aggregates(const engine& e, series_id id, const points& pts, int64_t from,
                            int64_t to, int64_t step) {
    std::vector<std::pair<int64_t, summary>> got;
    auto st = e.aggregate(id, from, to, step, got);
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto want = naive(pts, from, to, step);
    ASSERT_EQ(got.size(), want.size()) << "series " << id << " step " << step;
    for (size_t k = 0; k < want.size(); ++k) {
        SCOPED_TRACE("series " + std::to_string(id) + " step " + std::to_string(step) + " bucket " +
                     std::to_string(k));
        const auto& g = got[k].second;
        const auto& w = want[k].second;
        ASSERT_EQ(got[k].first, want[k].first);
        ASSERT_TRUE(testing_ref::same_exact_fields(g, w));
        ASSERT_NEAR(g.sum, w.sum, 1e-9 * std::max(1.0, std::fabs(w.sum)));
    }
}

uint64_t dir_bytes(const fs::path& dir) {
    uint64_t n = 0;
    for (const auto& f : fs::recursive_directory_iterator(dir))
        if (f.is_regular_file()) n += f.file_size();
    return n;
}

// The format versions of a day's part files (the footer's u32 at 24 bytes before the end).
std::vector<uint32_t> part_versions(const fs::path& dir) {
    std::vector<uint32_t> out;
    for (const auto& f : fs::directory_iterator(dir)) {
        std::ifstream in(f.path(), std::ios::binary);
        in.seekg(-24, std::ios::end);
        uint8_t b[4] = {};
        in.read(reinterpret_cast<char*>(b), 4);
        out.push_back(b[0] | b[1] << 8 | b[2] << 16 | static_cast<uint32_t>(b[3]) << 24);
    }
    return out;
}

size_t scan_count(const engine& e, series_id id, int64_t from, int64_t to) {
    std::vector<sample> out;
    auto s = e.scan(id, from, to, out);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return out.size();
}

// Four whole days of 1 Hz random walks (one decimal) for each series, ending at the start of
// today (the last day, yesterday, is within a raw retention of one day).
class downsampling : public ::testing::Test {
protected:
    void SetUp() override {
        first_day = today_start() - 4 * day;
        std::mt19937_64 rng(11);
        std::normal_distribution<double> step(0, 0.3);
        std::vector<double> level(keys.size(), 20.0);
        auto e = open(options_for(0, {}));
        for (int64_t h = 0; h < 4 * 24; ++h) {
            write_batch b;
            for (size_t k = 0; k < keys.size(); ++k) {
                auto s = *b.series(keys[k], value_type::float64);
                for (int64_t i = 0; i < 3600; ++i) {
                    int64_t ts = first_day + h * hour + i * sec;
                    level[k] = std::round((level[k] + step(rng)) * 10) / 10;
                    b.add(s, ts, level[k]);
                    ref[k][ts] = level[k];
                }
            }
            ASSERT_TRUE(e->write(b).ok());
        }
        ASSERT_TRUE(e->flush().ok());
        ASSERT_TRUE(e->compact().ok());
        for (size_t k = 0; k < keys.size(); ++k)
            ids.push_back(e->series_by_key(keys[k])->id);
    }

    options options_for(int64_t raw_retention,
                        std::vector<std::pair<std::string, int64_t>> by_measurement) {
        options o;
        o.dir = dir.str() + "/tsdb";
        o.out_of_order_window_ns = 30 * day;
        o.raw_retention_ns = raw_retention;
        o.raw_retention_by_measurement = std::move(by_measurement);
        return o;
    }
    std::unique_ptr<engine> open(const options& o) {
        auto e = engine::open(o);
        EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
        return e.ok() ? std::move(*e) : nullptr;
    }
    fs::path day_dir(int64_t d) const {
        // parts/<YYYY-MM-DD>: the day's folder, found by its points' date.
        auto t = std::chrono::sys_days{std::chrono::days{(first_day + d * day) / day}};
        std::chrono::year_month_day ymd{t};
        char name[16];
        std::snprintf(name, sizeof name, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
        return dir.path() / "tsdb" / "parts" / name;
    }
    // Every aggregate the rows answer exactly: steps that are multiples of a minute over
    // ranges aligned to the step, across downsampled and raw days.
    void expect_exact_aggregates(const engine& e, size_t k) {
        int64_t end = first_day + 4 * day;
        expect_same_aggregates(e, ids[k], ref[k], first_day, end, hour);
        expect_same_aggregates(e, ids[k], ref[k], first_day, end, day);
        expect_same_aggregates(e, ids[k], ref[k], first_day, end, 6 * hour);
        expect_same_aggregates(e, ids[k], ref[k], first_day + 2 * hour, first_day + 5 * hour,
                               5 * minute);
        expect_same_aggregates(e, ids[k], ref[k], first_day + day - hour, first_day + day + hour,
                               minute);
    }

    testing::temp_dir dir;
    int64_t first_day = 0;
    std::vector<points> ref = std::vector<points>(keys.size());
    std::vector<series_id> ids;
};

TEST_F(downsampling, old_days_keep_rows_that_answer_aggregates_exactly) {
    std::vector<uint64_t> before;
    for (int d = 0; d < 4; ++d)
        before.push_back(dir_bytes(day_dir(d)));
    {
        auto e = open(options_for(day, {}));
        ASSERT_TRUE(e->compact().ok());
        auto check = [&](const engine& eng) {
            for (size_t k = 0; k < keys.size(); ++k) {
                SCOPED_TRACE(keys[k]);
                // Three old days: no raw points; yesterday: all of them.
                EXPECT_EQ(scan_count(eng, ids[k], first_day, first_day + 3 * day), 0u);
                EXPECT_EQ(scan_count(eng, ids[k], first_day + 3 * day, first_day + 4 * day),
                          86'400u);
                expect_exact_aggregates(eng, k);
            }
            EXPECT_EQ(eng.statistics().points, 86'400u * keys.size());
        };
        check(*e);
        for (int d = 0; d < 3; ++d) {
            uint64_t after = dir_bytes(day_dir(d));
            // Rows of 60 points each (plus hourly rows) in place of the points.
            EXPECT_LT(after * 3, before[d]) << "day " << d << ": " << before[d] << " -> " << after;
        }
        EXPECT_EQ(dir_bytes(day_dir(3)), before[3]);
        // Every part written is version 4 (the downsampled entries are flagged in its rollup
        // trailer, which a version 2 reader would not know to look for).
        EXPECT_EQ(part_versions(day_dir(0)), std::vector<uint32_t>{4});
        EXPECT_EQ(part_versions(day_dir(3)), std::vector<uint32_t>{4});
        // Compacting again finds nothing left to downsample: the files stay as they are.
        auto sizes = dir_bytes(day_dir(0));
        ASSERT_TRUE(e->compact().ok());
        EXPECT_EQ(dir_bytes(day_dir(0)), sizes);
        e.reset();
        // After a restart: the same answers.
        e = open(options_for(day, {}));
        check(*e);
    }
}

TEST_F(downsampling, unaligned_buckets_count_each_row_where_its_first_point_lies) {
    auto e = open(options_for(day, {}));
    ASSERT_TRUE(e->compact().ok());
    // 90 s buckets over a downsampled day: minute rows starting at 0 and 60 s fall in the first
    // bucket, the row at 120 s in the second, so counts alternate 120, 60 (documented).
    std::vector<std::pair<int64_t, summary>> got;
    ASSERT_TRUE(e->aggregate(ids[0], first_day, first_day + hour, 90 * sec, got).ok());
    ASSERT_EQ(got.size(), 40u);
    EXPECT_EQ(got[0].first, first_day);
    EXPECT_EQ(got[0].second.count, 120u);
    EXPECT_EQ(got[1].second.count, 60u);
    EXPECT_EQ(got[1].second.first_ts, first_day + 2 * minute);
    uint64_t total = 0;
    for (const auto& [bucket, s] : got)
        total += s.count;
    EXPECT_EQ(total, 3600u);
    // A range that starts inside a minute: that minute's row is not counted.
    ASSERT_TRUE(e->aggregate(ids[0], first_day + 30 * sec, first_day + hour, hour, got).ok());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].second.count, 3540u);
    EXPECT_EQ(got[0].second.first_ts, first_day + minute);
}

TEST_F(downsampling, a_measurement_override_applies_to_that_measurement_only) {
    auto e = open(options_for(0, {{"vibration", day}}));
    ASSERT_TRUE(e->compact().ok());
    int64_t old_end = first_day + 3 * day;
    EXPECT_EQ(scan_count(*e, ids[0], first_day, old_end), 3 * 86'400u);
    EXPECT_EQ(scan_count(*e, ids[1], first_day, old_end), 3 * 86'400u);
    EXPECT_EQ(scan_count(*e, ids[2], first_day, old_end), 0u);
    EXPECT_EQ(scan_count(*e, ids[2], old_end, old_end + day), 86'400u);
    for (size_t k = 0; k < keys.size(); ++k)
        expect_exact_aggregates(*e, k);
    e.reset();
    // The default raw retention, with telemetry kept raw (0) by its override.
    e = open(options_for(day, {{"telemetry", 0}}));
    ASSERT_TRUE(e->compact().ok());
    EXPECT_EQ(scan_count(*e, ids[0], first_day, old_end), 3 * 86'400u);
    EXPECT_EQ(scan_count(*e, ids[2], first_day, old_end), 0u);
    for (size_t k = 0; k < keys.size(); ++k)
        expect_exact_aggregates(*e, k);
}

TEST_F(downsampling, points_written_into_a_downsampled_day_join_its_rows) {
    auto e = open(options_for(day, {}));
    ASSERT_TRUE(e->compact().ok());
    // A late point in an empty minute of a downsampled day (a gap made here for the purpose
    // would need raw points; instead a timestamp between two seconds, which no row holds).
    write_batch b;
    auto s = *b.series(keys[0], value_type::float64);
    int64_t late = first_day + 10 * hour + sec / 2;
    b.add(s, late, 1000.0);
    ASSERT_TRUE(e->write(b).ok());
    ref[0][late] = 1000.0;
    ASSERT_TRUE(e->flush().ok());
    expect_exact_aggregates(*e, 0);
    ASSERT_TRUE(e->compact().ok());
    EXPECT_EQ(scan_count(*e, ids[0], first_day, first_day + 3 * day), 0u);
    expect_exact_aggregates(*e, 0);
    e.reset();
    e = open(options_for(day, {}));
    expect_exact_aggregates(*e, 0);
}

}  // namespace
}  // namespace clisonix::storage
