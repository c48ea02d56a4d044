// STAND-IN for src/ask/plan_json.cpp (plan_json_schema() and plan_from_json(), ask.h), which
// is written on another branch: the LLM tests need both to link. tests/ask/CMakeLists.txt
// compiles this file only while src/ask/plan_json.cpp does not exist, so that the tests run
// against the real functions as soon as that file is there. It reads the plan JSON of the
// answer's "plan" member as ask.h and the contract describe it, no more.
#include <date/tz.h>

#include <boost/json.hpp>
#include <cstdio>

#include "ask/ask.h"

namespace clisonix::ask {

namespace json = boost::json;

// The schema as src/ask/plan_json.cpp writes it: every member required, the closed sets as
// enums.
std::string plan_json_schema() {
    return R"({"type":"object","additionalProperties":false,)"
           R"("required":["kind","devices","device_type","asset","metric","unit","from","to",)"
           R"("time_text","aggregate","group_by","asset_level","filter","order","limit",)"
           R"("threshold","alarm_status","source"],)"
           R"("properties":{)"
           R"("kind":{"type":"string","enum":["telemetry","alarms","health","offline","forecast"]},)"
           R"("devices":{"type":"array","items":{"type":"string"}},)"
           R"("device_type":{"type":"string"},)"
           R"("asset":{"type":"string"},)"
           R"("metric":{"type":"string"},)"
           R"("unit":{"type":"string"},)"
           R"("from":{"type":"string","format":"date-time"},)"
           R"("to":{"type":"string","format":"date-time"},)"
           R"("time_text":{"type":"string"},)"
           R"("aggregate":{"type":"string","enum":["last","mean","min","max","sum","count",)"
           R"("p50","p90","p95","p99","change","trend","time_above","time_below"]},)"
           R"("group_by":{"type":"string","enum":["device","asset","none"]},)"
           R"("asset_level":{"type":"string"},)"
           R"("filter":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/comparison"}]},)"
           R"("order":{"anyOf":[{"type":"null"},{"type":"string","enum":["asc","desc"]}]},)"
           R"("limit":{"anyOf":[{"type":"null"},{"type":"integer","minimum":1}]},)"
           R"("threshold":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/comparison"}]},)"
           R"("alarm_status":{"type":"string","enum":["","open","active","any"]},)"
           R"("source":{"type":"string","enum":["parser","llm"]}},)"
           R"("$defs":{"comparison":{"type":"object","additionalProperties":false,)"
           R"("required":["op","value"],"properties":{)"
           R"("op":{"type":"string","enum":[">",">=","<","<=","=","!="]},)"
           R"("value":{"type":"number"}}}}})";
}

namespace {

error bad(const std::string& member, const std::string& why) {
    return make_error("invalid_argument", member + ": " + why, member);
}

result<int64_t> time_of(const json::object& o, const char* member, std::string_view tz) {
    const auto* v = o.if_contains(member);
    if (!v) return int64_t{0};  // a missing member reads as empty, as in plan_json.cpp
    if (!v->is_string()) return bad(member, "must be an RFC 3339 time");
    // "2026-12-04T00:00:00+01:00" or "...Z"; read by hand (date::parse into a sys_time trips
    // GCC 12's -Wmaybe-uninitialized inside date.h).
    const std::string text(v->as_string());
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, oh = 0, om = 0;
    char sign = 0;
    int used = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) !=
        6)
        return bad(member, "must be an RFC 3339 time");
    const std::string zone = text.substr(static_cast<size_t>(used));
    int offset_min = 0;
    if (zone != "Z") {
        if (std::sscanf(zone.c_str(), "%c%2d:%2d", &sign, &oh, &om) != 3 ||
            (sign != '+' && sign != '-'))
            return bad(member, "must be an RFC 3339 time");
        offset_min = (sign == '-' ? -1 : 1) * (oh * 60 + om);
    }
    const auto day = date::sys_days{date::year{y} / mo / d};
    const auto at = day + std::chrono::hours{h} + std::chrono::minutes{mi - offset_min} +
                    std::chrono::seconds{s};
    (void)tz;
    return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

result<std::optional<comparison>> comparison_of(const json::object& o, const char* member) {
    const auto* v = o.if_contains(member);
    if (!v || v->is_null()) return std::optional<comparison>{};
    if (!v->is_object()) return bad(member, "must be an object {op, value} or null");
    const auto& c = v->as_object();
    const auto* op = c.if_contains("op");
    const auto* value = c.if_contains("value");
    if (!op || !op->is_string() || !value || !value->is_number())
        return bad(member, "must be an object {op, value} or null");
    return std::optional<comparison>{
        comparison{std::string(op->as_string()), value->to_number<double>()}};
}

std::string text_of(const json::object& o, const char* member) {
    const auto* v = o.if_contains(member);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

result<plan> plan_from_json(std::string_view text, std::string_view time_zone) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return bad("plan", "must be a JSON object");
    const auto& o = v.as_object();
    plan p;
    static const std::pair<const char*, plan_kind> kinds[] = {{"telemetry", plan_kind::telemetry},
                                                              {"alarms", plan_kind::alarms},
                                                              {"health", plan_kind::health},
                                                              {"offline", plan_kind::offline},
                                                              {"forecast", plan_kind::forecast}};
    const std::string kind = text_of(o, "kind");
    bool known = false;
    for (const auto& [name, k] : kinds)
        if (kind == name) p.kind = k, known = true;
    if (!known) return bad("kind", "must be one of telemetry, alarms, health, offline, forecast");
    if (const auto* d = o.if_contains("devices"); d && d->is_array())
        for (const auto& name : d->as_array())
            if (name.is_string()) p.devices.emplace_back(name.as_string());
    p.device_type = text_of(o, "device_type");
    p.asset = text_of(o, "asset");
    p.metric = text_of(o, "metric");
    p.unit = text_of(o, "unit");
    p.time_text = text_of(o, "time_text");
    auto from = time_of(o, "from", time_zone);
    if (!from) return from.error();
    auto to = time_of(o, "to", time_zone);
    if (!to) return to.error();
    p.from_ms = *from;
    p.to_ms = *to;
    static const std::pair<const char*, aggregate> aggregates[] = {
        {"last", aggregate::last},
        {"mean", aggregate::mean},
        {"min", aggregate::min},
        {"max", aggregate::max},
        {"sum", aggregate::sum},
        {"count", aggregate::count},
        {"p50", aggregate::p50},
        {"p90", aggregate::p90},
        {"p95", aggregate::p95},
        {"p99", aggregate::p99},
        {"change", aggregate::change},
        {"trend", aggregate::trend},
        {"time_above", aggregate::time_above},
        {"time_below", aggregate::time_below}};
    const std::string agg = text_of(o, "aggregate");
    known = false;
    for (const auto& [name, a] : aggregates)
        if (agg == name) p.agg = a, known = true;
    if (!known) return bad("aggregate", "must be one of the aggregates");
    const std::string group = text_of(o, "group_by");
    if (group == "device")
        p.group_by = grouping::device;
    else if (group == "asset")
        p.group_by = grouping::asset;
    else if (group == "none")
        p.group_by = grouping::none;
    else
        return bad("group_by", "must be device, asset or none");
    p.asset_level = text_of(o, "asset_level");
    auto filter = comparison_of(o, "filter");
    if (!filter) return filter.error();
    p.filter = *filter;
    auto threshold = comparison_of(o, "threshold");
    if (!threshold) return threshold.error();
    p.threshold = *threshold;
    p.order = text_of(o, "order");
    if (const auto* l = o.if_contains("limit"); l && !l->is_null()) {
        if (!l->is_int64()) return bad("limit", "must be an integer or null");
        p.limit = l->as_int64();
    }
    p.alarm_status = text_of(o, "alarm_status");
    p.source = text_of(o, "source");
    return p;
}

}  // namespace clisonix::ask
