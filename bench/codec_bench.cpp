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

#include "storage/block.h"
#include "storage/codec.h"

// Counts heap allocations, so that "allocations per block" is measured, not assumed. g++ 12
// flags the free() in the replaced operator delete as mismatched once it is inlined into
// callers; the pair is consistent (both malloc-based), so that warning is off in this file.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<uint64_t> g_allocations{0};
void* operator new(size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, size_t) noexcept {
    std::free(p);
}

namespace clisonix::storage {
namespace {

// A deterministic, single-device version of ../shared/bench/gen.py: the ten metrics of the
// benchmark workload at their sensor resolutions, 10 s apart, each value parsed back from its
// decimal text as the ingest path would.
struct workload {
    static constexpr int metric_count = 10;
    static constexpr const char* names[metric_count] = {
        "temperature", "vibration_rms", "pressure", "current", "voltage",
        "rpm",         "flow",          "humidity", "power",   "torque"};

    // xorshift64* and Box-Muller: the same numbers on every platform.
    uint64_t state;
    double next() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return static_cast<double>((state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
    }
    double gauss(double sd) {
        double u = next(), v = next();
        return sd * std::sqrt(-2.0 * std::log(u + 1e-300)) * std::cos(6.283185307179586 * v);
    }
    static double parsed(const char* fmt, double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, fmt, v);
        return std::strtod(buf, nullptr);
    }

    // values[m][i] for `steps` samples of device number `device`.
    static std::vector<std::vector<double>> make(int device, int steps, int64_t start_s,
                                                 std::vector<int64_t>& ts) {
        workload w{0x9e3779b97f4a7c15ull * static_cast<uint64_t>(device + 1)};
        static constexpr double setpoints[] = {750, 1000, 1450, 1500, 2900, 3000};
        double t_base = 35 + 40 * w.next(), p_base = 2 + 6 * w.next(),
               v_base = 0.8 + 3.2 * w.next();
        double i_base = 10 + 30 * w.next(), f_base = 5 + 75 * w.next(), h_base = 30 + 40 * w.next();
        double rpm = setpoints[static_cast<int>(w.next() * 6)];
        double u_nom = w.next() < 0.5 ? 230.0 : 400.0;
        double temp = t_base, pres = p_base, vib = v_base, cur = i_base, volt = u_nom;
        double hum = h_base, flow = f_base;
        bool running = true;
        std::vector<std::vector<double>> v(metric_count);
        ts.clear();
        for (int s = 0; s < steps; ++s) {
            int64_t t = start_s + 10LL * s;
            ts.push_back(t * 1'000'000'000);
            double day = std::sin(6.283185307179586 * static_cast<double>(t % 86400) / 86400.0);
            if (running) {
                if (w.next() < 0.0004)
                    running = false;
                else if (w.next() < 0.0005)
                    rpm = setpoints[static_cast<int>(w.next() * 6)];
            } else if (w.next() < 0.01) {
                running = true;
            }
            double load = running ? rpm / 1500.0 : 0.0;
            double tb = t_base + 3.0 * day + (running ? 0.0 : -15.0);
            temp += 0.002 * (tb - temp) + w.gauss(0.03);
            v[0].push_back(parsed("%.2f", temp + w.gauss(0.05)));
            vib += 0.01 * ((running ? v_base * load : 0.05) - vib) + w.gauss(0.01);
            vib = std::fabs(vib);
            v[1].push_back(parsed("%.3f", vib * (1 + w.gauss(0.05))));
            pres += 0.005 * ((running ? p_base : 1.0) - pres) + w.gauss(0.005);
            v[2].push_back(parsed("%.3f", pres + w.gauss(0.002)));
            cur += 0.02 * ((running ? i_base * load : 0.2) - cur) + w.gauss(0.05);
            double i_now = std::max(0.0, cur + w.gauss(0.1));
            v[3].push_back(parsed("%.2f", i_now));
            volt += 0.01 * (u_nom - volt) + w.gauss(0.2);
            double u_now = volt + w.gauss(0.3);
            v[4].push_back(parsed("%.1f", u_now));
            double r = running ? rpm + static_cast<int>(w.next() * 5) - 2 : 0;
            v[5].push_back(r);
            flow += 0.02 * (f_base * load - flow) + w.gauss(0.05);
            v[6].push_back(parsed("%.2f", std::max(0.0, flow + w.gauss(0.1))));
            hum += 0.005 * (h_base - 5 * day - hum) + w.gauss(0.05);
            v[7].push_back(parsed("%.1f", std::round(hum * 2) / 2));
            double pw =
                u_nom > 300 ? 1.732 * u_now * i_now * 0.85 / 1000.0 : u_now * i_now * 0.9 / 1000.0;
            v[8].push_back(parsed("%.2f", pw));
            v[9].push_back(parsed("%.1f", running && r > 0 ? pw * 9550.0 / r : 0.0));
        }
        return v;
    }
};

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
            alloc_before = g_allocations.load();
            points = blocks = bytes = 0;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(points));
    state.counters["bytes_per_point"] = static_cast<double>(bytes) / static_cast<double>(points);
    state.counters["allocs_per_block"] =
        static_cast<double>(g_allocations.load() - alloc_before) / static_cast<double>(blocks);
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
            alloc_before = g_allocations.load();
            points = blocks = 0;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(points));
    state.counters["allocs_per_block"] = static_cast<double>(g_allocations.load() - alloc_before) /
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
