// The MQTT broker: connections, sessions, routing, and the telemetry writer (see mqtt.h).
//
// Two threads: the network thread runs the io_context (every connection, session and the
// batch being filled live there, so none of them needs a lock); the writer thread takes a
// filled batch, calls pipeline.submit() (durable on return, group commit) and hands the
// outcome back to the network thread, which then sends the PUBACKs. While the writer works the
// network thread fills the next batch: one write per flush, however many messages.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

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

counters& stats() {
    static counters c;
    return c;
}

std::string hex_reason(uint8_t r) {
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
    std::vector<uint8_t> shared_in = std::vector<uint8_t>(64 * 1024);  // plain reads land here
};
using impl = broker_state;

struct connection : std::enable_shared_from_this<connection> {
    enum class state { tls_handshake, awaiting_connect, connected, closing, closed };

    connection(impl& b, tcp::socket sock) : br(b), plain(std::move(sock)) {}

    impl& br;
    tcp::socket plain;
    std::optional<asio::ssl::stream<tcp::socket>> secure;
    state st = state::awaiting_connect;
    uint8_t version = v311;
    clock::time_point last_rx = clock::now();
    std::chrono::milliseconds keep_alive{0};  // 0: until connected, opts.connect_timeout
    std::shared_ptr<session> sess;
    std::optional<will_message> will;
    bool send_will = true;
    uint16_t peer_receive_max = 65535;
    uint32_t peer_max_packet = 0;  // 0: no limit

    std::vector<uint8_t> in;  // a partial packet (plain) or everything read (TLS)
    bool reading = false;
    bool paused = false;
    std::string out, writing;
    bool writing_now = false;
    bool doomed = false;  // a close is posted
    clock::time_point closing_since{};

    // PUBACKs in the order the PUBLISH packets came.
    struct ack {
        uint16_t packet_id;
        uint8_t reason;
        bool ready;
    };
    std::deque<ack> acks;
    uint64_t ack_base = 0;  // seq of acks.front()
    size_t unresolved = 0;

    tcp::socket& lowest() { return secure ? secure->next_layer() : plain; }

    template <typename Handler>
    void read_some(asio::mutable_buffer b, Handler&& h) {
        if (secure)
            secure->async_read_some(b, std::forward<Handler>(h));
        else
            plain.async_read_some(b, std::forward<Handler>(h));
    }
    template <typename Handler>
    void write_all(asio::const_buffer b, Handler&& h) {
        if (secure)
            asio::async_write(*secure, b, std::forward<Handler>(h));
        else
            asio::async_write(plain, b, std::forward<Handler>(h));
    }

    void start() {
        if (secure) {
            st = state::tls_handshake;
            secure->async_handshake(
                asio::ssl::stream_base::server,
                [self = shared_from_this()](const boost::system::error_code& ec) {
                    if (self->st == state::closed) return;
                    if (ec) return self->close_now();
                    self->st = state::awaiting_connect;
                    self->do_read();
                });
            return;
        }
        do_read();
    }

    // Plain sockets wait for readability and then read into the broker's shared buffer, so
    // that an idle connection holds no read buffer; only a partial packet is kept in `in`.
    // TLS streams read into `in` directly (the SSL layer owns its own buffers anyway).
    void do_read() {
        if (reading || paused || st == state::closed) return;
        reading = true;
        if (secure) {
            const size_t old = in.size();
            in.resize(old + read_chunk);
            secure->async_read_some(
                asio::buffer(in.data() + old, read_chunk),
                [self = shared_from_this(), old](const boost::system::error_code& ec, size_t n) {
                    self->reading = false;
                    self->in.resize(old + (ec ? 0 : n));
                    if (self->st == state::closed) return;
                    if (ec) return self->close_now();
                    self->last_rx = clock::now();
                    self->on_bytes(nullptr, 0);
                });
            return;
        }
        plain.async_wait(tcp::socket::wait_read,
                         [self = shared_from_this()](const boost::system::error_code& ec) {
                             self->reading = false;
                             if (self->st == state::closed) return;
                             if (ec) return self->close_now();
                             auto& buf = self->br.shared_in;
                             boost::system::error_code rec;
                             size_t n = self->plain.read_some(asio::buffer(buf), rec);
                             if (rec == asio::error::would_block || rec == asio::error::try_again)
                                 return self->do_read();
                             if (rec) return self->close_now();
                             self->on_bytes(buf.data(), n);
                         });
    }

    // New bytes (or, with n = 0, what `in` holds): every whole packet is handled, the rest
    // kept, then reading goes on unless paused or closing.
    void on_bytes(const uint8_t* data, size_t n) {
        if (st == state::closing) {  // draining until the peer closes
            in.clear();
            return do_read();
        }
        if (n) last_rx = clock::now();
        if (in.empty() && n) {
            const size_t used = parse(data, n);
            if (used < n) in.assign(data + used, data + n);
        } else {
            in.insert(in.end(), data, data + n);
            const size_t used = parse(in.data(), in.size());
            in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(used));
        }
        if (in.empty() && in.capacity() > 4096) std::vector<uint8_t>().swap(in);
        if (st == state::awaiting_connect || st == state::connected) do_read();
    }

    // Handles the whole packets at `data`; returns the bytes consumed.
    size_t parse(const uint8_t* data, size_t n) {
        size_t offset = 0;
        while (st == state::awaiting_connect || st == state::connected) {
            if (paused) break;
            if (st == state::awaiting_connect && offset < n && data[offset] != 0x10) {
                // Not MQTT (an HTTP request, TLS to a plain port ...): no need to wait for
                // a length that means nothing.
                protocol_close(reason::protocol_error);
                break;
            }
            frame f;
            auto fs = read_frame(data + offset, n - offset, br.opts.max_packet_size, f);
            if (fs == frame_status::incomplete) break;
            if (fs == frame_status::malformed) {
                protocol_close(reason::malformed_packet);
                break;
            }
            if (fs == frame_status::too_large) {
                protocol_close(reason::packet_too_large);
                break;
            }
            std::string_view body(reinterpret_cast<const char*>(data + offset + f.header_size),
                                  f.remaining);
            if (!handle(f, body)) break;  // paused before this packet: keep it for later
            offset += f.total();
        }
        return offset;
    }

    void pause() {
        if (paused) return;
        paused = true;
        br.paused.push_back(weak_from_this());
    }
    void resume() {
        if (!paused || st == state::closed) return;
        paused = false;
        last_rx = clock::now();  // the wait was ours, not the client's silence
        on_bytes(nullptr, 0);
    }

    void send(std::string_view bytes) {
        if (st == state::closed || doomed) return;
        if (st == state::connected && outbound_bytes() > 2 * max_outbound_bytes) {
            // A client that does not read what it asked for (acks, QoS 1 deliveries). Closed
            // from a fresh handler: the caller may be iterating the sessions.
            stats().dropped("slow_consumer").inc();
            doomed = true;
            asio::post(br.ioc, [self = shared_from_this()] { self->close_now(); });
            return;
        }
        out.append(bytes);
        do_write();
    }
    size_t outbound_bytes() const { return out.size() + writing.size(); }

    void do_write() {
        if (writing_now || out.empty() || st == state::closed) return;
        writing.swap(out);
        out.clear();
        writing_now = true;
        write_all(asio::buffer(writing),
                  [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      self->writing_now = false;
                      self->writing.clear();
                      if (self->st == state::closed) return;
                      if (ec) return self->close_now();
                      if (!self->out.empty()) return self->do_write();
                      if (self->st == state::closing) self->finish_closing();
                  });
    }

    // After the last packet is written: half-close and wait for the peer to close, so that
    // it reads our CONNACK/DISCONNECT instead of a reset.
    void finish_closing() {
        boost::system::error_code ec;
        if (secure) {
            lowest().shutdown(tcp::socket::shutdown_send, ec);
        } else {
            plain.shutdown(tcp::socket::shutdown_send, ec);
        }
        in.clear();
        paused = false;
        do_read();
    }

    // Sends `tail` (CONNACK or DISCONNECT, may be empty) and closes.
    void close_after(std::string tail) {
        if (st == state::closed || st == state::closing) return;
        st = state::closing;
        closing_since = clock::now();
        detach();
        out.append(tail);
        if (!writing_now && out.empty()) return finish_closing();
        do_write();
    }

    void protocol_close(uint8_t why) {
        stats().disconnects(hex_reason(why)).inc();
        if (st == state::awaiting_connect) {
            // Before CONNACK: 5.0 gets a CONNACK with the reason; 3.1.1 a return code where
            // one exists, otherwise just the close.
            std::string tail;
            if (version == v5) {
                encode(connack_packet{false, why, {}}, v5, tail);
            } else if (why == reason::unsupported_protocol_version ||
                       why == reason::client_identifier_not_valid ||
                       why == reason::bad_username_or_password || why == reason::not_authorized ||
                       why == reason::server_unavailable || why == reason::server_busy ||
                       why == reason::quota_exceeded) {
                encode(connack_packet{false, why, {}}, v311, tail);
            }
            return close_after(std::move(tail));
        }
        std::string tail;
        if (version == v5) encode(disconnect_packet{why, {}}, v5, tail);
        close_after(std::move(tail));
    }

    // Leaves the broker's books: session detached (or dropped), will published, hooks told.
    void detach() {
        if (!sess) return;
        auto s = std::move(sess);
        sess.reset();
        if (s->conn == this) {
            s->conn = nullptr;
            s->offline_since = clock::now();
            if (!s->persistent) br.sessions.erase(s->key);
            if (!s->device.empty() && br.hk.connection_changed)
                br.hk.connection_changed(s->device, false);
        }
        if (will && send_will) br.will_of(s->device, s->user, *will);
        will.reset();
    }

    void close_now() {
        if (st == state::closed) return;
        st = state::closed;
        detach();
        boost::system::error_code ec;
        lowest().close(ec);
        acks.clear();
        stats().connections.add(-1);
        br.connections.erase(shared_from_this());
    }

    // --- packets ------------------------------------------------------------------------

    // False when the packet must wait (telemetry while the writer is full).
    bool handle(const frame& f, std::string_view body) {
        packet p;
        if (st == state::awaiting_connect) {
            if (f.type() != packet_type::connect) {
                protocol_close(reason::protocol_error);
                return true;
            }
            auto rc = decode(f.first, body, version, p);
            auto* c = std::get_if<connect_packet>(&p);
            if (c) version = c->version == v5 ? v5 : v311;
            if (rc || !c) {
                protocol_close(rc ? rc : reason::malformed_packet);
                return true;
            }
            on_connect(*c);
            return true;
        }
        if (f.type() == packet_type::publish && !br.accepting_telemetry() && sess &&
            !sess->device.empty()) {
            pause();
            return false;
        }
        if (f.type() == packet_type::publish && version == v311 &&
            unresolved >= br.opts.receive_maximum) {
            pause();  // 3.1.1 has no receive maximum: stop reading until acks go out
            return false;
        }
        if (auto rc = decode(f.first, body, version, p)) {
            protocol_close(rc);
            return true;
        }
        switch (f.type()) {
            case packet_type::publish:
                on_publish(std::get<publish_packet>(p));
                break;
            case packet_type::puback:
                on_puback(std::get<ack_packet>(p));
                break;
            case packet_type::subscribe:
                on_subscribe(std::get<subscribe_packet>(p));
                break;
            case packet_type::unsubscribe:
                on_unsubscribe(std::get<unsubscribe_packet>(p));
                break;
            case packet_type::pingreq: {
                std::string o;
                encode(ping_packet{packet_type::pingresp}, o);
                send(o);
                break;
            }
            case packet_type::disconnect: {
                const auto& d = std::get<disconnect_packet>(p);
                send_will = d.reason == reason::disconnect_with_will;
                if (sess && version == v5 && d.props.session_expiry) {
                    // 5.0: a client may shorten (not create) its session's lifetime on leaving.
                    if (sess->expiry.count() == 0 && *d.props.session_expiry > 0) {
                        protocol_close(reason::protocol_error);
                        break;
                    }
                    sess->expiry = std::min<std::chrono::seconds>(
                        std::chrono::seconds(*d.props.session_expiry), br.opts.session_expiry_max);
                    sess->persistent = sess->expiry.count() > 0;
                }
                close_after({});
                break;
            }
            case packet_type::connect:
                protocol_close(reason::protocol_error);  // a second CONNECT
                break;
            case packet_type::pubrec:
            case packet_type::pubrel:
            case packet_type::pubcomp:
            case packet_type::auth:
            default:
                // QoS 2 flows and enhanced authentication are never started by this broker,
                // and server-to-client packets have no business here.
                protocol_close(reason::protocol_error);
                break;
        }
        return true;
    }

    result<std::pair<std::string, std::string>> identify(const connect_packet& c) {
        // -> (device, user); exactly one is set.
        if (c.password && !c.password->empty()) {
            if (br.hk.authenticate_user) {
                if (auto u = br.hk.authenticate_user(*c.password); u)
                    return std::pair<std::string, std::string>{"", *u};
            }
            // Some firmware sends the device token as both username and password.
            if (c.username && br.hk.authenticate_device)
                if (auto d = br.hk.authenticate_device(*c.username); d)
                    return std::pair<std::string, std::string>{*d, ""};
            return make_error("invalid_credentials", "credentials refused");
        }
        if (!c.username || c.username->empty())
            return make_error("unauthenticated", "no credentials");
        if (!br.hk.authenticate_device) return make_error("unauthenticated", "devices not served");
        auto d = br.hk.authenticate_device(*c.username);
        if (!d) return make_error("invalid_credentials", "token refused");
        return std::pair<std::string, std::string>{*d, ""};
    }

    void on_connect(connect_packet& c) {
        if (version == v5 && c.props.auth_method)
            return protocol_close(reason::bad_authentication_method);
        if (c.will && c.will->retain && version == v5)
            return protocol_close(reason::retain_not_supported);
        if (c.will && c.will->qos > 1) {
            if (version == v5) return protocol_close(reason::qos_not_supported);
            c.will->qos = 1;
        }
        if (c.client_id.size() > 256) return protocol_close(reason::client_identifier_not_valid);
        bool assigned = false;
        if (c.client_id.empty()) {
            if (version == v311 && !c.clean_start)
                return protocol_close(reason::client_identifier_not_valid);
            static const char* hexd = "0123456789abcdef";
            c.client_id = "auto-";
            uint64_t r = br.rng();
            for (int k = 0; k < 16; ++k, r >>= 4)
                c.client_id += hexd[r & 15];
            assigned = true;
        }
        auto who = identify(c);
        if (!who) {
            stats().dropped("auth_refused").inc();
            return protocol_close(who.error().code == "invalid_credentials"
                                      ? reason::bad_username_or_password
                                      : reason::not_authorized);
        }
        const auto& [device, user] = *who;
        const std::string key = (device.empty() ? "u:" + user : "d:" + device) + "\n" + c.client_id;

        // Session lifetime: 3.1.1 clean session 0 keeps it while the process lives (bounded
        // by session_expiry_max offline); 5.0 by the Session Expiry Interval, capped.
        std::chrono::seconds expiry{0};
        if (version == v5) {
            expiry = std::min<std::chrono::seconds>(
                std::chrono::seconds(c.props.session_expiry.value_or(0)),
                br.opts.session_expiry_max);
        } else if (!c.clean_start) {
            expiry = br.opts.session_expiry_max;
        }
        std::shared_ptr<session> s;
        bool present = false;
        if (auto it = br.sessions.find(key); it != br.sessions.end()) {
            s = it->second;
            const bool kept = s->persistent;
            if (s->conn) {  // session take-over: the older connection goes
                auto* old = s->conn;
                old->send_will = false;
                old->protocol_close(reason::session_taken_over);
            }
            if (c.clean_start || !kept)
                s.reset();
            else
                present = true;
        }
        if (!s && br.sessions.size() >= 2 * static_cast<size_t>(br.opts.max_connections)) {
            // Offline persistent sessions are bounded too (client ids are the client's to pick).
            stats().dropped("max_sessions").inc();
            return protocol_close(reason::quota_exceeded);
        }
        if (!s) {
            s = std::make_shared<session>();
            s->key = key;
            s->client_id = c.client_id;
            s->device = device;
            s->user = user;
        }
        br.sessions[key] = s;
        s->expiry = expiry;
        s->persistent = expiry.count() > 0;
        s->conn = this;
        sess = s;
        will = std::move(c.will);
        if (version == v5) {
            peer_receive_max = c.props.receive_maximum.value_or(65535);
            peer_max_packet = c.props.maximum_packet_size.value_or(0);
        } else {
            peer_receive_max = 100;
        }

        auto ka = std::chrono::seconds(c.keep_alive);
        bool ka_changed = false;
        if (ka.count() == 0 || ka > br.opts.keep_alive_max) {
            ka = br.opts.keep_alive_max;
            ka_changed = true;
        }
        keep_alive = std::chrono::duration_cast<std::chrono::milliseconds>(ka);
        st = state::connected;

        connack_packet ack;
        ack.session_present = present;
        if (version == v5) {
            ack.props.receive_maximum = br.opts.receive_maximum;
            ack.props.maximum_qos = 1;
            ack.props.retain_available = 0;
            ack.props.maximum_packet_size = br.opts.max_packet_size;
            ack.props.wildcard_available = 1;
            ack.props.subscription_ids_available = 0;
            ack.props.shared_available = 0;
            if (ka_changed) ack.props.server_keep_alive = static_cast<uint16_t>(ka.count());
            if (assigned) ack.props.assigned_client_id = c.client_id;
            if (c.props.session_expiry && std::chrono::seconds(*c.props.session_expiry) != expiry)
                ack.props.session_expiry = static_cast<uint32_t>(expiry.count());
        }
        std::string o;
        encode(ack, version, o);
        send(o);
        if (!device.empty() && br.hk.connection_changed) br.hk.connection_changed(device, true);
        if (present) {
            // Unacknowledged messages again (DUP), then what queued while offline.
            for (auto& [id, m] : s->inflight) {
                publish_packet p{m.topic, m.payload, 1, false, true, id, {}};
                std::string b;
                encode(p, version, b);
                send(b);
            }
            br.pump(*s);
        }
    }

    // Queues an acknowledgement; `ready` false for telemetry still being written.
    uint64_t push_ack(uint16_t id, uint8_t why, bool ready) {
        acks.push_back({id, why, ready});
        if (!ready) ++unresolved;
        const uint64_t seq = ack_base + acks.size() - 1;
        if (ready) send_ready_acks();
        return seq;
    }
    void resolve_ack(uint64_t seq, uint8_t why) {
        if (st == state::closed || seq < ack_base || seq - ack_base >= acks.size()) return;
        auto& a = acks[seq - ack_base];
        a.ready = true;
        a.reason = why;
        --unresolved;
        send_ready_acks();  // a paused connection is resumed by flush_done
    }
    void send_ready_acks() {
        std::string o;
        while (!acks.empty() && acks.front().ready) {
            encode(ack_packet{packet_type::puback, acks.front().packet_id, acks.front().reason, {}},
                   version, o);
            acks.pop_front();
            ++ack_base;
        }
        if (!o.empty()) send(o);
    }

    void on_publish(const publish_packet& p) {
        stats().received.inc();
        if (p.qos > 1) return protocol_close(reason::qos_not_supported);
        if (version == v5) {
            if (p.retain) return protocol_close(reason::retain_not_supported);
            if (!p.props.subscription_ids.empty()) return protocol_close(reason::protocol_error);
            if (p.props.topic_alias) return protocol_close(reason::topic_alias_invalid);
            if (p.qos == 1 && unresolved >= br.opts.receive_maximum)
                return protocol_close(reason::receive_maximum_exceeded);
        }
        const std::string& device = sess->device;
        if (!device.empty() && br.opts.rate_limit > 0 && !br.take_token(device)) {
            stats().dropped("rate_limited").inc();
            return protocol_close(reason::message_rate_too_high);
        }
        auto done = [&](uint8_t why) {
            if (why != reason::success)
                stats().dropped(why == reason::not_authorized ? "not_authorized" : "invalid").inc();
            if (p.qos == 1) push_ack(p.packet_id, why, true);
        };
        if (device.empty()) {
            if (!p.topic.starts_with(user_publish_prefix)) return done(reason::not_authorized);
            br.route_user_publish(p.topic, p.payload, p.qos);
            return done(reason::success);
        }
        if (p.topic == telemetry_topic) {
            auto self = shared_from_this();
            uint64_t seq = p.qos == 1 ? ack_base + acks.size() : 0;
            auto rc = br.add_telemetry(p.qos == 1 ? self : nullptr, seq, device, p.payload);
            if (rc != reason::success) return done(rc);
            if (p.qos == 1) push_ack(p.packet_id, reason::success, false);
            return;
        }
        if (p.topic == attributes_topic) {
            if (!br.hk.client_attributes) return done(reason::implementation_specific);
            auto st2 = br.hk.client_attributes(device, p.payload);
            if (!st2) {
                log::warn("mqtt client attributes refused",
                          {{"device", device}, {"error", st2.error().message}});
                return done(st2.error().code == "invalid_argument"
                                ? reason::payload_format_invalid
                                : reason::implementation_specific);
            }
            return done(reason::success);
        }
        if (p.topic.starts_with(request_prefix)) {
            if (!br.hk.attribute_request) return done(reason::implementation_specific);
            auto answer = br.hk.attribute_request(device, p.payload);
            if (!answer) return done(reason::payload_format_invalid);
            std::string topic =
                std::string(response_prefix).append(p.topic.substr(request_prefix.size()));
            if (auto q = sess->matching_qos(topic)) br.deliver(*sess, topic, *answer, *q);
            return done(reason::success);
        }
        done(reason::not_authorized);
    }

    void on_puback(const ack_packet& a) {
        if (!sess) return;
        sess->inflight.erase(a.packet_id);
        br.pump(*sess);
    }

    void on_subscribe(const subscribe_packet& s) {
        if (!s.props.subscription_ids.empty() && version == v5)
            return protocol_close(reason::subscription_identifiers_not_supported);
        suback_packet ack;
        ack.packet_id = s.packet_id;
        for (const auto& t : s.topics) {
            uint8_t r;
            if (t.filter.starts_with("$share/")) {
                r = version == v5 ? reason::shared_subscriptions_not_supported : 0x80;
            } else if (!valid_topic_filter(t.filter)) {
                r = version == v5 ? reason::topic_filter_invalid : 0x80;
            } else if (!sess->device.empty() && !t.filter.starts_with(device_namespace)) {
                // A device sees only its own namespace (never other devices' traffic).
                r = version == v5 ? reason::not_authorized : 0x80;
            } else {
                const uint8_t q = std::min<uint8_t>(t.qos(), 1);
                auto it = std::find_if(sess->subs.begin(), sess->subs.end(),
                                       [&](const auto& e) { return e.first == t.filter; });
                if (it != sess->subs.end()) {
                    it->second = q;
                    r = q;
                } else if (sess->subs.size() >= max_subscriptions) {
                    r = version == v5 ? reason::quota_exceeded : 0x80;  // bounded memory
                } else {
                    sess->subs.emplace_back(t.filter, q);
                    r = q;
                }
            }
            ack.reasons.push_back(r);
        }
        std::string o;
        encode(ack, version, o);
        send(o);
    }

    void on_unsubscribe(const unsubscribe_packet& u) {
        suback_packet ack;
        ack.type = packet_type::unsuback;
        ack.packet_id = u.packet_id;
        for (const auto& f : u.filters) {
            auto it = std::find_if(sess->subs.begin(), sess->subs.end(),
                                   [&](const auto& e) { return e.first == f; });
            if (it != sess->subs.end()) {
                sess->subs.erase(it);
                ack.reasons.push_back(reason::success);
            } else {
                ack.reasons.push_back(reason::no_subscription_existed);
            }
        }
        std::string o;
        encode(ack, version, o);
        send(o);
    }

    // An outbound PUBLISH (never larger than the client accepts).
    void send_publish(std::string_view topic, std::string_view payload, uint8_t qos, uint16_t id) {
        std::string o;
        encode(publish_packet{topic, payload, qos, false, false, id, {}}, version, o);
        if (peer_max_packet && o.size() > peer_max_packet) {
            // 5.0: a packet over the client's maximum is discarded as if delivered.
            stats().dropped("too_large_for_client").inc();
            if (qos == 1 && sess) sess->inflight.erase(id);
            return;
        }
        stats().sent.inc();
        send(o);
    }
};

// --- broker_state ---------------------------------------------------------------------------

bool impl::take_token(const std::string& device) {
    auto& b = buckets[device];
    const auto now = clock::now();
    if (b.at == clock::time_point{}) {
        b.tokens = opts.rate_limit;  // a second's worth of burst
    } else {
        const double dt = std::chrono::duration<double>(now - b.at).count();
        b.tokens = std::min(opts.rate_limit, b.tokens + dt * opts.rate_limit);
    }
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
}

void impl::pump(session& s) {
    auto* c = static_cast<connection*>(s.conn);
    if (!c || c->st != connection::state::connected) return;
    const size_t window = std::min<size_t>(c->peer_receive_max, max_inflight_out);
    while (!s.queued.empty() && s.inflight.size() < window) {
        outbound m = std::move(s.queued.front());
        s.queued.pop_front();
        uint16_t id = s.next_id;
        while (id == 0 || s.inflight.count(id))
            ++id;
        s.next_id = static_cast<uint16_t>(id + 1);
        auto& stored = s.inflight[id] = std::move(m);
        c->send_publish(stored.topic, stored.payload, 1, id);
    }
}

void impl::deliver(session& s, std::string_view topic, std::string_view payload, uint8_t qos) {
    auto* c = static_cast<connection*>(s.conn);
    const bool online = c && c->st == connection::state::connected;
    if (qos == 0) {
        if (!online) return;
        if (c->outbound_bytes() > max_outbound_bytes) {
            stats().dropped("slow_consumer").inc();
            return;
        }
        c->send_publish(topic, payload, 0, 0);
        return;
    }
    if (!online && !s.persistent) return;
    if (s.queued.size() >= opts.max_queued) {
        // Bounded memory per session: the oldest undelivered message makes room.
        s.queued.pop_front();
        stats().dropped("queue_full").inc();
    }
    s.queued.push_back({std::string(topic), std::string(payload), 1});
    pump(s);
}

void impl::route_user_publish(std::string_view topic, std::string_view payload, uint8_t qos) {
    for (auto& [key, s] : sessions) {
        if (!s->device.empty()) continue;
        if (auto q = s->matching_qos(topic)) deliver(*s, topic, payload, std::min(qos, *q));
    }
}

void impl::will_of(const std::string& device, const std::string& user, const will_message& w) {
    if (stopping) return;
    if (device.empty()) {
        if (!user.empty() && w.topic.starts_with(user_publish_prefix))
            route_user_publish(w.topic, w.payload, w.qos);
        return;
    }
    // A device's will is one more publish of that device: telemetry or client attributes.
    if (w.topic == telemetry_topic) {
        if (add_telemetry(nullptr, 0, device, w.payload) != reason::success)
            stats().dropped("invalid").inc();
    } else if (w.topic == attributes_topic && hk.client_attributes) {
        if (!hk.client_attributes(device, w.payload)) stats().dropped("invalid").inc();
    } else {
        stats().dropped("not_authorized").inc();
    }
}

uint8_t impl::add_telemetry(const std::shared_ptr<connection>& c, uint64_t seq,
                            std::string_view device, std::string_view payload) {
    ingest::json_options jo;
    jo.now_ns = now_ns();
    jo.bounds = opts.bounds;
    if (auto st = parser.parse(payload, device, jo, scratch); !st) {
        log::debug("mqtt telemetry refused", {{"device", device}, {"error", st.error().message}});
        return reason::payload_format_invalid;
    }
    auto& f = *filling;
    const auto& entries = scratch.series_entries();
    std::vector<uint32_t> map(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        auto idx = f.batch.series(entries[i].key, entries[i].type);
        if (!idx) return reason::payload_format_invalid;  // same key, two types in one flush
        map[i] = *idx;
    }
    pending_message m;
    m.conn = c;
    m.seq = seq;
    m.begin = f.batch.point_count();
    const auto& strings = scratch.strings();
    for (const auto& p : scratch.points()) {
        const auto type = entries[p.series].type;
        const uint32_t s = map[p.series];
        if (type == storage::value_type::string)
            f.batch.add_string(s, p.ts, strings[p.raw]);
        else if (type == storage::value_type::float64)
            f.batch.add(s, p.ts, std::bit_cast<double>(p.raw));
        else if (type == storage::value_type::boolean)
            f.batch.add_bool(s, p.ts, p.raw != 0);
        else
            f.batch.add_int(s, p.ts, static_cast<int64_t>(p.raw));
    }
    m.end = f.batch.point_count();
    f.messages.push_back(std::move(m));
    schedule_flush();
    return reason::success;
}

void impl::schedule_flush() {
    if (flush_posted || flush_running || filling->messages.empty()) return;
    flush_posted = true;
    // Posted, not run now: the read completions already queued add their messages first.
    asio::post(ioc, [self = shared_from_this()] { self->flush_now(); });
}

void impl::flush_now() {
    flush_posted = false;
    if (flush_running || filling->messages.empty()) return;
    flush_running = true;
    auto next = spare ? std::move(spare) : std::make_unique<flush_job>();
    next->batch.clear();
    next->messages.clear();
    {
        std::lock_guard lock(mu);
        job = std::move(filling);
    }
    filling = std::move(next);
    cv.notify_one();
}

void impl::flush_done(std::unique_ptr<flush_job> j) {
    stats().written.inc();
    for (auto& m : j->messages)
        if (m.conn) static_cast<connection*>(m.conn.get())->resolve_ack(m.seq, m.reason);
    j->messages.clear();
    j->batch.clear();
    spare = std::move(j);
    flush_running = false;
    // Everyone who waited for room (or for acks) reads again.
    auto waiting = std::move(paused);
    paused.clear();
    for (auto& w : waiting)
        if (auto c = w.lock()) c->resume();
    schedule_flush();
}

// Sub-batch of one message, for finding the message that spoils a merged batch.
static void copy_points(const storage::write_batch& from, size_t begin, size_t end,
                        storage::write_batch& to) {
    to.clear();
    const auto& entries = from.series_entries();
    std::unordered_map<uint32_t, uint32_t> map;
    for (size_t i = begin; i < end; ++i) {
        const auto& p = from.points()[i];
        auto it = map.find(p.series);
        if (it == map.end()) {
            auto idx = to.series(entries[p.series].key, entries[p.series].type);
            if (!idx) continue;
            it = map.emplace(p.series, *idx).first;
        }
        if (entries[p.series].type == storage::value_type::string)
            to.add_string(it->second, p.ts, from.strings()[p.raw]);
        else if (entries[p.series].type == storage::value_type::float64)
            to.add(it->second, p.ts, std::bit_cast<double>(p.raw));
        else if (entries[p.series].type == storage::value_type::boolean)
            to.add_bool(it->second, p.ts, p.raw != 0);
        else
            to.add_int(it->second, p.ts, static_cast<int64_t>(p.raw));
    }
}

void impl::write_job(flush_job& j) {
    // Retries until the engine takes the batch: an overloaded or failing disk delays the
    // PUBACKs (and, through the paused reads, the devices); it never loses an acked message.
    auto submit_retrying = [this](storage::write_batch& b) -> status {
        auto delay = std::chrono::milliseconds(5);
        while (true) {
            status st;
            try {
                st = sink.submit(b);
            } catch (const std::exception& e) {  // retried like a failing disk
                st = make_error("unavailable", std::string("write failed: ") + e.what());
            }
            if (st || st.error().code == "invalid_argument") return st;
            {
                std::unique_lock lock(mu);
                // On stop, give up: unacked QoS 1 messages are resent by their clients.
                if (writer_quit) return st;
            }
            log::warn("mqtt telemetry write delayed", {{"error", st.error().message}});
            std::this_thread::sleep_for(delay);
            delay = std::min(delay * 2, std::chrono::milliseconds(1000));
        }
    };
    auto st = submit_retrying(j.batch);
    if (st) return;
    if (st.error().code != "invalid_argument") {
        for (auto& m : j.messages)
            m.conn.reset();  // stopping: no ack
        return;
    }
    // One message spoils the batch (a type conflict, a point outside the window): write
    // them one by one so that only the guilty are refused.
    storage::write_batch one;
    for (auto& m : j.messages) {
        copy_points(j.batch, m.begin, m.end, one);
        auto r = submit_retrying(one);
        if (!r) {
            if (r.error().code != "invalid_argument") {
                m.conn.reset();
                continue;
            }
            m.reason = reason::payload_format_invalid;
            stats().dropped("invalid").inc();
            log::info("mqtt telemetry refused by the engine", {{"error", r.error().message}});
        }
    }
}

void impl::writer_loop() {
    while (true) {
        std::unique_ptr<flush_job> j;
        {
            std::unique_lock lock(mu);
            cv.wait(lock, [this] { return job || writer_quit; });
            if (!job) return;
            j = std::move(job);
        }
        write_job(*j);
        asio::post(ioc, [self = shared_from_this(), jp = j.release()]() mutable {
            self->flush_done(std::unique_ptr<flush_job>(jp));
        });
    }
}

void impl::accept() {
    acceptor.async_accept(
        [self = shared_from_this()](const boost::system::error_code& ec, tcp::socket sock) {
            if (self->stopping) return;
            if (!ec) {
                if (static_cast<int>(self->connections.size()) >= self->opts.max_connections) {
                    stats().dropped("max_connections").inc();
                    boost::system::error_code ignored;
                    sock.close(ignored);
                } else {
                    boost::system::error_code ignored;
                    sock.set_option(tcp::no_delay(true), ignored);
                    sock.non_blocking(true, ignored);
                    auto c = std::make_shared<connection>(*self, std::move(sock));
                    if (self->tls) c->secure.emplace(std::move(c->plain), *self->tls);
                    self->connections.insert(c);
                    stats().connections.add(1);
                    c->start();
                }
            }
            self->accept();
        });
}

void impl::sweep() {
    const auto now = clock::now();
    std::vector<std::shared_ptr<connection>> expired;
    for (const auto& c : connections) {
        if (c->st == connection::state::closing) {
            if (now - c->closing_since > std::chrono::seconds(5)) expired.push_back(c);
            continue;
        }
        if (c->paused) continue;
        const auto limit = c->st == connection::state::connected
                               ? c->keep_alive * 3 / 2
                               : std::chrono::milliseconds(opts.connect_timeout);
        if (now - c->last_rx > limit) expired.push_back(c);
    }
    for (auto& c : expired) {
        if (c->st == connection::state::connected) {
            stats().disconnects(hex_reason(reason::keep_alive_timeout)).inc();
            std::string tail;
            if (c->version == v5)
                encode(disconnect_packet{reason::keep_alive_timeout, {}}, v5, tail);
            c->close_after(std::move(tail));
        } else {
            c->close_now();
        }
    }
    // Offline persistent sessions past their expiry.
    for (auto it = sessions.begin(); it != sessions.end();) {
        const auto& s = it->second;
        if (!s->conn && now - s->offline_since > s->expiry)
            it = sessions.erase(it);
        else
            ++it;
    }
    sweep_timer.expires_after(std::chrono::milliseconds(250));
    sweep_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && !self->stopping) self->sweep();
    });
}

}  // namespace detail

using detail::broker_state;
using detail::connection;
using detail::stats;

// --- broker ---------------------------------------------------------------------------------

broker::broker(options opts, ingest::pipeline& sink, hooks h)
    : _impl(std::make_shared<detail::broker_state>(std::move(opts), sink, std::move(h))) {}

broker::~broker() {
    stop();
}

status broker::start() {
    auto& d = *_impl;
    if (d.started) return {};
    if (!d.opts.tls_cert.empty() || !d.opts.tls_key.empty()) {
        if (d.opts.tls_cert.empty() || d.opts.tls_key.empty())
            return make_error("invalid_config", "mqtt.tls_cert and mqtt.tls_key go together",
                              d.opts.tls_cert.empty() ? "mqtt.tls_cert" : "mqtt.tls_key");
        auto& ctx = d.tls.emplace(asio::ssl::context::tls_server);
        ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression);
        SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
        boost::system::error_code ec;
        ctx.use_certificate_chain_file(d.opts.tls_cert, ec);
        if (ec)
            return make_error("invalid_config",
                              "mqtt.tls_cert: cannot load " + d.opts.tls_cert + ": " + ec.message(),
                              "mqtt.tls_cert");
        ctx.use_private_key_file(d.opts.tls_key, asio::ssl::context::pem, ec);
        if (ec)
            return make_error("invalid_config",
                              "mqtt.tls_key: cannot load " + d.opts.tls_key + ": " + ec.message(),
                              "mqtt.tls_key");
    }
    boost::system::error_code ec;
    auto address = asio::ip::make_address(d.opts.bind, ec);
    if (ec)
        return make_error("invalid_config", "mqtt.bind: not an IP address: " + d.opts.bind,
                          "mqtt.bind");
    tcp::endpoint endpoint(address, d.opts.port);
    const std::string where = d.opts.bind + ":" + std::to_string(d.opts.port);
    d.acceptor.open(endpoint.protocol(), ec);
    if (!ec) d.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) d.acceptor.bind(endpoint, ec);
    if (!ec) d.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error("unavailable", "mqtt: cannot listen on " + where + ": " + ec.message());
    d.bound_port = d.acceptor.local_endpoint().port();
    d.started = true;
    d.accept();
    d.sweep();
    d.writer_thread = std::thread([impl = _impl] { impl->writer_loop(); });
    d.net_thread = std::thread([impl = _impl] {
        // A handler that throws (a hook, an allocation) costs that event, not the broker.
        while (true) {
            try {
                impl->ioc.run();
                return;
            } catch (const std::exception& e) {
                log::error("mqtt handler failed", {{"error", e.what()}});
            }
        }
    });
    return {};
}

void broker::stop() {
    auto& d = *_impl;
    if (!d.started) return;
    d.started = false;
    // On the network thread: no new connections; every client told (5.0: DISCONNECT 0x8B).
    std::promise<void> told;
    asio::post(d.ioc, [&d, &told] {
        d.stopping = true;
        boost::system::error_code ec;
        d.acceptor.close(ec);
        auto all = d.connections;
        for (auto& c : all) {
            c->send_will = false;
            if (c->st != connection::state::connected) {
                c->close_now();  // no session yet (or already closing): nothing to say
                continue;
            }
            std::string tail;
            if (c->st == connection::state::connected && c->version == v5)
                encode(disconnect_packet{reason::server_shutting_down, {}}, v5, tail);
            c->close_after(std::move(tail));
        }
        told.set_value();
    });
    told.get_future().wait();
    // What was received is written (QoS 0 included); unacknowledged QoS 1 is resent by the
    // clients anyway. Bounded wait: a stuck disk must not hold the shutdown forever.
    for (int i = 0; i < 1000; ++i) {
        std::promise<bool> idle;
        asio::post(d.ioc, [&d, &idle] {
            d.paused.clear();
            if (!d.flush_running && !d.filling->messages.empty()) d.flush_now();
            idle.set_value(!d.flush_running && d.filling->messages.empty());
        });
        if (idle.get_future().get()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    {
        std::lock_guard lock(d.mu);
        d.writer_quit = true;
    }
    d.cv.notify_all();
    if (d.writer_thread.joinable()) d.writer_thread.join();
    std::promise<void> closed;
    asio::post(d.ioc, [&d, &closed] {
        d.sweep_timer.cancel();
        auto all = d.connections;
        for (auto& c : all)
            c->close_now();
        d.sessions.clear();
        closed.set_value();
    });
    closed.get_future().wait();
    // Every socket is closed and the timer cancelled: run() returns once their handlers ran,
    // which also releases the handlers' references to the state.
    for (int i = 0; i < 200 && !d.ioc.stopped(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    d.ioc.stop();
    if (d.net_thread.joinable()) d.net_thread.join();
    // Whatever is still queued (a late publish) runs now, on closed books, so that no handler
    // keeps the state alive past the broker.
    d.ioc.restart();
    d.ioc.poll();
}

uint16_t broker::port() const {
    return _impl->bound_port;
}

void broker::send_to_device(std::string_view device, std::string_view topic, std::string payload) {
    // A weak reference: a publish racing stop() must not keep the broker's state alive.
    asio::post(_impl->ioc, [w = std::weak_ptr(_impl), d = std::string(device),
                            t = std::string(topic), p = std::move(payload)] {
        auto impl = w.lock();
        if (!impl) return;
        for (auto& [key, s] : impl->sessions) {
            if (s->device != d) continue;
            if (auto q = s->matching_qos(t)) impl->deliver(*s, t, p, *q);
        }
    });
}

void broker::publish(std::string_view topic, std::string payload) {
    asio::post(_impl->ioc,
               [w = std::weak_ptr(_impl), t = std::string(topic), p = std::move(payload)] {
                   if (auto impl = w.lock()) impl->route_user_publish(t, p, 1);
               });
}

}  // namespace clisonix::mqtt
