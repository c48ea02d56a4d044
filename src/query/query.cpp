// The query engine: parse, select series, aggregate exactly, rank, format.
#include "query/query.h"
#include "common/glob.h"
#include "common/json_text.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <thread>

namespace clisonix::query {

namespace {

using storage::value_type;

constexpr int64_t ns_per_ms = 1'000'000;

const std::string* tag_value(const storage::series_info& s, std::string_view key) {
    for (const auto& [k, v] : s.tags)
        if (k == key) return &v;
    return nullptr;
}

std::optional<aggregate> parse_agg(std::string_view name) {
    static const std::pair<std::string_view, aggregate> names[] = {
        {"raw", aggregate::raw},     {"min", aggregate::min},   {"max", aggregate::max},
        {"mean", aggregate::mean},   {"sum", aggregate::sum},   {"count", aggregate::count},
        {"first", aggregate::first}, {"last", aggregate::last}, {"stddev", aggregate::stddev},
        {"p50", aggregate::p50},     {"p90", aggregate::p90},   {"p99", aggregate::p99}};
    for (const auto& [n, a] : names)
        if (n == name) return a;
    return std::nullopt;
}

bool is_numeric_only(aggregate a) {
    return a != aggregate::raw && a != aggregate::count && a != aggregate::first &&
           a != aggregate::last;
}

bool needs_raw_points(aggregate a) {
    return a == aggregate::raw || a == aggregate::stddev || a == aggregate::p50 ||
           a == aggregate::p90 || a == aggregate::p99;
}

value typed(value_type type, double v) {
    switch (type) {
        case value_type::int64:
            return static_cast<int64_t>(v);
        case value_type::boolean:
            return v != 0;
        default:
            return v;
    }
}

value typed_raw(value_type type, uint64_t raw, const std::vector<std::string>& strings) {
    switch (type) {
        case value_type::float64:
            return std::bit_cast<double>(raw);
        case value_type::int64:
            return static_cast<int64_t>(raw);
        case value_type::boolean:
            return raw != 0;
        case value_type::string:
            return raw < strings.size() ? strings[raw] : std::string();
    }
    return 0.0;
}

// Folds b into a (both over the same bucket, from different series).
void merge(storage::summary& a, const storage::summary& b) {
    if (b.count == 0) return;
    if (a.count == 0) {
        a = b;
        return;
    }
    a.sum += b.sum;
    a.min = std::min(a.min, b.min);
    a.max = std::max(a.max, b.max);
    if (b.first_ts < a.first_ts) {
        a.first_ts = b.first_ts;
        a.first = b.first;
    }
    if (b.last_ts >= a.last_ts) {
        a.last_ts = b.last_ts;
        a.last = b.last;
    }
    a.count += b.count;
}

value from_summary(aggregate agg, const storage::summary& s, value_type type) {
    switch (agg) {
        case aggregate::min:
            return typed(type, s.min);
        case aggregate::max:
            return typed(type, s.max);
        case aggregate::first:
            return typed(type, s.first);
        case aggregate::last:
            return typed(type, s.last);
        case aggregate::count:
            return static_cast<int64_t>(s.count);
        case aggregate::sum:
            return s.sum;
        case aggregate::mean:
            return s.sum / static_cast<double>(s.count);
        default:
            return 0.0;
    }
}

// stddev (sample, n - 1) and nearest-rank percentiles over one bucket's values.
value from_values(aggregate agg, std::vector<double>& v) {
    if (agg == aggregate::stddev) {
        if (v.size() < 2) return 0.0;
        double mean = 0;
        for (double x : v)
            mean += x;
        mean /= static_cast<double>(v.size());
        double ss = 0;
        for (double x : v)
            ss += (x - mean) * (x - mean);
        return std::sqrt(ss / static_cast<double>(v.size() - 1));
    }
    double p = agg == aggregate::p50 ? 50 : agg == aggregate::p90 ? 90 : 99;
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    size_t index = rank == 0 ? 0 : rank - 1;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(index), v.end());
    return v[index];
}

double rank_number(const value& v) {
    if (auto d = std::get_if<double>(&v)) return *d;
    if (auto i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    if (auto b = std::get_if<bool>(&v)) return *b ? 1 : 0;
    return 0;
}

struct group {
    std::vector<const storage::series_info*> members;
    series_result out;
    value_type type = value_type::float64;
};

// Bucket start for `ts`: multiples of step since the epoch, or `from` for a single bucket.
int64_t bucket_of(int64_t ts, int64_t step, int64_t from) {
    if (step == 0) return from;
    int64_t b = ts / step * step;
    return (ts < 0 && b != ts) ? b - step : b;
}

// Computes agg over [from, to) with `step` for one group into out.points.
status evaluate(const storage::engine& engine, const spec& s, aggregate agg, int64_t step,
                group& g) {
    g.out.points.clear();
    if (needs_raw_points(agg)) {
        std::vector<storage::sample> samples;
        std::vector<std::string> strings;
        std::vector<std::pair<int64_t, uint64_t>> all;
        for (const auto* member : g.members) {
            samples.clear();
            if (auto st = engine.scan(member->id, s.from, s.to, samples, &strings); !st) return st;
            for (const auto& p : samples)
                all.emplace_back(p.ts, p.raw);
        }
        if (g.members.size() > 1)
            std::stable_sort(all.begin(), all.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; });
        if (agg == aggregate::raw) {
            g.out.points.reserve(all.size());
            for (const auto& [ts, raw] : all)
                g.out.points.emplace_back(ts, typed_raw(g.type, raw, strings));
            return {};
        }
        std::vector<double> bucket_values;
        for (size_t i = 0; i < all.size();) {
            int64_t b = bucket_of(all[i].first, step, s.from);
            bucket_values.clear();
            for (; i < all.size() && bucket_of(all[i].first, step, s.from) == b; ++i)
                bucket_values.push_back(storage::as_double(g.type, all[i].second));
            g.out.points.emplace_back(b, from_values(agg, bucket_values));
        }
        return {};
    }
    // Summaries: the engine answers from block summaries where it can.
    // A single bucket over [from, to) uses a step no timestamp in range can cross.
    const int64_t engine_step = step == 0 ? (int64_t{1} << 62) : step;
    using bucket_map = std::map<int64_t, storage::summary>;
    auto fold = [&](size_t begin, size_t end, bucket_map& into) -> status {
        std::vector<std::pair<int64_t, storage::summary>> part;
        for (size_t m = begin; m < end; ++m) {
            part.clear();
            if (auto st = engine.aggregate(g.members[m]->id, s.from, s.to, engine_step, part); !st)
                return st;
            for (auto& [b, sum] : part)
                merge(into[step == 0 ? s.from : b], sum);
        }
        return {};
    };
    // A fleet-wide aggregate decodes many series: split them over the cores in contiguous
    // chunks, merged in order, so that the answer is the same on every run.
    const size_t members = g.members.size();
    const size_t chunks =
        members < 256 ? 1 : std::min<size_t>(4, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<bucket_map> partial(chunks);
    std::vector<status> results(chunks);
    std::vector<std::thread> helpers;
    for (size_t c = 1; c < chunks; ++c)
        helpers.emplace_back([&, c] {
            results[c] = fold(members * c / chunks, members * (c + 1) / chunks, partial[c]);
        });
    results[0] = fold(0, members / chunks, partial[0]);
    for (auto& t : helpers)
        t.join();
    for (const auto& st : results)
        if (!st) return st;
    bucket_map& buckets = partial[0];
    for (size_t c = 1; c < chunks; ++c)
        for (const auto& [b, sum] : partial[c])
            merge(buckets[b], sum);
    for (const auto& [b, sum] : buckets)
        if (sum.count > 0) g.out.points.emplace_back(b, from_summary(agg, sum, g.type));
    return {};
}

// evaluate() for every group. Many groups (top-k over a fleet, one series per group) are
// split over the cores in contiguous runs: each group's answer is its own, so the result
// is the same as one after another, and the error is that of the first group that fails.
status evaluate_groups(const storage::engine& engine, const spec& s, aggregate agg, int64_t step,
                       std::vector<group>& groups) {
    const size_t n = groups.size();
    const size_t runs =
        n < 64 ? 1 : std::min<size_t>(4, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<status> results(runs);
    auto evaluate_run = [&](size_t run) {
        for (size_t i = n * run / runs; i < n * (run + 1) / runs; ++i)
            if (results[run] = evaluate(engine, s, agg, step, groups[i]); !results[run]) return;
    };
    std::vector<std::thread> helpers;
    for (size_t run = 1; run < runs; ++run)
        helpers.emplace_back(evaluate_run, run);
    evaluate_run(0);
    for (auto& t : helpers)
        t.join();
    for (const auto& st : results)
        if (!st) return st;
    return {};
}

void append_number(std::string& out, int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_value(std::string& out, const value& v, bool json) {
    if (auto d = std::get_if<double>(&v)) {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, *d);
        out.append(buf, r.ptr);
    } else if (auto i = std::get_if<int64_t>(&v)) {
        append_number(out, *i);
    } else if (auto b = std::get_if<bool>(&v)) {
        out += *b ? "true" : "false";
    } else if (json) {
        append_json_string(out, std::get<std::string>(v));
    } else {
        // CSV: quote when needed, doubling quotes.
        const auto& s = std::get<std::string>(v);
        if (s.find_first_of(",\"\n\r") == std::string::npos) {
            out += s;
        } else {
            out.push_back('"');
            for (char c : s) {
                if (c == '"') out.push_back('"');
                out.push_back(c);
            }
            out.push_back('"');
        }
    }
}

int64_t floor_div(int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
    return clisonix::glob_match(pattern, text);
}

result<int64_t> parse_step(std::string_view text, std::string_view field) {
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
    int64_t scale = 0;
    if (unit == "ns")
        scale = 1;
    else if (unit == "us")
        scale = 1'000;
    else if (unit == "ms")
        scale = ns_per_ms;
    else if (unit == "s")
        scale = 1'000'000'000;
    else if (unit == "m")
        scale = 60'000'000'000;
    else if (unit == "h")
        scale = 3'600'000'000'000;
    else if (unit == "d")
        scale = 86'400'000'000'000;
    if (ec != std::errc{} || ptr == text.data() || scale == 0 || n <= 0 || n > INT64_MAX / scale)
        return make_error("invalid_argument",
                          std::string(field) +
                              ": expected a positive duration such as 10s, 1m, 1h; got \"" +
                              std::string(text) + "\"",
                          std::string(field));
    return n * scale;
}

result<int64_t> parse_time(std::string_view text, int64_t now_ns, std::string_view field) {
    auto bad = [&] {
        return make_error("invalid_argument",
                          std::string(field) +
                              ": expected RFC 3339 (2024-01-01T00:00:00Z), epoch milliseconds, "
                              "now, or a relative time such as -1h; got \"" +
                              std::string(text) + "\"",
                          std::string(field));
    };
    if (text.empty()) return bad();
    if (text == "now") return now_ns;
    std::string_view rel = text;
    if (rel.starts_with("now")) rel.remove_prefix(3);
    if (!rel.empty() && (rel.front() == '-' || rel.front() == '+') &&
        (text.starts_with("now") || !std::all_of(rel.begin() + 1, rel.end(), ::isdigit))) {
        bool minus = rel.front() == '-';
        auto d = parse_step(rel.substr(1), field);
        if (!d) return bad();
        // `now+100000d` fits a duration but not now plus it: refuse, never wrap (signed
        // overflow is undefined behaviour; the sanitizer build traps on it).
        int64_t t;
        if (minus ? __builtin_sub_overflow(now_ns, *d, &t) : __builtin_add_overflow(now_ns, *d, &t))
            return make_error("invalid_argument",
                              std::string(field) + ": \"" + std::string(text) +
                                  "\" is out of range (1677 to 2262)",
                              std::string(field));
        return t;
    }
    if (std::all_of(text.begin() + (text.front() == '-' ? 1 : 0), text.end(), ::isdigit)) {
        int64_t ms = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
        if (ec != std::errc{} || ptr != text.data() + text.size() || ms > INT64_MAX / ns_per_ms ||
            ms < INT64_MIN / ns_per_ms)
            return bad();
        return ms * ns_per_ms;
    }
    // RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)
    std::tm tm{};
    int consumed = 0;
    std::string s(text);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6)
        return bad();
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return bad();
    std::string_view rest = std::string_view(s).substr(static_cast<size_t>(consumed));
    int64_t fraction_ns = 0;
    if (!rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        int digits = 0;
        while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
            if (digits < 9) fraction_ns = fraction_ns * 10 + (rest.front() - '0');
            ++digits;
            rest.remove_prefix(1);
        }
        if (digits == 0) return bad();
        for (int i = digits; i < 9; ++i)
            fraction_ns *= 10;
    }
    int64_t offset_s = 0;
    if (rest == "Z" || rest == "z") {
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        int hh = 0, mm = 0;
        if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &hh, &mm) != 2)
            return bad();
        offset_s = (hh * 3600 + mm * 60) * (rest[0] == '+' ? 1 : -1);
    } else {
        return bad();
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t epoch = static_cast<int64_t>(timegm(&tm)) - offset_s;
    // Nanoseconds since 1970 in 64 bits end in 2262: a later (or earlier than 1677) date is
    // refused rather than wrapped.
    int64_t ns;
    if (__builtin_mul_overflow(epoch, int64_t{1'000'000'000}, &ns) ||
        __builtin_add_overflow(ns, fraction_ns, &ns))
        return make_error(
            "invalid_argument",
            std::string(field) + ": \"" + std::string(text) + "\" is out of range (1677 to 2262)",
            std::string(field));
    return ns;
}

result<spec> parse_spec(const std::map<std::string, std::string, std::less<>>& params,
                        int64_t now_ns) {
    spec s;
    s.from = now_ns - 3'600'000'000'000;
    s.to = now_ns;
    for (const auto& param : params) {
        // Named references, not a structured binding: lambdas capture them (clang 14).
        const std::string& key = param.first;
        const std::string& text = param.second;
        auto invalid = [&](const std::string& why) {
            return make_error("invalid_argument", key + ": " + why, key);
        };
        if (key == "device")
            s.device = text;
        else if (key == "metric")
            s.metric = text;
        else if (key == "measurement")
            s.measurement = text;
        else if (key.starts_with("tag.") && key.size() > 4)
            s.tags.emplace_back(key.substr(4), text);
        else if (key == "from" || key == "to") {
            auto t = parse_time(text, now_ns, key);
            if (!t) return t.error();
            (key == "from" ? s.from : s.to) = *t;
        } else if (key == "agg") {
            auto a = parse_agg(text);
            if (!a)
                return invalid(
                    "expected one of raw, min, max, mean, sum, count, first, last, "
                    "stddev, p50, p90, p99; got \"" +
                    text + "\"");
            s.agg = *a;
        } else if (key == "step") {
            auto st = parse_step(text, key);
            if (!st) return st.error();
            s.step = *st;
        } else if (key == "group_by") {
            size_t start = 0;
            while (start <= text.size()) {
                size_t comma = text.find(',', start);
                if (comma == std::string::npos) comma = text.size();
                if (comma > start) s.group_by.push_back(text.substr(start, comma - start));
                start = comma + 1;
            }
        } else if (key == "order") {
            if (text != "time_asc" && text != "time_desc") {
                auto us = text.rfind('_');
                auto a = us == std::string::npos ? std::nullopt : parse_agg(text.substr(0, us));
                std::string dir = us == std::string::npos ? "" : text.substr(us + 1);
                if (!a || *a == aggregate::raw || (dir != "asc" && dir != "desc"))
                    return invalid(
                        "expected time_asc, time_desc, or an aggregate with _asc or "
                        "_desc such as max_desc; got \"" +
                        text + "\"");
            }
            s.order = text;
        } else if (key == "limit") {
            auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), s.limit);
            if (ec != std::errc{} || ptr != text.data() + text.size() || s.limit <= 0)
                return invalid("expected a positive integer; got \"" + text + "\"");
        } else {
            return make_error("invalid_argument", "unknown query parameter \"" + key + "\"", key);
        }
    }
    if (s.from >= s.to) return make_error("invalid_argument", "from: must be before to", "from");
    if (s.step > 0 && (s.to - s.from) / s.step > 1'000'000)
        return make_error("invalid_argument",
                          "step: more than 1,000,000 buckets in the range; use a wider step",
                          "step");
    if (s.step > 0 && s.agg == aggregate::raw)
        return make_error("invalid_argument", "step: needs an aggregate (agg=mean, max, ...)",
                          "step");
    return s;
}

std::vector<storage::series_info> select(const storage::engine& engine, const spec& s) {
    storage::series_selector selector;
    selector.measurement = s.measurement;
    selector.field = s.metric;
    // `device=*` selects series without a device tag too; any other pattern needs the tag.
    if (s.device != "*") selector.tag_globs.emplace_back("device", s.device);
    if (s.devices) selector.tag_values.emplace_back("device", *s.devices);
    for (const auto& [k, v] : s.tags)
        selector.tag_globs.emplace_back(k, v);
    selector.filter = s.filter;
    return engine.select(selector);
}

std::vector<series_result> last_values(const storage::engine& engine, const spec& s) {
    std::vector<series_result> out;
    for (const auto& info : select(engine, s)) {
        std::string text;
        auto point = engine.last(info.id, &text);
        if (!point) continue;
        series_result r{info.measurement, info.tags, info.field, {}};
        std::vector<std::string> strings{text};
        r.points.emplace_back(point->ts, info.type == value_type::string
                                             ? value(text)
                                             : typed_raw(info.type, point->raw, strings));
        out.push_back(std::move(r));
    }
    return out;
}

namespace {

std::string with_thousands(int64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
        out.push_back(digits[i]);
    }
    return out;
}

// Refuses a query whose answer would exceed s.max_points, from the points each group holds
// in the range: the engine counts them from block summaries (decoding at most the blocks
// cut by the range's ends), so nothing is materialised to decide.
status check_answer_size(const storage::engine& engine, const spec& s,
                         const std::vector<group>& groups, bool ranked, bool materialises_groups) {
    if (s.max_points <= 0) return {};
    // An aggregate from summaries answers at most one point per bucket and group: when even
    // that bound fits, counting the points (a summary per series, as costly as the query
    // itself) cannot refuse anything.
    if (s.agg != aggregate::raw && !materialises_groups) {
        const int64_t buckets = s.step > 0 ? (s.to - s.from) / s.step + 2 : 1;
        int64_t series = static_cast<int64_t>(groups.size());
        if (ranked && s.limit > 0) series = std::min(series, s.limit);
        if (series <= s.max_points / buckets) return {};
    }
    std::vector<int64_t> answer;  // per group, the points it would put in the answer
    int64_t largest_group = 0;    // raw points of the largest group
    std::vector<std::pair<int64_t, storage::summary>> part;
    for (const auto& g : groups) {
        int64_t count = 0;
        int64_t first = std::numeric_limits<int64_t>::max();
        int64_t last = std::numeric_limits<int64_t>::min();
        for (const auto* member : g.members) {
            part.clear();
            if (auto st = engine.aggregate(member->id, s.from, s.to, int64_t{1} << 62, part); !st)
                return st;
            for (const auto& [bucket, sum] : part) {
                if (sum.count == 0) continue;
                count += static_cast<int64_t>(sum.count);
                first = std::min(first, sum.first_ts);
                last = std::max(last, sum.last_ts);
            }
        }
        // Buckets with points lie between the group's first and last point.
        const int64_t buckets = count == 0 ? 0 : s.step > 0 ? (last - first) / s.step + 2 : 1;
        largest_group = std::max(largest_group, count);
        int64_t points = s.agg == aggregate::raw ? count : std::min(count, buckets);
        if (!ranked && s.limit > 0) points = std::min(points, s.limit);
        answer.push_back(points);
    }
    if (ranked && s.limit > 0 && answer.size() > static_cast<size_t>(s.limit)) {
        std::partial_sort(answer.begin(), answer.begin() + s.limit, answer.end(), std::greater<>());
        answer.resize(static_cast<size_t>(s.limit));
    }
    int64_t total = 0;
    for (int64_t points : answer)
        total += points;
    const std::string cap = with_thousands(s.max_points);
    if (s.agg == aggregate::raw && total > s.max_points)
        return make_error("invalid_argument",
                          "agg: the query would return " + with_thousands(total) +
                              " raw points, more than the " + cap +
                              " one answer may hold; aggregate (agg=mean&step=1m), narrow the "
                              "range (from, to) or the series, or page with limit",
                          "agg");
    if (total > s.max_points)
        return make_error("invalid_argument",
                          "step: the query would return " + with_thousands(total) +
                              " points, more than the " + cap +
                              " one answer may hold; use a wider step or narrow the range "
                              "(from, to) or the series",
                          "step");
    if (materialises_groups && largest_group > s.max_points)
        return make_error("invalid_argument",
                          "agg: stddev and percentiles need all " + with_thousands(largest_group) +
                              " raw points of a series in memory, more than " + cap +
                              "; use min, max, mean, sum or count, or narrow the range "
                              "(from, to)",
                          "agg");
    return {};
}

}  // namespace

result<std::vector<series_result>> run(const storage::engine& engine, const spec& s) {
    auto matched = select(engine, s);
    std::optional<aggregate> rank_agg;
    bool descending = false;
    if (s.order != "time_asc" && s.order != "time_desc") {
        auto us = s.order.rfind('_');
        rank_agg = parse_agg(s.order.substr(0, us));
        descending = s.order.substr(us + 1) == "desc";
    }
    for (const auto& info : matched)
        if (info.type == value_type::string &&
            (is_numeric_only(s.agg) || (rank_agg && is_numeric_only(*rank_agg))))
            return make_error("invalid_argument",
                              "agg: " + info.key +
                                  " holds strings; only raw, count, first and "
                                  "last apply to string series",
                              "agg");

    // Group: series equal in the group_by dimensions are merged.
    std::vector<group> groups;
    std::map<std::vector<std::string>, size_t> by_key;
    for (const auto& info : matched) {
        std::vector<std::string> key;
        if (s.group_by.empty()) {
            key.push_back(info.key);
        } else {
            for (const auto& dim : s.group_by) {
                if (dim == "measurement")
                    key.push_back(info.measurement);
                else if (dim == "metric")
                    key.push_back(info.field);
                else if (const auto* v = tag_value(info, dim))
                    key.push_back(*v);
                else
                    key.emplace_back();
            }
        }
        auto [it, fresh] = by_key.emplace(key, groups.size());
        if (fresh) {
            group g;
            g.type = info.type;
            bool keep_all = s.group_by.empty();
            auto keeps = [&](std::string_view dim) {
                return keep_all ||
                       std::find(s.group_by.begin(), s.group_by.end(), dim) != s.group_by.end();
            };
            if (keeps("measurement")) g.out.measurement = info.measurement;
            if (keeps("metric")) g.out.metric = info.field;
            for (const auto& [k, v] : info.tags)
                if (keeps(k)) g.out.tags.emplace_back(k, v);
            groups.push_back(std::move(g));
        } else if (groups[it->second].type != info.type) {
            // Mixed types merge as numbers.
            groups[it->second].type = value_type::float64;
        }
        groups[it->second].members.push_back(&info);
    }

    const bool materialises = (s.agg != aggregate::raw && needs_raw_points(s.agg)) ||
                              (rank_agg && needs_raw_points(*rank_agg));
    if (auto st = check_answer_size(engine, s, groups, rank_agg.has_value(), materialises); !st)
        return st.error();

    // Ranking (top-k): each group's aggregate over the whole range, then the best `limit`.
    if (rank_agg) {
        std::vector<std::pair<double, size_t>> ranked;
        if (auto st = evaluate_groups(engine, s, *rank_agg, 0, groups); !st) return st.error();
        for (size_t i = 0; i < groups.size(); ++i) {
            if (!groups[i].out.points.empty())
                ranked.emplace_back(rank_number(groups[i].out.points.front().second), i);
        }
        std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
            return descending ? a.first > b.first : a.first < b.first;
        });
        if (s.limit > 0 && ranked.size() > static_cast<size_t>(s.limit))
            ranked.resize(static_cast<size_t>(s.limit));
        std::vector<series_result> out;
        for (const auto& [score, i] : ranked) {
            auto& g = groups[i];
            if (s.agg != *rank_agg || s.step != 0)
                if (auto st = evaluate(engine, s, s.agg, s.step, g); !st) return st.error();
            out.push_back(std::move(g.out));
        }
        return out;
    }

    if (auto st = evaluate_groups(engine, s, s.agg, s.step, groups); !st) return st.error();
    std::vector<series_result> out;
    out.reserve(groups.size());
    for (auto& g : groups) {
        if (s.order == "time_desc") std::reverse(g.out.points.begin(), g.out.points.end());
        if (s.limit > 0 && g.out.points.size() > static_cast<size_t>(s.limit))
            g.out.points.resize(static_cast<size_t>(s.limit));
        out.push_back(std::move(g.out));
    }
    return out;
}

namespace {

// {"measurement":..,"tags":{..},"metric":..   (the object is left open)
void append_series_identity(std::string& out, const std::string& measurement,
                            const std::vector<std::pair<std::string, std::string>>& tags,
                            const std::string& metric) {
    out += "{\"measurement\":";
    append_json_string(out, measurement);
    out += ",\"tags\":{";
    for (size_t t = 0; t < tags.size(); ++t) {
        if (t) out.push_back(',');
        append_json_string(out, tags[t].first);
        out.push_back(':');
        append_json_string(out, tags[t].second);
    }
    out += "},\"metric\":";
    append_json_string(out, metric);
}

}  // namespace

std::string series_to_json(const std::vector<storage::series_info>& series) {
    std::string out = "{\"series\":[";
    for (size_t i = 0; i < series.size(); ++i) {
        if (i) out.push_back(',');
        append_series_identity(out, series[i].measurement, series[i].tags, series[i].field);
        out += ",\"type\":\"";
        out += storage::type_name(series[i].type);
        out += "\"}";
    }
    out += "]}";
    return out;
}

std::string to_json(const std::vector<series_result>& results) {
    std::string out = "{\"series\":[";
    for (size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        if (i) out.push_back(',');
        append_series_identity(out, r.measurement, r.tags, r.metric);
        out += ",\"points\":[";
        for (size_t p = 0; p < r.points.size(); ++p) {
            if (p) out.push_back(',');
            out.push_back('[');
            append_number(out, floor_div(r.points[p].first, ns_per_ms));
            out.push_back(',');
            append_value(out, r.points[p].second, true);
            out.push_back(']');
        }
        out += "]}";
    }
    out += "]}";
    return out;
}

std::string to_csv(const std::vector<series_result>& results) {
    std::string out = "measurement,tags,metric,time_ms,value\n";
    for (const auto& r : results) {
        std::string tags;
        for (size_t t = 0; t < r.tags.size(); ++t) {
            if (t) tags.push_back(';');
            tags += r.tags[t].first + "=" + r.tags[t].second;
        }
        std::string prefix;
        append_value(prefix, r.measurement, false);
        prefix.push_back(',');
        append_value(prefix, tags, false);
        prefix.push_back(',');
        append_value(prefix, r.metric, false);
        prefix.push_back(',');
        for (const auto& [ts, v] : r.points) {
            out += prefix;
            append_number(out, floor_div(ts, ns_per_ms));
            out.push_back(',');
            append_value(out, v, false);
            out.push_back('\n');
        }
    }
    return out;
}

}  // namespace clisonix::query
