// `clisonix serve`'s parts, opened and wired in start order (see services.h).
#include "app/services.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <set>

#include "app/app.h"
#include "app/sparkplug_devices.h"
#include "common/time.h"
#include "forecast/forecast.h"
#include "observe/observe.h"
#include "query/query.h"

namespace clisonix::app {

namespace {

int failed(int code) {
    log::shutdown();
    return code;
}

// analytics.detector must name a detector (or be off).
bool detector_known(const std::string& detector) {
    if (detector == "off") return true;
    auto names = analytics::detector_names();
    if (std::find(names.begin(), names.end(), detector) != names.end()) return true;
    std::string known;
    for (auto n : names)
        known += (known.empty() ? "" : ", ") + std::string(n);
    std::cerr << "config: analytics.detector = \"" << detector << "\": must be off or one of "
              << known << "\n";
    return false;
}

// The server's defaults for what a device's type leaves unset (analytics.* config keys).
device_analytics analytics_defaults_from(const config::config& cfg) {
    device_analytics d;
    d.detector = cfg.get_string("analytics.detector");
    d.metrics = {cfg.get_string("analytics.metrics")};
    d.health = cfg.get_bool("analytics.health");
    d.health_baseline_ns = cfg.get_duration("analytics.health_baseline").count() * 1'000'000;
    return d;
}

// At start, before any new point is scored, every device's model is retrained from the
// stored history: from the baseline window a user chose, else from the device's first
// stored data (its first baseline), so that a restart neither relearns nor forgets.
void retrain_health_models(services& s) {
    auto windows = s.registry->health_baselines();
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
            it = settings_cache.emplace(device, s.settings_of(device)).first;
        return it->second;
    };
    auto firsts =
        s.scoring->health().stored_devices([&](const std::string& device, std::string_view field) {
            const auto& settings = settings_for(device);
            return !chosen.contains(device) && settings.health && metric_included(settings, field);
        });
    for (const auto& [device, first, last] : firsts) {
        const auto& settings = settings_for(device);
        // A device still learning when the server stopped learns on from new points.
        if (last - first < settings.health_baseline_ns) continue;
        // As when it learned live: the row at exactly the baseline's end is included.
        auto rows = s.scoring->health().retrain(
            device, first, first + settings.health_baseline_ns + 1'000'000,
            [&settings](std::string_view field) { return metric_included(settings, field); },
            "first_data");
        if (!rows && rows.error().code != errc::invalid_argument)
            log::warn("health model not retrained",
                      {{"device", device}, {"error", rows.error().message}});
    }
    for (const auto& w : *windows) {
        auto settings = s.settings_of(w.device);
        if (!settings.health) continue;
        auto rows = s.scoring->health().retrain(
            w.device, w.from_ms * 1'000'000, w.to_ms * 1'000'000,
            [&settings](std::string_view field) { return metric_included(settings, field); });
        if (!rows)
            log::warn("health baseline not retrained",
                      {{"device", w.device}, {"error", rows.error().message}});
        else
            log::info("health baseline retrained",
                      {{"device", w.device}, {"rows", static_cast<int64_t>(*rows)}});
    }
}

// How the broker names a reading (non-device) session's principal, for revocation: API keys
// by id (a key's name is not unique and may equal a username), users by username.
std::string mqtt_principal(auth::principal_kind kind, std::string_view id_or_name) {
    return (kind == auth::principal_kind::api_key ? "key:" : "user:") + std::string(id_or_name);
}

rules::scope_hooks rules_hooks_from(devices::registry& registry) {
    rules::scope_hooks h;
    h.type_of = [&registry](std::string_view device) {
        auto t = registry.type_of(device);
        return t ? *t : std::string();
    };
    h.ancestors = [&registry](std::string_view device) {
        auto a = registry.ancestors(device);
        return a ? *a : std::vector<std::string>();
    };
    h.devices_under = [&registry](std::string_view asset) {
        auto d = registry.devices_under(asset);
        return d ? *d : std::vector<std::string>();
    };
    h.devices_of_type = [&registry](std::string_view type) {
        std::vector<std::string> names;
        if (auto list = registry.list_devices(type))
            for (auto& d : *list)
                names.push_back(std::move(d.name));
        return names;
    };
    h.last_seen = [&registry](std::string_view device) -> std::optional<int64_t> {
        auto d = registry.get_device(device);
        return d ? d->last_seen : std::nullopt;
    };
    return h;
}

// Where rules on the forecast get it: the forecast service's cached forecast of the device's
// series (mean per step on its grid, the still-filling step left out), step = horizon / 48
// but at least 1 s, so that every rule evaluation within a step reuses one forecast.
rules::forecast_hook forecast_hook_from(forecast::service& svc) {
    return [&svc](const rules::forecast_query& q) -> result<rules::forecast_answer> {
        constexpr int64_t steps_ahead = 48;
        const int64_t step_ns = std::max<int64_t>(1000, q.horizon_ms / steps_ahead) * 1'000'000;
        auto f = svc.forecast_series(q.device, q.metric, q.horizon_ms * 1'000'000, step_ns);
        if (!f) return f.error();
        rules::forecast_answer a;
        a.point = f->result->point.back();
        if (q.limit) {
            auto c = forecast::crossing(*f->result, *q.limit, q.above);
            auto at = [&f](std::optional<int> k) -> std::optional<int64_t> {
                if (!k) return std::nullopt;
                return f->step_time(*k) / 1'000'000;
            };
            a.crosses = c.within_horizon;
            a.expected_ms = at(c.expected);
            a.earliest_ms = at(c.earliest);
            a.latest_ms = at(c.latest);
            a.probability = c.probability;
        }
        return a;
    };
}

}  // namespace

std::optional<int> open_core(const config::config& cfg, services& s) {
    auto store = meta::open(cfg.get_string("meta.url"), s.data_dir);
    if (!store) {
        log::error("metadata store unavailable", {{"error", store.error().message}});
        return failed(exit_failure);
    }
    s.store = std::move(*store);
    log::info("metadata store ready", {{"backend", s.store->backend()}});

    auto auth_opts = auth::options_from(cfg);
    if (!auth_opts) {
        std::cerr << auth_opts.error().message << "\n";
        return failed(auth_opts.error().code == errc::invalid_config ? exit_usage : exit_failure);
    }
    s.auth = std::make_unique<auth::auth_service>(*s.store, *auth_opts);
    const char* admin_password = std::getenv("CLISONIX_ADMIN_PASSWORD");
    auto generated = s.auth->ensure_admin(
        admin_password ? std::optional<std::string_view>(admin_password) : std::nullopt);
    if (!generated) {
        std::cerr << "serve: CLISONIX_ADMIN_PASSWORD: " << generated.error().message << "\n";
        return failed(exit_usage);
    }
    // Shown once, on the console only (under systemd: the journal, readable by root and the
    // adm group): the log file never holds a password, and later starts find the user.
    if (*generated) {
        // The same settings as this server: the file it read, when it read one.
        const std::string with_config = cfg.file.empty() ? "" : " --config " + cfg.file;
        // As this process's user: the data directory and meta.db are that user's alone.
        std::string as_user;
        if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr)
            as_user = std::string(" as the user ") + pw->pw_name;
        std::cout << "Created the first user: admin, password " << **generated << "\n(change it"
                  << as_user << " with `clisonix user passwd admin" << with_config << "`)"
                  << std::endl;
    }

    metrics::add_process_metrics(metrics::global(), version, commit);

    auto engine = storage::engine::open(storage::options_from(cfg, s.data_dir));
    if (!engine) {
        log::error("time-series engine unavailable", {{"error", engine.error().message}});
        return failed(exit_failure);
    }
    s.engine = std::move(*engine);
    s.pipeline = std::make_unique<ingest::pipeline>(*s.engine);
    s.pipeline->limit_series_per_device(
        static_cast<uint64_t>(cfg.get_int("ingest.max_series_per_device")));
    if (!detector_known(cfg.get_string("analytics.detector"))) return failed(exit_usage);

    // Devices and the asset graph: out-of-range points are flagged before they are written
    // (the flag is as durable as the point); every durable batch marks its devices seen.
    s.registry = std::make_unique<devices::registry>(*s.store, *s.auth, devices::options_from(cfg));
    if (auto st = s.registry->start(); !st) {
        log::error("device registry unavailable", {{"error", st.error().message}});
        return failed(exit_failure);
    }
    s.pipeline->add_enricher([&s](storage::write_batch& b) { s.registry->enrich(b); });
    s.pipeline->add_listener([&s](const storage::write_batch& b) { s.registry->observe(b); });
    return std::nullopt;
}

// A device's type may choose its detector, its scored metrics and whether health is
// computed; what it leaves unset is the server's default.
void start_scoring(const config::config& cfg, services& s) {
    const device_analytics defaults = analytics_defaults_from(cfg);
    s.scoring = std::make_unique<anomaly_scoring>(
        *s.engine, defaults, static_cast<size_t>(cfg.get_int("storage.max_series")),
        static_cast<size_t>(cfg.get_int("analytics.health_max_devices")));
    s.settings_of = [registry = s.registry.get(), defaults](std::string_view device) {
        device_analytics a = defaults;
        if (auto t = registry->analytics_of(device)) {
            if (t->detector) a.detector = *t->detector;
            if (t->metrics) a.metrics = *t->metrics;
            if (t->health) a.health = *t->health;
            if (t->health_baseline_ms) a.health_baseline_ns = *t->health_baseline_ms * 1'000'000;
        }
        return a;
    };
    s.scoring->health().set_store_interval(cfg.get_duration("analytics.health_interval").count() *
                                           1'000'000);
    s.scoring->set_settings(s.settings_of, [&s] { return s.registry->generation(); });
    s.scoring->on_start([&s] { retrain_health_models(s); });
    s.scoring->start();
    s.pipeline->add_listener([&s](const storage::write_batch& b) { s.scoring->enqueue(b); });
}

// `close` runs for each credential revoked here and for those other nodes announce.
void close_sessions_on_revocation(services& s, const auth::revocation_listener& close) {
    s.auth->on_revoked(close);
    s.session_closers.push_back(close);
}

std::optional<int> open_notify_and_live(const config::config& cfg, services& s) {
    auto notify_opts = notify::options_from(cfg);
    if (!notify_opts) {
        log::error("notifications cannot start", {{"error", notify_opts.error().message}});
        std::cerr << "serve: " << notify_opts.error().message << "\n";
        return failed(notify_opts.error().code == errc::invalid_argument ? exit_usage
                                                                         : exit_failure);
    }
    s.secret_key = notify_opts->secret_key;
    // The outbox dispatcher starts just before the server runs; the MQTT channel publishes
    // through the broker, which open_mqtt creates later and hands over in notify_mqtt.
    s.notifier = std::make_unique<notify::notifier>(
        *s.store, *notify_opts, [&s](std::string_view topic, std::string_view payload) -> status {
            if (!s.notify_mqtt) return make_error("unavailable", "mqtt not running");
            return s.notify_mqtt(topic, payload);
        });

    // Live updates: its pipeline listener comes before the rules engine's, so that a client
    // sees the telemetry before the alarm it raised (both go through one queue per client).
    live::hooks hooks;
    hooks.authenticate = [&s](std::string_view token) -> result<live::identity> {
        auto who = s.auth->authenticate("Bearer", token);
        if (!who) return who.error();
        if (who->kind == auth::principal_kind::device)
            return make_error("forbidden", "A device token may not listen to live updates");
        if (!auth::allows(who->role, http::permission::read))
            return make_error("forbidden", "The role " + who->role + " may not read");
        bool key = who->kind == auth::principal_kind::api_key;
        return live::identity{who->name, key ? "" : who->name, key ? who->id : "", who->expires_at};
    };
    hooks.devices_under = [&s](std::string_view asset) { return s.registry->devices_under(asset); };
    s.live_hub = std::make_unique<live::hub>(live::options_from(cfg), std::move(hooks));
    // A revoked credential ends the live connections opened with it (the hub outlives every
    // request that can revoke one: the server stops first).
    close_sessions_on_revocation(s, [hub = s.live_hub.get()](const auth::revoked_credential& r) {
        if (r.kind == auth::principal_kind::user) hub->close_user(r.name, r.reason);
        if (r.kind == auth::principal_kind::api_key) hub->close_api_key(r.id, r.reason);
    });
    s.pipeline->add_listener(
        [&s](const storage::write_batch& b) { s.live_hub->publish_telemetry(b); });
    return std::nullopt;
}

// Every durable batch and every batch of anomaly scores is evaluated as it arrives; alarm
// changes commit with their notifications and go to live clients.
std::optional<int> start_rules(services& s) {
    s.rules_sink = std::make_unique<notifier_sink>(*s.notifier);
    rules::options rules_options;
    rules_options.forecast = forecast_hook_from(*s.forecasts);
    s.rules = std::make_unique<rules::engine>(*s.store, rules_hooks_from(*s.registry),
                                              s.rules_sink.get(), std::move(rules_options));
    if (auto st = s.rules->start(); !st) {
        log::error("rules engine unavailable", {{"error", st.error().message}});
        return failed(exit_failure);
    }
    s.rules->add_alarm_listener(
        [&s](const std::string& event) { s.live_hub->publish_alarm(event); });
    s.pipeline->add_listener([&s](const storage::write_batch& b) { s.rules->observe(b); });
    // A device moved under another asset (or given another type) is in its new rules'
    // scopes at once, not when the scope cache expires.
    s.registry->on_change([rules = s.rules.get()] { rules->refresh_scopes(); });
    s.detach_rules.scoring = s.scoring.get();
    s.scoring->on_scored([&s](const storage::write_batch& b) { s.rules->observe(b); });
    return std::nullopt;
}

std::optional<int> open_cluster(const config::config& cfg, services& s) {
    auto opts = cluster::options_from(cfg);
    if (!opts) {
        std::cerr << "serve: " << opts.error().message << "\n";
        return failed(exit_usage);
    }
    if (!*opts) return std::nullopt;  // a single node: the pipeline writes its engine itself
    auto log = cluster::telemetry_log::open(**opts, *s.pipeline);
    if (!log) {
        log::error("cluster telemetry log unavailable", {{"error", log.error().message}});
        return failed(exit_failure);
    }
    s.cluster_log = std::move(*log);
    s.pipeline->replicate_through(
        [log = s.cluster_log.get()](const storage::write_batch& b) { return log->publish(b); });
    return std::nullopt;
}

void follow_changes(const config::config& cfg, services& s) {
    auto feed = meta::open_change_feed(cfg.get_string("meta.url"),
                                       [](const std::string& event) { log::info(event, {}); });
    if (!feed) {
        log::warn("metadata change feed unavailable", {{"error", feed.error().message}});
        return;
    }
    s.changes = std::move(*feed);
    // The registry's reload tells its change listeners, the rules engine's scopes among them.
    s.changes->subscribe({"device_types", "devices", "graph_nodes", "assets", "relations"},
                         [registry = s.registry.get()] {
                             if (auto st = registry->reload(); !st)
                                 log::warn("devices not reloaded", {{"error", st.error().message}});
                         });
    s.changes->subscribe({"rules"}, [rules = s.rules.get()] {
        if (auto st = rules->reload_rules(); !st)
            log::warn("rules not reloaded", {{"error", st.error().message}});
    });
    s.changes->subscribe({"api_keys", "users"},
                         [auth = s.auth.get()] { auth->forget_cached_api_keys(); });
    // Rows enqueued through another node go out now, not at this dispatcher's idle poll.
    s.changes->subscribe({"notification_outbox"},
                         [notifier = s.notifier.get()] { notifier->wake(); });
}

// The device a device token speaks for (the MQTT username, the CoAP path segment).
static result<std::string> device_of_token(services& s, std::string_view token) {
    auto who = s.auth->authenticate_device(token);
    if (!who) return who.error();
    return who->device.empty() ? who->name : who->device;
}

// The built-in broker for devices (and users subscribing to clisonix/#). It writes through
// the pipeline, so it starts after it and stops before the engine closes.
void open_mqtt(const config::config& cfg, services& s) {
    if (!cfg.get_bool("mqtt.enabled")) return;
    mqtt::hooks hooks;
    hooks.authenticate_device = [&s](std::string_view token) { return device_of_token(s, token); };
    hooks.authenticate_user = [&s](std::string_view key) -> result<std::string> {
        auto who = s.auth->authenticate("Bearer", key);
        if (!who) return who.error();
        if (who->kind == auth::principal_kind::device ||
            !auth::allows(who->role, http::permission::read))
            return make_error("forbidden", "not allowed to read");
        return mqtt_principal(who->kind,
                              who->kind == auth::principal_kind::api_key ? who->id : who->name);
    };
    hooks.client_attributes = [&s](std::string_view d, std::string_view json) {
        return s.registry->set_client_attributes(d, json);
    };
    hooks.attribute_request = [&s](std::string_view d, std::string_view req) {
        return s.registry->attribute_response(d, req);
    };
    hooks.connection_changed = [&s](std::string_view d, bool connected) {
        s.registry->set_connected(d, connected);
    };
    // Sparkplug B edge nodes: an API key that may write; births and deaths on the registry.
    hooks.user_may_write = [&s](std::string_view key) {
        auto who = s.auth->authenticate("Bearer", key);
        return who && who->kind != auth::principal_kind::device &&
               auth::allows(who->role, http::permission::write);
    };
    hooks.sparkplug_birth = [&s](std::string_view device, std::string_view group,
                                 std::string_view edge_node,
                                 const std::vector<mqtt::sparkplug_metric>& metrics) {
        return sparkplug_birth(*s.registry, device, group, edge_node, metrics);
    };
    hooks.sparkplug_online = [&s](std::string_view d, bool online) {
        if (online)
            s.registry->set_connected(d, true);
        else
            s.registry->set_offline(d);
    };
    s.mqtt_broker =
        std::make_unique<mqtt::broker>(mqtt::options_from(cfg), *s.pipeline, std::move(hooks));
    // Shared attributes set through the API reach the device's subscribed sessions.
    s.registry->on_shared_attributes(
        [broker = s.mqtt_broker.get()](const std::string& d, const std::string& json) {
            broker->send_to_device(d, "v1/devices/me/attributes", json);
        });
    // A revoked credential (device deleted, token rotated, API key revoked, user disabled,
    // deleted or given a new password) ends its open MQTT sessions at once, not when their
    // clients leave.
    close_sessions_on_revocation(
        s, [broker = s.mqtt_broker.get()](const auth::revoked_credential& r) {
            if (r.kind == auth::principal_kind::device)
                broker->revoke_device(r.name);
            else
                broker->revoke_user(mqtt_principal(
                    r.kind, r.kind == auth::principal_kind::api_key ? r.id : r.name));
        });
    s.notify_mqtt = [&s](std::string_view t, std::string_view p) -> status {
        s.mqtt_broker->publish(t, std::string(p));
        return {};
    };
}

// The CoAP endpoint: device tokens checked on every request (so a revoked one stops at once),
// telemetry through the pipeline, client attributes and attribute requests through the registry.
void open_coap(const config::config& cfg, services& s) {
    if (cfg.get_int("coap.port") == 0) return;
    coap::hooks hooks;
    hooks.authenticate_device = [&s](std::string_view token) { return device_of_token(s, token); };
    hooks.client_attributes = [&s](std::string_view d, std::string_view json) {
        return s.registry->set_client_attributes(d, json);
    };
    hooks.attribute_request = [&s](std::string_view d, std::string_view req) {
        return s.registry->attribute_response(d, req);
    };
    s.coap_server =
        std::make_unique<coap::server>(coap::options_from(cfg), *s.pipeline, std::move(hooks));
}

// The predicted list's targets are the metrics whose device type sets an expected range: the
// range a point is flagged outside of is the limit a forecast is checked against.
void start_forecasts(const config::config& cfg, services& s) {
    forecast::service_options o;
    o.cache_entries = static_cast<size_t>(cfg.get_int("forecast.cache_entries"));
    o.max_history_points = static_cast<int>(cfg.get_int("forecast.max_history_points"));
    o.max_steps = static_cast<int>(cfg.get_int("forecast.max_steps"));
    o.max_series = static_cast<int>(cfg.get_int("forecast.max_series"));
    const int64_t ns_per_ms = 1'000'000;
    o.refresh_interval_ns = cfg.get_duration("forecast.refresh_interval").count() * ns_per_ms;
    o.predicted_horizon_ns = cfg.get_duration("forecast.predicted_horizon").count() * ns_per_ms;
    o.predicted_budget_ns = cfg.get_duration("forecast.predicted_budget").count() * ns_per_ms;
    s.forecasts = std::make_unique<forecast::service>(*s.engine, o);
    s.forecasts->start_predictions([registry = s.registry.get()] {
        std::vector<forecast::limit_target> targets;
        auto types = registry->list_types();
        auto devices = registry->list_devices();
        if (!types || !devices) return targets;
        std::map<std::string, const devices::device_type*> by_name;
        for (const auto& t : *types)
            by_name[t.name] = &t;
        for (const auto& d : *devices) {
            auto t = by_name.find(d.type);
            if (t == by_name.end()) continue;
            for (const auto& [metric, spec] : t->second->metrics)
                if (spec.min || spec.max) targets.push_back({d.name, metric, spec.min, spec.max});
        }
        return targets;
    });
}

void relay_between_nodes(services& s) {
    if (!s.cluster_log) return;
    auto* nodes = s.cluster_log.get();
    s.auth->on_revoked([nodes](const auth::revoked_credential& r) {
        boost::json::object notice{{"kind", auth::kind_name(r.kind)},
                                   {"name", r.name},
                                   {"id", r.id},
                                   {"reason", r.reason}};
        if (auto st = nodes->broadcast("revoked", boost::json::serialize(notice)); !st)
            log::warn(
                "revocation not announced to the other nodes (their sessions end at "
                "their next check)",
                {{"error", st.error().message}});
    });
    nodes->on_broadcast("revoked", [&s](std::string_view payload) {
        boost::system::error_code ec;
        auto doc = boost::json::parse(payload, ec);
        if (ec || !doc.is_object()) return;
        const auto& o = doc.as_object();
        auth::revoked_credential r;
        const auto text = [&o](const char* key) {
            const auto* v = o.if_contains(key);
            return v && v->is_string() ? std::string(v->as_string()) : std::string();
        };
        const std::string kind = text("kind");
        if (kind == auth::kind_name(auth::principal_kind::user))
            r.kind = auth::principal_kind::user;
        else if (kind == auth::kind_name(auth::principal_kind::api_key))
            r.kind = auth::principal_kind::api_key;
        else if (kind == auth::kind_name(auth::principal_kind::device))
            r.kind = auth::principal_kind::device;
        else
            return;
        r.name = text("name");
        r.id = text("id");
        r.reason = text("reason");
        for (const auto& close : s.session_closers)
            close(r);
    });
    // Every node raises, repeats and clears the alarms of the points it applies and tells its
    // own live clients; what a person does through one node (acknowledge, clear) is told to
    // the others' live clients by this notice.
    s.rules->add_alarm_listener([nodes](const std::string& event) {
        boost::system::error_code ec;
        auto doc = boost::json::parse(event, ec);
        if (ec || !doc.is_object()) return;
        const auto* name = doc.as_object().if_contains("event");
        const auto* alarm = doc.as_object().if_contains("alarm");
        if (!name || !name->is_string() || !alarm || !alarm->is_object()) return;
        const auto* by = alarm->as_object().if_contains("cleared_by");
        const bool by_person = name->as_string() == "alarm.acknowledged" ||
                               (name->as_string() == "alarm.cleared" && by && by->is_string() &&
                                by->as_string() != "system");
        if (by_person)
            if (auto st = nodes->broadcast("alarm", event); !st)
                log::warn("alarm event not announced to the other nodes",
                          {{"error", st.error().message}});
    });
    nodes->on_broadcast("alarm", [hub = s.live_hub.get()](std::string_view event) {
        hub->publish_alarm(std::string(event));
    });
    if (!s.mqtt_broker) return;
    // The notice is the device's name, a newline, and the changed attributes' JSON.
    s.registry->on_shared_attributes([nodes](const std::string& d, const std::string& json) {
        if (auto st = nodes->broadcast("attributes", d + "\n" + json); !st)
            log::warn(
                "shared attributes not announced to the other nodes (the device gets them "
                "when it asks)",
                {{"device", d}, {"error", st.error().message}});
    });
    nodes->on_broadcast("attributes", [broker = s.mqtt_broker.get()](std::string_view payload) {
        const size_t nl = payload.find('\n');
        if (nl == std::string_view::npos) return;
        broker->send_to_device(payload.substr(0, nl), "v1/devices/me/attributes",
                               std::string(payload.substr(nl + 1)));
    });
}

void open_connectors(const config::config& cfg, services& s) {
    auto opts = connectors::options_from(cfg);
    // Passwords are sealed under the notification channels' key: one key file per data dir.
    opts.secret_key = s.secret_key;
    s.connectors = std::make_unique<connectors::service>(
        *s.store, connectors::builtin_drivers(s.data_dir + "/opcua"),
        [&s](storage::write_batch& b) { return s.pipeline->submit(b); }, std::move(opts));
    if (s.changes)
        s.changes->subscribe({"connectors"}, [c = s.connectors.get()] {
            if (auto st = c->reload(); !st)
                log::warn("connectors not reloaded", {{"error", st.error().message}});
        });
}

}  // namespace clisonix::app
