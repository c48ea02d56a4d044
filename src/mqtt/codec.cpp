// MQTT packet codec: strict decoding and encoding of 3.1.1 and 5.0 packets (see codec.h).
#include "mqtt/codec.h"

#include <array>

namespace clisonix::mqtt {

namespace {

// Where a property may appear (MQTT 5.0 section 2.2.2.2).
enum ctx : uint16_t {
    c_connect = 1 << 0,
    c_will = 1 << 1,
    c_connack = 1 << 2,
    c_publish = 1 << 3,
    c_ack = 1 << 4,  // PUBACK, PUBREC, PUBREL, PUBCOMP
    c_subscribe = 1 << 5,
    c_suback = 1 << 6,
    c_unsubscribe = 1 << 7,
    c_unsuback = 1 << 8,
    c_disconnect = 1 << 9,
    c_auth = 1 << 10,
};

class reader {
public:
    explicit reader(std::string_view bytes) : _p(bytes.data()), _n(bytes.size()) {}
    size_t left() const { return _n - _i; }
    bool done() const { return _i == _n; }

    bool u8(uint8_t& v) {
        if (left() < 1) return false;
        v = static_cast<uint8_t>(_p[_i++]);
        return true;
    }
    bool u16(uint16_t& v) {
        if (left() < 2) return false;
        v = static_cast<uint16_t>(static_cast<uint8_t>(_p[_i]) << 8 |
                                  static_cast<uint8_t>(_p[_i + 1]));
        _i += 2;
        return true;
    }
    bool u32(uint32_t& v) {
        if (left() < 4) return false;
        v = 0;
        for (int k = 0; k < 4; ++k)
            v = v << 8 | static_cast<uint8_t>(_p[_i + k]);
        _i += 4;
        return true;
    }
    // Variable Byte Integer: at most 4 bytes, minimally encoded.
    bool varint(uint32_t& v) {
        v = 0;
        for (int k = 0; k < 4; ++k) {
            uint8_t b;
            if (!u8(b)) return false;
            v |= static_cast<uint32_t>(b & 0x7F) << (7 * k);
            if ((b & 0x80) == 0) return !(k > 0 && b == 0);
        }
        return false;
    }
    bool bytes(size_t n, std::string_view& out) {
        if (left() < n) return false;
        out = std::string_view(_p + _i, n);
        _i += n;
        return true;
    }
    bool binary(std::string_view& out) {
        uint16_t n;
        return u16(n) && bytes(n, out);
    }
    std::string_view rest() {
        std::string_view r(_p + _i, _n - _i);
        _i = _n;
        return r;
    }

private:
    const char* _p;
    size_t _n;
    size_t _i = 0;
};

// A UTF-8 string field: 0 or the reason code.
uint8_t read_string(reader& r, std::string_view& out) {
    if (!r.binary(out)) return reason::malformed_packet;
    return valid_utf8(out) ? reason::success : reason::malformed_packet;
}
uint8_t read_string(reader& r, std::string& out) {
    std::string_view v;
    if (auto rc = read_string(r, v)) return rc;
    out.assign(v);
    return reason::success;
}

uint8_t read_properties(reader& r, uint16_t where, properties& p) {
    uint32_t length;
    if (!r.varint(length)) return reason::malformed_packet;
    std::string_view block;
    if (!r.bytes(length, block)) return reason::malformed_packet;
    reader pr(block);
    auto allowed = [where](uint16_t mask) { return (where & mask) != 0; };
    while (!pr.done()) {
        uint32_t id;
        // Identifiers are Variable Byte Integers, but every defined one fits in one byte.
        if (!pr.varint(id)) return reason::malformed_packet;
        auto byte_prop = [&](std::optional<uint8_t>& dst, uint16_t mask, bool zero_one) -> uint8_t {
            if (!allowed(mask)) return reason::malformed_packet;
            if (dst) return reason::protocol_error;
            uint8_t v;
            if (!pr.u8(v)) return reason::malformed_packet;
            if (zero_one && v > 1) return reason::protocol_error;
            dst = v;
            return 0;
        };
        auto u16_prop = [&](std::optional<uint16_t>& dst, uint16_t mask, bool nonzero) -> uint8_t {
            if (!allowed(mask)) return reason::malformed_packet;
            if (dst) return reason::protocol_error;
            uint16_t v;
            if (!pr.u16(v)) return reason::malformed_packet;
            if (nonzero && v == 0) return reason::protocol_error;
            dst = v;
            return 0;
        };
        auto u32_prop = [&](std::optional<uint32_t>& dst, uint16_t mask, bool nonzero) -> uint8_t {
            if (!allowed(mask)) return reason::malformed_packet;
            if (dst) return reason::protocol_error;
            uint32_t v;
            if (!pr.u32(v)) return reason::malformed_packet;
            if (nonzero && v == 0) return reason::protocol_error;
            dst = v;
            return 0;
        };
        auto str_prop = [&](std::optional<std::string>& dst, uint16_t mask, bool utf8) -> uint8_t {
            if (!allowed(mask)) return reason::malformed_packet;
            if (dst) return reason::protocol_error;
            std::string_view v;
            if (!pr.binary(v)) return reason::malformed_packet;
            if (utf8 && !valid_utf8(v)) return reason::malformed_packet;
            dst = std::string(v);
            return 0;
        };
        uint8_t rc = 0;
        switch (id) {
            case 0x01:
                rc = byte_prop(p.payload_format, c_publish | c_will, true);
                break;
            case 0x02:
                rc = u32_prop(p.message_expiry, c_publish | c_will, false);
                break;
            case 0x03:
                rc = str_prop(p.content_type, c_publish | c_will, true);
                break;
            case 0x08:
                rc = str_prop(p.response_topic, c_publish | c_will, true);
                if (!rc && !valid_topic_name(*p.response_topic)) rc = reason::protocol_error;
                break;
            case 0x09:
                rc = str_prop(p.correlation_data, c_publish | c_will, false);
                break;
            case 0x0B: {
                if (!allowed(c_publish | c_subscribe)) return reason::malformed_packet;
                if ((where & c_subscribe) && !p.subscription_ids.empty())
                    return reason::protocol_error;
                uint32_t v;
                if (!pr.varint(v)) return reason::malformed_packet;
                if (v == 0) return reason::protocol_error;
                p.subscription_ids.push_back(v);
                break;
            }
            case 0x11:
                rc = u32_prop(p.session_expiry, c_connect | c_connack | c_disconnect, false);
                break;
            case 0x12:
                rc = str_prop(p.assigned_client_id, c_connack, true);
                break;
            case 0x13:
                rc = u16_prop(p.server_keep_alive, c_connack, false);
                break;
            case 0x15:
                rc = str_prop(p.auth_method, c_connect | c_connack | c_auth, true);
                break;
            case 0x16:
                rc = str_prop(p.auth_data, c_connect | c_connack | c_auth, false);
                break;
            case 0x17:
                rc = byte_prop(p.request_problem_info, c_connect, true);
                break;
            case 0x18:
                rc = u32_prop(p.will_delay, c_will, false);
                break;
            case 0x19:
                rc = byte_prop(p.request_response_info, c_connect, true);
                break;
            case 0x1A:
                rc = str_prop(p.response_info, c_connack, true);
                break;
            case 0x1C:
                rc = str_prop(p.server_reference, c_connack | c_disconnect, true);
                break;
            case 0x1F:
                rc = str_prop(p.reason_string,
                              c_connack | c_ack | c_suback | c_unsuback | c_disconnect | c_auth,
                              true);
                break;
            case 0x21:
                rc = u16_prop(p.receive_maximum, c_connect | c_connack, true);
                break;
            case 0x22:
                rc = u16_prop(p.topic_alias_maximum, c_connect | c_connack, false);
                break;
            case 0x23:
                rc = u16_prop(p.topic_alias, c_publish, true);
                break;
            case 0x24:
                rc = byte_prop(p.maximum_qos, c_connack, true);
                break;
            case 0x25:
                rc = byte_prop(p.retain_available, c_connack, true);
                break;
            case 0x26: {
                // Allowed in every packet that has properties.
                std::string_view k, v;
                if (!pr.binary(k) || !pr.binary(v)) return reason::malformed_packet;
                if (!valid_utf8(k) || !valid_utf8(v)) return reason::malformed_packet;
                p.user.emplace_back(std::string(k), std::string(v));
                break;
            }
            case 0x27:
                rc = u32_prop(p.maximum_packet_size, c_connect | c_connack, true);
                break;
            case 0x28:
                rc = byte_prop(p.wildcard_available, c_connack, true);
                break;
            case 0x29:
                rc = byte_prop(p.subscription_ids_available, c_connack, true);
                break;
            case 0x2A:
                rc = byte_prop(p.shared_available, c_connack, true);
                break;
            default:
                return reason::malformed_packet;
        }
        if (rc) return rc;
    }
    return reason::success;
}

// --- encoding -------------------------------------------------------------------------------

void put_u8(std::string& o, uint8_t v) {
    o.push_back(static_cast<char>(v));
}
void put_u16(std::string& o, uint16_t v) {
    o.push_back(static_cast<char>(v >> 8));
    o.push_back(static_cast<char>(v & 0xFF));
}
void put_u32(std::string& o, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8)
        o.push_back(static_cast<char>((v >> s) & 0xFF));
}
void put_varint(std::string& o, uint32_t v) {
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        if (v) b |= 0x80;
        o.push_back(static_cast<char>(b));
    } while (v);
}
void put_string(std::string& o, std::string_view s) {
    put_u16(o, static_cast<uint16_t>(s.size()));
    o.append(s);
}

void put_properties(std::string& o, const properties& p) {
    std::string b;
    auto byte = [&b](uint8_t id, const std::optional<uint8_t>& v) {
        if (v) put_u8(b, id), put_u8(b, *v);
    };
    auto u16 = [&b](uint8_t id, const std::optional<uint16_t>& v) {
        if (v) put_u8(b, id), put_u16(b, *v);
    };
    auto u32 = [&b](uint8_t id, const std::optional<uint32_t>& v) {
        if (v) put_u8(b, id), put_u32(b, *v);
    };
    auto str = [&b](uint8_t id, const std::optional<std::string>& v) {
        if (v) put_u8(b, id), put_string(b, *v);
    };
    byte(0x01, p.payload_format);
    u32(0x02, p.message_expiry);
    str(0x03, p.content_type);
    str(0x08, p.response_topic);
    str(0x09, p.correlation_data);
    for (uint32_t id : p.subscription_ids) {
        put_u8(b, 0x0B);
        put_varint(b, id);
    }
    u32(0x11, p.session_expiry);
    str(0x12, p.assigned_client_id);
    u16(0x13, p.server_keep_alive);
    str(0x15, p.auth_method);
    str(0x16, p.auth_data);
    byte(0x17, p.request_problem_info);
    u32(0x18, p.will_delay);
    byte(0x19, p.request_response_info);
    str(0x1A, p.response_info);
    str(0x1C, p.server_reference);
    str(0x1F, p.reason_string);
    u16(0x21, p.receive_maximum);
    u16(0x22, p.topic_alias_maximum);
    u16(0x23, p.topic_alias);
    byte(0x24, p.maximum_qos);
    byte(0x25, p.retain_available);
    for (const auto& [k, v] : p.user) {
        put_u8(b, 0x26);
        put_string(b, k);
        put_string(b, v);
    }
    u32(0x27, p.maximum_packet_size);
    byte(0x28, p.wildcard_available);
    byte(0x29, p.subscription_ids_available);
    byte(0x2A, p.shared_available);
    put_varint(o, static_cast<uint32_t>(b.size()));
    o.append(b);
}

bool has_properties(const properties& p) {
    std::string probe;
    put_properties(probe, p);
    return probe.size() > 1;
}

void finish(std::string& out, uint8_t first, const std::string& body) {
    put_u8(out, first);
    put_varint(out, static_cast<uint32_t>(body.size()));
    out.append(body);
}

// --- decoding ------------------------------------------------------------------------------

uint8_t decode_connect(std::string_view body, connect_packet& c) {
    reader r(body);
    std::string_view name;
    if (!r.binary(name)) return reason::malformed_packet;
    uint8_t level;
    if (!r.u8(level)) return reason::malformed_packet;
    c.version = level;
    if (name == "MQIsdp" && level == 3) return reason::unsupported_protocol_version;
    if (name != "MQTT") return reason::unsupported_protocol_version;
    if (level != v311 && level != v5) return reason::unsupported_protocol_version;
    uint8_t flags;
    if (!r.u8(flags) || !r.u16(c.keep_alive)) return reason::malformed_packet;
    if (flags & 0x01) return reason::malformed_packet;  // reserved bit
    const bool will = flags & 0x04;
    const uint8_t will_qos = (flags >> 3) & 3;
    const bool will_retain = flags & 0x20;
    const bool has_password = flags & 0x40;
    const bool has_username = flags & 0x80;
    c.clean_start = flags & 0x02;
    if (!will && (will_qos || will_retain)) return reason::malformed_packet;
    if (will_qos == 3) return reason::malformed_packet;
    if (level == v311 && has_password && !has_username) return reason::malformed_packet;
    if (level == v5)
        if (auto rc = read_properties(r, c_connect, c.props)) return rc;
    if (auto rc = read_string(r, c.client_id)) return rc;
    if (will) {
        will_message w;
        w.qos = will_qos;
        w.retain = will_retain;
        if (level == v5)
            if (auto rc = read_properties(r, c_will, w.props)) return rc;
        if (auto rc = read_string(r, w.topic)) return rc;
        if (!valid_topic_name(w.topic)) return reason::topic_name_invalid;
        std::string_view payload;
        if (!r.binary(payload)) return reason::malformed_packet;
        if (w.props.payload_format.value_or(0) == 1 && !valid_utf8(payload))
            return reason::payload_format_invalid;
        w.payload.assign(payload);
        c.will = std::move(w);
    }
    if (has_username) {
        std::string u;
        if (auto rc = read_string(r, u)) return rc;
        c.username = std::move(u);
    }
    if (has_password) {
        std::string_view pw;
        if (!r.binary(pw)) return reason::malformed_packet;
        c.password = std::string(pw);
    }
    if (!r.done()) return reason::malformed_packet;
    return reason::success;
}

uint8_t decode_publish(uint8_t first, std::string_view body, uint8_t version, publish_packet& p) {
    p.dup = first & 0x08;
    p.qos = (first >> 1) & 3;
    p.retain = first & 0x01;
    if (p.qos == 3) return reason::malformed_packet;
    if (p.qos == 0 && p.dup) return reason::malformed_packet;
    reader r(body);
    if (!r.binary(p.topic)) return reason::malformed_packet;
    if (!valid_utf8(p.topic)) return reason::malformed_packet;
    if (p.qos > 0) {
        if (!r.u16(p.packet_id)) return reason::malformed_packet;
        if (p.packet_id == 0) return reason::malformed_packet;
    }
    if (version == v5)
        if (auto rc = read_properties(r, c_publish, p.props)) return rc;
    if (p.topic.empty()) {
        // 5.0 allows an empty topic only with a Topic Alias, which this broker never grants.
        if (version == v5 && p.props.topic_alias) return reason::topic_alias_invalid;
        return version == v5 ? reason::protocol_error : reason::malformed_packet;
    }
    if (!valid_topic_name(p.topic)) return reason::topic_name_invalid;
    p.payload = r.rest();
    if (p.props.payload_format.value_or(0) == 1 && !valid_utf8(p.payload))
        return reason::payload_format_invalid;
    return reason::success;
}

uint8_t decode_ack(packet_type type, std::string_view body, uint8_t version, ack_packet& a) {
    a.type = type;
    reader r(body);
    if (!r.u16(a.packet_id)) return reason::malformed_packet;
    if (a.packet_id == 0) return reason::malformed_packet;
    if (version != v5) return r.done() ? reason::success : reason::malformed_packet;
    if (r.done()) return reason::success;
    if (!r.u8(a.reason)) return reason::malformed_packet;
    if (r.done()) return reason::success;
    if (auto rc = read_properties(r, c_ack, a.props)) return rc;
    return r.done() ? reason::success : reason::malformed_packet;
}

uint8_t decode_subscribe(std::string_view body, uint8_t version, subscribe_packet& s) {
    reader r(body);
    if (!r.u16(s.packet_id) || s.packet_id == 0) return reason::malformed_packet;
    if (version == v5)
        if (auto rc = read_properties(r, c_subscribe, s.props)) return rc;
    while (!r.done()) {
        subscription sub;
        if (auto rc = read_string(r, sub.filter)) return rc;
        if (!r.u8(sub.options)) return reason::malformed_packet;
        if (version == v5) {
            if (sub.options & 0xC0) return reason::malformed_packet;
            if (((sub.options >> 4) & 3) == 3) return reason::protocol_error;
        } else if (sub.options & 0xFC) {
            return reason::malformed_packet;
        }
        if (sub.qos() == 3) return reason::malformed_packet;
        s.topics.push_back(std::move(sub));
    }
    if (s.topics.empty()) return version == v5 ? reason::protocol_error : reason::malformed_packet;
    return reason::success;
}

uint8_t decode_suback(packet_type type, std::string_view body, uint8_t version, suback_packet& s) {
    s.type = type;
    reader r(body);
    if (!r.u16(s.packet_id) || s.packet_id == 0) return reason::malformed_packet;
    if (version == v5)
        if (auto rc =
                read_properties(r, type == packet_type::suback ? c_suback : c_unsuback, s.props))
            return rc;
    while (!r.done()) {
        uint8_t b;
        if (!r.u8(b)) return reason::malformed_packet;
        s.reasons.push_back(b);
    }
    if (type == packet_type::suback && s.reasons.empty()) return reason::protocol_error;
    if (type == packet_type::unsuback && version == v5 && s.reasons.empty())
        return reason::protocol_error;
    if (type == packet_type::unsuback && version != v5 && !s.reasons.empty())
        return reason::malformed_packet;
    return reason::success;
}

uint8_t decode_unsubscribe(std::string_view body, uint8_t version, unsubscribe_packet& u) {
    reader r(body);
    if (!r.u16(u.packet_id) || u.packet_id == 0) return reason::malformed_packet;
    if (version == v5)
        if (auto rc = read_properties(r, c_unsubscribe, u.props)) return rc;
    while (!r.done()) {
        std::string f;
        if (auto rc = read_string(r, f)) return rc;
        u.filters.push_back(std::move(f));
    }
    if (u.filters.empty()) return version == v5 ? reason::protocol_error : reason::malformed_packet;
    return reason::success;
}

uint8_t decode_connack(std::string_view body, uint8_t version, connack_packet& c) {
    reader r(body);
    uint8_t flags;
    if (!r.u8(flags) || !r.u8(c.reason)) return reason::malformed_packet;
    if (flags & 0xFE) return reason::malformed_packet;
    c.session_present = flags & 1;
    if (version == v5)
        if (auto rc = read_properties(r, c_connack, c.props)) return rc;
    return r.done() ? reason::success : reason::malformed_packet;
}

uint8_t decode_disconnect(std::string_view body, uint8_t version, disconnect_packet& d) {
    reader r(body);
    if (version != v5) return r.done() ? reason::success : reason::malformed_packet;
    if (r.done()) return reason::success;
    if (!r.u8(d.reason)) return reason::malformed_packet;
    if (r.done()) return reason::success;
    if (auto rc = read_properties(r, c_disconnect, d.props)) return rc;
    return r.done() ? reason::success : reason::malformed_packet;
}

uint8_t decode_auth(std::string_view body, auth_packet& a) {
    reader r(body);
    if (r.done()) return reason::success;
    if (!r.u8(a.reason)) return reason::malformed_packet;
    if (r.done()) return reason::success;
    if (auto rc = read_properties(r, c_auth, a.props)) return rc;
    return r.done() ? reason::success : reason::malformed_packet;
}

}  // namespace

uint8_t connack_code_v3(uint8_t reason5) {
    switch (reason5) {
        case reason::success:
            return 0;
        case reason::unsupported_protocol_version:
            return 1;
        case reason::client_identifier_not_valid:
            return 2;
        case reason::server_unavailable:
        case reason::server_busy:
        case reason::quota_exceeded:
            return 3;
        case reason::bad_username_or_password:
            return 4;
        case reason::not_authorized:
            return 5;
        default:
            return 3;
    }
}

frame_status read_frame(const uint8_t* data, size_t size, uint32_t max_packet_size, frame& out) {
    if (size < 2) return frame_status::incomplete;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
        if (1 + k >= size) return frame_status::incomplete;
        const uint8_t b = data[1 + k];
        v |= static_cast<uint32_t>(b & 0x7F) << (7 * k);
        if ((b & 0x80) == 0) {
            if (k > 0 && b == 0) return frame_status::malformed;  // not minimal
            out.first = data[0];
            out.remaining = v;
            out.header_size = static_cast<uint8_t>(2 + k);
            if (out.total() > max_packet_size) return frame_status::too_large;
            return size >= out.total() ? frame_status::complete : frame_status::incomplete;
        }
    }
    return frame_status::malformed;
}

uint8_t decode(uint8_t first, std::string_view body, uint8_t version, packet& out) {
    const auto type = static_cast<packet_type>(first >> 4);
    const uint8_t flags = first & 0x0F;
    auto flags_must_be = [flags](uint8_t expected) { return flags == expected; };
    switch (type) {
        case packet_type::connect: {
            if (!flags_must_be(0)) return reason::malformed_packet;
            auto& c = out.emplace<connect_packet>();
            return decode_connect(body, c);
        }
        case packet_type::connack: {
            if (!flags_must_be(0)) return reason::malformed_packet;
            return decode_connack(body, version, out.emplace<connack_packet>());
        }
        case packet_type::publish:
            return decode_publish(first, body, version, out.emplace<publish_packet>());
        case packet_type::puback:
        case packet_type::pubrec:
        case packet_type::pubcomp:
            if (!flags_must_be(0)) return reason::malformed_packet;
            return decode_ack(type, body, version, out.emplace<ack_packet>());
        case packet_type::pubrel:
            if (!flags_must_be(2)) return reason::malformed_packet;
            return decode_ack(type, body, version, out.emplace<ack_packet>());
        case packet_type::subscribe:
            if (!flags_must_be(2)) return reason::malformed_packet;
            return decode_subscribe(body, version, out.emplace<subscribe_packet>());
        case packet_type::suback:
        case packet_type::unsuback:
            if (!flags_must_be(0)) return reason::malformed_packet;
            return decode_suback(type, body, version, out.emplace<suback_packet>());
        case packet_type::unsubscribe:
            if (!flags_must_be(2)) return reason::malformed_packet;
            return decode_unsubscribe(body, version, out.emplace<unsubscribe_packet>());
        case packet_type::pingreq:
        case packet_type::pingresp:
            if (!flags_must_be(0) || !body.empty()) return reason::malformed_packet;
            out.emplace<ping_packet>().type = type;
            return reason::success;
        case packet_type::disconnect:
            if (!flags_must_be(0)) return reason::malformed_packet;
            return decode_disconnect(body, version, out.emplace<disconnect_packet>());
        case packet_type::auth:
            if (version != v5 || !flags_must_be(0)) return reason::malformed_packet;
            return decode_auth(body, out.emplace<auth_packet>());
    }
    return reason::malformed_packet;  // type 0 is reserved
}

void encode(const connect_packet& p, std::string& out) {
    std::string b;
    put_string(b, "MQTT");
    put_u8(b, p.version);
    uint8_t flags = 0;
    if (p.clean_start) flags |= 0x02;
    if (p.will) {
        flags |= 0x04 | static_cast<uint8_t>(p.will->qos << 3);
        if (p.will->retain) flags |= 0x20;
    }
    if (p.password) flags |= 0x40;
    if (p.username) flags |= 0x80;
    put_u8(b, flags);
    put_u16(b, p.keep_alive);
    if (p.version == v5) put_properties(b, p.props);
    put_string(b, p.client_id);
    if (p.will) {
        if (p.version == v5) put_properties(b, p.will->props);
        put_string(b, p.will->topic);
        put_string(b, p.will->payload);
    }
    if (p.username) put_string(b, *p.username);
    if (p.password) put_string(b, *p.password);
    finish(out, 0x10, b);
}

void encode(const connack_packet& p, uint8_t version, std::string& out) {
    std::string b;
    put_u8(b, p.session_present ? 1 : 0);
    put_u8(b, version == v5 ? p.reason : connack_code_v3(p.reason));
    if (version == v5) put_properties(b, p.props);
    finish(out, 0x20, b);
}

void encode(const publish_packet& p, uint8_t version, std::string& out) {
    const size_t body_size = 2 + p.topic.size() + (p.qos ? 2 : 0) + p.payload.size();
    uint8_t first = static_cast<uint8_t>(0x30 | p.qos << 1);
    if (p.dup) first |= 0x08;
    if (p.retain) first |= 0x01;
    if (version == v5 && has_properties(p.props)) {
        std::string b;
        put_string(b, p.topic);
        if (p.qos) put_u16(b, p.packet_id);
        put_properties(b, p.props);
        b.append(p.payload);
        finish(out, first, b);
        return;
    }
    // The hot path (telemetry acks aside, every outbound message): no temporary body.
    put_u8(out, first);
    put_varint(out, static_cast<uint32_t>(body_size + (version == v5 ? 1 : 0)));
    put_string(out, p.topic);
    if (p.qos) put_u16(out, p.packet_id);
    if (version == v5) put_u8(out, 0);
    out.append(p.payload);
}

void encode(const ack_packet& p, uint8_t version, std::string& out) {
    const uint8_t first = static_cast<uint8_t>(static_cast<uint8_t>(p.type) << 4 |
                                               (p.type == packet_type::pubrel ? 2 : 0));
    put_u8(out, first);
    if (version != v5 || (p.reason == reason::success && !has_properties(p.props))) {
        put_u8(out, 2);
        put_u16(out, p.packet_id);
        return;
    }
    std::string b;
    put_u16(b, p.packet_id);
    put_u8(b, p.reason);
    if (has_properties(p.props)) put_properties(b, p.props);
    put_varint(out, static_cast<uint32_t>(b.size()));
    out.append(b);
}

void encode(const subscribe_packet& p, uint8_t version, std::string& out) {
    std::string b;
    put_u16(b, p.packet_id);
    if (version == v5) put_properties(b, p.props);
    for (const auto& s : p.topics) {
        put_string(b, s.filter);
        put_u8(b, s.options);
    }
    finish(out, 0x82, b);
}

void encode(const suback_packet& p, uint8_t version, std::string& out) {
    std::string b;
    put_u16(b, p.packet_id);
    if (version == v5) put_properties(b, p.props);
    if (p.type == packet_type::suback || version == v5)
        for (uint8_t r : p.reasons)
            put_u8(b, r);
    finish(out, static_cast<uint8_t>(static_cast<uint8_t>(p.type) << 4), b);
}

void encode(const unsubscribe_packet& p, uint8_t version, std::string& out) {
    std::string b;
    put_u16(b, p.packet_id);
    if (version == v5) put_properties(b, p.props);
    for (const auto& f : p.filters)
        put_string(b, f);
    finish(out, 0xA2, b);
}

void encode(const ping_packet& p, std::string& out) {
    put_u8(out, static_cast<uint8_t>(static_cast<uint8_t>(p.type) << 4));
    put_u8(out, 0);
}

void encode(const disconnect_packet& p, uint8_t version, std::string& out) {
    if (version != v5 || (p.reason == reason::success && !has_properties(p.props))) {
        put_u8(out, 0xE0);
        put_u8(out, 0);
        return;
    }
    std::string b;
    put_u8(b, p.reason);
    if (has_properties(p.props)) put_properties(b, p.props);
    finish(out, 0xE0, b);
}

bool valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            if (c == 0) return false;
            ++i;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        static constexpr std::array<uint32_t, 5> min_cp{0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len]) return false;              // overlong
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // surrogate
        if (cp > 0x10FFFF) return false;
        i += len;
    }
    return true;
}

bool valid_topic_name(std::string_view topic) {
    if (topic.empty() || topic.size() > 65535) return false;
    return topic.find_first_of("+#") == std::string_view::npos;
}

bool valid_topic_filter(std::string_view filter) {
    if (filter.empty() || filter.size() > 65535) return false;
    size_t start = 0;
    while (true) {
        size_t end = filter.find('/', start);
        const bool last = end == std::string_view::npos;
        std::string_view level = filter.substr(start, last ? std::string_view::npos : end - start);
        if (level.find_first_of("+#") != std::string_view::npos) {
            if (level.size() != 1) return false;
            if (level == "#" && !last) return false;
        }
        if (last) return true;
        start = end + 1;
    }
}

bool topic_matches(std::string_view filter, std::string_view topic) {
    if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
        (filter[0] == '+' || filter[0] == '#'))
        return false;
    size_t f = 0, t = 0;
    while (true) {
        const size_t fe = filter.find('/', f);
        std::string_view fl = filter.substr(f, fe == std::string_view::npos ? fe : fe - f);
        if (fl == "#") return true;
        const size_t te = topic.find('/', t);
        std::string_view tl = topic.substr(t, te == std::string_view::npos ? te : te - t);
        if (fl != "+" && fl != tl) return false;
        const bool f_last = fe == std::string_view::npos;
        const bool t_last = te == std::string_view::npos;
        if (t_last) {
            // "a/#" also matches "a": the filter's next level is a lone '#'.
            if (f_last) return true;
            return filter.substr(fe + 1) == "#";
        }
        if (f_last) return false;
        f = fe + 1;
        t = te + 1;
    }
}

}  // namespace clisonix::mqtt
