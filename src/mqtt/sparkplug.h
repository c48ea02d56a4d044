// Private to src/mqtt: Sparkplug B 3.0 payloads and topics (see
// docs/decisions/0083-sparkplug-b.md). The protobuf types stay in sparkplug_payload.cpp; the broker
// sees plain values only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace clisonix::mqtt::sparkplug {

constexpr std::string_view namespace_prefix = "spBv1.0/";

// The specification's data types (Payload.Metric.datatype).
enum class datatype : uint32_t {
    unknown = 0,
    int8 = 1,
    int16 = 2,
    int32 = 3,
    int64 = 4,
    uint8 = 5,
    uint16 = 6,
    uint32 = 7,
    uint64 = 8,
    float32 = 9,
    float64 = 10,
    boolean = 11,
    string = 12,
    datetime = 13,
    text = 14,
    uuid = 15,
    dataset = 16,
    bytes = 17,
    file = 18,
    template_ = 19,
};

// The name of a data type as the specification spells it ("Int32", "Float" ...).
std::string_view datatype_name(uint32_t type);

// A metric's value as Clisonix stores it: integers signed or unsigned as the data type says,
// Float widened to the double that prints as the float did (21.3f is 21.3), booleans, text.
// Datasets, templates, bytes and files are `unsupported` (kept out of telemetry).
struct unsupported {
    bool operator==(const unsupported&) const = default;
};
using value =
    std::variant<std::monostate, int64_t, uint64_t, double, bool, std::string, unsupported>;

struct metric {
    std::string name;  // empty in data messages that use the alias only
    std::optional<uint64_t> alias;
    std::optional<uint64_t> timestamp_ms;
    uint32_t type = 0;  // datatype; 0 in data messages (the birth said it)
    bool is_null = false;
    bool is_historical = false;
    bool is_transient = false;
    value v;           // monostate when is_null or no value was sent
    std::string unit;  // the "engUnit" (or "EngUnit", "engUnits") property, if any
};

struct payload {
    std::optional<uint64_t> timestamp_ms;
    std::optional<uint64_t> seq;
    std::vector<metric> metrics;
};

// Decodes a Payload; "invalid_argument" naming what is wrong (not protobuf, a seq past 255,
// a value that does not fit its data type). Never throws.
result<payload> decode(std::string_view bytes);

// Re-interprets a value by the data type its birth announced (data messages often omit it):
// e.g. an Int8 sent as int_value 0xFFFFFFFF is -1.
value retype(const value& v, uint32_t type);

// NCMD payload asking an edge node for a rebirth: metric "Node Control/Rebirth" = true.
std::string encode_rebirth(uint64_t timestamp_ms);

// For tests and the demo's edge node: encodes a payload (each metric's value by its type).
std::string encode(const payload& p);

enum class message_type { nbirth, ndeath, dbirth, ddeath, ndata, ddata, ncmd, dcmd, state };

struct topic {
    message_type type;
    std::string group;
    std::string edge_node;  // for STATE: the host id
    std::string device;     // D* messages only
};

// spBv1.0/<group>/<type>/<edge node>[/<device>] or spBv1.0/STATE/<host id>; nullopt when the
// topic is not a well-formed Sparkplug B topic.
std::optional<topic> parse_topic(std::string_view t);

}  // namespace clisonix::mqtt::sparkplug
