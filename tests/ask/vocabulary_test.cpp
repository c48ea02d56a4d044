// build_vocabulary() over a real registry (SQLite metadata store) and a real storage engine.
#include <gtest/gtest.h>

#include <algorithm>

#include "ask/ask.h"
#include "auth/auth.h"
#include "devices/devices.h"
#include "meta/meta.h"
#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix::ask::testing {
namespace {

auth::options fast_auth() {
    auth::options o;
    o.argon2_memory_kib = 256;
    o.argon2_iterations = 1;
    o.jwt_secret = "0123456789abcdef0123456789abcdef";
    return o;
}

TEST(ask_vocabulary, from_the_registry_and_the_stored_series) {
    clisonix::testing::temp_dir dir;
    auto store = meta::open("", dir.str());
    ASSERT_TRUE(store.ok()) << store.error().message;
    auth::auth_service auth(**store, fast_auth());
    devices::registry reg(**store, auth);
    ASSERT_TRUE(reg.start().ok());
    storage::options opts;
    opts.dir = dir.str() + "/tsdb";
    auto engine = storage::engine::open(opts);
    ASSERT_TRUE(engine.ok()) << engine.error().message;

    devices::device_type pump;
    pump.name = "pump";
    pump.metrics["temperature"] = {"°C", 40.0, 70.0};
    pump.metrics["vibration_rms"] = {"mm/s", 0.8, 3.0};
    ASSERT_TRUE(reg.create_type(pump).ok());
    auth::actor by{"test", "local"};
    for (const char* name : {"pump-02", "pump-01", "pump-03"})
        ASSERT_TRUE(reg.create_device({name, "pump", "", ""}, by).ok());
    ASSERT_TRUE(reg.create_device({"thermo-1", "default", "", ""}, by).ok());
    ASSERT_TRUE(reg.create_asset({"north-site", "site", "", ""}).ok());
    ASSERT_TRUE(reg.create_asset({"north-line-1", "line", "", ""}).ok());
    ASSERT_TRUE(reg.create_asset({"north-line-2", "line", "", ""}).ok());
    ASSERT_TRUE(reg.add_relation("north-site", "north-line-1", "contains").ok());
    ASSERT_TRUE(reg.add_relation("north-site", "north-line-2", "contains").ok());
    ASSERT_TRUE(reg.add_relation("north-line-1", "pump-01", "contains").ok());
    ASSERT_TRUE(reg.add_relation("north-line-1", "pump-02", "contains").ok());
    ASSERT_TRUE(reg.add_relation("north-line-2", "pump-03", "contains").ok());
    // Not a hierarchy: ignored.
    ASSERT_TRUE(reg.add_relation("pump-01", "pump-02", "feeds").ok());

    // A field no type lists (humidity) is known from the stored series; derived series
    // (anomaly scores, health) and text fields are not metrics.
    storage::write_batch b;
    auto add = [&](const std::string& key, storage::value_type t) {
        auto id = b.series(key, t);
        ASSERT_TRUE(id.ok());
        if (t == storage::value_type::string)
            b.add_string(*id, 1'000'000'000, "ok");
        else
            b.add(*id, 1'000'000'000, 1.0);
    };
    add("telemetry,device=thermo-1 humidity", storage::value_type::float64);
    add("telemetry,device=thermo-1 humidity.anomaly", storage::value_type::float64);
    add("telemetry,device=thermo-1 health", storage::value_type::float64);
    add("telemetry,device=thermo-1 note", storage::value_type::string);
    ASSERT_TRUE((*engine)->write(b).ok());

    auto v = build_vocabulary(reg, **engine, "Europe/Berlin");
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->time_zone, "Europe/Berlin");

    std::vector<std::string> names;
    for (const auto& d : v->devices)
        names.push_back(d.name);
    EXPECT_EQ(names, (std::vector<std::string>{"pump-01", "pump-02", "pump-03", "thermo-1"}));
    EXPECT_EQ(v->devices[0].type, "pump");
    EXPECT_EQ(v->devices[0].assets, (std::vector<std::string>{"north-line-1", "north-site"}));
    EXPECT_TRUE(v->devices[3].assets.empty());

    auto asset = [&](std::string_view name) {
        auto it = std::find_if(v->assets.begin(), v->assets.end(),
                               [&](const asset_word& a) { return a.name == name; });
        EXPECT_NE(it, v->assets.end()) << name;
        return it == v->assets.end() ? asset_word{} : *it;
    };
    EXPECT_EQ(asset("north-site").devices,
              (std::vector<std::string>{"pump-01", "pump-02", "pump-03"}));
    EXPECT_EQ(asset("north-site").parent, "");
    EXPECT_EQ(asset("north-line-1").devices, (std::vector<std::string>{"pump-01", "pump-02"}));
    EXPECT_EQ(asset("north-line-1").parent, "north-site");
    EXPECT_EQ(asset("north-line-1").type, "line");

    auto pump_type = std::find_if(v->types.begin(), v->types.end(),
                                  [](const type_word& t) { return t.name == "pump"; });
    ASSERT_NE(pump_type, v->types.end());
    EXPECT_EQ(pump_type->plural, "pumps");
    EXPECT_EQ(pump_type->metrics, (std::vector<std::string>{"temperature", "vibration_rms"}));

    std::vector<std::string> metrics;
    for (const auto& m : v->metrics)
        metrics.push_back(m.name + "[" + m.unit + "]");
    EXPECT_EQ(metrics,
              (std::vector<std::string>{"humidity[]", "temperature[°C]", "vibration_rms[mm/s]"}));
    const auto& vib = v->metrics[2];
    EXPECT_EQ(vib.synonyms.front(), "vibration");
    EXPECT_NE(std::find(vib.synonyms.begin(), vib.synonyms.end(), "vib"), vib.synonyms.end());
    EXPECT_NE(std::find(vib.synonyms.begin(), vib.synonyms.end(), "vibration rms"),
              vib.synonyms.end());

    // The vocabulary is enough for the grammar: "line 2" is north-line-2, the only one.
    auto r = parse("average vib on line 2 today", *v, {1796463000000});
    ASSERT_TRUE(std::holds_alternative<plan>(r));
    EXPECT_EQ(std::get<plan>(r).asset, "north-line-2");
    EXPECT_EQ(std::get<plan>(r).metric, "vibration_rms");
    r = parse("humidity of thermo-1 now", *v, {1796463000000});
    ASSERT_TRUE(std::holds_alternative<plan>(r));
    EXPECT_EQ(std::get<plan>(r).metric, "humidity");

    auto bad = build_vocabulary(reg, **engine, "Mars/Olympus");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, "time_zone");
    reg.stop();
}

}  // namespace
}  // namespace clisonix::ask::testing
