// A writer for the crash test: several threads write batches and print "RUN THREAD BATCH"
// to stdout once write() has acknowledged a batch, until the test kills the process.
//
//   storage_crash_writer DIR RUN THREADS [compact]
//
// Batch k of thread t in run r: series "crash,thread=<t> f<s>" (s < series_per_batch), points
// at base(r) + (k * points_per_series + j) * spacing with value k * 1000 + s. Plain: spacing
// 1 ns, base(r) = t0 + r * 1000 s. With `compact`: spacing 1 s (so that parts carry rollups),
// base(r) = t0 + r * 10 days, 20 "history f<s>" series of 50,000 points are written first
// into the same day, and one more thread flushes and compacts without pause, so that kills
// land in the middle of compactions.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "storage/storage.h"

namespace {
constexpr int series_per_batch = 50;
constexpr int points_per_series = 20;
}  // namespace

int main(int argc, char** argv) {
    using namespace clisonix::storage;
    if (argc != 4 && !(argc == 5 && std::string(argv[4]) == "compact")) {
        std::fprintf(stderr, "usage: storage_crash_writer DIR RUN THREADS [compact]\n");
        return 2;
    }
    bool compacting = argc == 5;
    options o;
    o.dir = argv[1];
    o.max_head_bytes = 1 << 20;  // background flushes run while the process is killed
    int run = std::atoi(argv[2]);
    int threads = std::atoi(argv[3]);
    auto e = engine::open(o);
    if (!e) {
        std::fprintf(stderr, "open: %s\n", e.error().message.c_str());
        return 1;
    }
    const int64_t t0 = 1710028800LL * 1'000'000'000;
    const int64_t spacing = compacting ? 1'000'000'000 : 1;
    const int64_t base =
        compacting ? t0 + run * 864'000'000'000'000LL : t0 + run * 1'000'000'000'000LL;
    std::vector<std::thread> ts;
    if (compacting) {
        // History in the same day, in other series: every merge then rewrites a million
        // points, so that most of the compacting thread's time is spent inside merges.
        write_batch b;
        for (int s = 0; s < 20; ++s) {
            b.clear();
            auto id = *b.series("history f" + std::to_string(s), value_type::float64);
            for (int64_t i = 0; i < 50'000; ++i)
                b.add(id, base + i * spacing, static_cast<double>(i % 1000) / 10);
            // Flushed series by series: the head holds at most 1 MiB here.
            if (auto st = (*e)->write(b); !st || !(st = (*e)->flush())) {
                std::fprintf(stderr, "history: %s\n", st.error().message.c_str());
                return 1;
            }
        }
    }
    if (compacting)
        ts.emplace_back([&] {
            for (;;) {
                if (auto st = (*e)->flush(); !st) {
                    std::fprintf(stderr, "flush: %s\n", st.error().message.c_str());
                    std::_Exit(1);
                }
                if (auto st = (*e)->compact(); !st) {
                    std::fprintf(stderr, "compact: %s\n", st.error().message.c_str());
                    std::_Exit(1);
                }
            }
        });
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            write_batch b;
            for (int k = 0;; ++k) {
                b.clear();
                for (int s = 0; s < series_per_batch; ++s) {
                    auto id =
                        *b.series("crash,thread=" + std::to_string(t) + " f" + std::to_string(s),
                                  value_type::float64);
                    for (int j = 0; j < points_per_series; ++j)
                        b.add(id, base + (int64_t{k} * points_per_series + j) * spacing,
                              k * 1000.0 + s);
                }
                for (;;) {
                    auto st = (*e)->write(b);
                    if (st.ok()) break;
                    if (st.error().code != "overloaded") {
                        std::fprintf(stderr, "write: %s\n", st.error().message.c_str());
                        std::_Exit(1);
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
                }
                std::string line =
                    std::to_string(run) + " " + std::to_string(t) + " " + std::to_string(k) + "\n";
                // One write(2) per line: lines of concurrent threads never interleave.
                if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
                    std::_Exit(1);
            }
        });
    for (auto& th : ts)
        th.join();
}
