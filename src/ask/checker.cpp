// Clisonix — Ask: the plan checker every plan passes before it runs, whoever wrote it.
#include <algorithm>
#include <cmath>

#include "ask/ask.h"
#include "ask/words.h"

namespace clisonix::ask {
namespace {

constexpr int64_t hour_ms = 3'600'000;
constexpr int64_t day_ms = 24 * hour_ms;
// A client's clock a little ahead of the server's is not a plan about the future.
constexpr int64_t clock_slack_ms = 60'000;
// The longest forecast horizon (the forecast service's predicted list goes to 30 days).
constexpr int64_t max_forecast_ms = 30 * day_ms;
constexpr int64_t max_limit = 1000;

error refuse(std::string field, std::string message) {
    return make_error("invalid_argument", std::move(message), std::move(field));
}

bool valid_op(std::string_view op) {
    return op == ">" || op == ">=" || op == "<" || op == "<=" || op == "=" || op == "!=";
}

status check_comparison(const comparison& c, const std::string& field) {
    if (!valid_op(c.op))
        return refuse(field, field + ".op \"" + c.op + "\" is not one of >, >=, <, <=, =, !=");
    if (!std::isfinite(c.value)) return refuse(field, field + ".value must be a finite number");
    return {};
}

std::string quoted(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// The metric a health plan may name: none (the overall score), "health", "health.<metric>".
bool health_metric(const vocabulary& v, std::string_view m) {
    if (m.empty() || m == "health") return true;
    if (!m.starts_with("health.")) return false;
    return detail::find_metric(v, m.substr(7)) != nullptr;
}

}  // namespace

status check(const plan& p, const vocabulary& v, int64_t now_ms) {
    if (p.source != "parser" && p.source != "llm")
        return refuse("source", "source " + quoted(p.source) + " is not parser or llm");

    // ---- the scope
    for (const auto& d : p.devices)
        if (!detail::find_device(v, d))
            return refuse("devices", "there is no device named " + quoted(d));
    for (size_t i = 1; i < p.devices.size(); ++i)
        if (std::find(p.devices.begin(), p.devices.begin() + static_cast<ptrdiff_t>(i),
                      p.devices[i]) != p.devices.begin() + static_cast<ptrdiff_t>(i))
            return refuse("devices", "device " + quoted(p.devices[i]) + " is named twice");
    if (!p.device_type.empty() && !detail::find_type(v, p.device_type) &&
        std::none_of(v.devices.begin(), v.devices.end(),
                     [&](const device_word& d) { return d.type == p.device_type; }))
        return refuse("device_type", "there is no device type named " + quoted(p.device_type));
    const asset_word* asset = p.asset.empty() ? nullptr : detail::find_asset(v, p.asset);
    if (!p.asset.empty() && !asset)
        return refuse("asset", "there is no asset named " + quoted(p.asset));
    for (const auto& name : p.devices) {
        const device_word* d = detail::find_device(v, name);
        if (!p.device_type.empty() && d->type != p.device_type)
            return refuse("devices",
                          quoted(name) + " is a " + d->type + ", not a " + p.device_type);
        if (asset && !std::binary_search(asset->devices.begin(), asset->devices.end(), name))
            return refuse("devices", quoted(name) + " is not under " + quoted(p.asset));
    }
    auto scope = detail::scope_devices(v, p.devices, p.device_type, p.asset);
    if (scope.empty()) {
        if (!p.asset.empty())
            return refuse("asset",
                          "there is no " +
                              (p.device_type.empty() ? std::string("device") : p.device_type) +
                              " under " + quoted(p.asset));
        return refuse(p.device_type.empty() ? "devices" : "device_type",
                      "the plan's scope holds no device");
    }

    // ---- the metric and its unit
    switch (p.kind) {
        case plan_kind::telemetry:
        case plan_kind::forecast: {
            if (p.metric.empty()) return refuse("metric", "a metric is needed");
            const metric_word* m = detail::find_metric(v, p.metric);
            if (!m) return refuse("metric", "there is no metric named " + quoted(p.metric));
            size_t with = static_cast<size_t>(std::count_if(
                scope.begin(), scope.end(),
                [&](const device_word* d) { return detail::device_has_metric(v, *d, p.metric); }));
            if (with == 0)
                return refuse("metric", "no device in the scope has " + quoted(p.metric));
            if (!p.devices.empty())
                for (const device_word* d : scope)
                    if (!detail::device_has_metric(v, *d, p.metric))
                        return refuse("metric", quoted(d->name) + " (a " + d->type + ") has no " +
                                                    quoted(p.metric));
            if (!p.unit.empty() && !m->unit.empty() &&
                detail::canonical_unit(p.unit) != detail::canonical_unit(m->unit) &&
                p.unit != m->unit)
                return refuse("unit", p.metric + " is in " + m->unit + ", not " + p.unit);
            break;
        }
        case plan_kind::health:
            if (!health_metric(v, p.metric))
                return refuse("metric",
                              "a health plan names no metric, \"health\" or "
                              "\"health.<metric>\", not " +
                                  quoted(p.metric));
            break;
        case plan_kind::alarms:
        case plan_kind::offline:
            if (!p.metric.empty())
                return refuse("metric", std::string(detail::kind_name(p.kind)) +
                                            " plans take no metric, not " + quoted(p.metric));
            if (!p.unit.empty()) return refuse("unit", "a plan without a metric takes no unit");
            break;
    }

    // ---- the time range
    if (p.from_ms <= 0 || p.to_ms <= 0) return refuse("from", "the time range is not set");
    if (p.from_ms > p.to_ms) return refuse("to", "the time range ends before it begins");
    if (p.kind == plan_kind::forecast) {
        if (p.from_ms < now_ms - clock_slack_ms || p.to_ms <= p.from_ms)
            return refuse("to", "a forecast looks ahead from now: [now, now + horizon)");
        if (p.to_ms - p.from_ms > max_forecast_ms)
            return refuse("to", "a forecast looks at most 30 days ahead");
    } else if (p.to_ms > now_ms + clock_slack_ms) {
        return refuse("to", "the time range reaches into the future; only forecasts look ahead");
    }

    // ---- the aggregate for the kind
    auto allowed = [&](std::initializer_list<aggregate> aggs) {
        return std::find(aggs.begin(), aggs.end(), p.agg) != aggs.end();
    };
    bool fits = true;
    switch (p.kind) {
        case plan_kind::telemetry:
            break;
        case plan_kind::alarms:
            fits = allowed({aggregate::count});
            break;
        case plan_kind::health:
            fits = allowed({aggregate::last, aggregate::mean, aggregate::min, aggregate::max});
            break;
        case plan_kind::offline:
            fits = allowed({aggregate::last, aggregate::count});
            break;
        case plan_kind::forecast:
            fits = allowed({aggregate::last});
            break;
    }
    if (!fits)
        return refuse("aggregate", "aggregate " + std::string(detail::aggregate_name(p.agg)) +
                                       " does not fit the kind " +
                                       std::string(detail::kind_name(p.kind)));

    // ---- threshold and filter
    bool needs_threshold = p.kind == plan_kind::forecast || p.agg == aggregate::time_above ||
                           p.agg == aggregate::time_below;
    if (needs_threshold && !p.threshold)
        return refuse("threshold", p.kind == plan_kind::forecast
                                       ? "a forecast needs the level to reach"
                                       : "time_above and time_below need a threshold");
    if (!needs_threshold && p.threshold)
        return refuse("threshold", "only forecasts, time_above and time_below take a threshold");
    if (p.threshold) {
        if (auto s = check_comparison(*p.threshold, "threshold"); !s) return s;
        bool up = p.threshold->op == ">" || p.threshold->op == ">=";
        bool down = p.threshold->op == "<" || p.threshold->op == "<=";
        if ((p.agg == aggregate::time_above && !up) || (p.agg == aggregate::time_below && !down))
            return refuse("threshold", "threshold.op " + quoted(p.threshold->op) +
                                           " does not fit " +
                                           std::string(detail::aggregate_name(p.agg)));
        if (p.kind == plan_kind::forecast && !up && !down)
            return refuse("threshold", "a forecast's threshold.op is >, >=, < or <=");
    }
    if (p.filter) {
        if (auto s = check_comparison(*p.filter, "filter"); !s) return s;
        if (p.kind == plan_kind::offline || p.kind == plan_kind::forecast)
            return refuse("filter",
                          std::string(detail::kind_name(p.kind)) + " plans take no filter");
    }

    // ---- grouping, order, limit, alarm status
    if (p.group_by == grouping::asset) {
        if (p.asset_level.empty())
            return refuse("asset_level", "group_by asset needs asset_level (line, site ...)");
        bool known = std::any_of(v.assets.begin(), v.assets.end(),
                                 [&](const asset_word& a) { return a.type == p.asset_level; });
        if (!known)
            return refuse("asset_level", "there is no asset of type " + quoted(p.asset_level));
    } else if (!p.asset_level.empty()) {
        return refuse("asset_level", "asset_level goes only with group_by asset");
    }
    if (!p.order.empty() && p.order != "asc" && p.order != "desc")
        return refuse("order", "order " + quoted(p.order) + " is not asc or desc");
    if (p.limit && (*p.limit <= 0 || *p.limit > max_limit))
        return refuse("limit", "limit must be between 1 and " + std::to_string(max_limit));
    if (p.kind == plan_kind::alarms) {
        if (p.alarm_status != "open" && p.alarm_status != "active" && p.alarm_status != "any")
            return refuse("alarm_status",
                          "alarm_status " + quoted(p.alarm_status) + " is not open, active or any");
    } else if (!p.alarm_status.empty()) {
        return refuse("alarm_status", "only alarm plans take an alarm_status");
    }
    return {};
}

}  // namespace clisonix::ask
