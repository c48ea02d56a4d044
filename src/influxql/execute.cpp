// Answers parsed InfluxQL through the query engine, in InfluxDB 1.x's JSON.
//
// mean, max, min, sum, count, first and last come from query::run (exact, from block
// summaries and rollups where it can); spread from its max and min; median, stddev,
// percentile, and a lone selector without GROUP BY time (whose answer carries the time of
// the selected point) from its raw points. What the query engine lacks is added here: fill,
// InfluxDB's time-bound inclusivity, OR and regexes on tags (as a series filter), and the
// answer's shape.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>
#include <set>

#include "common/json_text.h"
#include "influxql/ast.h"
#include "influxql/influxql.h"
#include "query/query.h"

namespace clisonix::influxql {

namespace {

using storage::series_info;
using storage::value_type;

// The open ends of a time range: far enough from the int64 limits that no arithmetic on
// them overflows.
constexpr int64_t unbounded_from = std::numeric_limits<int64_t>::min() / 4;
constexpr int64_t unbounded_to = std::numeric_limits<int64_t>::max() / 4;

using cell = std::optional<query::value>;

// ---- JSON ----------------------------------------------------------------------------------

// A float as Go's encoding/json writes it (InfluxDB's answers): fixed notation, shortest
// round-trip digits, exponent form only below 1e-6 and from 1e21; NaN and infinities as null.
void append_float(std::string& out, double d) {
    if (!std::isfinite(d)) {
        out += "null";
        return;
    }
    char buf[64];
    const double a = std::fabs(d);
    const bool exponent = a != 0 && (a < 1e-6 || a >= 1e21);
    auto r = std::to_chars(buf, buf + sizeof buf, d,
                           exponent ? std::chars_format::scientific : std::chars_format::fixed);
    std::string text(buf, r.ptr);
    if (exponent) {  // Go writes e-07 as e-7
        auto e = text.find('e');
        if (e != std::string::npos && e + 2 < text.size() && text[e + 2] == '0' &&
            text.size() - e > 3)
            text.erase(e + 2, 1);
    }
    out += text;
}

void append_int(std::string& out, int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_cell(std::string& out, const cell& c) {
    if (!c) {
        out += "null";
        return;
    }
    const auto& v = *c;
    if (auto d = std::get_if<double>(&v))
        append_float(out, *d);
    else if (auto i = std::get_if<int64_t>(&v))
        append_int(out, *i);
    else if (auto b = std::get_if<bool>(&v))
        out += *b ? "true" : "false";
    else
        append_json_string(out, std::get<std::string>(v));
}

// RFC 3339 with nanoseconds, trailing zeros dropped (Go's RFC3339Nano), or a number in the
// `epoch` unit.
void append_time(std::string& out, int64_t ns, const std::string& epoch) {
    if (!epoch.empty()) {
        int64_t div = epoch == "ns"                    ? 1
                      : (epoch == "u" || epoch == "µ") ? 1'000
                      : epoch == "ms"                  ? 1'000'000
                      : epoch == "s"                   ? 1'000'000'000
                      : epoch == "m"                   ? 60'000'000'000
                                                       : 3'600'000'000'000;
        append_int(out, ns / div);
        return;
    }
    int64_t secs = ns / 1'000'000'000;
    int64_t frac = ns % 1'000'000'000;
    if (frac < 0) {
        frac += 1'000'000'000;
        --secs;
    }
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    out += '"';
    out += buf;
    if (frac) {
        char digits[16];
        std::snprintf(digits, sizeof digits, ".%09lld", static_cast<long long>(frac));
        std::string f(digits);
        while (f.back() == '0')
            f.pop_back();
        out += f;
    }
    out += "Z\"";
}

// One series of an answer.
struct out_series {
    std::string name;
    bool has_name = true;
    std::vector<std::pair<std::string, std::string>> tags;  // sorted by key
    bool has_tags = false;
    std::vector<std::string> columns;
    // Each row: time (for SELECT) then the cells; SHOW rows have no time.
    std::vector<std::pair<int64_t, std::vector<cell>>> rows;
    bool timed = true;
};

void append_series(std::string& out, const out_series& s, const std::string& epoch) {
    out += '{';
    if (s.has_name) {
        out += "\"name\":";
        append_json_string(out, s.name);
        out += ',';
    }
    if (s.has_tags) {
        out += "\"tags\":{";
        for (size_t i = 0; i < s.tags.size(); ++i) {
            if (i) out += ',';
            append_json_string(out, s.tags[i].first);
            out += ':';
            append_json_string(out, s.tags[i].second);
        }
        out += "},";
    }
    out += "\"columns\":[";
    for (size_t i = 0; i < s.columns.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, s.columns[i]);
    }
    out += "],\"values\":[";
    for (size_t r = 0; r < s.rows.size(); ++r) {
        if (r) out += ',';
        out += '[';
        if (s.timed) append_time(out, s.rows[r].first, epoch);
        for (size_t c = 0; c < s.rows[r].second.size(); ++c) {
            if (c || s.timed) out += ',';
            append_cell(out, s.rows[r].second[c]);
        }
        out += ']';
    }
    out += "]}";
}

// Indents compact JSON (the `pretty` parameter), four spaces per level as InfluxDB does.
std::string indent(std::string_view json) {
    std::string out;
    int depth = 0;
    bool in_string = false;
    auto newline = [&] {
        out += '\n';
        out.append(static_cast<size_t>(depth) * 4, ' ');
    };
    for (size_t i = 0; i < json.size(); ++i) {
        char c = json[i];
        if (in_string) {
            out += c;
            if (c == '\\' && i + 1 < json.size())
                out += json[++i];
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
            case '"':
                in_string = true;
                out += c;
                break;
            case '{':
            case '[':
                out += c;
                if (i + 1 < json.size() && (json[i + 1] == '}' || json[i + 1] == ']')) {
                    out += json[++i];
                    break;
                }
                ++depth;
                newline();
                break;
            case '}':
            case ']':
                --depth;
                newline();
                out += c;
                break;
            case ',':
                out += c;
                newline();
                break;
            case ':':
                out += ": ";
                break;
            default:
                out += c;
        }
    }
    return out;
}

// ---- WHERE ---------------------------------------------------------------------------------

const std::string* tag_of(const series_info& s, std::string_view key) {
    for (const auto& [k, v] : s.tags)
        if (k == key) return &v;
    return nullptr;
}

// Whether a series passes the tag comparisons of `c`; time comparisons pass (they bound the
// range instead). A missing tag compares as the empty string, as in InfluxDB.
bool passes(const condition& c, const series_info& s) {
    switch (c.type) {
        case condition::kind::all:
            return std::all_of(c.parts.begin(), c.parts.end(),
                               [&](const condition& p) { return passes(p, s); });
        case condition::kind::any:
            return std::any_of(c.parts.begin(), c.parts.end(),
                               [&](const condition& p) { return passes(p, s); });
        case condition::kind::leaf:
            break;
    }
    const comparison& leaf = c.leaf;
    if (leaf.is_time) return true;
    const std::string* v = tag_of(s, leaf.key);
    std::string_view text = v ? std::string_view(*v) : std::string_view();
    if (leaf.op == "=") return text == leaf.text;
    if (leaf.op == "!=") return text != leaf.text;
    if (leaf.op == "=~") return leaf.pattern->search(text);
    if (leaf.op == "!~") return !leaf.pattern->search(text);
    return false;  // < > on tags: refused before (check_tag_comparisons)
}

// Narrows [from, to) by the time comparisons joined by AND at the top of `c`.
status time_bounds(const condition& c, int64_t now, bool under_or, int64_t& from, int64_t& to) {
    if (c.type != condition::kind::leaf) {
        for (const auto& p : c.parts)
            if (auto st = time_bounds(p, now, under_or || c.type == condition::kind::any, from, to);
                !st)
                return st;
        return {};
    }
    if (!c.leaf.is_time) return {};
    if (under_or)
        return make_error(
            "not_implemented",
            "unsupported InfluxQL: time conditions joined by OR; bound time with AND");
    int64_t t = std::clamp(c.leaf.when.resolve(now), unbounded_from, unbounded_to);
    const auto& op = c.leaf.op;
    if (op == ">") from = std::max(from, t + 1);
    if (op == ">=" || op == "=") from = std::max(from, t);
    if (op == "<") to = std::min(to, t);
    if (op == "<=" || op == "=") to = std::min(to, t + 1);
    return {};
}

// Tag comparisons that InfluxDB would read as comparisons of field values are refused.
status check_tag_comparisons(const condition& c, const std::set<std::string>& tag_keys,
                             const std::set<std::string>& field_keys) {
    for (const auto& p : c.parts)
        if (auto st = check_tag_comparisons(p, tag_keys, field_keys); !st) return st;
    if (c.type != condition::kind::leaf || c.leaf.is_time) return {};
    if (!tag_keys.contains(c.leaf.key) && field_keys.contains(c.leaf.key))
        return make_error("not_implemented", "unsupported InfluxQL: a condition on the field \"" +
                                                 c.leaf.key +
                                                 "\"; WHERE compares tags and time only");
    const auto& op = c.leaf.op;
    if (op == "<" || op == "<=" || op == ">" || op == ">=")
        return make_error("not_implemented", "unsupported InfluxQL: " + op + " on the tag \"" +
                                                 c.leaf.key + "\"; use =, !=, =~ or !~");
    return {};
}

// ---- SELECT --------------------------------------------------------------------------------

bool is_numeric(value_type t) {
    return t == value_type::float64 || t == value_type::int64;
}

double as_number(const query::value& v) {
    if (auto d = std::get_if<double>(&v)) return *d;
    if (auto i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    if (auto b = std::get_if<bool>(&v)) return *b ? 1 : 0;
    return 0;
}

std::string function_name(function fn) {
    field_expr f;
    f.fn = fn;
    return f.column();
}

// A group of the answer: measurement and the tag values it is grouped by.
using group_key = std::pair<std::string, std::vector<std::pair<std::string, std::string>>>;

struct column_points {
    std::map<group_key, std::vector<std::pair<int64_t, query::value>>> by_group;
};

struct select_context {
    const storage::engine& engine;
    const select_statement& stmt;
    const options& opts;
    int64_t from = unbounded_from, to = unbounded_to;
    bool has_from = false;
    std::function<bool(const series_info&)> filter;
};

group_key key_of(const select_context& ctx, const query::series_result& r) {
    group_key k{r.measurement, {}};
    if (ctx.stmt.group_all) {
        k.second = r.tags;
    } else {
        for (const auto& tag : ctx.stmt.group_tags) {
            std::string value;
            for (const auto& [tk, tv] : r.tags)
                if (tk == tag) value = tv;
            k.second.emplace_back(tag, value);
        }
        std::sort(k.second.begin(), k.second.end());
    }
    return k;
}

query::spec base_spec(const select_context& ctx, const std::string& field) {
    query::spec s;
    s.from = ctx.from;
    s.to = ctx.to;
    s.max_points = ctx.opts.max_points;
    auto plain = [](const std::string& name) {
        return name.find_first_of("*?") == std::string::npos ? name : std::string("*");
    };
    s.measurement = ctx.stmt.from.pattern ? "*" : plain(ctx.stmt.from.measurement);
    s.metric = plain(field);
    const auto& outer = ctx.filter;
    s.filter = [outer, field](const series_info& info) {
        return info.field == field && outer(info);
    };
    if (!ctx.stmt.group_all) {
        s.group_by.emplace_back("measurement");
        for (const auto& tag : ctx.stmt.group_tags)
            s.group_by.push_back(tag);
    }
    return s;
}

int64_t bucket_start(int64_t ts, int64_t interval, int64_t from) {
    if (interval == 0) return from;
    int64_t b = ts / interval * interval;
    return (ts < 0 && b != ts) ? b - interval : b;
}

// The value a function gives over one bucket's raw values (non-empty), and for selectors the
// index of the chosen point. Values are in time order.
std::pair<cell, size_t> over_values(const field_expr& f, const std::vector<query::value>& values,
                                    bool integer) {
    auto number = [&](size_t i) { return as_number(values[i]); };
    switch (f.fn) {
        case function::first:
            return {values.front(), 0};
        case function::last:
            return {values.back(), values.size() - 1};
        case function::min:
        case function::max: {
            size_t best = 0;
            for (size_t i = 1; i < values.size(); ++i)
                if (f.fn == function::max ? number(i) > number(best) : number(i) < number(best))
                    best = i;
            return {values[best], best};
        }
        case function::stddev: {
            if (values.size() < 2) return {std::nullopt, 0};
            double mean = 0;
            for (size_t i = 0; i < values.size(); ++i)
                mean += number(i);
            mean /= static_cast<double>(values.size());
            double ss = 0;
            for (size_t i = 0; i < values.size(); ++i)
                ss += (number(i) - mean) * (number(i) - mean);
            return {std::sqrt(ss / static_cast<double>(values.size() - 1)), 0};
        }
        case function::median:
        case function::percentile: {
            std::vector<size_t> order(values.size());
            for (size_t i = 0; i < order.size(); ++i)
                order[i] = i;
            std::stable_sort(order.begin(), order.end(),
                             [&](size_t a, size_t b) { return number(a) < number(b); });
            const size_t n = order.size();
            if (f.fn == function::median) {
                if (n % 2 == 1) return {query::value(number(order[n / 2])), order[n / 2]};
                // The mean of the two middle values, as InfluxDB's median.
                return {query::value(number(order[n / 2 - 1]) +
                                     (number(order[n / 2]) - number(order[n / 2 - 1])) / 2),
                        0};
            }
            // InfluxDB's nearest rank: index floor(n * p / 100 + 0.5) - 1, none outside.
            const auto i = static_cast<int64_t>(
                               std::floor(static_cast<double>(n) * f.percentile / 100.0 + 0.5)) -
                           1;
            if (i < 0 || i >= static_cast<int64_t>(n)) return {std::nullopt, 0};
            const size_t chosen = order[static_cast<size_t>(i)];
            return {integer ? query::value(static_cast<int64_t>(number(chosen)))
                            : query::value(number(chosen)),
                    chosen};
        }
        default:
            return {std::nullopt, 0};
    }
}

bool is_selector(function fn) {
    return fn == function::first || fn == function::last || fn == function::min ||
           fn == function::max || fn == function::percentile;
}

// The points of one column per group: bucket start (or the selected point's time) -> value.
result<column_points> evaluate_column(const select_context& ctx, const field_expr& f,
                                      value_type type, bool lone_selector) {
    column_points out;
    const auto& stmt = ctx.stmt;
    const bool integer = type == value_type::int64;
    query::spec s = base_spec(ctx, f.field);
    s.step = stmt.interval;
    // The engine's summaries hold numbers: first and last of strings come from the points.
    const bool from_raw = f.fn == function::raw || f.fn == function::median ||
                          f.fn == function::stddev || f.fn == function::percentile ||
                          (lone_selector && stmt.interval == 0) ||
                          (type == value_type::string && f.fn != function::count);
    // Without GROUP BY time an aggregate is reported at the range's start (epoch 0 without
    // a lower bound), as InfluxDB does.
    const int64_t single_time = ctx.has_from ? ctx.from : 0;
    if (from_raw) {
        s.agg = query::aggregate::raw;
        s.step = 0;
        // Raw points: LIMIT (and OFFSET) bound each series' points in the engine already, so
        // that a LIMIT pages through a range too large to answer whole.
        if (f.fn == function::raw && stmt.limit > 0) {
            s.limit = stmt.limit + stmt.offset;
            s.order = stmt.descending ? "time_desc" : "time_asc";
        }
        auto results = query::run(ctx.engine, s);
        if (!results) return results.error();
        for (auto& r : *results) {
            auto& points = out.by_group[key_of(ctx, r)];
            if (f.fn == function::raw) {
                points = std::move(r.points);
                continue;
            }
            std::vector<query::value> values;
            for (size_t i = 0; i < r.points.size();) {
                const int64_t b = bucket_start(r.points[i].first, stmt.interval, single_time);
                const size_t begin = i;
                values.clear();
                for (; i < r.points.size() &&
                       bucket_start(r.points[i].first, stmt.interval, single_time) == b;
                     ++i)
                    values.push_back(r.points[i].second);
                auto [value, chosen] = over_values(f, values, integer);
                if (!value) continue;
                const int64_t t =
                    lone_selector && stmt.interval == 0 ? r.points[begin + chosen].first : b;
                points.emplace_back(t, std::move(*value));
            }
        }
        return out;
    }
    auto summary = [&](query::aggregate agg) -> result<std::vector<query::series_result>> {
        s.agg = agg;
        auto results = query::run(ctx.engine, s);
        if (!results) return results.error();
        for (auto& r : *results)
            for (auto& p : r.points)
                if (stmt.interval == 0) p.first = single_time;
        return results;
    };
    using qa = query::aggregate;
    if (f.fn == function::spread) {
        auto highs = summary(qa::max);
        if (!highs) return highs.error();
        auto lows = summary(qa::min);
        if (!lows) return lows.error();
        std::map<group_key, std::map<int64_t, query::value>> low_by;
        for (auto& r : *lows)
            for (auto& p : r.points)
                low_by[key_of(ctx, r)][p.first] = p.second;
        for (auto& r : *highs) {
            auto key = key_of(ctx, r);
            auto& points = out.by_group[key];
            for (auto& [t, high] : r.points) {
                const query::value& low = low_by[key][t];
                if (integer)
                    points.emplace_back(t, std::get<int64_t>(high) - std::get<int64_t>(low));
                else
                    points.emplace_back(t, as_number(high) - as_number(low));
            }
        }
        return out;
    }
    qa agg = f.fn == function::mean    ? qa::mean
             : f.fn == function::max   ? qa::max
             : f.fn == function::min   ? qa::min
             : f.fn == function::sum   ? qa::sum
             : f.fn == function::count ? qa::count
             : f.fn == function::first ? qa::first
                                       : qa::last;
    auto results = summary(agg);
    if (!results) return results.error();
    for (auto& r : *results) {
        auto& points = out.by_group[key_of(ctx, r)];
        for (auto& p : r.points) {
            // The sum of integers is an integer in InfluxDB (exact below 2^53, as stored sums are).
            if (agg == qa::sum && integer)
                p.second = static_cast<int64_t>(std::llround(as_number(p.second)));
            points.push_back(std::move(p));
        }
    }
    return out;
}

// Fills the empty buckets of one column (cells in bucket order), as fill() says.
void fill_column(const select_statement& stmt, function fn, bool integer, std::vector<cell>& cells,
                 const std::vector<int64_t>& times) {
    // count() reports 0 for an empty interval unless another fill is asked for.
    if (fn == function::count && (stmt.fill == fill_kind::null)) {
        for (auto& c : cells)
            if (!c) c = query::value(int64_t{0});
        return;
    }
    switch (stmt.fill) {
        case fill_kind::null:
        case fill_kind::none:
            return;
        case fill_kind::number:
            for (auto& c : cells)
                if (!c) {
                    if (integer && stmt.fill_value == std::floor(stmt.fill_value))
                        c = query::value(static_cast<int64_t>(stmt.fill_value));
                    else
                        c = query::value(stmt.fill_value);
                }
            return;
        case fill_kind::previous: {
            cell last;
            for (auto& c : cells) {
                if (c)
                    last = c;
                else
                    c = last;
            }
            return;
        }
        case fill_kind::linear: {
            // InfluxDB's line through the neighbours: slope m = dy / dt, then m * (t - t0) + y0,
            // truncated to an integer between two integers.
            size_t prev = cells.size();
            for (size_t i = 0; i < cells.size(); ++i) {
                if (!cells[i]) continue;
                if (prev != cells.size() && i > prev + 1) {
                    const bool ints = std::holds_alternative<int64_t>(*cells[prev]) &&
                                      std::holds_alternative<int64_t>(*cells[i]);
                    const double y0 = as_number(*cells[prev]);
                    const double m =
                        (as_number(*cells[i]) - y0) / static_cast<double>(times[i] - times[prev]);
                    for (size_t k = prev + 1; k < i; ++k) {
                        const double y = m * static_cast<double>(times[k] - times[prev]) + y0;
                        cells[k] = ints ? query::value(static_cast<int64_t>(y)) : query::value(y);
                    }
                }
                prev = i;
            }
            return;
        }
    }
}

result<std::vector<out_series>> run_select(const storage::engine& engine,
                                           const select_statement& stmt, const options& opts) {
    // The query engine reads these two group_by names as its own dimensions.
    for (const auto& tag : stmt.group_tags)
        if (tag == "measurement" || tag == "metric")
            return make_error("not_implemented",
                              "unsupported InfluxQL: GROUP BY a tag named \"" + tag + "\"");
    select_context ctx{engine, stmt, opts, unbounded_from, unbounded_to, false, {}};
    if (stmt.where)
        if (auto st = time_bounds(*stmt.where, opts.now_ns, false, ctx.from, ctx.to); !st)
            return st.error();
    ctx.has_from = ctx.from != unbounded_from;
    if (stmt.interval) {
        if (!ctx.has_from)
            return make_error("invalid_argument",
                              "aggregate functions with GROUP BY time require a WHERE time clause "
                              "with a lower limit");
        if (ctx.to == unbounded_to) ctx.to = opts.now_ns;
    }
    if (ctx.from >= ctx.to) return std::vector<out_series>{};

    // The measurement's series: their tag and field keys tell a tag from a field in WHERE.
    storage::series_selector selector;
    const auto& src = stmt.from;
    if (!src.pattern && src.measurement.find_first_of("*?") == std::string::npos)
        selector.measurement = src.measurement;
    selector.filter = [&src](const series_info& s) { return src.matches(s.measurement); };
    auto all = engine.select(selector);
    std::set<std::string> tag_keys, field_keys;
    for (const auto& s : all) {
        field_keys.insert(s.field);
        for (const auto& t : s.tags)
            tag_keys.insert(t.first);
    }
    if (stmt.where)
        if (auto st = check_tag_comparisons(*stmt.where, tag_keys, field_keys); !st)
            return st.error();
    const std::optional<condition>& where = stmt.where;
    const source& from_source = stmt.from;
    ctx.filter = [&where, &from_source](const series_info& s) {
        return from_source.matches(s.measurement) && (!where || passes(*where, s));
    };

    // A raw column names a field; a tag alone is not a column Clisonix answers.
    for (const auto& f : stmt.fields)
        if (f.fn == function::raw && !field_keys.contains(f.field) && tag_keys.contains(f.field))
            return make_error("not_implemented", "unsupported InfluxQL: selecting the tag \"" +
                                                     f.field + "\"; GROUP BY it instead");
    // Columns: names made unique as InfluxDB does (mean, mean_1, ...), types from the data.
    std::vector<std::string> columns;
    std::vector<value_type> types;
    for (const auto& f : stmt.fields) {
        std::string name = f.column();
        std::string unique = name;
        for (int n = 1; std::find(columns.begin(), columns.end(), unique) != columns.end(); ++n)
            unique = name + "_" + std::to_string(n);
        columns.push_back(unique);
        value_type type = value_type::float64;
        bool seen = false, all_int = true;
        for (const auto& s : all)
            if (s.field == f.field) {
                if (!seen || !is_numeric(s.type)) type = s.type;
                seen = true;
                if (s.type != value_type::int64) all_int = false;
            }
        if (seen && all_int)
            type = value_type::int64;
        else if (seen && is_numeric(type))
            type = value_type::float64;
        const bool any_type_ok = f.fn == function::raw || f.fn == function::count ||
                                 f.fn == function::first || f.fn == function::last;
        if (seen && !any_type_ok && !is_numeric(type))
            return make_error("invalid_argument", function_name(f.fn) + "() cannot apply to the " +
                                                      std::string(storage::type_name(type)) +
                                                      " field \"" + f.field + "\"");
        types.push_back(type);
    }
    const bool lone_selector = stmt.fields.size() == 1 && is_selector(stmt.fields.front().fn);

    std::vector<column_points> points;
    for (size_t c = 0; c < stmt.fields.size(); ++c) {
        auto col = evaluate_column(ctx, stmt.fields[c], types[c], lone_selector);
        if (!col) {
            // The query engine's advice names its own parameters (agg, step, from, to):
            // keep what it found, give the InfluxQL advice.
            auto e = col.error();
            for (std::string_view prefix : {"agg: ", "step: "})
                if (e.message.starts_with(prefix)) e.message.erase(0, prefix.size());
            if (auto semi = e.message.find(';');
                semi != std::string::npos && e.code == "invalid_argument")
                e.message = e.message.substr(0, semi) + " (query.max_points); " +
                            (stmt.fields[c].fn == function::raw
                                 ? "use an aggregate with GROUP BY time(), a shorter time range "
                                   "or LIMIT"
                             : e.message.find("raw points") != std::string::npos
                                 ? "use mean(), min() or max(), or a shorter time range"
                                 : "use a longer GROUP BY time() interval or a shorter time range");
            return e;
        }
        points.push_back(std::move(*col));
    }
    std::set<group_key> groups;
    for (const auto& col : points)
        for (const auto& [key, pts] : col.by_group)
            // A series without points in the range is not answered, whatever the fill.
            if (!pts.empty()) groups.insert(key);

    std::vector<int64_t> buckets;
    if (stmt.interval) {
        const int64_t first = bucket_start(ctx.from, stmt.interval, 0);
        const int64_t count = (ctx.to - 1 - first) / stmt.interval + 1;
        const int64_t cap = opts.max_points > 0 ? opts.max_points : 1'000'000;
        if (count * static_cast<int64_t>(std::max<size_t>(groups.size(), 1)) > cap)
            return make_error(
                "invalid_argument",
                "GROUP BY time() makes " + std::to_string(count) + " intervals per series over " +
                    std::to_string(groups.size()) + " series, more than the " +
                    std::to_string(cap) +
                    " points one answer may hold; use a longer interval or a shorter time range");
        for (int64_t b = first; b < ctx.to; b += stmt.interval)
            buckets.push_back(b);
    }

    std::vector<out_series> out;
    for (const auto& key : groups) {
        out_series series;
        series.name = key.first;
        series.tags = key.second;
        series.has_tags = stmt.group_all || !stmt.group_tags.empty();
        series.columns.push_back("time");
        for (const auto& c : columns)
            series.columns.push_back(c);
        if (stmt.interval) {
            std::vector<std::vector<cell>> cols(stmt.fields.size(),
                                                std::vector<cell>(buckets.size()));
            for (size_t c = 0; c < stmt.fields.size(); ++c) {
                auto it = points[c].by_group.find(key);
                if (it != points[c].by_group.end())
                    for (auto& [t, v] : it->second) {
                        auto pos = std::lower_bound(buckets.begin(), buckets.end(), t);
                        if (pos != buckets.end() && *pos == t)
                            cols[c][static_cast<size_t>(pos - buckets.begin())] = v;
                    }
                fill_column(stmt, stmt.fields[c].fn, types[c] == value_type::int64, cols[c],
                            buckets);
            }
            for (size_t b = 0; b < buckets.size(); ++b) {
                std::vector<cell> row;
                bool any = false;
                for (auto& col : cols) {
                    any = any || col[b].has_value();
                    row.push_back(col[b]);
                }
                if (stmt.fill == fill_kind::none && !any) continue;
                series.rows.emplace_back(buckets[b], std::move(row));
            }
        } else {
            // Rows by time; points at the same time in different columns share a row, the
            // k-th point at a time with the k-th of the other columns.
            std::map<std::pair<int64_t, size_t>, std::vector<cell>> rows;
            for (size_t c = 0; c < stmt.fields.size(); ++c) {
                auto it = points[c].by_group.find(key);
                if (it == points[c].by_group.end()) continue;
                for (size_t p = 0; p < it->second.size(); ++p) {
                    const auto& [t, v] = it->second[p];
                    size_t nth = 0;
                    for (size_t q = p; q > 0 && it->second[q - 1].first == t; --q)
                        ++nth;
                    auto& row = rows[{t, nth}];
                    row.resize(stmt.fields.size());
                    row[c] = v;
                }
            }
            for (auto& [at, row] : rows)
                series.rows.emplace_back(at.first, std::move(row));
        }
        if (stmt.descending) std::reverse(series.rows.begin(), series.rows.end());
        if (stmt.offset > 0)
            series.rows.erase(
                series.rows.begin(),
                series.rows.begin() +
                    std::min<int64_t>(stmt.offset, static_cast<int64_t>(series.rows.size())));
        if (stmt.limit > 0 && series.rows.size() > static_cast<size_t>(stmt.limit))
            series.rows.resize(static_cast<size_t>(stmt.limit));
        if (series.rows.empty()) continue;
        out.push_back(std::move(series));
    }
    if (stmt.soffset > 0)
        out.erase(out.begin(),
                  out.begin() + std::min<int64_t>(stmt.soffset, static_cast<int64_t>(out.size())));
    if (stmt.slimit > 0 && out.size() > static_cast<size_t>(stmt.slimit))
        out.resize(static_cast<size_t>(stmt.slimit));
    return out;
}

// ---- SHOW ----------------------------------------------------------------------------------

// A Go duration as InfluxDB prints retention: "0s", "168h0m0s".
std::string go_duration(int64_t ns) {
    if (ns <= 0) return "0s";
    int64_t s = ns / 1'000'000'000;
    return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m" +
           std::to_string(s % 60) + "s";
}

// measurement,tag=value as line protocol writes a series key (commas, spaces and `=` escaped).
std::string series_key(const series_info& s) {
    auto escape = [](std::string_view text, bool is_measurement) {
        std::string out;
        for (char c : text) {
            if (c == ',' || c == ' ' || (!is_measurement && c == '=')) out += '\\';
            out += c;
        }
        return out;
    };
    std::string key = escape(s.measurement, true);
    for (const auto& [k, v] : s.tags)
        key += "," + escape(k, false) + "=" + escape(v, false);
    return key;
}

template <typename Rows>
void page(Rows& rows, int64_t offset, int64_t limit) {
    if (offset > 0)
        rows.erase(rows.begin(),
                   rows.begin() + std::min<int64_t>(offset, static_cast<int64_t>(rows.size())));
    if (limit > 0 && rows.size() > static_cast<size_t>(limit))
        rows.resize(static_cast<size_t>(limit));
}

out_series untimed(std::string name, std::vector<std::string> columns) {
    out_series s;
    s.name = std::move(name);
    s.columns = std::move(columns);
    s.timed = false;
    return s;
}

void add_text_row(out_series& s, std::vector<std::string> cells) {
    std::vector<cell> row;
    for (auto& c : cells)
        row.emplace_back(query::value(std::move(c)));
    s.rows.emplace_back(0, std::move(row));
}

result<std::vector<out_series>> run_show(const storage::engine& engine, const show_statement& stmt,
                                         const options& opts) {
    std::vector<out_series> out;
    if (stmt.kind == show_kind::databases) {
        auto s = untimed("databases", {"name"});
        add_text_row(s, {std::string(database_name)});
        out.push_back(std::move(s));
        return out;
    }
    if (stmt.kind == show_kind::retention_policies) {
        auto s = untimed("", {"name", "duration", "shardGroupDuration", "replicaN", "default"});
        s.has_name = false;
        s.rows.emplace_back(0, std::vector<cell>{query::value(std::string("autogen")),
                                                 query::value(go_duration(opts.retention_ns)),
                                                 query::value(std::string("168h0m0s")),
                                                 query::value(int64_t{1}), query::value(true)});
        out.push_back(std::move(s));
        return out;
    }
    storage::series_selector selector;
    const auto& from = stmt.from;
    if (from && !from->pattern && from->measurement.find_first_of("*?") == std::string::npos)
        selector.measurement = from->measurement;
    selector.filter = [&stmt](const series_info& s) {
        if (stmt.from && !stmt.from->matches(s.measurement)) return false;
        if (stmt.measurement_filter && !stmt.measurement_filter->matches(s.measurement))
            return false;
        return !stmt.where || passes(*stmt.where, s);
    };
    auto series = engine.select(selector);
    switch (stmt.kind) {
        case show_kind::measurements: {
            std::set<std::string> names;
            for (const auto& s : series)
                names.insert(s.measurement);
            std::vector<std::string> rows(names.begin(), names.end());
            page(rows, stmt.offset, stmt.limit);
            if (rows.empty()) return out;
            auto s = untimed("measurements", {"name"});
            for (auto& r : rows)
                add_text_row(s, {r});
            out.push_back(std::move(s));
            return out;
        }
        case show_kind::series: {
            std::set<std::string> keys;
            for (const auto& s : series)
                keys.insert(series_key(s));
            std::vector<std::string> rows(keys.begin(), keys.end());
            page(rows, stmt.offset, stmt.limit);
            if (rows.empty()) return out;
            auto s = untimed("", {"key"});
            s.has_name = false;
            for (auto& r : rows)
                add_text_row(s, {r});
            out.push_back(std::move(s));
            return out;
        }
        default:
            break;
    }
    // Per measurement: tag keys, tag values or field keys.
    std::map<std::string, std::set<std::pair<std::string, std::string>>> per;
    for (const auto& s : series) {
        auto& rows = per[s.measurement];
        if (stmt.kind == show_kind::field_keys) {
            bool known = std::any_of(rows.begin(), rows.end(),
                                     [&](const auto& r) { return r.first == s.field; });
            if (!known) rows.emplace(s.field, std::string(storage::type_name(s.type)));
            continue;
        }
        for (const auto& [k, v] : s.tags) {
            if (stmt.kind == show_kind::tag_keys) {
                rows.emplace(k, "");
                continue;
            }
            bool wanted = stmt.key_op == "=" || stmt.key_op == "IN"
                              ? std::find(stmt.keys.begin(), stmt.keys.end(), k) != stmt.keys.end()
                          : stmt.key_op == "!="
                              ? std::find(stmt.keys.begin(), stmt.keys.end(), k) == stmt.keys.end()
                          : stmt.key_op == "=~" ? stmt.key_pattern->search(k)
                                                : !stmt.key_pattern->search(k);
            if (wanted) rows.emplace(k, v);
        }
    }
    for (auto& [measurement, set] : per) {
        std::vector<std::pair<std::string, std::string>> rows(set.begin(), set.end());
        page(rows, stmt.offset, stmt.limit);
        if (rows.empty()) continue;
        out_series s = stmt.kind == show_kind::tag_keys ? untimed(measurement, {"tagKey"})
                       : stmt.kind == show_kind::tag_values
                           ? untimed(measurement, {"key", "value"})
                           : untimed(measurement, {"fieldKey", "fieldType"});
        for (auto& [a, b] : rows) {
            if (stmt.kind == show_kind::tag_keys)
                add_text_row(s, {a});
            else
                add_text_row(s, {a, b});
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::string error_body(const std::string& message) {
    std::string body = "{\"error\":";
    append_json_string(body, message);
    body += '}';
    return body;
}

}  // namespace

status check(std::string_view q) {
    auto parsed = parse(q);
    if (!parsed) return parsed.error();
    return {};
}

answer run(const storage::engine& engine, std::string_view q, const options& opts) {
    auto parsed = parse(q);
    if (!parsed) {
        const auto& e = parsed.error();
        std::string message =
            e.code == "not_implemented" ? e.message : "error parsing query: " + e.message;
        return {400, error_body(message)};
    }
    std::string body = "{\"results\":[";
    for (size_t i = 0; i < parsed->size(); ++i) {
        if (i) body += ',';
        body += "{\"statement_id\":";
        append_int(body, static_cast<int64_t>(i));
        const auto& st = (*parsed)[i];
        auto series = std::holds_alternative<select_statement>(st)
                          ? run_select(engine, std::get<select_statement>(st), opts)
                          : run_show(engine, std::get<show_statement>(st), opts);
        if (!series) {
            body += ",\"error\":";
            append_json_string(body, series.error().message);
        } else if (!series->empty()) {
            body += ",\"series\":[";
            for (size_t s = 0; s < series->size(); ++s) {
                if (s) body += ',';
                append_series(body, (*series)[s], opts.epoch);
            }
            body += ']';
        }
        body += '}';
    }
    body += "]}";
    if (opts.pretty) body = indent(body);
    return {200, std::move(body)};
}

}  // namespace clisonix::influxql
