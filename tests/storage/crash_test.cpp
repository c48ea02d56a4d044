// Crash safety: a writer process is killed with SIGKILL at random moments; after each kill
// the engine opens and every batch the writer saw acknowledged is there, point for point.
#include <gtest/gtest.h>
#include <signal.h>

#include <bit>
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

}  // namespace
}  // namespace clisonix::storage
