// execute() over a real storage engine, device registry (SQLite), rules engine and forecast
// service, with hand-made plans (the grammar is tested on its own) and data with known values:
// the answer's sentence, rows and chart for each aggregate, grouping, filter and ranking, and
// for alarms, health, offline devices and forecasts.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "ask/ask.h"
#include "auth/auth.h"
#include "common/time.h"
#include "devices/devices.h"
#include "forecast/forecast.h"
#include "meta/meta.h"
#include "rules/rules.h"
#include "storage/storage.h"
#include "support/test_support.h"

namespace clisonix::ask {
namespace {

constexpr int64_t hour = 3'600'000;
// Yesterday in the tests: 2026-12-04 in UTC; "now" is 2026-12-05T12:00:00Z.
constexpr int64_t day_start = 1'796'342'400'000;  // 2026-12-04T00:00:00Z
constexpr int64_t day_end = day_start + 24 * hour;
constexpr int64_t now_at = day_end + 12 * hour;

auth::options fast_auth() {
    auth::options o;
    o.argon2_memory_kib = 256;
    o.argon2_iterations = 1;
    o.jwt_secret = "0123456789abcdef0123456789abcdef";
    return o;
}

boost::json::value parse_json(const std::string& text) {
    return boost::json::parse(text);
}

// The plant: line-1 holds pump-01 and pump-02, line-2 holds pump-03, pump-04 and fan-01.
//   pump-01 temperature: 60 + h at each hour h of yesterday (60 .. 83)
//   pump-02 temperature: 50 at each hour
//   pump-03 temperature: 90 at hours 0 .. 11, then nothing
//   pump-04: no data at all
class ask_execute : public ::testing::Test {
protected:
    void SetUp() override {
        storage::options so;
        so.dir = (dir.path() / "tsdb").string();
        auto e = storage::engine::open(so);
        ASSERT_TRUE(e) << e.error().message;
        engine = std::move(*e);
        auto s = meta::open("", dir.str());
        ASSERT_TRUE(s) << s.error().message;
        store = std::move(*s);
        auth = std::make_unique<auth::auth_service>(*store, fast_auth());
        devices::options dopts;
        dopts.flush_interval = std::chrono::hours(1);
        registry = std::make_unique<devices::registry>(*store, *auth, dopts);
        ASSERT_TRUE(registry->start());

        devices::device_type pump;
        pump.name = "pump";
        pump.metrics["temperature"] = {"°C", std::nullopt, std::nullopt};
        ASSERT_TRUE(registry->create_type(pump));
        devices::device_type fan;
        fan.name = "fan";
        fan.metrics["speed"] = {"rpm", std::nullopt, std::nullopt};
        ASSERT_TRUE(registry->create_type(fan));
        for (auto name : {"pump-01", "pump-02", "pump-03", "pump-04"})
            ASSERT_TRUE(registry->create_device({name, "pump", "", ""}, by));
        ASSERT_TRUE(registry->create_device({"fan-01", "fan", "", ""}, by));
        ASSERT_TRUE(registry->create_asset({"site-1", "site", "", ""}));
        ASSERT_TRUE(registry->create_asset({"line-1", "line", "", ""}));
        ASSERT_TRUE(registry->create_asset({"line-2", "line", "", ""}));
        ASSERT_TRUE(registry->add_relation("site-1", "line-1", "contains"));
        ASSERT_TRUE(registry->add_relation("site-1", "line-2", "contains"));
        for (auto [line, device] :
             std::vector<std::pair<const char*, const char*>>{{"line-1", "pump-01"},
                                                              {"line-1", "pump-02"},
                                                              {"line-2", "pump-03"},
                                                              {"line-2", "pump-04"},
                                                              {"line-2", "fan-01"}})
            ASSERT_TRUE(registry->add_relation(line, device, "contains"));

        for (int h = 0; h < 24; ++h) {
            write("pump-01", "temperature", day_start + h * hour, 60 + h);
            write("pump-02", "temperature", day_start + h * hour, 50);
            if (h < 12) write("pump-03", "temperature", day_start + h * hour, 90);
            write("fan-01", "speed", day_start + h * hour, 1500);
        }

        vocab.time_zone = "UTC";
        vocab.types = {{"fan", "fans", {"speed"}}, {"pump", "pumps", {"temperature"}}};
        vocab.assets = {
            {"line-1", "line", "site-1", {"pump-01", "pump-02"}},
            {"line-2", "line", "site-1", {"fan-01", "pump-03", "pump-04"}},
            {"site-1", "site", "", {"fan-01", "pump-01", "pump-02", "pump-03", "pump-04"}}};
        vocab.devices = {{"fan-01", "fan", "", {"line-2", "site-1"}, false},
                         {"pump-01", "pump", "", {"line-1", "site-1"}, false},
                         {"pump-02", "pump", "", {"line-1", "site-1"}, false},
                         {"pump-03", "pump", "", {"line-2", "site-1"}, false},
                         {"pump-04", "pump", "", {"line-2", "site-1"}, false}};
        vocab.metrics = {{"health", "", {}}, {"speed", "rpm", {}}, {"temperature", "°C", {}}};
        from.engine = engine.get();
        from.registry = registry.get();
    }

    void write(const std::string& device, const std::string& metric, int64_t ms, double v) {
        storage::write_batch batch;
        auto id =
            batch.series("plant,device=" + device + " " + metric, storage::value_type::float64);
        ASSERT_TRUE(id);
        batch.add(*id, ms * 1'000'000, v);
        ASSERT_TRUE(engine->write(batch));
    }

    // Yesterday's temperature of the pumps, grouped by device.
    static plan pumps_yesterday(aggregate a) {
        plan p;
        p.kind = plan_kind::telemetry;
        p.device_type = "pump";
        p.metric = "temperature";
        p.unit = "°C";
        p.from_ms = day_start;
        p.to_ms = day_end;
        p.time_text = "yesterday";
        p.agg = a;
        p.group_by = grouping::device;
        p.source = "parser";
        return p;
    }

    static plan one_device(const std::string& device, aggregate a) {
        plan p = pumps_yesterday(a);
        p.device_type.clear();
        p.devices = {device};
        return p;
    }

    answer run(const plan& p) {
        auto a = execute(p, vocab, from);
        EXPECT_TRUE(a) << a.error().message;
        return a ? *a : answer{};
    }

    std::string rows(const answer& a) {
        return boost::json::serialize(parse_json(a.data_json).as_object().at("rows"));
    }

    clisonix::testing::temp_dir dir{"clisonix-ask"};
    std::unique_ptr<storage::engine> engine;
    std::unique_ptr<meta::store> store;
    std::unique_ptr<auth::auth_service> auth;
    std::unique_ptr<devices::registry> registry;
    const auth::actor by{"tester", "local"};
    vocabulary vocab;
    sources from;
};

TEST_F(ask_execute, max_per_device_with_a_filter_names_the_devices_above_it) {
    plan p = pumps_yesterday(aggregate::max);
    p.filter = comparison{">", 80};
    auto a = run(p);
    EXPECT_EQ(a.text,
              "2 of 4 pumps had a maximum temperature above 80 °C yesterday: pump-01 (83 °C) "
              "and pump-03 (90 °C).");
    EXPECT_EQ(parse_json(a.data_json), parse_json(R"({"columns":["device","max"],
        "rows":[["pump-01",83],["pump-03",90]]})"));
    EXPECT_EQ(parse_json(a.chart_json),
              parse_json(R"({"type":"bar","x":"device","y":"max","unit":"°C"})"));
}

TEST_F(ask_execute, every_query_aggregate_over_one_device) {
    EXPECT_EQ(run(one_device("pump-01", aggregate::mean)).text,
              "The average temperature of pump-01 yesterday was 71.5 °C.");
    EXPECT_EQ(run(one_device("pump-01", aggregate::min)).text,
              "The minimum temperature of pump-01 yesterday was 60 °C.");
    EXPECT_EQ(run(one_device("pump-01", aggregate::sum)).text,
              "The total temperature of pump-01 yesterday was 1716 °C.");
    EXPECT_EQ(run(one_device("pump-01", aggregate::count)).text,
              "The number of temperature readings of pump-01 yesterday was 24.");
    // Nearest rank: the 12th of 24 values, the 22nd (ceil 21.6), the 24th.
    EXPECT_EQ(rows(run(one_device("pump-01", aggregate::p50))), R"([["pump-01",71]])");
    EXPECT_EQ(rows(run(one_device("pump-01", aggregate::p90))), R"([["pump-01",81]])");
    EXPECT_EQ(rows(run(one_device("pump-01", aggregate::p99))), R"([["pump-01",83]])");
    // p95 from the raw points, the same way: the 23rd of 24.
    EXPECT_EQ(rows(run(one_device("pump-01", aggregate::p95))), R"([["pump-01",82]])");
}

TEST_F(ask_execute, change_and_trend_over_the_range) {
    auto change = run(one_device("pump-01", aggregate::change));
    EXPECT_EQ(change.text,
              "The temperature of pump-01 changed by +23 °C (from 60 to 83 °C) yesterday.");
    EXPECT_EQ(rows(change), R"([["pump-01",23,60,83]])");
    // How it moved, as a line: hourly points bucketed by the nice step over a 60th of a day
    // (30 min), so each bucket's mean is its one point.
    auto series = parse_json(change.data_json).as_object().at("series").as_array();
    ASSERT_EQ(series.size(), 1u);
    EXPECT_EQ(series[0].at("name"), "pump-01");
    const auto& points = series[0].at("points").as_array();
    ASSERT_EQ(points.size(), 24u);
    EXPECT_EQ(points[0], parse_json("[" + std::to_string(day_start) + ",60]"));
    EXPECT_EQ(points[23], parse_json("[" + std::to_string(day_start + 23 * hour) + ",83]"));
    EXPECT_EQ(parse_json(change.chart_json),
              parse_json(R"({"type":"line","x":"time","y":"temperature","unit":"°C"})"));
    EXPECT_EQ(run(one_device("pump-01", aggregate::trend)).text,
              "The temperature of pump-01 was rising yesterday (+1 °C per hour).");
    EXPECT_EQ(run(one_device("pump-02", aggregate::trend)).text,
              "The temperature of pump-02 was flat yesterday (0 °C per hour).");
}

TEST_F(ask_execute, rankings_of_current_values_and_trends_read_as_sentences) {
    plan now = pumps_yesterday(aggregate::last);
    now.from_ms = now.to_ms = now_at;
    now.time_text = "now";
    now.order = "desc";
    now.limit = 1;
    EXPECT_EQ(run(now).text,
              "Pump-03 has the highest temperature of the pumps now: 90 °C, last reported 11:00 "
              "yesterday. No data now from pump-04.");
    plan trend = pumps_yesterday(aggregate::trend);
    trend.device_type.clear();
    trend.devices = {"pump-01", "pump-02"};
    EXPECT_EQ(run(trend).text,
              "Trend of temperature of pump-01 and pump-02 yesterday: pump-01 (rising, +1 °C per "
              "hour) and pump-02 (flat, 0 °C per hour).");
}

TEST_F(ask_execute, time_above_holds_each_value_until_the_next_point) {
    plan p = pumps_yesterday(aggregate::time_above);
    p.threshold = comparison{">", 80};
    auto a = run(p);
    // pump-01: 81, 82, 83 at 21:00, 22:00, 23:00, the last held one spacing (to midnight);
    // pump-03: 90 from 00:00, the last at 11:00 held to 12:00, not to the end of the day.
    EXPECT_EQ(rows(a), R"([["pump-01",3],["pump-02",0],["pump-03",12]])");
    EXPECT_EQ(a.text,
              "Time with temperature above 80 °C of the pumps yesterday: pump-01 (3 h), pump-02 "
              "(0 s) and pump-03 (12 h). No data yesterday from pump-04.");
    plan one = one_device("pump-01", aggregate::time_above);
    one.threshold = comparison{">", 80};
    EXPECT_EQ(run(one).text, "Pump-01 had temperature above 80 °C for 3 h yesterday.");
}

TEST_F(ask_execute, group_by_line_merges_the_devices_of_each_line) {
    plan p = pumps_yesterday(aggregate::mean);
    p.group_by = grouping::asset;
    p.asset_level = "line";
    auto a = run(p);
    // line-1: (1716 + 24 * 50) / 48; line-2: pump-03's twelve 90s (pump-04 has none).
    EXPECT_EQ(rows(a), R"([["line-1",6.075E1],["line-2",90]])");
    EXPECT_EQ(a.text,
              "Average temperature of the pumps yesterday: line-1 (60.8 °C) and line-2 (90 °C).");
    EXPECT_EQ(parse_json(a.chart_json),
              parse_json(R"({"type":"bar","x":"asset","y":"mean","unit":"°C"})"));

    plan areas = p;
    areas.asset_level = "area";
    auto none = execute(areas, vocab, from);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().field, "asset_level");
    EXPECT_EQ(none.error().message, "asset_level: no area holds any of the devices asked about");

    plan all = pumps_yesterday(aggregate::mean);
    all.group_by = grouping::none;
    EXPECT_EQ(run(all).text, "The average temperature of the pumps yesterday was 66.6 °C.");
}

TEST_F(ask_execute, ranking_answers_which_device_the_most_and_the_top_n) {
    plan p = pumps_yesterday(aggregate::max);
    p.order = "desc";
    p.limit = 1;
    EXPECT_EQ(run(p).text,
              "Pump-03 had the highest maximum temperature of the pumps yesterday: 90 °C. No data "
              "yesterday from pump-04.");
    p.limit = 2;
    p.order = "asc";
    auto a = run(p);
    EXPECT_EQ(a.text,
              "The bottom 2 of the pumps by maximum temperature yesterday: pump-02 (50 °C) and "
              "pump-01 (83 °C). No data yesterday from pump-04.");
    EXPECT_EQ(rows(a), R"([["pump-02",50],["pump-01",83]])");
}

TEST_F(ask_execute, current_value_is_the_newest_point_at_the_moment_asked) {
    plan p = one_device("pump-01", aggregate::last);
    p.from_ms = p.to_ms = now_at;
    p.time_text = "now";
    auto a = run(p);
    EXPECT_EQ(a.text, "The temperature of pump-01 is 83 °C, measured at 23:00 yesterday.");
    EXPECT_EQ(rows(a), R"([["pump-01",83,"2026-12-04T23:00:00+00:00"]])");
    EXPECT_EQ(parse_json(a.chart_json), parse_json(R"({"type":"number","y":"last","unit":"°C"})"));
    // Asked about 10:30 yesterday: the point of 10:00, not the newest.
    p.from_ms = p.to_ms = day_start + 10 * hour + hour / 2;
    EXPECT_EQ(rows(run(p)), R"([["pump-01",70,null]])");
}

// "The average temperature of the pumps now" (decision 0090): the statistic of the devices'
// current values, each the newest point at the moment asked (pump-01 83, pump-02 50, pump-03
// 90; pump-04 has none).
TEST_F(ask_execute, a_statistic_now_combines_the_devices_current_values) {
    plan p = pumps_yesterday(aggregate::mean);
    p.group_by = grouping::none;
    p.from_ms = p.to_ms = now_at;
    p.time_text = "now";
    auto a = run(p);
    EXPECT_EQ(rows(a), R"([["the pumps",7.433333333333333E1]])");
    EXPECT_EQ(a.text,
              "The average temperature of the pumps now is 74.3 °C, over the latest values of 3 "
              "devices.");
    p.agg = aggregate::max;
    EXPECT_EQ(rows(run(p)), R"([["the pumps",90]])");
    p.agg = aggregate::min;
    EXPECT_EQ(rows(run(p)), R"([["the pumps",50]])");
    p.agg = aggregate::count;
    EXPECT_EQ(rows(run(p)), R"([["the pumps",3]])");
    p.group_by = grouping::asset;
    p.asset_level = "line";
    p.agg = aggregate::max;
    EXPECT_EQ(rows(run(p)), R"([["line-1",83],["line-2",90]])");
    // A trend needs a range: refused, not answered from nothing.
    p.agg = aggregate::trend;
    auto t = execute(p, vocab, from);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, "invalid_argument");
    EXPECT_EQ(t.error().message,
              "trend needs a time range, not an instant: ask over a range (\"in the last hour\", "
              "\"today\")");
}

TEST_F(ask_execute, no_data_in_the_range_says_so) {
    auto a = run(one_device("pump-04", aggregate::max));
    EXPECT_EQ(a.text, "There is no temperature data for pump-04 yesterday.");
    EXPECT_EQ(rows(a), "[]");
    plan later = one_device("pump-03", aggregate::mean);
    later.from_ms = day_start + 12 * hour;
    later.time_text = "since noon yesterday";
    EXPECT_EQ(run(later).text, "There is no temperature data for pump-03 since noon yesterday.");
}

TEST_F(ask_execute, raw_point_aggregates_over_the_cap_say_so_instead_of_answering) {
    from.max_points = 10;
    auto a = execute(one_device("pump-01", aggregate::p95), vocab, from);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, "invalid_argument");
    EXPECT_EQ(a.error().message,
              "95th percentile needs every point in the range, and the range holds more than "
              "query.max_points (10); ask about a shorter time or fewer devices");
}

TEST_F(ask_execute, least_healthy_now_names_the_metric_contributing_most) {
    write("pump-01", "health", day_end - hour, 0.71);
    write("pump-01", "health.vibration", day_end - hour, 0.5);
    write("pump-01", "health.temperature", day_end - hour, 0.2);
    write("pump-02", "health", day_end - hour, 0.1);
    plan p;
    p.kind = plan_kind::health;
    p.device_type = "pump";
    p.from_ms = p.to_ms = now_at;
    p.time_text = "right now";
    p.agg = aggregate::last;
    p.order = "desc";
    p.limit = 1;
    auto a = run(p);
    EXPECT_EQ(a.text,
              "Pump-01 is the least healthy of the pumps right now: health score 0.71, abnormal, "
              "mostly from vibration (0.5) (0 is normal, 0.5 and above abnormal).");
    EXPECT_EQ(rows(a), R"([["pump-01",7.1E-1,"abnormal","vibration",5E-1]])");
    p.order = "asc";
    EXPECT_EQ(run(p).text,
              "Pump-02 is the most healthy of the pumps right now: health score 0.1, normal (0 is "
              "normal, 0.5 and above abnormal); none of its metrics is far from its learnt "
              "normal.");
    p.limit.reset();
    EXPECT_EQ(rows(run(p)), R"([["pump-02",1E-1,"normal",null,null],)"
                            R"(["pump-01",7.1E-1,"abnormal","vibration",5E-1]])");
}

TEST_F(ask_execute, health_over_a_range_ranks_by_the_highest_score_in_it) {
    write("pump-01", "health", day_start + hour, 0.2);
    write("pump-02", "health", day_start + 2 * hour, 0.62);
    write("pump-02", "health.temperature", day_start + 2 * hour, 0.4);
    write("pump-02", "health", day_start + 3 * hour, 0.05);  // recovered later
    plan p;
    p.kind = plan_kind::health;
    p.device_type = "pump";
    p.from_ms = day_start;
    p.to_ms = day_end;
    p.time_text = "yesterday";
    p.agg = aggregate::max;
    auto a = run(p);
    EXPECT_EQ(a.text,
              "Health of the pumps yesterday, least healthy first: pump-02 (health score 0.62, "
              "abnormal, mostly from temperature (0.4)) and pump-01 (health score 0.2, normal) (0 "
              "is normal, 0.5 and above abnormal).");
    EXPECT_EQ(parse_json(a.chart_json), parse_json(R"({"type":"bar","x":"device","y":"health"})"));
}

TEST_F(ask_execute, health_without_scores_says_there_are_none) {
    plan p;
    p.kind = plan_kind::health;
    p.devices = {"pump-04"};
    p.from_ms = p.to_ms = now_at;
    p.time_text = "now";
    p.agg = aggregate::last;
    EXPECT_EQ(run(p).text,
              "There are no health scores for pump-04 now (a device is scored once its baseline "
              "has been learnt).");
}

TEST_F(ask_execute, offline_lists_the_devices_not_seen_within_their_timeout) {
    registry->seen("pump-01", now_ms());
    registry->seen("pump-02", now_ms() - 24 * hour);
    plan p;
    p.kind = plan_kind::offline;
    p.device_type = "pump";
    p.asset = "line-1";
    p.from_ms = p.to_ms = now_ms();
    auto a = run(p);
    EXPECT_EQ(a.text.substr(0, a.text.find("(last seen")),
              "1 of 2 pumps on line-1 is offline now: pump-02 ");
    plan line2 = p;
    line2.asset = "line-2";
    auto b = run(line2);
    EXPECT_EQ(b.text,
              "2 of 2 pumps on line-2 are offline now: pump-03 (never seen) and pump-04 "
              "(never seen).");
    EXPECT_EQ(rows(b), R"([["pump-03","pump",null],["pump-04","pump",null]])");
    plan only_one = p;
    only_one.devices = {"pump-01"};
    only_one.device_type.clear();
    only_one.asset.clear();
    EXPECT_EQ(run(only_one).text, "Pump-01 is online now.");
}

TEST_F(ask_execute, alarms_open_and_counted_per_device) {
    rules::scope_hooks hooks;
    hooks.type_of = [this](std::string_view d) {
        auto t = registry->type_of(d);
        return t ? *t : std::string();
    };
    rules::options ro;
    ro.clock = [] { return now_at; };
    ro.no_data_interval = std::chrono::milliseconds(0);
    rules::engine alarms(*store, hooks, nullptr, ro);
    ASSERT_TRUE(alarms.start());
    rules::rule hot;
    hot.name = "pump hot";
    hot.scope = rules::scope_kind::device_type;
    hot.scope_value = "pump";
    hot.severity = "major";
    hot.condition = "temperature > 85";
    ASSERT_TRUE(alarms.create_rule(hot));
    storage::write_batch batch;
    auto id = batch.series("plant,device=pump-03 temperature", storage::value_type::float64);
    ASSERT_TRUE(id);
    batch.add(*id, (day_start + 11 * hour) * 1'000'000, 90);
    alarms.observe(batch);
    from.rules = &alarms;

    plan p;
    p.kind = plan_kind::alarms;
    p.asset = "line-2";
    p.from_ms = p.to_ms = now_at;
    p.agg = aggregate::last;
    p.alarm_status = "open";
    auto a = run(p);
    EXPECT_EQ(a.text,
              "1 open alarm on the devices on line-2: pump hot on pump-03 (major, since 11:00 "
              "yesterday).");
    plan quiet = p;
    quiet.asset = "line-1";
    EXPECT_EQ(run(quiet).text, "There are no open alarms on the devices on line-1.");

    plan most;
    most.kind = plan_kind::alarms;
    most.from_ms = day_start;
    most.to_ms = day_end;
    most.time_text = "yesterday";
    most.agg = aggregate::count;
    most.group_by = grouping::device;
    most.order = "desc";
    most.limit = 1;
    most.alarm_status = "any";
    auto m = run(most);
    EXPECT_EQ(m.text, "Pump-03 alarmed most on the plant yesterday: 1 alarm.");
    EXPECT_EQ(rows(m), R"([["pump-03",1,1]])");
    // Without a grouping, "what alarmed most" ranks the rules.
    most.group_by = grouping::none;
    auto by_rule = run(most);
    EXPECT_EQ(by_rule.text, "The rule pump hot alarmed most on the plant yesterday: 1 alarm.");
    EXPECT_EQ(
        parse_json(by_rule.data_json),
        parse_json(R"({"columns":["rule","alarms","occurrences"],"rows":[["pump hot",1,1]]})"));
    // The day before, nothing alarmed.
    most.from_ms = day_start - 24 * hour;
    most.to_ms = day_start;
    most.time_text = "the day before yesterday";
    EXPECT_EQ(run(most).text, "There were no alarms on the plant the day before yesterday.");
}

TEST_F(ask_execute, forecast_says_when_a_rising_series_reaches_the_level) {
    forecast::service forecasts(*engine);
    from.forecasts = &forecasts;
    // pump-04 rises 1 °C an hour over the last 3 days and is at about 72 °C now.
    const int64_t last = (now_ms() / hour - 1) * hour;
    for (int h = 72; h >= 0; --h)
        write("pump-04", "temperature", last - h * hour, 72.0 - h);
    plan p;
    p.kind = plan_kind::forecast;
    p.devices = {"pump-04"};
    p.metric = "temperature";
    p.unit = "°C";
    p.from_ms = now_ms();
    p.to_ms = p.from_ms + 24 * hour;
    p.threshold = comparison{">=", 80};
    auto a = run(p);
    auto row = parse_json(a.data_json).as_object().at("rows").as_array().at(0).as_array();
    ASSERT_TRUE(row.at(3).is_string()) << a.data_json;
    EXPECT_NE(a.text.find("is expected to reach 80 °C at "), std::string::npos) << a.text;
    // About 8 hours after the last point, give or take the model's reading of the line.
    p.threshold = comparison{">=", 60};
    EXPECT_NE(run(p).text.find("is already at or above 60 °C."), std::string::npos);
    p.threshold = comparison{">=", 5000};
    EXPECT_NE(run(p).text.find("is not expected to reach 5000 °C before "), std::string::npos);
}

TEST_F(ask_execute, kinds_without_their_service_are_refused_not_guessed) {
    plan p;
    p.kind = plan_kind::alarms;
    auto a = execute(p, vocab, from);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().field, "kind");
    p.kind = plan_kind::forecast;
    p.devices = {"pump-01"};
    p.metric = "temperature";
    p.threshold = comparison{">", 90};
    EXPECT_EQ(execute(p, vocab, from).error().message,
              "forecasts are not available on this server");
}

}  // namespace
}  // namespace clisonix::ask
