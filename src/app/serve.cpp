// `clisonix serve`: the server's life in order (the parts are in services.h).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stop_token>
#include <thread>

#include "app/app.h"
#include "app/services.h"
#include "app/web_assets.h"
#include "ask/ask.h"
#include "auth/routes.h"
#include "forecast/routes.h"
#include "gateway/gateway.h"
#include "influxql/influxql.h"
#include "live/routes.h"
#include "observe/observe.h"
#include "promql/promql.h"
#include "query/query.h"
#include "rules/routes.h"

namespace clisonix::app {

namespace {

// The data directory and the log (JSON lines in <data.dir>/logs when log.file).
std::optional<int> start_logging(const config::config& cfg, const std::string& data_dir) {
    // Everything the server creates (meta.db and its WAL, keys, logs, time-series files) is
    // this user's alone: 0700 directories, 0600 files.
    ::umask(077);
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
        std::cerr << "serve: cannot create data directory " << data_dir << ": " << ec.message()
                  << "\n";
        return exit_failure;
    }
    // A data directory from an older version (or copied in) may still be readable by others.
    const auto loosened = meta::restrict_data_dir(data_dir);
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
    for (size_t i = 0; i < loosened.size() && i < 20; ++i)
        log::warn("data directory permissions tightened",
                  {{"path", loosened[i].path}, {"from", loosened[i].from}, {"to", loosened[i].to}});
    if (loosened.size() > 20)
        log::warn("data directory permissions tightened on more paths",
                  {{"count", static_cast<int64_t>(loosened.size() - 20)}});
    return std::nullopt;
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

// Failed logins and lockouts in the limiter's Redis (redis.url), so that they hold on every
// node behind one address.
class login_failures final : public auth::shared_failures {
public:
    explicit login_failures(std::shared_ptr<gateway::rate_limiter> limiter)
        : _limiter(std::move(limiter)) {}
    std::optional<int64_t> count(std::string_view key, std::chrono::milliseconds window) override {
        return _limiter->count(key, window);
    }
    std::optional<bool> lock(std::string_view key, std::chrono::milliseconds duration) override {
        return _limiter->lock(key, duration);
    }
    std::optional<std::chrono::milliseconds> locked_for(std::string_view key) override {
        return _limiter->locked_for(key);
    }
    void forget(std::string_view key) override { _limiter->forget(key); }

private:
    std::shared_ptr<gateway::rate_limiter> _limiter;
};

// systemd's notification protocol (sd_notify(3)): one datagram to the unix socket named by
// $NOTIFY_SOCKET ('@' = the abstract namespace). False when no service manager listens.
bool notify_service_manager(std::string_view state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || (path[0] != '/' && path[0] != '@')) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const size_t length = std::strlen(path);
    if (length >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path, length);
    if (path[0] == '@') addr.sun_path[0] = '\0';
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const auto sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&addr),
                               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length));
    ::close(fd);
    return sent == static_cast<ssize_t>(state.size());
}

// Under systemd (Type=notify), READY=1 once /readyz would answer ready, so that units
// ordered after clisonix.service, and `systemctl start`, wait for a node that serves. Checked
// every 100 ms while the HTTP server already accepts (a cluster node may still be catching
// up on the telemetry log).
std::jthread tell_systemd_when_ready(services& s) {
    if (std::getenv("NOTIFY_SOCKET") == nullptr) return {};
    return std::jthread([&s](std::stop_token stop) {
        std::string reason;  // shown by `systemctl status` while not ready
        while (!stop.stop_requested()) {
            auto ready = readiness(*s.store, *s.engine, s.cluster_log.get());
            if (ready) {
                if (!notify_service_manager("READY=1\nSTATUS=ready"))
                    log::warn("could not tell systemd that the node is ready",
                              {{"socket", std::getenv("NOTIFY_SOCKET")}});
                return;
            }
            if (ready.error().message != reason) {
                reason = ready.error().message;
                notify_service_manager("STATUS=not ready: " + reason);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
}

// In a cluster, a node that has not yet applied what the log held when it started answers
// 503 to everything but the probes and /metrics, so that a load balancer (nginx passes a GET
// on to the next node on 503) sends nobody to the hole its downtime left.
http::middleware cluster_gate(const cluster::telemetry_log& log) {
    return [&log](http::request& req, const http::next& call_next) {
        if (req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics")
            return call_next(req);
        if (auto st = log.caught_up(); !st) {
            auto r = http::response::error(503, st.error().code, st.error().message);
            r.headers.emplace_back("Retry-After", "1");
            return r;
        }
        return call_next(req);
    };
}

// Serves until SIGTERM/SIGINT: the gateway, the HTTP server, then the MQTT port and the
// notification dispatcher; stops them in reverse.
int run_server(const config::config& cfg, services& s, const http::router& routes) {
    auto fail = [](int code) {
        log::shutdown();
        return code;
    };
    auto gw = gateway::load_settings(cfg);
    if (!gw) {
        std::cerr << gw.error().message << "\n";
        return fail(exit_usage);
    }
    auto opts = http::server_options_from(cfg);
    gateway::configure_server(*gw, opts);
    // Password hashing runs in its own small pool, and credentials are checked before a
    // body is read (http.h).
    opts.heavy_threads = static_cast<int>(cfg.get_int("auth.login_threads"));
    opts.heavy_queue = static_cast<int>(cfg.get_int("auth.login_queue"));
    opts.check_header = auth::check_before_body(*s.auth);
    auto limiter = gateway::rate_limiter::create({.redis_url = gw->redis_url});
    if (!limiter) {
        std::cerr << limiter.error().message << "\n";
        return fail(exit_usage);
    }
    if (!gw->redis_url.empty()) s.auth->share_failures(std::make_shared<login_failures>(*limiter));
    auto chain = middleware_chain(*gw, *limiter, *s.auth, routes);
    if (s.cluster_log) chain.insert(chain.begin() + 2, cluster_gate(*s.cluster_log));
    // Last: the dashboard answers only what no route matched (GET /, /assets/*, client routes).
    chain.push_back(serve_web(web_directory(cfg)));
    http::server server(opts, routes, std::move(chain));
    if (auto st = server.listen(); !st) {
        log::error("cannot start the HTTP server", {{"error", st.error().message}});
        return fail(exit_failure);
    }
    log::info("listening", {{"bind", opts.bind}, {"port", opts.port}});
    // Once the HTTP port is ours, so that a taken HTTP port is reported as such.
    if (s.mqtt_broker) {
        if (auto st = s.mqtt_broker->start(); !st) {
            log::error("cannot start the MQTT broker", {{"error", st.error().message}});
            std::cerr << st.error().message << "\n";
            return fail(st.error().code == errc::invalid_config ? exit_usage : exit_failure);
        }
        log::info("mqtt listening",
                  {{"bind", cfg.get_string("mqtt.bind")}, {"port", s.mqtt_broker->port()}});
    }
    if (s.coap_server) {
        if (auto st = s.coap_server->start(); !st) {
            log::error("cannot start the CoAP endpoint", {{"error", st.error().message}});
            std::cerr << st.error().message << "\n";
            return fail(st.error().code == errc::invalid_config ? exit_usage : exit_failure);
        }
        log::info("coap listening",
                  {{"bind", cfg.get_string("coap.bind")}, {"port", s.coap_server->port()}});
    }
    std::cout << "Clisonix " << version << " listening on http://" << opts.bind << ":" << opts.port
              << std::endl;

    s.notifier->start();
    if (cfg.get_bool("connectors.run"))
        if (auto st = s.connectors->start(); !st)
            log::warn("connectors not started", {{"error", st.error().message}});
    auto ready_notice = tell_systemd_when_ready(s);
    bool drained = server.run(/*handle_signals=*/true);
    ready_notice.request_stop();
    notify_service_manager("STOPPING=1");
    // Undelivered notifications stay in the outbox for the next start. First, so that no
    // delivery publishes through a broker that is stopping. The change feed before it: its
    // handlers reload and wake the parts that are stopping now.
    s.changes.reset();
    if (s.cluster_log) s.cluster_log->stop_notices();  // as the change feed, for the same reason
    s.notifier->stop();
    s.connectors->stop();  // before the engine closes: a poll in progress writes its batch
    if (s.mqtt_broker)
        s.mqtt_broker->stop();  // before the engine closes: its last batch is written
    if (s.coap_server) s.coap_server->stop();  // before the engine closes, as the broker
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

// Writes an audit entry for a rule or alarm change made through the API.
rules::audit_fn audit_through(auth::auth_service& auth) {
    return [&auth](const http::request& req, std::string_view action, std::string_view target) {
        const auto* p = auth::current_principal(req);
        auth::audit_entry entry;
        entry.actor = p ? p->name : "anonymous";
        entry.action = action;
        entry.target = target;
        entry.remote = req.remote_address;
        if (auto st = auth.audit(entry); !st)
            log::warn("audit log write failed", {{"error", st.error().message}});
    };
}

}  // namespace

void build_router(http::router& routes, const config::config& cfg, services& s) {
    add_system_routes(routes, *s.store, *s.engine, s.cluster_log.get());
    auth::add_routes(routes, *s.auth);
    add_storage_routes(routes, *s.engine);
    add_health_routes(routes, *s.scoring, *s.registry, s.settings_of);
    ingest::add_routes(routes, *s.pipeline, ingest::limits_from(cfg));
    ingest::add_device_routes(routes, *s.pipeline, ingest::limits_from(cfg),
                              [](const http::request& req) {
                                  const auto* p = auth::current_principal(req);
                                  return p ? p->device : std::string();
                              });
    devices::add_routes(routes, *s.registry);
    query::add_routes(
        routes, *s.engine,
        [&s](std::string_view asset) { return s.registry->devices_under(asset); },
        cfg.get_int("query.max_points"));
    influxql::add_routes(routes, *s.engine, cfg.get_int("query.max_points"),
                         cfg.get_duration("storage.retention").count() * 1'000'000);
    promql::limits promql_limits;
    promql_limits.max_points = cfg.get_int("promql.max_points");
    promql::add_routes(routes, *s.engine, promql_limits);
    forecast::add_routes(routes, *s.forecasts,
                         [&s](std::string_view asset) { return s.registry->devices_under(asset); });
    live::add_routes(routes, *s.live_hub);
    notify::add_routes(routes, *s.notifier);
    rules::add_routes(routes, *s.rules, audit_through(*s.auth));
    connectors::add_routes(routes, *s.connectors);
    ask::add_routes(routes,
                    {.engine = s.engine.get(),
                     .registry = s.registry.get(),
                     .rules = s.rules.get(),
                     .forecasts = s.forecasts.get(),
                     .max_points = cfg.get_int("query.max_points")},
                    {.ollama_url = cfg.get_string("ask.ollama_url"),
                     .model = cfg.get_string("ask.model"),
                     .timeout_ms = cfg.get_duration("ask.timeout").count()},
                    cfg.get_string("ask.time_zone"));
    add_test_routes(routes);
}

int serve(const config::config& cfg) {
    services s;
    s.data_dir = cfg.get_string("data.dir");
    if (auto failed = start_logging(cfg, s.data_dir)) return *failed;
    if (auto failed = open_core(cfg, s)) return *failed;
    start_scoring(cfg, s);
    start_forecasts(cfg, s);
    if (auto failed = open_notify_and_live(cfg, s)) return *failed;
    if (auto failed = start_rules(s)) return *failed;
    follow_changes(cfg, s);
    if (auto failed = open_cluster(cfg, s)) return *failed;
    open_mqtt(cfg, s);
    open_coap(cfg, s);
    relay_between_nodes(s);
    open_connectors(cfg, s);
    http::router routes;
    build_router(routes, cfg, s);
    return run_server(cfg, s, routes);
}

int manage_users(const config::config& cfg, const auth::user_command& cmd) {
    const std::string data_dir = cfg.get_string("data.dir");
    ::umask(077);  // as serve(): a meta.db created here holds password hashes
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
