// The routes `clisonix serve` declares itself: health, readiness, metrics, the API
// description, the engine's maintenance, machine health per device, and the test routes.
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "app/app.h"
#include "app/services.h"
#include "auth/routes.h"
#include "common/json_text.h"
#include "common/time.h"
#include "observe/observe.h"
#include "query/query.h"

namespace clisonix::app {

namespace {

// The body of a retraining request: {"from", "to"}, each RFC 3339 text or epoch ms, from
// before to. Returns [from, to) in ns.
result<std::pair<int64_t, int64_t>> baseline_window(std::string_view text) {
    boost::json::error_code ec;
    auto body = boost::json::parse(text, ec);
    if (ec || !body.is_object())
        return make_error("invalid_argument", "body: expected a JSON object {\"from\", \"to\"}",
                          "body");
    for (const auto& [k, v] : body.as_object())
        if (k != "from" && k != "to")
            return make_error("invalid_argument", std::string(k) + ": unknown field (from, to)",
                              std::string(k));
    const int64_t now = now_ns();
    int64_t bounds[2] = {0, 0};
    const char* fields[2] = {"from", "to"};
    for (int i = 0; i < 2; ++i) {
        const auto* v = body.as_object().if_contains(fields[i]);
        if (!v)
            return make_error("invalid_argument", std::string(fields[i]) + ": required", fields[i]);
        if (v->is_int64() || v->is_uint64()) {
            bounds[i] = v->to_number<int64_t>() * 1'000'000;
        } else if (v->is_string()) {
            auto t = query::parse_time(std::string(v->as_string()), now, fields[i]);
            if (!t) return t.error();
            bounds[i] = *t;
        } else {
            return make_error(
                "invalid_argument",
                std::string(fields[i]) + ": expected RFC 3339 text or epoch milliseconds",
                fields[i]);
        }
    }
    if (bounds[0] >= bounds[1])
        return make_error("invalid_argument", "to: must be after from", "to");
    return std::pair<int64_t, int64_t>{bounds[0], bounds[1]};
}

// The health of a device that has no model: off (its type says so) or still learning.
std::string health_without_model(const std::string& name, const device_analytics& settings) {
    std::string out = "{\"device\":";
    append_json_string(out, name);
    if (!settings.health) {
        out +=
            ",\"state\":\"off\",\"baseline\":null,\"score\":null,\"at\":null,"
            "\"contributions\":[],\"metrics\":[],\"rows_scored\":0,\"state_bytes\":0}";
        return out;
    }
    out +=
        ",\"state\":\"learning\",\"progress\":{\"fraction\":0,\"rows\":0,"
        "\"min_rows\":" +
        std::to_string(analytics::health_model::min_baseline_rows()) +
        ",\"elapsed_ms\":0,\"baseline_ms\":" +
        std::to_string(settings.health_baseline_ns / 1'000'000) +
        "},\"baseline\":null,\"score\":null,\"at\":null,\"contributions\":[],"
        "\"metrics\":[],\"rows_scored\":0,\"state_bytes\":0}";
    return out;
}

}  // namespace

status readiness(meta::store& store, storage::engine& engine,
                 const cluster::telemetry_log* cluster_log) {
    if (auto st = store.ping(); !st)
        return make_error("unavailable", "metadata store: " + st.error().message);
    if (auto st = engine.writable(); !st)
        return make_error(st.error().code, "storage: " + st.error().message);
    if (cluster_log) {
        if (auto st = cluster_log->ready(); !st)
            return make_error(st.error().code, "cluster: " + st.error().message);
        if (auto st = cluster_log->caught_up(); !st)
            return make_error(st.error().code, "cluster: " + st.error().message);
    }
    return {};
}

void add_system_routes(http::router& routes, meta::store& store, storage::engine& engine,
                       const cluster::telemetry_log* cluster_log) {
    routes.add({http::method::get, "/healthz", "Liveness: the process answers",
                http::permission::open,
                [](http::request&) { return http::response::json(200, R"({"status":"ok"})"); }});
    routes.add({http::method::get, "/readyz",
                "Readiness: the metadata store answers, the storage engine takes writes and, in "
                "a cluster, this node holds every message of the telemetry log (503 naming the "
                "reason, e.g. a full file system, otherwise)",
                http::permission::open, [&store, &engine, cluster_log](http::request&) {
                    if (auto st = readiness(store, engine, cluster_log); !st)
                        return http::response::error(503, st.error().code, st.error().message);
                    return http::response::json(200, R"({"status":"ready"})");
                }});
    routes.add({http::method::get, "/metrics", "Prometheus metrics", http::permission::read,
                [](http::request&) {
                    return http::response::text(200, metrics::global().expose(),
                                                "text/plain; version=0.0.4; charset=utf-8");
                }});
    // Public: it describes the public API (routes and their permissions, no data), and a
    // newcomer or a client generator reads it before holding a token (docs/decisions).
    routes.add({http::method::get, "/api/v1/openapi.json", "This API's OpenAPI 3.1 description",
                http::permission::open, [&routes](http::request&) {
                    return http::response::json(
                        200, http::openapi_document(routes, "Clisonix API", version));
                }});
}

void add_storage_routes(http::router& routes, storage::engine& engine) {
    routes.add(
        {http::method::get, "/api/v1/storage/stats",
         "Series, points, head points, bytes on disk (rollups among them), partitions, and what "
         "queries read since start: points decoded, rollup rows used instead",
         http::permission::read, [&engine](http::request&) {
             auto st = engine.statistics();
             return http::response::json(
                 200, "{\"series\":" + std::to_string(st.series) +
                          ",\"points\":" + std::to_string(st.points) +
                          ",\"head_points\":" + std::to_string(st.head_points) +
                          ",\"disk_bytes\":" + std::to_string(st.disk_bytes) +
                          ",\"partitions\":" + std::to_string(st.partitions) +
                          ",\"rollup_bytes\":" + std::to_string(st.rollup_bytes) +
                          ",\"query_points_decoded\":" + std::to_string(st.query_points_decoded) +
                          ",\"query_rollup_rows_read\":" +
                          std::to_string(st.query_rollup_rows_read) + "}");
         }});
    routes.add({http::method::post, "/api/v1/storage/flush",
                "Move every buffered point into blocks", http::permission::admin,
                [&engine](http::request&) {
                    if (auto st = engine.flush(); !st)
                        return http::response::from_error(st.error());
                    return http::response::no_content();
                }});
    routes.add({http::method::post, "/api/v1/storage/compact",
                "Flush, merge parts and apply retention now", http::permission::admin,
                [&engine](http::request&) {
                    if (auto st = engine.flush(); !st)
                        return http::response::from_error(st.error());
                    if (auto st = engine.compact(); !st)
                        return http::response::from_error(st.error());
                    return http::response::no_content();
                }});
}

void add_health_routes(http::router& routes, anomaly_scoring& scoring, devices::registry& registry,
                       std::function<device_analytics(std::string_view)> settings_of) {
    // The device's name: a registered device by name or id, else a device that has sent data
    // (telemetry needs no registration).
    auto device_name = [&registry, &scoring](std::string_view ref) -> std::optional<std::string> {
        if (auto d = registry.get_device(ref)) return d->name;
        if (scoring.health().status_json(ref)) return std::string(ref);
        return std::nullopt;
    };
    auto not_found = [](std::string_view ref) {
        return http::response::error(404, "not_found", "No device " + std::string(ref), "device");
    };
    routes.add({http::method::get, "/api/v1/devices/{device}/health",
                "Machine health: state (learning, trained, off), baseline window, latest score "
                "and contributions per metric (largest first)",
                http::permission::read, [=, &scoring](http::request& req) {
                    auto name = device_name(req.path_param("device"));
                    if (!name) return not_found(req.path_param("device"));
                    const auto settings = settings_of(*name);
                    if (settings.health)
                        if (auto j = scoring.health().status_json(*name))
                            return http::response::json(200, std::move(*j));
                    return http::response::json(200, health_without_model(*name, settings));
                }});
    routes.add({http::method::post, "/api/v1/devices/{device}/health/baseline",
                "Retrain the device's health model on a stored window {\"from\", \"to\"} (RFC 3339 "
                "or epoch ms); kept and retrained again at every start",
                http::permission::devices, [=, &scoring, &registry](http::request& req) {
                    auto name = device_name(req.path_param("device"));
                    if (!name) return not_found(req.path_param("device"));
                    auto window = baseline_window(req.body);
                    if (!window) return http::response::from_error(window.error());
                    const auto [from, to] = *window;
                    auto settings = settings_of(*name);
                    if (!settings.health)
                        return http::response::error(409, "conflict",
                                                     "Machine health is off for device " + *name +
                                                         " (its type's analytics.health)",
                                                     "device");
                    auto rows = scoring.health().retrain(
                        *name, from, to, [&settings](std::string_view field) {
                            return metric_included(settings, field);
                        });
                    if (!rows) return http::response::from_error(rows.error());
                    const auto* p = auth::current_principal(req);
                    devices::health_baseline b{*name, from / 1'000'000, to / 1'000'000,
                                               p ? p->name : "anonymous", 0};
                    if (auto st = registry.set_health_baseline(b); !st)
                        return http::response::from_error(st.error());
                    auto status = scoring.health().status_json(*name);
                    std::string out = "{\"rows\":" + std::to_string(*rows) +
                                      ",\"health\":" + (status ? *status : std::string("null")) +
                                      "}";
                    return http::response::json(200, std::move(out));
                }});
}

void add_test_routes(http::router& routes) {
    const char* enabled = std::getenv("CLISONIX_TEST_ROUTES");
    if (!enabled || std::string_view(enabled) != "1") return;
    routes.add({http::method::get, "/api/v1/test/sleep", "Answers after ?ms= milliseconds",
                http::permission::open, [](http::request& req) {
                    int ms = std::atoi(std::string(req.query_param("ms", "0")).c_str());
                    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
                    return http::response::json(200, R"({"slept_ms":)" + std::to_string(ms) + "}");
                }});
}

}  // namespace clisonix::app
