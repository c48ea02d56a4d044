// The broker in-process with a real engine and recording hooks: attributes both ways,
// attribute requests, platform publishes to users, connection status, and a batch the engine
// refuses because of one message.
#include <gtest/gtest.h>

#include <bit>
#include <mutex>
#include <thread>

#include "mqtt/mqtt.h"
#include "mqtt/raw_client.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;

struct recorded {
    std::mutex mu;
    std::vector<std::string> attributes;  // device + " " + json
    std::vector<std::string> requests;
    std::vector<std::string> status;  // device + " up|down"
};

struct fixture {
    fixture() {
        storage::options so;
        so.dir = dir.str() + "/tsdb";
        engine = std::move(*storage::engine::open(so));
        sink = std::make_unique<ingest::pipeline>(*engine);
        mqtt::hooks h;
        h.authenticate_device = [](std::string_view token) -> result<std::string> {
            if (token.starts_with("tok-")) return std::string(token.substr(4));
            // The metadata store away: the token cannot be checked.
            if (token.starts_with("unchecked-"))
                return make_error("unavailable", "metadata store: connection refused");
            return make_error("invalid_token", "no");
        };
        h.authenticate_user = [](std::string_view key) -> result<std::string> {
            if (key == "key-1") return std::string("alice");
            return make_error("invalid_token", "no");
        };
        h.client_attributes = [this](std::string_view d, std::string_view json) -> status {
            std::lock_guard lock(rec.mu);
            rec.attributes.push_back(std::string(d) + " " + std::string(json));
            return {};
        };
        h.attribute_request = [this](std::string_view d,
                                     std::string_view req) -> result<std::string> {
            std::lock_guard lock(rec.mu);
            rec.requests.push_back(std::string(d) + " " + std::string(req));
            return std::string(R"({"client":{"fw":"1.2"},"shared":{"interval":5}})");
        };
        h.connection_changed = [this](std::string_view d, bool up) {
            std::lock_guard lock(rec.mu);
            rec.status.push_back(std::string(d) + (up ? " up" : " down"));
        };
        mqtt::options o;
        o.bind = "127.0.0.1";
        o.port = 0;
        b = std::make_unique<mqtt::broker>(o, *sink, std::move(h));
        EXPECT_TRUE(b->start());
    }
    ~fixture() { b->stop(); }
    testing::temp_dir dir{"clisonix-mqtt-hooks"};
    std::unique_ptr<storage::engine> engine;
    std::unique_ptr<ingest::pipeline> sink;
    recorded rec;
    std::unique_ptr<mqtt::broker> b;
};

std::string subscribe(raw_client& c, uint8_t version, std::vector<mqtt::subscription> subs) {
    std::string bytes;
    mqtt::encode(mqtt::subscribe_packet{1, std::move(subs), {}}, version, bytes);
    c.send(bytes);
    auto p = c.read(version);
    if (!p || !std::holds_alternative<mqtt::suback_packet>(*p)) return "no suback";
    std::string r;
    for (auto x : std::get<mqtt::suback_packet>(*p).reasons)
        r += std::to_string(x) + ",";
    return r;
}

TEST(mqtt_hooks_test, attributes_requests_and_shared_updates_flow_both_ways) {
    fixture f;
    raw_client c(f.b->port());
    c.connect(mqtt::v311, "tok-pump-1", {}, 60, {}, true, "pump");
    ASSERT_EQ(connack_reason(c, mqtt::v311), 0);
    EXPECT_EQ(
        subscribe(c, mqtt::v311,
                  {{"v1/devices/me/attributes", 1}, {"v1/devices/me/attributes/response/+", 0}}),
        "1,0,");
    c.send(publish_bytes(mqtt::v311, "v1/devices/me/attributes", R"({"fw":"1.2"})", 1, 3));
    auto ack = c.read(mqtt::v311);
    ASSERT_TRUE(ack && std::holds_alternative<mqtt::ack_packet>(*ack));
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).packet_id, 3);

    c.send(publish_bytes(mqtt::v311, "v1/devices/me/attributes/request/42",
                         R"({"clientKeys":"fw","sharedKeys":"interval"})", 0));
    auto resp = c.read(mqtt::v311);
    ASSERT_TRUE(resp && std::holds_alternative<mqtt::publish_packet>(*resp));
    EXPECT_EQ(std::get<mqtt::publish_packet>(*resp).topic, "v1/devices/me/attributes/response/42");
    EXPECT_EQ(std::get<mqtt::publish_packet>(*resp).payload,
              R"({"client":{"fw":"1.2"},"shared":{"interval":5}})");

    f.b->send_to_device("pump-1", "v1/devices/me/attributes", R"({"interval":10})");
    f.b->send_to_device("pump-2", "v1/devices/me/attributes", R"({"interval":99})");
    auto push = c.read(mqtt::v311);
    ASSERT_TRUE(push && std::holds_alternative<mqtt::publish_packet>(*push));
    const auto& pp = std::get<mqtt::publish_packet>(*push);
    EXPECT_EQ(pp.topic, "v1/devices/me/attributes");
    EXPECT_EQ(pp.payload, R"({"interval":10})");
    EXPECT_EQ(pp.qos, 1);
    std::string puback;
    mqtt::encode(mqtt::ack_packet{mqtt::packet_type::puback, pp.packet_id, 0, {}}, mqtt::v311,
                 puback);
    c.send(puback);
    c.send(std::string("\xe0\x00", 2));
    EXPECT_TRUE(c.closed_by_peer(5s));
    std::this_thread::sleep_for(100ms);
    std::lock_guard lock(f.rec.mu);
    EXPECT_EQ(f.rec.attributes, std::vector<std::string>{R"(pump-1 {"fw":"1.2"})"});
    EXPECT_EQ(f.rec.requests,
              std::vector<std::string>{R"(pump-1 {"clientKeys":"fw","sharedKeys":"interval"})"});
    EXPECT_EQ(f.rec.status, (std::vector<std::string>{"pump-1 up", "pump-1 down"}));
}

// A token that cannot be checked (the metadata store is away) is not a wrong token: CONNACK
// says "server unavailable" (3.1.1: 3, 5.0: 0x88), so that the device retries with it.
TEST(mqtt_hooks_test, credentials_the_store_cannot_check_are_server_unavailable_not_refused) {
    fixture f;
    raw_client v3(f.b->port());
    v3.connect(mqtt::v311, "unchecked-pump-1", {}, 60, {}, true, "pump");
    EXPECT_EQ(connack_reason(v3, mqtt::v311), 3);
    raw_client v5(f.b->port());
    v5.connect(mqtt::v5, "unchecked-pump-1", {}, 60, {}, true, "pump");
    EXPECT_EQ(connack_reason(v5, mqtt::v5), mqtt::reason::server_unavailable);
    raw_client wrong(f.b->port());
    wrong.connect(mqtt::v311, "wrong-token", {}, 60, {}, true, "pump");
    EXPECT_EQ(connack_reason(wrong, mqtt::v311), 4) << "a token checked and refused stays 4";
}

TEST(mqtt_hooks_test, platform_publishes_reach_users_and_never_devices) {
    fixture f;
    raw_client user(f.b->port());
    user.connect(mqtt::v5, "token", std::string("key-1"), 60, {}, true, "ops");
    ASSERT_EQ(connack_reason(user, mqtt::v5), 0);
    EXPECT_EQ(subscribe(user, mqtt::v5, {{"clisonix/alarms/#", 1}}), "1,");
    raw_client dev(f.b->port());
    dev.connect(mqtt::v5, "tok-pump-1", {}, 60, {}, true, "pump");
    ASSERT_EQ(connack_reason(dev, mqtt::v5), 0);
    EXPECT_EQ(subscribe(dev, mqtt::v5, {{"clisonix/alarms/#", 1}}), "135,");  // 0x87

    f.b->publish("clisonix/alarms/pump-1", R"({"event":"alarm.created"})");
    auto m = user.read(mqtt::v5);
    ASSERT_TRUE(m && std::holds_alternative<mqtt::publish_packet>(*m));
    EXPECT_EQ(std::get<mqtt::publish_packet>(*m).topic, "clisonix/alarms/pump-1");
    EXPECT_EQ(std::get<mqtt::publish_packet>(*m).payload, R"({"event":"alarm.created"})");
    EXPECT_FALSE(dev.read(mqtt::v5, 300ms).has_value());
    // A user may not publish device telemetry or fake alarms.
    user.send(publish_bytes(mqtt::v5, "clisonix/alarms/x", "{}", 1, 9));
    auto ack = user.read(mqtt::v5);
    ASSERT_TRUE(ack && std::holds_alternative<mqtt::ack_packet>(*ack));
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).reason, mqtt::reason::not_authorized);
}

TEST(mqtt_hooks_test, one_refused_message_does_not_spoil_the_others_in_its_batch) {
    fixture f;
    raw_client c(f.b->port());
    c.connect(mqtt::v5, "tok-m-1", {}, 60, {}, true, "m");
    ASSERT_EQ(connack_reason(c, mqtt::v5), 0);
    c.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                         R"({"ts":1704067200000,"values":{"v":1.5}})", 1, 1));
    auto a1 = c.read(mqtt::v5);
    ASSERT_TRUE(a1 && std::holds_alternative<mqtt::ack_packet>(*a1));
    // One write: a string for the float series `v` (the engine refuses it) and a good one.
    c.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                         R"({"ts":1704067201000,"values":{"v":"text"}})", 1, 2) +
           publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                         R"({"ts":1704067202000,"values":{"w":2.5}})", 1, 3));
    auto a2 = c.read(mqtt::v5);
    auto a3 = c.read(mqtt::v5);
    ASSERT_TRUE(a2 && a3);
    EXPECT_EQ(std::get<mqtt::ack_packet>(*a2).packet_id, 2);
    EXPECT_EQ(std::get<mqtt::ack_packet>(*a2).reason, mqtt::reason::payload_format_invalid);
    EXPECT_EQ(std::get<mqtt::ack_packet>(*a3).packet_id, 3);
    EXPECT_EQ(std::get<mqtt::ack_packet>(*a3).reason, mqtt::reason::success);
    auto w = f.engine->series_by_key("telemetry,device=m-1 w");
    ASSERT_TRUE(w);
    auto last = f.engine->last(w->id);
    ASSERT_TRUE(last);
    EXPECT_EQ(std::bit_cast<double>(last->raw), 2.5);
    auto v = f.engine->series_by_key("telemetry,device=m-1 v");
    ASSERT_TRUE(v);
    EXPECT_EQ(std::bit_cast<double>(f.engine->last(v->id)->raw), 1.5);
}

}  // namespace
}  // namespace clisonix
