// The plan checker: every refusal names the plan member at fault and why.
#include <gtest/gtest.h>

#include <functional>

#include "ask/demo_vocabulary.h"

namespace clisonix::ask::testing {
namespace {

constexpr int64_t hour = 3'600'000;
constexpr int64_t now = saturday_1030;

const vocabulary& demo() {
    static const vocabulary v = demo_vocabulary();
    return v;
}

// "which pumps on north line 2 ran hotter than 80 °C yesterday", as an LLM might write it.
plan hot_pumps() {
    plan p;
    p.kind = plan_kind::telemetry;
    p.device_type = "pump";
    p.asset = "north-line-2";
    p.metric = "temperature";
    p.unit = "°C";
    p.from_ms = now - 34 * hour;
    p.to_ms = now - 10 * hour;
    p.agg = aggregate::max;
    p.group_by = grouping::device;
    p.filter = comparison{">", 80};
    p.order = "desc";
    p.source = "llm";
    return p;
}

struct refusal {
    const char* what;
    std::function<void(plan&)> change;
    const char* field;
    const char* message;
};

TEST(ask_check, a_sound_plan_passes) {
    EXPECT_TRUE(check(hot_pumps(), demo(), now).ok());
    plan p = hot_pumps();
    p.unit = "degrees";  // a spelling of the metric's unit
    EXPECT_TRUE(check(p, demo(), now).ok());
}

TEST(ask_check, refusals_name_the_member_and_the_reason) {
    const refusal cases[] = {
        {"an invented device", [](plan& p) { p.devices = {"pump-42"}; }, "devices",
         "there is no device named \"pump-42\""},
        {"a device of another type", [](plan& p) { p.devices = {"compressor-02"}; }, "devices",
         "\"compressor-02\" is a compressor, not a pump"},
        {"a device elsewhere", [](plan& p) { p.devices = {"pump-01"}; }, "devices",
         "\"pump-01\" is not under \"north-line-2\""},
        {"a device twice",
         [](plan& p) {
             p.asset.clear();
             p.devices = {"pump-01", "pump-01"};
         },
         "devices", "device \"pump-01\" is named twice"},
        {"an invented type", [](plan& p) { p.device_type = "turbine"; }, "device_type",
         "there is no device type named \"turbine\""},
        {"an invented asset", [](plan& p) { p.asset = "line-2"; }, "asset",
         "there is no asset named \"line-2\""},
        {"no metric", [](plan& p) { p.metric.clear(); }, "metric", "a metric is needed"},
        {"an invented metric", [](plan& p) { p.metric = "humidity"; }, "metric",
         "there is no metric named \"humidity\""},
        {"a metric the scope lacks",
         [](plan& p) {
             p.device_type = "conveyor";
             p.asset.clear();
             p.metric = "pressure";
             p.unit = "bar";
         },
         "metric", "no device in the scope has \"pressure\""},
        {"a named device lacking the metric",
         [](plan& p) {
             p.device_type.clear();
             p.asset.clear();
             p.devices = {"pump-01", "conveyor-01"};
             p.metric = "pressure";
             p.unit = "bar";
         },
         "metric", "\"conveyor-01\" (a conveyor) has no \"pressure\""},
        {"a unit that is not the metric's", [](plan& p) { p.unit = "bar"; }, "unit",
         "temperature is in °C, not bar"},
        {"no range",
         [](plan& p) {
             p.from_ms = 0;
             p.to_ms = 0;
         },
         "from", "the time range is not set"},
        {"a range backwards", [](plan& p) { std::swap(p.from_ms, p.to_ms); }, "to",
         "the time range ends before it begins"},
        {"a range in the future", [](plan& p) { p.to_ms = now + hour; }, "to",
         "the time range reaches into the future; only forecasts look ahead"},
        {"an aggregate alarms do not take",
         [](plan& p) {
             p.kind = plan_kind::alarms;
             p.metric.clear();
             p.unit.clear();
             p.alarm_status = "open";
         },
         "aggregate", "aggregate max does not fit the kind alarms"},
        {"a metric on an alarm plan",
         [](plan& p) {
             p.kind = plan_kind::alarms;
             p.agg = aggregate::count;
             p.alarm_status = "open";
         },
         "metric", "alarms plans take no metric, not \"temperature\""},
        {"an alarm status outside the set",
         [](plan& p) {
             p.kind = plan_kind::alarms;
             p.metric.clear();
             p.unit.clear();
             p.agg = aggregate::count;
             p.alarm_status = "closed";
         },
         "alarm_status", "alarm_status \"closed\" is not open, active or any"},
        {"an alarm status on telemetry", [](plan& p) { p.alarm_status = "open"; }, "alarm_status",
         "only alarm plans take an alarm_status"},
        {"time_above without a threshold", [](plan& p) { p.agg = aggregate::time_above; },
         "threshold", "time_above and time_below need a threshold"},
        {"time_above with a downward threshold",
         [](plan& p) {
             p.agg = aggregate::time_above;
             p.threshold = comparison{"<", 80};
         },
         "threshold", "threshold.op \"<\" does not fit time_above"},
        {"a threshold where none is read",
         [](plan& p) {
             p.threshold = comparison{">", 80};
         },
         "threshold", "only forecasts, time_above and time_below take a threshold"},
        {"a filter with an unknown operator",
         [](plan& p) {
             p.filter = comparison{"~", 80};
         },
         "filter", "filter.op \"~\" is not one of >, >=, <, <=, =, !="},
        {"a filter on an infinite value",
         [](plan& p) {
             p.filter = comparison{">", 1.0 / 0.0};
         },
         "filter", "filter.value must be a finite number"},
        {"group by asset without a level", [](plan& p) { p.group_by = grouping::asset; },
         "asset_level", "group_by asset needs asset_level (line, site ...)"},
        {"group by an asset type nobody has",
         [](plan& p) {
             p.group_by = grouping::asset;
             p.asset_level = "area";
         },
         "asset_level", "there is no asset of type \"area\""},
        {"a level without group by asset", [](plan& p) { p.asset_level = "line"; }, "asset_level",
         "asset_level goes only with group_by asset"},
        {"an order outside the set", [](plan& p) { p.order = "up"; }, "order",
         "order \"up\" is not asc or desc"},
        {"a limit of 0", [](plan& p) { p.limit = 0; }, "limit", "limit must be between 1 and 1000"},
        {"a source nobody is", [](plan& p) { p.source = "user"; }, "source",
         "source \"user\" is not parser or llm"},
        {"a forecast without a level",
         [](plan& p) {
             p.kind = plan_kind::forecast;
             p.agg = aggregate::last;
             p.filter.reset();
             p.from_ms = now;
             p.to_ms = now + hour;
         },
         "threshold", "a forecast needs the level to reach"},
        {"a forecast into the past",
         [](plan& p) {
             p.kind = plan_kind::forecast;
             p.agg = aggregate::last;
             p.filter.reset();
             p.threshold = comparison{">=", 90};
         },
         "to", "a forecast looks ahead from now: [now, now + horizon)"},
        {"a forecast a year ahead",
         [](plan& p) {
             p.kind = plan_kind::forecast;
             p.agg = aggregate::last;
             p.filter.reset();
             p.threshold = comparison{">=", 90};
             p.from_ms = now;
             p.to_ms = now + 365 * 24 * hour;
         },
         "to", "a forecast looks at most 30 days ahead"},
        {"a health plan naming a plain metric",
         [](plan& p) {
             p.kind = plan_kind::health;
             p.agg = aggregate::last;
             p.filter.reset();
         },
         "metric",
         "a health plan names no metric, \"health\" or \"health.<metric>\", not \"temperature\""},
        {"an offline plan with a filter",
         [](plan& p) {
             p.kind = plan_kind::offline;
             p.metric.clear();
             p.unit.clear();
             p.agg = aggregate::last;
         },
         "filter", "offline plans take no filter"},
    };
    for (const auto& c : cases) {
        plan p = hot_pumps();
        c.change(p);
        auto s = check(p, demo(), now);
        ASSERT_FALSE(s.ok()) << c.what;
        EXPECT_EQ(s.error().code, "invalid_argument") << c.what;
        EXPECT_EQ(s.error().field, c.field) << c.what;
        EXPECT_EQ(s.error().message, c.message) << c.what;
    }
}

TEST(ask_check, a_scope_without_devices_is_refused) {
    plan p = hot_pumps();
    p.device_type = "compressor";
    p.asset = "north-line-2";  // compressor-02 is there
    EXPECT_TRUE(check(p, demo(), now).ok());
    p.device_type = "pump";
    p.asset = "north-site";
    EXPECT_TRUE(check(p, demo(), now).ok());
    vocabulary v = demo();
    v.assets.push_back({"spare-line", "line", "north-site", {}});
    p.asset = "spare-line";
    auto s = check(p, v, now);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().field, "asset");
    EXPECT_EQ(s.error().message, "there is no pump under \"spare-line\"");
}

TEST(ask_check, every_parsed_plan_passes_the_checker_and_other_kinds_pass_when_sound) {
    plan alarms;
    alarms.kind = plan_kind::alarms;
    alarms.asset = "north-line-2";
    alarms.agg = aggregate::count;
    alarms.group_by = grouping::none;
    alarms.alarm_status = "open";
    alarms.from_ms = alarms.to_ms = now;
    alarms.source = "llm";
    EXPECT_TRUE(check(alarms, demo(), now).ok());

    plan forecast;
    forecast.kind = plan_kind::forecast;
    forecast.devices = {"pump-04"};
    forecast.metric = "temperature";
    forecast.unit = "°C";
    forecast.threshold = comparison{">=", 90};
    forecast.from_ms = now;
    forecast.to_ms = now + 24 * hour;
    forecast.source = "llm";
    EXPECT_TRUE(check(forecast, demo(), now).ok());

    plan health;
    health.kind = plan_kind::health;
    health.metric = "health.vibration_rms";
    health.from_ms = health.to_ms = now;
    health.order = "desc";
    health.limit = 1;
    health.source = "llm";
    EXPECT_TRUE(check(health, demo(), now).ok());
    health.metric = "health.humidity";
    EXPECT_EQ(check(health, demo(), now).error().field, "metric");
}

}  // namespace
}  // namespace clisonix::ask::testing
