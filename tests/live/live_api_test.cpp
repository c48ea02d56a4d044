// Live updates through the real binary: a Beast WebSocket client at /api/v1/live, telemetry
// written over HTTP, the tokens each way a client may send them, and the slow-consumer bound.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <atomic>
#include <thread>

#include "support/test_support.h"
#include "ws_client.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::server_process;
using testing::ws_client;

constexpr int64_t t0_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z

ws_client::options with_protocols(std::string protocols) {
    ws_client::options o;
    o.protocols = std::move(protocols);
    return o;
}

// The value of an unlabelled metric in a /metrics scrape (-1 when absent).
double metric(server_process& srv, const std::string& name) {
    auto text = srv.get("/metrics").body;
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
}

const std::string subscribe_pump_1 =
    R"({"type":"subscribe","telemetry":{"devices":["pump-1"]},"alarms":true})";
const std::string subscribed_pump_1 =
    R"({"type":"subscribed","telemetry":{"devices":["pump-1"],"assets":[],"resolved":[]},"alarms":true})";

TEST(live_api_test, subprotocol_token_then_subscribe_receives_the_exact_points_written) {
    server_process srv({"--set", "analytics.detector=off"});
    ws_client ws(srv.port(), with_protocols("bearer, " + srv.token()));
    ASSERT_EQ(ws.status(), 101);
    EXPECT_EQ(ws.header("Sec-WebSocket-Protocol"), "bearer");
    EXPECT_FALSE(ws.header("X-Request-Id").empty());
    EXPECT_EQ(ws.read(), R"({"type":"authenticated","user":"admin"})");
    ASSERT_TRUE(ws.send(subscribe_pump_1));
    EXPECT_EQ(ws.read(), subscribed_pump_1);

    auto other = srv.post("/api/v1/devices/pump-2/telemetry",
                          R"({"ts":)" + std::to_string(t0_ms) + R"(,"values":{"temperature":50}})",
                          {"Content-Type: application/json"});
    ASSERT_EQ(other.status, 204) << other.body;
    auto w = srv.post("/api/v1/devices/pump-1/telemetry",
                      R"([{"ts":)" + std::to_string(t0_ms) +
                          R"(,"values":{"temperature":21.5,"rpm":1450}},{"ts":)" +
                          std::to_string(t0_ms + 1000) + R"(,"values":{"temperature":-0.125}}])",
                      {"Content-Type: application/json"});
    ASSERT_EQ(w.status, 204) << w.body;
    EXPECT_EQ(
        ws.read(),
        R"({"type":"telemetry","device":"pump-1","metric":"temperature","points":[[1704067200000,21.5],[1704067201000,-0.125]]})");
    EXPECT_EQ(
        ws.read(),
        R"({"type":"telemetry","device":"pump-1","metric":"rpm","points":[[1704067200000,1450]]})");
    // Line protocol with a device tag is that device's telemetry too.
    auto lp = srv.post("/api/v1/write?precision=ms",
                       "plant,device=pump-1 pressure=2.5 " + std::to_string(t0_ms + 2000));
    ASSERT_EQ(lp.status, 204) << lp.body;
    EXPECT_EQ(
        ws.read(),
        R"({"type":"telemetry","device":"pump-1","metric":"pressure","points":[[1704067202000,2.5]]})");
    EXPECT_EQ(metric(srv, "clisonix_live_connections"), 1);
}

TEST(live_api_test, first_message_token_with_an_api_key) {
    server_process srv({"--set", "analytics.detector=off"});
    auto key = srv.post("/api/v1/apikeys", R"({"name":"wallboard","role":"viewer"})",
                        {"Content-Type: application/json"});
    ASSERT_EQ(key.status, 201) << key.body;
    std::string secret(boost::json::parse(key.body).at("key").as_string());

    ws_client ws(srv.port(), with_protocols("clisonix.v1"));
    ASSERT_EQ(ws.status(), 101);
    EXPECT_EQ(ws.header("Sec-WebSocket-Protocol"), "clisonix.v1");
    ASSERT_TRUE(ws.send(subscribe_pump_1));
    EXPECT_EQ(
        ws.read(),
        R"({"type":"error","message":"authenticate first: {\"type\":\"auth\",\"token\":\"...\"}"})");
    ASSERT_TRUE(ws.send(R"({"type":"auth","token":")" + std::string(secret) + "\"}"));
    EXPECT_EQ(ws.read(), R"({"type":"authenticated","user":"wallboard"})");
    ASSERT_TRUE(ws.send(subscribe_pump_1));
    EXPECT_EQ(ws.read(), subscribed_pump_1);
    auto w = srv.post("/api/v1/devices/pump-1/telemetry",
                      R"({"ts":)" + std::to_string(t0_ms) + R"(,"values":{"temperature":20}})",
                      {"Content-Type: application/json"});
    ASSERT_EQ(w.status, 204) << w.body;
    EXPECT_EQ(
        ws.read(),
        R"({"type":"telemetry","device":"pump-1","metric":"temperature","points":[[1704067200000,20]]})");
}

TEST(live_api_test, an_asset_subscription_follows_the_devices_under_it) {
    server_process srv({"--set", "analytics.detector=off"});
    const std::vector<std::string> json = {"Content-Type: application/json"};
    for (auto [target, body] : {
             std::pair{"/api/v1/assets", R"({"name":"line-2","type":"line"})"},
             std::pair{"/api/v1/devices", R"({"name":"pump-1","type":"pump"})"},
             std::pair{"/api/v1/devices", R"({"name":"pump-3","type":"pump"})"},
             std::pair{"/api/v1/relations", R"({"from":"line-2","to":"pump-1","type":"contains"})"},
         }) {
        auto r = srv.post(target, body, json);
        ASSERT_EQ(r.status, 201) << target << " " << r.body;
    }
    ws_client ws(srv.port(), with_protocols("bearer, " + srv.token()));
    ASSERT_EQ(ws.status(), 101);
    ASSERT_TRUE(ws.read().has_value());
    ASSERT_TRUE(ws.send(R"({"type":"subscribe","telemetry":{"assets":["line-2"]}})"));
    EXPECT_EQ(
        ws.read(),
        R"({"type":"subscribed","telemetry":{"devices":[],"assets":["line-2"],"resolved":["pump-1"]},"alarms":false})");
    ASSERT_TRUE(ws.send(R"({"type":"subscribe","telemetry":{"assets":["line-9"]}})"));
    auto unknown = ws.read();
    ASSERT_TRUE(unknown.has_value());
    EXPECT_TRUE(unknown->starts_with(R"({"type":"error","message":"telemetry.assets: line-9: )"))
        << *unknown;
    // pump-3 joins the line: seen from the next subscribe on.
    auto rel =
        srv.post("/api/v1/relations", R"({"from":"line-2","to":"pump-3","type":"contains"})", json);
    ASSERT_EQ(rel.status, 201) << rel.body;
    ASSERT_TRUE(ws.send(R"({"type":"subscribe","telemetry":{"assets":["line-2"]}})"));
    EXPECT_EQ(
        ws.read(),
        R"({"type":"subscribed","telemetry":{"devices":[],"assets":["line-2"],"resolved":["pump-1","pump-3"]},"alarms":false})");
    auto w = srv.post("/api/v1/devices/pump-3/telemetry",
                      R"({"ts":)" + std::to_string(t0_ms) + R"(,"values":{"flow":12.5}})", json);
    ASSERT_EQ(w.status, 204) << w.body;
    EXPECT_EQ(
        ws.read(),
        R"({"type":"telemetry","device":"pump-3","metric":"flow","points":[[1704067200000,12.5]]})");
}

TEST(live_api_test, tokens_in_the_url_bad_tokens_and_plain_requests_are_refused) {
    server_process srv({"--set", "analytics.detector=off"});
    ws_client::options in_url;
    in_url.target = "/api/v1/live?token=" + srv.token();
    ws_client url(srv.port(), in_url);
    EXPECT_EQ(url.status(), 400);
    EXPECT_FALSE(url.open());

    ws_client bad(srv.port(), with_protocols("bearer, not-a-token"));
    EXPECT_EQ(bad.status(), 401);

    auto plain = http_request(srv.port(), "GET", "/api/v1/live");
    EXPECT_EQ(plain.status, 426);
    EXPECT_EQ(plain.header("upgrade"), "websocket");

    // The access log and the OpenAPI document know the route.
    auto doc = srv.get("/api/v1/openapi.json");
    auto live = boost::json::parse(doc.body).at("paths").at("/api/v1/live").at("get");
    EXPECT_EQ(live.at("x-websocket"), true);
    EXPECT_EQ(live.at("x-permission"), "public");
    EXPECT_TRUE(live.at("responses").as_object().contains("101"));
}

TEST(live_api_test, no_token_within_the_auth_timeout_closes_with_the_reason) {
    server_process srv({"--set", "analytics.detector=off", "--set", "live.auth_timeout=300ms"});
    ws_client ws(srv.port(), {});
    ASSERT_EQ(ws.status(), 101);
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(ws.read(5s), std::nullopt);
    EXPECT_FALSE(ws.timed_out());
    EXPECT_EQ(ws.close_code(), 1008);
    EXPECT_EQ(ws.close_reason(), "authentication timeout: no auth message within 300 ms");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
}

// A client that stops reading is closed once its queue passes live.max_queue_bytes, and
// sees why when it reads again; a client reading along gets every point meanwhile.
TEST(live_api_test, a_slow_consumer_is_dropped_while_a_normal_one_keeps_receiving) {
    server_process srv({"--set", "analytics.detector=off", "--set", "live.max_queue_bytes=64KiB"});
    ws_client::options slow_opts = with_protocols("bearer, " + srv.token());
    slow_opts.receive_buffer = 4096;
    ws_client slow(srv.port(), slow_opts);
    ws_client normal(srv.port(), with_protocols("bearer, " + srv.token()));
    ASSERT_EQ(slow.status(), 101);
    ASSERT_EQ(normal.status(), 101);
    for (auto* c : {&slow, &normal}) {
        ASSERT_TRUE(c->read().has_value());
        ASSERT_TRUE(c->send(subscribe_pump_1));
        ASSERT_EQ(c->read(), subscribed_pump_1);
    }

    // The normal client reads everything on its own thread and checks every value.
    constexpr int points_per_write = 400;  // ~9 KB a message: the normal client has slack
    std::atomic<int64_t> received{0};
    std::atomic<bool> in_order{true};
    std::atomic<int64_t> target{-1};  // points written in all, once the writes are done
    std::string unexpected;           // written by the reader, read after join()
    std::jthread reader([&] {         // joins on the way out even when an assertion fails
        int64_t expected = 0;
        while (target < 0 || received < target) {
            auto m = normal.read(20s);
            if (!m) break;
            auto doc = boost::json::parse(*m).as_object();
            if (!doc.contains("points")) {
                unexpected = *m;
                continue;
            }
            for (const auto& p : doc.at("points").as_array()) {
                auto v = static_cast<int64_t>(p.as_array().at(1).to_number<double>());
                if (v != expected) in_order = false;
                ++expected;
            }
            received = expected;
        }
    });

    int writes = 0;
    int64_t next = 0;
    auto write_one = [&] {
        std::string body;
        for (int i = 0; i < points_per_write; ++i, ++next)
            body += "telemetry,device=pump-1 flow=" + std::to_string(next) + " " +
                    std::to_string(t0_ms + next) + "\n";
        auto r = srv.post("/api/v1/write?precision=ms", body);
        ASSERT_EQ(r.status, 204) << r.body;
        ++writes;
    };
    double drops = 0;
    while (writes < 5000 && drops < 1) {
        write_one();
        if (writes % 5 == 0) drops = metric(srv, "clisonix_live_slow_consumer_drops_total");
    }
    ASSERT_EQ(drops, 1) << "no drop after " << writes << " writes";
    std::printf("slow consumer dropped after %d writes of %d points\n", writes, points_per_write);
    // Ten more writes after the drop, with the total known before they go out.
    target = next + 10 * points_per_write;
    for (int i = 0; i < 10; ++i)
        write_one();

    // The slow client reads what was already on its way, then the close frame.
    int backlog = 0;
    while (slow.read(5s))
        ++backlog;
    EXPECT_FALSE(slow.timed_out());
    EXPECT_EQ(slow.close_code(), 1008);
    EXPECT_EQ(slow.close_reason(), "slow consumer: queue over 65536 bytes");
    std::printf("the slow client read %d messages before the close frame\n", backlog);

    reader.join();
    EXPECT_EQ(received, next);
    EXPECT_TRUE(in_order);
    EXPECT_EQ(unexpected, "");
    EXPECT_FALSE(normal.closed());
    // The server counts the slow connection gone once the close handshake has finished.
    double open = 0;
    for (int i = 0; i < 100 && (open = metric(srv, "clisonix_live_connections")) != 1; ++i)
        std::this_thread::sleep_for(20ms);
    EXPECT_EQ(open, 1);
}

// The alarm a write raises arrives after that write's telemetry: `clisonix serve` adds the
// hub's pipeline listener before the rules engine's, and both messages share one queue.
TEST(live_api_test, an_alarm_arrives_after_the_telemetry_that_raised_it) {
    server_process srv({"--set", "analytics.detector=off"});
    auto rule = srv.post(
        "/api/v1/rules",
        R"({"name":"pump hot","scope":{"device":"pump-1"},"severity":"major","condition":"temperature > 80","clear":"temperature < 75"})",
        {"Content-Type: application/json"});
    ASSERT_TRUE(rule.status == 201 || rule.status == 200) << rule.status << " " << rule.body;

    ws_client ws(srv.port(), with_protocols("bearer, " + srv.token()));
    ASSERT_EQ(ws.status(), 101);
    ASSERT_TRUE(ws.read().has_value());
    ASSERT_TRUE(ws.send(subscribe_pump_1));
    ASSERT_EQ(ws.read(), subscribed_pump_1);
    auto w = srv.post("/api/v1/devices/pump-1/telemetry",
                      R"({"ts":)" + std::to_string(t0_ms) + R"(,"values":{"temperature":81.2}})",
                      {"Content-Type: application/json"});
    ASSERT_EQ(w.status, 204) << w.body;
    EXPECT_EQ(
        ws.read(),
        R"({"type":"telemetry","device":"pump-1","metric":"temperature","points":[[1704067200000,81.2]]})");
    auto alarm = ws.read();
    ASSERT_TRUE(alarm.has_value());
    auto doc = boost::json::parse(*alarm).as_object();
    EXPECT_EQ(doc.at("type"), "alarm");
    EXPECT_EQ(doc.at("event"), "alarm.created");
    EXPECT_EQ(doc.at("alarm").at("device"), "pump-1");
    EXPECT_EQ(doc.at("alarm").at("rule"), "pump hot");
}

}  // namespace
}  // namespace clisonix
