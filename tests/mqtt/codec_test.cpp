// The MQTT codec: every packet round-trips in both protocol versions, and every broken rule
// the decoder checks gives its exact MQTT 5.0 reason code.
#include "mqtt/codec.h"

#include <gtest/gtest.h>

#include <string>

namespace clisonix::mqtt {
namespace {

using namespace std::string_literals;

// Splits one encoded packet into its first byte and body (checking the fixed header).
std::pair<uint8_t, std::string> split(const std::string& bytes) {
    frame f;
    auto st = read_frame(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 1 << 28, f);
    EXPECT_EQ(st, frame_status::complete);
    EXPECT_EQ(f.total(), bytes.size());
    return {f.first, bytes.substr(f.header_size)};
}

uint8_t decode_bytes(const std::string& bytes, uint8_t version, packet& out) {
    auto [first, body] = split(bytes);
    static std::string keep;  // publish views point into the body
    keep = body;
    return decode(first, keep, version, out);
}

std::string str(std::string_view s) {
    return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xFF)} +
           std::string(s);
}

uint8_t decode_raw(uint8_t first, const std::string& body, uint8_t version) {
    packet p;
    return decode(first, body, version, p);
}

// A CONNECT body: name, level, flags, keep-alive, [props], client id, rest.
std::string connect_body(uint8_t level, uint8_t flags, const std::string& props,
                         const std::string& rest, std::string_view name = "MQTT") {
    std::string b = str(name) + std::string(1, static_cast<char>(level)) +
                    std::string(1, static_cast<char>(flags)) + "\x00\x3c"s;
    if (level == v5) b += props;
    return b + str("dev-1") + rest;
}

TEST(mqtt_codec_test, connect_round_trips_in_both_versions) {
    for (uint8_t version : {v311, v5}) {
        connect_packet c;
        c.version = version;
        c.clean_start = false;
        c.keep_alive = 30;
        c.client_id = "pump-1";
        c.username = "token-abc";
        c.password = "secret\x01\xff"s;
        will_message w;
        w.topic = "v1/devices/me/attributes";
        w.payload = R"({"online":false})";
        w.qos = 1;
        c.will = w;
        if (version == v5) {
            c.props.session_expiry = 3600;
            c.props.receive_maximum = 10;
            c.props.maximum_packet_size = 4096;
            c.props.user.emplace_back("k", "v");
            c.will->props.will_delay = 5;
        }
        std::string bytes;
        encode(c, bytes);
        packet p;
        ASSERT_EQ(decode_bytes(bytes, version, p), reason::success) << int(version);
        const auto& d = std::get<connect_packet>(p);
        EXPECT_EQ(d.version, version);
        EXPECT_FALSE(d.clean_start);
        EXPECT_EQ(d.keep_alive, 30);
        EXPECT_EQ(d.client_id, "pump-1");
        EXPECT_EQ(d.username, "token-abc");
        EXPECT_EQ(d.password, "secret\x01\xff"s);
        ASSERT_TRUE(d.will);
        EXPECT_EQ(d.will->topic, "v1/devices/me/attributes");
        EXPECT_EQ(d.will->payload, R"({"online":false})");
        EXPECT_EQ(d.will->qos, 1);
        if (version == v5) {
            EXPECT_EQ(d.props.session_expiry, 3600u);
            EXPECT_EQ(d.props.receive_maximum, 10);
            EXPECT_EQ(d.props.maximum_packet_size, 4096u);
            ASSERT_EQ(d.props.user.size(), 1u);
            EXPECT_EQ(d.props.user[0].second, "v");
            EXPECT_EQ(d.will->props.will_delay, 5u);
        }
    }
}

TEST(mqtt_codec_test, connack_bytes_are_exact) {
    std::string v3;
    encode(connack_packet{true, reason::bad_username_or_password, {}}, v311, v3);
    EXPECT_EQ(v3, "\x20\x02\x01\x04"s);  // 3.1.1 return code 4
    std::string v5b;
    connack_packet a{false, reason::success, {}};
    a.props.maximum_qos = 1;
    a.props.retain_available = 0;
    encode(a, v5, v5b);
    EXPECT_EQ(v5b, "\x20\x07\x00\x00\x04\x24\x01\x25\x00"s);
    packet p;
    ASSERT_EQ(decode_bytes(v5b, v5, p), reason::success);
    EXPECT_EQ(std::get<connack_packet>(p).props.maximum_qos, 1);
    EXPECT_EQ(connack_code_v3(reason::not_authorized), 5);
    EXPECT_EQ(connack_code_v3(reason::unsupported_protocol_version), 1);
    EXPECT_EQ(connack_code_v3(reason::client_identifier_not_valid), 2);
}

TEST(mqtt_codec_test, publish_round_trips_at_qos_0_and_1) {
    for (uint8_t version : {v311, v5}) {
        for (uint8_t qos : {0, 1}) {
            publish_packet pub{"v1/devices/me/telemetry",
                               R"({"t":21.5})",
                               qos,
                               false,
                               false,
                               static_cast<uint16_t>(qos ? 7 : 0),
                               {}};
            std::string bytes;
            encode(pub, version, bytes);
            packet p;
            ASSERT_EQ(decode_bytes(bytes, version, p), reason::success);
            const auto& d = std::get<publish_packet>(p);
            EXPECT_EQ(d.topic, "v1/devices/me/telemetry");
            EXPECT_EQ(d.payload, R"({"t":21.5})");
            EXPECT_EQ(d.qos, qos);
            EXPECT_EQ(d.packet_id, qos ? 7 : 0);
        }
    }
    // 3.1.1 QoS 1: exact bytes.
    std::string b;
    encode(publish_packet{"a/b", "xy", 1, false, true, 0x0102, {}}, v311, b);
    EXPECT_EQ(b,
              "\x3a\x09\x00\x03"
              "a/b\x01\x02xy"s);
    // 5.0 with properties.
    publish_packet with{"a", "z", 1, false, false, 3, {}};
    with.props.content_type = "application/json";
    with.props.payload_format = 1;
    std::string wb;
    encode(with, v5, wb);
    packet p;
    ASSERT_EQ(decode_bytes(wb, v5, p), reason::success);
    EXPECT_EQ(std::get<publish_packet>(p).props.content_type, "application/json");
}

TEST(mqtt_codec_test, acks_subscribe_unsubscribe_ping_disconnect_round_trip) {
    for (uint8_t version : {v311, v5}) {
        std::string b;
        encode(ack_packet{packet_type::puback,
                          9,
                          version == v5 ? reason::payload_format_invalid : reason::success,
                          {}},
               version, b);
        packet p;
        ASSERT_EQ(decode_bytes(b, version, p), reason::success);
        EXPECT_EQ(std::get<ack_packet>(p).packet_id, 9);
        EXPECT_EQ(std::get<ack_packet>(p).reason,
                  version == v5 ? reason::payload_format_invalid : reason::success);

        subscribe_packet s{5, {{"v1/devices/me/attributes", 1}, {"clisonix/alarms/#", 0}}, {}};
        b.clear();
        encode(s, version, b);
        ASSERT_EQ(decode_bytes(b, version, p), reason::success);
        const auto& ds = std::get<subscribe_packet>(p);
        ASSERT_EQ(ds.topics.size(), 2u);
        EXPECT_EQ(ds.topics[1].filter, "clisonix/alarms/#");
        EXPECT_EQ(ds.topics[0].qos(), 1);

        b.clear();
        encode(suback_packet{packet_type::suback, 5, {1, 0x80}, {}}, version, b);
        ASSERT_EQ(decode_bytes(b, version, p), reason::success);
        EXPECT_EQ(std::get<suback_packet>(p).reasons, (std::vector<uint8_t>{1, 0x80}));

        b.clear();
        encode(unsubscribe_packet{6, {"a/+"}, {}}, version, b);
        ASSERT_EQ(decode_bytes(b, version, p), reason::success);
        EXPECT_EQ(std::get<unsubscribe_packet>(p).filters.at(0), "a/+");

        b.clear();
        encode(suback_packet{packet_type::unsuback, 6, {0}, {}}, version, b);
        ASSERT_EQ(decode_bytes(b, version, p), reason::success);
        EXPECT_EQ(std::get<suback_packet>(p).packet_id, 6);

        b.clear();
        encode(ping_packet{packet_type::pingreq}, b);
        EXPECT_EQ(b, "\xc0\x00"s);
        ASSERT_EQ(decode_bytes(b, version, p), reason::success);

        b.clear();
        encode(disconnect_packet{reason::keep_alive_timeout, {}}, version, b);
        EXPECT_EQ(b, version == v5 ? "\xe0\x01\x8d"s : "\xe0\x00"s);
        ASSERT_EQ(decode_bytes(b, version, p), reason::success);
        EXPECT_EQ(std::get<disconnect_packet>(p).reason,
                  version == v5 ? reason::keep_alive_timeout : reason::success);
    }
}

TEST(mqtt_codec_test, remaining_length_rules) {
    frame f;
    auto rf = [&f](const std::string& s, uint32_t max = 1 << 28) {
        return read_frame(reinterpret_cast<const uint8_t*>(s.data()), s.size(), max, f);
    };
    EXPECT_EQ(rf("\x30"s), frame_status::incomplete);
    EXPECT_EQ(rf("\x30\xff\xff\xff\xff\x01"s), frame_status::malformed);  // 5 bytes
    EXPECT_EQ(rf("\x30\x80\x00"s), frame_status::malformed);              // not minimal
    EXPECT_EQ(rf("\x30\xff\xff\xff\x7f"s), frame_status::too_large);      // 256 MiB
    EXPECT_EQ(rf("\x30\x05\x00"s), frame_status::incomplete);
    EXPECT_EQ(rf("\x30\x64"s, 100), frame_status::too_large);   // 2 + 100 > 100
    EXPECT_EQ(rf("\x30\x62"s, 100), frame_status::incomplete);  // 2 + 98 fits
    EXPECT_EQ(rf("\xc0\x00"s), frame_status::complete);
    EXPECT_EQ(f.type(), packet_type::pingreq);
}

TEST(mqtt_codec_test, malformed_connect_packets_give_their_reason_codes) {
    const std::string no_props = "\x00"s;
    // Fixed-header flags of CONNECT must be 0.
    EXPECT_EQ(decode_raw(0x11, connect_body(v311, 0x02, no_props, ""), v311),
              reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x02, no_props, ""), v311), reason::success);
    EXPECT_EQ(decode_raw(0x10, connect_body(v5, 0x02, no_props, ""), v5), reason::success);
    // Reserved connect flag.
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x03, no_props, ""), v311),
              reason::malformed_packet);
    // Protocol name and level.
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x02, no_props, "", "MQTX"), v311),
              reason::unsupported_protocol_version);
    EXPECT_EQ(decode_raw(0x10, connect_body(3, 0x02, no_props, "", "MQIsdp"), v311),
              reason::unsupported_protocol_version);
    EXPECT_EQ(decode_raw(0x10, connect_body(6, 0x02, no_props, ""), v311),
              reason::unsupported_protocol_version);
    // Will QoS 3; will QoS without the will flag; will retain without the will flag.
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x1E, no_props, str("t") + str("p")), v311),
              reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x0A, no_props, ""), v311),
              reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x22, no_props, ""), v311),
              reason::malformed_packet);
    // Will topic with a wildcard.
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x06, no_props, str("a/#") + str("p")), v311),
              reason::topic_name_invalid);
    // 3.1.1: a password without a username.
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x42, no_props, str("pw")), v311),
              reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10, connect_body(v5, 0x42, no_props, str("pw")), v5), reason::success);
    // Bytes left over; a username cut short.
    EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x02, no_props, "x"), v311),
              reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10,
                         connect_body(v311, 0x82, no_props,
                                      "\x00\x05"
                                      "ab"s),
                         v311),
              reason::malformed_packet);
    // Strings that are not well-formed UTF-8 or hold U+0000.
    for (std::string bad :
         {"\xc0\x80"s, "a\x00"s, "\xed\xa0\x80"s, "\xf4\x90\x80\x80"s, "\xe2\x82"s}) {
        EXPECT_EQ(decode_raw(0x10, connect_body(v311, 0x82, no_props, str(bad)), v311),
                  reason::malformed_packet);
    }
    // 5.0 properties: duplicate, zero receive maximum, not allowed in CONNECT, unknown id,
    // length beyond the packet.
    EXPECT_EQ(
        decode_raw(0x10,
                   connect_body(v5, 0x02, "\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02"s, ""), v5),
        reason::protocol_error);
    EXPECT_EQ(decode_raw(0x10, connect_body(v5, 0x02, "\x03\x21\x00\x00"s, ""), v5),
              reason::protocol_error);
    EXPECT_EQ(decode_raw(0x10, connect_body(v5, 0x02, "\x03\x23\x00\x01"s, ""), v5),
              reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10, connect_body(v5, 0x02, "\x02\x7f\x00"s, ""), v5),
              reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10, connect_body(v5, 0x02, "\x40"s, ""), v5), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x10, connect_body(v5, 0x02, "\x02\x17\x02"s, ""), v5),
              reason::protocol_error);  // request problem information must be 0 or 1
}

TEST(mqtt_codec_test, malformed_publish_packets_give_their_reason_codes) {
    const std::string t = str("v1/devices/me/telemetry");
    EXPECT_EQ(decode_raw(0x36, t + "\x00\x01{}"s, v311), reason::malformed_packet);  // QoS 3
    EXPECT_EQ(decode_raw(0x32, t + "\x00\x00{}"s, v311), reason::malformed_packet);  // id 0
    EXPECT_EQ(decode_raw(0x38, t + "{}"s, v311), reason::malformed_packet);          // DUP at QoS 0
    EXPECT_EQ(decode_raw(0x30, str("a/+/b") + "{}", v311), reason::topic_name_invalid);
    EXPECT_EQ(decode_raw(0x30, str("a/#") + "{}", v311), reason::topic_name_invalid);
    EXPECT_EQ(decode_raw(0x30, str("a\xff") + "{}", v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x30, str("") + "{}", v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x30, str("") + "\x00{}"s, v5), reason::protocol_error);
    EXPECT_EQ(decode_raw(0x30, str("") + "\x03\x23\x00\x01{}"s, v5), reason::topic_alias_invalid);
    EXPECT_EQ(decode_raw(0x30, str("a") + "\x02\x01\x01\xff"s, v5), reason::payload_format_invalid);
    EXPECT_EQ(decode_raw(0x30, str("a") + "\x02\x11\x00"s, v5),
              reason::malformed_packet);  // session expiry here
    EXPECT_EQ(decode_raw(0x30, str("a") + "\x05"s, v5),
              reason::malformed_packet);  // props cut short
    EXPECT_EQ(decode_raw(0x32, str("a") + "\x00"s, v311),
              reason::malformed_packet);  // id cut short
    EXPECT_EQ(decode_raw(0x30, str("a") + "{}", v311), reason::success);
}

TEST(mqtt_codec_test, malformed_control_packets_give_their_reason_codes) {
    // SUBSCRIBE: flags, no topic, reserved option bits, retain handling 3, two subscription ids.
    EXPECT_EQ(decode_raw(0x80, "\x00\x01"s + str("a") + "\x01", v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x82, "\x00\x01"s, v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x82, "\x00\x01\x00"s, v5), reason::protocol_error);
    EXPECT_EQ(decode_raw(0x82, "\x00\x01"s + str("a") + "\x05", v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x82, "\x00\x01\x00"s + str("a") + "\x30", v5), reason::protocol_error);
    EXPECT_EQ(decode_raw(0x82, "\x00\x01\x00"s + str("a") + "\x40", v5), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x82, "\x00\x01\x00"s + str("a") + "\x03", v5), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x82, "\x00\x01\x04\x0b\x01\x0b\x02"s + str("a") + "\x01", v5),
              reason::protocol_error);
    EXPECT_EQ(decode_raw(0x82, "\x00\x00"s + str("a") + "\x01", v311), reason::malformed_packet);
    // UNSUBSCRIBE without filters; wrong flags.
    EXPECT_EQ(decode_raw(0xA2, "\x00\x01"s, v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0xA2, "\x00\x01\x00"s, v5), reason::protocol_error);
    EXPECT_EQ(decode_raw(0xA0, "\x00\x01"s + str("a"), v311), reason::malformed_packet);
    // PINGREQ with a body, reserved type 0, AUTH in 3.1.1, PUBREL flags, PUBACK leftovers.
    EXPECT_EQ(decode_raw(0xC0, "x", v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x00, "", v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0xF0, "", v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0xF0, "", v5), reason::success);
    EXPECT_EQ(decode_raw(0x60, "\x00\x01"s, v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x40, "\x00\x01\x00"s, v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0x40, "\x00\x00"s, v311), reason::malformed_packet);
    // DISCONNECT: 3.1.1 has no body; 5.0 reason and properties.
    EXPECT_EQ(decode_raw(0xE0, "\x00"s, v311), reason::malformed_packet);
    EXPECT_EQ(decode_raw(0xE0, "\x04\x00"s, v5), reason::success);
    EXPECT_EQ(decode_raw(0xE0, "\x04\x02\x23\x00"s, v5), reason::malformed_packet);
}

TEST(mqtt_codec_test, topic_names_filters_and_matching) {
    EXPECT_TRUE(valid_topic_filter("a/+/c"));
    EXPECT_TRUE(valid_topic_filter("#"));
    EXPECT_TRUE(valid_topic_filter("a/#"));
    EXPECT_TRUE(valid_topic_filter("+"));
    EXPECT_FALSE(valid_topic_filter("a/#/c"));
    EXPECT_FALSE(valid_topic_filter("a/b#"));
    EXPECT_FALSE(valid_topic_filter("a+/b"));
    EXPECT_FALSE(valid_topic_filter(""));
    EXPECT_TRUE(topic_matches("clisonix/alarms/#", "clisonix/alarms/pump-1"));
    EXPECT_TRUE(topic_matches("clisonix/alarms/#", "clisonix/alarms"));
    EXPECT_TRUE(topic_matches("v1/devices/me/attributes/response/+",
                              "v1/devices/me/attributes/response/7"));
    EXPECT_FALSE(topic_matches("v1/devices/me/attributes/response/+",
                               "v1/devices/me/attributes/response/7/x"));
    EXPECT_FALSE(topic_matches("v1/devices/me/attributes", "v1/devices/me/attributes/x"));
    EXPECT_TRUE(topic_matches("+/+", "a/b"));
    EXPECT_TRUE(topic_matches("a/+", "a/"));
    EXPECT_FALSE(topic_matches("#", "$SYS/x"));
    EXPECT_FALSE(topic_matches("+/x", "$SYS/x"));
    EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/x"));
    EXPECT_TRUE(valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8("\xff"));
}

}  // namespace
}  // namespace clisonix::mqtt
