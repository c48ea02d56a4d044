// GET|POST /query: InfluxDB 1.x's query endpoint. Credentials (u/p, Basic, Token, Bearer)
// are the auth middleware's; this file reads the parameters and answers.
#include "common/json_text.h"
#include "common/time.h"
#include "http/http.h"
#include "influxql/influxql.h"

namespace clisonix::influxql {

namespace {

http::response influx_error(int status, std::string_view message) {
    std::string body = "{\"error\":";
    append_json_string(body, message);
    body += '}';
    return http::response::json(status, std::move(body));
}

http::response handle(const http::request& req, const storage::engine& engine, int64_t max_points,
                      int64_t retention_ns) {
    auto params = req.query;
    // Grafana's POST method and InfluxDB clients send the parameters as a form body.
    if (req.verb == http::method::post &&
        req.header("content-type").starts_with("application/x-www-form-urlencoded"))
        http::add_form_params(req.body, params);
    auto param = [&](std::string_view name) -> std::string {
        auto it = params.find(name);
        return it == params.end() ? std::string() : it->second;
    };
    const std::string q = param("q");
    if (q.empty()) return influx_error(400, "missing required parameter \"q\"");
    options opts;
    opts.now_ns = now_ns();
    opts.max_points = max_points;
    opts.retention_ns = retention_ns;
    opts.epoch = param("epoch");
    if (!opts.epoch.empty() && opts.epoch != "ns" && opts.epoch != "u" && opts.epoch != "µ" &&
        opts.epoch != "ms" && opts.epoch != "s" && opts.epoch != "m" && opts.epoch != "h")
        return influx_error(400,
                            "epoch \"" + opts.epoch + "\" is not one of ns, u, µ, ms, s, m, h");
    opts.pretty = param("pretty") == "true";
    // Bound parameters ($name in the query) are not substituted: a query naming one would
    // otherwise be answered for the wrong text. An empty set (node-influx sends `{}`) is fine.
    if (auto bound = param("params"); !bound.empty() && bound != "{}")
        return influx_error(400, "unsupported InfluxQL: bound parameters (params)");
    // `chunked=true` is answered in one piece: a single JSON object is a valid chunked
    // stream of one chunk for InfluxDB 1.x clients, and answers are capped by max_points.
    auto out = run(engine, q, opts);
    return http::response::json(out.status, std::move(out.body));
}

}  // namespace

void add_routes(http::router& routes, const storage::engine& engine, int64_t max_points,
                int64_t retention_ns) {
    const auto* r = http::permission::read;
    for (auto verb : {http::method::get, http::method::post})
        routes.add({verb, "/query",
                    "InfluxDB 1.x query: InfluxQL SELECT and SHOW (?q=..&db=..&epoch=ms)", r,
                    [&engine, max_points, retention_ns](http::request& req) {
                        return handle(req, engine, max_points, retention_ns);
                    }});
}

}  // namespace clisonix::influxql
