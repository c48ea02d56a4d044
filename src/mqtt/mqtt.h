// Clisonix — mqtt: the built-in MQTT 3.1.1 / 5.0 broker for devices (JONA).
//
// Devices connect the way ThingsBoard devices do, with their access token as the username,
// and use the ThingsBoard topics, so existing firmware works unchanged:
//   publish   v1/devices/me/telemetry            JSON telemetry (the HTTP endpoint's forms),
//                                                stored as that device through the pipeline
//   publish   v1/devices/me/attributes           client attributes -> hooks.client_attributes
//   subscribe v1/devices/me/attributes           shared attribute updates (send_to_device)
//   publish   v1/devices/me/attributes/request/{id}  -> answered on .../response/{id}
// Users and services (not devices) connect with an API key as the password (the username is
// "token" or the key again), may subscribe to any filter and receive what publish() sends
// (alarm events on clisonix/alarms/...), and may publish only under clisonix/clients/.
// Sparkplug B edge nodes are such users: an API key of role operator as the username (the
// password may be the key again or anything; sparkplug-client and Ignition send both), and
// they publish spBv1.0/<group>/{N,D}{BIRTH,DATA,DEATH}/<edge node>[/<device>]: births create
// devices, data is telemetry on the same durable path as above, deaths mark devices offline,
// a missing birth or a seq gap is answered with NCMD "Node Control/Rebirth". The host's state
// is spBv1.0/STATE/<sparkplug.host_id>, given to every subscriber as a retained message.
//
// Delivery: QoS 0 and 1 (QoS 2 is refused; CONNACK says Maximum QoS 1). A QoS 1 telemetry
// PUBACK is sent only after pipeline.submit() returned ok, i.e. after the WAL fsync. Telemetry
// of all connections is merged into one write_batch per flush (one group-committed write),
// the PUBACKs follow in the order the PUBLISH packets came. When the engine pushes back
// ("overloaded", "storage_full", "unavailable"), the flush is retried and reading stops (TCP
// backpressure): a QoS 1 message is never dropped and never acknowledged before it is
// stored. See docs/decisions/0017-0019 for sessions, rate limits, users and what is not
// supported.
//
// A malformed or hostile packet closes that connection only: 5.0 clients get a DISCONNECT
// (or CONNACK) with the reason code, 3.1.1 clients are closed (CONNACK return codes where
// 3.1.1 has one).
//
// Thread safety: start()/stop() from one thread; send_to_device(), publish(), port() from
// any thread (work is handed to the broker's network thread). Hooks are called on the
// broker's network thread and must not call back into the broker synchronously.
// Errors from start(): "invalid_config" (TLS files, bind address), "unavailable" (port).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ingest/ingest.h"

namespace clisonix::mqtt {

namespace detail {
struct broker_state;  // broker.cpp
}

struct options {
    std::string bind = "0.0.0.0";  // mqtt.bind
    uint16_t port = 1883;          // mqtt.port; 0 = a free port chosen by the system
    std::string tls_cert;          // mqtt.tls_cert: PEM chain; with tls_key the port is TLS only
    std::string tls_key;           // mqtt.tls_key
    uint32_t max_packet_size = 256 * 1024;     // mqtt.max_packet_size (whole packet)
    int max_connections = 100000;              // mqtt.max_connections
    int max_connections_per_ip = 256;          // mqtt.max_connections_per_ip; 0 = no limit
    uint32_t max_connect_size = 16 * 1024;     // mqtt.max_connect_size: bytes before CONNACK
    double rate_limit = 1000;                  // mqtt.rate_limit: msgs/s per device, 0 = none
    std::chrono::seconds keep_alive_max{600};  // mqtt.keep_alive_max
    // mqtt.connect_timeout: from the connection's start (TCP accept) to its CONNECT, however
    // the bytes trickle in.
    std::chrono::milliseconds connect_timeout{10000};
    uint16_t receive_maximum = 1000;  // mqtt.receive_maximum
    uint32_t max_queued = 1000;       // mqtt.max_queued (outbound QoS 1 per session)
    std::chrono::seconds session_expiry_max{24 * 3600};  // mqtt.session_expiry_max
    uint64_t max_batch_points = 200000;                  // points buffered while a write runs
    ingest::limits bounds;                               // per message (ingest.*)
    bool sparkplug = true;                               // sparkplug.enabled
    std::string sparkplug_host_id = "clisonix";          // sparkplug.host_id
};

// The options from the `mqtt.*` config keys (and `ingest.*` for the bounds per message).
options options_from(const config::config& cfg);

// A metric announced in a Sparkplug B birth: its name, the specification's data type name
// ("Float", "Int32" ...) and the unit from its `engUnit` property ("" when none).
struct sparkplug_metric {
    std::string name;
    std::string type;
    std::string unit;
};

// A Sparkplug B payload for an edge node Clisonix runs itself (`clisonix demo`): each metric
// by name and alias (births) or by alias alone (name empty: data), with the specification's
// data type name ("Double", "Float", "Boolean", "Int64" ...) and a unit (births).
struct sparkplug_point {
    std::string name;
    uint64_t alias = 0;
    std::string type;
    double value = 0;
    std::string unit;
};
std::string encode_sparkplug(uint64_t timestamp_ms, std::optional<uint64_t> seq,
                             const std::vector<sparkplug_point>& metrics);

// How the broker learns about devices and users; the app wires these to auth and devices.
// Any hook may be empty: the feature it serves is then refused (5.0: reason 0x83).
struct hooks {
    // Device access token -> device name; an error refuses the connection.
    std::function<result<std::string>(std::string_view token)> authenticate_device;
    // API key (or user access token) -> principal name of a user or service allowed to read.
    std::function<result<std::string>(std::string_view key)> authenticate_user;
    std::function<status(std::string_view device, std::string_view json)> client_attributes;
    std::function<result<std::string>(std::string_view device, std::string_view request_json)>
        attribute_request;
    std::function<void(std::string_view device, bool connected)> connection_changed;
    // Sparkplug B (see docs/decisions/0083-sparkplug-b.md). An API key that authenticated a
    // user session -> whether it may write telemetry (an edge node needs role operator).
    std::function<bool(std::string_view key)> user_may_write;
    // NBIRTH / DBIRTH: create or update `device` and its metrics; group and edge node are
    // kept as server attributes. An error refuses the birth (and its data).
    std::function<status(std::string_view device, std::string_view group,
                         std::string_view edge_node, const std::vector<sparkplug_metric>& metrics)>
        sparkplug_birth;
    // Births mark a device online, deaths (and the edge node's connection lost) offline.
    std::function<void(std::string_view device, bool online)> sparkplug_online;
};

class broker {
public:
    broker(options opts, ingest::pipeline& sink, hooks h);
    ~broker();  // stops
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    // Binds and starts the network and writer threads.
    status start();
    // Closes every connection (5.0: DISCONNECT 0x8B), writes what was received, joins the
    // threads. Call before the engine closes. Idempotent.
    void stop();
    // The bound port (useful with port 0); 0 before start().
    uint16_t port() const;

    // Shared attribute push: to every session of `device` (connected, or persistent and
    // offline for QoS 1) subscribed to a filter matching `topic`.
    void send_to_device(std::string_view device, std::string_view topic, std::string payload);
    // Alarm events etc.: to every user session whose filter matches `topic` (at QoS <= 1).
    void publish(std::string_view topic, std::string payload);

    // A credential stopped working (device deleted, token rotated or revoked; API key
    // revoked): every connection that logged in as `device` (or as the user or API key
    // named `principal`) is closed at once (5.0: DISCONNECT 0x87 Not authorized), without
    // its will, and its offline persistent sessions are dropped. Packets the broker reads
    // after the call are not handled, so nothing more is stored from them. Any thread.
    void revoke_device(std::string_view device);
    void revoke_user(std::string_view principal);

private:
    std::shared_ptr<detail::broker_state> _impl;
};

}  // namespace clisonix::mqtt
