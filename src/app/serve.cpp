// `clisonix serve`: wires config, logs, metrics, the metadata store and the HTTP server.
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "app/anomaly_scoring.h"
#include "app/app.h"
#include "app/web_assets.h"
#include "auth/auth.h"
#include "common/json_text.h"
#include "devices/devices.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "live/live.h"
#include "meta/meta.h"
#include "mqtt/mqtt.h"
#include "notify/notify.h"
#include "observe/observe.h"
#include "query/query.h"
#include "rules/rules.h"
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

mqtt::options mqtt_options_from(const config::config& cfg) {
    mqtt::options o;
    o.bind = cfg.get_string("mqtt.bind");
    o.port = static_cast<uint16_t>(cfg.get_int("mqtt.port"));
    o.tls_cert = cfg.get_string("mqtt.tls_cert");
    o.tls_key = cfg.get_string("mqtt.tls_key");
    o.max_packet_size = static_cast<uint32_t>(cfg.get_int("mqtt.max_packet_size"));
    o.max_connections = static_cast<int>(cfg.get_int("mqtt.max_connections"));
    o.rate_limit = static_cast<double>(cfg.get_int("mqtt.rate_limit"));
    o.keep_alive_max = std::chrono::seconds(cfg.get_int("mqtt.keep_alive_max") / 1000);
    o.connect_timeout = cfg.get_duration("mqtt.connect_timeout");
    o.receive_maximum = static_cast<uint16_t>(cfg.get_int("mqtt.receive_maximum"));
    o.max_queued = static_cast<uint32_t>(cfg.get_int("mqtt.max_queued"));
    o.session_expiry_max = std::chrono::seconds(cfg.get_int("mqtt.session_expiry_max") / 1000);
    o.bounds = ingest_limits_from(cfg);
    return o;
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

// Machine health per device: its state and latest assessment, and retraining on a window.
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
    routes.add(
        {http::method::get, "/api/v1/devices/{device}/health",
         "Machine health: state (learning, trained, off), baseline window, latest score and "
         "contributions per metric (largest first)",
         http::permission::read, [=, &scoring](http::request& req) {
             auto name = device_name(req.path_param("device"));
             if (!name) return not_found(req.path_param("device"));
             std::string out;
             if (!settings_of(*name).health) {
                 out = "{\"device\":";
                 append_json_string(out, *name);
                 out +=
                     ",\"state\":\"off\",\"baseline\":null,\"score\":null,\"at\":null,"
                     "\"contributions\":[],\"metrics\":[],\"rows_scored\":0,\"state_bytes\":0}";
             } else if (auto j = scoring.health().status_json(*name)) {
                 out = std::move(*j);
             } else {
                 out = "{\"device\":";
                 append_json_string(out, *name);
                 out +=
                     ",\"state\":\"learning\",\"progress\":{\"fraction\":0,\"rows\":0,"
                     "\"min_rows\":" +
                     std::to_string(analytics::health_model::min_baseline_rows()) +
                     ",\"elapsed_ms\":0,\"baseline_ms\":" +
                     std::to_string(settings_of(*name).health_baseline_ns / 1'000'000) +
                     "},\"baseline\":null,\"score\":null,\"at\":null,\"contributions\":[],"
                     "\"metrics\":[],\"rows_scored\":0,\"state_bytes\":0}";
             }
             return http::response::json(200, std::move(out));
         }});
    routes.add(
        {http::method::post, "/api/v1/devices/{device}/health/baseline",
         "Retrain the device's health model on a stored window {\"from\", \"to\"} (RFC 3339 "
         "or epoch ms); kept and retrained again at every start",
         http::permission::devices, [=, &scoring, &registry](http::request& req) {
             auto name = device_name(req.path_param("device"));
             if (!name) return not_found(req.path_param("device"));
             boost::json::error_code ec;
             auto body = boost::json::parse(req.body, ec);
             if (ec || !body.is_object())
                 return http::response::error(400, "invalid_argument",
                                              "body: expected a JSON object {\"from\", \"to\"}",
                                              "body");
             const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
             int64_t bounds[2] = {0, 0};
             const char* fields[2] = {"from", "to"};
             for (const auto& [k, v] : body.as_object())
                 if (k != "from" && k != "to")
                     return http::response::error(400, "invalid_argument",
                                                  std::string(k) + ": unknown field (from, to)",
                                                  std::string(k));
             for (int i = 0; i < 2; ++i) {
                 const auto* v = body.as_object().if_contains(fields[i]);
                 if (!v)
                     return http::response::error(400, "invalid_argument",
                                                  std::string(fields[i]) + ": required", fields[i]);
                 if (v->is_int64() || v->is_uint64()) {
                     bounds[i] = v->to_number<int64_t>() * 1'000'000;
                 } else if (v->is_string()) {
                     auto t = query::parse_time(std::string(v->as_string()), now_ns, fields[i]);
                     if (!t) return http::response::from_error(t.error());
                     bounds[i] = *t;
                 } else {
                     return http::response::error(
                         400, "invalid_argument",
                         std::string(fields[i]) + ": expected RFC 3339 text or epoch milliseconds",
                         fields[i]);
                 }
             }
             if (bounds[0] >= bounds[1])
                 return http::response::error(400, "invalid_argument", "to: must be after from",
                                              "to");
             auto settings = settings_of(*name);
             if (!settings.health)
                 return http::response::error(
                     409, "conflict",
                     "Machine health is off for device " + *name + " (its type's analytics.health)",
                     "device");
             auto rows = scoring.health().retrain(
                 *name, bounds[0], bounds[1],
                 [&settings](std::string_view field) { return metric_included(settings, field); });
             if (!rows) {
                 const auto& e = rows.error();
                 return http::response::from_error(e);
             }
             const auto* p = auth::current_principal(req);
             devices::health_baseline b{*name, bounds[0] / 1'000'000, bounds[1] / 1'000'000,
                                        p ? p->name : "anonymous", 0};
             if (auto st = registry.set_health_baseline(b); !st)
                 return http::response::from_error(st.error());
             auto status = scoring.health().status_json(*name);
             std::string out = "{\"rows\":" + std::to_string(*rows) +
                               ",\"health\":" + (status ? *status : std::string("null")) + "}";
             return http::response::json(200, std::move(out));
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
    const auto& detector = cfg.get_string("analytics.detector");
    if (detector != "off") {
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
    }

    // Devices and the asset graph: out-of-range points are flagged before they are written
    // (the flag is as durable as the point); every durable batch marks its devices seen.
    devices::registry registry(**store, auth, devices::options_from(cfg));
    if (auto st = registry.start(); !st) {
        log::error("device registry unavailable", {{"error", st.error().message}});
        log::shutdown();
        return exit_failure;
    }
    pipeline.add_enricher([&registry](storage::write_batch& b) { registry.enrich(b); });
    pipeline.add_listener([&registry](const storage::write_batch& b) { registry.observe(b); });

    // Anomaly and machine-health scoring: one thread beside ingest. A device's type may
    // choose its detector, its scored metrics and whether health is computed; what it leaves
    // unset is the server's default (analytics.* config keys).
    device_analytics analytics_defaults;
    analytics_defaults.detector = detector;
    analytics_defaults.metrics = {cfg.get_string("analytics.metrics")};
    analytics_defaults.health = cfg.get_bool("analytics.health");
    analytics_defaults.health_baseline_ns =
        cfg.get_duration("analytics.health_baseline").count() * 1'000'000;
    auto scoring = std::make_unique<anomaly_scoring>(
        **engine, analytics_defaults, static_cast<size_t>(cfg.get_int("storage.max_series")),
        static_cast<size_t>(cfg.get_int("analytics.health_max_devices")));
    auto settings_of = [&registry, analytics_defaults](std::string_view device) {
        device_analytics s = analytics_defaults;
        if (auto t = registry.analytics_of(device)) {
            if (t->detector) s.detector = *t->detector;
            if (t->metrics) s.metrics = *t->metrics;
            if (t->health) s.health = *t->health;
            if (t->health_baseline_ms) s.health_baseline_ns = *t->health_baseline_ms * 1'000'000;
        }
        return s;
    };
    scoring->set_settings(settings_of, [&registry] { return registry.generation(); });
    // At start, before any new point is scored, every device's model is retrained from the
    // stored history: from the baseline window a user chose, else from the device's first
    // stored data (its first baseline), so that a restart neither relearns nor forgets.
    scoring->on_start([&registry, &scoring, settings_of] {
        auto windows = registry.health_baselines();
        if (!windows) {
            log::warn("health baselines not loaded", {{"error", windows.error().message}});
            windows = std::vector<devices::health_baseline>{};
        }
        std::set<std::string> chosen;
        for (const auto& w : *windows)
            chosen.insert(w.device);
        std::map<std::string, device_analytics> settings_cache;
        auto settings_for = [&](const std::string& device) -> const device_analytics& {
            auto it = settings_cache.find(device);
            if (it == settings_cache.end())
                it = settings_cache.emplace(device, settings_of(device)).first;
            return it->second;
        };
        auto firsts = scoring->health().stored_devices(
            [&](const std::string& device, std::string_view field) {
                const auto& s = settings_for(device);
                return !chosen.contains(device) && s.health && metric_included(s, field);
            });
        for (const auto& [device, first, last] : firsts) {
            const auto& settings = settings_for(device);
            // A device still learning when the server stopped learns on from new points.
            if (last - first < settings.health_baseline_ns) continue;
            // As when it learned live: the row at exactly the baseline's end is included.
            auto rows = scoring->health().retrain(
                device, first, first + settings.health_baseline_ns + 1'000'000,
                [&settings](std::string_view field) { return metric_included(settings, field); },
                "first_data");
            if (!rows && rows.error().code != "invalid_argument")
                log::warn("health model not retrained",
                          {{"device", device}, {"error", rows.error().message}});
        }
        for (const auto& w : *windows) {
            auto settings = settings_of(w.device);
            if (!settings.health) continue;
            auto rows = scoring->health().retrain(
                w.device, w.from_ms * 1'000'000, w.to_ms * 1'000'000,
                [&settings](std::string_view field) { return metric_included(settings, field); });
            if (!rows)
                log::warn("health baseline not retrained",
                          {{"device", w.device}, {"error", rows.error().message}});
            else
                log::info("health baseline retrained",
                          {{"device", w.device}, {"rows", static_cast<int64_t>(*rows)}});
        }
    });
    scoring->start();
    pipeline.add_listener([&scoring](const storage::write_batch& b) { scoring->enqueue(b); });

    // Notifications: the outbox dispatcher starts just before the server runs, once every
    // block below has wired what it needs (the MQTT channel publishes through the broker,
    // which the mqtt block creates later and hands over by setting notify_mqtt).
    notify::publish_fn notify_mqtt;
    notify::notifier notifier(
        **store, notify::options_from(cfg),
        [&notify_mqtt](std::string_view topic, std::string_view payload) -> status {
            if (!notify_mqtt) return make_error("unavailable", "mqtt not running");
            return notify_mqtt(topic, payload);
        });
    // (notify_mqtt is set in the mqtt block below, when the broker runs.)

    // Live updates: its pipeline listener comes before the rules engine's, so that a client
    // sees the telemetry before the alarm it raised (both go through one queue per client).
    live::hooks live_hooks;
    live_hooks.authenticate = [&auth](std::string_view token) -> result<std::string> {
        auto who = auth.authenticate("Bearer", token);
        if (!who) return who.error();
        if (who->kind == auth::principal_kind::device)
            return make_error("forbidden", "A device token may not listen to live updates");
        if (!auth::allows(who->role, http::permission::read))
            return make_error("forbidden", "The role " + who->role + " may not read");
        return who->name;
    };
    live_hooks.devices_under = [&registry](std::string_view asset) {
        return registry.devices_under(asset);
    };
    live::hub live_hub(live::options_from(cfg), std::move(live_hooks));
    pipeline.add_listener(
        [&live_hub](const storage::write_batch& b) { live_hub.publish_telemetry(b); });

    // Rules and alarms: every durable batch and every batch of anomaly scores is evaluated as
    // it arrives; alarm changes commit with their notifications and go to live clients.
    struct notifier_sink final : rules::alarm_sink {
        explicit notifier_sink(notify::notifier& n) : to(n) {}
        status enqueue(meta::store& tx, const std::vector<std::string>& channels,
                       std::string_view event_json) override {
            return to.enqueue(tx, channels, event_json);
        }
        void wake() override { to.wake(); }
        status validate_channels(const std::vector<std::string>& names) override {
            return to.validate_channels(names);
        }
        notify::notifier& to;
    } rules_sink(notifier);
    rules::scope_hooks rules_hooks;
    rules_hooks.type_of = [&registry](std::string_view device) {
        auto t = registry.type_of(device);
        return t ? *t : std::string();
    };
    rules_hooks.ancestors = [&registry](std::string_view device) {
        auto a = registry.ancestors(device);
        return a ? *a : std::vector<std::string>();
    };
    rules_hooks.devices_under = [&registry](std::string_view asset) {
        auto d = registry.devices_under(asset);
        return d ? *d : std::vector<std::string>();
    };
    rules_hooks.devices_of_type = [&registry](std::string_view type) {
        std::vector<std::string> names;
        if (auto list = registry.list_devices(type))
            for (auto& d : *list)
                names.push_back(std::move(d.name));
        return names;
    };
    rules_hooks.last_seen = [&registry](std::string_view device) -> std::optional<int64_t> {
        auto d = registry.get_device(device);
        return d ? d->last_seen : std::nullopt;
    };
    rules::engine rules_engine(**store, std::move(rules_hooks), &rules_sink);
    if (auto st = rules_engine.start(); !st) {
        log::error("rules engine unavailable", {{"error", st.error().message}});
        log::shutdown();
        return exit_failure;
    }
    rules_engine.add_alarm_listener(
        [&live_hub](const std::string& event) { live_hub.publish_alarm(event); });
    pipeline.add_listener(
        [&rules_engine](const storage::write_batch& b) { rules_engine.observe(b); });
    // Detached before rules_engine is destroyed: the scoring thread outlives this block.
    struct scoring_detach {
        anomaly_scoring* scoring;
        ~scoring_detach() {
            if (scoring) scoring->on_scored(nullptr);
        }
    } detach_rules{scoring.get()};
    scoring->on_scored([&rules_engine](const storage::write_batch& b) { rules_engine.observe(b); });

    // MQTT: the built-in broker for devices (and users subscribing to clisonix/#). It writes
    // through the pipeline, so it starts after it and stops before the engine closes.
    std::unique_ptr<mqtt::broker> mqtt_broker;
    if (cfg.get_bool("mqtt.enabled")) {
        mqtt::hooks mqtt_hooks;
        mqtt_hooks.authenticate_device = [&auth](std::string_view token) -> result<std::string> {
            auto who = auth.authenticate_device(token);
            if (!who) return who.error();
            return who->device.empty() ? who->name : who->device;
        };
        mqtt_hooks.authenticate_user = [&auth](std::string_view key) -> result<std::string> {
            auto who = auth.authenticate("Bearer", key);
            if (!who) return who.error();
            if (who->kind == auth::principal_kind::device ||
                !auth::allows(who->role, http::permission::read))
                return make_error("forbidden", "not allowed to read");
            return who->name;
        };
        mqtt_hooks.client_attributes = [&registry](std::string_view d, std::string_view json) {
            return registry.set_client_attributes(d, json);
        };
        mqtt_hooks.attribute_request = [&registry](std::string_view d, std::string_view req) {
            return registry.attribute_response(d, req);
        };
        mqtt_hooks.connection_changed = [&registry](std::string_view d, bool connected) {
            registry.set_connected(d, connected);
        };
        mqtt_broker =
            std::make_unique<mqtt::broker>(mqtt_options_from(cfg), pipeline, std::move(mqtt_hooks));
        // Shared attributes set through the API reach the device's subscribed sessions.
        registry.on_shared_attributes(
            [broker = mqtt_broker.get()](const std::string& d, const std::string& json) {
                broker->send_to_device(d, "v1/devices/me/attributes", json);
            });
        notify_mqtt = [&mqtt_broker](std::string_view t, std::string_view p) -> status {
            mqtt_broker->publish(t, std::string(p));
            return {};
        };
        // Started once the HTTP port is ours (below), so that a taken HTTP port is reported
        // as such.
    }

    http::router routes;
    add_system_routes(routes, **store);
    auth.add_routes(routes);
    add_storage_routes(routes, **engine);
    add_health_routes(routes, *scoring, registry, settings_of);
    ingest::add_routes(routes, pipeline, ingest_limits_from(cfg));
    ingest::add_device_routes(routes, pipeline, ingest_limits_from(cfg),
                              [](const http::request& req) {
                                  const auto* p = auth::current_principal(req);
                                  return p ? p->device : std::string();
                              });
    devices::add_routes(routes, registry);
    query::add_routes(routes, **engine, [&registry](std::string_view asset) {
        return registry.devices_under(asset);
    });
    live::add_routes(routes, live_hub);
    notify::add_routes(routes, notifier);
    rules::add_routes(
        routes, rules_engine,
        [&auth](const http::request& req, std::string_view action, std::string_view target) {
            const auto* p = auth::current_principal(req);
            auth::audit_entry entry;
            entry.actor = p ? p->name : "anonymous";
            entry.action = action;
            entry.target = target;
            entry.remote = req.remote_address;
            if (auto st = auth.audit(entry); !st)
                log::warn("audit log write failed", {{"error", st.error().message}});
        });
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
    auto chain = middleware_chain(*gw, *limiter, auth, routes);
    // Last: the dashboard answers only what no route matched (GET /, /assets/*, client routes).
    chain.push_back(serve_web(web_directory(cfg)));
    http::server server(opts, routes, std::move(chain));
    if (auto st = server.listen(); !st) {
        log::error("cannot start the HTTP server", {{"error", st.error().message}});
        log::shutdown();
        return exit_failure;
    }
    log::info("listening", {{"bind", opts.bind}, {"port", opts.port}});
    if (mqtt_broker) {
        if (auto st = mqtt_broker->start(); !st) {
            log::error("cannot start the MQTT broker", {{"error", st.error().message}});
            std::cerr << st.error().message << "\n";
            log::shutdown();
            return st.error().code == "invalid_config" ? exit_usage : exit_failure;
        }
        log::info("mqtt listening",
                  {{"bind", cfg.get_string("mqtt.bind")}, {"port", mqtt_broker->port()}});
    }
    std::cout << "Clisonix " << version << " listening on http://" << opts.bind << ":" << opts.port
              << std::endl;

    notifier.start();
    bool drained = server.run(/*handle_signals=*/true);
    // Undelivered notifications stay in the outbox for the next start. First, so that no
    // delivery publishes through a broker that is stopping.
    notifier.stop();
    if (mqtt_broker) mqtt_broker->stop();  // before the engine closes: its last batch is written
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
