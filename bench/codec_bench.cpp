// Encode and decode rates of the compressed block (points per second on one core), bytes per
// point, and heap allocations per block, on the benchmark's kind of data
// (../shared/bench/gen.py: 10 s samples at sensor resolution).
//
//   cmake -S . -B build -DCLISONIX_BUILD_BENCH=ON && cmake --build build --target codec_bench
//   build/bench/codec_bench
#include <benchmark/benchmark.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "allocation_counter.h"
#include "storage/block.h"
#include "storage/codec.h"
#include "support/workload.h"

namespace clisonix::storage {
namespace {

using clisonix::testing::workload;

// One device's day of the ten metrics, cut into blocks of `block_points`.
struct corpus {
    std::vector<int64_t> ts;
    std::vector<std::vector<uint64_t>> values;  // per metric
    explicit corpus(int metric = -1) {
        auto v = workload::make(3, 8640, 1'704'067'200, ts);
        for (int m = 0; m < workload::metric_count; ++m) {
            if (metric >= 0 && m != metric) continue;
            values.emplace_back();
            for (double x : v[static_cast<size_t>(m)])
                values.back().push_back(std::bit_cast<uint64_t>(x));
        }
    }
};

void encode_blocks(benchmark::State& state, const corpus& c, size_t block_points) {
    std::vector<uint8_t> out;
    out.reserve(1 << 20);
    uint64_t points = 0, blocks = 0, bytes = 0;
    uint64_t alloc_before = 0;
    bool warmed = false;
    for (auto _ : state) {
        for (const auto& v : c.values) {
            for (size_t i = 0; i < v.size(); i += block_points) {
                size_t n = std::min(block_points, v.size() - i);
                out.clear();
                block::encode(value_type::float64, std::span(c.ts).subspan(i, n),
                              std::span(v).subspan(i, n), {}, out);
                benchmark::DoNotOptimize(out.data());
                points += n;
                bytes += out.size();
                ++blocks;
            }
        }
        if (!warmed) {  // the first round grows the reusable buffers
            warmed = true;
            alloc_before = clisonix::bench::allocations();
            points = blocks = bytes = 0;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(points));
    state.counters["bytes_per_point"] = static_cast<double>(bytes) / static_cast<double>(points);
    state.counters["allocs_per_block"] =
        static_cast<double>(clisonix::bench::allocations() - alloc_before) /
        static_cast<double>(blocks);
}

void decode_blocks(benchmark::State& state, const corpus& c, size_t block_points) {
    std::vector<std::vector<uint8_t>> encoded;
    uint64_t per_round = 0;
    for (const auto& v : c.values) {
        for (size_t i = 0; i < v.size(); i += block_points) {
            size_t n = std::min(block_points, v.size() - i);
            encoded.emplace_back();
            block::encode(value_type::float64, std::span(c.ts).subspan(i, n),
                          std::span(v).subspan(i, n), {}, encoded.back());
            per_round += n;
        }
    }
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    ts.reserve(block_points);
    raw.reserve(block_points);
    uint64_t points = 0, blocks = 0, alloc_before = 0;
    bool warmed = false;
    for (auto _ : state) {
        for (const auto& b : encoded) {
            ts.clear();
            raw.clear();
            if (!block::decode(b, ts, raw).ok()) state.SkipWithError("decode failed");
            benchmark::DoNotOptimize(raw.data());
            ++blocks;
        }
        points += per_round;
        if (!warmed) {
            warmed = true;
            alloc_before = clisonix::bench::allocations();
            points = blocks = 0;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(points));
    state.counters["allocs_per_block"] =
        static_cast<double>(clisonix::bench::allocations() - alloc_before) /
        static_cast<double>(blocks ? blocks : 1);
}

// All ten metrics, whole blocks (header, checksum, timestamps, values).
void BM_block_encode(benchmark::State& state) {
    static corpus c;
    encode_blocks(state, c, static_cast<size_t>(state.range(0)));
}
BENCHMARK(BM_block_encode)->Arg(360)->Arg(2160)->Arg(8640);

void BM_block_decode(benchmark::State& state) {
    static corpus c;
    decode_blocks(state, c, static_cast<size_t>(state.range(0)));
}
BENCHMARK(BM_block_decode)->Arg(360)->Arg(2160)->Arg(8640);

// One metric at a time, blocks of 2160: rates and sizes per kind of sensor.
void BM_metric_decode(benchmark::State& state) {
    corpus c(static_cast<int>(state.range(0)));
    state.SetLabel(workload::names[state.range(0)]);
    decode_blocks(state, c, 2160);
}
BENCHMARK(BM_metric_decode)->DenseRange(0, workload::metric_count - 1);

void BM_metric_encode(benchmark::State& state) {
    corpus c(static_cast<int>(state.range(0)));
    state.SetLabel(workload::names[state.range(0)]);
    encode_blocks(state, c, 2160);
}
BENCHMARK(BM_metric_encode)->DenseRange(0, workload::metric_count - 1);

// The timestamp column alone: regular 10 s sampling (no column bytes; values from the header).
void BM_ts_decode(benchmark::State& state) {
    std::vector<int64_t> ts(static_cast<size_t>(state.range(0)));
    for (size_t i = 0; i < ts.size(); ++i)
        ts[i] = 1'704'067'200'000'000'000 + static_cast<int64_t>(i) * 10'000'000'000;
    codec::scratch s;
    std::vector<uint8_t> col;
    uint8_t id = codec::encode_ts(ts, col, s);
    std::vector<int64_t> out;
    out.reserve(ts.size());
    for (auto _ : state) {
        out.clear();
        if (!codec::decode_ts(id, col, static_cast<uint32_t>(ts.size()), ts.front(), ts.back(),
                              out))
            state.SkipWithError("decode failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    state.counters["column_bytes"] = static_cast<double>(col.size());
}
BENCHMARK(BM_ts_decode)->Arg(2160);

// Timestamps with 0-2 ms of jitter around 1 s: the varint path.
void BM_ts_decode_jitter(benchmark::State& state) {
    std::vector<int64_t> ts(2160);
    uint64_t x = 88172645463325252ull;
    int64_t t = 1'704'067'200'000'000'000;
    for (auto& v : ts) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = t += 1'000'000'000 + static_cast<int64_t>(x % 2'000'000);
    }
    codec::scratch s;
    std::vector<uint8_t> col;
    uint8_t id = codec::encode_ts(ts, col, s);
    std::vector<int64_t> out;
    out.reserve(ts.size());
    for (auto _ : state) {
        out.clear();
        if (!codec::decode_ts(id, col, static_cast<uint32_t>(ts.size()), ts.front(), ts.back(),
                              out))
            state.SkipWithError("decode failed");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * 2160);
    state.counters["bytes_per_point"] = static_cast<double>(col.size()) / 2160;
}
BENCHMARK(BM_ts_decode_jitter);

// Reading summaries without decoding: what a whole-block aggregate costs.
void BM_read_header(benchmark::State& state) {
    static corpus c;
    std::vector<uint8_t> b;
    block::encode(value_type::float64, std::span(c.ts).first(2160),
                  std::span(c.values[0]).first(2160), {}, b);
    for (auto _ : state) {
        auto h = block::read_header(b);
        benchmark::DoNotOptimize(h.ok());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_read_header);

}  // namespace
}  // namespace clisonix::storage

BENCHMARK_MAIN();
