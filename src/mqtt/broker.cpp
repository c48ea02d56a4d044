// The MQTT broker: connections, sessions, routing, and the telemetry writer (see mqtt.h).
//
// Two threads: the network thread runs the io_context (every connection, session and the
// batch being filled live there, so none of them needs a lock); the writer thread takes a
// filled batch, calls pipeline.submit() (durable on return, group commit) and hands the
// outcome back to the network thread, which then sends the PUBACKs. While the writer works the
// network thread fills the next batch: one write per flush, however many messages.
#include <future>

#include "mqtt/connection.h"

namespace clisonix::mqtt {

namespace detail {

void impl::accept() {
    acceptor.async_accept(
        [self = shared_from_this()](const boost::system::error_code& ec, tcp::socket sock) {
            if (self->stopping) return;
            if (!ec) {
                boost::system::error_code aec;
                auto remote = sock.remote_endpoint(aec);
                std::string address = aec ? std::string() : remote.address().to_string();
                const int per_ip = self->opts.max_connections_per_ip;
                if (static_cast<int>(self->connections.size()) >= self->opts.max_connections) {
                    stats().dropped("max_connections").inc();
                    boost::system::error_code ignored;
                    sock.close(ignored);
                } else if (aec || (per_ip > 0 && self->per_address.count(address) &&
                                   self->per_address[address] >= per_ip)) {
                    // One address cannot take the whole broker (a site behind NAT still gets
                    // max_connections_per_ip devices); a socket already gone is not counted.
                    stats().dropped("max_connections_per_ip").inc();
                    boost::system::error_code ignored;
                    sock.close(ignored);
                } else {
                    ++self->per_address[address];
                    boost::system::error_code ignored;
                    sock.set_option(tcp::no_delay(true), ignored);
                    sock.non_blocking(true, ignored);
                    auto c = std::make_shared<connection>(*self, std::move(sock), address);
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
        if (c->st == connection::state::connected) {
            if (now - c->last_rx > c->keep_alive * 3 / 2) expired.push_back(c);
        } else if (now - c->opened_at > opts.connect_timeout) {
            stats().dropped("connect_timeout").inc();
            expired.push_back(c);
        }
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
    if (d.opts.sparkplug) {
        // The host application is online (Sparkplug 3.0 STATE, retained for subscribers).
        d.sparkplug_online = true;
        d.sparkplug_state_ms = now_ms();
    }
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
        if (d.opts.sparkplug && d.sparkplug_online) {
            // Offline before the connections go, so that Sparkplug applications read it.
            d.sparkplug_online = false;
            d.sparkplug_state_ms = now_ms();
            d.route_user_publish(d.sparkplug_state_topic(), d.sparkplug_state_payload(), 0);
        }
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

void broker::revoke_device(std::string_view device) {
    asio::post(_impl->ioc, [w = std::weak_ptr(_impl), d = std::string(device)] {
        if (auto impl = w.lock()) impl->revoke(d, {});
    });
}

void broker::revoke_user(std::string_view principal) {
    if (principal.empty()) return;
    asio::post(_impl->ioc, [w = std::weak_ptr(_impl), u = std::string(principal)] {
        if (auto impl = w.lock()) impl->revoke({}, u);
    });
}

}  // namespace clisonix::mqtt
