// The rules engine under load: 10,000 rules over 10,000 series.
//
//   cmake -S . -B build -DCLISONIX_BUILD_BENCH=ON && cmake --build build --target rules_bench
//   build/bench/rules_bench [rules=10000] [rounds=50] [triggers=500]
//
// 1. Evaluations per second: rounds of one batch holding one point of each of the 10,000
//    series (`telemetry,device=dN temperature`), fed to engine::observe() as the pipeline
//    does; every point evaluates the one rule of its device. Four rule forms take turns:
//    threshold with a duration, outside a range, rate of change, windowed mean.
// 2. Trigger latency: a write of one point that fires a rule, through the real pipeline
//    (storage engine write with fsync, then the rules listener), until the alarm is
//    committed to the metadata store (SQLite, in the same temp dir) and its event is out.
//    Each trigger is followed by a point that clears it. p50 and p99 over `triggers` writes.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "ingest/ingest.h"
#include "meta/meta.h"
#include "rules/rules.h"
#include "storage/storage.h"

namespace {

using namespace clisonix;
using clock_type = std::chrono::steady_clock;

constexpr int64_t t0_ms = 1'710'028'800'000;

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/clisonix-rules-bench-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

std::string device(int i) {
    return "d" + std::to_string(i);
}

const char* condition_of(int i) {
    switch (i % 4) {
        case 0:
            return "temperature > 80 for 1m";
        case 1:
            return "temperature outside -50..90";
        case 2:
            return "temperature rises more than 500 per minute";
        default:
            return "mean(temperature, 5m) > 85";
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int n_rules = argc > 1 ? std::atoi(argv[1]) : 10'000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 50;
    const int triggers = argc > 3 ? std::atoi(argv[3]) : 500;
    const int n_series = n_rules;
    temp_dir dir;

    auto store = meta::open("", dir.path);
    if (!store) {
        std::fprintf(stderr, "meta: %s\n", store.error().message.c_str());
        return 1;
    }
    storage::options so;
    so.dir = dir.path + "/tsdb";
    auto tsdb = storage::engine::open(so);
    if (!tsdb) {
        std::fprintf(stderr, "storage: %s\n", tsdb.error().message.c_str());
        return 1;
    }
    rules::options ro;
    ro.no_data_interval = std::chrono::milliseconds(0);
    rules::engine engine(**store, {}, nullptr, ro);
    if (auto st = engine.start(); !st) {
        std::fprintf(stderr, "rules: %s\n", st.error().message.c_str());
        return 1;
    }

    std::fprintf(stderr, "creating %d rules ...\n", n_rules);
    auto begin = clock_type::now();
    for (int i = 0; i < n_rules; ++i) {
        rules::rule r;
        r.name = "rule-" + std::to_string(i);
        r.scope_value = device(i % n_series);
        r.severity = "major";
        r.condition = condition_of(i);
        if (auto made = engine.create_rule(r); !made) {
            std::fprintf(stderr, "rule %d: %s\n", i, made.error().message.c_str());
            return 1;
        }
        if ((i + 1) % 2000 == 0) std::fprintf(stderr, "  %d rules\n", i + 1);
    }
    double create_s = std::chrono::duration<double>(clock_type::now() - begin).count();
    std::fprintf(stderr, "  %.1f s (%.0f rules/s, each one store transaction)\n", create_s,
                 n_rules / create_s);

    // 1. Evaluation throughput on batches of every series, values inside every rule's bounds.
    std::vector<std::string> keys;
    for (int s = 0; s < n_series; ++s)
        keys.push_back("telemetry,device=" + device(s) + " temperature");
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> calm(20, 30);
    storage::write_batch batch;
    auto fill = [&](int round) {
        batch.clear();
        for (int s = 0; s < n_series; ++s) {
            auto idx = batch.series(keys[s], storage::value_type::float64);
            batch.add(*idx, (t0_ms + int64_t{round} * 10'000) * 1'000'000, calm(rng));
        }
    };
    fill(0);
    engine.observe(batch);  // resolves every series once (cached afterwards)
    const auto before = engine.statistics().evaluations;
    double observe_s = 0;
    for (int round = 1; round <= rounds; ++round) {
        fill(round);
        auto t = clock_type::now();
        engine.observe(batch);
        observe_s += std::chrono::duration<double>(clock_type::now() - t).count();
        if (round % 10 == 0) std::fprintf(stderr, "  round %d/%d\n", round, rounds);
    }
    const auto evals = engine.statistics().evaluations - before;
    std::printf("rules=%d series=%d rounds=%d points=%lld evaluations=%llu\n", n_rules, n_series,
                rounds, static_cast<long long>(rounds) * n_series,
                static_cast<unsigned long long>(evals));
    std::printf("evaluations_per_second=%.0f (observe time %.3f s, %.0f ns per point)\n",
                static_cast<double>(evals) / observe_s, observe_s,
                observe_s * 1e9 / (static_cast<double>(rounds) * n_series));

    // 2a. For comparison: the storage write alone (WAL fsync), no rules.
    int64_t ts = t0_ms + int64_t{rounds + 1} * 10'000;
    std::vector<double> write_us;
    for (int k = 0; k < 200; ++k) {
        storage::write_batch one;
        auto idx = one.series(keys[(4 * k + 3) % n_series], storage::value_type::float64);
        one.add(*idx, ts * 1'000'000, 20);
        ts += 10;
        auto t = clock_type::now();
        if (auto st = (*tsdb)->write(one); !st) return 1;
        write_us.push_back(
            std::chrono::duration<double, std::micro>(clock_type::now() - t).count());
    }
    std::sort(write_us.begin(), write_us.end());
    std::printf("storage_write_alone_us p50=%.0f p99=%.0f (n=%zu)\n", write_us[write_us.size() / 2],
                write_us[write_us.size() * 99 / 100], write_us.size());

    // 2. Trigger latency through the pipeline: storage write (fsync), rules, alarm commit.
    ingest::pipeline pipeline(**tsdb);
    pipeline.add_listener([&engine](const storage::write_batch& b) { engine.observe(b); });
    std::atomic<int64_t> alarm_at{0};
    engine.add_alarm_listener([&alarm_at](const std::string& ev) {
        if (ev.find("\"alarm.created\"") != std::string::npos)
            alarm_at = clock_type::now().time_since_epoch().count();
    });
    std::vector<double> latency_us;
    std::fprintf(stderr, "latency: %d triggering writes ...\n", triggers);
    for (int k = 0; k < triggers; ++k) {
        // Rules 4j+1 ("outside -50..90") fire on the point itself.
        int s = (4 * k + 1) % n_series;
        storage::write_batch one;
        auto idx = one.series(keys[s], storage::value_type::float64);
        one.add(*idx, ts * 1'000'000, 95);
        alarm_at = 0;
        auto t = clock_type::now();
        if (auto st = pipeline.submit(one); !st) {
            std::fprintf(stderr, "write: %s\n", st.error().message.c_str());
            return 1;
        }
        if (alarm_at == 0) {
            std::fprintf(stderr, "trigger %d raised no alarm\n", k);
            return 1;
        }
        latency_us.push_back(static_cast<double>(alarm_at - t.time_since_epoch().count()) / 1000.0);
        storage::write_batch back;
        idx = back.series(keys[s], storage::value_type::float64);
        back.add(*idx, (ts + 1000) * 1'000'000, 20);
        if (auto st = pipeline.submit(back); !st) return 1;
        ts += 2000;
        if ((k + 1) % 100 == 0) std::fprintf(stderr, "  %d/%d\n", k + 1, triggers);
    }
    std::sort(latency_us.begin(), latency_us.end());
    auto pct = [&](double p) {
        return latency_us[std::min(
            latency_us.size() - 1,
            static_cast<size_t>(p * static_cast<double>(latency_us.size())))];
    };
    std::printf("trigger_to_alarm_stored_us p50=%.0f p99=%.0f max=%.0f (n=%zu)\n", pct(0.5),
                pct(0.99), latency_us.back(), latency_us.size());
    return 0;
}
