// The broker under attack, through the real binary: connections that never log in,
// credentials revoked while their sessions are open, and one device trying to grow the
// database without bound. Raw sockets (the product's codec) for exact reason codes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <string>
#include <thread>

#include "mqtt/codec.h"
#include "mqtt/mqtt_server.h"
#include "mqtt/raw_client.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using testing::server_process;

// A TCP connection to the broker from a chosen loopback source address (127.0.0.x), so that
// one test can be two clients' addresses.
int connect_from(const char* source, uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &from.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
        ::close(fd);
        return -1;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// ---- connections that never log in ----------------------------------------------------------

TEST(mqtt_guard_test, a_connect_trickled_byte_by_byte_is_closed_by_the_timeout_from_its_start) {
    mqtt_server s({"--set", "mqtt.connect_timeout=1500ms"});
    const auto token = s.device_token("slow-1");
    mqtt::connect_packet c;
    c.version = mqtt::v311;
    c.client_id = "slow";
    c.keep_alive = 60;
    c.username = token;
    std::string bytes;
    mqtt::encode(c, bytes);
    raw_client slow(s.port);
    // One byte every 300 ms: each byte comes well inside the timeout, the whole CONNECT
    // (about 60 bytes) would take 18 s.
    const auto t0 = std::chrono::steady_clock::now();
    bool closed = false;
    for (size_t i = 0; i + 1 < bytes.size() && !closed; ++i) {
        if (!slow.send(bytes.substr(i, 1))) break;
        closed = slow.closed_by_peer(300ms);
    }
    if (!closed) closed = slow.closed_by_peer(5s);
    EXPECT_TRUE(closed);
    // Closed by the 1.5 s counted from the start (checked every 250 ms), not 1.5 s after
    // the last byte: generous bound, well under the 18 s the trickle would take.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
    auto m = s.srv.get("/metrics");
    EXPECT_NE(m.body.find(R"(clisonix_mqtt_dropped_total{reason="connect_timeout"} 1)"),
              std::string::npos);
    // A prompt client still connects.
    raw_client ok(s.port);
    ok.connect(mqtt::v311, token, {}, 60, {}, true, "prompt");
    EXPECT_EQ(connack_reason(ok, mqtt::v311), 0);
}

TEST(mqtt_guard_test, an_oversized_connect_is_refused_before_connack) {
    mqtt_server s;  // mqtt.max_connect_size default: 16 KiB
    const auto token = s.device_token("big-1");
    for (uint8_t version : {mqtt::v311, mqtt::v5}) {
        mqtt::connect_packet c;
        c.version = version;
        c.client_id = "big";
        c.keep_alive = 60;
        c.username = token;
        c.will = mqtt::will_message{
            "v1/devices/me/telemetry", std::string(250 * 1024, 'x'), 0, false, {}};
        std::string bytes;
        mqtt::encode(c, bytes);
        raw_client big(s.port);
        // Only the fixed header and the first bytes: the announced length alone is refused.
        ASSERT_TRUE(big.send(bytes.substr(0, 64)));
        EXPECT_TRUE(big.closed_by_peer(3s)) << int(version);
    }
    // A CONNECT under the bound (a will of 8 KiB) is fine.
    raw_client fine(s.port);
    fine.connect(mqtt::v5, token, {}, 60,
                 mqtt::will_message{
                     "v1/devices/me/telemetry", std::string(8 * 1024, ' ') + "{}", 0, false, {}},
                 true, "fine");
    EXPECT_EQ(connack_reason(fine, mqtt::v5), 0);
}

TEST(mqtt_guard_test,
     the_connection_over_the_per_address_limit_is_refused_another_address_connects) {
    mqtt_server s({"--set", "mqtt.max_connections_per_ip=3"});
    const auto token = s.device_token("nat-1");
    std::vector<std::unique_ptr<raw_client>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<raw_client>(s.port));
        held.back()->connect(mqtt::v311, token, {}, 60, {}, true, "held-" + std::to_string(i));
        ASSERT_EQ(connack_reason(*held.back(), mqtt::v311), 0) << i;
    }
    raw_client fourth(s.port);
    fourth.connect(mqtt::v311, token, {}, 60, {}, true, "fourth");
    EXPECT_TRUE(fourth.closed_by_peer(3s));

    // The same from 127.0.0.2 is another address: it connects.
    int fd = connect_from("127.0.0.2", s.port);
    ASSERT_GE(fd, 0);
    mqtt::connect_packet c;
    c.version = mqtt::v311;
    c.client_id = "other-address";
    c.keep_alive = 60;
    c.username = token;
    std::string bytes;
    mqtt::encode(c, bytes);
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char connack[4] = {};
    EXPECT_EQ(::recv(fd, connack, sizeof connack, MSG_WAITALL), 4);
    EXPECT_EQ(std::string(connack, 4), "\x20\x02\x00\x00"s);
    ::close(fd);

    // A slot freed is a slot again.
    held.pop_back();
    std::this_thread::sleep_for(300ms);
    raw_client again(s.port);
    again.connect(mqtt::v311, token, {}, 60, {}, true, "again");
    EXPECT_EQ(connack_reason(again, mqtt::v311), 0);
}

// ---- revoked credentials ----------------------------------------------------------------------

std::string make_device(mqtt_server& s, const std::string& name) {
    auto made = s.srv.post("/api/v1/devices", R"({"name":")" + name + R"(","type":"pump"})",
                           {"Content-Type: application/json"});
    EXPECT_EQ(made.status, 201) << made.body;
    return std::string(boost::json::parse(made.body).at("token").as_string());
}

// Connects, publishes one stored point at QoS 1 and returns once it is acknowledged.
void connect_and_store(raw_client& c, uint8_t version, const std::string& token,
                       const std::string& metric) {
    c.connect(version, token, {}, 60, {}, true, "dev-" + metric);
    ASSERT_EQ(connack_reason(c, version), 0);
    c.send(publish_bytes(version, "v1/devices/me/telemetry",
                         R"({"ts":1704067200000,"values":{")" + metric + R"(":1}})", 1, 1));
    auto ack = c.read(version);
    ASSERT_TRUE(ack && std::holds_alternative<mqtt::ack_packet>(*ack));
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).reason, 0);
}

std::string one_point(const std::string& device, const std::string& metric) {
    return R"({"series":[{"measurement":"telemetry","tags":{"device":")" + device +
           R"("},"metric":")" + metric + R"(","points":[[1704067200000,1]]}]})";
}

TEST(mqtt_guard_test, deleting_a_device_closes_its_sessions_and_stores_nothing_more) {
    mqtt_server s;
    const auto token = make_device(s, "gone-1");
    const auto bystander_token = make_device(s, "stays-1");
    raw_client c5(s.port), c3(s.port), bystander(s.port);
    connect_and_store(c5, mqtt::v5, token, "a");
    connect_and_store(c3, mqtt::v311, token, "b");
    connect_and_store(bystander, mqtt::v311, bystander_token, "c");

    ASSERT_EQ(s.send("DELETE", "/api/v1/devices/gone-1").status, 204);
    // Sent after the deletion answered, on the still-open sockets: never stored.
    c5.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                          R"({"ts":1704067201000,"values":{"a":2}})", 1, 2));
    c3.send(publish_bytes(mqtt::v311, "v1/devices/me/telemetry",
                          R"({"ts":1704067201000,"values":{"b":2}})", 1, 2));
    EXPECT_EQ(disconnect_reason(c5), mqtt::reason::not_authorized);
    EXPECT_TRUE(c3.closed_by_peer(3s));
    EXPECT_EQ(s.query("gone-1", "a"), one_point("gone-1", "a"));
    EXPECT_EQ(s.query("gone-1", "b"), one_point("gone-1", "b"));
    // Another device's session is untouched.
    bystander.send("\xc0\x00"s);
    auto pong = bystander.read(mqtt::v311, 3s);
    EXPECT_TRUE(pong && std::holds_alternative<mqtt::ping_packet>(*pong));
    // And the old token no longer connects.
    raw_client again(s.port);
    again.connect(mqtt::v5, token, {}, 60, {}, true, "again");
    EXPECT_EQ(connack_reason(again, mqtt::v5), mqtt::reason::bad_username_or_password);
}

TEST(mqtt_guard_test, rotating_a_device_token_closes_the_sessions_of_the_old_one) {
    mqtt_server s;
    const auto old_token = make_device(s, "rot-1");
    raw_client c(s.port);
    connect_and_store(c, mqtt::v5, old_token, "a");
    auto rotated = s.srv.post("/api/v1/devices/rot-1/token", "");
    ASSERT_EQ(rotated.status / 100, 2) << rotated.body;
    const std::string new_token(boost::json::parse(rotated.body).at("token").as_string());
    c.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                         R"({"ts":1704067201000,"values":{"a":2}})", 1, 2));
    EXPECT_EQ(disconnect_reason(c), mqtt::reason::not_authorized);
    EXPECT_EQ(s.query("rot-1", "a"), one_point("rot-1", "a"));
    // The new token works.
    raw_client fresh(s.port);
    connect_and_store(fresh, mqtt::v5, new_token, "z");
}

TEST(mqtt_guard_test, revoking_an_api_key_closes_the_sessions_that_logged_in_with_it) {
    mqtt_server s;
    auto made = s.srv.post("/api/v1/apikeys", R"({"name":"watcher","role":"viewer"})",
                           {"Content-Type: application/json"});
    ASSERT_EQ(made.status, 201) << made.body;
    const auto key_json = boost::json::parse(made.body);
    const std::string key(key_json.at("key").as_string());
    const std::string id(key_json.at("id").as_string());
    raw_client c(s.port);
    c.connect(mqtt::v5, "token", key, 60, {}, true, "watcher");
    ASSERT_EQ(connack_reason(c, mqtt::v5), 0);
    ASSERT_EQ(s.send("DELETE", "/api/v1/apikeys/" + id).status / 100, 2);
    EXPECT_EQ(disconnect_reason(c), mqtt::reason::not_authorized);
    raw_client again(s.port);
    again.connect(mqtt::v5, "token", key, 60, {}, true, "watcher");
    EXPECT_NE(connack_reason(again, mqtt::v5), 0);
}

TEST(mqtt_guard_test, disabling_a_user_closes_the_sessions_that_logged_in_with_their_token) {
    mqtt_server s;
    ASSERT_EQ(s.send("POST", "/api/v1/users",
                     R"({"username":"watch","password":"a long enough one","role":"viewer"})")
                  .status,
              201);
    auto login = testing::http_request(s.srv.port(), "POST", "/api/v1/auth/login",
                                       R"({"username":"watch","password":"a long enough one"})",
                                       {"Content-Type: application/json"});
    ASSERT_EQ(login.status, 200) << login.body;
    const std::string jwt(boost::json::parse(login.body).at("access_token").as_string());
    // An API key named like the user is another principal: it stays connected.
    const std::string key = s.api_key("watch");
    raw_client c(s.port), keyed(s.port);
    c.connect(mqtt::v5, "token", jwt, 60, {}, true, "watch-user");
    ASSERT_EQ(connack_reason(c, mqtt::v5), 0);
    keyed.connect(mqtt::v5, "token", key, 60, {}, true, "watch-key");
    ASSERT_EQ(connack_reason(keyed, mqtt::v5), 0);

    ASSERT_EQ(s.send("PATCH", "/api/v1/users/watch", R"({"disabled":true})").status, 200);
    EXPECT_EQ(disconnect_reason(c), mqtt::reason::not_authorized);
    keyed.send("\xc0\x00"s);
    auto pong = keyed.read(mqtt::v5, 3s);
    EXPECT_TRUE(pong && std::holds_alternative<mqtt::ping_packet>(*pong));
    raw_client again(s.port);
    again.connect(mqtt::v5, "token", jwt, 60, {}, true, "watch-user");
    EXPECT_NE(connack_reason(again, mqtt::v5), 0);
}

// ---- per-device limits -----------------------------------------------------------------------

uint8_t puback_reason(raw_client& c, uint8_t version) {
    auto p = c.read(version);
    if (!p || !std::holds_alternative<mqtt::ack_packet>(*p)) return 0xFF;
    return std::get<mqtt::ack_packet>(*p).reason;
}

TEST(mqtt_guard_test, a_device_cannot_create_series_past_its_limit_over_http_or_mqtt) {
    mqtt_server s({"--set", "ingest.max_series_per_device=3"});
    const auto token = make_device(s, "grow-1");
    auto first = s.send("POST", "/api/v1/devices/grow-1/telemetry",
                        R"({"ts":1704067200000,"values":{"a":1,"b":2,"c":3}})");
    ASSERT_EQ(first.status, 204) << first.body;
    auto more = s.send("POST", "/api/v1/devices/grow-1/telemetry",
                       R"({"ts":1704067201000,"values":{"a":4,"d":4}})");
    EXPECT_EQ(more.status, 429) << more.body;
    EXPECT_FALSE(more.header("retry-after").empty());
    auto err = boost::json::parse(more.body).at("error");
    EXPECT_EQ(err.at("code").as_string(), "too_many_requests");
    EXPECT_EQ(err.at("field").as_string(), "metric");
    const std::string message(err.at("message").as_string());
    EXPECT_NE(message.find("limit is 3 (ingest.max_series_per_device)"), std::string::npos)
        << message;
    EXPECT_NE(message.find("metric d"), std::string::npos) << message;
    // Its series keep working.
    EXPECT_EQ(s.send("POST", "/api/v1/devices/grow-1/telemetry",
                     R"({"ts":1704067202000,"values":{"a":5}})")
                  .status,
              204);

    // MQTT 5.0 QoS 1: PUBACK 0x97 and the connection lives on.
    raw_client c5(s.port);
    c5.connect(mqtt::v5, token, {}, 60, {}, true, "grow5");
    ASSERT_EQ(connack_reason(c5, mqtt::v5), 0);
    c5.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                          R"({"ts":1704067203000,"values":{"e":1}})", 1, 1));
    EXPECT_EQ(puback_reason(c5, mqtt::v5), mqtt::reason::quota_exceeded);
    c5.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                          R"({"ts":1704067203000,"values":{"a":6}})", 1, 2));
    EXPECT_EQ(puback_reason(c5, mqtt::v5), 0);
    // MQTT 3.1.1 has no reason in PUBACK: the connection is closed, the message not stored.
    raw_client c3(s.port);
    c3.connect(mqtt::v311, token, {}, 60, {}, true, "grow3");
    ASSERT_EQ(connack_reason(c3, mqtt::v311), 0);
    c3.send(publish_bytes(mqtt::v311, "v1/devices/me/telemetry",
                          R"({"ts":1704067204000,"values":{"f":1}})", 1, 1));
    EXPECT_TRUE(c3.closed_by_peer(3s));

    const std::string a = s.query("grow-1", "a");
    for (const char* ts : {"1704067200000", "1704067202000", "1704067203000"})
        EXPECT_NE(a.find(ts), std::string::npos) << a;
    EXPECT_EQ(a.find("1704067201000"), std::string::npos) << a;  // that request was refused whole
    for (const char* m : {"d", "e", "f"})
        EXPECT_EQ(s.query("grow-1", m).find("\"points\""), std::string::npos) << m;
}

TEST(mqtt_guard_test, a_device_cannot_grow_its_attributes_past_the_limits_over_http_or_mqtt) {
    mqtt_server s({"--set", "devices.max_attributes=3", "--set", "devices.max_attribute_bytes=64"});
    const auto token = make_device(s, "attr-1");
    const std::string target = "/api/v1/devices/attr-1/attributes?scope=server";
    ASSERT_EQ(s.send("POST", target, R"({"a":1,"b":2})").status, 200);
    auto over = s.send("POST", target, R"({"c":3,"d":4})");
    EXPECT_EQ(over.status, 429) << over.body;
    auto err = boost::json::parse(over.body).at("error");
    EXPECT_EQ(err.at("code").as_string(), "too_many_requests");
    EXPECT_EQ(err.at("field").as_string(), "body");
    EXPECT_NE(
        std::string(err.at("message").as_string()).find("limit of 3 (devices.max_attributes)"),
        std::string::npos);
    EXPECT_EQ(s.send("POST", target, R"({"a":10,"c":3})").status, 200);  // one new: 3 in all
    auto big = s.send("POST", target, R"({"a":")" + std::string(100, 'x') + R"("})");
    EXPECT_EQ(big.status, 413) << big.body;
    auto big_err = boost::json::parse(big.body).at("error");
    EXPECT_EQ(big_err.at("code").as_string(), "too_large");
    EXPECT_EQ(big_err.at("field").as_string(), "body/a");

    raw_client c5(s.port);
    c5.connect(mqtt::v5, token, {}, 60, {}, true, "attr5");
    ASSERT_EQ(connack_reason(c5, mqtt::v5), 0);
    c5.send(publish_bytes(mqtt::v5, "v1/devices/me/attributes", R"({"fw":"1.0"})", 1, 1));
    EXPECT_EQ(puback_reason(c5, mqtt::v5), mqtt::reason::quota_exceeded);
    raw_client c3(s.port);
    c3.connect(mqtt::v311, token, {}, 60, {}, true, "attr3");
    ASSERT_EQ(connack_reason(c3, mqtt::v311), 0);
    c3.send(publish_bytes(mqtt::v311, "v1/devices/me/attributes", R"({"fw":"1.0"})", 1, 1));
    EXPECT_TRUE(c3.closed_by_peer(3s));
    c5.send(publish_bytes(mqtt::v5, "v1/devices/me/attributes",
                          R"({"a":")" + std::string(100, 'x') + R"("})", 1, 2));
    EXPECT_EQ(disconnect_reason(c5), mqtt::reason::packet_too_large);

    // Nothing accepted before is lost.
    auto got = s.srv.get("/api/v1/devices/attr-1/attributes");
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(boost::json::parse(got.body),
              boost::json::parse(R"({"client":{},"server":{"a":10,"b":2,"c":3},"shared":{}})"));
}

}  // namespace
}  // namespace clisonix
