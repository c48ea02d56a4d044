// The MQTT broker through the real binary with Eclipse Paho C (Debian's libpaho-mqtt-dev,
// synchronous MQTTClient API) as a client no one here wrote: 3.1.1 and 5.0 telemetry at
// QoS 1, refused logins, shared attribute updates and attribute requests.
#include <MQTTClient.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::server_process;

constexpr const char* range_all = "from=0&to=4102444800000";
constexpr int64_t ts0 = 1704067200000;  // 2024-01-01T00:00:00Z
constexpr unsigned long completion_timeout_ms = 10000;

// A server with MQTT on a port the test knows.
struct mqtt_server {
    mqtt_server()
        : port(testing::free_port()), srv({"--set", "mqtt.port=" + std::to_string(port)}) {}
    std::string device_token(const std::string& device) {
        auto r = srv.post("/api/v1/devices/" + device + "/token", "");
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(boost::json::parse(r.body).at("token").as_string());
    }
    // A device made through the API (a device record with attributes), with its token.
    std::string create_device(const std::string& name) {
        auto r = srv.post("/api/v1/devices", R"({"name":")" + name + R"("})",
                          {"Content-Type: application/json"});
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(boost::json::parse(r.body).at("token").as_string());
    }
    std::string query(const std::string& device, const std::string& metric) {
        auto r = srv.get("/api/v1/query?device=" + device + "&metric=" + metric + "&" + range_all);
        EXPECT_EQ(r.status, 200) << r.body;
        return r.body;
    }
    void set_shared(const std::string& device, const std::string& json) {
        auto r = srv.post("/api/v1/devices/" + device + "/attributes?scope=shared", json,
                          {"Content-Type: application/json"});
        ASSERT_EQ(r.status / 100, 2) << r.body;
    }
    std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port); }
    uint16_t port;
    server_process srv;
};

std::string series(const std::string& device, const std::string& metric,
                   const std::string& points) {
    return R"({"series":[{"measurement":"telemetry","tags":{"device":")" + device +
           R"("},"metric":")" + metric + R"(","points":)" + points + "}]}";
}

std::string telemetry(int64_t ts, int value) {
    return R"({"ts":)" + std::to_string(ts) + R"(,"values":{"temperature":)" +
           std::to_string(value) + "}}";
}

// One message taken off a Paho client.
struct received {
    std::string topic;
    std::string payload;
    int qos = -1;
};

// A Paho synchronous client (no callbacks set, so MQTTClient_receive works), destroyed
// (after a disconnect if connected) on scope exit.
class paho_client {
public:
    paho_client(const std::string& uri, const std::string& client_id, int mqtt_version)
        : _version(mqtt_version) {
        MQTTClient_createOptions create = MQTTClient_createOptions_initializer;
        create.MQTTVersion = mqtt_version;
        _rc = MQTTClient_createWithOptions(&_client, uri.c_str(), client_id.c_str(),
                                           MQTTCLIENT_PERSISTENCE_NONE, nullptr, &create);
    }
    ~paho_client() {
        if (_connected) {
            if (_version == MQTTVERSION_5)
                MQTTClient_disconnect5(_client, 1000, MQTTREASONCODE_NORMAL_DISCONNECTION, nullptr);
            else
                MQTTClient_disconnect(_client, 1000);
        }
        if (_client) MQTTClient_destroy(&_client);
    }
    paho_client(const paho_client&) = delete;
    paho_client& operator=(const paho_client&) = delete;

    int create_rc() const { return _rc; }

    // 3.1.1: MQTTCLIENT_SUCCESS or the CONNACK return code (or a negative Paho error).
    int connect(const char* username) {
        MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
        o.MQTTVersion = MQTTVERSION_3_1_1;
        o.cleansession = 1;
        o.keepAliveInterval = 30;
        o.username = username;
        int rc = MQTTClient_connect(_client, &o);
        _connected = rc == MQTTCLIENT_SUCCESS;
        return rc;
    }

    // 5.0: the CONNACK reason code (0 on success), or a negative Paho error.
    int connect5(const char* username) {
        MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer5;
        o.cleanstart = 1;
        o.keepAliveInterval = 30;
        o.username = username;
        MQTTResponse r = MQTTClient_connect5(_client, &o, nullptr, nullptr);
        int rc = r.reasonCode;
        MQTTResponse_free(r);
        _connected = rc == MQTTREASONCODE_SUCCESS;
        return rc;
    }

    // Publishes at `qos` and waits for the PUBACK; MQTTCLIENT_SUCCESS when it came.
    int publish(const std::string& topic, const std::string& payload, int qos = 1) {
        MQTTClient_deliveryToken dt = 0;
        int rc;
        if (_version == MQTTVERSION_5) {
            MQTTProperties props = MQTTProperties_initializer;
            MQTTResponse r =
                MQTTClient_publish5(_client, topic.c_str(), static_cast<int>(payload.size()),
                                    payload.data(), qos, 0, &props, &dt);
            rc = r.reasonCode;
            MQTTResponse_free(r);
        } else {
            rc = MQTTClient_publish(_client, topic.c_str(), static_cast<int>(payload.size()),
                                    payload.data(), qos, 0, &dt);
        }
        if (rc != MQTTCLIENT_SUCCESS) return rc;
        return MQTTClient_waitForCompletion(_client, dt, completion_timeout_ms);
    }

    // The granted QoS (0 or 1), 0x80 / a 5.0 reason code when refused, or a Paho error.
    int subscribe(const std::string& filter, int qos = 1) {
        if (_version == MQTTVERSION_5) {
            MQTTSubscribe_options so = MQTTSubscribe_options_initializer;
            MQTTResponse r = MQTTClient_subscribe5(_client, filter.c_str(), qos, &so, nullptr);
            int rc = r.reasonCode;
            MQTTResponse_free(r);
            return rc;
        }
        // 3.1.1: MQTTClient_subscribe says only success; subscribeMany gives the granted QoS.
        char* filters[] = {const_cast<char*>(filter.c_str())};
        int granted[] = {qos};
        int rc = MQTTClient_subscribeMany(_client, 1, filters, granted);
        return rc == MQTTCLIENT_SUCCESS ? granted[0] : rc;
    }

    // The next message within `timeout`, if any.
    std::optional<received> receive(std::chrono::milliseconds timeout) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            char* topic = nullptr;
            int topic_len = 0;
            MQTTClient_message* m = nullptr;
            int rc = MQTTClient_receive(_client, &topic, &topic_len, &m, 250);
            if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED) return {};
            if (!m) continue;  // timed out this round
            received r;
            r.topic = topic_len > 0 ? std::string(topic, static_cast<size_t>(topic_len))
                                    : std::string(topic);
            r.payload.assign(static_cast<const char*>(m->payload),
                             static_cast<size_t>(m->payloadlen));
            r.qos = m->qos;
            MQTTClient_freeMessage(&m);
            MQTTClient_free(topic);
            return r;
        }
        return {};
    }

private:
    MQTTClient _client = nullptr;
    int _version;
    int _rc = MQTTCLIENT_FAILURE;
    bool _connected = false;
};

TEST(mqtt_paho_test, v311_publishes_100_qos1_messages_and_all_are_queryable) {
    mqtt_server s;
    const auto token = s.device_token("paho-1");
    paho_client c(s.uri(), "paho-1-v311", MQTTVERSION_3_1_1);
    ASSERT_EQ(c.create_rc(), MQTTCLIENT_SUCCESS);
    ASSERT_EQ(c.connect(token.c_str()), MQTTCLIENT_SUCCESS);
    // One PUBLISH, one wait at a time (about 0.1 s each: Paho's waitForCompletion polls in
    // MQTTClient_yield slices of 100 ms, whatever the broker's ack latency).
    std::string points = "[";
    for (int i = 1; i <= 100; ++i) {
        ASSERT_EQ(c.publish("v1/devices/me/telemetry", telemetry(ts0 + i, i)), MQTTCLIENT_SUCCESS)
            << i;
        if (i > 1) points += ",";
        points += "[" + std::to_string(ts0 + i) + "," + std::to_string(i) + "]";
    }
    points += "]";
    // Every PUBACK means "stored": the query sees all 100 at once, with no waiting.
    EXPECT_EQ(s.query("paho-1", "temperature"), series("paho-1", "temperature", points));
    auto metrics = s.srv.get("/metrics");
    EXPECT_NE(metrics.body.find("clisonix_mqtt_messages_received_total 100\n"), std::string::npos)
        << metrics.body;
}

TEST(mqtt_paho_test, v5_publishes_qos1_telemetry_and_bad_logins_get_the_connack_reason) {
    mqtt_server s;
    const auto token = s.device_token("paho-5");
    {
        paho_client c(s.uri(), "paho-5-v5", MQTTVERSION_5);
        ASSERT_EQ(c.create_rc(), MQTTCLIENT_SUCCESS);
        ASSERT_EQ(c.connect5(token.c_str()), MQTTREASONCODE_SUCCESS);
        for (int i = 1; i <= 5; ++i)
            ASSERT_EQ(c.publish("v1/devices/me/telemetry", telemetry(ts0 + i, -10 * i)),
                      MQTTCLIENT_SUCCESS)
                << i;
    }
    EXPECT_EQ(s.query("paho-5", "temperature"),
              series("paho-5", "temperature",
                     "[[1704067200001,-10],[1704067200002,-20],[1704067200003,-30],"
                     "[1704067200004,-40],[1704067200005,-50]]"));

    // docs/decisions/0019: a bad token -> 0x86, no credentials -> 0x87; 3.1.1: codes 4 and 5.
    paho_client bad5(s.uri(), "paho-bad-v5", MQTTVERSION_5);
    EXPECT_EQ(bad5.connect5("not-a-token"), MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD);
    paho_client none5(s.uri(), "paho-none-v5", MQTTVERSION_5);
    EXPECT_EQ(none5.connect5(nullptr), MQTTREASONCODE_NOT_AUTHORIZED);
    paho_client bad3(s.uri(), "paho-bad-v311", MQTTVERSION_3_1_1);
    EXPECT_EQ(bad3.connect("not-a-token"), 4);
    paho_client none3(s.uri(), "paho-none-v311", MQTTVERSION_3_1_1);
    EXPECT_EQ(none3.connect(nullptr), 5);
    EXPECT_EQ(s.query("not-a-token", "temperature"), R"({"series":[]})");
}

TEST(mqtt_paho_test, a_shared_attribute_set_through_the_api_reaches_a_paho_subscriber) {
    for (int version : {MQTTVERSION_3_1_1, MQTTVERSION_5}) {
        SCOPED_TRACE(version);
        mqtt_server s;
        const auto token = s.create_device("valve-1");
        paho_client c(s.uri(), "valve-1", version);
        ASSERT_EQ(c.create_rc(), MQTTCLIENT_SUCCESS);
        ASSERT_EQ(version == MQTTVERSION_5 ? c.connect5(token.c_str()) : c.connect(token.c_str()),
                  0);
        // SUBSCRIBE returns after the SUBACK: the subscription is in place.
        ASSERT_EQ(c.subscribe("v1/devices/me/attributes"), 1);
        s.set_shared("valve-1", R"({"interval":30})");
        auto m = c.receive(10s);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->topic, "v1/devices/me/attributes");
        EXPECT_EQ(m->payload, R"({"interval":30})");
        EXPECT_EQ(m->qos, 1);
        // Exactly one message per change.
        EXPECT_FALSE(c.receive(500ms));
        s.set_shared("valve-1", R"({"mode":"eco","interval":45})");
        m = c.receive(10s);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->payload, R"({"mode":"eco","interval":45})");
    }
}

TEST(mqtt_paho_test, an_attribute_request_is_answered_on_the_response_topic) {
    mqtt_server s;
    const auto token = s.create_device("meter-1");
    s.set_shared("meter-1", R"({"interval":30,"mode":"eco"})");
    paho_client c(s.uri(), "meter-1", MQTTVERSION_3_1_1);
    ASSERT_EQ(c.create_rc(), MQTTCLIENT_SUCCESS);
    ASSERT_EQ(c.connect(token.c_str()), MQTTCLIENT_SUCCESS);
    ASSERT_EQ(c.publish("v1/devices/me/attributes", R"({"firmware":"2.1"})"), MQTTCLIENT_SUCCESS);
    ASSERT_EQ(c.subscribe("v1/devices/me/attributes/response/+"), 1);

    ASSERT_EQ(c.publish("v1/devices/me/attributes/request/1", R"({"sharedKeys":"interval"})"),
              MQTTCLIENT_SUCCESS);
    auto m = c.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "v1/devices/me/attributes/response/1");
    EXPECT_EQ(m->payload, R"({"shared":{"interval":30}})");

    ASSERT_EQ(c.publish("v1/devices/me/attributes/request/2",
                        R"({"clientKeys":"firmware","sharedKeys":"mode,interval,missing"})"),
              MQTTCLIENT_SUCCESS);
    m = c.receive(10s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->topic, "v1/devices/me/attributes/response/2");
    EXPECT_EQ(m->payload, R"({"client":{"firmware":"2.1"},"shared":{"mode":"eco","interval":30}})");
    EXPECT_FALSE(c.receive(500ms));
}

}  // namespace
}  // namespace clisonix
