// Line protocol parse rate (MB/s, points/s) and allocations per batch, on batches of 5,000
// lines shaped like the ingest workload: 1,000 devices x 10 metrics, one line per device and
// timestamp. Allocations are counted by replacing the global operator new.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <string>

#include "allocation_counter.h"
#include "ingest/ingest.h"

namespace {

using namespace clisonix;

// `lines` lines, devices d00000.. in turn, ten metrics each, ten-second steps.
std::string make_batch(int lines, bool sorted_tags = true) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> u(0, 1);
    std::string out;
    char buf[512];
    int64_t ts = 1704067200000000000;
    for (int i = 0; i < lines; ++i) {
        int device = i % 1000;
        if (i && device == 0) ts += 10'000'000'000;
        const char* tags = sorted_tags ? "device=d%05d,site=plant-1" : "site=plant-1,device=d%05d";
        char tagbuf[64];
        std::snprintf(tagbuf, sizeof tagbuf, tags, device);
        int n = std::snprintf(buf, sizeof buf,
                              "telemetry,%s temperature=%.2f,vibration_rms=%.3f,pressure=%.3f,"
                              "current=%.2f,voltage=%.1f,rpm=%d,flow=%.2f,humidity=%.1f,"
                              "power=%.2f,torque=%.1f %lld\n",
                              tagbuf, 40 + 30 * u(rng), 2 * u(rng), 3 + 2 * u(rng),
                              20 + 20 * u(rng), 225 + 10 * u(rng), 1400 + int(100 * u(rng)),
                              30 + 20 * u(rng), 30 + 40 * u(rng), 5 + 3 * u(rng), 30 + 20 * u(rng),
                              static_cast<long long>(ts));
        out.append(buf, n);
    }
    return out;
}

void parse_batch(benchmark::State& state, bool sorted_tags) {
    const std::string body = make_batch(5000, sorted_tags);
    ingest::line_parser parser;
    storage::write_batch batch;
    ingest::line_options opts;
    if (!parser.parse(body, opts, batch).ok()) {  // warm-up: buffers reach their size
        state.SkipWithError("the generated batch does not parse");
        return;
    }
    uint64_t before = clisonix::bench::allocations();
    for (auto _ : state) {
        auto st = parser.parse(body, opts, batch);
        benchmark::DoNotOptimize(st);
        benchmark::DoNotOptimize(batch.point_count());
    }
    uint64_t allocs = clisonix::bench::allocations() - before;
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch.point_count()));
    state.counters["points/s"] = benchmark::Counter(
        static_cast<double>(state.iterations() * batch.point_count()), benchmark::Counter::kIsRate);
    state.counters["allocs/batch"] =
        static_cast<double>(allocs) / static_cast<double>(state.iterations());
    state.counters["bytes/batch"] = static_cast<double>(body.size());
}

void line_protocol_sorted_tags(benchmark::State& state) {
    parse_batch(state, true);
}
void line_protocol_unsorted_tags(benchmark::State& state) {
    parse_batch(state, false);
}

// The first batch on a fresh parser and batch: what a new connection's thread pays once.
void line_protocol_cold(benchmark::State& state) {
    const std::string body = make_batch(5000);
    ingest::line_options opts;
    uint64_t before = clisonix::bench::allocations();
    for (auto _ : state) {
        ingest::line_parser parser;
        storage::write_batch batch;
        auto st = parser.parse(body, opts, batch);
        benchmark::DoNotOptimize(st);
    }
    state.counters["allocs/batch"] = static_cast<double>(clisonix::bench::allocations() - before) /
                                     static_cast<double>(state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

BENCHMARK(line_protocol_sorted_tags)->Unit(benchmark::kMicrosecond);
BENCHMARK(line_protocol_unsorted_tags)->Unit(benchmark::kMicrosecond);
BENCHMARK(line_protocol_cold)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
