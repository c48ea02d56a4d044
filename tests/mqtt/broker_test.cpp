// The MQTT broker through the real binary: Debian's mosquitto_pub / mosquitto_sub as clients
// no one here wrote, and a raw socket for what a well-behaved client never sends.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <csignal>
#include <optional>
#include <random>
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
using testing::process;
using testing::server_process;

std::string series(const std::string& device, const std::string& metric,
                   const std::string& points) {
    return R"({"series":[{"measurement":"telemetry","tags":{"device":")" + device +
           R"("},"metric":")" + metric + R"(","points":)" + points + "}]}";
}

// Runs a mosquitto client to completion (or kills it after `timeout`).
testing::run_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 20s) {
    process p(argv);
    testing::run_result r;
    auto code = p.wait(timeout);
    if (!code) {
        p.signal(SIGKILL);
        code = p.wait(5s);
    }
    r.exit_code = code.value_or(-1);
    r.out = p.out();
    r.err = p.err();
    return r;
}

std::vector<std::string> pub(uint16_t port, const std::string& user, const std::string& topic,
                             const std::string& message, const std::string& version = "mqttv311") {
    return {"/usr/bin/mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            std::to_string(port),
            "-u",
            user,
            "-q",
            "1",
            "-V",
            version,
            "-t",
            topic,
            "-m",
            message};
}

TEST(mqtt_broker_test, mosquitto_pub_telemetry_at_qos1_is_queryable_in_v311_and_v5) {
    mqtt_server s;
    const auto token = s.device_token("pump-1");
    auto a = run(pub(s.port, token, "v1/devices/me/telemetry",
                     R"({"ts":1704067200000,"values":{"temperature":21.5,"rpm":1450}})"));
    EXPECT_EQ(a.exit_code, 0) << a.err;
    auto b = run(pub(s.port, token, "v1/devices/me/telemetry",
                     R"([{"ts":1704067201000,"values":{"temperature":22.25}},)"
                     R"({"ts":1704067202000,"values":{"temperature":-3}}])",
                     "mqttv5"));
    EXPECT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(s.query("pump-1", "temperature"),
              series("pump-1", "temperature",
                     "[[1704067200000,21.5],[1704067201000,22.25],[1704067202000,-3]]"));
    EXPECT_EQ(s.query("pump-1", "rpm"), series("pump-1", "rpm", "[[1704067200000,1450]]"));
    auto metrics = s.srv.get("/metrics");
    EXPECT_NE(metrics.body.find("clisonix_mqtt_messages_received_total 2"), std::string::npos);
}

// The issue's "done when": a device created through the API sends telemetry with
// mosquitto_pub, and a shared attribute set through the API reaches mosquitto_sub.
TEST(mqtt_broker_test, a_device_created_through_the_api_talks_mqtt_both_ways) {
    mqtt_server s;
    auto made = s.srv.post("/api/v1/devices", R"({"name":"boiler-2","type":"boiler"})",
                           {"Content-Type: application/json"});
    ASSERT_EQ(made.status, 201) << made.body;
    const std::string token(boost::json::parse(made.body).at("token").as_string());
    auto p = run(pub(s.port, token, "v1/devices/me/telemetry",
                     R"({"ts":1704067200000,"values":{"pressure":4.25}})", "mqttv5"));
    EXPECT_EQ(p.exit_code, 0) << p.err;
    EXPECT_EQ(s.query("boiler-2", "pressure"),
              series("boiler-2", "pressure", "[[1704067200000,4.25]]"));

    process sub({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(s.port), "-u",
                 token, "-t", "v1/devices/me/attributes", "-q", "1", "-C", "1", "-W", "15"});
    std::this_thread::sleep_for(700ms);  // subscribed
    auto set = s.srv.post("/api/v1/devices/boiler-2/attributes?scope=shared", R"({"interval":30})",
                          {"Content-Type: application/json"});
    ASSERT_EQ(set.status / 100, 2) << set.body;
    auto code = sub.wait(15s);
    ASSERT_TRUE(code) << sub.err();
    EXPECT_EQ(*code, 0) << sub.err();
    EXPECT_EQ(sub.out(), "{\"interval\":30}\n");

    // Client attributes published over MQTT land in the client scope.
    auto ca = run(pub(s.port, token, "v1/devices/me/attributes", R"({"firmware":"2.1"})"));
    EXPECT_EQ(ca.exit_code, 0) << ca.err;
    auto got = s.srv.get("/api/v1/devices/boiler-2/attributes?scope=client");
    EXPECT_EQ(got.status, 200) << got.body;
    EXPECT_NE(got.body.find(R"("firmware":"2.1")"), std::string::npos) << got.body;
}

// With mqtt.tls_cert/tls_key the port speaks MQTT over TLS only.
TEST(mqtt_broker_test, tls_when_a_certificate_is_configured) {
    testing::temp_dir certs("clisonix-mqtt-tls");
    const std::string cert = certs.str() + "/cert.pem", key = certs.str() + "/key.pem";
    auto gen = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                    "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert});
    ASSERT_EQ(gen.exit_code, 0) << gen.err;
    mqtt_server s({"--set", "mqtt.tls_cert=" + cert, "--set", "mqtt.tls_key=" + key});
    const auto token = s.device_token("secure-1");
    auto args = pub(s.port, token, "v1/devices/me/telemetry",
                    R"({"ts":1704067200000,"values":{"flow":40.5}})");
    args.insert(args.end(), {"--cafile", cert});
    auto p = run(args);
    EXPECT_EQ(p.exit_code, 0) << p.err;
    EXPECT_EQ(s.query("secure-1", "flow"), series("secure-1", "flow", "[[1704067200000,40.5]]"));
    // Plain MQTT on the TLS port goes nowhere.
    auto plain = run(pub(s.port, token, "v1/devices/me/telemetry", R"({"flow":1})"), 10s);
    EXPECT_NE(plain.exit_code, 0);
}

TEST(mqtt_broker_test, a_bad_token_is_refused_with_the_connack_code) {
    mqtt_server s;
    auto v3 = run(pub(s.port, "not-a-token", "v1/devices/me/telemetry", R"({"t":1})"));
    EXPECT_EQ(v3.exit_code, 4) << v3.err;  // the 3.1.1 CONNACK return code
    EXPECT_NE(v3.err.find("bad user name or password"), std::string::npos) << v3.err;
    auto v5 = run(pub(s.port, "not-a-token", "v1/devices/me/telemetry", R"({"t":1})", "mqttv5"));
    EXPECT_EQ(v5.exit_code, 0x86) << v5.err;  // the 5.0 reason code
    EXPECT_NE(v5.err.find("Bad User Name or Password"), std::string::npos) << v5.err;

    // Exact bytes on a raw socket: 3.1.1 return code 4, 5.0 reason 0x86; none: 5 / 0x87.
    raw_client r3(s.port);
    r3.connect(mqtt::v311, "not-a-token");
    EXPECT_EQ(connack_reason(r3, mqtt::v311), 4);
    EXPECT_TRUE(r3.closed_by_peer(5s));
    raw_client r5(s.port);
    r5.connect(mqtt::v5, "not-a-token");
    EXPECT_EQ(connack_reason(r5, mqtt::v5), mqtt::reason::bad_username_or_password);
    raw_client none(s.port);
    none.connect(mqtt::v5, "");
    EXPECT_EQ(connack_reason(none, mqtt::v5), mqtt::reason::not_authorized);
    EXPECT_EQ(s.query("not-a-token", "t"), R"({"series":[]})");
}

TEST(mqtt_broker_test, a_qos1_message_survives_sigkill_right_after_its_puback) {
    testing::temp_dir keep("clisonix-mqtt-kill");
    uint16_t port = testing::free_port();
    std::string token;
    {
        server_process srv({"--set", "mqtt.port=" + std::to_string(port)});
        auto t = srv.post("/api/v1/devices/press-7/token", "");
        ASSERT_EQ(t.status, 201) << t.body;
        token = std::string(boost::json::parse(t.body).at("token").as_string());
        raw_client c(port);
        c.connect(mqtt::v311, token);
        ASSERT_EQ(connack_reason(c, mqtt::v311), 0);
        for (uint16_t i = 1; i <= 50; ++i)
            c.send(publish_bytes(mqtt::v311, "v1/devices/me/telemetry",
                                 R"({"ts":)" + std::to_string(1704067200000 + i) +
                                     R"(,"values":{"pressure":)" + std::to_string(i) + "}}",
                                 1, i));
        for (uint16_t i = 1; i <= 50; ++i) {
            auto p = c.read(mqtt::v311);
            ASSERT_TRUE(p && std::holds_alternative<mqtt::ack_packet>(*p));
            EXPECT_EQ(std::get<mqtt::ack_packet>(*p).packet_id, i);  // in order
        }
        srv.proc().signal(SIGKILL);  // no chance to flush anything after the last PUBACK
        srv.proc().wait(10s);
        server_process again(server_process::on{srv.data()},
                             {"--set", "mqtt.port=" + std::to_string(testing::free_port())});
        auto r =
            again.get("/api/v1/query?device=press-7&metric=pressure&" + std::string(range_all));
        auto points = boost::json::parse(r.body).at("series").at(0).at("points").as_array();
        ASSERT_EQ(points.size(), 50u);
        EXPECT_EQ(points.at(49).as_array().at(1), 50);
        EXPECT_EQ(points.at(0).as_array().at(0), 1704067200001);
    }
}

TEST(mqtt_broker_test, hostile_bytes_close_only_their_connection) {
    mqtt_server s;
    const auto token = s.device_token("line-1");
    raw_client good(s.port);
    good.connect(mqtt::v5, token, {}, 60, {}, true, "good");
    ASSERT_EQ(connack_reason(good, mqtt::v5), 0);

    // 5.0: a wildcard in a PUBLISH topic -> DISCONNECT 0x90.
    raw_client wild(s.port);
    wild.connect(mqtt::v5, token, {}, 60, {}, true, "wild");
    ASSERT_EQ(connack_reason(wild, mqtt::v5), 0);
    wild.send(publish_bytes(mqtt::v5, "v1/devices/+/telemetry", "{}", 0));
    EXPECT_EQ(disconnect_reason(wild), mqtt::reason::topic_name_invalid);
    EXPECT_TRUE(wild.closed_by_peer(5s));

    // 5.0: a Remaining Length of five bytes -> DISCONNECT 0x81.
    raw_client longlen(s.port);
    longlen.connect(mqtt::v5, token, {}, 60, {}, true, "long");
    ASSERT_EQ(connack_reason(longlen, mqtt::v5), 0);
    longlen.send("\x30\xff\xff\xff\xff\x01"s);
    EXPECT_EQ(disconnect_reason(longlen), mqtt::reason::malformed_packet);

    // 5.0: a packet over mqtt.max_packet_size -> 0x95; QoS 2 -> 0x9B; second CONNECT -> 0x82.
    raw_client big(s.port);
    big.connect(mqtt::v5, token, {}, 60, {}, true, "big");
    ASSERT_EQ(connack_reason(big, mqtt::v5), 0);
    big.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry", std::string(300 * 1024, 'x'), 0));
    EXPECT_EQ(disconnect_reason(big), mqtt::reason::packet_too_large);
    raw_client q2(s.port);
    q2.connect(mqtt::v5, token, {}, 60, {}, true, "q2");
    ASSERT_EQ(connack_reason(q2, mqtt::v5), 0);
    q2.send(
        "\x34\x06\x00\x01"
        "a\x00\x01\x00"s);
    EXPECT_EQ(disconnect_reason(q2), mqtt::reason::qos_not_supported);

    // 5.0 CONNECT with a reserved flag -> CONNACK 0x81; 3.1.1 garbage -> just closed.
    raw_client badc(s.port);
    badc.send("\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00"s);
    EXPECT_EQ(connack_reason(badc, mqtt::v5), mqtt::reason::malformed_packet);
    raw_client junk(s.port);
    junk.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(junk.closed_by_peer(5s));
    raw_client v3(s.port);
    v3.connect(mqtt::v311, token, {}, 60, {}, true, "v3");
    ASSERT_EQ(connack_reason(v3, mqtt::v311), 0);
    v3.send("\x82\x02\x00\x01"s);  // SUBSCRIBE without a topic
    EXPECT_TRUE(v3.closed_by_peer(5s));

    // Random bytes after a CONNECT header byte, 60 connections of them (fixed seed).
    std::mt19937 rng(5);
    for (int i = 0; i < 60; ++i) {
        raw_client r(s.port);
        std::string bytes(1, '\x10');
        const size_t len = 1 + rng() % 300;
        for (size_t k = 0; k < len; ++k)
            bytes.push_back(static_cast<char>(rng() & 0xFF));
        r.send(bytes);
        r.closed_by_peer(50ms);
    }

    // The first connection never noticed.
    good.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                            R"({"ts":1704067200000,"values":{"speed":3.5}})", 1, 77));
    auto ack = good.read(mqtt::v5);
    ASSERT_TRUE(ack && std::holds_alternative<mqtt::ack_packet>(*ack));
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).packet_id, 77);
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).reason, 0);
    EXPECT_EQ(s.query("line-1", "speed"), series("line-1", "speed", "[[1704067200000,3.5]]"));
    // Invalid JSON: 5.0 PUBACK 0x99, the connection stays.
    good.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry", "{not json", 1, 78));
    ack = good.read(mqtt::v5);
    ASSERT_TRUE(ack && std::holds_alternative<mqtt::ack_packet>(*ack));
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).reason, mqtt::reason::payload_format_invalid);
    EXPECT_EQ(s.srv.get("/healthz").status, 200);
}

TEST(mqtt_broker_test, metric_names_follow_the_ingest_name_rule) {
    // The JSON is valid, but "\u0007" escapes a control character into the metric name:
    // refused as line protocol and HTTP JSON refuse it (PUBACK 0x99), nothing stored.
    mqtt_server s;
    raw_client c(s.port);
    c.connect(mqtt::v5, s.device_token("line-1"), {}, 60, {}, true, "names");
    ASSERT_EQ(connack_reason(c, mqtt::v5), 0);
    c.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                         R"({"ts":1704067200000,"values":{"spe\u0007ed":1}})", 1, 5));
    auto ack = c.read(mqtt::v5);
    ASSERT_TRUE(ack && std::holds_alternative<mqtt::ack_packet>(*ack));
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).reason, mqtt::reason::payload_format_invalid);
    c.send(publish_bytes(mqtt::v5, "v1/devices/me/telemetry",
                         R"({"ts":1704067200000,"values":{"vitesse_é":2}})", 1, 6));
    ack = c.read(mqtt::v5);
    ASSERT_TRUE(ack && std::holds_alternative<mqtt::ack_packet>(*ack));
    EXPECT_EQ(std::get<mqtt::ack_packet>(*ack).reason, 0);
    auto all = s.srv.get("/api/v1/series?device=line-1");
    EXPECT_EQ(all.body.find("spe"), std::string::npos) << all.body;
    EXPECT_NE(all.body.find("vitesse_\xC3\xA9"), std::string::npos) << all.body;
}

TEST(mqtt_broker_test, keep_alive_timeout_closes_a_silent_client) {
    mqtt_server s;
    const auto token = s.device_token("quiet-1");
    raw_client c5(s.port);
    c5.connect(mqtt::v5, token, {}, 1, {}, true, "q5");
    ASSERT_EQ(connack_reason(c5, mqtt::v5), 0);
    raw_client c3(s.port);
    c3.connect(mqtt::v311, token, {}, 1, {}, true, "q3");
    ASSERT_EQ(connack_reason(c3, mqtt::v311), 0);
    raw_client talker(s.port);
    talker.connect(mqtt::v311, token, {}, 1, {}, true, "talker");
    ASSERT_EQ(connack_reason(talker, mqtt::v311), 0);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 8; ++i) {  // PINGREQ every 400 ms keeps this one open
        std::this_thread::sleep_for(400ms);
        talker.send("\xc0\x00"s);
        auto p = talker.read(mqtt::v311, 2s);
        ASSERT_TRUE(p && std::holds_alternative<mqtt::ping_packet>(*p)) << i;
    }
    EXPECT_EQ(disconnect_reason(c5), mqtt::reason::keep_alive_timeout);
    EXPECT_TRUE(c3.closed_by_peer(3s));
    // 1.5 x 1 s, checked every 250 ms.
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 1500ms);
}

TEST(mqtt_broker_test, last_will_reaches_a_mosquitto_sub_subscriber) {
    mqtt_server s;
    const auto key = s.api_key("watcher");
    process sub({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(s.port), "-u",
                 "token", "-P", key, "-t", "clisonix/clients/#", "-q", "1", "-C", "1", "-W", "15",
                 "-v"});
    std::this_thread::sleep_for(700ms);  // subscribed
    {
        raw_client hub(s.port);
        mqtt::will_message w;
        w.topic = "clisonix/clients/hub-3/status";
        w.payload = "offline";
        w.qos = 1;
        hub.connect(mqtt::v5, "token", key, 60, w, true, "hub-3");
        ASSERT_EQ(connack_reason(hub, mqtt::v5), 0);
    }  // the socket closes without DISCONNECT
    auto code = sub.wait(15s);
    ASSERT_TRUE(code) << sub.err();
    EXPECT_EQ(*code, 0) << sub.err();
    EXPECT_EQ(sub.out(), "clisonix/clients/hub-3/status offline\n");
    // A clean DISCONNECT sends no will.
    process sub2({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(s.port), "-u",
                  "token", "-P", key, "-t", "clisonix/clients/#", "-C", "1", "-W", "2"});
    std::this_thread::sleep_for(500ms);
    {
        raw_client hub(s.port);
        mqtt::will_message w;
        w.topic = "clisonix/clients/hub-4/status";
        w.payload = "offline";
        hub.connect(mqtt::v311, "token", key, 60, w, true, "hub-4");
        ASSERT_EQ(connack_reason(hub, mqtt::v311), 0);
        hub.send("\xe0\x00"s);
        EXPECT_TRUE(hub.closed_by_peer(5s));
    }
    auto code2 = sub2.wait(10s);
    EXPECT_EQ(sub2.out(), "");
    EXPECT_EQ(code2.value_or(0), 27);  // mosquitto_sub -W: timed out, nothing received
}

TEST(mqtt_broker_test, a_persistent_session_keeps_qos1_messages_while_offline) {
    mqtt_server s;
    const auto key = s.api_key("collector");
    {
        raw_client c(s.port);
        c.connect(mqtt::v311, "token", key, 60, {}, false, "collector-1");
        ASSERT_EQ(connack_reason(c, mqtt::v311), 0);
        std::string b;
        mqtt::encode(mqtt::subscribe_packet{1, {{"clisonix/clients/+/events", 1}}, {}}, mqtt::v311,
                     b);
        c.send(b);
        auto ack = c.read(mqtt::v311);
        ASSERT_TRUE(ack && std::holds_alternative<mqtt::suback_packet>(*ack));
        EXPECT_EQ(std::get<mqtt::suback_packet>(*ack).reasons, (std::vector<uint8_t>{1}));
        c.send("\xe0\x00"s);
    }
    auto p =
        run({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(s.port), "-u",
             "token", "-P", key, "-q", "1", "-t", "clisonix/clients/gw/events", "-m", "door open"});
    EXPECT_EQ(p.exit_code, 0) << p.err;
    raw_client again(s.port);
    again.connect(mqtt::v311, "token", key, 60, {}, false, "collector-1");
    auto ca = again.read(mqtt::v311);
    ASSERT_TRUE(ca && std::holds_alternative<mqtt::connack_packet>(*ca));
    EXPECT_TRUE(std::get<mqtt::connack_packet>(*ca).session_present);
    auto msg = again.read(mqtt::v311);
    ASSERT_TRUE(msg && std::holds_alternative<mqtt::publish_packet>(*msg));
    EXPECT_EQ(std::get<mqtt::publish_packet>(*msg).topic, "clisonix/clients/gw/events");
    EXPECT_EQ(std::get<mqtt::publish_packet>(*msg).payload, "door open");
    EXPECT_EQ(std::get<mqtt::publish_packet>(*msg).qos, 1);
    // A device may not subscribe outside its own namespace.
    const auto token = s.device_token("snoop-1");
    raw_client dev(s.port);
    dev.connect(mqtt::v5, token, {}, 60, {}, true, "snoop");
    ASSERT_EQ(connack_reason(dev, mqtt::v5), 0);
    std::string b;
    mqtt::encode(
        mqtt::subscribe_packet{2, {{"clisonix/#", 1}, {"v1/devices/me/attributes", 1}}, {}},
        mqtt::v5, b);
    dev.send(b);
    auto sa = dev.read(mqtt::v5);
    ASSERT_TRUE(sa && std::holds_alternative<mqtt::suback_packet>(*sa));
    EXPECT_EQ(std::get<mqtt::suback_packet>(*sa).reasons,
              (std::vector<uint8_t>{mqtt::reason::not_authorized, 1}));
}

TEST(mqtt_broker_test, a_device_over_its_rate_limit_is_disconnected_with_0x96) {
    mqtt_server s({"--set", "mqtt.rate_limit=5"});
    const auto token = s.device_token("chatty-1");
    raw_client c(s.port);
    c.connect(mqtt::v5, token, {}, 60, {}, true, "chatty");
    ASSERT_EQ(connack_reason(c, mqtt::v5), 0);
    std::string burst;
    for (int i = 0; i < 20; ++i)
        burst += publish_bytes(mqtt::v5, "v1/devices/me/telemetry", R"({"n":1})", 0);
    c.send(burst);
    EXPECT_EQ(disconnect_reason(c), mqtt::reason::message_rate_too_high);
    auto m = s.srv.get("/metrics");
    EXPECT_NE(m.body.find(R"(clisonix_mqtt_dropped_total{reason="rate_limited"} 1)"),
              std::string::npos);
}

}  // namespace
}  // namespace clisonix
