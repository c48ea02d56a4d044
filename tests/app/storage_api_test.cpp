// Writing and reading telemetry through the real binary: every write API reads back exactly,
// data survives restarts and crashes, and the query API answers what a user asked.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <atomic>
#include <csignal>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::server_process;

constexpr int64_t t0_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z

std::string range_all() {
    return "from=0&to=4102444800000";
}

// Anomaly scores are written beside the data by a scoring thread: wait until `target`
// answers with at least `points` points in its first series (or 20 s pass).
testing::http_response wait_for_points(server_process& srv, const std::string& target,
                                       size_t points) {
    testing::http_response r;
    for (int i = 0; i < 400; ++i) {
        r = srv.get(target);
        auto doc = boost::json::parse(r.body).as_object();
        const auto& series = doc.at("series").as_array();
        if (!series.empty() && series.at(0).at("points").as_array().size() >= points) break;
        std::this_thread::sleep_for(50ms);
    }
    return r;
}

boost::json::array points_of(const testing::http_response& r, size_t series_index = 0) {
    auto doc = boost::json::parse(r.body).as_object();
    return doc.at("series").as_array().at(series_index).at("points").as_array();
}

TEST(storage_api_test, line_protocol_through_all_three_endpoints_reads_back_exactly) {
    server_process srv;
    auto ok1 = srv.post("/api/v1/write?precision=ms",
                        "m,device=a v=1.5,n=7i,b=true,s=\"x y\" " + std::to_string(t0_ms));
    EXPECT_EQ(ok1.status, 204) << ok1.body;
    auto ok2 = srv.post("/write?db=plant&precision=s",
                        "m,device=a v=2.25 " + std::to_string(t0_ms / 1000 + 1));
    EXPECT_EQ(ok2.status, 204) << ok2.body;
    auto ok3 = srv.post("/api/v2/write?bucket=plant&org=o&precision=ns",
                        "m,device=a v=-0.125 " + std::to_string((t0_ms + 2000) * 1'000'000));
    EXPECT_EQ(ok3.status, 204) << ok3.body;

    auto v = srv.get("/api/v1/query?device=a&metric=v&" + range_all());
    ASSERT_EQ(v.status, 200) << v.body;
    EXPECT_EQ(v.body,
              "{\"series\":[{\"measurement\":\"m\",\"tags\":{\"device\":\"a\"},"
              "\"metric\":\"v\",\"points\":[[1704067200000,1.5],[1704067201000,2.25],"
              "[1704067202000,-0.125]]}]}");
    // Each type comes back in its own type.
    auto n = srv.get("/api/v1/query?device=a&metric=n&" + range_all());
    EXPECT_EQ(points_of(n).at(0).as_array().at(1), 7);
    auto b = srv.get("/api/v1/query?device=a&metric=b&" + range_all());
    EXPECT_EQ(points_of(b).at(0).as_array().at(1), true);
    auto s = srv.get("/api/v1/query?device=a&metric=s&" + range_all());
    EXPECT_EQ(points_of(s).at(0).as_array().at(1), "x y");
}

// Telegraf and other InfluxDB 1.x clients authenticate with an API key, as a header or as
// the `p` query parameter of /write.
TEST(storage_api_test, influxdb_clients_write_with_an_api_key) {
    server_process srv;
    auto created = srv.post("/api/v1/apikeys", R"({"name":"telegraf","role":"operator"})",
                            {"Content-Type: application/json"});
    ASSERT_EQ(created.status, 201) << created.body;
    std::string key(boost::json::parse(created.body).at("key").as_string());

    auto header =
        http_request(srv.port(), "POST", "/api/v2/write?bucket=b&precision=ms",
                     "m,device=k v=1 " + std::to_string(t0_ms), {"Authorization: Token " + key});
    EXPECT_EQ(header.status, 204) << header.body;
    auto param = http_request(srv.port(), "POST", "/write?db=b&precision=ms&u=telegraf&p=" + key,
                              "m,device=k v=2 " + std::to_string(t0_ms + 1000));
    EXPECT_EQ(param.status, 204) << param.body;
    auto wrong = http_request(srv.port(), "POST", "/write?db=b&p=not-a-key", "m,device=k v=3");
    EXPECT_EQ(wrong.status, 401);
    auto q = srv.get("/api/v1/query?device=k&metric=v&agg=count&" + range_all());
    EXPECT_EQ(points_of(q).at(0).as_array().at(1), 2);
}

TEST(storage_api_test, json_telemetry_reads_back_exactly) {
    server_process srv;
    auto r = srv.post("/api/v1/devices/pump-1/telemetry",
                      R"([{"ts":1704067200000,"values":{"temperature":21.5,"running":true}},
                              {"ts":1704067210000,"values":{"temperature":22}}])",
                      {"Content-Type: application/json"});
    ASSERT_EQ(r.status, 204) << r.body;
    auto q = srv.get("/api/v1/query?device=pump-1&metric=temperature&" + range_all());
    EXPECT_EQ(q.body,
              "{\"series\":[{\"measurement\":\"telemetry\",\"tags\":{\"device\":"
              "\"pump-1\"},\"metric\":\"temperature\",\"points\":[[1704067200000,21.5],"
              "[1704067210000,22]]}]}");
    wait_for_points(srv, "/api/v1/query?device=pump-1&metric=temperature.anomaly&" + range_all(),
                    2);
    auto last = srv.get("/api/v1/last?device=pump-1");
    ASSERT_EQ(last.status, 200);
    auto doc = boost::json::parse(last.body).as_object();
    // temperature, running, and the anomaly score of the numeric one.
    std::set<std::string> metrics;
    for (const auto& series : doc.at("series").as_array())
        metrics.insert(std::string(series.at("metric").as_string()));
    EXPECT_EQ(metrics, (std::set<std::string>{"running", "temperature", "temperature.anomaly"}));
}

// Every numeric point gets an anomaly score, stored as <metric>.anomaly beside it.
TEST(storage_api_test, numeric_series_get_an_anomaly_score_series) {
    // The level detector answers on the spike itself, which keeps this a test of the wiring.
    server_process srv({"--set", "analytics.detector=level"});
    std::string body;
    for (int i = 0; i < 1500; ++i)
        body += "telemetry,device=p1 temperature=" +
                std::to_string(i == 1400 ? 500.0 : 20.0 + (i % 5) * 0.1) + ",mode=\"auto\" " +
                std::to_string(t0_ms + i * 10'000) + "\n";
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", body).status, 204);
    auto scores = points_of(wait_for_points(
        srv, "/api/v1/query?device=p1&metric=temperature.anomaly&" + range_all(), 1500));
    ASSERT_EQ(scores.size(), 1500u);
    double spike = 0, calm = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
        double v = scores.at(i).as_array().at(1).to_number<double>();
        EXPECT_GE(v, 0.0);
        EXPECT_LE(v, 1.0);
        if (i == 1400)
            spike = v;
        else if (i > 1000)
            calm = std::max(calm, v);
    }
    EXPECT_GT(spike, calm) << "the injected spike scores highest";
    auto strings = srv.get("/api/v1/query?device=p1&metric=mode.anomaly&" + range_all());
    EXPECT_EQ(strings.body, "{\"series\":[]}") << "strings are not scored";
    auto off = server_process({"--set", "analytics.detector=off"});
    ASSERT_EQ(off.post("/api/v1/write?precision=ms", body).status, 204);
    EXPECT_EQ(off.get("/api/v1/query?metric=*.anomaly&" + range_all()).body, "{\"series\":[]}");
}

TEST(storage_api_test, a_bad_line_refuses_the_whole_request_and_names_it) {
    server_process srv;
    auto r = srv.post("/api/v1/write?precision=ms",
                      "m,device=a v=1 1704067200000\nm,device=a v=2 1704067201000\n"
                      "m,device=a v=oops 1704067202000\n");
    EXPECT_EQ(r.status, 400);
    auto err = boost::json::parse(r.body).at("error").as_object();
    EXPECT_EQ(err.at("field"), "line 3");
    auto q = srv.get("/api/v1/query?device=a&" + range_all());
    EXPECT_EQ(q.body, "{\"series\":[]}") << "nothing of the refused request is stored";
}

TEST(storage_api_test, aggregates_buckets_and_top_k) {
    server_process srv;
    std::string body;
    // Three devices, 10 minutes at 10 s; device dN's temperature is N*100 + minute.
    for (int d = 1; d <= 3; ++d)
        for (int i = 0; i < 60; ++i)
            body += "telemetry,device=d" + std::to_string(d) +
                    " temperature=" + std::to_string(d * 100 + i / 6) + " " +
                    std::to_string(t0_ms + i * 10'000) + "\n";
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", body).status, 204);
    std::string range = "from=" + std::to_string(t0_ms) + "&to=" + std::to_string(t0_ms + 600'000);

    auto per_minute =
        srv.get("/api/v1/query?device=d2&metric=temperature&agg=max&step=1m&" + range);
    auto pts = points_of(per_minute);
    ASSERT_EQ(pts.size(), 10u);
    EXPECT_EQ(pts.at(0).as_array().at(0), t0_ms);
    EXPECT_EQ(pts.at(9).as_array().at(1), 209);

    auto fleet = srv.get("/api/v1/query?metric=temperature&agg=mean&group_by=metric&" + range);
    auto fleet_pts = points_of(fleet);
    ASSERT_EQ(fleet_pts.size(), 1u);
    EXPECT_DOUBLE_EQ(fleet_pts.at(0).as_array().at(1).to_number<double>(), 204.5);

    auto top = srv.get("/api/v1/query?metric=temperature&agg=max&order=max_desc&limit=2&" + range);
    auto doc = boost::json::parse(top.body).as_object();
    const auto& series = doc.at("series").as_array();
    ASSERT_EQ(series.size(), 2u);
    EXPECT_EQ(series.at(0).at("tags").at("device"), "d3");
    EXPECT_EQ(series.at(1).at("tags").at("device"), "d2");

    auto csv = http_request(srv.port(), "GET",
                            "/api/v1/query?device=d1&metric=temperature&agg=count&" + range, {},
                            {"Accept: text/csv", "Authorization: Bearer " + srv.token()});
    EXPECT_EQ(csv.header("content-type"), "text/csv");
    EXPECT_EQ(csv.body, "measurement,tags,metric,time_ms,value\ntelemetry,device=d1,temperature," +
                            std::to_string(t0_ms) + ",60\n");

    auto bad = srv.get("/api/v1/query?agg=median");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(boost::json::parse(bad.body).at("error").at("field"), "agg");
}

// A fleet-wide aggregate over many series (split across threads) equals the naive sum.
TEST(storage_api_test, fleet_aggregates_over_many_series_are_exact) {
    server_process srv({"--set", "analytics.detector=off"});
    std::string body;
    double sum = 0, max = 0;
    int count = 0;
    for (int d = 0; d < 300; ++d)
        for (int i = 0; i < 6; ++i) {
            double v = d * 0.25 + i * 0.5;
            body += "telemetry,device=d" + std::to_string(d) + " t=" + std::to_string(v) + " " +
                    std::to_string(t0_ms + i * 600'000) + "\n";
            sum += v;
            max = std::max(max, v);
            ++count;
        }
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", body).status, 204);
    std::string range =
        "from=" + std::to_string(t0_ms) + "&to=" + std::to_string(t0_ms + 3'600'000);
    auto mean = points_of(srv.get("/api/v1/query?metric=t&agg=mean&group_by=metric&" + range));
    ASSERT_EQ(mean.size(), 1u);
    EXPECT_NEAR(mean.at(0).as_array().at(1).to_number<double>(), sum / count, 1e-12);
    auto n = points_of(srv.get("/api/v1/query?metric=t&agg=count&group_by=metric&" + range));
    EXPECT_EQ(n.at(0).as_array().at(1), count);
    auto per_10m =
        points_of(srv.get("/api/v1/query?metric=t&agg=max&step=10m&group_by=metric&" + range));
    ASSERT_EQ(per_10m.size(), 6u);
    EXPECT_EQ(per_10m.at(5).as_array().at(1).to_number<double>(), max);
}

// Hourly buckets over flushed data are answered from the parts' hourly rollups: the answer
// is exact, and /metrics and /api/v1/storage/stats show rollup rows read.
TEST(storage_api_test, hourly_aggregates_read_rollups_and_metrics_say_so) {
    server_process srv;
    std::string body;
    std::vector<double> sums(3, 0);
    for (int i = 0; i < 3 * 360; ++i) {  // 3 hours at 10 s
        double v = (i % 7) * 0.5;
        sums[static_cast<size_t>(i / 360)] += v;
        body += "plant,device=r v=" + std::to_string(v) + " " + std::to_string(t0_ms + i * 10'000) +
                "\n";
    }
    ASSERT_EQ(srv.post("/api/v1/write?precision=ms", body).status, 204);
    ASSERT_EQ(srv.post("/api/v1/storage/flush", "").status, 204);
    auto rows_read = [&] {
        const std::string name = "\nclisonix_storage_query_rollup_rows_read_total ";
        auto m = srv.get("/metrics");
        auto at = m.body.find(name);
        return at == std::string::npos ? -1.0 : std::stod(m.body.substr(at + name.size()));
    };
    double before = rows_read();
    auto r =
        srv.get("/api/v1/query?device=r&metric=v&agg=mean&step=1h&from=" + std::to_string(t0_ms) +
                "&to=" + std::to_string(t0_ms + 3 * 3'600'000));
    ASSERT_EQ(r.status, 200) << r.body;
    auto pts = points_of(r);
    ASSERT_EQ(pts.size(), 3u) << r.body;
    for (size_t h = 0; h < 3; ++h) {
        EXPECT_EQ(pts.at(h).as_array().at(0).to_number<int64_t>(),
                  t0_ms + static_cast<int64_t>(h) * 3'600'000);
        EXPECT_NEAR(pts.at(h).as_array().at(1).to_number<double>(), sums[h] / 360, 1e-12);
    }
    EXPECT_GE(rows_read() - std::max(before, 0.0), 3.0);
    auto stats = boost::json::parse(srv.get("/api/v1/storage/stats").body).as_object();
    EXPECT_GE(stats.at("query_rollup_rows_read").to_number<int64_t>(), 3);
    EXPECT_GT(stats.at("rollup_bytes").to_number<int64_t>(), 0);
}

TEST(storage_api_test, data_survives_a_restart) {
    testing::temp_dir data;
    {
        server_process srv(server_process::on{data}, {});
        ASSERT_EQ(srv.post("/api/v1/write?precision=ms", "m,device=a v=42 " + std::to_string(t0_ms))
                      .status,
                  204);
        srv.proc().signal(SIGTERM);
        ASSERT_EQ(srv.proc().wait(10s), 0);
    }
    server_process again(server_process::on{data}, {});
    auto q = again.get("/api/v1/query?device=a&metric=v&" + range_all());
    EXPECT_EQ(q.body,
              "{\"series\":[{\"measurement\":\"m\",\"tags\":{\"device\":\"a\"},"
              "\"metric\":\"v\",\"points\":[[1704067200000,42]]}]}");
}

// Several clients write while the server is killed with SIGKILL at random moments, ten
// times; after each restart every acknowledged point is there and the server is healthy.
TEST(storage_api_test, acknowledged_points_survive_sigkill) {
    testing::temp_dir data;
    std::mt19937 rng(12345);
    std::mutex acked_mutex;
    std::set<std::pair<int, int64_t>> acked;  // (client, ts_ms) acknowledged with 204
    std::atomic<int64_t> next_ts{t0_ms};

    for (int round = 0; round < 10; ++round) {
        server_process srv(server_process::on{data}, {});
        std::atomic<bool> stop{false};
        srv.token();  // logged in before the clients start sharing the server
        std::vector<std::thread> clients;
        for (int c = 0; c < 3; ++c)
            clients.emplace_back([&, c] {
                while (!stop) {
                    std::string body;
                    std::vector<int64_t> sent;
                    for (int i = 0; i < 50; ++i) {
                        int64_t ts = next_ts++;
                        body += "crash,client=c" + std::to_string(c) +
                                " v=" + std::to_string(ts % 1000) + " " + std::to_string(ts) + "\n";
                        sent.push_back(ts);
                    }
                    auto r = srv.post("/api/v1/write?precision=ms", body);
                    if (r.status == 204) {
                        std::lock_guard lock(acked_mutex);
                        for (auto ts : sent)
                            acked.emplace(c, ts);
                    }
                }
            });
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
        srv.proc().signal(SIGKILL);
        srv.proc().wait(10s);
        stop = true;
        for (auto& t : clients)
            t.join();
    }

    server_process after(server_process::on{data}, {});
    EXPECT_EQ(after.get("/readyz").status, 200);
    ASSERT_FALSE(acked.empty());
    for (int c = 0; c < 3; ++c) {
        auto q = after.get("/api/v1/query?measurement=crash&tag.client=c" + std::to_string(c) +
                           "&" + range_all());
        ASSERT_EQ(q.status, 200);
        std::set<int64_t> stored;
        auto doc = boost::json::parse(q.body).as_object();
        for (const auto& s : doc.at("series").as_array())
            for (const auto& p : s.at("points").as_array())
                stored.insert(p.as_array().at(0).to_number<int64_t>());
        size_t missing = 0;
        for (const auto& [client, ts] : acked)
            if (client == c && !stored.contains(ts)) ++missing;
        EXPECT_EQ(missing, 0u) << "client c" << c << " lost acknowledged points";
    }
}

// A device writes with its own token, as itself and as nothing else.
TEST(device_token_test, a_device_writes_its_own_telemetry_and_nothing_else) {
    server_process srv;
    auto issued = srv.post("/api/v1/devices/pump-7/token", "");
    ASSERT_EQ(issued.status, 201) << issued.body;
    std::string token(boost::json::parse(issued.body).at("token").as_string());
    std::string bearer = "Authorization: Bearer " + token;

    auto header_form = http_request(srv.port(), "POST", "/api/v1/telemetry",
                                    R"({"ts":1704067200000,"values":{"temperature":20.5}})",
                                    {bearer, "Content-Type: application/json"});
    EXPECT_EQ(header_form.status, 204) << header_form.body;
    auto path_form = http_request(srv.port(), "POST", "/api/v1/" + token + "/telemetry",
                                  R"({"ts":1704067210000,"values":{"temperature":21.5}})",
                                  {"Content-Type: application/json"});
    EXPECT_EQ(path_form.status, 204) << path_form.body;

    // Another device's route, the query API and a forged token are all refused.
    auto other = http_request(srv.port(), "POST", "/api/v1/devices/pump-8/telemetry",
                              R"({"temperature":99})", {bearer});
    EXPECT_EQ(other.status, 403);
    EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/query", {}, {bearer}).status, 403);
    EXPECT_EQ(
        http_request(srv.port(), "POST", "/api/v1/not-a-token/telemetry", R"({"temperature":1})")
            .status,
        401);

    auto q = srv.get("/api/v1/query?device=pump-*&metric=temperature&" + range_all());
    EXPECT_EQ(q.body,
              "{\"series\":[{\"measurement\":\"telemetry\",\"tags\":{\"device\":"
              "\"pump-7\"},\"metric\":\"temperature\",\"points\":[[1704067200000,20.5],"
              "[1704067210000,21.5]]}]}");

    // Rotation: the old token stops working at once.
    auto rotated = srv.post("/api/v1/devices/pump-7/token", "");
    ASSERT_EQ(rotated.status, 201);
    EXPECT_EQ(
        http_request(srv.port(), "POST", "/api/v1/telemetry", R"({"temperature":1})", {bearer})
            .status,
        401);
}

}  // namespace
}  // namespace clisonix
