// The built-in types' binary encoding, node ids in text form, and values.
#include "opcua/binary.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/float_text.h"

namespace clisonix::opcua {
namespace binary {

void writer::node(const node_id& id) {
    switch (id.type) {
        case node_id::kind::numeric:
            if (id.namespace_index == 0 && id.numeric <= 0xFF) {
                u8(0x00);
                u8(static_cast<uint8_t>(id.numeric));
            } else if (id.namespace_index <= 0xFF && id.numeric <= 0xFFFF) {
                u8(0x01);
                u8(static_cast<uint8_t>(id.namespace_index));
                u16(static_cast<uint16_t>(id.numeric));
            } else {
                u8(0x02);
                u16(id.namespace_index);
                u32(id.numeric);
            }
            return;
        case node_id::kind::string:
            u8(0x03);
            u16(id.namespace_index);
            string(id.identifier);
            return;
        case node_id::kind::guid:
            u8(0x04);
            u16(id.namespace_index);
            raw(id.identifier);
            return;
        case node_id::kind::opaque:
            u8(0x05);
            u16(id.namespace_index);
            bytes(id.identifier);
            return;
    }
}

uint64_t reader::le(size_t n) {
    if (left() < n) {
        fail("message ends inside a value");
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
        v |= uint64_t(uint8_t(_data[_pos + i])) << (8 * i);
    _pos += n;
    return v;
}

uint8_t reader::u8() {
    return static_cast<uint8_t>(le(1));
}

float reader::f32() {
    uint32_t bits = u32();
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
}

double reader::f64() {
    uint64_t bits = le(8);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
}

std::string_view reader::raw(size_t n) {
    if (left() < n) {
        fail("a length of " + std::to_string(n) + " runs past the end of the message");
        return {};
    }
    auto s = _data.substr(_pos, n);
    _pos += n;
    return s;
}

std::string reader::string() {
    int32_t n = i32();
    if (n < 0) {
        if (n != -1) fail("a string length of " + std::to_string(n) + " is negative");
        return {};
    }
    return std::string(raw(static_cast<size_t>(n)));
}

size_t reader::count(size_t min_element_size) {
    int32_t n = i32();
    if (n < 0) {
        if (n != -1) fail("an array length of " + std::to_string(n) + " is negative");
        return 0;
    }
    if (static_cast<uint64_t>(n) * (min_element_size ? min_element_size : 1) > left()) {
        fail("an array of " + std::to_string(n) + " elements runs past the end of the message");
        return 0;
    }
    return static_cast<size_t>(n);
}

std::string reader::guid() {
    return guid_to_text(raw(16));
}

node_id reader::node() {
    node_id id;
    uint8_t enc = u8();
    switch (enc & 0x3F) {
        case 0x00:
            id.numeric = u8();
            break;
        case 0x01:
            id.namespace_index = u8();
            id.numeric = u16();
            break;
        case 0x02:
            id.namespace_index = u16();
            id.numeric = u32();
            break;
        case 0x03:
            id.namespace_index = u16();
            id.type = node_id::kind::string;
            id.identifier = string();
            break;
        case 0x04:
            id.namespace_index = u16();
            id.type = node_id::kind::guid;
            id.identifier = std::string(raw(16));
            break;
        case 0x05:
            id.namespace_index = u16();
            id.type = node_id::kind::opaque;
            id.identifier = string();
            break;
        default:
            fail("unknown node id encoding " + std::to_string(enc));
            break;
    }
    // Only an ExpandedNodeId may carry the two flags; node() is called for both, and
    // expanded_node() reads what the flags announce.
    _last_node_flags = enc & 0xC0;
    return id;
}

node_id reader::expanded_node() {
    node_id id = node();
    uint8_t flags = _last_node_flags;
    if (flags & 0x80) (void)string();  // namespace URI
    if (flags & 0x40) (void)u32();     // server index
    return id;
}

std::string reader::localized_text() {
    uint8_t mask = u8();
    if (mask & 0x01) (void)string();
    return (mask & 0x02) ? string() : std::string();
}

void reader::extension_object(node_id& type, std::string& body) {
    type = node();
    uint8_t enc = u8();
    body.clear();
    if (enc == 1 || enc == 2)
        body = string();
    else if (enc != 0)
        fail("unknown extension object encoding " + std::to_string(enc));
}

value::scalar reader::scalar(uint8_t type) {
    switch (type) {
        case t_boolean:
            return boolean();
        case t_sbyte:
            return int64_t(static_cast<int8_t>(u8()));
        case t_byte:
            return uint64_t(u8());
        case t_int16:
            return int64_t(static_cast<int16_t>(u16()));
        case t_uint16:
            return uint64_t(u16());
        case t_int32:
            return int64_t(i32());
        case t_uint32:
            return uint64_t(u32());
        case t_int64:
            return i64();
        case t_uint64:
            return static_cast<uint64_t>(i64());
        case t_float:
            return decimal_of(f32());
        case t_double:
            return f64();
        case t_string:
        case t_bytestring:
        case t_xml:
            return string();
        case t_datetime:
            return datetime_ms();
        case t_guid:
            return guid();
        case t_nodeid:
            return node();
        case t_expanded_nodeid:
            return expanded_node();
        case t_statuscode:
            return uint64_t(u32());
        case t_qualified_name: {
            uint16_t ns;
            std::string name;
            qualified_name(ns, name);
            return name;
        }
        case t_localized_text:
            return localized_text();
        case t_extension_object: {
            node_id t;
            std::string body;
            extension_object(t, body);
            return body;
        }
        case t_data_value: {
            auto dv = read_data_value();
            return dv.v.items.size() == 1 ? dv.v.items[0] : value::scalar{};
        }
        case t_variant: {
            auto v = variant();
            return v.items.size() == 1 && !v.is_array ? v.items[0] : value::scalar{};
        }
        case t_diagnostic_info:
            diagnostic_info();
            return {};
        default:
            fail("unknown built-in type " + std::to_string(type));
            return {};
    }
}

value reader::variant() {
    value v;
    if (++_depth > max_depth) {
        fail("values nested more than " + std::to_string(max_depth) + " deep");
        --_depth;
        return v;
    }
    uint8_t mask = u8();
    v.type = mask & 0x3F;
    if (v.type > t_diagnostic_info) fail("unknown built-in type " + std::to_string(v.type));
    v.is_array = (mask & 0x80) != 0;
    if (ok() && v.type != 0) {
        if (v.is_array) {
            size_t n = count(1);
            v.items.reserve(n);
            for (size_t i = 0; i < n && ok(); ++i)
                v.items.push_back(scalar(v.type));
            if (mask & 0x40) {
                size_t d = count(4);
                for (size_t i = 0; i < d && ok(); ++i)
                    v.dimensions.push_back(i32());
            }
        } else {
            v.items.push_back(scalar(v.type));
        }
    }
    --_depth;
    return v;
}

data_value reader::read_data_value() {
    data_value dv;
    if (++_depth > max_depth) {
        fail("values nested more than " + std::to_string(max_depth) + " deep");
        --_depth;
        return dv;
    }
    uint8_t mask = u8();
    if (mask & 0x01) dv.v = variant();
    if (mask & 0x02) dv.status = u32();
    if (mask & 0x04) dv.source_time_ms = datetime_ms();
    if (mask & 0x10) (void)u16();
    if (mask & 0x08) dv.server_time_ms = datetime_ms();
    if (mask & 0x20) (void)u16();
    --_depth;
    return dv;
}

void reader::diagnostic_info() {
    if (++_depth > max_depth) {
        fail("diagnostics nested more than " + std::to_string(max_depth) + " deep");
        --_depth;
        return;
    }
    uint8_t mask = u8();
    if (mask & 0x01) (void)i32();
    if (mask & 0x02) (void)i32();
    if (mask & 0x04) (void)i32();
    if (mask & 0x08) (void)i32();
    if (mask & 0x10) (void)string();
    if (mask & 0x20) (void)u32();
    if (mask & 0x40) diagnostic_info();
    --_depth;
}

std::string guid_to_text(std::string_view w) {
    if (w.size() != 16) return {};
    auto b = [&](size_t i) { return unsigned(uint8_t(w[i])); };
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
                  b(0) | b(1) << 8 | b(2) << 16 | b(3) << 24, b(4) | b(5) << 8, b(6) | b(7) << 8,
                  b(8), b(9), b(10), b(11), b(12), b(13), b(14), b(15));
    return buf;
}

bool guid_from_text(std::string_view t, std::string& w) {
    if (t.size() == 38 && t.front() == '{' && t.back() == '}') t = t.substr(1, 36);
    if (t.size() != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-') return false;
    std::string hex;
    for (char c : t)
        if (c != '-') hex.push_back(c);
    uint8_t bytes[16];
    for (size_t i = 0; i < 16; ++i) {
        unsigned v = 0;
        auto r = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, v, 16);
        if (r.ec != std::errc{} || r.ptr != hex.data() + 2 * i + 2) return false;
        bytes[i] = static_cast<uint8_t>(v);
    }
    // Data1..Data3 are little-endian on the wire; Data4 is as written.
    w.assign(16, '\0');
    const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    for (size_t i = 0; i < 16; ++i)
        w[i] = static_cast<char>(bytes[order[i]]);
    return true;
}

}  // namespace binary

namespace {

constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8 | uint8_t(in[i + 2]);
        for (int s = 18; s >= 0; s -= 6)
            out.push_back(b64[(v >> s) & 63]);
    }
    if (i < in.size()) {
        uint32_t v = uint8_t(in[i]) << 16 | (i + 1 < in.size() ? uint8_t(in[i + 1]) << 8 : 0);
        out.push_back(b64[(v >> 18) & 63]);
        out.push_back(b64[(v >> 12) & 63]);
        out.push_back(i + 1 < in.size() ? b64[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

bool base64_decode(std::string_view in, std::string& out) {
    out.clear();
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (char c : in) {
        if (c == '=') {
            ++pad;
            continue;
        }
        if (pad) return false;
        const char* p = std::strchr(b64, c);
        if (!p || c == '\0') return false;
        acc = acc << 6 | uint32_t(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return pad <= 2 && (in.size() % 4 == 0);
}

error bad_node_id(std::string_view text, std::string why) {
    return make_error("invalid_argument", "node id '" + std::string(text) + "': " + why);
}

}  // namespace

std::string node_id::to_string() const {
    std::string s = namespace_index ? "ns=" + std::to_string(namespace_index) + ";" : "";
    switch (type) {
        case kind::numeric:
            return s + "i=" + std::to_string(numeric);
        case kind::string:
            return s + "s=" + identifier;
        case kind::guid:
            return s + "g=" + binary::guid_to_text(identifier);
        case kind::opaque:
            return s + "b=" + base64_encode(identifier);
    }
    return s;
}

result<node_id> parse_node_id(std::string_view text) {
    node_id id;
    std::string_view rest = text;
    if (rest.starts_with("ns=")) {
        auto semi = rest.find(';');
        if (semi == std::string_view::npos)
            return bad_node_id(text, "'ns=' must be followed by ';' and the identifier");
        auto ns = rest.substr(3, semi - 3);
        unsigned v = 0;
        auto r = std::from_chars(ns.data(), ns.data() + ns.size(), v);
        if (ns.empty() || r.ec != std::errc{} || r.ptr != ns.data() + ns.size() || v > 0xFFFF)
            return bad_node_id(
                text, "namespace index '" + std::string(ns) + "' is not a number from 0 to 65535");
        id.namespace_index = static_cast<uint16_t>(v);
        rest = rest.substr(semi + 1);
    }
    if (rest.size() < 2 || rest[1] != '=')
        return bad_node_id(text, "expected i=, s=, g= or b= before the identifier");
    auto ident = rest.substr(2);
    switch (rest[0]) {
        case 'i': {
            uint32_t v = 0;
            auto r = std::from_chars(ident.data(), ident.data() + ident.size(), v);
            if (ident.empty() || r.ec != std::errc{} || r.ptr != ident.data() + ident.size())
                return bad_node_id(text, "numeric identifier '" + std::string(ident) +
                                             "' is not a number from 0 to 4294967295");
            id.numeric = v;
            return id;
        }
        case 's':
            if (ident.empty()) return bad_node_id(text, "the string identifier is empty");
            id.type = node_id::kind::string;
            id.identifier = std::string(ident);
            return id;
        case 'g':
            id.type = node_id::kind::guid;
            if (!binary::guid_from_text(ident, id.identifier))
                return bad_node_id(text,
                                   "guid '" + std::string(ident) +
                                       "' is not of the form XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX");
            return id;
        case 'b':
            id.type = node_id::kind::opaque;
            if (ident.empty() || !base64_decode(ident, id.identifier))
                return bad_node_id(text,
                                   "opaque identifier '" + std::string(ident) + "' is not base64");
            return id;
        default:
            return bad_node_id(
                text, "identifier type '" + std::string(1, rest[0]) + "' is not one of i, s, g, b");
    }
}

std::optional<double> value::as_double() const {
    if (is_array || items.size() != 1) return std::nullopt;
    const auto& s = items[0];
    if (auto* b = std::get_if<bool>(&s)) return *b ? 1.0 : 0.0;
    if (auto* i = std::get_if<int64_t>(&s)) return static_cast<double>(*i);
    if (auto* u = std::get_if<uint64_t>(&s)) return static_cast<double>(*u);
    if (auto* d = std::get_if<double>(&s)) return *d;
    return std::nullopt;
}

namespace {
std::string scalar_text(const value::scalar& s) {
    if (std::holds_alternative<std::monostate>(s)) return "null";
    if (auto* b = std::get_if<bool>(&s)) return *b ? "true" : "false";
    if (auto* i = std::get_if<int64_t>(&s)) return std::to_string(*i);
    if (auto* u = std::get_if<uint64_t>(&s)) return std::to_string(*u);
    if (auto* d = std::get_if<double>(&s)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", *d);
        return buf;
    }
    if (auto* str = std::get_if<std::string>(&s)) return *str;
    return std::get<node_id>(s).to_string();
}
}  // namespace

std::string value::to_string() const {
    if (!is_array) return items.empty() ? "null" : scalar_text(items[0]);
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i)
        out += (i ? ", " : "") + scalar_text(items[i]);
    return out + "]";
}

result<security_policy> parse_security_policy(std::string_view t) {
    if (t == "None") return security_policy::none;
    if (t == "Basic256Sha256") return security_policy::basic256sha256;
    return make_error("invalid_argument",
                      "security policy '" + std::string(t) + "' is not one of None, Basic256Sha256",
                      "security_policy");
}

result<security_mode> parse_security_mode(std::string_view t) {
    if (t == "None") return security_mode::none;
    if (t == "Sign") return security_mode::sign;
    if (t == "SignAndEncrypt") return security_mode::sign_and_encrypt;
    return make_error(
        "invalid_argument",
        "security mode '" + std::string(t) + "' is not one of None, Sign, SignAndEncrypt",
        "security_mode");
}

}  // namespace clisonix::opcua
