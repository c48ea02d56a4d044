// One client connection (see connection.h): reading, writing, closing, and the packets.
#include "mqtt/connection.h"
#include "mqtt/sparkplug.h"

namespace clisonix::mqtt::detail {

void connection::start() {
    if (secure) {
        st = state::tls_handshake;
        secure->async_handshake(asio::ssl::stream_base::server,
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

void connection::do_read() {
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

void connection::on_bytes(const uint8_t* data, size_t n) {
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

size_t connection::parse(const uint8_t* data, size_t n) {
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
        // Before CONNACK only a CONNECT may come, and a CONNECT is small: a client that
        // announces more is refused before its bytes are buffered.
        const uint32_t limit = st == state::awaiting_connect
                                   ? std::min(br.opts.max_packet_size, br.opts.max_connect_size)
                                   : br.opts.max_packet_size;
        auto fs = read_frame(data + offset, n - offset, limit, f);
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

void connection::pause() {
    if (paused) return;
    paused = true;
    br.paused.push_back(weak_from_this());
}

void connection::resume() {
    if (!paused || st == state::closed) return;
    paused = false;
    last_rx = clock::now();  // the wait was ours, not the client's silence
    on_bytes(nullptr, 0);
}

void connection::send(std::string_view bytes) {
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

void connection::do_write() {
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

void connection::finish_closing() {
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

void connection::close_after(std::string tail) {
    if (st == state::closed || st == state::closing) return;
    st = state::closing;
    closing_since = clock::now();
    detach();
    out.append(tail);
    if (!writing_now && out.empty()) return finish_closing();
    do_write();
}

void connection::protocol_close(uint8_t why) {
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

void connection::detach() {
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
    if (will && send_will) {
        if (s->device.empty() && br.opts.sparkplug && !br.stopping &&
            will->topic.starts_with(sparkplug::namespace_prefix))
            (void)br.sparkplug_publish(nullptr, nullptr, 0, *s, will->topic,
                                       will->payload);  // NDEATH
        else
            br.will_of(s->device, s->user, *will);
    }
    will.reset();
    // After the will (a Sparkplug NDEATH): an edge node gone without one is offline too.
    if (s->device.empty()) br.sparkplug_connection_lost(this);
}

void connection::close_now() {
    if (st == state::closed) return;
    st = state::closed;
    detach();
    boost::system::error_code ec;
    lowest().close(ec);
    acks.clear();
    stats().connections.add(-1);
    br.forget_address(address);
    br.connections.erase(shared_from_this());
}

bool connection::handle(const frame& f, std::string_view body) {
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

result<std::pair<std::string, std::string>> connection::identify(const connect_packet& c) {
    // -> (device, user); exactly one is set.
    // Credentials that could not be checked (the metadata store is away) are "unavailable",
    // not refused: CONNACK then says "server unavailable", and the device retries instead of
    // taking its token for wrong.
    bool unchecked = false;
    const auto refused = [&unchecked](const error& e) {
        if (e.code == errc::unavailable) unchecked = true;
    };
    const auto no = [&unchecked](std::string_view why) -> error {
        if (unchecked) return make_error("unavailable", "credentials not checked: store away");
        return make_error("invalid_credentials", std::string(why));
    };
    auto as_user = [&](const std::string& key) -> std::optional<std::string> {
        if (!br.hk.authenticate_user) return std::nullopt;
        auto u = br.hk.authenticate_user(key);
        if (!u) {
            refused(u.error());
            return std::nullopt;
        }
        authenticated_key = key;
        return *u;
    };
    if (c.password && !c.password->empty()) {
        if (auto u = as_user(*c.password)) return std::pair<std::string, std::string>{"", *u};
        // Sparkplug B edge nodes: the API key is the username, the password anything.
        if (br.opts.sparkplug && c.username && !c.username->empty() && *c.username != *c.password)
            if (auto u = as_user(*c.username)) return std::pair<std::string, std::string>{"", *u};
        // Some firmware sends the device token as both username and password.
        if (c.username && br.hk.authenticate_device) {
            auto d = br.hk.authenticate_device(*c.username);
            if (d) return std::pair<std::string, std::string>{*d, ""};
            refused(d.error());
        }
        return no("credentials refused");
    }
    if (!c.username || c.username->empty()) return make_error("unauthenticated", "no credentials");
    if (!br.hk.authenticate_device) return make_error("unauthenticated", "devices not served");
    auto d = br.hk.authenticate_device(*c.username);
    if (!d) {
        refused(d.error());
        // Sparkplug B edge nodes without a password: the API key is the username.
        if (br.opts.sparkplug)
            if (auto u = as_user(*c.username)) return std::pair<std::string, std::string>{"", *u};
        return no("token refused");
    }
    return std::pair<std::string, std::string>{*d, ""};
}

void connection::on_connect(connect_packet& c) {
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
        if (who.error().code == errc::unavailable)
            return protocol_close(reason::server_unavailable);
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
            std::chrono::seconds(c.props.session_expiry.value_or(0)), br.opts.session_expiry_max);
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
    s->may_write = !user.empty() && br.hk.user_may_write && br.hk.user_may_write(authenticated_key);
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

uint64_t connection::push_ack(uint16_t id, uint8_t why, bool ready) {
    acks.push_back({id, why, ready});
    if (!ready) ++unresolved;
    const uint64_t seq = ack_base + acks.size() - 1;
    if (ready) send_ready_acks();
    return seq;
}

void connection::resolve_ack(uint64_t seq, uint8_t why) {
    if (st == state::closed || seq < ack_base || seq - ack_base >= acks.size()) return;
    auto& a = acks[seq - ack_base];
    a.ready = true;
    a.reason = why;
    --unresolved;
    send_ready_acks();  // a paused connection is resumed by flush_done
}

void connection::send_ready_acks() {
    std::string o;
    while (!acks.empty() && acks.front().ready) {
        encode(ack_packet{packet_type::puback, acks.front().packet_id, acks.front().reason, {}},
               version, o);
        acks.pop_front();
        ++ack_base;
    }
    if (!o.empty()) send(o);
}

void connection::on_publish(const publish_packet& p) {
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
    // Past a per-device limit (series, attributes): a 5.0 QoS 1 message is answered with
    // its PUBACK reason (0x97 Quota exceeded) and the connection lives on; QoS 0 and 3.1.1
    // have no way to say it, so the connection is closed (5.0: DISCONNECT with the reason)
    // rather than the message dropped in silence.
    auto over_limit = [&](uint8_t why) {
        stats().dropped(why == reason::quota_exceeded ? "quota_exceeded" : "too_large").inc();
        if (version == v5 && p.qos == 1 && why == reason::quota_exceeded) {
            push_ack(p.packet_id, why, true);
            return;
        }
        protocol_close(why);
    };
    if (device.empty() && br.opts.sparkplug && p.topic.starts_with(sparkplug::namespace_prefix)) {
        const uint64_t seq = p.qos == 1 ? ack_base + acks.size() : 0;
        auto out = br.sparkplug_publish(this, p.qos == 1 ? shared_from_this() : nullptr, seq, *sess,
                                        p.topic, p.payload);
        if (out.reason == reason::quota_exceeded) return over_limit(out.reason);
        if (!out.pending) return done(out.reason);
        push_ack(p.packet_id, reason::success, false);
        return;
    }
    if (device.empty()) {
        if (!p.topic.starts_with(user_publish_prefix)) return done(reason::not_authorized);
        br.route_user_publish(p.topic, p.payload, p.qos);
        return done(reason::success);
    }
    if (p.topic == telemetry_topic) {
        auto self = shared_from_this();
        uint64_t seq = p.qos == 1 ? ack_base + acks.size() : 0;
        auto rc = br.add_telemetry(p.qos == 1 ? self : nullptr, seq, device, p.payload);
        if (rc == reason::quota_exceeded) return over_limit(rc);
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
            if (st2.error().code == "too_many_requests") return over_limit(reason::quota_exceeded);
            if (st2.error().code == "too_large") return over_limit(reason::packet_too_large);
            return done(st2.error().code == "invalid_argument" ? reason::payload_format_invalid
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

void connection::on_puback(const ack_packet& a) {
    if (!sess) return;
    sess->inflight.erase(a.packet_id);
    br.pump(*sess);
}

void connection::on_subscribe(const subscribe_packet& s) {
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
    if (sess->device.empty())
        for (size_t i = 0; i < s.topics.size(); ++i)
            if (ack.reasons[i] <= 1) br.sparkplug_subscribed(*sess, s.topics[i].filter);
}

void connection::on_unsubscribe(const unsubscribe_packet& u) {
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

void connection::send_publish(std::string_view topic, std::string_view payload, uint8_t qos,
                              uint16_t id) {
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

}  // namespace clisonix::mqtt::detail
