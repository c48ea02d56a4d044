// Ask Clisonix's answer time over 24 h of the demo plant (issue #19 asks under 50 ms a
// question): the demo's 20 machines at 1 Hz for one day (about 8.6 M points, `clisonix
// demo`'s own signals for --seed 1) written through engine::write and flushed, then each
// benchmark runs check() and execute() on the plan a question becomes, as POST /api/v1/ask
// does after parsing (the vocabulary is cached by the route, so it is built once here too).
//
//   cmake -S . -B build -DCLISONIX_BUILD_BENCH=ON && cmake --build build --target ask_bench
//   build/bench/ask_bench
//
// The plans are written out here rather than parsed, so that the time is that of answering;
// the grammar's own time is measured by its tests.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "app/demo_plant.h"
#include "ask/ask.h"
#include "storage/storage.h"

namespace {

using namespace clisonix;
namespace sim = app::sim;

constexpr int64_t second_ms = 1000;
constexpr int64_t day_ms = 86'400'000;
constexpr int64_t day_start = 1'796'342'400'000;  // 2026-12-04T00:00:00Z: "yesterday"
constexpr int64_t now_at = day_start + day_ms + 9 * 3'600'000;

struct demo_day {
    std::filesystem::path dir;
    std::unique_ptr<storage::engine> engine;
    ask::vocabulary vocab;
    ask::sources from;
};

// The demo plant's vocabulary, as build_vocabulary() reads it from the demo's registry.
ask::vocabulary vocabulary_of(const sim::plant& plant) {
    ask::vocabulary v;
    v.time_zone = "UTC";
    std::map<std::string, std::string> units;
    for (const auto& k : sim::kinds()) {
        ask::type_word t{std::string(k.name), std::string(k.name) + "s", {}};
        for (const auto& m : k.metrics) {
            t.metrics.emplace_back(m.name);
            units[std::string(m.name)] = std::string(m.unit);
        }
        v.types.push_back(std::move(t));
    }
    for (const auto& [name, unit] : units)
        v.metrics.push_back({name, unit, {}});
    std::map<std::string, std::set<std::string>> under;
    for (const auto& m : plant.machines) {
        v.devices.push_back(
            {m.name, std::string(sim::kinds()[m.kind].name), "", {m.line, m.site}, true});
        under[m.line].insert(m.name);
        under[m.site].insert(m.name);
    }
    std::sort(v.devices.begin(), v.devices.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& s : plant.sites)
        v.assets.push_back({s, "site", "", {under[s].begin(), under[s].end()}});
    for (const auto& l : plant.lines)
        v.assets.push_back({l.name, "line", l.site, {under[l.name].begin(), under[l.name].end()}});
    return v;
}

demo_day& data() {
    static demo_day d = [] {
        demo_day out;
        out.dir = std::filesystem::temp_directory_path() / "clisonix-ask-bench";
        std::filesystem::remove_all(out.dir);
        storage::options o;
        o.dir = out.dir.string();
        auto e = storage::engine::open(o);
        if (!e) {
            std::fprintf(stderr, "ask_bench: %s\n", e.error().message.c_str());
            std::exit(1);
        }
        out.engine = std::move(*e);
        const auto plant = sim::make_plant(1);
        // Simulated seconds -86400 .. -1 are the healthy history the demo backfills.
        constexpr int64_t chunk = 600;
        for (int64_t t0 = -86'400; t0 < 0; t0 += chunk) {
            storage::write_batch batch;
            for (size_t m = 0; m < plant.machines.size(); ++m) {
                std::map<std::string_view, uint32_t> ids;
                for (int64_t t = t0; t < t0 + chunk; ++t) {
                    const auto r = sim::sample(plant, m, t);
                    if (!r.present) continue;
                    for (const auto& [metric, value] : r.values) {
                        auto it = ids.find(metric);
                        if (it == ids.end()) {
                            auto id = batch.series("telemetry,device=" + plant.machines[m].name +
                                                       " " + std::string(metric),
                                                   storage::value_type::float64);
                            it = ids.emplace(metric, *id).first;
                        }
                        batch.add(it->second, (day_start + (t + 86'400) * second_ms) * 1'000'000,
                                  value);
                    }
                }
            }
            if (auto st = out.engine->write(batch); !st) {
                std::fprintf(stderr, "ask_bench: %s\n", st.error().message.c_str());
                std::exit(1);
            }
        }
        (void)out.engine->flush();
        out.vocab = vocabulary_of(plant);
        out.from.engine = out.engine.get();
        return out;
    }();
    return d;
}

ask::plan yesterday(ask::aggregate a) {
    ask::plan p;
    p.kind = ask::plan_kind::telemetry;
    p.from_ms = day_start;
    p.to_ms = day_start + day_ms;
    p.time_text = "yesterday";
    p.agg = a;
    p.group_by = ask::grouping::device;
    p.source = "parser";
    return p;
}

// check() and execute() of one plan, as the route runs them; false (the benchmark skipped
// with the reason) when either refuses.
bool checked_and_answered(benchmark::State& state, const ask::plan& p, const demo_day& d) {
    if (auto st = ask::check(p, d.vocab, now_at); !st) {
        state.SkipWithError(st.error().message.c_str());
        return false;
    }
    auto a = ask::execute(p, d.vocab, d.from);
    if (!a) {
        state.SkipWithError(a.error().message.c_str());
        return false;
    }
    benchmark::DoNotOptimize(a->text);
    return true;
}

void answer(benchmark::State& state, const ask::plan& p) {
    auto& d = data();
    for (auto _ : state)
        if (!checked_and_answered(state, p, d)) return;
    state.SetLabel(ask::execute(p, d.vocab, d.from)->text.substr(0, 120));
}

// "which pumps ran hotter than 80 °C yesterday?"
void pumps_hotter_than(benchmark::State& state) {
    auto p = yesterday(ask::aggregate::max);
    p.device_type = "pump";
    p.metric = "temperature";
    p.unit = "°C";
    p.filter = ask::comparison{">", 80};
    answer(state, p);
}
// "average temperature per line yesterday"
void mean_per_line(benchmark::State& state) {
    auto p = yesterday(ask::aggregate::mean);
    p.metric = "temperature";
    p.unit = "°C";
    p.group_by = ask::grouping::asset;
    p.asset_level = "line";
    answer(state, p);
}
// "top 3 machines by current now"
void top3_current(benchmark::State& state) {
    auto p = yesterday(ask::aggregate::last);
    p.metric = "current";
    p.from_ms = p.to_ms = now_at;
    p.time_text = "now";
    p.order = "desc";
    p.limit = 3;
    answer(state, p);
}
// "95th percentile of pump-01's vibration yesterday" (86,400 raw points)
void p95_one_device(benchmark::State& state) {
    auto p = yesterday(ask::aggregate::p95);
    p.devices = {"pump-01"};
    p.metric = "vibration_rms";
    p.unit = "mm/s";
    answer(state, p);
}
// "is the temperature of the pumps on north-line-1 rising?" (raw points, least squares)
void trend_on_a_line(benchmark::State& state) {
    auto p = yesterday(ask::aggregate::trend);
    p.device_type = "pump";
    p.asset = "north-line-1";
    p.metric = "temperature";
    p.unit = "°C";
    answer(state, p);
}
// "how long was pump-01 above 60 °C yesterday?" (raw points, sample-and-hold)
void time_above_one_device(benchmark::State& state) {
    auto p = yesterday(ask::aggregate::time_above);
    p.devices = {"pump-01"};
    p.metric = "temperature";
    p.unit = "°C";
    p.threshold = ask::comparison{">", 60};
    answer(state, p);
}
// "which machine's current changed most yesterday?"
void change_most(benchmark::State& state) {
    auto p = yesterday(ask::aggregate::change);
    p.metric = "current";
    p.unit = "A";
    p.order = "desc";
    p.limit = 1;
    answer(state, p);
}

// The whole question as POST /api/v1/ask answers it once the vocabulary is cached: parse(),
// check() and execute().
void question(benchmark::State& state, std::string_view text) {
    auto& d = data();
    for (auto _ : state) {
        auto parsed = ask::parse(text, d.vocab, {now_at});
        const auto* p = std::get_if<ask::plan>(&parsed);
        if (!p) {
            const auto& n = std::get<ask::not_understood>(parsed);
            state.SkipWithError(("not understood: " + n.reasons.front()).c_str());
            return;
        }
        if (!checked_and_answered(state, *p, d)) return;
    }
}
void question_pumps_hotter_than(benchmark::State& state) {
    question(state, "which pumps ran hotter than 80 °C yesterday?");
}
void question_mean_per_line(benchmark::State& state) {
    question(state, "what was the average temperature per line yesterday?");
}

}  // namespace

BENCHMARK(question_pumps_hotter_than)->Unit(benchmark::kMillisecond);
BENCHMARK(question_mean_per_line)->Unit(benchmark::kMillisecond);
BENCHMARK(pumps_hotter_than)->Unit(benchmark::kMillisecond);
BENCHMARK(mean_per_line)->Unit(benchmark::kMillisecond);
BENCHMARK(top3_current)->Unit(benchmark::kMillisecond);
BENCHMARK(change_most)->Unit(benchmark::kMillisecond);
BENCHMARK(p95_one_device)->Unit(benchmark::kMillisecond);
BENCHMARK(trend_on_a_line)->Unit(benchmark::kMillisecond);
BENCHMARK(time_above_one_device)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
