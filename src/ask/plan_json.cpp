// Clisonix — Ask: a plan as JSON (the answer's `plan`, the LLM's output) and its schema.
#include <boost/json.hpp>

#include <cmath>

#include "ask/ask.h"
#include "ask/time_text.h"
#include "ask/words.h"
#include "common/json_text.h"

namespace clisonix::ask {
namespace detail {

namespace {
constexpr std::pair<plan_kind, std::string_view> kind_names[] = {
    {plan_kind::telemetry, "telemetry"}, {plan_kind::alarms, "alarms"},
    {plan_kind::health, "health"},       {plan_kind::offline, "offline"},
    {plan_kind::forecast, "forecast"},
};
constexpr std::pair<aggregate, std::string_view> aggregate_names[] = {
    {aggregate::last, "last"},
    {aggregate::mean, "mean"},
    {aggregate::min, "min"},
    {aggregate::max, "max"},
    {aggregate::sum, "sum"},
    {aggregate::count, "count"},
    {aggregate::p50, "p50"},
    {aggregate::p90, "p90"},
    {aggregate::p95, "p95"},
    {aggregate::p99, "p99"},
    {aggregate::change, "change"},
    {aggregate::trend, "trend"},
    {aggregate::time_above, "time_above"},
    {aggregate::time_below, "time_below"},
};
constexpr std::pair<grouping, std::string_view> grouping_names[] = {
    {grouping::device, "device"}, {grouping::asset, "asset"}, {grouping::none, "none"}};

template <typename E, size_t N>
std::string_view name_in(const std::pair<E, std::string_view> (&names)[N], E e) {
    for (const auto& [value, name] : names)
        if (value == e) return name;
    return {};
}
template <typename E, size_t N>
std::optional<E> value_in(const std::pair<E, std::string_view> (&names)[N], std::string_view s) {
    for (const auto& [value, name] : names)
        if (name == s) return value;
    return std::nullopt;
}
}  // namespace

std::string_view kind_name(plan_kind k) {
    return name_in(kind_names, k);
}
std::string_view aggregate_name(aggregate a) {
    return name_in(aggregate_names, a);
}
std::string_view grouping_name(grouping g) {
    return name_in(grouping_names, g);
}
std::optional<plan_kind> kind_named(std::string_view s) {
    return value_in(kind_names, s);
}
std::optional<aggregate> aggregate_named(std::string_view s) {
    return value_in(aggregate_names, s);
}
std::optional<grouping> grouping_named(std::string_view s) {
    return value_in(grouping_names, s);
}

}  // namespace detail

namespace {

void member(std::string& out, std::string_view name) {
    if (out.back() != '{') out += ',';
    append_json_string(out, name);
    out += ':';
}

void string_member(std::string& out, std::string_view name, std::string_view value) {
    member(out, name);
    append_json_string(out, value);
}

void comparison_member(std::string& out, std::string_view name,
                       const std::optional<comparison>& c) {
    member(out, name);
    if (!c) {
        out += "null";
        return;
    }
    out += "{\"op\":";
    append_json_string(out, c->op);
    out += ",\"value\":";
    append_json_number(out, c->value);
    out += '}';
}

error bad(std::string field, std::string message) {
    return make_error("invalid_argument", field + ": " + message, field);
}

result<std::string> string_of(const boost::json::value& v, const std::string& field) {
    if (v.is_null()) return std::string();
    if (!v.is_string()) return bad(field, "must be a string");
    return std::string(v.as_string());
}

result<double> number_of(const boost::json::value& v, const std::string& field) {
    if (v.is_double()) return v.as_double();
    if (v.is_int64()) return static_cast<double>(v.as_int64());
    if (v.is_uint64()) return static_cast<double>(v.as_uint64());
    return bad(field, "must be a number");
}

result<int64_t> time_of(const boost::json::value& v, const std::string& field) {
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX))
        return static_cast<int64_t>(v.as_uint64());
    if (v.is_string()) {
        if (auto ms = detail::parse_rfc3339(v.as_string())) return *ms;
        return bad(field, "\"" + std::string(v.as_string()) +
                              "\" is not an RFC 3339 time (2026-12-04T00:00:00+01:00)");
    }
    return bad(field, "must be an RFC 3339 time or Unix milliseconds");
}

result<std::optional<comparison>> comparison_of(const boost::json::value& v,
                                                const std::string& field) {
    if (v.is_null()) return std::optional<comparison>();
    if (!v.is_object())
        return bad(field, "must be an object {\"op\": \">\", \"value\": 80} or null");
    comparison c;
    bool has_op = false, has_value = false;
    for (const auto& [k, x] : v.as_object()) {
        std::string sub = field + "." + std::string(k);
        if (k == "op") {
            auto s = string_of(x, sub);
            if (!s) return s.error();
            c.op = *s;
            has_op = true;
        } else if (k == "value") {
            auto n = number_of(x, sub);
            if (!n) return n.error();
            c.value = *n;
            has_value = true;
        } else {
            return bad(sub, "is not a member of a comparison (op, value)");
        }
    }
    if (!has_op) return bad(field + ".op", "is missing");
    if (!has_value) return bad(field + ".value", "is missing");
    return std::optional<comparison>(c);
}

}  // namespace

std::string plan_to_json(const plan& p, std::string_view time_zone) {
    auto zone = detail::zone_named(time_zone);
    std::string out = "{";
    string_member(out, "kind", detail::kind_name(p.kind));
    member(out, "devices");
    out += '[';
    for (size_t i = 0; i < p.devices.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, p.devices[i]);
    }
    out += ']';
    string_member(out, "device_type", p.device_type);
    string_member(out, "asset", p.asset);
    string_member(out, "metric", p.metric);
    string_member(out, "unit", p.unit);
    if (zone) {
        string_member(out, "from", detail::rfc3339(p.from_ms, *zone));
        string_member(out, "to", detail::rfc3339(p.to_ms, *zone));
    } else {  // a zone the server does not know: the times as Unix ms, still exact
        member(out, "from");
        out += std::to_string(p.from_ms);
        member(out, "to");
        out += std::to_string(p.to_ms);
    }
    string_member(out, "time_text", p.time_text);
    string_member(out, "aggregate", detail::aggregate_name(p.agg));
    string_member(out, "group_by", detail::grouping_name(p.group_by));
    string_member(out, "asset_level", p.asset_level);
    comparison_member(out, "filter", p.filter);
    member(out, "order");
    if (p.order.empty())
        out += "null";
    else
        append_json_string(out, p.order);
    member(out, "limit");
    out += p.limit ? std::to_string(*p.limit) : std::string("null");
    comparison_member(out, "threshold", p.threshold);
    string_member(out, "alarm_status", p.alarm_status);
    string_member(out, "source", p.source);
    out += '}';
    return out;
}

result<plan> plan_from_json(std::string_view json, std::string_view time_zone) {
    (void)time_zone;  // times carry their offset (or are Unix ms): no zone is needed to read them
    boost::system::error_code ec;
    auto v = boost::json::parse(json, ec);
    if (ec) return make_error("invalid_argument", "the plan is not JSON: " + ec.message(), "plan");
    if (!v.is_object())
        return make_error("invalid_argument", "the plan must be a JSON object", "plan");
    plan p;
    bool has_kind = false;
    for (const auto& member : v.as_object()) {
        // Not a structured binding: clang before 16 cannot capture one in the lambda below.
        const auto& x = member.value();
        std::string k(member.key());
        auto text = [&](std::string& into) -> status {
            auto s = string_of(x, k);
            if (!s) return s.error();
            into = *s;
            return {};
        };
        status st;
        if (k == "kind") {
            auto s = string_of(x, k);
            if (!s) return s.error();
            auto kind = detail::kind_named(*s);
            if (!kind)
                return bad(
                    k, "\"" + *s + "\" is not one of telemetry, alarms, health, offline, forecast");
            p.kind = *kind;
            has_kind = true;
        } else if (k == "devices") {
            if (!x.is_array()) return bad(k, "must be an array of device names");
            for (const auto& d : x.as_array()) {
                if (!d.is_string()) return bad(k, "must be an array of device names");
                p.devices.emplace_back(d.as_string());
            }
        } else if (k == "device_type") {
            st = text(p.device_type);
        } else if (k == "asset") {
            st = text(p.asset);
        } else if (k == "metric") {
            st = text(p.metric);
        } else if (k == "unit") {
            st = text(p.unit);
        } else if (k == "from" || k == "to") {
            auto t = time_of(x, k);
            if (!t) return t.error();
            (k == "from" ? p.from_ms : p.to_ms) = *t;
        } else if (k == "time_text") {
            st = text(p.time_text);
        } else if (k == "aggregate") {
            auto s = string_of(x, k);
            if (!s) return s.error();
            auto a = detail::aggregate_named(*s);
            if (!a) return bad(k, "\"" + *s + "\" is not an aggregate");
            p.agg = *a;
        } else if (k == "group_by") {
            auto s = string_of(x, k);
            if (!s) return s.error();
            auto g = detail::grouping_named(*s);
            if (!g) return bad(k, "\"" + *s + "\" is not one of device, asset, none");
            p.group_by = *g;
        } else if (k == "asset_level") {
            st = text(p.asset_level);
        } else if (k == "filter" || k == "threshold") {
            auto c = comparison_of(x, k);
            if (!c) return c.error();
            (k == "filter" ? p.filter : p.threshold) = *c;
        } else if (k == "order") {
            st = text(p.order);
        } else if (k == "limit") {
            if (x.is_null()) {
                p.limit.reset();
            } else if (x.is_int64()) {
                p.limit = x.as_int64();
            } else if (x.is_uint64()) {
                return bad(k, "is too large");
            } else {
                return bad(k, "must be a whole number or null");
            }
        } else if (k == "alarm_status") {
            st = text(p.alarm_status);
        } else if (k == "source") {
            st = text(p.source);
        } else {
            return bad(k, "is not a member of a plan");
        }
        if (!st) return st.error();
    }
    if (!has_kind) return bad("kind", "is missing");
    return p;
}

std::string plan_json_schema() {
    // Strict, as Ollama's `format` takes it: every member required, nothing else allowed,
    // the closed sets as enums, no $ref (each comparison spelt out). Names are checked
    // against the vocabulary by check().
    constexpr std::string_view comparison =
        R"({"type":"object","additionalProperties":false,"required":["op","value"],)"
        R"("properties":{"op":{"type":"string","enum":[">",">=","<","<=","=","!="]},)"
        R"("value":{"type":"number"}}})";
    std::string s =
        R"({"type":"object","additionalProperties":false,)"
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
        R"("asset_level":{"type":"string"},)";
    s += R"("filter":{"anyOf":[{"type":"null"},)";
    s += comparison;
    s += R"(]},)";
    s += R"("order":{"anyOf":[{"type":"null"},{"type":"string","enum":["asc","desc"]}]},)"
         R"("limit":{"anyOf":[{"type":"null"},{"type":"integer","minimum":1}]},)";
    s += R"("threshold":{"anyOf":[{"type":"null"},)";
    s += comparison;
    s += R"(]},)";
    s += R"("alarm_status":{"type":"string","enum":["","open","active","any"]},)"
         R"("source":{"type":"string","enum":["parser","llm"]}}})";
    return s;
}

}  // namespace clisonix::ask
