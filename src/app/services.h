// `clisonix serve`'s parts and how they are put together (private to src/app/).
//
// serve() (serve.cpp) reads as the server's life: open the core (store, auth, engine,
// ingest, devices), start the background parts (scoring, notifications, live updates,
// rules, MQTT), build the router, run the HTTP server, stop. Everything it starts lives in
// one `services`, whose member order is the start order; C++ destroys members in reverse,
// so the stop order is the reverse of the start order by construction. A new part goes in
// at the place in the order where what it uses already exists.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/anomaly_scoring.h"
#include "auth/auth.h"
#include "cluster/cluster.h"
#include "coap/coap.h"
#include "config/config.h"
#include "connectors/connectors.h"
#include "devices/devices.h"
#include "forecast/forecast.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "live/live.h"
#include "meta/meta.h"
#include "mqtt/mqtt.h"
#include "notify/notify.h"
#include "rules/rules.h"
#include "storage/storage.h"

namespace clisonix::app {

// The rules engine's notifications go to the notifier's outbox.
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
};

// Detaches the rules engine from the scoring thread before the engine is destroyed (the
// scoring thread outlives it).
struct scoring_detach {
    anomaly_scoring* scoring = nullptr;
    scoring_detach() = default;
    scoring_detach(const scoring_detach&) = delete;
    scoring_detach& operator=(const scoring_detach&) = delete;
    ~scoring_detach() {
        if (scoring) scoring->on_scored(nullptr);
    }
};

struct services {
    services() = default;
    services(const services&) = delete;  // the parts hold references to each other
    services& operator=(const services&) = delete;

    std::string data_dir;
    std::unique_ptr<meta::store> store;
    std::unique_ptr<auth::auth_service> auth;
    std::unique_ptr<storage::engine> engine;
    std::unique_ptr<ingest::pipeline> pipeline;
    std::unique_ptr<devices::registry> registry;
    // A device's analytics: its type's choices over the analytics.* defaults.
    std::function<device_analytics(std::string_view)> settings_of;
    std::unique_ptr<anomaly_scoring> scoring;
    // Forecasts over the engine, and the background predicted-to-cross list over the
    // registry's device types; before the rules engine, which may ask it for forecasts.
    std::unique_ptr<forecast::service> forecasts;
    // Set once the broker runs; the notifier's MQTT channel publishes through it.
    notify::publish_fn notify_mqtt;
    std::unique_ptr<notify::notifier> notifier;
    std::string secret_key;  // seals channel and connector secrets at rest
    std::unique_ptr<live::hub> live_hub;
    std::unique_ptr<notifier_sink> rules_sink;
    std::unique_ptr<rules::engine> rules;
    scoring_detach detach_rules;
    // The replicated telemetry log (cluster.nats set), else null. Its applier writes
    // through the pipeline into the engine and its listeners, so it stops before them; the
    // broker, which publishes through it, stops before it.
    std::unique_ptr<cluster::telemetry_log> cluster_log;
    // What a revoked credential ends on this node (live connections, MQTT sessions): run for
    // revocations made here and, in a cluster, for those another node announces.
    std::vector<auth::revocation_listener> session_closers;
    std::unique_ptr<mqtt::broker> mqtt_broker;  // null when mqtt.enabled is false
    std::unique_ptr<coap::server> coap_server;  // null when coap.port is 0
    // Connectors write through the pipeline: their runners stop before it.
    std::unique_ptr<connectors::service> connectors;
    // Changes other processes sharing a PostgreSQL store made, for the caches above; last,
    // so that it stops before the parts its handlers call.
    std::unique_ptr<meta::change_feed> changes;
};

// Each returns nothing when it worked, else the exit code (it has logged or printed why).
// The metadata store, auth (and the first admin), the time-series engine, the ingest
// pipeline and the device registry.
std::optional<int> open_core(const config::config& cfg, services& s);
// Anomaly and machine-health scoring beside ingest.
void start_scoring(const config::config& cfg, services& s);
// Notifications (the dispatcher starts with the server) and live updates.
std::optional<int> open_notify_and_live(const config::config& cfg, services& s);
// Rules and alarms over every durable batch and every batch of scores.
std::optional<int> start_rules(services& s);
// In a cluster (cluster.nats set): the telemetry log, after every pipeline listener is in
// place (its applier starts applying at once) and before anything submits.
std::optional<int> open_cluster(const config::config& cfg, services& s);
// Caches follow the changes other processes sharing a PostgreSQL store make (after
// start_rules; nothing to follow on SQLite).
void follow_changes(const config::config& cfg, services& s);
// The MQTT broker, when enabled; it listens once the HTTP port is ours (run_server).
void open_mqtt(const config::config& cfg, services& s);
// The CoAP endpoint for devices (coap.port; 0 = none), writing through the pipeline.
void open_coap(const config::config& cfg, services& s);
// In a cluster, what one node does that clients on the others must hear, as notices through
// the cluster (after open_mqtt): a revoked credential ends its sessions on every node,
// shared attributes reach the device's MQTT session wherever it is connected, and an alarm a
// person acknowledged or cleared reaches every node's live clients.
void relay_between_nodes(services& s);
// The connectors (runners start with the server, in run_server), following the change feed.
void open_connectors(const config::config& cfg, services& s);

// The forecast service and its background predicted-to-cross list (forecast.* keys).
void start_forecasts(const config::config& cfg, services& s);

// Every route of the product, declared on `routes`.
void build_router(http::router& routes, const config::config& cfg, services& s);
// Health, readiness (the metadata store answers, the engine takes writes), metrics and the
// API description.
// `cluster_log` may be null (a single node).
void add_system_routes(http::router& routes, meta::store& store, storage::engine& engine,
                       const cluster::telemetry_log* cluster_log);
// What /readyz answers: ok, or the first reason this node cannot serve (the metadata store,
// the engine's disk, the cluster's log). serve also tells systemd READY=1 from it.
status readiness(meta::store& store, storage::engine& engine,
                 const cluster::telemetry_log* cluster_log);
// Operating the engine by hand: statistics, flush and compaction.
void add_storage_routes(http::router& routes, storage::engine& engine);
// Machine health per device: its state and latest assessment, and retraining on a window.
void add_health_routes(http::router& routes, anomaly_scoring& scoring, devices::registry& registry,
                       std::function<device_analytics(std::string_view)> settings_of);
// Routes the integration tests need and users never see: only with CLISONIX_TEST_ROUTES=1.
void add_test_routes(http::router& routes);

}  // namespace clisonix::app
