// Notifications through the real binary: channel CRUD with hidden secrets, a signed test
// event reaching a real receiver, the breaker metric on /metrics, the dead-letter list and
// its retry, and a restart with undelivered notifications that loses none.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <optional>
#include <set>
#include <thread>

#include "notify/receiver.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::hmac_hex;
using testing::http_request;
using testing::receiver;
using testing::server_process;
namespace json = boost::json;

const std::vector<std::string> json_header{"Content-Type: application/json"};

// The receiver listens on 127.0.0.1: an on-site endpoint the allow-list has to let through
// (`allow` empty: the defaults, every internal address refused).
std::vector<std::string> fast_flags(int max_attempts, int min_volume,
                                    const std::string& allow = "127.0.0.1") {
    std::vector<std::string> flags{
        "--set", "notify.max_attempts=" + std::to_string(max_attempts),
        "--set", "notify.backoff_base=20ms",
        "--set", "notify.backoff_max=50ms",
        "--set", "notify.breaker_min_volume=" + std::to_string(min_volume),
        "--set", "notify.breaker_reset_timeout=1s",
        "--set", "analytics.detector=off"};
    if (!allow.empty()) flags.insert(flags.end(), {"--set", "notify.webhook_allow=" + allow});
    return flags;
}

testing::http_response call(server_process& srv, std::string_view method, std::string_view target,
                            std::string_view body = {}) {
    return http_request(srv.port(), method, target, body,
                        {"Authorization: Bearer " + srv.token(), "Content-Type: application/json"});
}

// Polls `target` until `pred(body)` holds (or 10 s pass); returns the last answer.
template <typename Pred>
testing::http_response wait_until(server_process& srv, const std::string& target, Pred pred) {
    testing::http_response r;
    for (int i = 0; i < 500; ++i) {
        r = srv.get(target);
        if (r.status == 200 && pred(json::parse(r.body).as_object())) break;
        std::this_thread::sleep_for(20ms);
    }
    return r;
}

int64_t total_of(const json::object& o) {
    return o.at("total").as_int64();
}

TEST(notify_api_test, channels_crud_never_returns_secrets) {
    server_process srv(fast_flags(3, 100));
    auto made = srv.post("/api/v1/channels",
                         R"({"name":"ops","type":"webhook","url":"https://hooks.example/x",)"
                         R"("secret":"s3cret-value","timeout_ms":5000})",
                         json_header);
    ASSERT_EQ(made.status, 201) << made.body;
    EXPECT_EQ(made.body.find("s3cret-value"), std::string::npos);
    auto o = json::parse(made.body).as_object();
    EXPECT_EQ(o.at("secret_set"), true);
    EXPECT_EQ(o.at("url"), "https://hooks.example/x");
    EXPECT_EQ(o.at("timeout_ms"), 5000);
    EXPECT_EQ(o.at("breaker"), "closed");
    EXPECT_FALSE(o.contains("secret"));

    auto mqtt =
        srv.post("/api/v1/channels",
                 R"({"name":"ops-mqtt","type":"mqtt","topic":"clisonix/alarms/ops"})", json_header);
    ASSERT_EQ(mqtt.status, 201) << mqtt.body;

    auto dup =
        srv.post("/api/v1/channels",
                 R"({"name":"ops","type":"webhook","url":"https://hooks.example/y"})", json_header);
    EXPECT_EQ(dup.status, 409) << dup.body;
    auto bad_url =
        srv.post("/api/v1/channels",
                 R"({"name":"x","type":"webhook","url":"ftp://hooks.example/y"})", json_header);
    EXPECT_EQ(bad_url.status, 400) << bad_url.body;
    EXPECT_EQ(json::parse(bad_url.body).at("error").at("field"), "url");
    auto no_topic = srv.post("/api/v1/channels", R"({"name":"y","type":"mqtt"})", json_header);
    EXPECT_EQ(no_topic.status, 400) << no_topic.body;
    auto bad_type = srv.post("/api/v1/channels", R"({"name":"z","type":"sms"})", json_header);
    EXPECT_EQ(bad_type.status, 400) << bad_type.body;

    auto list = srv.get("/api/v1/channels");
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.body.find("s3cret-value"), std::string::npos);
    EXPECT_EQ(json::parse(list.body).at("channels").as_array().size(), 2u);

    auto put = call(srv, "PUT", "/api/v1/channels/ops",
                    R"({"type":"webhook","url":"http://hooks.example/z"})");
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(json::parse(put.body).at("secret_set"), true);  // kept
    EXPECT_EQ(json::parse(put.body).at("url"), "http://hooks.example/z");

    EXPECT_EQ(call(srv, "DELETE", "/api/v1/channels/ops").status, 204);
    EXPECT_EQ(srv.get("/api/v1/channels/ops").status, 404);
    EXPECT_EQ(call(srv, "DELETE", "/api/v1/channels/ops").status, 404);
    // Anonymous callers may not see channels.
    EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/channels").status, 401);
    EXPECT_EQ(srv.get("/api/v1/notifications?state=bogus").status, 400);
}

TEST(notify_api_test, a_test_event_arrives_signed_and_the_breaker_shows_in_metrics) {
    receiver rx;
    server_process srv(fast_flags(100, 2));
    auto made =
        srv.post("/api/v1/channels",
                 R"({"name":"ops","type":"webhook","url":")" + rx.url() + R"(","secret":"k3y"})",
                 json_header);
    ASSERT_EQ(made.status, 201) << made.body;
    auto sent = srv.post("/api/v1/channels/ops/test", "");
    ASSERT_EQ(sent.status, 202) << sent.body;
    const int64_t id = json::parse(sent.body).at("id").as_int64();
    ASSERT_TRUE(rx.wait_for(1, 10s));
    auto got = rx.requests().at(0);
    EXPECT_EQ(got.header("x-clisonix-event-id"), std::to_string(id));
    EXPECT_EQ(got.header("x-clisonix-signature"), "sha256=" + hmac_hex("k3y", got.body));
    auto event = json::parse(got.body).as_object();
    EXPECT_EQ(event.at("event"), "test");
    EXPECT_EQ(event.at("channel"), "ops");
    auto delivered = wait_until(srv, "/api/v1/notifications?state=delivered",
                                [](const json::object& o) { return total_of(o) == 1; });
    EXPECT_EQ(total_of(json::parse(delivered.body).as_object()), 1) << delivered.body;

    // The receiver fails: one success and one failure reach the volume (2) at 50 %, which
    // opens the breaker.
    rx.set_status(500);
    ASSERT_EQ(srv.post("/api/v1/channels/ops/test", "").status, 202);
    ASSERT_TRUE(rx.wait_for(2, 10s));
    std::string metrics;
    for (int i = 0; i < 200; ++i) {
        metrics = srv.get("/metrics").body;
        if (metrics.find("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 1\n") !=
            std::string::npos)
            break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_NE(metrics.find("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 1\n"),
              std::string::npos)
        << metrics;
    EXPECT_EQ(json::parse(srv.get("/api/v1/channels/ops").body).at("breaker"), "open");
    // Recovered: after the reset timeout the half-open trial succeeds and closes it.
    rx.set_status(200);
    auto both = wait_until(srv, "/api/v1/notifications?state=delivered",
                           [](const json::object& o) { return total_of(o) == 2; });
    EXPECT_EQ(total_of(json::parse(both.body).as_object()), 2) << both.body;
    metrics = srv.get("/metrics").body;
    EXPECT_NE(metrics.find("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 0\n"),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("clisonix_notifications_delivered_total{type=\"webhook\"} 2\n"),
              std::string::npos);
    EXPECT_NE(metrics.find("clisonix_notifications_pending 0\n"), std::string::npos);
}

TEST(notify_api_test, dead_letters_are_listed_and_retried_through_the_api) {
    receiver rx;
    rx.set_status(500);
    server_process srv(fast_flags(3, 1000));
    ASSERT_EQ(
        srv.post("/api/v1/channels",
                 R"({"name":"ops","type":"webhook","url":")" + rx.url() + R"("})", json_header)
            .status,
        201);
    auto sent = srv.post("/api/v1/channels/ops/test", "");
    ASSERT_EQ(sent.status, 202);
    const int64_t id = json::parse(sent.body).at("id").as_int64();
    auto dead = wait_until(srv, "/api/v1/notifications/dead",
                           [](const json::object& o) { return total_of(o) == 1; });
    auto list = json::parse(dead.body).as_object();
    ASSERT_EQ(total_of(list), 1) << dead.body;
    auto row = list.at("notifications").as_array().at(0).as_object();
    EXPECT_EQ(row.at("id"), id);
    EXPECT_EQ(row.at("state"), "dead");
    EXPECT_EQ(row.at("attempts"), 3);
    EXPECT_EQ(row.at("last_error"), "webhook: answered 500: nope");
    EXPECT_EQ(row.at("event").at("event"), "test");
    EXPECT_EQ(rx.count(), 3u);

    rx.set_status(200);
    auto retried = srv.post("/api/v1/notifications/" + std::to_string(id) + "/retry", "");
    ASSERT_EQ(retried.status, 200) << retried.body;
    EXPECT_EQ(json::parse(retried.body).at("attempts"), 0);
    auto done = wait_until(srv, "/api/v1/notifications?state=delivered",
                           [](const json::object& o) { return total_of(o) == 1; });
    EXPECT_EQ(total_of(json::parse(done.body).as_object()), 1) << done.body;
    EXPECT_EQ(rx.count(), 4u);
    EXPECT_EQ(srv.post("/api/v1/notifications/" + std::to_string(id) + "/retry", "").status, 409);
    EXPECT_EQ(srv.post("/api/v1/notifications/999/retry", "").status, 404);
    EXPECT_EQ(srv.post("/api/v1/notifications/abc/retry", "").status, 400);
    EXPECT_EQ(total_of(json::parse(srv.get("/api/v1/notifications/dead").body).as_object()), 0);
}

// An MQTT channel publishes the event through the built-in broker to a real subscriber
// (mosquitto_sub, logged in with an API key).
TEST(notify_api_test, an_mqtt_channel_reaches_a_real_subscriber) {
    const uint16_t mqtt_port = testing::free_port();
    auto flags = fast_flags(100, 100);
    flags.insert(flags.end(), {"--set", "mqtt.port=" + std::to_string(mqtt_port)});
    server_process srv(flags);
    auto key =
        srv.post("/api/v1/apikeys", R"({"name":"alarm-listener","role":"viewer"})", json_header);
    ASSERT_EQ(key.status, 201) << key.body;
    const std::string api_key(json::parse(key.body).at("key").as_string());
    ASSERT_EQ(
        srv.post("/api/v1/channels",
                 R"({"name":"ops-mqtt","type":"mqtt","topic":"clisonix/alarms/ops"})", json_header)
            .status,
        201);
    testing::process sub({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p",
                          std::to_string(mqtt_port), "-u", "token", "-P", api_key, "-t",
                          "clisonix/alarms/ops", "-C", "1", "-W", "20"});
    // A publish before the subscription is in place reaches nobody (QoS 0, not retained):
    // send until the subscriber has one.
    std::optional<int> exit;
    for (int i = 0; i < 60 && !exit; ++i) {
        ASSERT_EQ(srv.post("/api/v1/channels/ops-mqtt/test", "").status, 202);
        exit = sub.wait(300ms);
    }
    ASSERT_EQ(exit, 0) << sub.err();
    auto event = json::parse(sub.out()).as_object();
    EXPECT_EQ(event.at("event"), "test");
    EXPECT_EQ(event.at("channel"), "ops-mqtt");
    auto metrics = srv.get("/metrics").body;
    EXPECT_EQ(metrics.find("clisonix_notifications_delivered_total{type=\"mqtt\"} 0\n"),
              std::string::npos);
}

TEST(notify_api_test, a_restart_in_the_middle_loses_no_notification) {
    receiver rx;
    const uint16_t port = rx.port();
    rx.stop();  // the endpoint is down: connections refused
    auto first = std::make_unique<server_process>(fast_flags(1000, 100000));
    ASSERT_EQ(
        first
            ->post("/api/v1/channels",
                   R"({"name":"ops","type":"webhook","url":")" + rx.url() + R"("})", json_header)
            .status,
        201);
    std::set<int64_t> ids;
    for (int i = 0; i < 3; ++i) {
        auto sent = first->post("/api/v1/channels/ops/test", "");
        ASSERT_EQ(sent.status, 202);
        ids.insert(json::parse(sent.body).at("id").as_int64());
    }
    // Every one has failed at least once before the server stops.
    wait_until(*first, "/api/v1/notifications?state=pending", [](const json::object& o) {
        for (const auto& n : o.at("notifications").as_array())
            if (n.at("attempts").as_int64() < 1) return false;
        return o.at("notifications").as_array().size() == 3;
    });
    first->proc().signal(SIGTERM);
    ASSERT_EQ(first->proc().wait(20s), 0);

    rx.start();
    ASSERT_EQ(rx.port(), port);
    server_process second(server_process::on{first->data()}, fast_flags(1000, 100000));
    ASSERT_TRUE(rx.wait_for(3, 10s));
    auto done = wait_until(second, "/api/v1/notifications?state=delivered",
                           [](const json::object& o) { return total_of(o) == 3; });
    EXPECT_EQ(total_of(json::parse(done.body).as_object()), 3) << done.body;
    std::set<int64_t> received;
    for (const auto& r : rx.requests())
        received.insert(std::stoll(r.header("x-clisonix-event-id")));
    EXPECT_EQ(received, ids);
}

}  // namespace
}  // namespace clisonix
