// The query API: /api/v1/query, /api/v1/last, /api/v1/series.
#include <chrono>

#include "http/http.h"
#include "query/query.h"

namespace clisonix::query {

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int status_for(const error& e) {
    if (e.code == "invalid_argument") return 400;
    if (e.code == "not_found") return 404;
    if (e.code == "unavailable" || e.code == "overloaded") return 503;
    return 500;
}

bool wants_csv(const http::request& req) {
    return req.header("accept").find("text/csv") != std::string_view::npos ||
           req.query_param("format") == "csv";
}

http::response answer(const http::request& req, const std::vector<series_result>& results) {
    if (wants_csv(req)) return http::response::text(200, to_csv(results), "text/csv");
    return http::response::json(200, to_json(results));
}

// `format` is a presentation choice, not part of the query language.
std::map<std::string, std::string, std::less<>> query_params(const http::request& req) {
    auto params = req.query;
    params.erase("format");
    return params;
}

}  // namespace

void add_routes(http::router& routes, const storage::engine& engine) {
    routes.add({http::method::get, "/api/v1/query",
                "Points, bucketed aggregates and top-k over the series that match",
                http::permission::read, [&engine](http::request& req) {
                    auto s = parse_spec(query_params(req), now_ns());
                    if (!s) return http::response::from_error(400, s.error());
                    auto results = run(engine, *s);
                    if (!results)
                        return http::response::from_error(status_for(results.error()),
                                                          results.error());
                    return answer(req, *results);
                }});

    routes.add({http::method::get, "/api/v1/last", "The latest value of each metric of a device",
                http::permission::read, [&engine](http::request& req) {
                    if (req.query_param("device").empty())
                        return http::response::error(400, "invalid_argument", "device: required",
                                                     "device");
                    auto s = parse_spec(query_params(req), now_ns());
                    if (!s) return http::response::from_error(400, s.error());
                    return answer(req, last_values(engine, *s));
                }});

    routes.add({http::method::get, "/api/v1/series", "The series that match, with their tags",
                http::permission::read, [&engine](http::request& req) {
                    auto s = parse_spec(query_params(req), now_ns());
                    if (!s) return http::response::from_error(400, s.error());
                    return http::response::json(200, series_to_json(select(engine, *s)));
                }});
}

}  // namespace clisonix::query
