// The engine's inverted tag index behind select(): exact answers for equalities, globs and
// value sets, the same answer as a scan over every series, series created during selection,
// and the index rebuilt from series.log after a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "common/glob.h"
#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix::storage {
namespace {

constexpr int64_t t0 = 1710028800LL * 1'000'000'000;

std::unique_ptr<engine> open_engine(const testing::temp_dir& d) {
    options o;
    o.dir = d.str() + "/tsdb";
    auto e = engine::open(o);
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    return e.ok() ? std::move(*e) : nullptr;
}

// Creates each series by writing one point to it.
void create(engine& e, const std::vector<std::string>& keys) {
    write_batch b;
    for (const auto& key : keys)
        b.add(*b.series(key, value_type::float64), t0, 1.0);
    auto st = e.write(b);
    ASSERT_TRUE(st.ok()) << st.error().message;
}

std::vector<std::string> keys_of(const std::vector<series_info>& found) {
    std::vector<std::string> keys;
    for (const auto& s : found)
        keys.push_back(s.key);
    return keys;
}

std::vector<std::string> select_keys(const engine& e, const series_selector& s) {
    return keys_of(e.select(s));
}

const std::vector<std::string> plant = {
    "telemetry,device=pump-1 temperature",
    "telemetry,device=pump-1 temperature.anomaly",
    "telemetry,device=pump-1 pressure",
    "telemetry,device=pump-12 temperature",
    "telemetry,device=pump-2 temperature",
    "telemetry,device=fan-1 temperature",
    "telemetry,device=fan-1 rpm",
    "telemetry,device=pump-1,line=a,site=north current",
    "telemetry,device=pump-2,line=b,site=north current",
    "telemetry,device=fan-1,line=a,site=south current",
    "health,device=pump-1 health",
    "weather,site=north temperature",
};

void expect_plant_answers(const engine& e) {
    series_selector s;
    s.tag_values = {{"device", {"pump-1"}}};
    EXPECT_EQ(
        select_keys(e, s),
        (std::vector<std::string>{
            "telemetry,device=pump-1 temperature", "telemetry,device=pump-1 temperature.anomaly",
            "telemetry,device=pump-1 pressure", "telemetry,device=pump-1,line=a,site=north current",
            "health,device=pump-1 health"}));

    s = {};
    s.tag_globs = {{"device", "pump-1"}};
    s.field = "temperature";
    s.measurement = "telemetry";
    EXPECT_EQ(select_keys(e, s), (std::vector<std::string>{"telemetry,device=pump-1 temperature"}));

    s = {};
    s.tag_globs = {{"device", "pump-*"}};
    s.field = "temperature*";
    EXPECT_EQ(
        select_keys(e, s),
        (std::vector<std::string>{
            "telemetry,device=pump-1 temperature", "telemetry,device=pump-1 temperature.anomaly",
            "telemetry,device=pump-12 temperature", "telemetry,device=pump-2 temperature"}));

    s = {};
    s.tag_globs = {{"device", "pump-?"}};
    s.field = "temperature";
    EXPECT_EQ(select_keys(e, s), (std::vector<std::string>{"telemetry,device=pump-1 temperature",
                                                           "telemetry,device=pump-2 temperature"}));

    // A glob that starts with a wildcard, over the measurement.
    s = {};
    s.measurement = "*ther";
    EXPECT_EQ(select_keys(e, s), (std::vector<std::string>{"weather,site=north temperature"}));

    // Several tags at once, one of them a set of values (unknown and repeated ones too).
    s = {};
    s.tag_globs = {{"site", "north"}, {"line", "?"}};
    s.tag_values = {{"device", {"pump-2", "nobody", "pump-1", "pump-2"}}};
    EXPECT_EQ(select_keys(e, s),
              (std::vector<std::string>{"telemetry,device=pump-1,line=a,site=north current",
                                        "telemetry,device=pump-2,line=b,site=north current"}));

    // `*` on a tag still needs the tag; on the measurement or field it selects everything.
    s = {};
    s.tag_globs = {{"site", "*"}};
    s.field = "temperature";
    EXPECT_EQ(select_keys(e, s), (std::vector<std::string>{"weather,site=north temperature"}));
    EXPECT_EQ(e.select({}).size(), plant.size());

    // Nothing matches: an unknown value, an unknown tag key, a glob over no value.
    for (auto [key, pattern] : std::vector<std::pair<std::string, std::string>>{
             {"device", "pump-3"}, {"colour", "*"}, {"device", "valve-*"}}) {
        s = {};
        s.tag_globs = {{key, pattern}};
        EXPECT_TRUE(select_keys(e, s).empty()) << key << "=" << pattern;
    }
    s = {};
    s.tag_values = {{"device", {}}};
    EXPECT_TRUE(select_keys(e, s).empty());

    // The filter sees only what the index leaves.
    int seen = 0;
    s = {};
    s.tag_values = {{"device", {"fan-1"}}};
    s.filter = [&](const series_info& info) {
        ++seen;
        return info.field != "rpm";
    };
    EXPECT_EQ(select_keys(e, s),
              (std::vector<std::string>{"telemetry,device=fan-1 temperature",
                                        "telemetry,device=fan-1,line=a,site=south current"}));
    EXPECT_EQ(seen, 3);
}

TEST(storage_tag_index, equalities_globs_and_value_sets_select_exactly_and_survive_a_restart) {
    testing::temp_dir d;
    auto e = open_engine(d);
    create(*e, plant);
    expect_plant_answers(*e);
    e.reset();
    e = open_engine(d);  // the index is rebuilt from series.log
    expect_plant_answers(*e);
    // Series created after the restart join the same lists.
    create(*e, {"telemetry,device=pump-3 temperature"});
    series_selector s;
    s.tag_globs = {{"device", "pump-?"}};
    s.field = "temperature";
    EXPECT_EQ(select_keys(*e, s),
              (std::vector<std::string>{"telemetry,device=pump-1 temperature",
                                        "telemetry,device=pump-2 temperature",
                                        "telemetry,device=pump-3 temperature"}));
}

// The reference: every series, each checked against the selector as the query language
// defines it.
std::vector<std::string> reference(const engine& e, const series_selector& s) {
    return keys_of(e.series([&](const series_info& info) {
        if (!glob_match(s.measurement, info.measurement) || !glob_match(s.field, info.field))
            return false;
        auto tag = [&](const std::string& key) -> const std::string* {
            for (const auto& [k, v] : info.tags)
                if (k == key) return &v;
            return nullptr;
        };
        for (const auto& [k, pattern] : s.tag_globs)
            if (const auto* v = tag(k); !v || !glob_match(pattern, *v)) return false;
        for (const auto& [k, values] : s.tag_values)
            if (const auto* v = tag(k);
                !v || std::find(values.begin(), values.end(), *v) == values.end())
                return false;
        return true;
    }));
}

TEST(storage_tag_index, random_selections_equal_a_scan_over_every_series) {
    testing::temp_dir d;
    auto e = open_engine(d);
    std::mt19937 rng(7);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    std::vector<std::string> keys;
    std::set<std::string> unique;
    for (int i = 0; i < 600; ++i) {
        std::string key = pick(4) == 0 ? "health" : "telemetry";
        key += ",device=d" + std::to_string(pick(40));
        if (pick(2)) key += ",line=l" + std::to_string(pick(3));
        if (pick(3)) key += ",site=s" + std::to_string(pick(2));
        key += " m" + std::to_string(pick(8)) + (pick(3) == 0 ? ".anomaly" : "");
        if (unique.insert(key).second) keys.push_back(key);
    }
    create(*e, keys);
    const std::vector<std::string> device_patterns = {"*", "d1", "d1*", "d?", "*7", "d2?", "x*"};
    const std::vector<std::string> field_patterns = {"*", "m3", "m3*", "*.anomaly", "m?"};
    for (int round = 0; round < 300; ++round) {
        series_selector s;
        if (pick(3) == 0) s.measurement = pick(2) ? "telemetry" : "h*";
        s.field = field_patterns[static_cast<size_t>(pick(5))];
        if (pick(2))
            s.tag_globs.emplace_back("device", device_patterns[static_cast<size_t>(pick(7))]);
        if (pick(3) == 0) s.tag_globs.emplace_back("line", pick(2) ? "l1" : "*");
        if (pick(3) == 0) {
            std::vector<std::string> devices;
            for (int k = pick(6); k > 0; --k)
                devices.push_back("d" + std::to_string(pick(45)));
            s.tag_values.emplace_back("device", devices);
        }
        if (pick(4) == 0) s.tag_values.push_back({"site", {"s1"}});
        ASSERT_EQ(select_keys(*e, s), reference(*e, s)) << "round " << round;
    }
}

// Writers create series while readers select: every answer is exact for the series created
// so far (each one selected matches; a device's list only grows), and nothing is missed
// at the end.
TEST(storage_tag_index, selection_runs_beside_series_creation) {
    testing::temp_dir d;
    auto e = open_engine(d);
    constexpr int writers = 2, devices = 20, metrics = 30;
    std::atomic<bool> done{false};
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] {
            for (int m = 0; m < metrics; ++m) {
                write_batch b;
                for (int dev = w; dev < devices; dev += writers)
                    b.add(*b.series(
                              "telemetry,device=d" + std::to_string(dev) + " m" + std::to_string(m),
                              value_type::float64),
                          t0, 1.0);
                if (!e->write(b).ok()) ++bad;
            }
        });
    std::thread reader([&] {
        std::vector<size_t> seen(devices, 0);
        while (!done.load()) {
            for (int dev = 0; dev < devices; ++dev) {
                series_selector s;
                s.tag_globs = {{"device", "d" + std::to_string(dev)}};
                s.field = "m*";
                auto found = e->select(s);
                for (const auto& info : found)
                    if (info.tags != std::vector<std::pair<std::string, std::string>>{
                                         {"device", "d" + std::to_string(dev)}})
                        ++bad;
                if (found.size() < seen[static_cast<size_t>(dev)]) ++bad;
                seen[static_cast<size_t>(dev)] = found.size();
            }
        }
    });
    for (auto& t : threads)
        t.join();
    done = true;
    reader.join();
    EXPECT_EQ(bad.load(), 0);
    for (int dev = 0; dev < devices; ++dev) {
        series_selector s;
        s.tag_values = {{"device", {"d" + std::to_string(dev)}}};
        EXPECT_EQ(e->select(s).size(), static_cast<size_t>(metrics)) << dev;
    }
}

}  // namespace
}  // namespace clisonix::storage
