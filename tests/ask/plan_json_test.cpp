// A plan as JSON: what the answer shows, what an LLM or a client sends back, and the schema
// Ollama's `format` constrains a model with.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "ask/demo_vocabulary.h"

namespace clisonix::ask::testing {
namespace {

const vocabulary& demo() {
    static const vocabulary v = demo_vocabulary();
    return v;
}

bool same(const plan& a, const plan& b) {
    auto same_comparison = [](const std::optional<comparison>& x,
                              const std::optional<comparison>& y) {
        return x.has_value() == y.has_value() && (!x || (x->op == y->op && x->value == y->value));
    };
    return a.kind == b.kind && a.devices == b.devices && a.device_type == b.device_type &&
           a.asset == b.asset && a.metric == b.metric && a.unit == b.unit &&
           a.from_ms == b.from_ms && a.to_ms == b.to_ms && a.time_text == b.time_text &&
           a.agg == b.agg && a.group_by == b.group_by && a.asset_level == b.asset_level &&
           same_comparison(a.threshold, b.threshold) && same_comparison(a.filter, b.filter) &&
           a.order == b.order && a.limit == b.limit && a.alarm_status == b.alarm_status &&
           a.source == b.source;
}

// Whether `json` is valid against the plan schema; the deepest error's place otherwise.
std::string schema_verdict(const std::string& json) {
    valijson::Schema schema;
    valijson::SchemaParser parser;
    auto schema_json = boost::json::parse(plan_json_schema());
    valijson::adapters::BoostJsonAdapter schema_adapter(schema_json);
    parser.populateSchema(schema_adapter, schema);
    valijson::Validator validator;
    valijson::ValidationResults results;
    auto doc = boost::json::parse(json);
    valijson::adapters::BoostJsonAdapter doc_adapter(doc);
    if (validator.validate(schema, doc_adapter, &results)) return "valid";
    valijson::ValidationResults::Error e;
    std::string where;  // the deepest place named
    while (results.popError(e)) {
        std::string place;
        for (const auto& c : e.context)
            place += c;
        if (place.size() > where.size()) where = place;
    }
    return "invalid at " + where;
}

const char* questions[] = {
    "which pumps on north line 2 ran hotter than 80 °C yesterday?",
    "top 3 pumps by vibration this week",
    "average temperature per line today",
    "how long was pump-01 above 65 °C today",
    "when will pump-04 reach 90 °C",
    "open alarms on north line 2",
    "which machine is least healthy right now and why",
    "how many devices are offline",
    "pumps 1 and 2 temperature now",
};

TEST(ask_plan_json, parsed_plans_round_trip_and_fit_the_schema) {
    for (const char* q : questions) {
        auto r = parse(q, demo(), {saturday_1030});
        ASSERT_TRUE(std::holds_alternative<plan>(r)) << q;
        const plan& p = std::get<plan>(r);
        std::string json = plan_to_json(p, demo().time_zone);
        EXPECT_EQ(schema_verdict(json), "valid") << q << ": " << json;
        auto back = plan_from_json(json, demo().time_zone);
        ASSERT_TRUE(back.ok()) << q << ": " << back.error().message;
        EXPECT_TRUE(same(p, *back)) << q << ": " << json << "\n"
                                    << plan_to_json(*back, demo().time_zone);
    }
}

TEST(ask_plan_json, the_schema_is_strict) {
    auto r = parse("open alarms on north line 2", demo(), {saturday_1030});
    std::string json = plan_to_json(std::get<plan>(r), demo().time_zone);
    auto doc = boost::json::parse(json).as_object();

    auto with = [&](std::string_view key, boost::json::value v) {
        auto copy = doc;
        copy[key] = std::move(v);
        return boost::json::serialize(copy);
    };
    EXPECT_EQ(schema_verdict(with("weather", "sunny")), "invalid at <root>");
    EXPECT_EQ(schema_verdict(with("kind", "weather")), "invalid at <root>[kind]");
    EXPECT_EQ(schema_verdict(with("aggregate", "mode")), "invalid at <root>[aggregate]");
    EXPECT_EQ(schema_verdict(with("limit", 0)), "invalid at <root>[limit]");
    EXPECT_EQ(schema_verdict(with("filter", boost::json::object{{"op", "~"}, {"value", 1}})),
              "invalid at <root>[filter][op]");
    auto missing = doc;
    missing.erase("source");
    EXPECT_EQ(schema_verdict(boost::json::serialize(missing)), "invalid at <root>");
}

TEST(ask_plan_json, times_are_rfc3339_in_the_zone_or_unix_ms) {
    auto r = parse("average temperature of pump-01 yesterday", demo(), {saturday_1030});
    const plan& p = std::get<plan>(r);
    auto doc = boost::json::parse(plan_to_json(p, "Europe/Berlin")).as_object();
    EXPECT_EQ(doc["from"].as_string(), "2026-12-04T00:00:00+01:00");
    EXPECT_EQ(doc["to"].as_string(), "2026-12-05T00:00:00+01:00");
    doc = boost::json::parse(plan_to_json(p, "UTC")).as_object();
    EXPECT_EQ(doc["from"].as_string(), "2026-12-03T23:00:00+00:00");
    doc["from"] = p.from_ms;
    doc["to"] = "2026-12-04T23:00:00Z";
    auto back = plan_from_json(boost::json::serialize(doc), "UTC");
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->from_ms, p.from_ms);
    EXPECT_EQ(back->to_ms, p.to_ms);
}

TEST(ask_plan_json, bad_plans_name_the_member) {
    struct bad {
        std::string json;
        std::string field;
        std::string message;
    };
    const bad cases[] = {
        {"[1,2]", "plan", "the plan must be a JSON object"},
        {R"({"devices":[]})", "kind", "kind: is missing"},
        {R"({"kind":"weather"})", "kind",
         "kind: \"weather\" is not one of telemetry, alarms, health, offline, forecast"},
        {R"({"kind":"telemetry","aggregate":"mode"})", "aggregate",
         "aggregate: \"mode\" is not an aggregate"},
        {R"({"kind":"telemetry","group_by":"shift"})", "group_by",
         "group_by: \"shift\" is not one of device, asset, none"},
        {R"({"kind":"telemetry","devices":"pump-01"})", "devices",
         "devices: must be an array of device names"},
        {R"({"kind":"telemetry","metric":42})", "metric", "metric: must be a string"},
        {R"({"kind":"telemetry","from":"yesterday"})", "from",
         "from: \"yesterday\" is not an RFC 3339 time (2026-12-04T00:00:00+01:00)"},
        {R"({"kind":"telemetry","limit":"3"})", "limit", "limit: must be a whole number or null"},
        {R"({"kind":"telemetry","filter":{"op":">"}})", "filter.value", "filter.value: is missing"},
        {R"({"kind":"telemetry","filter":{"op":">","value":1,"unit":"bar"}})", "filter.unit",
         "filter.unit: is not a member of a comparison (op, value)"},
        {R"({"kind":"telemetry","sql":"drop table"})", "sql", "sql: is not a member of a plan"},
    };
    for (const auto& c : cases) {
        auto r = plan_from_json(c.json, "Europe/Berlin");
        ASSERT_FALSE(r.ok()) << c.json;
        EXPECT_EQ(r.error().code, "invalid_argument") << c.json;
        EXPECT_EQ(r.error().field, c.field) << c.json;
        EXPECT_EQ(r.error().message, c.message) << c.json;
    }
    auto r = plan_from_json("{\"kind\":", "Europe/Berlin");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().field, "plan");
    EXPECT_TRUE(r.error().message.starts_with("the plan is not JSON: ")) << r.error().message;
}

TEST(ask_plan_json, an_llm_plan_naming_an_invented_device_reads_but_the_checker_refuses_it) {
    auto r = plan_from_json(
        R"({"kind":"telemetry","devices":["pump-42"],"metric":"temperature","unit":"°C",)"
        R"("from":"2026-12-04T00:00:00+01:00","to":"2026-12-05T00:00:00+01:00",)"
        R"("aggregate":"max","group_by":"device","source":"llm"})",
        "Europe/Berlin");
    ASSERT_TRUE(r.ok()) << r.error().message;
    auto s = check(*r, demo(), saturday_1030);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().field, "devices");
    EXPECT_EQ(s.error().message, "there is no device named \"pump-42\"");
}

}  // namespace
}  // namespace clisonix::ask::testing
