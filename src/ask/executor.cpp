// Running a checked plan (see ask.h): the numbers through the query engine, the alarm list,
// the registry and the forecast service, and the answer's sentences, rows and chart hint.
//
// Where an aggregate is not one the query engine computes (p95, change, trend, time above or
// below a level), it is computed here from the query engine's answers: first and last, or the
// raw points, which are held to query.max_points like any raw query (over it, the answer is
// an error that says so, never a number over part of the data). Decisions:
// docs/decisions/0094-ask-execution.md.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "ask/answer_text.h"
#include "ask/ask.h"
#include "common/json_text.h"
#include "common/time.h"
#include "devices/devices.h"
#include "forecast/forecast.h"
#include "query/query.h"
#include "rules/rules.h"
#include "storage/storage.h"

namespace clisonix::ask {

namespace {

constexpr int64_t ns_per_ms = 1'000'000;
constexpr double ms_per_hour = 3'600'000.0;
// A trend is "flat" when the fitted line moves less over the range than this share of the
// values' standard deviation (the series' spread): a slope lost in the noise is not a trend.
constexpr double flat_band = 0.5;
// Health scores: 0 is the baseline's normal, 0.5 and above abnormal, 0.3 a watch level
// (docs/health.md).
constexpr double health_watch = 0.3;
constexpr double health_abnormal = 0.5;
// A forecast question over many devices is many forecasts: at most this many per answer.
constexpr size_t max_forecast_devices = 20;
// A current value older than this (before the moment asked about) is named with its time.
constexpr int64_t stale_after_ms = 15 * 60'000;
// Trend and change answers carry the groups' means as lines for at most this many groups,
// in about this many buckets each.
constexpr size_t max_line_series = 6;
constexpr int64_t line_buckets = 60;
// Rows named in a sentence; the rest are in `data`.
constexpr size_t rows_in_text = 6;

// ---- the scope ----------------------------------------------------------------------------

// The devices the plan is about, sorted: its explicit devices, or every device of its type
// under its asset (either may be empty).
std::vector<std::string> scope_devices(const plan& p, const vocabulary& vocab) {
    std::vector<std::string> out;
    if (!p.devices.empty()) {
        out = p.devices;
    } else {
        std::set<std::string> under;
        if (!p.asset.empty())
            for (const auto& a : vocab.assets)
                if (a.name == p.asset) under.insert(a.devices.begin(), a.devices.end());
        for (const auto& d : vocab.devices) {
            if (!p.device_type.empty() && d.type != p.device_type) continue;
            if (!p.asset.empty() && !under.contains(d.name)) continue;
            out.push_back(d.name);
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// A plan without a scope means the whole plant: nothing is filtered by device then (alarms
// and offline devices the vocabulary does not know yet still count).
bool whole_plant(const plan& p) {
    return p.devices.empty() && p.device_type.empty() && p.asset.empty();
}

struct group {
    std::string name;
    std::vector<std::string> devices;  // sorted
};

// device: one group per device; asset: one per asset of the plan's level holding any of the
// scope's devices (the scope's devices under it); none: one group over the whole scope.
std::vector<group> make_groups(const plan& p, const vocabulary& vocab,
                               const std::vector<std::string>& devices) {
    std::vector<group> out;
    if (p.group_by == grouping::device) {
        for (const auto& d : devices)
            out.push_back({d, {d}});
    } else if (p.group_by == grouping::asset) {
        const std::string level = p.asset_level.empty() ? "line" : p.asset_level;
        for (const auto& a : vocab.assets) {
            if (a.type != level) continue;
            group g{a.name, {}};
            std::set_intersection(a.devices.begin(), a.devices.end(), devices.begin(),
                                  devices.end(), std::back_inserter(g.devices));
            if (!g.devices.empty()) out.push_back(std::move(g));
        }
        std::sort(out.begin(), out.end(),
                  [](const group& a, const group& b) { return a.name < b.name; });
    } else {
        out.push_back({"", devices});
    }
    return out;
}

std::string unit_of(const plan& p, const vocabulary& vocab) {
    if (!p.unit.empty()) return p.unit;
    for (const auto& m : vocab.metrics)
        if (m.name == p.metric) return m.unit;
    return {};
}

// ---- reading through the query engine --------------------------------------------------------

std::optional<double> number_of(const query::value& v) {
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    if (const auto* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
    return std::nullopt;
}

std::string device_tag(const query::series_result& s) {
    for (const auto& [k, v] : s.tags)
        if (k == "device") return v;
    return {};
}

query::spec selection(const std::vector<std::string>& devices, std::string_view metric,
                      int64_t from_ms, int64_t to_ms, int64_t max_points) {
    query::spec s;
    s.metric = std::string(metric);
    s.from = from_ms * ns_per_ms;
    s.to = to_ms * ns_per_ms;
    s.devices = devices;  // sorted
    s.max_points = max_points;
    return s;
}

// An aggregate the query engine computes, per device (`per_device`) or over all `devices`
// merged (key ""). Devices without a point in the range are absent.
result<std::map<std::string, double>> query_aggregate(const sources& from,
                                                      const std::vector<std::string>& devices,
                                                      std::string_view metric, int64_t from_ms,
                                                      int64_t to_ms, query::aggregate agg,
                                                      bool per_device) {
    auto s = selection(devices, metric, from_ms, to_ms, from.max_points);
    s.agg = agg;
    s.group_by = {per_device ? "device" : "metric"};
    auto r = query::run(*from.engine, s);
    if (!r) return r.error();
    std::map<std::string, double> out;
    for (const auto& series : *r) {
        if (series.points.empty()) continue;
        auto v = number_of(series.points.front().second);
        if (!v || std::isnan(*v)) continue;
        out[per_device ? device_tag(series) : std::string()] = *v;
    }
    return out;
}

struct reading {
    double value = 0;
    std::optional<int64_t> at_ms;  // when it was measured, when known
};

// Each device's value at `at_ms`: its newest point at or before then. The engine's cache of
// newest points answers when they are not after `at_ms`; otherwise (a question about an
// earlier moment) the last value of the day before `at_ms` is read.
std::map<std::string, reading> values_at(const sources& from,
                                         const std::vector<std::string>& devices,
                                         std::string_view metric, int64_t at_ms) {
    std::map<std::string, reading> out;
    auto s = selection(devices, metric, 0, at_ms + 1, from.max_points);
    std::vector<std::string> earlier;
    for (const auto& series : query::last_values(*from.engine, s)) {
        if (series.points.empty()) continue;
        const auto& [ts, v] = series.points.back();
        auto n = number_of(v);
        const std::string device = device_tag(series);
        if (!n) continue;
        const int64_t ms = ts / ns_per_ms;
        if (ms > at_ms) {
            earlier.push_back(device);
            continue;
        }
        auto it = out.find(device);
        if (it == out.end() || (it->second.at_ms && *it->second.at_ms < ms)) out[device] = {*n, ms};
    }
    if (!earlier.empty()) {
        std::sort(earlier.begin(), earlier.end());
        earlier.erase(std::unique(earlier.begin(), earlier.end()), earlier.end());
        constexpr int64_t day_ms = 86'400'000;
        auto last = query_aggregate(from, earlier, metric, at_ms - day_ms, at_ms + 1,
                                    query::aggregate::last, true);
        if (last)
            for (const auto& [device, v] : *last)
                if (!out.contains(device)) out[device] = {v, std::nullopt};
    }
    return out;
}

using points = std::vector<std::pair<int64_t, double>>;  // (ms, value), ascending

// The raw points of each device (its series of the metric merged), held to max_points.
result<std::map<std::string, points>> raw_points(const sources& from,
                                                 const std::vector<std::string>& devices,
                                                 std::string_view metric, int64_t from_ms,
                                                 int64_t to_ms, std::string_view what) {
    auto s = selection(devices, metric, from_ms, to_ms, from.max_points);
    s.agg = query::aggregate::raw;
    auto r = query::run(*from.engine, s);
    if (!r) {
        if (r.error().code == errc::invalid_argument)
            return make_error("invalid_argument",
                              std::string(what) +
                                  " needs every point in the range, and the range "
                                  "holds more than query.max_points (" +
                                  std::to_string(from.max_points) +
                                  "); ask about a shorter time or fewer devices",
                              "from");
        return r.error();
    }
    std::map<std::string, points> out;
    for (const auto& series : *r) {
        auto& dst = out[device_tag(series)];
        for (const auto& [ts, v] : series.points)
            if (auto n = number_of(v); n && !std::isnan(*n)) dst.emplace_back(ts / ns_per_ms, *n);
    }
    for (auto& [device, pts] : out)
        std::sort(pts.begin(), pts.end());
    std::erase_if(out, [](const auto& e) { return e.second.empty(); });
    return out;
}

// Nearest-rank percentile, as the query engine computes p50/p90/p99.
double percentile(std::vector<double> v, double p) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    size_t index = rank == 0 ? 0 : rank - 1;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(index), v.end());
    return v[index];
}

struct trend_fit {
    double slope_per_hour = 0;
    std::string direction;  // rising, falling, flat
};

// Least-squares slope of value over time (per hour), and its direction: flat when the fitted
// change over the points' time span is under flat_band standard deviations of the values.
std::optional<trend_fit> fit_trend(const points& pts) {
    if (pts.size() < 3) return std::nullopt;
    const double n = static_cast<double>(pts.size());
    const int64_t t0 = pts.front().first;
    double st = 0, sv = 0;
    for (const auto& [t, v] : pts) {
        st += static_cast<double>(t - t0) / ms_per_hour;
        sv += v;
    }
    const double mt = st / n, mv = sv / n;
    double stt = 0, stv = 0, svv = 0;
    for (const auto& [t, v] : pts) {
        const double dt = static_cast<double>(t - t0) / ms_per_hour - mt, dv = v - mv;
        stt += dt * dt;
        stv += dt * dv;
        svv += dv * dv;
    }
    if (stt <= 0) return std::nullopt;
    trend_fit f;
    f.slope_per_hour = stv / stt;
    const double span_h = static_cast<double>(pts.back().first - t0) / ms_per_hour;
    const double spread = std::sqrt(svv / (n - 1));
    const double moved = std::fabs(f.slope_per_hour * span_h);
    f.direction = moved <= flat_band * spread || moved == 0 ? "flat"
                  : f.slope_per_hour > 0                    ? "rising"
                                                            : "falling";
    return f;
}

// Time (ms) the value was above (or below) `level` in [from, to), sample-and-hold: a point's
// value holds until the next point. The last point holds until `to`, but no longer than the
// series' median spacing (a device that stopped sending is not assumed to stay there).
int64_t time_beyond(const points& pts, const comparison& level, int64_t from_ms, int64_t to_ms,
                    bool above) {
    if (pts.empty()) return 0;
    auto beyond = [&](double v) {
        if (above) return level.op == ">=" ? v >= level.value : v > level.value;
        return level.op == "<=" ? v <= level.value : v < level.value;
    };
    std::vector<int64_t> gaps;
    for (size_t i = 1; i < pts.size(); ++i)
        gaps.push_back(pts[i].first - pts[i - 1].first);
    int64_t hold_last = 0;
    if (!gaps.empty()) {
        std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2),
                         gaps.end());
        hold_last = gaps[gaps.size() / 2];
    }
    int64_t total = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
        const int64_t start = std::max(pts[i].first, from_ms);
        const int64_t end =
            i + 1 < pts.size() ? pts[i + 1].first : std::min(to_ms, pts[i].first + hold_last);
        if (end > start && beyond(pts[i].second)) total += end - start;
    }
    return total;
}

bool satisfies(double v, const comparison& c) {
    if (c.op == ">") return v > c.value;
    if (c.op == ">=") return v >= c.value;
    if (c.op == "<") return v < c.value;
    if (c.op == "<=") return v <= c.value;
    if (c.op == "=") return v == c.value;
    if (c.op == "!=") return v != c.value;
    return false;
}

std::string op_words(const std::string& op) {
    if (op == ">") return "above";
    if (op == ">=") return "at or above";
    if (op == "<") return "below";
    if (op == "<=") return "at or below";
    if (op == "=") return "equal to";
    return "not equal to";
}

// "the pumps on line-2" -> "pumps on line-2" (after "2 of 4"); a list of names in brackets.
std::string counted_noun(const std::string& who) {
    if (who.starts_with("the ")) return who.substr(4);
    if (who == "all devices") return "devices";
    return "(" + who + ")";
}

// ---- rows -----------------------------------------------------------------------------------

struct row {
    std::string name;
    double value = 0;
    std::string direction;              // trend
    std::optional<int64_t> at_ms;       // last: when measured
    std::optional<double> first, last;  // change; alarms: occurrences in `first`
    std::string why;                    // health: the metric contributing most
    std::string note;  // last: when an old value was measured ("last reported 11:00 yesterday")
    double why_value = 0;

    row& measured(std::optional<int64_t> at) {
        at_ms = at;
        return *this;
    }
    row& between(std::optional<double> a, std::optional<double> b) {
        first = a;
        last = b;
        return *this;
    }
    row& heading(std::string d) {
        direction = std::move(d);
        return *this;
    }
};

row make_row(std::string name, double value) {
    row r;
    r.name = std::move(name);
    r.value = value;
    return r;
}

void rank(std::vector<row>& rows, const plan& p) {
    if (p.order == "desc" || p.order == "asc") {
        const bool desc = p.order == "desc";
        std::stable_sort(rows.begin(), rows.end(), [desc](const row& a, const row& b) {
            return desc ? a.value > b.value : a.value < b.value;
        });
    }
    if (p.limit && *p.limit >= 0 && rows.size() > static_cast<size_t>(*p.limit))
        rows.resize(static_cast<size_t>(*p.limit));
}

void append_number_or_null(std::string& out, std::optional<double> v) {
    if (v && std::isfinite(*v))
        append_json_number(out, *v);
    else
        out += "null";
}

void append_time_or_null(std::string& out, std::optional<int64_t> ms, std::string_view tz) {
    if (ms)
        append_json_string(out, text::rfc3339(*ms, tz));
    else
        out += "null";
}

// {"columns":[..],"rows":[[..],..]}
std::string table_json(const std::vector<std::string>& columns,
                       const std::vector<std::vector<std::string>>& rows_json) {
    std::string out = "{\"columns\":[";
    for (size_t i = 0; i < columns.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, columns[i]);
    }
    out += "],\"rows\":[";
    for (size_t r = 0; r < rows_json.size(); ++r) {
        if (r) out += ',';
        out += '[';
        for (size_t c = 0; c < rows_json[r].size(); ++c) {
            if (c) out += ',';
            out += rows_json[r][c];
        }
        out += ']';
    }
    return out + "]}";
}

std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

std::string json_number(double v) {
    std::string out;
    append_json_number(out, v);
    return out;
}

std::string chart_json(std::string_view type, std::string_view x, std::string_view y,
                       std::string_view unit) {
    std::string out = "{\"type\":";
    append_json_string(out, type);
    if (!x.empty()) {
        out += ",\"x\":";
        append_json_string(out, x);
    }
    if (!y.empty()) {
        out += ",\"y\":";
        append_json_string(out, y);
    }
    if (!unit.empty()) {
        out += ",\"unit\":";
        append_json_string(out, unit);
    }
    return out + "}";
}

// ---- telemetry --------------------------------------------------------------------------------

// The query engine's own aggregate for `a`; raw for those the executor computes itself.
query::aggregate query_agg(aggregate a) {
    switch (a) {
        case aggregate::mean:
            return query::aggregate::mean;
        case aggregate::min:
            return query::aggregate::min;
        case aggregate::max:
            return query::aggregate::max;
        case aggregate::sum:
            return query::aggregate::sum;
        case aggregate::count:
            return query::aggregate::count;
        case aggregate::p50:
            return query::aggregate::p50;
        case aggregate::p90:
            return query::aggregate::p90;
        case aggregate::p99:
            return query::aggregate::p99;
        case aggregate::last:
            return query::aggregate::last;
        default:
            return query::aggregate::raw;
    }
}

// Aggregates the query engine computes over a range exactly (decision 0094); `last` is read
// through query::last_values instead.
bool computed_by_query(aggregate a) {
    return a != aggregate::last && query_agg(a) != query::aggregate::raw;
}

// The statistics that can combine the devices' current values at one instant.
bool combines_current_values(aggregate a) {
    return computed_by_query(a) || a == aggregate::p95;
}

double combine_current_values(aggregate a, std::vector<double> values) {
    switch (a) {
        case aggregate::min:
            return *std::min_element(values.begin(), values.end());
        case aggregate::max:
            return *std::max_element(values.begin(), values.end());
        case aggregate::sum:
            return std::accumulate(values.begin(), values.end(), 0.0);
        case aggregate::count:
            return static_cast<double>(values.size());
        case aggregate::p50:
            return percentile(std::move(values), 50);
        case aggregate::p90:
            return percentile(std::move(values), 90);
        case aggregate::p95:
            return percentile(std::move(values), 95);
        case aggregate::p99:
            return percentile(std::move(values), 99);
        default:  // mean
            return std::accumulate(values.begin(), values.end(), 0.0) /
                   static_cast<double>(values.size());
    }
}

// The value of each group that has data in the range.
result<std::vector<row>> group_values(const plan& p, const std::vector<group>& groups,
                                      const std::vector<std::string>& devices,
                                      const sources& from) {
    std::vector<row> rows;
    const bool per_device = p.group_by == grouping::device;
    if (p.agg == aggregate::last) {
        // A merged group's current value is the mean of its devices' current values.
        auto values = values_at(from, devices, p.metric, std::max(p.from_ms, p.to_ms));
        for (const auto& g : groups) {
            double sum = 0;
            size_t n = 0;
            std::optional<int64_t> at;
            for (const auto& d : g.devices)
                if (auto it = values.find(d); it != values.end()) {
                    sum += it->second.value;
                    ++n;
                    if (it->second.at_ms) at = std::max(at.value_or(0), *it->second.at_ms);
                }
            if (n) rows.push_back(make_row(g.name, sum / static_cast<double>(n)).measured(at));
        }
        return rows;
    }
    if (p.from_ms == p.to_ms) {
        // A statistic at an instant ("the average temperature of the pumps now", decision
        // 0090) combines the devices' current values: a range of no length holds no points.
        if (!combines_current_values(p.agg))
            return make_error("invalid_argument",
                              std::string(text::aggregate_name(p.agg)) +
                                  " needs a time range, not an instant: ask over a range "
                                  "(\"in the last hour\", \"today\")",
                              "plan.from");
        auto values = values_at(from, devices, p.metric, p.to_ms);
        for (const auto& g : groups) {
            std::vector<double> current;
            for (const auto& d : g.devices)
                if (auto it = values.find(d); it != values.end())
                    current.push_back(it->second.value);
            if (current.empty()) continue;
            row r = make_row(g.name, combine_current_values(p.agg, current));
            if (current.size() > 1)
                r.note = "over the latest values of " + std::to_string(current.size()) + " devices";
            rows.push_back(std::move(r));
        }
        return rows;
    }
    if (computed_by_query(p.agg) || p.agg == aggregate::change) {
        auto one = [&](const std::vector<std::string>& ds,
                       query::aggregate a) -> result<std::map<std::string, double>> {
            return query_aggregate(from, ds, p.metric, p.from_ms, p.to_ms, a, per_device);
        };
        for (size_t gi = 0; gi < (per_device ? 1 : groups.size()); ++gi) {
            const auto& ds = per_device ? devices : groups[gi].devices;
            if (p.agg == aggregate::change) {
                auto first = one(ds, query::aggregate::first);
                if (!first) return first.error();
                auto last = one(ds, query::aggregate::last);
                if (!last) return last.error();
                for (const auto& [key, f] : *first)
                    if (auto it = last->find(key); it != last->end())
                        rows.push_back(make_row(per_device ? key : groups[gi].name, it->second - f)
                                           .between(f, it->second));
            } else {
                auto values = one(ds, query_agg(p.agg));
                if (!values) return values.error();
                for (const auto& [key, v] : *values)
                    rows.push_back(make_row(per_device ? key : groups[gi].name, v));
            }
        }
        return rows;
    }
    // From the raw points: p95, trend, time above / below.
    auto raw = raw_points(from, devices, p.metric, p.from_ms, p.to_ms, text::aggregate_name(p.agg));
    if (!raw) return raw.error();
    for (const auto& g : groups) {
        points merged;
        int64_t beyond_ms = 0;
        bool any = false;
        for (const auto& d : g.devices) {
            auto it = raw->find(d);
            if (it == raw->end()) continue;
            any = true;
            if (p.agg == aggregate::time_above || p.agg == aggregate::time_below)
                beyond_ms += time_beyond(it->second, *p.threshold, p.from_ms, p.to_ms,
                                         p.agg == aggregate::time_above);
            else
                merged.insert(merged.end(), it->second.begin(), it->second.end());
        }
        if (!any) continue;
        if (p.agg == aggregate::time_above || p.agg == aggregate::time_below) {
            rows.push_back(make_row(g.name, static_cast<double>(beyond_ms) / ms_per_hour));
        } else if (p.agg == aggregate::p95) {
            std::vector<double> values;
            values.reserve(merged.size());
            for (const auto& pt : merged)
                values.push_back(pt.second);
            rows.push_back(make_row(g.name, percentile(std::move(values), 95)));
        } else {  // trend
            std::sort(merged.begin(), merged.end());
            if (auto f = fit_trend(merged))
                rows.push_back(make_row(g.name, f->slope_per_hour).heading(f->direction));
        }
    }
    return rows;
}

std::string signed_number(double v, std::string_view unit) {
    return (v > 0 ? "+" : "") + text::with_unit(v, unit);
}

// A row's value as a sentence says it.
std::string value_words(const plan& p, const row& r, std::string_view unit) {
    switch (p.agg) {
        case aggregate::time_above:
        case aggregate::time_below:
            return text::duration(static_cast<int64_t>(std::llround(r.value * ms_per_hour)));
        case aggregate::trend:
            return r.direction + ", " + signed_number(r.value, unit) + " per hour";
        case aggregate::change:
            return signed_number(r.value, unit) + " (from " + text::number(*r.first) + " to " +
                   text::with_unit(*r.last, unit) + ")";
        case aggregate::count:
            return text::number(r.value);
        default:
            return text::with_unit(r.value, unit) + (r.note.empty() ? "" : ", " + r.note);
    }
}

std::string listed(const plan& p, const std::vector<row>& rows, std::string_view unit) {
    std::vector<std::string> items;
    for (size_t i = 0; i < rows.size() && i < rows_in_text; ++i)
        items.push_back(rows[i].name + " (" + value_words(p, rows[i], unit) + ")");
    if (rows.size() > rows_in_text)
        items.push_back(std::to_string(rows.size() - rows_in_text) + " more in the table");
    return text::join(items);
}

std::string measure_words(const plan& p, std::string_view unit) {
    if (p.agg == aggregate::time_above || p.agg == aggregate::time_below)
        return "time with " + p.metric + " " +
               op_words(p.agg == aggregate::time_above ? ">" : "<") + " " +
               text::with_unit(p.threshold->value, unit);
    if (p.agg == aggregate::count) return "number of " + p.metric + " readings";
    if (p.agg == aggregate::last) return p.metric;
    if (p.agg == aggregate::change) return "change in " + p.metric;
    if (p.agg == aggregate::trend) return "trend of " + p.metric;
    return text::aggregate_name(p.agg) + " " + p.metric;
}

// {"name":..,"points":[[ms,mean],..]} per row's group: the mean per bucket of about a 60th of
// the range, for a line chart.
result<std::string> series_json(const plan& p, const std::vector<group>& groups,
                                const std::vector<row>& rows, const sources& from,
                                const std::string& who) {
    const int64_t step_ns = forecast::nice_step((p.to_ms - p.from_ms) * ns_per_ms / line_buckets);
    std::string out = "[";
    bool first = true;
    for (const auto& r : rows) {
        auto g = std::find_if(groups.begin(), groups.end(),
                              [&](const group& x) { return x.name == r.name; });
        if (g == groups.end()) continue;
        auto s = selection(g->devices, p.metric, p.from_ms, p.to_ms, from.max_points);
        s.agg = query::aggregate::mean;
        s.step = step_ns;
        s.group_by = {"metric"};
        auto result = query::run(*from.engine, s);
        if (!result) return result.error();
        if (!first) out += ',';
        first = false;
        out += "{\"name\":";
        append_json_string(out, r.name.empty() ? who : r.name);
        out += ",\"points\":[";
        bool first_point = true;
        for (const auto& series : *result)
            for (const auto& [ts, v] : series.points)
                if (auto n = number_of(v)) {
                    if (!first_point) out += ',';
                    first_point = false;
                    out += '[' + std::to_string(ts / ns_per_ms) + ',';
                    append_json_number(out, *n);
                    out += ']';
                }
        out += "]}";
    }
    return out + "]";
}

result<answer> run_telemetry(const plan& p, const vocabulary& vocab, const sources& from) {
    if (p.metric.empty()) return make_error("invalid_argument", "metric: name one", "metric");
    if ((p.agg == aggregate::time_above || p.agg == aggregate::time_below) && !p.threshold)
        return make_error("invalid_argument", "threshold: time above or below needs a level",
                          "threshold");
    const auto devices = scope_devices(p, vocab);
    if (devices.empty())
        return make_error("invalid_argument", "devices: no device matches the plan's scope",
                          "devices");
    const auto groups = make_groups(p, vocab, devices);
    if (groups.empty())
        return make_error("invalid_argument",
                          "asset_level: no " +
                              (p.asset_level.empty() ? std::string("line") : p.asset_level) +
                              " holds any of the devices asked about",
                          "asset_level");
    const std::string unit = unit_of(p, vocab);
    const std::string tz = vocab.time_zone;
    const std::string when = text::range(p, tz);
    const std::string who = text::scope(p, devices.size(), vocab);

    auto values = group_values(p, groups, devices, from);
    if (!values) return values.error();
    std::vector<row> rows = std::move(*values);
    if (p.agg == aggregate::last) {
        // A current value that is not recent says when it was measured.
        const int64_t read_at = std::max(p.from_ms, p.to_ms);
        for (auto& r : rows)
            if (r.at_ms && read_at - *r.at_ms > stale_after_ms)
                r.note = "last reported " + text::moment(*r.at_ms, read_at, tz);
    }
    const size_t with_data = rows.size();
    std::vector<std::string> without;
    for (const auto& g : groups)
        if (std::none_of(rows.begin(), rows.end(), [&](const row& r) { return r.name == g.name; }))
            without.push_back(g.name);
    const std::vector<row> all_rows = rows;
    if (p.filter) std::erase_if(rows, [&](const row& r) { return !satisfies(r.value, *p.filter); });
    rank(rows, p);

    answer a;
    const std::string group_column = p.group_by == grouping::device  ? "device"
                                     : p.group_by == grouping::asset ? "asset"
                                                                     : "scope";
    const std::string value_column = text::aggregate_column(p.agg);
    std::vector<std::string> columns{group_column, value_column};
    if (p.agg == aggregate::trend) columns.push_back("direction");
    if (p.agg == aggregate::last) columns.push_back("time");
    if (p.agg == aggregate::change) columns.insert(columns.end(), {"first", "last"});
    std::vector<std::vector<std::string>> table;
    for (const auto& r : rows) {
        std::vector<std::string> cells{json_string(r.name.empty() ? who : r.name),
                                       json_number(r.value)};
        if (p.agg == aggregate::trend) cells.push_back(json_string(r.direction));
        if (p.agg == aggregate::last) {
            std::string t;
            append_time_or_null(t, r.at_ms, tz);
            cells.push_back(t);
        }
        if (p.agg == aggregate::change) {
            std::string f, l;
            append_number_or_null(f, r.first);
            append_number_or_null(l, r.last);
            cells.push_back(f);
            cells.push_back(l);
        }
        table.push_back(std::move(cells));
    }
    a.data_json = table_json(columns, table);
    const std::string chart_unit = p.agg == aggregate::time_above || p.agg == aggregate::time_below
                                       ? "h"
                                   : p.agg == aggregate::count ? ""
                                   : p.agg == aggregate::trend ? (unit.empty() ? "" : unit + "/h")
                                                               : unit;
    a.chart_json = rows.size() > 1 ? chart_json("bar", group_column, value_column, chart_unit)
                                   : chart_json("number", "", value_column, chart_unit);
    if ((p.agg == aggregate::trend || p.agg == aggregate::change) && !rows.empty() &&
        p.to_ms > p.from_ms && rows.size() <= max_line_series) {
        // How it moved is best seen: the groups' means over the range as lines.
        auto lines = series_json(p, groups, rows, from, who);
        if (!lines) return lines.error();
        a.data_json.insert(a.data_json.size() - 1, ",\"series\":" + *lines);
        a.chart_json = chart_json("line", "time", p.metric, unit);
    }

    // The sentences.
    const std::string measure = measure_words(p, unit);
    std::string s;
    if (with_data == 0) {
        s = "There is no " + p.metric + " data for " + who + " " + when + ".";
        a.text = text::sentence(s);
        a.chart_json = chart_json("table", "", "", "");
        return a;
    }
    if (p.filter) {
        const std::string level = op_words(p.filter->op) + " " +
                                  (p.agg == aggregate::time_above || p.agg == aggregate::time_below
                                       ? text::number(p.filter->value) + " h"
                                       : text::with_unit(p.filter->value, unit));
        if (groups.size() == 1 && all_rows.size() == 1) {
            s = std::string(rows.empty() ? "No" : "Yes") + ": the " + measure + " of " +
                (all_rows[0].name.empty() || p.group_by == grouping::none ? who
                                                                          : all_rows[0].name) +
                " " + when + " was " + value_words(p, all_rows[0], unit) + ", " +
                (rows.empty() ? "not " : "") + level + ".";
            a.text = s;
            return a;
        }
        const std::string counted =
            p.group_by == grouping::asset
                ? (p.asset_level.empty() ? std::string("line") : p.asset_level) + "s of " + who
                : counted_noun(who);
        s = std::to_string(rows.size()) + " of " + std::to_string(groups.size()) + " " + counted +
            " had a " + measure + " " + level + " " + when;
        s += rows.empty() ? "." : ": " + listed(p, rows, unit) + ".";
    } else if (!p.order.empty() && p.limit && *p.limit == 1 && !rows.empty() && groups.size() > 1) {
        s = rows[0].name + (p.agg == aggregate::last ? " has the " : " had the ") +
            (p.order == "desc" ? "highest " : "lowest ") + measure + " of " + who + " " + when +
            ": " + value_words(p, rows[0], unit) + ".";
    } else if (!p.order.empty() && p.limit && groups.size() > 1) {
        s = "The " + std::string(p.order == "desc" ? "top " : "bottom ") +
            std::to_string(rows.size()) + " of " + who + " by " + measure + " " + when + ": " +
            listed(p, rows, unit) + ".";
    } else if (rows.size() == 1 && groups.size() == 1) {
        const row& r = rows[0];
        const std::string subject = p.group_by == grouping::none ? who : r.name;
        if (p.agg == aggregate::last) {
            const bool merged = p.group_by != grouping::device && devices.size() > 1;
            s = "The " + p.metric + " of " + subject + " is " + text::with_unit(r.value, unit);
            if (merged)
                s += " (the average of the latest values of " + std::to_string(devices.size()) +
                     " devices)";
            if (r.at_ms && !merged) s += ", measured at " + text::moment(*r.at_ms, p.to_ms, tz);
            s += ".";
        } else if (p.agg == aggregate::trend) {
            s = "The " + p.metric + " of " + subject + " was " + r.direction + " " + when + " (" +
                signed_number(r.value, unit) + " per hour).";
        } else if (p.agg == aggregate::change) {
            s = "The " + p.metric + " of " + subject + " changed by " + value_words(p, r, unit) +
                " " + when + ".";
        } else if (p.agg == aggregate::time_above || p.agg == aggregate::time_below) {
            s = text::sentence(subject) + " had " + p.metric + " " +
                op_words(p.agg == aggregate::time_above ? ">" : "<") + " " +
                text::with_unit(p.threshold->value, unit) + " for " + value_words(p, r, unit) +
                " " + when + ".";
        } else {
            s = "The " + measure + " of " + subject + " " + when +
                (p.from_ms == p.to_ms ? " is " : " was ") + value_words(p, r, unit) + ".";
        }
    } else {
        s = text::sentence(measure) + " of " + who + " " + when + ": " + listed(p, rows, unit) +
            ".";
    }
    if (!without.empty() && !p.filter) {
        s += " No data " + when + " from " +
             (without.size() <= 3 ? text::join(without)
                                  : std::to_string(without.size()) + " of them") +
             ".";
    }
    a.text = text::sentence(s);
    return a;
}

// ---- health ----------------------------------------------------------------------------------

std::string health_band(double score) {
    if (score >= health_abnormal) return "abnormal";
    if (score >= health_watch) return "watch";
    return "normal";
}

// The metric contributing most to a device's health score: its `health.<metric>` series' value
// at `at_ms` (now), or its largest in the range.
std::pair<std::string, double> top_contribution(const plan& p, const std::string& device,
                                                const sources& from, bool now) {
    std::map<std::string, double> by_metric;
    auto s = selection({device}, "health.*", now ? 0 : p.from_ms, now ? p.to_ms + 1 : p.to_ms,
                       from.max_points);
    if (now) {
        // Each metric's latest stored contribution is true (a 0 is written for one no longer
        // named), so the newest point of each series is the current share.
        for (const auto& series : query::last_values(*from.engine, s))
            if (!series.points.empty() && series.points.back().first / ns_per_ms <= p.to_ms)
                if (auto n = number_of(series.points.back().second))
                    by_metric[series.metric] = std::max(by_metric[series.metric], *n);
    } else {
        s.agg = query::aggregate::max;
        if (auto r = query::run(*from.engine, s))
            for (const auto& series : *r)
                if (!series.points.empty())
                    if (auto n = number_of(series.points.front().second))
                        by_metric[series.metric] = std::max(by_metric[series.metric], *n);
    }
    std::pair<std::string, double> best{"", 0};
    for (const auto& [metric, v] : by_metric)
        if (v > best.second) best = {metric.substr(std::string_view("health.").size()), v};
    return best;
}

result<answer> run_health(const plan& p, const vocabulary& vocab, const sources& from) {
    const auto devices = scope_devices(p, vocab);
    if (devices.empty())
        return make_error("invalid_argument", "devices: no device matches the plan's scope",
                          "devices");
    const std::string tz = vocab.time_zone;
    const bool now = p.agg == aggregate::last;
    const std::string when = text::range(p, tz);
    const std::string who = text::scope(p, devices.size(), vocab);
    std::vector<row> rows;
    if (now) {
        for (const auto& [device, r] : values_at(from, devices, "health", p.to_ms))
            rows.push_back(make_row(device, r.value).measured(r.at_ms));
    } else {
        auto agg = computed_by_query(p.agg) ? query_agg(p.agg) : query::aggregate::max;
        auto values = query_aggregate(from, devices, "health", p.from_ms, p.to_ms, agg, true);
        if (!values) return values.error();
        for (const auto& [device, v] : *values)
            rows.push_back(make_row(device, v));
    }
    answer a;
    if (rows.empty()) {
        a.text = "There are no health scores for " + who + " " + when +
                 " (a device is scored once its baseline has been learnt).";
        a.data_json = table_json({"device", "health", "band", "top_metric", "contribution"}, {});
        a.chart_json = chart_json("table", "", "", "");
        return a;
    }
    plan ranked = p;
    if (ranked.order.empty()) ranked.order = "desc";  // a higher score is further from normal
    if (p.filter) std::erase_if(rows, [&](const row& r) { return !satisfies(r.value, *p.filter); });
    rank(rows, ranked);
    for (auto& r : rows) {
        auto [metric, share] = top_contribution(p, r.name, from, now);
        r.why = metric;
        r.why_value = share;
    }
    std::vector<std::vector<std::string>> table;
    for (const auto& r : rows)
        table.push_back({json_string(r.name), json_number(r.value),
                         json_string(health_band(r.value)),
                         r.why.empty() ? "null" : json_string(r.why),
                         r.why.empty() ? "null" : json_number(r.why_value)});
    a.data_json = table_json({"device", "health", "band", "top_metric", "contribution"}, table);
    a.chart_json = rows.size() > 1 ? chart_json("bar", "device", "health", "")
                                   : chart_json("number", "", "health", "");
    auto describe = [&](const row& r) {
        std::string s = "health score " + text::number(r.value) + ", " + health_band(r.value);
        if (!r.why.empty() && r.value >= health_watch)
            s += ", mostly from " + r.why + " (" + text::number(r.why_value) + ")";
        return s;
    };
    std::string s;
    const std::string scale = " (0 is normal, 0.5 and above abnormal)";
    if (rows.empty()) {
        s = "No device of " + who + " matches " + when + ".";
    } else if (p.limit && *p.limit == 1 && devices.size() > 1) {
        s = rows[0].name + " is the " + (ranked.order == "desc" ? "least" : "most") +
            " healthy of " + who + " " + when + ": " + describe(rows[0]) + scale;
        // "... and why" deserves an answer also when nothing stands out.
        if (rows[0].value < health_watch)
            s += "; none of its metrics is far from its learnt normal";
        s += ".";
    } else if (rows.size() == 1) {
        s = "The health of " + rows[0].name + " " + when + ": " + describe(rows[0]) + scale + ".";
    } else {
        std::vector<std::string> items;
        for (size_t i = 0; i < rows.size() && i < rows_in_text; ++i)
            items.push_back(rows[i].name + " (" + describe(rows[i]) + ")");
        if (rows.size() > rows_in_text)
            items.push_back(std::to_string(rows.size() - rows_in_text) + " more in the table");
        s = "Health of " + who + " " + when + ", " +
            (ranked.order == "desc" ? "least healthy first" : "most healthy first") + ": " +
            text::join(items) + scale + ".";
    }
    a.text = text::sentence(s);
    return a;
}

// ---- offline ----------------------------------------------------------------------------------

result<answer> run_offline(const plan& p, const vocabulary& vocab, const sources& from) {
    if (!from.registry) return make_error("unavailable", "the device registry is not available");
    auto listed_devices = from.registry->list_devices();
    if (!listed_devices) return listed_devices.error();
    const auto scope = scope_devices(p, vocab);
    const std::set<std::string> in_scope(scope.begin(), scope.end());
    const std::string tz = vocab.time_zone;
    const std::string who = text::scope(p, scope.size(), vocab);
    size_t total = 0;
    std::vector<devices::device> offline;
    for (const auto& d : *listed_devices) {
        if (!whole_plant(p) && !in_scope.contains(d.name)) continue;
        ++total;
        if (!d.online) offline.push_back(d);
    }
    std::sort(offline.begin(), offline.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    if (p.limit && offline.size() > static_cast<size_t>(std::max<int64_t>(*p.limit, 0)))
        offline.resize(static_cast<size_t>(*p.limit));
    answer a;
    std::vector<std::vector<std::string>> table;
    std::vector<std::string> items;
    const int64_t now = p.to_ms > 0 ? p.to_ms : now_ms();
    for (const auto& d : offline) {
        std::string seen;
        append_time_or_null(seen, d.last_seen, tz);
        table.push_back({json_string(d.name), json_string(d.type), seen});
        if (items.size() < rows_in_text)
            items.push_back(
                d.name + (d.last_seen ? " (last seen " + text::moment(*d.last_seen, now, tz) + ")"
                                      : " (never seen)"));
    }
    if (offline.size() > rows_in_text)
        items.push_back(std::to_string(offline.size() - rows_in_text) + " more in the table");
    a.data_json = table_json({"device", "type", "last_seen"}, table);
    a.chart_json = chart_json("table", "", "", "");
    if (total == 0)
        a.text = "There are no registered devices among " + who + ".";
    else if (offline.empty())
        a.text = text::sentence(total == 1 ? who + " is online now."
                                : who == "all devices"
                                    ? "all " + std::to_string(total) + " devices are online now."
                                    : "all " + std::to_string(total) + " of " + who +
                                          " are online now.");
    else
        a.text =
            text::sentence(std::to_string(offline.size()) + " of " + std::to_string(total) + " " +
                           counted_noun(who) + " " + (offline.size() == 1 ? "is" : "are") +
                           " offline now: " + text::join(items) + ".");
    return a;
}

// ---- alarms -----------------------------------------------------------------------------------

result<std::vector<rules::alarm>> alarms_of(const plan& p, const vocabulary& vocab,
                                            const sources& from) {
    rules::alarm_filter f;
    f.status = p.alarm_status.empty() ? "open" : p.alarm_status == "any" ? "" : p.alarm_status;
    if (p.from_ms < p.to_ms && p.agg != aggregate::last) {
        f.from = p.from_ms;
        f.to = p.to_ms;
    }
    f.limit = 1000;
    const auto scope = scope_devices(p, vocab);
    const std::set<std::string> in_scope(scope.begin(), scope.end());
    std::vector<rules::alarm> out;
    // Bounded: 20 pages of 1,000 alarms.
    for (int page = 0; page < 20; ++page) {
        f.offset = page * f.limit;
        auto r = from.rules->list_alarms(f);
        if (!r) return r.error();
        for (auto& a : r->alarms)
            if (whole_plant(p) || in_scope.contains(a.device)) out.push_back(std::move(a));
        if (f.offset + f.limit >= r->total) break;
    }
    return out;
}

result<answer> run_alarms(const plan& p, const vocabulary& vocab, const sources& from) {
    if (!from.rules)
        return make_error("invalid_argument", "alarms are not available on this server", "kind");
    auto listed_alarms = alarms_of(p, vocab, from);
    if (!listed_alarms) return listed_alarms.error();
    const auto& alarms = *listed_alarms;
    const std::string tz = vocab.time_zone;
    const auto scope = scope_devices(p, vocab);
    const std::string who = whole_plant(p) ? "the plant" : text::scope(p, scope.size(), vocab);
    const std::string status = p.alarm_status.empty() ? "open" : p.alarm_status;
    const std::string adjective = status == "any" ? "" : status + " ";
    const bool ranged = p.from_ms < p.to_ms && p.agg != aggregate::last;
    const std::string when = ranged ? " " + text::range(p, tz) : "";
    answer a;

    const bool counting = p.agg == aggregate::count || !p.order.empty();
    if (counting && (p.group_by != grouping::none || !p.order.empty())) {
        // Alarms per device, per asset, or (whole scope, ranked) per rule.
        const std::string by = p.group_by == grouping::device  ? "device"
                               : p.group_by == grouping::asset ? "asset"
                                                               : "rule";
        std::map<std::string, std::pair<int64_t, int64_t>> counts;  // alarms, repeats
        std::map<std::string, std::vector<std::string>> asset_of;
        if (by == "asset") {
            const std::string level = p.asset_level.empty() ? "line" : p.asset_level;
            for (const auto& asset : vocab.assets)
                if (asset.type == level)
                    for (const auto& d : asset.devices)
                        asset_of[d].push_back(asset.name);
        }
        for (const auto& al : alarms) {
            std::vector<std::string> keys;
            if (by == "device")
                keys = {al.device};
            else if (by == "rule")
                keys = {al.rule_name};
            else
                keys = asset_of[al.device];
            for (const auto& k : keys) {
                counts[k].first += 1;
                counts[k].second += al.count;
            }
        }
        std::vector<row> rows;
        for (const auto& [k, c] : counts)
            rows.push_back(make_row(k, static_cast<double>(c.first))
                               .between(static_cast<double>(c.second), std::nullopt));
        if (p.filter)
            std::erase_if(rows, [&](const row& r) { return !satisfies(r.value, *p.filter); });
        plan ranked = p;
        if (ranked.order.empty()) ranked.order = "desc";
        rank(rows, ranked);
        std::vector<std::vector<std::string>> table;
        std::vector<std::string> items;
        for (const auto& r : rows) {
            table.push_back({json_string(r.name), json_number(r.value), json_number(*r.first)});
            if (items.size() < rows_in_text)
                items.push_back(r.name + " (" + text::number(r.value) +
                                (r.value == 1 ? " alarm" : " alarms") + ")");
        }
        a.data_json = table_json({by, "alarms", "occurrences"}, table);
        a.chart_json = chart_json(rows.size() > 1 ? "bar" : "number", by, "alarms", "");
        if (rows.empty())
            a.text = "There were no " + adjective + "alarms on " + who + when + ".";
        else if (p.limit && *p.limit == 1)
            a.text = text::sentence(by == "rule" ? "the rule " + rows[0].name : rows[0].name) +
                     " alarmed most on " + who + when + ": " + text::number(rows[0].value) + " " +
                     adjective + (rows[0].value == 1 ? "alarm" : "alarms") + ".";
        else
            a.text = text::sentence(adjective + "alarms on " + who + when + " by " + by + ": " +
                                    text::join(items) + ".");
        return a;
    }
    if (p.agg == aggregate::count) {
        a.data_json = table_json({"alarms"}, {{json_number(static_cast<double>(alarms.size()))}});
        a.chart_json = chart_json("number", "", "alarms", "");
        a.text =
            text::sentence("there " + std::string(alarms.size() == 1 ? "is " : "are ") +
                           std::to_string(alarms.size()) + " " + adjective +
                           (alarms.size() == 1 ? "alarm" : "alarms") + " on " + who + when + ".");
        return a;
    }
    // The alarms themselves, newest first.
    std::vector<rules::alarm> shown = alarms;
    std::sort(shown.begin(), shown.end(),
              [](const auto& x, const auto& y) { return x.last_at > y.last_at; });
    if (p.limit && shown.size() > static_cast<size_t>(std::max<int64_t>(*p.limit, 0)))
        shown.resize(static_cast<size_t>(*p.limit));
    std::vector<std::vector<std::string>> table;
    std::vector<std::string> items;
    const int64_t now = p.to_ms > 0 ? p.to_ms : now_ms();
    for (const auto& al : shown) {
        table.push_back({json_number(static_cast<double>(al.id)), json_string(al.rule_name),
                         json_string(al.device), json_string(al.severity), json_string(al.status),
                         json_string(text::rfc3339(al.first_at, tz)), json_number(al.value)});
        if (items.size() < rows_in_text)
            items.push_back(al.rule_name + " on " + al.device + " (" + al.severity + ", since " +
                            text::moment(al.first_at, now, tz) + ")");
    }
    if (shown.size() > rows_in_text)
        items.push_back(std::to_string(shown.size() - rows_in_text) + " more in the table");
    a.data_json =
        table_json({"id", "rule", "device", "severity", "status", "since", "value"}, table);
    a.chart_json = chart_json("table", "", "", "");
    if (alarms.empty())
        a.text = "There are no " + adjective + "alarms on " + who + when + ".";
    else
        a.text = text::sentence(std::to_string(alarms.size()) + " " + adjective +
                                (alarms.size() == 1 ? "alarm" : "alarms") + " on " + who + when +
                                ": " + text::join(items) + ".");
    return a;
}

// ---- forecast ---------------------------------------------------------------------------------

result<answer> run_forecast(const plan& p, const vocabulary& vocab, const sources& from) {
    if (!from.forecasts)
        return make_error("invalid_argument", "forecasts are not available on this server", "kind");
    if (p.metric.empty()) return make_error("invalid_argument", "metric: name one", "metric");
    if (!p.threshold)
        return make_error("invalid_argument",
                          "threshold: a forecast question needs the level to reach", "threshold");
    const auto devices = scope_devices(p, vocab);
    if (devices.empty())
        return make_error("invalid_argument", "devices: no device matches the plan's scope",
                          "devices");
    if (devices.size() > max_forecast_devices)
        return make_error("invalid_argument",
                          "devices: a forecast answers for at most " +
                              std::to_string(max_forecast_devices) + " devices; " +
                              std::to_string(devices.size()) + " match",
                          "devices");
    constexpr int64_t default_horizon_ms = 24 * 3'600'000LL;
    const int64_t horizon_ms = p.to_ms > p.from_ms ? p.to_ms - p.from_ms : default_horizon_ms;
    const std::string unit = unit_of(p, vocab);
    const std::string tz = vocab.time_zone;
    const double limit = p.threshold->value;
    const std::string level = text::with_unit(limit, unit);
    std::vector<std::vector<std::string>> table;
    std::vector<std::string> sentences;
    for (const auto& device : devices) {
        auto f = from.forecasts->forecast_series(device, p.metric, horizon_ms * ns_per_ms);
        if (!f) {
            if (f.error().code != errc::not_found && f.error().code != errc::invalid_argument)
                return f.error();
            sentences.push_back(device + " has too little " + p.metric + " history to forecast (" +
                                f.error().message + ").");
            continue;
        }
        const double last = f->last_value;
        const bool above = p.threshold->op == ">" || p.threshold->op == ">="   ? true
                           : p.threshold->op == "<" || p.threshold->op == "<=" ? false
                                                                               : last < limit;
        const int64_t last_ms = f->last_ns / ns_per_ms;
        const int64_t end_ms = (f->first_ns + (f->horizon() - 1) * f->step_ns) / ns_per_ms;
        std::string who = device + " (" + text::with_unit(last, unit) + " at " +
                          text::moment(last_ms, p.from_ms, tz) + ")";
        if (above ? last >= limit : last <= limit) {
            sentences.push_back(who + " is already " + (above ? "at or above " : "at or below ") +
                                level + ".");
            table.push_back({json_string(device), json_number(last), "true", "null", "null", "null",
                             json_number(1)});
            continue;
        }
        const auto c = forecast::crossing(*f->result, limit, above);
        auto at = [&](std::optional<int> step) -> std::optional<int64_t> {
            if (!c.within_horizon || !step) return std::nullopt;
            return f->step_time(*step) / ns_per_ms;
        };
        std::string expected, earliest, latest;
        append_time_or_null(expected, at(c.expected), tz);
        append_time_or_null(earliest, at(c.earliest), tz);
        append_time_or_null(latest, at(c.latest), tz);
        table.push_back({json_string(device), json_number(last), "false", expected, earliest,
                         latest, json_number(c.probability)});
        if (c.within_horizon && c.expected) {
            std::string s =
                who + " is expected to reach " + level + " at " +
                text::moment(*at(c.expected), p.from_ms, tz) + " (95 % range " +
                (at(c.earliest) ? text::moment(*at(c.earliest), p.from_ms, tz)
                                : std::string("now")) +
                " to " +
                (at(c.latest) ? text::moment(*at(c.latest), p.from_ms, tz)
                              : std::string("beyond ") + text::moment(end_ms, p.from_ms, tz)) +
                ").";
            sentences.push_back(s);
        } else {
            sentences.push_back(who + " is not expected to reach " + level + " before " +
                                text::moment(end_ms, p.from_ms, tz) + " (the forecast's horizon" +
                                ", at most " + text::number(c.probability * 100) + " % likely).");
        }
    }
    answer a;
    a.data_json = table_json(
        {"device", "last", "already", "expected", "earliest", "latest", "probability"}, table);
    a.chart_json = chart_json("table", "", "", unit);
    std::string s;
    for (size_t i = 0; i < sentences.size() && i < rows_in_text; ++i)
        s += (i ? " " : "") + text::sentence(sentences[i]);
    if (sentences.size() > rows_in_text)
        s += " " + std::to_string(sentences.size() - rows_in_text) + " more in the table.";
    a.text = s;
    return a;
}

}  // namespace

result<answer> execute(const plan& p, const vocabulary& vocab, const sources& from) {
    if (!from.engine) return make_error("unavailable", "the time-series engine is not available");
    switch (p.kind) {
        case plan_kind::telemetry:
            return run_telemetry(p, vocab, from);
        case plan_kind::health:
            return run_health(p, vocab, from);
        case plan_kind::offline:
            return run_offline(p, vocab, from);
        case plan_kind::alarms:
            return run_alarms(p, vocab, from);
        case plan_kind::forecast:
            return run_forecast(p, vocab, from);
    }
    return make_error("invalid_argument", "kind: unknown plan kind", "kind");
}

}  // namespace clisonix::ask
