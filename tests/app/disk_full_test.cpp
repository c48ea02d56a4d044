// A full data directory through the real binary: `clisonix serve` on a small tmpfs that the
// test fills. Writes answer 503 storage_full with the reason and Retry-After, /readyz and
// /metrics say why, every acknowledged point stays readable with its exact value, writes
// resume by themselves when space is freed, and a killed and restarted server still holds
// every acknowledged point once.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::server_process;

constexpr int64_t t0_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
constexpr int batch_points = 2000;

struct point {
    int64_t ts_ms;
    double value;
};

// Points [first, first + batch_points): one a second, value index / 4 (exact in JSON).
std::vector<point> batch(int first) {
    std::vector<point> out;
    for (int i = first; i < first + batch_points; ++i)
        out.push_back({t0_ms + int64_t{i} * 1000, i / 4.0});
    return out;
}

std::string line_protocol(const std::vector<point>& pts) {
    std::string body;
    for (const auto& p : pts)
        body +=
            "m,device=filler v=" + std::to_string(p.value) + " " + std::to_string(p.ts_ms) + "\n";
    return body;
}

testing::http_response write(server_process& srv, const std::vector<point>& pts) {
    return srv.post("/api/v1/write?precision=ms", line_protocol(pts), {"Content-Type: text/plain"});
}

// Every point of the series, as the query API answers it, compared with `acked` exactly
// (timestamps, values, nothing missing, nothing twice, nothing refused).
void expect_exactly(server_process& srv, const std::vector<point>& acked) {
    auto r = srv.get("/api/v1/query?device=filler&metric=v&from=0&to=4102444800000");
    ASSERT_EQ(r.status, 200) << r.body;
    auto series = boost::json::parse(r.body).at("series").as_array();
    ASSERT_EQ(series.size(), 1u) << r.body.substr(0, 300);
    const auto& pts = series.at(0).at("points").as_array();
    ASSERT_EQ(pts.size(), acked.size());
    for (size_t i = 0; i < acked.size(); ++i) {
        const auto& p = pts[i].as_array();
        ASSERT_EQ(p.at(0).to_number<int64_t>(), acked[i].ts_ms) << "point " << i;
        ASSERT_EQ(p.at(1).to_number<double>(), acked[i].value) << "point " << i;
    }
}

double metric_value(const std::string& exposition, const std::string& series) {
    auto at = exposition.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(exposition.substr(at + series.size() + 2));
}

TEST(disk_full_api_test, writes_answer_503_until_space_is_freed_and_nothing_acknowledged_is_lost) {
    testing::tmpfs_dir tmp(48ull << 20);
    if (!tmp.mounted()) GTEST_SKIP() << tmp.skip_reason();
    // No reserve: the disk itself runs out, under the WAL, the metadata store and the logs.
    const std::vector<std::string> args{"--set", "storage.min_free=0"};
    auto srv = std::make_unique<server_process>(server_process::on{tmp.dir()}, args);
    srv->token();  // logged in before the disk fills
    const std::string tsdb = tmp.path().string() + "/tsdb";

    std::vector<point> acked;
    ASSERT_EQ(write(*srv, batch(0)).status, 204);
    acked = batch(0);
    tmp.fill(tmp.path() / "filler", 512 << 10);

    testing::http_response refused;
    std::vector<point> refused_points;
    for (int k = 1; k < 200; ++k) {
        auto pts = batch(k * batch_points);
        auto r = write(*srv, pts);
        if (r.status == 204) {
            acked.insert(acked.end(), pts.begin(), pts.end());
            continue;
        }
        refused = r;
        refused_points = pts;
        break;
    }
    ASSERT_EQ(refused.status, 503) << refused.body;
    auto error = boost::json::parse(refused.body).at("error");
    EXPECT_EQ(error.at("code").as_string(), "storage_full");
    std::string message(error.at("message").as_string());
    EXPECT_TRUE(message.starts_with("the file system of " + tsdb + " is full: ")) << message;
    EXPECT_NE(message.find(" bytes free ("), std::string::npos) << message;
    EXPECT_TRUE(message.ends_with("; writes are refused until space is freed")) << message;
    EXPECT_EQ(refused.header("retry-after"), "10");

    // The server says why; a write that would fit is refused too; reads go on.
    auto ready = testing::http_request(srv->port(), "GET", "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_NE(ready.body.find("\"code\":\"storage_full\""), std::string::npos) << ready.body;
    EXPECT_NE(ready.body.find("storage: the file system of " + tsdb + " is full: "),
              std::string::npos)
        << ready.body;
    auto metrics = srv->get("/metrics");
    ASSERT_EQ(metrics.status, 200);
    EXPECT_EQ(metric_value(metrics.body, "clisonix_storage_disk_full"), 1);
    EXPECT_GE(
        metric_value(metrics.body, "clisonix_storage_writes_refused_total{reason=\"disk_full\"}"),
        1);
    EXPECT_EQ(write(*srv, {{t0_ms + 1'000'000'000, 1.0}}).status, 503);
    expect_exactly(*srv, acked);
    auto last = srv->get("/api/v1/last?device=filler");
    EXPECT_EQ(last.status, 200) << last.body;
    EXPECT_NE(last.body.find(std::to_string(acked.back().ts_ms)), std::string::npos) << last.body;
    // For a while: the log file, on the same full disk, fails every flush (once a second)
    // and must not take the server down.
    auto serving_until = std::chrono::steady_clock::now() + 1500ms;
    while (std::chrono::steady_clock::now() < serving_until) {
        ASSERT_EQ(srv->get("/api/v1/last?device=filler").status, 200);
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(srv->get("/healthz").status, 200);

    // Space back: the refused batch, sent again, is taken within seconds, without a restart.
    std::filesystem::remove(tmp.path() / "filler");
    auto until = std::chrono::steady_clock::now() + 10s;
    int status = 0;
    auto resumed_after = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < until) {
        status = write(*srv, refused_points).status;
        if (status == 204) break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(status, 204);
    EXPECT_LT(std::chrono::steady_clock::now() - resumed_after, 5s);
    acked.insert(acked.end(), refused_points.begin(), refused_points.end());
    EXPECT_EQ(testing::http_request(srv->port(), "GET", "/readyz").status, 200);
    EXPECT_EQ(metric_value(srv->get("/metrics").body, "clisonix_storage_disk_full"), 0);
    expect_exactly(*srv, acked);

    // Killed (no flush at close): the restarted server replays the WAL past the refused
    // appends and answers every acknowledged point once, with its value.
    srv->proc().signal(SIGKILL);
    srv->proc().wait();
    srv = std::make_unique<server_process>(server_process::on{tmp.dir()}, args);
    expect_exactly(*srv, acked);
}

// With the reserve (storage.min_free), writes stop while the metadata store still has room:
// a user logs in and reads while telemetry is refused.
TEST(disk_full_api_test, below_the_reserve_writes_are_refused_and_login_still_works) {
    testing::tmpfs_dir tmp(48ull << 20);
    if (!tmp.mounted()) GTEST_SKIP() << tmp.skip_reason();
    server_process srv(server_process::on{tmp.dir()}, {"--set", "storage.min_free=16MiB"});
    ASSERT_EQ(write(srv, batch(0)).status, 204);
    tmp.fill(tmp.path() / "filler", 12 << 20);

    // Taken until the space check (every 200 ms) sees the reserve crossed; the same batch
    // again replaces its own points.
    auto acked = batch(0);
    const auto second = batch(batch_points);
    testing::http_response refused;
    for (int i = 0; i < 100; ++i) {
        refused = write(srv, second);
        if (refused.status != 204) break;
        if (i == 0) acked.insert(acked.end(), second.begin(), second.end());
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(refused.status, 503) << refused.body;
    EXPECT_NE(refused.body.find("bytes free (less than the reserve of 16777216 bytes "
                                "(storage.min_free)); writes are refused until space is freed"),
              std::string::npos)
        << refused.body;

    auto login = testing::http_request(
        srv.port(), "POST", "/api/v1/auth/login",
        std::string(R"({"username":"admin","password":")") + testing::test_admin_password + "\"}",
        {"Content-Type: application/json"});
    ASSERT_EQ(login.status, 200) << login.body;
    std::string token(boost::json::parse(login.body).at("access_token").as_string());
    auto me = testing::http_request(srv.port(), "GET", "/api/v1/auth/me", {},
                                    {"Authorization: Bearer " + token});
    EXPECT_EQ(me.status, 200) << me.body;
    expect_exactly(srv, acked);
}

// MQTT on a full disk: the broker withholds the QoS 1 PUBACK (the device keeps the message)
// and stores the telemetry once space is back; the acknowledgement follows.
TEST(disk_full_api_test, an_mqtt_qos1_publish_is_acknowledged_only_once_space_is_back) {
    testing::tmpfs_dir tmp(48ull << 20);
    if (!tmp.mounted()) GTEST_SKIP() << tmp.skip_reason();
    const uint16_t mqtt_port = testing::free_port();
    server_process srv(server_process::on{tmp.dir()}, {"--set", "storage.min_free=16MiB", "--set",
                                                       "mqtt.port=" + std::to_string(mqtt_port)});
    auto made = srv.post("/api/v1/devices/press-1/token", "");
    ASSERT_EQ(made.status, 201) << made.body;
    std::string token(boost::json::parse(made.body).at("token").as_string());

    tmp.fill(tmp.path() / "filler", 12 << 20);
    auto until = std::chrono::steady_clock::now() + 3s;
    while (testing::http_request(srv.port(), "GET", "/readyz").status == 200 &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(20ms);
    ASSERT_EQ(testing::http_request(srv.port(), "GET", "/readyz").status, 503);

    testing::process pub({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p",
                          std::to_string(mqtt_port), "-u", token, "-q", "1", "-t",
                          "v1/devices/me/telemetry", "-m",
                          R"({"ts":1704067200000,"values":{"pressure":4.25}})"});
    EXPECT_FALSE(pub.wait(1500ms).has_value()) << "PUBACK sent while the disk was full";
    const std::string query =
        "/api/v1/query?device=press-1&metric=pressure&from=0&to=4102444800000";
    EXPECT_EQ(srv.get(query).body, R"({"series":[]})");

    std::filesystem::remove(tmp.path() / "filler");
    auto code = pub.wait(10s);
    ASSERT_TRUE(code.has_value()) << "no PUBACK after space came back";
    EXPECT_EQ(*code, 0) << pub.err();
    auto stored = srv.get(query);
    EXPECT_NE(stored.body.find("\"points\":[[1704067200000,4.25]]"), std::string::npos)
        << stored.body;
}

}  // namespace
}  // namespace clisonix
