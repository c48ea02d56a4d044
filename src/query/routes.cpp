// The query API: /api/v1/query, /api/v1/last, /api/v1/series.
#include <algorithm>
#include <chrono>

#include "common/time.h"
#include "http/http.h"
#include "query/query.h"

namespace clisonix::query {

namespace {

bool wants_csv(const http::request& req) {
    return req.header("accept").find("text/csv") != std::string_view::npos ||
           req.query_param("format") == "csv";
}

http::response answer(const http::request& req, const std::vector<series_result>& results) {
    if (wants_csv(req)) return http::response::text(200, to_csv(results), "text/csv");
    return http::response::json(200, to_json(results));
}

// `format` is a presentation choice, not part of the query language; `asset` is resolved
// by the routes (to_spec), not by parse_spec.
std::map<std::string, std::string, std::less<>> query_params(const http::request& req) {
    auto params = req.query;
    params.erase("format");
    params.erase("asset");
    return params;
}

// The spec of a request: its parameters, and `asset` turned into the devices under it.
result<spec> to_spec(const http::request& req, const devices_under_fn& devices_under) {
    auto s = parse_spec(query_params(req), now_ns());
    if (!s) return s;
    auto asset = req.query.find("asset");
    if (asset == req.query.end()) return s;
    if (auto st = restrict_to_asset(*s, asset->second, devices_under); !st) return st.error();
    return s;
}

}  // namespace

status restrict_to_asset(spec& s, std::string_view asset, const devices_under_fn& devices_under) {
    if (!devices_under)
        return make_error("invalid_argument", "asset: this server has no asset graph", "asset");
    auto names = devices_under(asset);
    if (!names) {
        auto e = names.error();
        e.field = "asset";
        return e;
    }
    std::sort(names->begin(), names->end());
    s.devices = std::move(*names);
    return {};
}

void add_routes(http::router& routes, const storage::engine& engine, devices_under_fn devices_under,
                int64_t max_points) {
    routes.add({http::method::get, "/api/v1/query",
                "Points, bucketed aggregates and top-k over the series that match",
                http::permission::read, [&engine, devices_under, max_points](http::request& req) {
                    auto s = to_spec(req, devices_under);
                    if (!s) return http::response::from_error(s.error());
                    s->max_points = max_points;
                    auto results = run(engine, *s);
                    if (!results) return http::response::from_error(results.error());
                    return answer(req, *results);
                }});

    routes.add({http::method::get, "/api/v1/last", "The latest value of each metric of a device",
                http::permission::read, [&engine, devices_under](http::request& req) {
                    if (req.query_param("device").empty() && req.query_param("asset").empty())
                        return http::response::error(400, "invalid_argument", "device: required",
                                                     "device");
                    auto s = to_spec(req, devices_under);
                    if (!s) return http::response::from_error(s.error());
                    return answer(req, last_values(engine, *s));
                }});

    routes.add({http::method::get, "/api/v1/series", "The series that match, with their tags",
                http::permission::read, [&engine, devices_under](http::request& req) {
                    auto s = to_spec(req, devices_under);
                    if (!s) return http::response::from_error(s.error());
                    return http::response::json(200, series_to_json(select(engine, *s)));
                }});
}

}  // namespace clisonix::query
