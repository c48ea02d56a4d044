// The Prometheus HTTP API under /prometheus/api/v1/: parameters from the query string and a
// form body (Grafana POSTs), answers and errors in Prometheus' own JSON.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "common/json_text.h"
#include "common/time.h"
#include "http/http.h"
#include "promql/ast.h"
#include "promql/selection.h"
#include "query/query.h"

namespace clisonix::promql {

namespace {

constexpr std::string_view prefix = "/prometheus/api/v1";

// Every parameter, repeated ones kept (`match[]`), from the URL and a form body.
using params = std::vector<std::pair<std::string, std::string>>;

void add_form(std::string_view text, params& out) {
    while (!text.empty()) {
        auto amp = text.find('&');
        std::string_view pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        out.emplace_back(http::percent_decode(pair.substr(0, eq), true),
                         eq == std::string_view::npos
                             ? std::string{}
                             : http::percent_decode(pair.substr(eq + 1), true));
    }
}

params params_of(const http::request& req) {
    params out;
    auto q = req.target.find('?');
    if (q != std::string::npos) add_form(std::string_view(req.target).substr(q + 1), out);
    if (req.verb == http::method::post &&
        req.header("content-type").find("application/x-www-form-urlencoded") !=
            std::string_view::npos)
        add_form(req.body, out);
    return out;
}

const std::string* param(const params& p, std::string_view name) {
    for (const auto& [n, v] : p)
        if (n == name) return &v;
    return nullptr;
}

std::vector<std::string> params_named(const params& p, std::string_view name) {
    std::vector<std::string> out;
    for (const auto& [n, v] : p)
        if (n == name) out.push_back(v);
    return out;
}

struct bad_request {
    int status;
    std::string type;
    std::string message;
};

http::response error_answer(int status, std::string_view type, std::string_view message) {
    std::string body = R"({"status":"error","errorType":)";
    append_json_string(body, type);
    body += R"(,"error":)";
    append_json_string(body, message);
    body += "}";
    return http::response::json(status, std::move(body));
}

http::response error_answer(const clisonix::error& e) {
    if (e.code == "too_large" || e.code == "conflict")
        return error_answer(422, "execution", e.message);
    if (e.code == "invalid_argument") return error_answer(400, "bad_data", e.message);
    return error_answer(500, "internal", e.message);
}

// Prometheus' times: float seconds since the epoch or RFC 3339; to milliseconds.
int64_t time_param(const params& p, std::string_view name, std::optional<int64_t> fallback) {
    const std::string* text = param(p, name);
    if (!text || text->empty()) {
        if (fallback) return *fallback;
        throw bad_request{400, "bad_data",
                          "invalid parameter \"" + std::string(name) +
                              "\": cannot parse \"\" to a valid timestamp"};
    }
    double seconds = 0;
    auto r = std::from_chars(text->data(), text->data() + text->size(), seconds);
    if (r.ec == std::errc() && r.ptr == text->data() + text->size() && std::isfinite(seconds))
        return static_cast<int64_t>(std::llround(seconds * 1000));
    if (text->find('T') != std::string::npos || text->find('t') != std::string::npos) {
        if (auto ns = query::parse_time(*text, now_ns(), name)) {
            int64_t v = *ns;
            return v >= 0 ? v / 1'000'000 : -((-v + 999'999) / 1'000'000);
        }
    }
    throw bad_request{400, "bad_data",
                      "invalid parameter \"" + std::string(name) + "\": cannot parse \"" + *text +
                          "\" to a valid timestamp"};
}

int64_t step_param(const params& p) {
    const std::string* text = param(p, "step");
    auto ms = text ? parse_duration_ms(*text) : std::nullopt;
    if (!ms)
        throw bad_request{400, "bad_data",
                          "invalid parameter \"step\": cannot parse \"" + (text ? *text : "") +
                              "\" to a valid duration"};
    return *ms;
}

std::shared_ptr<const expr> query_param(const params& p) {
    const std::string* text = param(p, "query");
    auto parsed = parse(text ? std::string_view(*text) : std::string_view{});
    if (!parsed)
        throw bad_request{400, "bad_data",
                          "invalid parameter \"query\": " + parsed.error().message};
    return *parsed;
}

// Prometheus' number text: shortest round trip without an exponent, NaN, +Inf, -Inf.
void append_value(std::string& out, double v) {
    out.push_back('"');
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[400];
        auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
        out.append(buf, r.ptr);
    }
    out.push_back('"');
}

// Milliseconds as seconds: 1700000000.5 -> "1700000000.5".
void append_time(std::string& out, int64_t ms) {
    if (ms < 0) {
        out.push_back('-');
        ms = -ms;
    }
    out += std::to_string(ms / 1000);
    int64_t frac = ms % 1000;
    if (frac == 0) return;
    char digits[4] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                      static_cast<char>('0' + frac % 10), 0};
    std::string_view d(digits, 3);
    while (d.back() == '0')
        d.remove_suffix(1);
    out.push_back('.');
    out.append(d);
}

void append_labels(std::string& out, const labels& ls) {
    out.push_back('{');
    for (size_t i = 0; i < ls.size(); ++i) {
        if (i) out.push_back(',');
        append_json_string(out, ls[i].first);
        out.push_back(':');
        append_json_string(out, ls[i].second);
    }
    out.push_back('}');
}

void append_point(std::string& out, int64_t ms, double v) {
    out.push_back('[');
    append_time(out, ms);
    out.push_back(',');
    append_value(out, v);
    out.push_back(']');
}

std::string success(std::string_view data_json) {
    std::string out = R"({"status":"success","data":)";
    out.append(data_json);
    out.push_back('}');
    return out;
}

std::string strings_json(const std::set<std::string>& values) {
    std::string out = "[";
    for (const auto& v : values) {
        if (out.size() > 1) out.push_back(',');
        append_json_string(out, v);
    }
    out.push_back(']');
    return out;
}

// The series that `match[]` selects (all numeric series without one); duplicates merged.
std::vector<selected_series> matched_series(const storage::engine& engine, const params& p,
                                            bool required) {
    auto selectors = params_named(p, "match[]");
    if (selectors.empty()) {
        if (required) throw bad_request{400, "bad_data", "no match[] parameter provided"};
        label_matcher any;
        any.name = "__name__";
        any.kind = label_matcher::op::regex;
        any.value = ".+";
        any.pattern = std::make_shared<const std::regex>("^(?:.+)$");
        return select_series(engine, {any});
    }
    std::vector<selected_series> out;
    std::set<storage::series_id> seen;
    for (const auto& text : selectors) {
        auto parsed = parse(text);
        if (!parsed)
            throw bad_request{400, "bad_data",
                              "invalid parameter \"match[]\": " + parsed.error().message};
        const expr& e = **parsed;
        if (e.node != expr::type::selector || e.sel.range_ms != 0 || e.sel.offset_ms != 0)
            throw bad_request{
                400, "bad_data",
                "invalid parameter \"match[]\": \"" + text + "\" is not a series selector"};
        for (auto& s : select_series(engine, e.sel.matchers))
            if (seen.insert(s.id).second) out.push_back(std::move(s));
    }
    return out;
}

template <typename F>
http::handler guarded(F&& body) {
    return [body = std::forward<F>(body)](http::request& req) -> http::response {
        try {
            return body(req, params_of(req));
        } catch (const bad_request& e) {
            return error_answer(e.status, e.type, e.message);
        }
    };
}

void add_both(http::router& routes, std::string_view path, std::string_view summary,
              const http::handler& h) {
    for (auto verb : {http::method::get, http::method::post})
        routes.add({verb, std::string(prefix) + std::string(path), std::string(summary),
                    http::permission::read, h});
}

}  // namespace

std::string to_json(const answer& a) {
    std::string out = R"({"status":"success","data":{"resultType":)";
    switch (a.type) {
        case answer::kind::scalar:
            out += R"("scalar","result":)";
            if (!a.series.empty() && !a.series[0].points.empty())
                append_point(out, a.series[0].points[0].first, a.series[0].points[0].second);
            out += "}}";
            return out;
        case answer::kind::vector:
            out += R"("vector","result":[)";
            break;
        case answer::kind::matrix:
            out += R"("matrix","result":[)";
            break;
    }
    bool first = true;
    for (const auto& s : a.series) {
        if (s.points.empty()) continue;
        if (!first) out.push_back(',');
        first = false;
        out += R"({"metric":)";
        append_labels(out, s.metric);
        if (a.type == answer::kind::vector) {
            out += R"(,"value":)";
            append_point(out, s.points[0].first, s.points[0].second);
        } else {
            out += R"(,"values":[)";
            for (size_t i = 0; i < s.points.size(); ++i) {
                if (i) out.push_back(',');
                append_point(out, s.points[i].first, s.points[i].second);
            }
            out.push_back(']');
        }
        out.push_back('}');
    }
    out += "]}}";
    return out;
}

void add_routes(http::router& routes, const storage::engine& engine, limits lim) {
    add_both(routes, "/query", "PromQL instant query (Prometheus API)",
             guarded([&engine, lim](http::request&, const params& p) {
                 auto e = query_param(p);
                 int64_t t = time_param(p, "time", now_ns() / 1'000'000);
                 auto a = evaluate(engine, *e, t, t, 1, true, lim);
                 if (!a) return error_answer(a.error());
                 return http::response::json(200, to_json(*a));
             }));
    add_both(routes, "/query_range", "PromQL range query (Prometheus API)",
             guarded([&engine, lim](http::request&, const params& p) {
                 auto e = query_param(p);
                 int64_t start = time_param(p, "start", std::nullopt);
                 int64_t end = time_param(p, "end", std::nullopt);
                 int64_t step = step_param(p);
                 auto a = evaluate(engine, *e, start, end, step, false, lim);
                 if (!a) return error_answer(a.error());
                 return http::response::json(200, to_json(*a));
             }));
    add_both(routes, "/series", "Series that match selectors (Prometheus API)",
             guarded([&engine](http::request&, const params& p) {
                 std::string data = "[";
                 for (const auto& s : matched_series(engine, p, true)) {
                     if (data.size() > 1) data.push_back(',');
                     append_labels(data, s.metric);
                 }
                 data.push_back(']');
                 return http::response::json(200, success(data));
             }));
    add_both(routes, "/labels", "Label names (Prometheus API)",
             guarded([&engine](http::request&, const params& p) {
                 std::set<std::string> names;
                 for (const auto& s : matched_series(engine, p, false))
                     for (const auto& l : s.metric)
                         names.insert(l.first);
                 return http::response::json(200, success(strings_json(names)));
             }));
    add_both(routes, "/label/{name}/values", "Values of one label (Prometheus API)",
             guarded([&engine](http::request& req, const params& p) {
                 std::string name(req.path_param("name"));
                 std::set<std::string> values;
                 for (const auto& s : matched_series(engine, p, false))
                     if (const std::string* v = label_value(s.metric, name)) values.insert(*v);
                 return http::response::json(200, success(strings_json(values)));
             }));
    add_both(routes, "/metadata", "Metric metadata (Prometheus API)",
             guarded([&engine](http::request&, const params& p) {
                 const std::string* only = param(p, "metric");
                 std::set<std::string> names;
                 for (const auto& s : matched_series(engine, {}, false))
                     if (const std::string* n = label_value(s.metric, "__name__");
                         n && (!only || only->empty() || *n == *only))
                         names.insert(*n);
                 std::string data = "{";
                 for (const auto& n : names) {
                     if (data.size() > 1) data.push_back(',');
                     append_json_string(data, n);
                     data += R"(:[{"type":"gauge","help":"","unit":""}])";
                 }
                 data.push_back('}');
                 return http::response::json(200, success(data));
             }));
    add_both(routes, "/status/buildinfo", "Build information (Prometheus API)",
             guarded([](http::request&, const params&) {
                 // `version` is the Prometheus API level whose answers these match, which is
                 // what Grafana reads to choose the features it uses (as VictoriaMetrics does).
                 return http::response::json(
                     200, success(R"({"version":"2.42.0","revision":"","branch":"",)"
                                  R"("buildUser":"clisonix","buildDate":"","goVersion":""})"));
             }));
}

}  // namespace clisonix::promql
