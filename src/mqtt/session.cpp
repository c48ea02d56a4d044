// Sessions and routing: what a device or user receives, rate limits, wills (see mqtt.h).
#include "mqtt/connection.h"

namespace clisonix::mqtt::detail {

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
void impl::revoke(const std::string& device, const std::string& user) {
    auto of_principal = [&](const session& s) {
        return device.empty() ? s.device.empty() && s.user == user : s.device == device;
    };
    std::vector<std::shared_ptr<connection>> cut;
    for (const auto& c : connections)
        if (c->sess && of_principal(*c->sess)) cut.push_back(c);
    for (auto& c : cut) {
        c->send_will = false;  // a will is one more message of the revoked credential
        if (c->sess) c->sess->persistent = false;
        c->protocol_close(reason::not_authorized);
    }
    for (auto it = sessions.begin(); it != sessions.end();) {
        if (of_principal(*it->second))
            it = sessions.erase(it);
        else
            ++it;
    }
    if (!device.empty()) buckets.erase(device);
    if (!cut.empty())
        log::info("mqtt sessions closed: credential revoked",
                  {{device.empty() ? "user" : "device", device.empty() ? user : device},
                   {"connections", static_cast<int64_t>(cut.size())}});
}

}  // namespace clisonix::mqtt::detail
