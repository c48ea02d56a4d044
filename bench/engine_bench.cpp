// Ingest rate of the storage engine (points per second through engine::write, WAL encoding,
// group commit and head included) on batches shaped like the benchmark workload: 10,000
// series (1,000 devices x 10 metrics) x 5 points each, and the cost of reads.
//
//   cmake -S . -B build -DCLISONIX_BUILD_BENCH=ON && cmake --build build --target engine_bench
//   build/bench/engine_bench
//
// The engine's folder is a fresh temp dir on the same disk as /tmp; fsync cost is the disk's.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <barrier>
#include <bit>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "storage/storage.h"
#include "storage/wal.h"

namespace clisonix::storage {
namespace {

constexpr int devices = 1000, metrics = 10, per_series = 5;
constexpr int64_t t0 = 1710028800LL * 1'000'000'000;
constexpr int64_t step = 10LL * 1'000'000'000;

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/clisonix-bench-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

const std::vector<std::string>& keys() {
    static const std::vector<std::string> k = [] {
        std::vector<std::string> v;
        for (int d = 0; d < devices; ++d)
            for (int m = 0; m < metrics; ++m)
                v.push_back("telemetry,device=dev-" + std::to_string(d) + " metric_" +
                            std::to_string(m));
        return v;
    }();
    return k;
}

// Batch `n`: every series, points n*per_series .. +per_series-1 at 10 s apart, values in
// sensor resolution.
void fill(write_batch& b, int64_t n, int64_t offset = 0) {
    b.clear();
    const auto& k = keys();
    for (size_t s = 0; s < k.size(); ++s) {
        uint32_t id = *b.series(k[s], value_type::float64);
        for (int j = 0; j < per_series; ++j) {
            int64_t i = n * per_series + j;
            b.add(id, t0 + offset + i * step, 20.0 + static_cast<double>((i * 7 + s) % 400) / 10);
        }
    }
}

void write_one_thread(benchmark::State& state, options::sync_mode mode) {
    temp_dir dir;
    options o;
    o.dir = dir.path;
    o.sync = mode;
    auto e = std::move(*engine::open(o));
    write_batch b;
    int64_t n = 0;
    fill(b, n++);
    benchmark::DoNotOptimize(e->write(b).ok());  // creates the series
    uint64_t points = 0;
    for (auto _ : state) {
        state.PauseTiming();
        fill(b, n++);
        state.ResumeTiming();
        auto st = e->write(b);
        if (!st.ok()) state.SkipWithError(st.error().message.c_str());
        points += b.point_count();
    }
    state.counters["points_per_s"] =
        benchmark::Counter(static_cast<double>(points), benchmark::Counter::kIsRate);
}

void BM_write_sync_always(benchmark::State& state) {
    write_one_thread(state, options::sync_mode::always);
}
void BM_write_sync_interval(benchmark::State& state) {
    write_one_thread(state, options::sync_mode::interval);
}

// `writers` long-lived threads (as the HTTP workers are), each writing its own batch (disjoint
// time ranges) at once: the fsyncs are shared by group commit.
void BM_write_concurrent(benchmark::State& state) {
    int writers = static_cast<int>(state.range(0));
    temp_dir dir;
    options o;
    o.dir = dir.path;
    o.out_of_order_window_ns = 1LL << 62;
    auto e = std::move(*engine::open(o));
    std::vector<write_batch> batches(writers);
    int64_t n = 0;
    fill(batches[0], n++);
    benchmark::DoNotOptimize(e->write(batches[0]).ok());
    std::barrier start(writers + 1), finish(writers + 1);
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    for (int w = 0; w < writers; ++w)
        ts.emplace_back([&, w] {
            for (;;) {
                start.arrive_and_wait();
                if (stop) return;
                benchmark::DoNotOptimize(e->write(batches[w]).ok());
                finish.arrive_and_wait();
            }
        });
    uint64_t points = 0;
    for (auto _ : state) {
        state.PauseTiming();
        for (int w = 0; w < writers; ++w)
            fill(batches[w], n++);
        state.ResumeTiming();
        start.arrive_and_wait();
        finish.arrive_and_wait();
        points += static_cast<uint64_t>(writers) * batches[0].point_count();
    }
    stop = true;
    start.arrive_and_wait();
    for (auto& t : ts)
        t.join();
    state.counters["points_per_s"] =
        benchmark::Counter(static_cast<double>(points), benchmark::Counter::kIsRate);
}

// The CPU part of a write alone: grouping by series and WAL record encoding with its CRC.
void BM_wal_encode(benchmark::State& state) {
    write_batch b;
    fill(b, 0);
    std::vector<series_id> ids(b.series_count());
    std::vector<value_type> types(b.series_count(), value_type::float64);
    for (size_t i = 0; i < ids.size(); ++i)
        ids[i] = static_cast<series_id>(i);
    wal::grouping g;
    std::vector<uint8_t> rec;
    for (auto _ : state) {
        rec.clear();
        g.build(b);
        wal::encode(b, ids, types, g, rec);
        benchmark::DoNotOptimize(rec.data());
    }
    state.counters["points_per_s"] = benchmark::Counter(
        static_cast<double>(state.iterations() * b.point_count()), benchmark::Counter::kIsRate);
    state.counters["wal_bytes_per_point"] =
        static_cast<double>(rec.size()) / static_cast<double>(b.point_count());
}

// Reads over flushed and compacted data: one series of 10,000, 2 hours at 10 s.
void BM_query(benchmark::State& state) {
    temp_dir dir;
    options o;
    o.dir = dir.path;
    auto e = std::move(*engine::open(o));
    write_batch b;
    for (int64_t n = 0; n < 2 * 360 / per_series; ++n) {
        fill(b, n);
        if (!e->write(b).ok()) state.SkipWithError("write failed");
    }
    if (!e->flush().ok() || !e->compact().ok()) state.SkipWithError("flush failed");
    series_id id = e->series_by_key(keys()[4242])->id;
    int64_t hour = 3600LL * 1'000'000'000;
    std::vector<sample> pts;
    std::vector<std::pair<int64_t, summary>> agg;
    int kind = static_cast<int>(state.range(0));
    for (auto _ : state) {
        if (kind == 0) benchmark::DoNotOptimize(e->scan(id, t0, t0 + hour, pts).ok());
        if (kind == 1)
            benchmark::DoNotOptimize(
                e->aggregate(id, t0, t0 + hour, 60 * 1'000'000'000LL, agg).ok());
        if (kind == 2)
            benchmark::DoNotOptimize(e->aggregate(id, t0, t0 + 2 * hour, hour, agg).ok());
        if (kind == 3) benchmark::DoNotOptimize(e->last(id));
    }
    state.SetLabel(kind == 0   ? "scan 1h raw"
                   : kind == 1 ? "1h per-minute aggregate"
                   : kind == 2 ? "2h hourly aggregate"
                               : "last value");
}

BENCHMARK(BM_write_sync_always)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(BM_write_sync_interval)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(BM_write_concurrent)
    ->Arg(2)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3);
BENCHMARK(BM_wal_encode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_query)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace clisonix::storage

BENCHMARK_MAIN();
