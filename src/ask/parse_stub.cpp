// STAND-IN, dropped at merge: the parser, checker, vocabulary and plan JSON are written in
// vocabulary.cpp, parser.cpp, checker.cpp and plan_json.cpp on another branch. This file only
// lets the executor, the route and the CLI link and be tested before they arrive: a plain
// vocabulary, one question form ("what is the <metric> of <device> now?"), a checker that
// checks names only, and the plan's JSON as ask-contract.md shows it.
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "ask/answer_text.h"
#include "ask/ask.h"
#include "common/json_text.h"
#include "devices/devices.h"
#include "storage/storage.h"

namespace clisonix::ask {

result<vocabulary> build_vocabulary(devices::registry& registry, const storage::engine& engine,
                                    std::string_view time_zone) {
    vocabulary v;
    v.time_zone = std::string(time_zone);
    auto types = registry.list_types();
    if (!types) return types.error();
    std::map<std::string, std::string> units;
    for (const auto& t : *types) {
        type_word w{t.name, t.name + "s", {}};
        for (const auto& [m, spec] : t.metrics) {
            w.metrics.push_back(m);
            units[m] = spec.unit;
        }
        v.types.push_back(std::move(w));
    }
    auto devs = registry.list_devices();
    if (!devs) return devs.error();
    for (const auto& d : *devs) {
        device_word w{d.name, d.type, d.label, {}, d.online};
        if (auto a = registry.ancestors(d.name)) w.assets = *a;
        v.devices.push_back(std::move(w));
    }
    std::sort(v.devices.begin(), v.devices.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    auto assets = registry.list_assets();
    if (!assets) return assets.error();
    for (const auto& a : *assets) {
        asset_word w{a.name, a.type, {}, {}};
        if (auto up = registry.ancestors(a.name); up && !up->empty()) w.parent = up->front();
        if (auto under = registry.devices_under(a.name)) w.devices = *under;
        v.assets.push_back(std::move(w));
    }
    std::set<std::string> metrics;
    for (const auto& s : engine.series([](const storage::series_info&) { return true; }))
        metrics.insert(s.field);
    for (const auto& [m, u] : units)
        metrics.insert(m);
    for (const auto& m : metrics) {
        auto u = units.find(m);
        v.metrics.push_back({m, u == units.end() ? "" : u->second, {}});
    }
    return v;
}

std::variant<plan, not_understood> parse(std::string_view question, const vocabulary& vocab,
                                         const parse_options& opts) {
    // "what is the <metric> of <device> now?"
    std::istringstream in{std::string(question)};
    std::vector<std::string> words;
    for (std::string w; in >> w;)
        words.push_back(w);
    if (words.size() == 7 && words[0] == "what" && words[1] == "is" && words[2] == "the" &&
        words[4] == "of" && words[6] == "now?") {
        plan p;
        p.kind = plan_kind::telemetry;
        p.devices = {words[5]};
        p.metric = words[3];
        for (const auto& m : vocab.metrics)
            if (m.name == p.metric) p.unit = m.unit;
        p.from_ms = p.to_ms = opts.now_ms;
        p.time_text = "now";
        p.agg = aggregate::last;
        p.group_by = grouping::device;
        p.source = "parser";
        if (check(p, vocab, opts.now_ms)) return p;
    }
    not_understood n;
    n.reasons.push_back("\"" + std::string(question) + "\" is not a question this server reads");
    if (!vocab.devices.empty() && !vocab.metrics.empty())
        n.suggestions.push_back("what is the " + vocab.metrics.front().name + " of " +
                                vocab.devices.front().name + " now?");
    return n;
}

status check(const plan& p, const vocabulary& vocab, int64_t) {
    for (const auto& d : p.devices)
        if (std::none_of(vocab.devices.begin(), vocab.devices.end(),
                         [&](const device_word& w) { return w.name == d; }))
            return make_error("invalid_argument", "devices: no device \"" + d + "\"", "devices");
    if (!p.metric.empty() && std::none_of(vocab.metrics.begin(), vocab.metrics.end(),
                                          [&](const metric_word& m) { return m.name == p.metric; }))
        return make_error("invalid_argument", "metric: no metric \"" + p.metric + "\"", "metric");
    return {};
}

namespace {
const char* kind_name(plan_kind k) {
    switch (k) {
        case plan_kind::telemetry:
            return "telemetry";
        case plan_kind::alarms:
            return "alarms";
        case plan_kind::health:
            return "health";
        case plan_kind::offline:
            return "offline";
        case plan_kind::forecast:
            return "forecast";
    }
    return "telemetry";
}
void member(std::string& out, std::string_view name, std::string_view value) {
    out += ",\"";
    out += name;
    out += "\":";
    append_json_string(out, value);
}
void comparison_json(std::string& out, std::string_view name, const std::optional<comparison>& c) {
    out += ",\"";
    out += name;
    out += "\":";
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
}  // namespace

std::string plan_to_json(const plan& p, std::string_view time_zone) {
    std::string out = "{\"kind\":";
    append_json_string(out, kind_name(p.kind));
    out += ",\"devices\":[";
    for (size_t i = 0; i < p.devices.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, p.devices[i]);
    }
    out += ']';
    member(out, "device_type", p.device_type);
    member(out, "asset", p.asset);
    member(out, "metric", p.metric);
    member(out, "unit", p.unit);
    member(out, "from", text::rfc3339(p.from_ms, time_zone));
    member(out, "to", text::rfc3339(p.to_ms, time_zone));
    member(out, "time_text", p.time_text);
    member(out, "aggregate", text::aggregate_column(p.agg));
    member(out, "group_by",
           p.group_by == grouping::device  ? "device"
           : p.group_by == grouping::asset ? "asset"
                                           : "none");
    comparison_json(out, "filter", p.filter);
    member(out, "order", p.order);
    out += ",\"limit\":" + (p.limit ? std::to_string(*p.limit) : std::string("null"));
    comparison_json(out, "threshold", p.threshold);
    member(out, "source", p.source);
    return out + "}";
}

result<plan> plan_from_json(std::string_view, std::string_view) {
    return make_error("not_implemented", "plan_from_json is written on another branch");
}

std::string plan_json_schema() {
    return "{\"type\":\"object\"}";
}

result<plan> llm_plan(std::string_view, const vocabulary&, const parse_options&,
                      const llm_options&) {
    return make_error("unavailable", "the LLM back end is written on another branch");
}

}  // namespace clisonix::ask
