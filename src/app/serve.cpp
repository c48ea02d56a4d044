// `clisonix serve`: wires config, logs, metrics, the metadata store and the HTTP server.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "app/anomaly_scoring.h"
#include "app/app.h"
#include "auth/auth.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "meta/meta.h"
#include "observe/observe.h"
#include "query/query.h"
#include "storage/storage.h"

namespace clisonix::app {

namespace {

http::server_options server_options_from(const config::config& cfg) {
    http::server_options o;
    o.bind = cfg.get_string("http.bind");
    o.port = static_cast<uint16_t>(cfg.get_int("http.port"));
    o.threads = static_cast<int>(cfg.get_int("http.threads"));
    o.header_limit = static_cast<uint32_t>(cfg.get_int("http.header_limit"));
    o.body_limit = static_cast<uint64_t>(cfg.get_int("http.body_limit"));
    o.header_timeout = cfg.get_duration("http.header_timeout");
    o.idle_timeout = cfg.get_duration("http.idle_timeout");
    o.drain_timeout = cfg.get_duration("http.drain_timeout");
    o.max_connections = static_cast<int>(cfg.get_int("http.max_connections"));
    return o;
}

// Health, readiness, metrics and the API description: what operators and load balancers use.
void add_system_routes(http::router& routes, meta::store& store) {
    routes.add({http::method::get, "/healthz", "Liveness: the process answers",
                http::permission::open,
                [](http::request&) { return http::response::json(200, R"({"status":"ok"})"); }});
    routes.add({http::method::get, "/readyz", "Readiness: the metadata store answers",
                http::permission::open, [&store](http::request&) {
                    if (auto st = store.ping(); !st)
                        return http::response::error(503, "unavailable",
                                                     "metadata store: " + st.error().message);
                    return http::response::json(200, R"({"status":"ready"})");
                }});
    routes.add({http::method::get, "/metrics", "Prometheus metrics", http::permission::read,
                [](http::request&) {
                    return http::response::text(200, metrics::global().expose(),
                                                "text/plain; version=0.0.4; charset=utf-8");
                }});
    routes.add({http::method::get, "/api/v1/openapi.json", "This API's OpenAPI 3.1 description",
                http::permission::read, [&routes](http::request&) {
                    return http::response::json(
                        200, http::openapi_document(routes, "Clisonix API", version));
                }});
}

storage::options storage_options_from(const config::config& cfg, const std::string& data_dir) {
    storage::options o;
    o.dir = data_dir + "/tsdb";
    o.sync = cfg.get_string("storage.sync") == "interval" ? storage::options::sync_mode::interval
                                                          : storage::options::sync_mode::always;
    o.sync_interval = cfg.get_duration("storage.sync_interval");
    o.retention_ns = cfg.get_int("storage.retention") * 1'000'000;
    o.out_of_order_window_ns = cfg.get_int("storage.out_of_order_window") * 1'000'000;
    o.max_head_bytes = static_cast<uint64_t>(cfg.get_int("storage.max_head"));
    o.max_series = static_cast<uint64_t>(cfg.get_int("storage.max_series"));
    return o;
}

ingest::limits ingest_limits_from(const config::config& cfg) {
    ingest::limits l;
    l.max_line_bytes = static_cast<uint64_t>(cfg.get_int("ingest.max_line_bytes"));
    l.max_points_per_request = static_cast<uint64_t>(cfg.get_int("ingest.max_points_per_request"));
    l.max_series_per_request = static_cast<uint64_t>(cfg.get_int("ingest.max_series_per_request"));
    l.max_body_bytes = static_cast<uint64_t>(cfg.get_int("http.body_limit"));
    return l;
}

// Operating the engine by hand: statistics, flush and compaction.
void add_storage_routes(http::router& routes, storage::engine& engine) {
    routes.add({http::method::get, "/api/v1/storage/stats",
                "Series, points, head points, bytes on disk, partitions", http::permission::read,
                [&engine](http::request&) {
                    auto st = engine.statistics();
                    return http::response::json(
                        200, "{\"series\":" + std::to_string(st.series) +
                                 ",\"points\":" + std::to_string(st.points) +
                                 ",\"head_points\":" + std::to_string(st.head_points) +
                                 ",\"disk_bytes\":" + std::to_string(st.disk_bytes) +
                                 ",\"partitions\":" + std::to_string(st.partitions) + "}");
                }});
    routes.add({http::method::post, "/api/v1/storage/flush",
                "Move every buffered point into blocks", http::permission::admin,
                [&engine](http::request&) {
                    if (auto st = engine.flush(); !st)
                        return http::response::from_error(503, st.error());
                    return http::response::no_content();
                }});
    routes.add({http::method::post, "/api/v1/storage/compact",
                "Flush, merge parts and apply retention now", http::permission::admin,
                [&engine](http::request&) {
                    if (auto st = engine.flush(); !st)
                        return http::response::from_error(503, st.error());
                    if (auto st = engine.compact(); !st)
                        return http::response::from_error(503, st.error());
                    return http::response::no_content();
                }});
}

// The order matters: the client address is settled before anything logs or counts it; CORS
// answers preflights before authentication; the login limit counts by address before the
// credentials are checked; the per-user and per-device limits need the principal.
std::vector<http::middleware> middleware_chain(const gateway::settings& gw,
                                               std::shared_ptr<gateway::rate_limiter> limiter,
                                               auth::auth_service& auth,
                                               const http::router& routes) {
    gateway::key_function by_principal = [](const http::request& r) -> std::string {
        const auto* p = auth::current_principal(r);
        if (!p) return gateway::key_by_client_address(r);
        return p->kind == auth::principal_kind::api_key ? "key:" + p->id : "user:" + p->name;
    };
    gateway::key_function by_device = [](const http::request& r) -> std::string {
        const auto* p = auth::current_principal(r);
        return p && !p->device.empty() ? "device:" + p->device : gateway::key_by_client_address(r);
    };
    return {gateway::client_address(gw.trusted_proxies),
            http::observe_requests(),
            gateway::cors(gw.cors_origins),
            gateway::rate_limit(limiter, gateway::login_policy(gw)),
            auth::authenticate(auth),
            gateway::rate_limit(limiter, gateway::api_policy(gw, by_principal)),
            gateway::rate_limit(limiter, gateway::device_policy(gw, by_device)),
            gateway::validate_json(routes)};
}

// A device's access token: issued on first call, rotated on each later one, shown once.
void add_device_token_routes(http::router& routes, auth::auth_service& auth) {
    routes.add({http::method::post, "/api/v1/devices/{device}/token",
                "Issue or rotate a device's access token (shown once)", http::permission::devices,
                [&auth](http::request& req) {
                    const auto* p = auth::current_principal(req);
                    auth::actor by{p ? p->name : "anonymous", req.remote_address};
                    auto device = req.path_param("device");
                    auto token = auth.issue_device_token(device, by);
                    if (!token && token.error().code == "conflict")
                        token = auth.rotate_device_token(device, by);
                    if (!token)
                        return http::response::from_error(
                            token.error().code == "invalid_argument" ? 400 : 503, token.error());
                    return http::response::json(201, "{\"device\":\"" + std::string(device) +
                                                         "\",\"token\":\"" + *token + "\"}");
                }});
}

// Routes the integration tests need and users never see: only with CLISONIX_TEST_ROUTES=1.
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

}  // namespace

int serve(const config::config& cfg) {
    const std::string data_dir = cfg.get_string("data.dir");
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
        std::cerr << "serve: cannot create data directory " << data_dir << ": " << ec.message()
                  << "\n";
        return exit_failure;
    }

    log::options log_opts;
    log_opts.dir = cfg.get_bool("log.file") ? data_dir + "/logs" : "";
    log_opts.keep_days = static_cast<int>(cfg.get_int("log.keep_days"));
    log_opts.min_level = log::parse_level(cfg.get_string("log.level"));
    try {
        log::init(log_opts);
    } catch (const std::exception& e) {
        std::cerr << "serve: cannot open the log in " << log_opts.dir << ": " << e.what() << "\n";
        return exit_failure;
    }
    log::info("starting", {{"version", version}, {"commit", commit}, {"data_dir", data_dir}});

    auto store = meta::open(cfg.get_string("meta.url"), data_dir);
    if (!store) {
        log::error("metadata store unavailable", {{"error", store.error().message}});
        log::shutdown();
        return exit_failure;
    }
    log::info("metadata store ready", {{"backend", (*store)->backend()}});

    auto auth_opts = auth::options_from(cfg);
    if (!auth_opts) {
        std::cerr << auth_opts.error().message << "\n";
        log::shutdown();
        return auth_opts.error().code == "invalid_config" ? exit_usage : exit_failure;
    }
    auth::auth_service auth(**store, *auth_opts);
    const char* admin_password = std::getenv("CLISONIX_ADMIN_PASSWORD");
    auto generated = auth.ensure_admin(
        admin_password ? std::optional<std::string_view>(admin_password) : std::nullopt);
    if (!generated) {
        std::cerr << "serve: CLISONIX_ADMIN_PASSWORD: " << generated.error().message << "\n";
        log::shutdown();
        return exit_usage;
    }
    // Shown once, on the console only: the log file never holds a password.
    if (*generated)
        std::cout << "Created the first user: admin, password " << **generated
                  << "\n(change it with `clisonix user passwd admin`)" << std::endl;

    metrics::add_process_metrics(metrics::global(), version, commit);

    auto engine = storage::engine::open(storage_options_from(cfg, data_dir));
    if (!engine) {
        log::error("time-series engine unavailable", {{"error", engine.error().message}});
        log::shutdown();
        return exit_failure;
    }
    ingest::pipeline pipeline(**engine);
    std::unique_ptr<anomaly_scoring> scoring;
    if (const auto& detector = cfg.get_string("analytics.detector"); detector != "off") {
        auto names = analytics::detector_names();
        if (std::find(names.begin(), names.end(), detector) == names.end()) {
            std::string known;
            for (auto n : names)
                known += (known.empty() ? "" : ", ") + std::string(n);
            std::cerr << "config: analytics.detector = \"" << detector
                      << "\": must be off or one of " << known << "\n";
            log::shutdown();
            return exit_usage;
        }
        scoring = std::make_unique<anomaly_scoring>(
            **engine, detector, cfg.get_string("analytics.metrics"),
            static_cast<size_t>(cfg.get_int("storage.max_series")));
        pipeline.add_listener([&scoring](const storage::write_batch& b) { scoring->enqueue(b); });
    }

    http::router routes;
    add_system_routes(routes, **store);
    auth.add_routes(routes);
    add_storage_routes(routes, **engine);
    ingest::add_routes(routes, pipeline, ingest_limits_from(cfg));
    ingest::add_device_routes(routes, pipeline, ingest_limits_from(cfg),
                              [](const http::request& req) {
                                  const auto* p = auth::current_principal(req);
                                  return p ? p->device : std::string();
                              });
    add_device_token_routes(routes, auth);
    query::add_routes(routes, **engine);
    add_test_routes(routes);

    auto gw = gateway::load_settings(cfg);
    if (!gw) {
        std::cerr << gw.error().message << "\n";
        log::shutdown();
        return exit_usage;
    }
    auto opts = server_options_from(cfg);
    gateway::configure_server(*gw, opts);
    auto limiter = gateway::rate_limiter::create({.redis_url = gw->redis_url});
    if (!limiter) {
        std::cerr << limiter.error().message << "\n";
        log::shutdown();
        return exit_usage;
    }
    http::server server(opts, routes, middleware_chain(*gw, *limiter, auth, routes));
    if (auto st = server.listen(); !st) {
        log::error("cannot start the HTTP server", {{"error", st.error().message}});
        log::shutdown();
        return exit_failure;
    }
    log::info("listening", {{"bind", opts.bind}, {"port", opts.port}});
    std::cout << "Clisonix " << version << " listening on http://" << opts.bind << ":" << opts.port
              << std::endl;

    bool drained = server.run(/*handle_signals=*/true);
    if (!drained) {
        // A handler outlived the drain time. Its thread still uses the server, the routes
        // and the store, so none of them may be destroyed: flush the log and leave now.
        log::warn("stopped with a request still being handled after the drain time");
        log::shutdown();
        std::cout.flush();
        std::_Exit(exit_ok);
    }
    log::info("stopped");
    log::shutdown();
    return exit_ok;
}

int manage_users(const config::config& cfg, const auth::user_command& cmd) {
    const std::string data_dir = cfg.get_string("data.dir");
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    auto store = meta::open(cfg.get_string("meta.url"), data_dir);
    if (!store) {
        std::cerr << "user: metadata store unavailable: " << store.error().message << "\n";
        return exit_failure;
    }
    auto opts = auth::options_from(cfg);
    if (!opts) {
        std::cerr << opts.error().message << "\n";
        return exit_usage;
    }
    return auth::run_user_command(**store, *opts, cmd, std::cout, std::cerr);
}

}  // namespace clisonix::app
