// Not a Google Benchmark: the PromQL engine on the benchmark shape, in-process:
// `rate(x[5m])` over 1,000 series x 24 h of 10-second points (8.64 M stored, flushed into
// compressed blocks), evaluated at 1-minute steps (1.44 M output points), and the answer's
// JSON. bench/promql/run.sh compares the HTTP API with VictoriaMetrics on the same data.
//
//   build/bench/promql_eval_bench [series=1000] [hours=24]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "promql/promql.h"
#include "storage/storage.h"

using namespace clisonix;

int main(int argc, char** argv) {
    const int series = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int hours = argc > 2 ? std::atoi(argv[2]) : 24;
    const int64_t t0_ms = 1'764'892'800'000;  // 2025-12-05T00:00:00Z
    const int64_t points = hours * 360LL;     // every 10 s
    auto dir = std::filesystem::temp_directory_path() / "clisonix-promql-bench";
    std::filesystem::remove_all(dir);
    storage::options o;
    o.dir = dir.string();
    o.sync = storage::options::sync_mode::interval;
    o.max_head_bytes = 2ull << 30;
    auto engine = storage::engine::open(o);
    if (!engine) {
        std::fprintf(stderr, "open: %s\n", engine.error().message.c_str());
        return 1;
    }
    auto clock = [] { return std::chrono::steady_clock::now(); };
    auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
    auto began = clock();
    storage::write_batch b;
    for (int64_t chunk = 0; chunk < points; chunk += 360) {  // an hour at a time
        b.clear();
        for (int s = 0; s < series; ++s) {
            auto id = *b.series("x,instance=i" + std::to_string(s) + " value",
                                storage::value_type::float64);
            for (int64_t k = chunk; k < std::min(points, chunk + 360); ++k)
                b.add(id, (t0_ms + k * 10'000) * 1'000'000, static_cast<double>(k * (s % 7 + 1)));
        }
        if (auto st = (*engine)->write(b); !st) {
            std::fprintf(stderr, "write: %s\n", st.error().message.c_str());
            return 1;
        }
    }
    if (auto st = (*engine)->flush(); !st) return 1;
    std::printf("stored %lld points of %d series in %.1f s\n",
                static_cast<long long>(points * series), series, seconds(clock() - began));

    auto e = promql::parse("rate(x[5m])");
    promql::limits lim;
    lim.max_points = 0;
    for (int run = 0; run < 3; ++run) {
        auto start = clock();
        auto a =
            promql::evaluate(**engine, **e, t0_ms, t0_ms + hours * 3'600'000LL, 60'000, false, lim);
        auto evaluated = clock();
        if (!a) {
            std::fprintf(stderr, "evaluate: %s\n", a.error().message.c_str());
            return 1;
        }
        size_t out = 0;
        for (const auto& s : a->series)
            out += s.points.size();
        std::string json = promql::to_json(*a);
        auto written = clock();
        std::printf("rate(x[5m]): %zu series, %zu points: evaluate %.3f s, JSON %.3f s (%.1f MB)\n",
                    a->series.size(), out, seconds(evaluated - start), seconds(written - evaluated),
                    static_cast<double>(json.size()) / 1e6);
    }
    engine->reset();
    std::filesystem::remove_all(dir);
    return 0;
}
