// Sparkplug B on the broker of the real binary, with Eclipse Tahu's sparkplug-client (npm,
// tests/peers) as the edge node (edge_node.js): births create devices with units and
// attributes, data by alias is stored exactly, deaths mark devices offline, a sequence gap
// and data before any birth are answered with NCMD "Node Control/Rebirth" and not stored.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <string>
#include <thread>

#include "mqtt/mqtt_server.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

std::string series(const std::string& device, const std::string& metric,
                   const std::string& points) {
    return R"({"series":[{"measurement":"telemetry","tags":{"device":")" + device +
           R"("},"metric":")" + metric + R"(","points":)" + points + "}]}";
}

// The query's answer once it equals `expected`, or the last one after 10 s: QoS 0 data is
// stored at the broker's next flush, a moment after the edge node sent it.
std::string settled(mqtt_server& s, const std::string& device, const std::string& metric,
                    const std::string& expected) {
    std::string got;
    for (int i = 0; i < 100; ++i) {
        got = s.query(device, metric);
        if (got == expected) break;
        std::this_thread::sleep_for(100ms);
    }
    return got;
}

void expect_points(mqtt_server& s, const std::string& device, const std::string& metric,
                   const std::string& points) {
    const auto expected = series(device, metric, points);
    EXPECT_EQ(settled(s, device, metric, expected), expected) << device << " " << metric;
}

std::string operator_key(mqtt_server& s) {
    auto r = s.srv.post("/api/v1/apikeys", R"({"name":"edge","role":"operator"})",
                        {"Content-Type: application/json"});
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(json::parse(r.body).at("key").as_string());
}

// The edge node script on `scenario`, its events read as they come.
struct edge_node {
    edge_node(const std::string& scenario, uint16_t port, const std::string& key,
              const std::string& group, const std::string& node)
        : proc({"/usr/bin/env", "node", CLISONIX_SOURCE_DIR "/tests/sparkplug/edge_node.js",
                scenario, std::to_string(port), key, group, node}) {}

    // Waits for the JSON line of `event`; its object, or null after the timeout.
    json::value wait_for(const std::string& event, std::chrono::seconds timeout = 30s) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            const auto out = proc.out();
            size_t at = 0;
            while (true) {
                const auto end = out.find('\n', at);
                if (end == std::string::npos) break;
                const auto line = out.substr(at, end - at);
                at = end + 1;
                if (line.empty() || line[0] != '{') continue;
                auto v = json::parse(line);
                if (v.at("event").as_string() == event) return v;
            }
            if (!proc.running()) break;
            std::this_thread::sleep_for(50ms);
        }
        ADD_FAILURE() << "no '" << event << "' from the edge node; out:\n"
                      << proc.out() << "\nerr:\n"
                      << proc.err();
        return nullptr;
    }
    void go_on() { proc.signal(SIGUSR2); }
    testing::process proc;
};

json::value device(mqtt_server& s, const std::string& name) {
    auto r = s.send("GET", "/api/v1/devices/" + name);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? json::parse(r.body) : json::value();
}

// Polls until the device's online flag is `online` (deaths go through the broker's thread).
bool becomes(mqtt_server& s, const std::string& name, bool online) {
    for (int i = 0; i < 200; ++i) {
        auto d = device(s, name);
        if (d.is_object() && d.at("online").as_bool() == online) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

TEST(Sparkplug, BirthsDataAndDeathsOfAnEdgeNode) {
    mqtt_server s;
    const auto key = operator_key(s);
    edge_node edge("lifecycle", s.port, key, "plant-a", "line-3");
    ASSERT_FALSE(edge.wait_for("data sent").is_null());

    // The DBIRTH's values, then the DDATA's (by alias, with their own timestamps).
    expect_points(s, "sp-pump-1", "temperature", "[[1704067200000,20.5],[1704067201000,21.3]]");
    expect_points(s, "sp-pump-1", "running", "[[1704067200000,1],[1704067201000,0]]");
    expect_points(s, "sp-pump-1", "offset", "[[1704067200000,-5],[1704067201000,-7]]");
    expect_points(s, "sp-pump-1", "state",
                  R"([[1704067200000,"starting"],[1704067201000,"running"]])");
    expect_points(s, "sp-pump-1", "speed", "[[1704067200000,1450.25],[1704067201000,1500.5]]");
    // The edge node's own metrics are the device named after it; bdSeq and Node Control are
    // the protocol's, not measurements.
    expect_points(s, "line-3", "uptime", "[[1704067200000,3600]]");
    EXPECT_EQ(s.query("line-3", "bdSeq"), R"({"series":[]})");

    auto pump = device(s, "sp-pump-1");
    ASSERT_TRUE(pump.is_object());
    EXPECT_EQ(pump.at("type").as_string(), "sparkplug");
    EXPECT_TRUE(pump.at("online").as_bool());
    auto attrs = s.send("GET", "/api/v1/devices/sp-pump-1/attributes?scope=server");
    ASSERT_EQ(attrs.status, 200) << attrs.body;
    auto a = json::parse(attrs.body);
    EXPECT_NE(attrs.body.find(R"("sparkplug_group")"), std::string::npos) << attrs.body;
    EXPECT_NE(attrs.body.find(R"("plant-a")"), std::string::npos) << attrs.body;
    EXPECT_NE(attrs.body.find(R"("line-3")"), std::string::npos) << attrs.body;
    auto type = s.send("GET", "/api/v1/device-types/sparkplug");
    ASSERT_EQ(type.status, 200) << type.body;
    auto metrics = json::parse(type.body).at("metrics");
    EXPECT_EQ(metrics.at("temperature").at("unit").as_string(), "°C") << type.body;
    EXPECT_EQ(metrics.at("offset").at("unit").as_string(), "mm") << type.body;
    EXPECT_EQ(metrics.at("speed").at("unit").as_string(), "rpm") << type.body;
    EXPECT_TRUE(device(s, "line-3").at("online").as_bool());

    edge.go_on();  // DDEATH
    ASSERT_FALSE(edge.wait_for("device death sent").is_null());
    EXPECT_TRUE(becomes(s, "sp-pump-1", false));
    EXPECT_TRUE(device(s, "line-3").at("online").as_bool());

    edge.go_on();  // NDEATH and the connection closed
    ASSERT_FALSE(edge.wait_for("node death sent").is_null());
    EXPECT_TRUE(becomes(s, "line-3", false));
    EXPECT_EQ(edge.proc.wait(20s), 0) << edge.proc.out() << edge.proc.err();
}

TEST(Sparkplug, AnEdgeNodeGoneWithoutDeathIsOfflineWithItsDevices) {
    mqtt_server s;
    edge_node edge("vanish", s.port, operator_key(s), "plant-d", "line-8");
    ASSERT_FALSE(edge.wait_for("born").is_null());
    EXPECT_TRUE(becomes(s, "line-8", true));
    EXPECT_TRUE(becomes(s, "sp-pump-1", true));
    edge.go_on();
    ASSERT_FALSE(edge.wait_for("gone").is_null());
    EXPECT_TRUE(becomes(s, "line-8", false));
    EXPECT_TRUE(becomes(s, "sp-pump-1", false));
    EXPECT_EQ(edge.proc.wait(20s), 0) << edge.proc.out() << edge.proc.err();
}

TEST(Sparkplug, SequenceGapAsksForRebirthAndIsNotApplied) {
    mqtt_server s;
    edge_node edge("gap", s.port, operator_key(s), "plant-a", "line-4");
    auto asked = edge.wait_for("rebirth requested");
    ASSERT_FALSE(asked.is_null());
    EXPECT_EQ(json::serialize(asked.at("metrics")),
              R"([{"name":"Node Control/Rebirth","value":true}])");
    ASSERT_FALSE(edge.wait_for("reborn").is_null());
    // 66.6 came after the gap: never stored; the rebirth's values are.
    expect_points(s, "sp-pump-1", "temperature",
                  "[[1704067200000,22.5],[1704067201000,21.5],[1704067203000,23.5]]");
    EXPECT_EQ(edge.proc.wait(20s), 0) << edge.proc.out() << edge.proc.err();
}

TEST(Sparkplug, DataBeforeBirthAsksForRebirthAndIsNotApplied) {
    mqtt_server s;
    edge_node edge("no-birth", s.port, operator_key(s), "plant-b", "line-5");
    auto asked = edge.wait_for("rebirth requested");
    ASSERT_FALSE(asked.is_null());
    EXPECT_EQ(json::serialize(asked.at("metrics")),
              R"([{"name":"Node Control/Rebirth","value":true}])");
    ASSERT_FALSE(edge.wait_for("born").is_null());
    expect_points(s, "sp-pump-1", "temperature", "[[1704067200000,30.5]]");
    EXPECT_EQ(edge.proc.wait(20s), 0) << edge.proc.out() << edge.proc.err();
}

TEST(Sparkplug, UnknownKeyIsRefusedAtConnect) {
    mqtt_server s;
    edge_node edge("lifecycle", s.port, "cxk_not-a-key", "plant-a", "line-6");
    auto e = edge.wait_for("error");
    ASSERT_FALSE(e.is_null());
    EXPECT_EQ(e.at("message").as_string(), "Connection refused: Bad username or password");
    EXPECT_EQ(s.send("GET", "/api/v1/devices/line-6").status, 404);
}

TEST(Sparkplug, AReadOnlyKeyConnectsButItsBirthsAreRefused) {
    mqtt_server s;
    edge_node edge("births", s.port, s.api_key("scada-viewer"), "plant-c", "line-7");
    ASSERT_FALSE(edge.wait_for("born").is_null());
    EXPECT_EQ(edge.proc.wait(20s), 0) << edge.proc.out() << edge.proc.err();
    EXPECT_EQ(s.send("GET", "/api/v1/devices/line-7").status, 404);
    EXPECT_EQ(s.send("GET", "/api/v1/devices/sp-pump-1").status, 404);
    EXPECT_EQ(s.query("sp-pump-1", "temperature"), R"({"series":[]})");
}

TEST(Sparkplug, HostStateIsRetainedOnlineWithTheConfiguredHostId) {
    const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    mqtt_server s({"--set", "sparkplug.host_id=scada-7"});
    edge_node reader("state", s.port, s.api_key("scada-reader"), "-", "-");
    auto st = reader.wait_for("state");
    ASSERT_FALSE(st.is_null());
    EXPECT_EQ(st.at("topic").as_string(), "spBv1.0/STATE/scada-7");
    EXPECT_TRUE(st.at("retain").as_bool());
    EXPECT_TRUE(st.at("online").as_bool());
    EXPECT_GE(st.at("timestamp").to_number<int64_t>(), before);  // when the broker started
    EXPECT_EQ(reader.proc.wait(20s), 0) << reader.proc.out() << reader.proc.err();
}

}  // namespace
}  // namespace clisonix
