// `clisonix serve`: wires config, logs, metrics, the metadata store and the HTTP server.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "app/app.h"
#include "http/http.h"
#include "meta/meta.h"
#include "observe/observe.h"

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

    metrics::add_process_metrics(metrics::global(), version, commit);

    http::router routes;
    add_system_routes(routes, **store);
    add_test_routes(routes);

    auto opts = server_options_from(cfg);
    http::server server(opts, routes, {http::observe_requests()});
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

}  // namespace clisonix::app
