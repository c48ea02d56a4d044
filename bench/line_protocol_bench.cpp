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
#include <utility>

#include "allocation_counter.h"
#include "ingest/ingest.h"

namespace {

using namespace clisonix;

enum class field_order { same, alternating };

// `lines` lines, devices d00000.. in turn, ten metrics each, ten-second steps. With
// field_order::alternating every second round of the devices lists the fields reversed (as
// two collectors writing the same series do).
std::string make_batch(int lines, bool sorted_tags = true, field_order order = field_order::same) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> u(0, 1);
    std::string out;
    char buf[64];
    int64_t ts = 1704067200000000000;
    for (int i = 0; i < lines; ++i) {
        int device = i % 1000;
        if (i && device == 0) ts += 10'000'000'000;
        const char* tags = sorted_tags ? "device=d%05d,site=plant-1" : "site=plant-1,device=d%05d";
        out += "telemetry,";
        out.append(buf, std::snprintf(buf, sizeof buf, tags, device));
        const std::pair<const char*, double> fields[] = {
            {"temperature=%.2f", 40 + 30 * u(rng)}, {"vibration_rms=%.3f", 2 * u(rng)},
            {"pressure=%.3f", 3 + 2 * u(rng)},      {"current=%.2f", 20 + 20 * u(rng)},
            {"voltage=%.1f", 225 + 10 * u(rng)},    {"rpm=%.0f", 1400 + int(100 * u(rng))},
            {"flow=%.2f", 30 + 20 * u(rng)},        {"humidity=%.1f", 30 + 40 * u(rng)},
            {"power=%.2f", 5 + 3 * u(rng)},         {"torque=%.1f", 30 + 20 * u(rng)}};
        const bool reversed = order == field_order::alternating && (i / 1000) % 2 == 1;
        for (int f = 0; f < 10; ++f) {
            const auto& [format, value] = fields[reversed ? 9 - f : f];
            out.push_back(f == 0 ? ' ' : ',');
            out.append(buf, std::snprintf(buf, sizeof buf, format, value));
        }
        out.append(buf, std::snprintf(buf, sizeof buf, " %lld\n", static_cast<long long>(ts)));
    }
    return out;
}

// Wide lines: 100 devices x `fields` fields named f000.., 1,000 lines; with
// field_order::alternating every second round of the devices lists the fields reversed.
std::string make_wide_batch(int fields, field_order order) {
    std::string out;
    char buf[64];
    int64_t ts = 1704067200000000000;
    for (int i = 0; i < 1000; ++i) {
        int device = i % 100;
        if (i && device == 0) ts += 10'000'000'000;
        out.append(buf, std::snprintf(buf, sizeof buf, "machine,device=d%03d", device));
        const bool reversed = order == field_order::alternating && (i / 100) % 2 == 1;
        for (int f = 0; f < fields; ++f) {
            int k = reversed ? fields - 1 - f : f;
            out.append(buf, std::snprintf(buf, sizeof buf, "%cf%03d=%d.5", f == 0 ? ' ' : ',', k,
                                          (i + k) % 1000));
        }
        out.append(buf, std::snprintf(buf, sizeof buf, " %lld\n", static_cast<long long>(ts)));
    }
    return out;
}

void run_parser(benchmark::State& state, const std::string& body);

void parse_batch(benchmark::State& state, bool sorted_tags, field_order order = field_order::same) {
    run_parser(state, make_batch(5000, sorted_tags, order));
}

void run_parser(benchmark::State& state, const std::string& body) {
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
// Same series, same fields, but each round of the devices lists the fields in the other
// order: the series lookup must not fall back to a slow path on a changed field order.
void line_protocol_same_field_order(benchmark::State& state) {
    parse_batch(state, true, field_order::same);
}
void line_protocol_alternating_field_order(benchmark::State& state) {
    parse_batch(state, true, field_order::alternating);
}
// The same with 10 or 100 fields per line (state.range(0)): a lookup that scans the
// series' fields when the order changes costs O(fields^2) per line.
void line_protocol_wide_same_field_order(benchmark::State& state) {
    run_parser(state, make_wide_batch(static_cast<int>(state.range(0)), field_order::same));
}
void line_protocol_wide_alternating_field_order(benchmark::State& state) {
    run_parser(state, make_wide_batch(static_cast<int>(state.range(0)), field_order::alternating));
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
BENCHMARK(line_protocol_same_field_order)->Unit(benchmark::kMicrosecond);
BENCHMARK(line_protocol_alternating_field_order)->Unit(benchmark::kMicrosecond);
BENCHMARK(line_protocol_wide_same_field_order)->Arg(10)->Arg(100)->Unit(benchmark::kMicrosecond);
BENCHMARK(line_protocol_wide_alternating_field_order)
    ->Arg(10)
    ->Arg(100)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(line_protocol_cold)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
