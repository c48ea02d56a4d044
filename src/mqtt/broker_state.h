// Private to src/mqtt: the broker's shared state (the books of connections and sessions, the
// batch being filled and the writer's mailbox) and the small types it keeps. The network
// thread owns everything here except the writer's mailbox (guarded by `mu`); see broker.cpp.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/time.h"
#include "mqtt/codec.h"
#include "mqtt/mqtt.h"
#include "observe/observe.h"

namespace clisonix::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace detail {
constexpr std::string_view telemetry_topic = "v1/devices/me/telemetry";
constexpr std::string_view attributes_topic = "v1/devices/me/attributes";
constexpr std::string_view request_prefix = "v1/devices/me/attributes/request/";
constexpr std::string_view response_prefix = "v1/devices/me/attributes/response/";
constexpr std::string_view device_namespace = "v1/devices/me/";
constexpr std::string_view user_publish_prefix = "clisonix/clients/";
constexpr size_t max_outbound_bytes = 8 << 20;  // per connection; QoS 0 beyond it is dropped
constexpr size_t read_chunk = 16 * 1024;
constexpr size_t max_subscriptions = 100;  // per session
constexpr size_t max_inflight_out = 1000;  // QoS 1 sent and not yet acknowledged, per session

struct counters {
    metrics::gauge connections = metrics::global().get_gauge(
        "clisonix_mqtt_connections", "Open MQTT connections (authenticated or not)");
    metrics::counter received = metrics::global().get_counter(
        "clisonix_mqtt_messages_received_total", "PUBLISH packets received from MQTT clients");
    metrics::counter sent = metrics::global().get_counter("clisonix_mqtt_messages_sent_total",
                                                          "PUBLISH packets sent to MQTT clients");
    metrics::counter written = metrics::global().get_counter(
        "clisonix_mqtt_batches_written_total", "Telemetry batches written (one per flush)");
    metrics::counter dropped(std::string_view why) {
        return metrics::global().get_counter("clisonix_mqtt_dropped_total",
                                             "MQTT messages not delivered or not stored, by reason",
                                             {"reason"}, {std::string(why)});
    }
    metrics::counter disconnects(std::string_view why) {
        return metrics::global().get_counter(
            "clisonix_mqtt_protocol_closes_total",
            "Connections closed by the broker for a broken rule, by MQTT reason code", {"reason"},
            {std::string(why)});
    }
};

inline counters& stats() {
    static counters c;
    return c;
}

inline std::string hex_reason(uint8_t r) {
    static const char* digits = "0123456789abcdef";
    return std::string("0x") + digits[r >> 4] + digits[r & 15];
}

struct outbound {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
};

struct connection;

// What survives a connection: subscriptions and QoS 1 messages not yet acknowledged.
struct session {
    std::string key;  // principal + '\n' + client id
    std::string client_id;
    std::string device;  // empty for users
    std::string user;
    bool may_write = false;  // a user whose key may write telemetry (Sparkplug edge nodes)
    bool persistent = false;
    std::chrono::seconds expiry{0};
    std::vector<std::pair<std::string, uint8_t>> subs;  // filter, granted QoS
    std::deque<outbound> queued;                        // QoS 1 not yet sent
    std::map<uint16_t, outbound> inflight;              // QoS 1 sent, awaiting PUBACK
    uint16_t next_id = 1;
    connection* conn = nullptr;  // the live connection, if any
    clock::time_point offline_since{};

    std::optional<uint8_t> matching_qos(std::string_view topic) const {
        std::optional<uint8_t> best;
        for (const auto& [f, q] : subs)
            if (topic_matches(f, topic)) best = std::max<uint8_t>(best.value_or(0), q);
        return best;
    }
};

// A flush of telemetry handed to the writer: the merged batch and, per message, its points
// and whom to acknowledge.
struct pending_message {
    std::shared_ptr<connection> conn;  // null for QoS 0 and wills
    uint64_t seq = 0;
    size_t begin = 0, end = 0;  // points in the batch
    uint8_t reason = reason::success;
};

struct flush_job {
    storage::write_batch batch;
    std::vector<pending_message> messages;
};

// What the broker remembers of one Sparkplug B edge node (group/edge node), between its
// NBIRTH and its death: the sequence expected next, aliases, data types, born devices.
struct sparkplug_edge {
    const void* owner = nullptr;  // the connection that sent the NBIRTH
    std::string user;             // and its principal
    bool born = false;
    uint8_t next_seq = 0;
    std::unordered_map<uint64_t, std::string> alias_names;  // alias -> metric name
    std::unordered_map<std::string, uint32_t> types;        // device '\n' metric -> datatype
    std::unordered_set<std::string> devices;                // born devices (DBIRTH)
    clock::time_point rebirth_requested{};
};

// How a Sparkplug message went: its MQTT reason, and whether its PUBACK waits for the write.
struct sparkplug_outcome {
    uint8_t reason = reason::success;
    bool pending = false;
};

// One device's token bucket, shared by all its connections.
struct bucket {
    double tokens = 0;
    clock::time_point at{};
};

struct broker_state : std::enable_shared_from_this<broker_state> {
    broker_state(options o, ingest::pipeline& s, hooks h)
        : opts(std::move(o)), sink(s), hk(std::move(h)) {}

    options opts;
    ingest::pipeline& sink;
    hooks hk;

    std::optional<asio::ssl::context> tls;
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    asio::steady_timer sweep_timer{ioc};
    std::atomic<uint16_t> bound_port{0};
    std::thread net_thread;
    std::thread writer_thread;
    bool started = false;
    bool stopping = false;  // network thread

    std::unordered_set<std::shared_ptr<connection>> connections;
    std::unordered_map<std::string, std::shared_ptr<session>> sessions;
    std::unordered_map<std::string, bucket> buckets;
    std::unordered_map<std::string, int> per_address;  // open connections by peer IP
    void forget_address(const std::string& address) {
        auto it = per_address.find(address);
        if (it != per_address.end() && --it->second <= 0) per_address.erase(it);
    }

    // The batch being filled (network thread).
    ingest::json_parser parser;
    storage::write_batch scratch;
    std::unique_ptr<flush_job> filling = std::make_unique<flush_job>();
    std::unique_ptr<flush_job> spare;
    bool flush_posted = false;
    bool flush_running = false;
    std::vector<std::weak_ptr<connection>> paused;

    // The writer's mailbox.
    std::mutex mu;
    std::condition_variable cv;
    std::unique_ptr<flush_job> job;  // guarded by mu
    bool writer_quit = false;        // guarded by mu

    std::mt19937_64 rng{std::random_device{}()};

    // Sparkplug B (sparkplug_host.cpp).
    std::unordered_map<std::string, sparkplug_edge> sparkplug_edges;  // "group/edge node"
    bool sparkplug_online = false;
    int64_t sparkplug_state_ms = 0;
    std::string sparkplug_state_topic() const { return "spBv1.0/STATE/" + opts.sparkplug_host_id; }
    std::string sparkplug_state_payload() const;
    // A publish on spBv1.0/... by a user session (conn null for a will).
    // `origin` is the sending connection (null for a will), `ack` the same when the PUBACK
    // waits for the write (QoS 1), with `ack_seq` its place among the acks.
    sparkplug_outcome sparkplug_publish(const void* origin, const std::shared_ptr<connection>& ack,
                                        uint64_t ack_seq, const session& from,
                                        std::string_view topic, std::string_view payload);
    // The connection that sent an NBIRTH is gone: its edge node and devices are offline.
    void sparkplug_connection_lost(const void* c);
    // A new subscription: the host state, if it matches, as a retained message.
    void sparkplug_subscribed(session& s, std::string_view filter);

    void accept();
    void sweep();
    void writer_loop();
    void write_job(flush_job& j);
    void schedule_flush();
    void flush_now();
    void flush_done(std::unique_ptr<flush_job> j);
    bool accepting_telemetry() const {
        return filling->batch.point_count() < opts.max_batch_points;
    }
    uint8_t add_telemetry(const std::shared_ptr<connection>& c, uint64_t seq,
                          std::string_view device, std::string_view payload);
    void deliver(session& s, std::string_view topic, std::string_view payload, uint8_t qos);
    void route_user_publish(std::string_view topic, std::string_view payload, uint8_t qos);
    void will_of(const std::string& device, const std::string& user, const will_message& w);
    bool take_token(const std::string& device);
    void pump(session& s);
    // Closes the connections and drops the sessions of a revoked device (or, with `device`
    // empty, of the user `user`).
    void revoke(const std::string& device, const std::string& user);
    std::vector<uint8_t> shared_in = std::vector<uint8_t>(64 * 1024);  // plain reads land here
};
using impl = broker_state;

}  // namespace detail
}  // namespace clisonix::mqtt
