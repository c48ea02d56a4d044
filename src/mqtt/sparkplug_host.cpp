// Sparkplug B host application on the broker (see mqtt.h and
// docs/decisions/0083-sparkplug-b.md): births create devices, data becomes telemetry through
// the same durable batches as ThingsBoard telemetry, deaths mark devices offline, a missing
// birth or a sequence gap asks the edge node for a rebirth.
#include <boost/json.hpp>

#include <charconv>
#include <cmath>

#include "common/json_text.h"
#include "common/utf8.h"
#include "mqtt/connection.h"
#include "mqtt/sparkplug.h"

namespace clisonix::mqtt::detail {

namespace {

namespace sp = sparkplug;

// One rebirth request per edge node in this interval while it has not been born again: an
// edge node that keeps sending data until it reads the NCMD must not get one per message.
constexpr auto rebirth_interval = std::chrono::seconds(2);

std::string type_key(std::string_view device, std::string_view metric) {
    std::string k(device);
    k += '\n';
    k.append(metric);
    return k;
}

// The JSON telemetry (ingest's ThingsBoard form) of a birth or data message: an array of
// {"ts","values"} objects, one per metric, so that each keeps its own timestamp. Booleans are
// 0/1, text stays text; null, dataset, template and bytes values are left out. Written as
// text, not built as Boost.JSON values: building and serializing an object per metric was
// about a third of the server's CPU per point in bench/connectors (1,000-metric DDATA).
void append_json_text(std::string& out, std::string_view s) {
    if (utf8::valid(s)) {
        append_json_string(out, s);
        return;
    }
    // Copied as it is, so that ingest refuses the message as for any client's invalid JSON.
    out.push_back('"');
    out.append(s);
    out.push_back('"');
}

void append_point(std::string& out, std::string_view name, const sp::value& v, uint64_t ts) {
    const auto* d = std::get_if<double>(&v);
    if (d && !std::isfinite(*d)) return;
    const bool known = d || std::holds_alternative<int64_t>(v) ||
                       std::holds_alternative<uint64_t>(v) || std::holds_alternative<bool>(v) ||
                       std::holds_alternative<std::string>(v);
    if (!known) return;
    out += out.size() > 1 ? ",{\"ts\":" : "{\"ts\":";
    char buf[32];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, ts).ptr);
    out += ",\"values\":{";
    append_json_text(out, name);
    out.push_back(':');
    if (const auto* i = std::get_if<int64_t>(&v))
        out.append(buf, std::to_chars(buf, buf + sizeof buf, *i).ptr);
    else if (const auto* u = std::get_if<uint64_t>(&v))
        out.append(buf, std::to_chars(buf, buf + sizeof buf, *u).ptr);
    else if (d && *d == 0 && std::signbit(*d))
        out += "-0.0";  // the shortest form, "-0", would read back as the integer 0
    else if (d)
        append_json_number(out, *d);
    else if (const auto* b = std::get_if<bool>(&v))
        out.push_back(*b ? '1' : '0');
    else
        append_json_text(out, std::get<std::string>(v));
    out += "}}";
}

}  // namespace

std::string impl::sparkplug_state_payload() const {
    boost::json::object o;
    o["online"] = sparkplug_online;
    o["timestamp"] = sparkplug_state_ms;
    return boost::json::serialize(o);
}

void impl::sparkplug_subscribed(session& s, std::string_view filter) {
    if (!opts.sparkplug || sparkplug_state_ms == 0) return;
    const auto topic = sparkplug_state_topic();
    if (!topic_matches(filter, topic)) return;
    auto* c = static_cast<connection*>(s.conn);
    if (!c || c->st != connection::state::connected) return;
    // The retained state, as a broker keeping it would send it (QoS 0, retain flag set).
    const auto payload = sparkplug_state_payload();
    std::string o;
    encode(publish_packet{topic, payload, 0, true, false, 0, {}}, c->version, o);
    stats().sent.inc();
    c->send(o);
}

void impl::sparkplug_connection_lost(const void* c) {
    for (auto& [key, e] : sparkplug_edges) {
        if (e.owner != c) continue;
        e.owner = nullptr;
        if (!e.born) continue;
        e.born = false;
        if (hk.sparkplug_online) {
            const auto edge_node = key.substr(key.find('/') + 1);
            hk.sparkplug_online(edge_node, false);
            for (const auto& d : e.devices)
                hk.sparkplug_online(d, false);
        }
        e.devices.clear();
    }
}

sparkplug_outcome impl::sparkplug_publish(const void* origin, const std::shared_ptr<connection>& c,
                                          uint64_t ack_seq, const session& from,
                                          std::string_view topic_text, std::string_view payload) {
    auto topic = sp::parse_topic(topic_text);
    if (!topic) return {reason::topic_name_invalid, false};
    // Other Sparkplug applications subscribed to the namespace see the traffic too.
    auto route = [&] { route_user_publish(topic_text, payload, 0); };
    if (topic->type == sp::message_type::state) {
        // The host id is ours: nobody else speaks for it.
        if (topic->edge_node == opts.sparkplug_host_id) return {reason::not_authorized, false};
        route();
        return {};
    }
    if (!from.may_write) return {reason::not_authorized, false};
    if (topic->type == sp::message_type::ncmd || topic->type == sp::message_type::dcmd) {
        route();  // a command from another host application to an edge node
        return {};
    }
    auto decoded = sp::decode(payload);
    if (!decoded) {
        log::info("sparkplug payload refused",
                  {{"topic", topic_text}, {"error", decoded.error().message}});
        return {reason::payload_format_invalid, false};
    }
    route();
    const std::string edge_key = topic->group + "/" + topic->edge_node;
    auto& edge = sparkplug_edges[edge_key];
    const auto now = clock::now();
    auto request_rebirth = [&](std::string_view why) {
        edge.born = false;
        if (edge.rebirth_requested != clock::time_point{} &&
            now - edge.rebirth_requested < rebirth_interval)
            return;
        edge.rebirth_requested = now;
        log::info("sparkplug rebirth requested", {{"edge_node", edge_key}, {"reason", why}});
        stats().dropped("sparkplug_rebirth").inc();
        route_user_publish("spBv1.0/" + topic->group + "/NCMD/" + topic->edge_node,
                           sp::encode_rebirth(static_cast<uint64_t>(now_ms())), 0);
    };
    const bool death =
        topic->type == sp::message_type::ndeath || topic->type == sp::message_type::ddeath;
    const std::string device =
        topic->device.empty() ? topic->edge_node : topic->device;  // the Clisonix device
    if (topic->type == sp::message_type::ndeath) {
        // A will or a clean goodbye: seq-less by the specification.
        const bool was_born = edge.born;
        edge.born = false;
        if (was_born && hk.sparkplug_online) {
            hk.sparkplug_online(topic->edge_node, false);
            for (const auto& d : edge.devices)
                hk.sparkplug_online(d, false);
        }
        edge.devices.clear();
        return {};
    }
    if (topic->type == sp::message_type::nbirth) {
        edge.born = true;
        edge.owner = origin;
        edge.user = from.user;
        edge.alias_names.clear();
        edge.types.clear();
        edge.devices.clear();
        edge.rebirth_requested = {};
        edge.next_seq = static_cast<uint8_t>(decoded->seq.value_or(0) + 1);
    } else {
        if (!edge.born) {
            request_rebirth("no birth");
            return {};
        }
        if (!decoded->seq || *decoded->seq != edge.next_seq) {
            request_rebirth(decoded->seq
                                ? "sequence gap: expected " + std::to_string(edge.next_seq) +
                                      ", got " + std::to_string(*decoded->seq)
                                : "no seq");
            return {};
        }
        edge.next_seq = static_cast<uint8_t>(edge.next_seq + 1);
        if (topic->type == sp::message_type::ddata && !edge.devices.count(device)) {
            request_rebirth("data of a device without a birth");
            return {};
        }
    }
    const bool birth =
        topic->type == sp::message_type::nbirth || topic->type == sp::message_type::dbirth;
    if (death) {  // DDEATH
        edge.devices.erase(device);
        if (hk.sparkplug_online) hk.sparkplug_online(device, false);
        return {};
    }
    // Names, aliases and data types: a birth declares them, data refers to them.
    std::string points = "[";
    std::vector<sparkplug_metric> declared;
    const uint64_t default_ts = decoded->timestamp_ms.value_or(static_cast<uint64_t>(now_ms()));
    for (const auto& m : decoded->metrics) {
        std::string name = m.name;
        if (birth) {
            if (name.empty()) continue;  // decode() refused alias-only metrics without names
            if (m.alias) edge.alias_names[*m.alias] = name;
            edge.types[type_key(device, name)] = m.type;
            if (name == "bdSeq" || name.starts_with("Node Control/") ||
                name.starts_with("Device Control/"))
                continue;  // the protocol's own metrics, not measurements
            declared.push_back({name, std::string(sp::datatype_name(m.type)), m.unit});
        } else if (name.empty()) {
            auto it = edge.alias_names.find(*m.alias);
            if (it == edge.alias_names.end()) {
                request_rebirth("unknown alias " + std::to_string(*m.alias));
                return {};
            }
            name = it->second;
        }
        if (name == "bdSeq" || name.starts_with("Node Control/") ||
            name.starts_with("Device Control/"))
            continue;
        if (m.is_null) continue;
        uint32_t type = m.type;
        if (!birth) {
            auto t = edge.types.find(type_key(device, name));
            if (t != edge.types.end()) type = t->second;
        }
        append_point(points, name, sp::retype(m.v, type), m.timestamp_ms.value_or(default_ts));
    }
    if (birth) {
        if (topic->type == sp::message_type::dbirth) edge.devices.insert(device);
        if (hk.sparkplug_birth) {
            if (auto st = hk.sparkplug_birth(device, topic->group, topic->edge_node, declared);
                !st) {
                log::warn("sparkplug birth refused",
                          {{"device", device}, {"error", st.error().message}});
                return {reason::implementation_specific, false};
            }
        }
        if (hk.sparkplug_online) hk.sparkplug_online(device, true);
    }
    if (points.size() == 1) return {};
    points.push_back(']');
    auto rc = add_telemetry(c, ack_seq, device, points);
    if (rc != reason::success) return {rc, false};
    return {reason::success, c != nullptr};
}

}  // namespace clisonix::mqtt::detail

namespace clisonix::mqtt {

std::string encode_sparkplug(uint64_t timestamp_ms, std::optional<uint64_t> seq,
                             const std::vector<sparkplug_point>& metrics) {
    namespace sp = sparkplug;
    sp::payload p;
    p.timestamp_ms = timestamp_ms;
    p.seq = seq;
    for (const auto& in : metrics) {
        sp::metric m;
        m.name = in.name;
        m.alias = in.alias;
        m.timestamp_ms = timestamp_ms;
        for (uint32_t t = 1; t <= static_cast<uint32_t>(sp::datatype::template_); ++t)
            if (sp::datatype_name(t) == in.type) m.type = t;
        m.unit = in.unit;
        switch (static_cast<sp::datatype>(m.type)) {
            case sp::datatype::boolean:
                m.v = in.value != 0;
                break;
            case sp::datatype::float32:
            case sp::datatype::float64:
                m.v = in.value;
                break;
            default:
                m.v = static_cast<int64_t>(std::llround(in.value));
                break;
        }
        p.metrics.push_back(std::move(m));
    }
    return sp::encode(p);
}

}  // namespace clisonix::mqtt
