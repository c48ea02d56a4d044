// Clisonix — MQTT 3.1.1 and 5.0 packet codec (private to src/mqtt, used by its tests, the
// fuzz target and the load generator under bench/mqtt).
//
// Decoding is strict: every rule of the two specifications that a receiver can check on one
// packet is checked (fixed-header flags, minimal Remaining Length of at most 4 bytes,
// well-formed UTF-8 without U+0000, packet identifiers, property identifiers allowed in the
// packet, duplicate properties, reserved bits, no wildcards in topic names, bytes left over).
// A failure is a reason code from the MQTT 5.0 table (0x81 malformed, 0x82 protocol error,
// 0x90 topic name invalid ...); for a 3.1.1 peer the caller just closes the connection (or
// answers a CONNACK return code, see connack_code_v3()).
//
// Nothing here allocates more than the packet holds, recurses, or trusts a length field: the
// body span given to decode() is the whole packet, and every read is bounds-checked.
//
// Thread safety: all functions are pure; share nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace clisonix::mqtt {

inline constexpr uint8_t v311 = 4;  // protocol level of MQTT 3.1.1
inline constexpr uint8_t v5 = 5;    // protocol level of MQTT 5.0

enum class packet_type : uint8_t {
    connect = 1,
    connack = 2,
    publish = 3,
    puback = 4,
    pubrec = 5,
    pubrel = 6,
    pubcomp = 7,
    subscribe = 8,
    suback = 9,
    unsubscribe = 10,
    unsuback = 11,
    pingreq = 12,
    pingresp = 13,
    disconnect = 14,
    auth = 15,
};

// MQTT 5.0 reason codes (the subset this broker sends or checks).
namespace reason {
inline constexpr uint8_t success = 0x00;
inline constexpr uint8_t granted_qos1 = 0x01;
inline constexpr uint8_t disconnect_with_will = 0x04;
inline constexpr uint8_t no_subscription_existed = 0x11;
inline constexpr uint8_t unspecified = 0x80;
inline constexpr uint8_t malformed_packet = 0x81;
inline constexpr uint8_t protocol_error = 0x82;
inline constexpr uint8_t implementation_specific = 0x83;
inline constexpr uint8_t unsupported_protocol_version = 0x84;
inline constexpr uint8_t client_identifier_not_valid = 0x85;
inline constexpr uint8_t bad_username_or_password = 0x86;
inline constexpr uint8_t not_authorized = 0x87;
inline constexpr uint8_t server_unavailable = 0x88;
inline constexpr uint8_t server_busy = 0x89;
inline constexpr uint8_t server_shutting_down = 0x8B;
inline constexpr uint8_t bad_authentication_method = 0x8C;
inline constexpr uint8_t keep_alive_timeout = 0x8D;
inline constexpr uint8_t session_taken_over = 0x8E;
inline constexpr uint8_t topic_filter_invalid = 0x8F;
inline constexpr uint8_t topic_name_invalid = 0x90;
inline constexpr uint8_t receive_maximum_exceeded = 0x93;
inline constexpr uint8_t topic_alias_invalid = 0x94;
inline constexpr uint8_t packet_too_large = 0x95;
inline constexpr uint8_t message_rate_too_high = 0x96;
inline constexpr uint8_t quota_exceeded = 0x97;
inline constexpr uint8_t payload_format_invalid = 0x99;
inline constexpr uint8_t retain_not_supported = 0x9A;
inline constexpr uint8_t qos_not_supported = 0x9B;
inline constexpr uint8_t shared_subscriptions_not_supported = 0x9E;
inline constexpr uint8_t subscription_identifiers_not_supported = 0xA1;
inline constexpr uint8_t wildcard_subscriptions_not_supported = 0xA2;
}  // namespace reason

// The MQTT 3.1.1 CONNACK return code closest to a 5.0 CONNACK reason code.
uint8_t connack_code_v3(uint8_t reason5);

// MQTT 5.0 properties: the ones this broker reads or writes, plus user properties.
struct properties {
    std::optional<uint8_t> payload_format;  // 0x01
    std::optional<uint32_t> message_expiry;
    std::optional<std::string> content_type;
    std::optional<std::string> response_topic;
    std::optional<std::string> correlation_data;
    std::vector<uint32_t> subscription_ids;  // 0x0B
    std::optional<uint32_t> session_expiry;  // 0x11
    std::optional<std::string> assigned_client_id;
    std::optional<uint16_t> server_keep_alive;
    std::optional<std::string> auth_method;
    std::optional<std::string> auth_data;
    std::optional<uint8_t> request_problem_info;
    std::optional<uint32_t> will_delay;
    std::optional<uint8_t> request_response_info;
    std::optional<std::string> response_info;
    std::optional<std::string> server_reference;
    std::optional<std::string> reason_string;
    std::optional<uint16_t> receive_maximum;  // 0x21
    std::optional<uint16_t> topic_alias_maximum;
    std::optional<uint16_t> topic_alias;
    std::optional<uint8_t> maximum_qos;
    std::optional<uint8_t> retain_available;
    std::vector<std::pair<std::string, std::string>> user;  // 0x26
    std::optional<uint32_t> maximum_packet_size;
    std::optional<uint8_t> wildcard_available;
    std::optional<uint8_t> subscription_ids_available;
    std::optional<uint8_t> shared_available;
};

struct will_message {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
    properties props;
};

struct connect_packet {
    uint8_t version = v311;  // protocol level: 4 (3.1.1) or 5
    bool clean_start = true;
    uint16_t keep_alive = 0;  // seconds; 0 = none
    std::string client_id;
    std::optional<will_message> will;
    std::optional<std::string> username;
    std::optional<std::string> password;
    properties props;
};

struct connack_packet {
    bool session_present = false;
    uint8_t reason = reason::success;  // 3.1.1: the return code (0..5)
    properties props;
};

// Views into the decoded bytes: valid while those bytes are.
struct publish_packet {
    std::string_view topic;
    std::string_view payload;
    uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    uint16_t packet_id = 0;  // QoS > 0 only
    properties props;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct ack_packet {
    packet_type type = packet_type::puback;
    uint16_t packet_id = 0;
    uint8_t reason = reason::success;
    properties props;
};

struct subscription {
    std::string filter;
    uint8_t options = 0;  // bits 0-1 QoS, 2 no-local, 3 retain-as-published, 4-5 retain handling
    uint8_t qos() const { return options & 3; }
};

struct subscribe_packet {
    uint16_t packet_id = 0;
    std::vector<subscription> topics;
    properties props;
};

// SUBACK and UNSUBACK (3.1.1 UNSUBACK has no reason codes).
struct suback_packet {
    packet_type type = packet_type::suback;
    uint16_t packet_id = 0;
    std::vector<uint8_t> reasons;
    properties props;
};

struct unsubscribe_packet {
    uint16_t packet_id = 0;
    std::vector<std::string> filters;
    properties props;
};

// PINGREQ, PINGRESP.
struct ping_packet {
    packet_type type = packet_type::pingreq;
};

struct disconnect_packet {
    uint8_t reason = reason::success;
    properties props;
};

// AUTH (5.0 enhanced authentication): decoded so that it can be refused properly.
struct auth_packet {
    uint8_t reason = reason::success;
    properties props;
};

using packet =
    std::variant<connect_packet, connack_packet, publish_packet, ack_packet, subscribe_packet,
                 suback_packet, unsubscribe_packet, ping_packet, disconnect_packet, auth_packet>;

// The fixed header of the packet at the start of a buffer.
struct frame {
    uint8_t first = 0;        // type << 4 | flags
    uint32_t remaining = 0;   // bytes after the fixed header
    uint8_t header_size = 0;  // 2..5
    size_t total() const { return header_size + size_t{remaining}; }
    packet_type type() const { return static_cast<packet_type>(first >> 4); }
};

enum class frame_status { complete, incomplete, malformed, too_large };

// Reads the fixed header at `data`. `complete` when the whole packet is in the buffer;
// `too_large` as soon as the Remaining Length says the packet exceeds `max_packet_size`
// (the whole packet, header included, as MQTT 5.0 counts it); `malformed` for a Remaining
// Length longer than 4 bytes or not minimally encoded.
frame_status read_frame(const uint8_t* data, size_t size, uint32_t max_packet_size, frame& out);

// Decodes one packet: `first` is the fixed header's first byte and `body` the bytes after the
// fixed header (exactly `remaining` of them). `version` is the connection's protocol level
// (ignored for CONNECT, which carries its own: out.version is set as soon as it is read, so
// that a refusal can be answered in the client's dialect). Returns reason::success (0) or the
// MQTT 5.0 reason code of the first rule broken.
uint8_t decode(uint8_t first, std::string_view body, uint8_t version, packet& out);

// Encoders append one whole packet (fixed header included) to `out`. Properties are written
// only for version 5.
void encode(const connect_packet& p, std::string& out);
void encode(const connack_packet& p, uint8_t version, std::string& out);
void encode(const publish_packet& p, uint8_t version, std::string& out);
void encode(const ack_packet& p, uint8_t version, std::string& out);
void encode(const subscribe_packet& p, uint8_t version, std::string& out);
void encode(const suback_packet& p, uint8_t version, std::string& out);
void encode(const unsubscribe_packet& p, uint8_t version, std::string& out);
void encode(const ping_packet& p, std::string& out);
void encode(const disconnect_packet& p, uint8_t version, std::string& out);

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without
// U+0000, as MQTT requires of every string.
bool valid_utf8(std::string_view s);
// A topic name a PUBLISH may carry: 1..65535 bytes, no '+' or '#'.
bool valid_topic_name(std::string_view topic);
// A topic filter: '+' and '#' occupy whole levels, '#' only last.
bool valid_topic_filter(std::string_view filter);
// Whether `topic` matches `filter`; wildcards at the first level never match topics that
// start with '$'.
bool topic_matches(std::string_view filter, std::string_view topic);

}  // namespace clisonix::mqtt
