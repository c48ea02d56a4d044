// Crash safety: a writer process is killed with SIGKILL at random moments; after each kill
// the engine opens and every batch the writer saw acknowledged is there, point for point,
// also when the kill lands during a compaction (rollups included).
#include <gtest/gtest.h>
#include <signal.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix::storage {
namespace {

constexpr int series_per_batch = 50;  // as in crash_writer.cpp
constexpr int points_per_series = 20;

TEST(storage_crash, every_acknowledged_batch_survives_sigkill) {
    testing::temp_dir d;
    std::string dir = d.str() + "/tsdb";
    std::mt19937 rng(std::random_device{}());
    size_t total_acked = 0;
    for (int run = 0; run < 12; ++run) {
        SCOPED_TRACE("run " + std::to_string(run));
        testing::process writer({CRASH_WRITER, dir, std::to_string(run), "3"});
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(150, 600)(rng)));
        writer.signal(SIGKILL);
        auto code = writer.wait(std::chrono::seconds(10));
        ASSERT_TRUE(code.has_value());
        ASSERT_EQ(*code, 128 + SIGKILL) << writer.err();
        std::istringstream lines(writer.out());
        std::vector<std::vector<int>> acked(3);
        int r, t, k;
        while (lines >> r >> t >> k) {
            ASSERT_EQ(r, run);
            acked[t].push_back(k);
        }
        options o;
        o.dir = dir;
        auto e = engine::open(o);
        ASSERT_TRUE(e.ok()) << e.error().message;
        const int64_t base = 1710028800LL * 1'000'000'000 + run * 1'000'000'000'000LL;
        for (int th = 0; th < 3; ++th) {
            if (acked[th].empty()) continue;
            total_acked += acked[th].size();
            for (int s = 0; s < series_per_batch; s += 7) {
                auto info = (*e)->series_by_key("crash,thread=" + std::to_string(th) + " f" +
                                                std::to_string(s));
                ASSERT_TRUE(info.has_value());
                std::vector<sample> pts;
                ASSERT_TRUE((*e)->scan(info->id, base, base + 1'000'000'000'000LL, pts).ok());
                for (int kk : acked[th]) {
                    for (int j = 0; j < points_per_series; ++j) {
                        size_t i = static_cast<size_t>(kk) * points_per_series + j;
                        ASSERT_LT(i, pts.size()) << "thread " << th << " batch " << kk;
                        ASSERT_EQ(pts[i].ts, base + static_cast<int64_t>(i));
                        ASSERT_EQ(std::bit_cast<double>(pts[i].raw), kk * 1000.0 + s);
                    }
                }
            }
        }
    }
    EXPECT_GT(total_acked, 0u);
    std::printf("acknowledged batches checked: %zu\n", total_acked);
}

// Kills land while parts are merged (the writer flushes and compacts without pause): after
// each restart every acknowledged point is there exactly once, and aggregates (answered from
// rollups where they cover whole intervals) equal a naive pass over the scanned points.
TEST(storage_crash, a_kill_during_compaction_leaves_points_and_rollups_consistent) {
    testing::temp_dir d;
    std::string dir = d.str() + "/tsdb";
    std::mt19937 rng(std::random_device{}());
    constexpr int64_t sec = 1'000'000'000;
    size_t total_acked = 0, cut_short = 0;
    uint64_t rows_read = 0;
    for (int run = 0; run < 8; ++run) {
        SCOPED_TRACE("run " + std::to_string(run));
        testing::process writer({CRASH_WRITER, dir, std::to_string(run), "2", "compact"});
        // The history first (slow in sanitizer builds), then a kill at a random moment.
        for (int i = 0; i < 600 && writer.out().empty() && writer.running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 800)(rng)));
        writer.signal(SIGKILL);
        auto code = writer.wait(std::chrono::seconds(10));
        ASSERT_TRUE(code.has_value());
        ASSERT_EQ(*code, 128 + SIGKILL) << writer.err();
        std::istringstream lines(writer.out());
        std::vector<int> acked(2, -1);  // the highest acknowledged batch per thread
        int r, t, k;
        while (lines >> r >> t >> k) {
            ASSERT_EQ(r, run);
            acked[t] = std::max(acked[t], k);
            ++total_acked;
        }
        // A merge cut short leaves its temp file (removed at open); count them as evidence.
        std::error_code ec;
        for (auto it = std::filesystem::recursive_directory_iterator(dir + "/parts", ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            cut_short += it->path().extension() == ".tmp";
        options o;
        o.dir = dir;
        auto e = engine::open(o);
        ASSERT_TRUE(e.ok()) << e.error().message;
        const int64_t base = 1710028800LL * sec + run * 864'000LL * sec;
        for (int th = 0; th < 2; ++th) {
            for (int s = 0; s < series_per_batch; s += 9) {
                auto info = (*e)->series_by_key("crash,thread=" + std::to_string(th) + " f" +
                                                std::to_string(s));
                if (acked[th] < 0 && !info) continue;
                ASSERT_TRUE(info.has_value());
                std::vector<sample> pts;
                ASSERT_TRUE((*e)->scan(info->id, base, base + 864'000LL * sec, pts).ok());
                // Batches are written in order: the acknowledged ones, perhaps a few more.
                ASSERT_GE(pts.size(), static_cast<size_t>(acked[th] + 1) * points_per_series);
                for (size_t i = 0; i < pts.size(); ++i) {
                    ASSERT_EQ(pts[i].ts, base + static_cast<int64_t>(i) * sec) << i;
                    ASSERT_EQ(std::bit_cast<double>(pts[i].raw),
                              static_cast<double>(i / points_per_series) * 1000.0 + s);
                }
                for (int64_t step : {60 * sec, 3600 * sec, 7 * 60 * sec + 3}) {
                    std::vector<std::pair<int64_t, summary>> agg;
                    ASSERT_TRUE(
                        (*e)->aggregate(info->id, base, base + 864'000LL * sec, step, agg).ok());
                    size_t k2 = 0;
                    for (size_t i = 0; i < pts.size();) {
                        int64_t bucket = pts[i].ts - (pts[i].ts % step + step) % step;
                        size_t j = i;
                        double sum = 0, mn = INFINITY, mx = -INFINITY;
                        while (j < pts.size() && pts[j].ts < bucket + step) {
                            double v = std::bit_cast<double>(pts[j].raw);
                            sum += v;
                            mn = std::min(mn, v);
                            mx = std::max(mx, v);
                            ++j;
                        }
                        ASSERT_LT(k2, agg.size());
                        const auto& g = agg[k2].second;
                        ASSERT_EQ(agg[k2].first, bucket);
                        ASSERT_EQ(g.count, j - i);
                        ASSERT_EQ(g.first_ts, pts[i].ts);
                        ASSERT_EQ(g.last_ts, pts[j - 1].ts);
                        ASSERT_EQ(g.min, mn);
                        ASSERT_EQ(g.max, mx);
                        ASSERT_EQ(g.first, std::bit_cast<double>(pts[i].raw));
                        ASSERT_EQ(g.last, std::bit_cast<double>(pts[j - 1].raw));
                        ASSERT_NEAR(g.sum, sum, 1e-9 * std::fabs(sum));
                        ++k2;
                        i = j;
                    }
                    ASSERT_EQ(k2, agg.size());
                }
            }
        }
        rows_read += (*e)->statistics().query_rollup_rows_read;
    }
    EXPECT_GT(total_acked, 0u);
    EXPECT_GT(rows_read, 0u);  // the aggregates did use rollups
    std::printf("acknowledged batches: %zu, rollup rows read: %llu, part writes cut short: %zu\n",
                total_acked, static_cast<unsigned long long>(rows_read), cut_short);
}

}  // namespace
}  // namespace clisonix::storage
