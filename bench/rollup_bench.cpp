// 30 days of 1 Hz data for 100 series (259 M points) through engine::write, flushed a day at
// a time and compacted, then the 1-hour and 1-minute aggregates of every series over the 30
// days: prints the times, the bytes (rollups among them) and what the queries read. The
// unit test storage_rollups.thirty_days_of_1hz_data_at_hourly_steps_read_only_rollups is
// the small version. Then the same days downsampled (raw retention of one day): the disk the
// rows take and the aggregates answered from them.
//
//   cmake -S . -B build -DCLISONIX_BUILD_BENCH=ON && cmake --build build --target rollup_bench
//   build/bench/rollup_bench [SERIES] [DAYS]
//
// Needs about 16 bytes of memory per point of one day (1.4 GB at 100 series) and the disk
// for the parts. Not a Google Benchmark: one pass is the measurement.
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "storage/storage.h"

namespace {

using namespace clisonix::storage;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
    const int series = argc > 1 ? std::atoi(argv[1]) : 100;
    const int days = argc > 2 ? std::atoi(argv[2]) : 30;
    constexpr int64_t sec = 1'000'000'000, hour = 3600 * sec, day = 24 * hour;
    constexpr int64_t t0 = 1710028800LL * sec;  // 2024-03-10T00:00:00Z
    char tmpl[] = "/tmp/clisonix-rollup-bench-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    options o;
    o.dir = dir + "/tsdb";
    o.max_head_bytes = 4ull << 30;
    o.sync = options::sync_mode::interval;
    auto opened = engine::open(o);
    if (!opened) {
        std::fprintf(stderr, "open: %s\n", opened.error().message.c_str());
        return 1;
    }
    auto& e = *opened;
    std::mt19937_64 rng(1);
    std::vector<double> level(static_cast<size_t>(series), 50.0);
    write_batch b;
    std::vector<uint32_t> locals;
    auto start = clock_type::now();
    for (int d = 0; d < days; ++d) {
        for (int64_t minute = 0; minute < 24 * 60; ++minute) {
            b.clear();
            locals.clear();
            for (int s = 0; s < series; ++s)
                locals.push_back(
                    *b.series("machine,id=" + std::to_string(s) + " rpm", value_type::float64));
            for (int64_t i = 0; i < 60; ++i) {
                int64_t ts = t0 + d * day + (minute * 60 + i) * sec;
                for (int s = 0; s < series; ++s) {
                    double& v = level[static_cast<size_t>(s)];
                    v = std::round((v + std::normal_distribution<double>(0, 0.3)(rng)) * 10) / 10;
                    b.add(locals[static_cast<size_t>(s)], ts, v);
                }
            }
            if (auto st = e->write(b); !st) {
                std::fprintf(stderr, "write: %s\n", st.error().message.c_str());
                return 1;
            }
        }
        if (auto st = e->flush(); !st) {
            std::fprintf(stderr, "flush: %s\n", st.error().message.c_str());
            return 1;
        }
    }
    double write_s = seconds_since(start);
    start = clock_type::now();
    if (auto st = e->compact(); !st) {
        std::fprintf(stderr, "compact: %s\n", st.error().message.c_str());
        return 1;
    }
    double compact_s = seconds_since(start);
    auto st0 = e->statistics();
    std::printf("points %llu, written and flushed in %.1f s, compacted in %.1f s\n",
                static_cast<unsigned long long>(st0.points), write_s, compact_s);
    std::printf("disk %llu bytes (%.3f bytes/point), rollups %llu bytes (%.3f bytes/point)\n",
                static_cast<unsigned long long>(st0.disk_bytes),
                static_cast<double>(st0.disk_bytes) / static_cast<double>(st0.points),
                static_cast<unsigned long long>(st0.rollup_bytes),
                static_cast<double>(st0.rollup_bytes) / static_cast<double>(st0.points));
    // Every series over all the days at `step`: the buckets, or -1 after an error (printed).
    auto aggregate_all = [&](int64_t step) -> long long {
        std::vector<std::pair<int64_t, summary>> agg;
        long long buckets = 0;
        for (int s = 0; s < series; ++s) {
            if (auto st = e->aggregate(static_cast<series_id>(s), t0, t0 + days * day, step, agg);
                !st) {
                std::fprintf(stderr, "aggregate: %s\n", st.error().message.c_str());
                return -1;
            }
            buckets += static_cast<long long>(agg.size());
        }
        return buckets;
    };
    for (int64_t step : {day, hour, 60 * sec}) {
        auto before = e->statistics();
        start = clock_type::now();
        const long long buckets = aggregate_all(step);
        if (buckets < 0) return 1;
        double query_s = seconds_since(start);
        auto after = e->statistics();
        std::printf(
            "step %llds: %d series x %d days in %.1f ms, %lld buckets, points decoded %llu, "
            "rollup rows read %llu\n",
            static_cast<long long>(step / sec), series, days, query_s * 1e3, buckets,
            static_cast<unsigned long long>(after.query_points_decoded -
                                            before.query_points_decoded),
            static_cast<unsigned long long>(after.query_rollup_rows_read -
                                            before.query_rollup_rows_read));
    }
    // For comparison: decoding every point, as an aggregate without rollups would.
    {
        auto before = e->statistics();
        start = clock_type::now();
        std::vector<sample> pts;
        size_t n = 0;
        for (int s = 0; s < series; ++s) {
            if (auto st = e->scan(static_cast<series_id>(s), t0, t0 + days * day, pts); !st) {
                std::fprintf(stderr, "scan: %s\n", st.error().message.c_str());
                return 1;
            }
            n += pts.size();
        }
        double scan_s = seconds_since(start);
        auto after = e->statistics();
        std::printf("scan of every point: %zu points in %.1f ms, points decoded %llu\n", n,
                    scan_s * 1e3,
                    static_cast<unsigned long long>(after.query_points_decoded -
                                                    before.query_points_decoded));
    }
    // Then downsampled (a raw retention of one day, all of these days being older): the disk
    // the rows alone take, and the same aggregates answered from them.
    e.reset();
    o.raw_retention_ns = day;
    opened = engine::open(o);
    if (!opened) {
        std::fprintf(stderr, "reopen: %s\n", opened.error().message.c_str());
        return 1;
    }
    start = clock_type::now();
    if (auto st = e->compact(); !st) {
        std::fprintf(stderr, "downsample: %s\n", st.error().message.c_str());
        return 1;
    }
    double downsample_s = seconds_since(start);
    auto st1 = e->statistics();
    std::printf("downsampled in %.1f s: disk %llu bytes (%.3f bytes/point of before)\n",
                downsample_s, static_cast<unsigned long long>(st1.disk_bytes),
                static_cast<double>(st1.disk_bytes) / static_cast<double>(st0.points));
    for (int64_t step : {day, hour, 60 * sec}) {
        start = clock_type::now();
        const long long buckets = aggregate_all(step);
        if (buckets < 0) return 1;
        std::printf("downsampled, step %llds: %.1f ms, %lld buckets\n",
                    static_cast<long long>(step / sec), seconds_since(start) * 1e3, buckets);
    }
    e.reset();
    std::filesystem::remove_all(dir);
}
