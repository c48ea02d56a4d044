// The forecast routes (see routes.h).
#include "forecast/routes.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/json_text.h"
#include "common/time.h"
#include "http/http.h"

namespace clisonix::forecast {

namespace {

constexpr int64_t ns_per_ms = 1'000'000;

void append_int(std::string& out, int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_ms(std::string& out, std::optional<int64_t> ns) {
    if (ns)
        append_int(out, *ns / ns_per_ms);
    else
        out += "null";
}

// "24h", "90m", "45s": a duration as a user would write it.
std::string duration_text(int64_t ns) {
    constexpr int64_t second = 1'000'000'000;
    if (ns % (3600 * second) == 0) return std::to_string(ns / (3600 * second)) + "h";
    if (ns % (60 * second) == 0) return std::to_string(ns / (60 * second)) + "m";
    return std::to_string(ns / second) + "s";
}

void append_series(std::string& out, std::string_view measurement,
                   const std::vector<std::pair<std::string, std::string>>& tags,
                   std::string_view metric) {
    out += "\"measurement\":";
    append_json_string(out, measurement);
    out += ",\"tags\":{";
    for (size_t i = 0; i < tags.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, tags[i].first);
        out += ':';
        append_json_string(out, tags[i].second);
    }
    out += "},\"metric\":";
    append_json_string(out, metric);
}

// The selection's parameters go to the query language; ours are taken out first. Anything
// else (from, agg, ...) means nothing to a forecast and is refused by name.
struct parsed {
    query::spec selection;
    forecast_request request;
    std::map<std::string, std::string, std::less<>> extra;  // the route's own (above, below)
};

result<parsed> parse(const http::request& req, const query::devices_under_fn& devices_under,
                     std::initializer_list<std::string_view> route_params) {
    parsed p;
    std::map<std::string, std::string, std::less<>> selection;
    for (const auto& [key, text] : req.query) {
        if (key == "horizon" || key == "step" || key == "history") {
            auto d = query::parse_step(text, key);
            if (!d) return d.error();
            (key == "horizon" ? p.request.horizon_ns
             : key == "step"  ? p.request.step_ns
                              : p.request.history_ns) = *d;
        } else if (key == "device" || key == "metric" || key == "measurement" ||
                   key.starts_with("tag.")) {
            selection[key] = text;
        } else if (key == "asset") {
            continue;
        } else if (std::find(route_params.begin(), route_params.end(), key) != route_params.end()) {
            p.extra[key] = text;
        } else {
            return make_error("invalid_argument", "unknown forecast parameter \"" + key + "\"",
                              key);
        }
    }
    auto s = query::parse_spec(selection, now_ns());
    if (!s) return s.error();
    p.selection = std::move(*s);
    if (auto asset = req.query.find("asset"); asset != req.query.end()) {
        auto st = query::restrict_to_asset(p.selection, asset->second, devices_under);
        if (!st) return st.error();
    }
    return p;
}

void append_skipped(std::string& out, const std::vector<skipped_series>& skipped) {
    out += ",\"skipped\":[";
    for (size_t i = 0; i < skipped.size(); ++i) {
        if (i) out += ',';
        out += '{';
        append_series(out, skipped[i].measurement, skipped[i].tags, skipped[i].metric);
        out += ",\"reason\":";
        append_json_string(out, skipped[i].reason.message);
        out += '}';
    }
    out += ']';
}

std::string forecasts_json(const forecasts& all) {
    std::string out = "{\"forecasts\":[";
    for (size_t i = 0; i < all.series.size(); ++i) {
        const auto& s = all.series[i];
        const auto& f = *s.result;
        if (i) out += ',';
        out += '{';
        append_series(out, s.measurement, s.tags, s.metric);
        out += ",\"step_ms\":";
        append_int(out, s.step_ns / ns_per_ms);
        out += ",\"horizon_ms\":";
        append_int(out, s.horizon() * s.step_ns / ns_per_ms);
        out += ",\"model\":";
        append_json_string(out, f.model);
        out += ",\"season_steps\":";
        append_int(out, f.season);
        out += ",\"error\":{\"mae\":";
        append_json_number(out, f.mae);
        out += ",\"smape\":";
        append_json_number(out, f.smape);
        out += "},\"history_points\":";
        append_int(out, s.history_points);
        out += ",\"last\":[";
        append_int(out, s.last_ns / ns_per_ms);
        out += ',';
        append_json_number(out, s.last_value);
        out += "],\"points\":[";
        for (int k = 1; k <= s.horizon(); ++k) {
            const auto j = static_cast<size_t>(k - 1);
            if (k > 1) out += ',';
            out += '[';
            append_int(out, s.step_time(k) / ns_per_ms);
            for (double v : {f.point[j], f.lower50[j], f.upper50[j], f.lower95[j], f.upper95[j]}) {
                out += ',';
                append_json_number(out, v);
            }
            out += ']';
        }
        out += "]}";
    }
    out += ']';
    append_skipped(out, all.skipped);
    out += '}';
    return out;
}

// above= or below=, exactly one, a finite number.
result<std::pair<double, bool>> limit_of(const parsed& p) {
    auto above = p.extra.find("above");
    auto below = p.extra.find("below");
    if (above == p.extra.end() && below == p.extra.end())
        return make_error("invalid_argument",
                          "above: required, or below= (the limit the series may pass)", "above");
    if (above != p.extra.end() && below != p.extra.end())
        return make_error("invalid_argument", "below: give above= or below=, not both", "below");
    const bool is_above = above != p.extra.end();
    const std::string& text = is_above ? above->second : below->second;
    double v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || ptr != text.data() + text.size() || !std::isfinite(v))
        return make_error(
            "invalid_argument",
            std::string(is_above ? "above" : "below") + ": expected a number; got \"" + text + "\"",
            is_above ? "above" : "below");
    return std::pair{v, is_above};
}

std::string crossings_json(const forecasts& all, double limit, bool above) {
    std::string out = "{\"crossings\":[";
    for (size_t i = 0; i < all.series.size(); ++i) {
        const auto& s = all.series[i];
        auto c = crossing(*s.result, limit, above);
        auto at = [&s](std::optional<int> step) -> std::optional<int64_t> {
            if (!step) return std::nullopt;
            return s.step_time(*step);
        };
        if (i) out += ',';
        out += '{';
        append_series(out, s.measurement, s.tags, s.metric);
        out += ",\"limit\":";
        append_json_number(out, limit);
        out += above ? ",\"direction\":\"above\"" : ",\"direction\":\"below\"";
        out += c.within_horizon ? ",\"within_horizon\":true" : ",\"within_horizon\":false";
        // Outside the horizon no time is claimed, not even the interval's start.
        out += ",\"expected_ms\":";
        append_ms(out, c.within_horizon ? at(c.expected) : std::nullopt);
        out += ",\"earliest_ms\":";
        append_ms(out, c.within_horizon ? at(c.earliest) : std::nullopt);
        out += ",\"latest_ms\":";
        append_ms(out, c.within_horizon ? at(c.latest) : std::nullopt);
        out += ",\"probability\":";
        append_json_number(out, c.probability);
        out += ",\"horizon_end_ms\":";
        append_int(out, s.step_time(s.horizon()) / ns_per_ms);
        out += ",\"step_ms\":";
        append_int(out, s.step_ns / ns_per_ms);
        out += ",\"model\":";
        append_json_string(out, s.result->model);
        out += ",\"last\":[";
        append_int(out, s.last_ns / ns_per_ms);
        out += ',';
        append_json_number(out, s.last_value);
        out += "]}";
    }
    out += ']';
    append_skipped(out, all.skipped);
    out += '}';
    return out;
}

std::string predicted_json(const predicted_list& list, int64_t until_ns, int64_t refresh_ns) {
    std::string out = "{\"predictions\":[";
    bool first = true;
    for (const auto& p : list.predictions) {
        if (p.expected_ns > until_ns) continue;
        if (!first) out += ',';
        first = false;
        out += "{\"device\":";
        append_json_string(out, p.device);
        out += ",\"metric\":";
        append_json_string(out, p.metric);
        out += ",\"limit\":";
        append_json_number(out, p.limit);
        out += p.above ? ",\"direction\":\"above\"" : ",\"direction\":\"below\"";
        out += ",\"expected_ms\":";
        append_ms(out, p.expected_ns);
        out += ",\"earliest_ms\":";
        append_ms(out, p.earliest_ns);
        out += ",\"latest_ms\":";
        append_ms(out, p.latest_ns && *p.latest_ns <= until_ns ? p.latest_ns : std::nullopt);
        out += ",\"probability\":";
        append_json_number(out, p.probability);
        out += ",\"value\":";
        append_json_number(out, p.value);
        out += '}';
    }
    out += "],\"computed_ms\":";
    append_ms(out, list.computed_ns > 0 ? std::optional(list.computed_ns) : std::nullopt);
    out += ",\"horizon_ms\":";
    append_int(out, list.horizon_ns / ns_per_ms);
    out += ",\"refresh_ms\":";
    append_int(out, refresh_ns / ns_per_ms);
    out += ",\"targets\":";
    append_int(out, static_cast<int64_t>(list.targets));
    out += ",\"evaluated\":";
    append_int(out, static_cast<int64_t>(list.evaluated));
    out += ",\"note\":";
    append_json_string(out, list.computed_ns > 0
                                ? "computed in the background every refresh_ms; this is the list "
                                  "as of computed_ms"
                                : "not computed yet: the first background round has not ended");
    out += '}';
    return out;
}

}  // namespace

void add_routes(http::router& routes, service& svc, query::devices_under_fn devices_under) {
    routes.add({http::method::get, "/api/v1/forecast",
                "Forecast of each selected series: point and 50/95 % intervals per step",
                http::permission::read, [&svc, devices_under](http::request& req) {
                    auto p = parse(req, devices_under, {});
                    if (!p) return http::response::from_error(p.error());
                    auto all = svc.forecast_selection(p->selection, p->request);
                    if (!all) return http::response::from_error(all.error());
                    return http::response::json(200, forecasts_json(*all));
                }});

    routes.add({http::method::get, "/api/v1/forecast/crossing",
                "When each selected series is expected to pass a limit (above= or below=)",
                http::permission::read, [&svc, devices_under](http::request& req) {
                    auto p = parse(req, devices_under, {"above", "below"});
                    if (!p) return http::response::from_error(p.error());
                    auto limit = limit_of(*p);
                    if (!limit) return http::response::from_error(limit.error());
                    auto all = svc.forecast_selection(p->selection, p->request);
                    if (!all) return http::response::from_error(all.error());
                    return http::response::json(200,
                                                crossings_json(*all, limit->first, limit->second));
                }});

    routes.add({http::method::get, "/api/v1/forecast/predicted",
                "Device metrics expected past their type's range within the horizon "
                "(computed in the background)",
                http::permission::read, [&svc](http::request& req) {
                    const auto& o = svc.options();
                    int64_t horizon = o.predicted_horizon_ns;
                    for (const auto& [key, text] : req.query) {
                        if (key != "horizon")
                            return http::response::error(
                                400, "invalid_argument",
                                "unknown forecast parameter \"" + key + "\"", key);
                        auto d = query::parse_step(text, "horizon");
                        if (!d) return http::response::from_error(d.error());
                        if (*d > o.predicted_horizon_ns)
                            return http::response::error(
                                400, "invalid_argument",
                                "horizon: at most " + duration_text(o.predicted_horizon_ns) +
                                    " (forecast.predicted_horizon), the horizon the list is "
                                    "computed over",
                                "horizon");
                        horizon = *d;
                    }
                    auto list = svc.predicted();
                    const int64_t base = list.computed_ns > 0 ? list.computed_ns : now_ns();
                    return http::response::json(
                        200, predicted_json(list, base + horizon, o.refresh_interval_ns));
                }});
}

}  // namespace clisonix::forecast
