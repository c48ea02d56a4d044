// Rollups: aggregates answered from 1-minute and 1-hour rows equal a naive scan of the same
// points, through out-of-order writes, replaced points, flushes, compactions, retention and
// restarts; long ranges at coarse steps read rollups only.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "common/time.h"
#include "naive_aggregate.h"
#include "storage/block.h"
#include "storage/io.h"
#include "storage/rollup.h"
#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix::storage {
namespace {

constexpr int64_t sec = 1'000'000'000;
constexpr int64_t minute = 60 * sec;
constexpr int64_t hour = 3600 * sec;
constexpr int64_t day = 24 * hour;
constexpr int64_t t0 = 1710028800LL * sec;  // 2024-03-10T00:00:00Z

using points = std::map<int64_t, double>;

// An engine on a fresh folder in `d` (a failure is reported; then null).
std::unique_ptr<engine> open_in(const testing::temp_dir& d) {
    options o;
    o.dir = d.str() + "/tsdb";
    auto opened = engine::open(o);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? std::move(*opened) : nullptr;
}

// The naive answer: every point, bucket by bucket, the sum in long double.
std::vector<std::pair<int64_t, summary>> naive(const points& pts, int64_t from, int64_t to,
                                               int64_t step) {
    return testing_ref::naive_aggregate(pts.lower_bound(from), pts.lower_bound(to), step,
                                        [](double v) { return v; });
}

void expect_same(const engine& e, series_id id, const points& pts, int64_t from, int64_t to,
                 int64_t step) {
    std::vector<std::pair<int64_t, summary>> got;
    auto st = e.aggregate(id, from, to, step, got);
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto want = naive(pts, from, to, step);
    ASSERT_EQ(got.size(), want.size()) << "from " << from << " to " << to << " step " << step;
    for (size_t k = 0; k < want.size(); ++k) {
        SCOPED_TRACE("series " + std::to_string(id) + " from " + std::to_string(from) + " to " +
                     std::to_string(to) + " step " + std::to_string(step) + " bucket " +
                     std::to_string(k));
        const auto& g = got[k].second;
        const auto& w = want[k].second;
        ASSERT_EQ(got[k].first, want[k].first);
        ASSERT_TRUE(testing_ref::same_exact_fields(g, w));
        // The mean, as the query API reports it, to 1e-9 relative.
        double gm = g.sum / static_cast<double>(g.count), wm = w.sum / static_cast<double>(w.count);
        ASSERT_NEAR(gm, wm, 1e-9 * std::max(1.0, std::fabs(wm)));
    }
}

TEST(storage_rollups, encode_and_decode_every_level_exactly) {
    // Two hours of 1 Hz decimal values with a gap, and the same as raw doubles.
    for (bool decimal : {true, false}) {
        std::vector<int64_t> ts;
        std::vector<uint64_t> raw;
        std::mt19937_64 rng(7);
        for (int64_t i = 0; i < 7200; ++i) {
            if (i >= 1000 && i < 1300) continue;
            ts.push_back(t0 + 1800 * sec + i * sec);
            double v = std::round(std::normal_distribution<double>(50, 10)(rng) * 10) / 10;
            if (!decimal) v = std::sqrt(v + 1000);
            raw.push_back(std::bit_cast<uint64_t>(v));
        }
        std::vector<uint8_t> bytes;
        rollup::build(value_type::float64, ts, raw, bytes);
        ASSERT_EQ(rollup::levels(bytes), rollup::minute | rollup::hour);
        for (auto l : {rollup::minute, rollup::hour}) {
            std::vector<rollup::row> rows;
            ASSERT_TRUE(rollup::read(bytes, ts.front(), l, rows).ok());
            size_t i = 0;
            for (const auto& r : rows) {
                size_t j = i;
                while (j < ts.size() && ts[j] < r.start + rollup::interval_ns(l))
                    ++j;
                summary want;
                block::summarize(value_type::float64, std::span(ts).subspan(i, j - i),
                                 std::span(raw).subspan(i, j - i), want);
                ASSERT_EQ(r.stats.count, want.count);
                ASSERT_EQ(r.stats.first_ts, want.first_ts);
                ASSERT_EQ(r.stats.last_ts, want.last_ts);
                ASSERT_EQ(r.stats.sum, want.sum);
                ASSERT_EQ(r.stats.min, want.min);
                ASSERT_EQ(r.stats.max, want.max);
                ASSERT_EQ(r.stats.first, want.first);
                ASSERT_EQ(r.stats.last, want.last);
                i = j;
            }
            EXPECT_EQ(i, ts.size());
            EXPECT_EQ(rows.size(), l == rollup::hour ? 3u : 116u);
        }
        // The rows cost a small share of the block they summarize (noisy values at 1 Hz).
        std::vector<uint8_t> block_bytes;
        block::encode(value_type::float64, ts, raw, {}, block_bytes);
        EXPECT_LT(bytes.size() * 5, block_bytes.size())
            << bytes.size() << " bytes of rollups, " << block_bytes.size() << " of points";
    }
    // Sparse data (a point every 10 s) keeps only the hourly level; one hour keeps nothing.
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    for (int64_t i = 0; i < 720; ++i) {
        ts.push_back(t0 + i * 10 * sec);
        raw.push_back(std::bit_cast<uint64_t>(20.5));
    }
    std::vector<uint8_t> bytes;
    rollup::build(value_type::float64, ts, raw, bytes);
    EXPECT_EQ(rollup::levels(bytes), rollup::hour);
    bytes.clear();
    rollup::build(value_type::float64, std::span(ts).first(360), raw, bytes);
    EXPECT_TRUE(bytes.empty());
}

TEST(storage_rollups, aggregates_equal_a_naive_scan_through_every_change) {
    testing::temp_dir d;
    options o;
    o.dir = d.str() + "/tsdb";
    o.out_of_order_window_ns = 10 * day;
    auto opened = engine::open(o);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto e = std::move(*opened);
    std::mt19937_64 rng(20241204);
    // dense: 1 Hz runs (both levels); sparse: every 10 s (hourly level); jitter: irregular;
    // count: integers.
    const std::vector<std::pair<std::string, value_type>> keys = {
        {"plant,line=1 dense", value_type::float64},
        {"plant,line=1 sparse", value_type::float64},
        {"plant,line=2 jitter", value_type::float64},
        {"plant,line=2 count", value_type::int64}};
    std::vector<points> ref(keys.size());
    const int days = 3;
    auto value = [&](size_t s) {
        if (keys[s].second == value_type::int64)
            return static_cast<double>(std::uniform_int_distribution<int>(-500, 500)(rng));
        return std::round(std::normal_distribution<double>(40, 8)(rng) * 100) / 100;
    };
    auto put = [&](write_batch& b, uint32_t local, size_t s, int64_t ts, double v) {
        if (keys[s].second == value_type::int64)
            b.add_int(local, ts, static_cast<int64_t>(v));
        else
            b.add(local, ts, v);
        ref[s][ts] = v;
    };
    // Chunks of each day written in shuffled order (out of order within the window).
    std::vector<int64_t> chunks;
    for (int64_t c = 0; c < days * 24; c += 3)
        chunks.push_back(t0 + c * hour);
    std::shuffle(chunks.begin(), chunks.end(), rng);
    write_batch b;
    int round = 0;
    for (int64_t start : chunks) {
        b.clear();
        std::vector<uint32_t> locals;
        for (const auto& [k, t] : keys)
            locals.push_back(*b.series(k, t));
        for (int64_t ts = start + 7 * sec; ts < start + 2 * hour; ts += sec) {
            if ((ts - t0) / hour % 5 != 4) put(b, locals[0], 0, ts, value(0));
            if ((ts - t0) % (10 * sec) == 0) put(b, locals[1], 1, ts, value(1));
            if (std::uniform_int_distribution<int>(0, 3)(rng) == 0)
                put(b, locals[2], 2, ts + std::uniform_int_distribution<int64_t>(0, sec - 1)(rng),
                    value(2));
            if ((ts - t0) % (2 * sec) == 0) put(b, locals[3], 3, ts, value(3));
        }
        // Replace some points written before (they may already be in parts).
        for (size_t s = 0; s < keys.size(); ++s) {
            if (ref[s].empty()) continue;
            for (int r = 0; r < 50; ++r) {
                auto it = ref[s].lower_bound(
                    std::uniform_int_distribution<int64_t>(t0, t0 + days * day)(rng));
                if (it == ref[s].end()) continue;
                put(b, locals[s], s, it->first, value(s));
            }
        }
        ASSERT_TRUE(e->write(b).ok());
        int action = round++ % 5;
        if (action == 1 || action == 3) {
            ASSERT_TRUE(e->flush().ok());
        }
        if (action == 2) {
            ASSERT_TRUE(e->compact().ok());
        }
        if (action == 4) {
            e.reset();
            auto again = engine::open(o);
            ASSERT_TRUE(again.ok());
            e = std::move(*again);
        }
    }

    auto check_all = [&](const std::string& when) {
        SCOPED_TRACE(when);
        static const int64_t steps[] = {minute, 5 * minute, hour, 6 * hour, day};
        for (series_id id = 0; id < keys.size(); ++id) {
            for (int64_t step : steps) {
                expect_same(*e, id, ref[id], t0 - day, t0 + (days + 1) * day, step);
                for (int q = 0; q < 3; ++q) {
                    int64_t from =
                        std::uniform_int_distribution<int64_t>(t0 - hour, t0 + days * day)(rng);
                    int64_t to =
                        std::uniform_int_distribution<int64_t>(from + 1, t0 + days * day)(rng);
                    expect_same(*e, id, ref[id], from, to, step);
                }
            }
        }
    };
    check_all("with data in the head and in parts");
    ASSERT_TRUE(e->flush().ok());
    auto before = e->statistics();
    check_all("after flush");
    auto after = e->statistics();
    EXPECT_GT(after.query_rollup_rows_read, before.query_rollup_rows_read);
    EXPECT_GT(after.rollup_bytes, 0u);
    ASSERT_TRUE(e->compact().ok());
    check_all("after compaction");

    // Retention: reopen with a retention that ends right after the first day.
    e.reset();
    o.retention_ns = now_ns() - (t0 + day);
    auto kept = engine::open(o);
    ASSERT_TRUE(kept.ok());
    e = std::move(*kept);
    ASSERT_TRUE(e->apply_retention(now_ns()).ok());
    for (auto& r : ref)
        r.erase(r.begin(), r.lower_bound(t0 + day));
    check_all("after retention");

    // An hourly query over whole days that no later write overlapped reads rows only.
    ASSERT_TRUE(e->compact().ok());
    before = e->statistics();
    expect_same(*e, 1, ref[1], t0 + day, t0 + days * day, hour);
    after = e->statistics();
    EXPECT_EQ(after.query_points_decoded, before.query_points_decoded);
    EXPECT_GT(after.query_rollup_rows_read, before.query_rollup_rows_read);
}

// A version 1 part (80-byte index entries, no rollups), as written before rollups existed,
// opens and is aggregated by decoding; once compaction merges it with a newer part, the
// merged part has rollups.
TEST(storage_rollups, version_1_parts_open_and_gain_rollups_when_compacted) {
    testing::temp_dir d;
    options o;
    o.dir = d.str() + "/tsdb";
    {
        auto e = engine::open(o);  // creates the folder and the series
        ASSERT_TRUE(e.ok());
        write_batch b;
        b.add(*b.series("old,line=1 temperature", value_type::float64), t0 - day, 1.0);
        ASSERT_TRUE((*e)->write(b).ok());
        ASSERT_TRUE((*e)->flush().ok());
    }
    points ref;
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    for (int64_t i = 0; i < 3 * 3600; ++i) {
        double v = static_cast<double>(i % 500) / 10;
        ts.push_back(t0 + i * sec);
        raw.push_back(std::bit_cast<uint64_t>(v));
        ref[ts.back()] = v;
    }
    // Blocks, then one 80-byte entry per block, then the 32-byte footer (docs/format/part.md).
    std::vector<uint8_t> file, index;
    for (size_t at = 0; at < ts.size(); at += 8192) {
        size_t n = std::min<size_t>(8192, ts.size() - at);
        size_t offset = file.size();
        auto h = block::encode(value_type::float64, std::span(ts).subspan(at, n),
                               std::span(raw).subspan(at, n), {}, file);
        uint8_t entry[80] = {};
        io::put_u32(entry, 0);
        entry[4] = static_cast<uint8_t>(value_type::float64);
        io::put_u64(entry + 8, offset);
        io::put_u32(entry + 16, static_cast<uint32_t>(file.size() - offset));
        io::put_u32(entry + 20, h.count);
        io::put_u64(entry + 24, static_cast<uint64_t>(h.first_ts));
        io::put_u64(entry + 32, static_cast<uint64_t>(h.last_ts));
        double values[5] = {h.stats.sum, h.stats.min, h.stats.max, h.stats.first, h.stats.last};
        for (int k = 0; k < 5; ++k)
            io::put_u64(entry + 40 + 8 * k, std::bit_cast<uint64_t>(values[k]));
        index.insert(index.end(), entry, entry + 80);
    }
    uint64_t index_offset = file.size();
    file.insert(file.end(), index.begin(), index.end());
    uint8_t footer[32] = {'C', 'L', 'X', 'P', 'A', 'R', 'T', '1'};
    io::put_u32(footer + 8, 1);
    io::put_u32(footer + 12, static_cast<uint32_t>(index.size() / 80));
    io::put_u64(footer + 16, index_offset);
    io::put_u32(footer + 24, io::crc32c(index.data(), index.size()));
    io::put_u32(footer + 28, io::crc32c(footer, 28));
    file.insert(file.end(), footer, footer + 32);
    std::filesystem::create_directories(o.dir + "/parts/2024-03-10");
    ASSERT_TRUE(
        io::write_durably(o.dir + "/parts/2024-03-10/00000000000000000100.part", file).ok());

    auto opened = engine::open(o);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& e = *opened;
    auto before = e->statistics();
    expect_same(*e, 0, ref, t0, t0 + day, hour);
    auto after = e->statistics();
    // The first block (hours 0 to 2) is decoded; the second lies inside hour 2 and is summed
    // from its summary.
    EXPECT_EQ(after.query_points_decoded - before.query_points_decoded, 8192u);
    EXPECT_EQ(after.query_rollup_rows_read, before.query_rollup_rows_read);
    EXPECT_EQ(after.rollup_bytes, 0u);

    // A newer part in the same day, then compaction: the merged part (version 2) has rollups.
    write_batch b;
    double late = 7.5;
    b.add(*b.series("old,line=1 temperature", value_type::float64), t0 + 5 * hour, late);
    ASSERT_TRUE(e->write(b).ok());
    ASSERT_TRUE(e->flush().ok());
    ASSERT_TRUE(e->compact().ok());
    ref[t0 + 5 * hour] = late;
    before = e->statistics();
    EXPECT_GT(before.rollup_bytes, 0u);
    expect_same(*e, 0, ref, t0, t0 + day, hour);
    after = e->statistics();
    EXPECT_EQ(after.query_points_decoded, before.query_points_decoded);
    EXPECT_EQ(after.query_rollup_rows_read - before.query_rollup_rows_read, 5u);
}

// 30 days of 1 Hz data at 1-hour steps: only rollup rows are read. (bench/rollup_bench.cpp
// runs the same for 100 series and prints the time.)
TEST(storage_rollups, thirty_days_of_1hz_data_at_hourly_steps_read_only_rollups) {
    testing::temp_dir d;
    auto e = open_in(d);
    ASSERT_TRUE(e);
#ifdef NDEBUG
    const int series = 2;
#else
    const int series = 1;  // sanitizer builds: a tenth of the speed
#endif
    const int days = 30;
    write_batch b;
    std::vector<uint32_t> locals;
    std::vector<std::vector<double>> hourly_sum(series, std::vector<double>(days * 24, 0));
    std::vector<double> level(series, 50.0);
    std::mt19937_64 rng(30);
    for (int dd = 0; dd < days; ++dd) {
        for (int64_t h = 0; h < 24; ++h) {
            b.clear();
            locals.clear();
            for (int s = 0; s < series; ++s)
                locals.push_back(
                    *b.series("machine,id=" + std::to_string(s) + " rpm", value_type::float64));
            for (int64_t i = 0; i < 3600; ++i) {
                int64_t ts = t0 + dd * day + h * hour + i * sec;
                for (int s = 0; s < series; ++s) {
                    // A random walk in steps of 0.1, as a slowly moving sensor.
                    double& v = level[static_cast<size_t>(s)];
                    v = std::round((v + std::normal_distribution<double>(0, 0.3)(rng)) * 10) / 10;
                    b.add(locals[static_cast<size_t>(s)], ts, v);
                    hourly_sum[static_cast<size_t>(s)][static_cast<size_t>(dd * 24 + h)] += v;
                }
            }
            ASSERT_TRUE(e->write(b).ok());
        }
        ASSERT_TRUE(e->flush().ok());
    }
    auto before = e->statistics();
    for (int s = 0; s < series; ++s) {
        std::vector<std::pair<int64_t, summary>> agg;
        ASSERT_TRUE(e->aggregate(static_cast<series_id>(s), t0, t0 + days * day, hour, agg).ok());
        ASSERT_EQ(agg.size(), static_cast<size_t>(days * 24));
        for (size_t k = 0; k < agg.size(); ++k) {
            ASSERT_EQ(agg[k].first, t0 + static_cast<int64_t>(k) * hour);
            ASSERT_EQ(agg[k].second.count, 3600u);
            ASSERT_EQ(agg[k].second.first_ts, agg[k].first);
            ASSERT_EQ(agg[k].second.last_ts, agg[k].first + hour - sec);
            ASSERT_NEAR(agg[k].second.sum, hourly_sum[static_cast<size_t>(s)][k], 1e-6);
        }
    }
    auto after = e->statistics();
    EXPECT_EQ(after.query_points_decoded, before.query_points_decoded);
    EXPECT_GE(after.query_rollup_rows_read - before.query_rollup_rows_read,
              static_cast<uint64_t>(series * days * 24));
    // The rows cost a small share of the points' bytes.
    std::printf("rollups: %llu of %llu bytes on disk for %llu points\n",
                static_cast<unsigned long long>(after.rollup_bytes),
                static_cast<unsigned long long>(after.disk_bytes),
                static_cast<unsigned long long>(after.points));
    EXPECT_LT(after.rollup_bytes * 4, after.disk_bytes);
}

// Anomaly scores and health keep no rollup rows (as many series as the data, read over
// short ranges): their aggregates decode the blocks and are exact all the same.
TEST(storage_rollups, derived_series_keep_no_rows_and_aggregate_exactly) {
    testing::temp_dir d;
    auto e = open_in(d);
    ASSERT_TRUE(e);
    points ref;
    write_batch b;
    uint32_t data = *b.series("line,machine=m1 temperature", value_type::float64);
    uint32_t score = *b.series("line,machine=m1 temperature.anomaly", value_type::float64);
    for (int64_t ts = t0; ts < t0 + 4 * hour; ts += sec) {
        double v = static_cast<double>((ts - t0) / sec % 1000) / 1000;
        b.add(data, ts, v);
        b.add(score, ts, v);
        ref[ts] = v;
    }
    ASSERT_TRUE(e->write(b).ok());
    ASSERT_TRUE(e->flush().ok());
    const auto with_data_rows = e->statistics().rollup_bytes;
    EXPECT_GT(with_data_rows, 0u);

    auto before = e->statistics();
    expect_same(*e, 0, ref, t0, t0 + 4 * hour, hour);
    auto after = e->statistics();
    EXPECT_EQ(after.query_points_decoded, before.query_points_decoded);
    EXPECT_GE(after.query_rollup_rows_read - before.query_rollup_rows_read, 4u);

    before = after;
    expect_same(*e, 1, ref, t0, t0 + 4 * hour, hour);
    expect_same(*e, 1, ref, t0 + 17 * minute, t0 + 3 * hour, minute);
    after = e->statistics();
    EXPECT_EQ(after.query_rollup_rows_read, before.query_rollup_rows_read);
    EXPECT_GT(after.query_points_decoded, before.query_points_decoded);
    // Compaction keeps it so: the rows on disk are the data series' alone.
    ASSERT_TRUE(e->compact().ok());
    EXPECT_EQ(e->statistics().rollup_bytes, with_data_rows);
}

// A flush that runs while writers are still sending (the head grew past its share) keeps
// each series' newest points in the head: points that then arrive late for that last minute
// land beside them rather than overlapping the block just written, and hourly aggregates
// still read rollup rows without decoding anything.
TEST(storage_rollups, late_points_after_a_background_flush_do_not_overlap_its_blocks) {
    testing::temp_dir d;
    options o;
    o.dir = d.str() + "/tsdb";
    o.max_head_bytes = 256 << 10;  // flushed in the background past 128 KiB
    auto opened = engine::open(o);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& e = *opened;
    points ref;
    write_batch b;
    auto write = [&](int64_t from, int64_t to, int64_t step, double offset) {
        b.clear();
        uint32_t local = *b.series("line,machine=m1 temperature", value_type::float64);
        for (int64_t ts = from; ts < to; ts += step) {
            double v = offset + static_cast<double>((ts - t0) / sec % 97) / 4;
            b.add(local, ts, v);
            ref[ts] = v;
        }
        ASSERT_TRUE(e->write(b).ok());
    };
    write(t0, t0 + 3 * hour, sec, 20);
    // The background flush (every 200 ms at most) leaves only the newest points in the head.
    for (int i = 0; i < 100 && e->statistics().head_points > 32; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(e->statistics().head_points, 32u);
    // Late: the last 20 s again with new values, and points between the last seconds.
    write(t0 + 3 * hour - 20 * sec, t0 + 3 * hour, sec, 30);
    write(t0 + 3 * hour - 10 * sec + sec / 2, t0 + 3 * hour, sec, 40);

    auto before = e->statistics();
    expect_same(*e, 0, ref, t0, t0 + 3 * hour, hour);
    auto after = e->statistics();
    EXPECT_EQ(after.query_points_decoded, before.query_points_decoded);
    EXPECT_GE(after.query_rollup_rows_read - before.query_rollup_rows_read, 3u);
    // After a restart (the kept points come back from the WAL) and a full flush, the same.
    e.reset();
    auto again = engine::open(o);
    ASSERT_TRUE(again.ok()) << again.error().message;
    e = std::move(*again);
    expect_same(*e, 0, ref, t0, t0 + 3 * hour, hour);
    expect_same(*e, 0, ref, t0 + 2 * hour + 59 * minute, t0 + 3 * hour, sec);
}

}  // namespace
}  // namespace clisonix::storage
