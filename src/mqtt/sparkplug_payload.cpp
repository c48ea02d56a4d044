// Sparkplug B payloads and topics (see sparkplug.h).
#include <charconv>
#include <cstdlib>

#include "common/float_text.h"
#include "mqtt/sparkplug.h"
#include "mqtt/sparkplug_b.pb.h"

namespace clisonix::mqtt::sparkplug {

namespace {

namespace pb = ::clisonix::sparkplug::pb;
using pb_payload = pb::Payload;
using pb_metric = pb::Payload::Metric;

constexpr uint64_t max_seq = 255;

std::string unit_of(const pb_metric& m) {
    if (!m.has_properties()) return {};
    const auto& props = m.properties();
    const int n = std::min(props.keys_size(), props.values_size());
    for (int i = 0; i < n; ++i) {
        const auto& key = props.keys(i);
        if (key != "engUnit" && key != "EngUnit" && key != "engUnits" && key != "EngUnits")
            continue;
        const auto& v = props.values(i);
        if (v.value_case() == pb::Payload::PropertyValue::kStringValue) return v.string_value();
    }
    return {};
}

value raw_value(const pb_metric& m) {
    switch (m.value_case()) {
        case pb_metric::kIntValue:
            return static_cast<uint64_t>(m.int_value());
        case pb_metric::kLongValue:
            return m.long_value();
        case pb_metric::kFloatValue:
            return decimal_of(m.float_value());
        case pb_metric::kDoubleValue:
            return m.double_value();
        case pb_metric::kBooleanValue:
            return m.boolean_value();
        case pb_metric::kStringValue:
            return m.string_value();
        case pb_metric::kBytesValue:
        case pb_metric::kDatasetValue:
        case pb_metric::kTemplateValue:
        case pb_metric::kExtensionValue:
            return unsupported{};
        case pb_metric::VALUE_NOT_SET:
            break;
    }
    return std::monostate{};
}

}  // namespace

std::string_view datatype_name(uint32_t type) {
    static constexpr std::string_view names[] = {
        "Unknown", "Int8",   "Int16",   "Int32",  "Int64",   "UInt8",   "UInt16",
        "UInt32",  "UInt64", "Float",   "Double", "Boolean", "String",  "DateTime",
        "Text",    "UUID",   "DataSet", "Bytes",  "File",    "Template"};
    return type < std::size(names) ? names[type] : "Unknown";
}

value retype(const value& v, uint32_t type) {
    const auto* u = std::get_if<uint64_t>(&v);
    if (!u) {
        if (const auto* b = std::get_if<bool>(&v); b && type != 0 && type != 11)
            return static_cast<uint64_t>(*b);
        return v;
    }
    switch (static_cast<datatype>(type)) {
        case datatype::int8:
            return static_cast<int64_t>(static_cast<int8_t>(*u));
        case datatype::int16:
            return static_cast<int64_t>(static_cast<int16_t>(*u));
        case datatype::int32:
            return static_cast<int64_t>(static_cast<int32_t>(*u));
        case datatype::int64:
            return static_cast<int64_t>(*u);
        case datatype::uint8:
            return static_cast<uint64_t>(static_cast<uint8_t>(*u));
        case datatype::uint16:
            return static_cast<uint64_t>(static_cast<uint16_t>(*u));
        case datatype::uint32:
            return static_cast<uint64_t>(static_cast<uint32_t>(*u));
        case datatype::boolean:
            return *u != 0;
        default:
            return v;  // UInt64, DateTime, or a type not announced
    }
}

result<payload> decode(std::string_view bytes) {
    pb_payload in;
    if (!in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        return make_error("invalid_argument", "not a Sparkplug B payload (protobuf)", "payload");
    if (in.uuid() == "SPBV1.0_COMPRESSED")
        return make_error("invalid_argument", "compressed payloads are not supported", "uuid");
    payload out;
    if (in.has_timestamp()) out.timestamp_ms = in.timestamp();
    if (in.has_seq()) {
        if (in.seq() > max_seq)
            return make_error("invalid_argument",
                              "seq: " + std::to_string(in.seq()) + " is past 255", "seq");
        out.seq = in.seq();
    }
    out.metrics.reserve(static_cast<size_t>(in.metrics_size()));
    for (const auto& m : in.metrics()) {
        metric x;
        x.name = m.name();
        if (m.has_alias()) x.alias = m.alias();
        if (m.has_timestamp()) x.timestamp_ms = m.timestamp();
        x.type = m.datatype();
        x.is_null = m.is_null();
        x.is_historical = m.is_historical();
        x.is_transient = m.is_transient();
        x.unit = unit_of(m);
        if (!x.is_null) x.v = retype(raw_value(m), x.type);
        if (x.name.empty() && !x.alias)
            return make_error(
                "invalid_argument",
                "metrics[" + std::to_string(out.metrics.size()) + "]: neither a name nor an alias",
                "metrics");
        out.metrics.push_back(std::move(x));
    }
    return out;
}

std::string encode(const payload& p) {
    pb_payload out;
    if (p.timestamp_ms) out.set_timestamp(*p.timestamp_ms);
    if (p.seq) out.set_seq(*p.seq);
    for (const auto& m : p.metrics) {
        auto& x = *out.add_metrics();
        if (!m.name.empty()) x.set_name(m.name);
        if (m.alias) x.set_alias(*m.alias);
        if (m.timestamp_ms) x.set_timestamp(*m.timestamp_ms);
        if (m.type) x.set_datatype(m.type);
        if (m.is_null) x.set_is_null(true);
        if (!m.unit.empty()) {
            auto& props = *x.mutable_properties();
            props.add_keys("engUnit");
            auto& v = *props.add_values();
            v.set_type(static_cast<uint32_t>(datatype::string));
            v.set_string_value(m.unit);
        }
        const auto type = static_cast<datatype>(m.type);
        const bool small = type == datatype::int8 || type == datatype::int16 ||
                           type == datatype::int32 || type == datatype::uint8 ||
                           type == datatype::uint16 || type == datatype::uint32;
        if (const auto* i = std::get_if<int64_t>(&m.v)) {
            if (small)
                x.set_int_value(static_cast<uint32_t>(*i));
            else
                x.set_long_value(static_cast<uint64_t>(*i));
        } else if (const auto* u = std::get_if<uint64_t>(&m.v)) {
            if (small)
                x.set_int_value(static_cast<uint32_t>(*u));
            else
                x.set_long_value(*u);
        } else if (const auto* d = std::get_if<double>(&m.v)) {
            if (type == datatype::float32)
                x.set_float_value(static_cast<float>(*d));
            else
                x.set_double_value(*d);
        } else if (const auto* b = std::get_if<bool>(&m.v)) {
            x.set_boolean_value(*b);
        } else if (const auto* s = std::get_if<std::string>(&m.v)) {
            x.set_string_value(*s);
        }
    }
    return out.SerializeAsString();
}

std::string encode_rebirth(uint64_t timestamp_ms) {
    payload p;
    p.timestamp_ms = timestamp_ms;
    metric m;
    m.name = "Node Control/Rebirth";
    m.timestamp_ms = timestamp_ms;
    m.type = static_cast<uint32_t>(datatype::boolean);
    m.v = true;
    p.metrics.push_back(std::move(m));
    return encode(p);
}

std::optional<topic> parse_topic(std::string_view t) {
    if (!t.starts_with(namespace_prefix)) return std::nullopt;
    t.remove_prefix(namespace_prefix.size());
    std::vector<std::string_view> parts;
    while (true) {
        auto slash = t.find('/');
        parts.push_back(t.substr(0, slash));
        if (slash == std::string_view::npos) break;
        t.remove_prefix(slash + 1);
    }
    for (auto p : parts)
        if (p.empty() || p.find_first_of("+#") != std::string_view::npos) return std::nullopt;
    if (parts.size() == 2 && parts[0] == "STATE")
        return topic{message_type::state, {}, std::string(parts[1]), {}};
    if (parts.size() < 3 || parts.size() > 4) return std::nullopt;
    static constexpr std::pair<std::string_view, message_type> kinds[] = {
        {"NBIRTH", message_type::nbirth}, {"NDEATH", message_type::ndeath},
        {"DBIRTH", message_type::dbirth}, {"DDEATH", message_type::ddeath},
        {"NDATA", message_type::ndata},   {"DDATA", message_type::ddata},
        {"NCMD", message_type::ncmd},     {"DCMD", message_type::dcmd}};
    for (const auto& [name, kind] : kinds) {
        if (parts[1] != name) continue;
        const bool device_message = name[0] == 'D';
        if (device_message != (parts.size() == 4)) return std::nullopt;
        return topic{kind, std::string(parts[0]), std::string(parts[2]),
                     device_message ? std::string(parts[3]) : std::string()};
    }
    return std::nullopt;
}

}  // namespace clisonix::mqtt::sparkplug
