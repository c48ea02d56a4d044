// Prometheus remote write into the real binary: a real Prometheus (Debian's package) scrapes
// itself every second and remote-writes into Clisonix; what it scraped is stored with the
// series mapping (docs/prometheus.md) and reads back exactly; a SIGKILL of Clisonix loses
// nothing Prometheus was told is stored, and what Prometheus scraped while Clisonix was down
// arrives once it is back. Plus the route's authentication with hand-built bodies.
#include <gtest/gtest.h>
#include <snappy.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <map>
#include <thread>

#include "ingest/remote_write.pb.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::http_response;
using testing::process;
using testing::server_process;

using points = std::map<int64_t, double>;  // ms since the epoch -> value
using tag_set = std::map<std::string, std::string>;

std::string url_encoded(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xF]);
        }
    }
    return out;
}

// The points of the stored series `measurement` with exactly these tags (field `value`, as
// remote write stores every sample) through Clisonix's own query API, in [from_ms, to_ms).
// Empty when the series does not exist (yet). The same series read through the Prometheus
// query API (/prometheus/api/v1/query_range) must give the same points.
points stored_points(server_process& srv, std::string_view measurement, const tag_set& tags,
                     int64_t from_ms = 0, int64_t to_ms = 4102444800000) {
    std::string target = "/api/v1/query?measurement=" + url_encoded(measurement) +
                         "&metric=value&from=" + std::to_string(from_ms) +
                         "&to=" + std::to_string(to_ms);
    for (const auto& [k, v] : tags)
        target += "&tag." + url_encoded(k) + "=" + url_encoded(v);
    auto r = srv.get(target);
    EXPECT_EQ(r.status, 200) << target << " " << r.body;
    points out;
    if (r.status != 200) return out;
    auto doc = boost::json::parse(r.body);
    for (const auto& series : doc.at("series").as_array()) {
        tag_set stored;
        for (const auto& [k, v] : series.at("tags").as_object())
            stored.emplace(std::string(k), std::string(v.as_string()));
        if (stored != tags) continue;  // a series with more tags than asked for
        for (const auto& p : series.at("points").as_array())
            out.emplace(p.at(0).to_number<int64_t>(), p.at(1).to_number<double>());
    }
    return out;
}

// The raw samples of `selector` (one series) over the last `range` from a Prometheus query
// API, with the series' labels (without __name__): Prometheus' own (no prefix, no key), or
// Clisonix's under `/prometheus` with a Bearer key.
std::pair<tag_set, points> prometheus_points(uint16_t port, std::string_view selector,
                                             std::string_view range = "1h",
                                             std::string_view prefix = "",
                                             std::string_view key = "") {
    std::vector<std::string> headers;
    if (!key.empty()) headers.push_back("Authorization: Bearer " + std::string(key));
    auto r = http_request(port, "GET",
                          std::string(prefix) + "/api/v1/query?query=" +
                              url_encoded(std::string(selector) + "[" + std::string(range) + "]"),
                          {}, headers);
    EXPECT_EQ(r.status, 200) << r.body;
    std::pair<tag_set, points> out;
    if (r.status != 200) return out;
    auto doc = boost::json::parse(r.body);
    const auto& result = doc.at("data").at("result").as_array();
    EXPECT_LE(result.size(), 1u) << selector << " matches more than one series: " << r.body;
    if (result.empty()) return out;
    for (const auto& [k, v] : result.at(0).at("metric").as_object())
        if (k != "__name__") out.first.emplace(std::string(k), std::string(v.as_string()));
    for (const auto& p : result.at(0).at("values").as_array()) {
        auto ms = static_cast<int64_t>(std::llround(p.at(0).to_number<double>() * 1000));
        out.second.emplace(ms, std::stod(std::string(p.at(1).as_string())));
    }
    return out;
}

// A sample of Prometheus' own /metrics (the first line of `name`), or NaN.
double prometheus_metric(uint16_t port, std::string_view name) {
    auto text = http_request(port, "GET", "/metrics").body;
    for (size_t at = 0; (at = text.find(name, at)) != std::string::npos; at += name.size()) {
        if (at > 0 && text[at - 1] != '\n') continue;
        char next = text[at + name.size()];
        if (next != ' ' && next != '{') continue;
        auto end = text.find('\n', at);
        auto line = text.substr(at, end - at);
        return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return std::nan("");
}

// Every point of `expected` whose time is at most `until_ms` is in `stored` with its value.
::testing::AssertionResult holds_all(const points& stored, const points& expected,
                                     int64_t until_ms) {
    size_t checked = 0;
    for (const auto& [ts, v] : expected) {
        if (ts > until_ms) break;
        ++checked;
        auto it = stored.find(ts);
        if (it == stored.end())
            return ::testing::AssertionFailure()
                   << "the sample at " << ts << " ms (value " << v << ") is missing; "
                   << stored.size() << " stored, " << expected.size() << " in Prometheus";
        if (it->second != v)
            return ::testing::AssertionFailure()
                   << "the sample at " << ts << " ms is " << it->second << ", Prometheus has " << v;
    }
    if (checked == 0)
        return ::testing::AssertionFailure() << "no Prometheus sample at or before " << until_ms;
    return ::testing::AssertionSuccess() << checked << " samples";
}

std::string api_key(server_process& srv, std::string_view role) {
    auto r = srv.post("/api/v1/apikeys", R"({"name":"prometheus-)" + std::string(role) +
                                             R"(","role":")" + std::string(role) + R"("})");
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(boost::json::parse(r.body).at("key").as_string());
}

std::string remote_write_body(std::string_view metric, int64_t ms, double value) {
    prometheus::pb::WriteRequest req;
    auto* series = req.add_timeseries();
    auto* name = series->add_labels();
    name->set_name("__name__");
    name->set_value(std::string(metric));
    auto* job = series->add_labels();
    job->set_name("job");
    job->set_value("by-hand");
    auto* sample = series->add_samples();
    sample->set_timestamp(ms);
    sample->set_value(value);
    std::string raw = req.SerializeAsString(), out;
    snappy::Compress(raw.data(), raw.size(), &out);
    return out;
}

template <typename Condition>
bool wait_until(Condition done, std::chrono::seconds limit) {
    for (auto until = std::chrono::steady_clock::now() + limit;
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(250ms))
        if (done()) return true;
    return done();
}

TEST(remote_write_test, the_route_takes_an_api_key_with_the_write_permission) {
    server_process srv;
    const std::string writer = api_key(srv, "operator"), viewer = api_key(srv, "viewer");
    constexpr int64_t ms = 1'704'067'200'000;
    auto body = remote_write_body("hand_made", ms, 42.25);
    const std::vector<std::string> snappy_headers{"Content-Encoding: snappy",
                                                  "Content-Type: application/x-protobuf"};
    auto none = http_request(srv.port(), "POST", "/prometheus/api/v1/write", body, snappy_headers);
    EXPECT_EQ(none.status, 401) << none.body;
    auto with = [&](const std::string& key) {
        auto headers = snappy_headers;
        headers.push_back("Authorization: Bearer " + key);
        return http_request(srv.port(), "POST", "/prometheus/api/v1/write", body, headers);
    };
    auto read_only = with(viewer);
    EXPECT_EQ(read_only.status, 403) << read_only.body;
    EXPECT_EQ(stored_points(srv, "hand_made", {{"job", "by-hand"}}), points{});
    auto written = with(writer);
    EXPECT_EQ(written.status, 204) << written.body;
    EXPECT_EQ(stored_points(srv, "hand_made", {{"job", "by-hand"}}), (points{{ms, 42.25}}));
}

TEST(remote_write_test, a_real_prometheus_remote_writes_and_a_kill_loses_nothing_acknowledged) {
    server_process srv;
    const std::string key = api_key(srv, "operator");
    const uint16_t clisonix_port = srv.port();
    testing::temp_dir prom;
    const uint16_t prom_port = testing::free_port();
    const std::string instance = "127.0.0.1:" + std::to_string(prom_port);
    // One shard sends the batches in the order Prometheus scraped them, so the highest
    // timestamp it reports sent bounds every sample it was told is stored.
    testing::write_file(prom.path() / "prometheus.yml",
                        "global:\n  scrape_interval: 1s\n"
                        "scrape_configs:\n  - job_name: self\n"
                        "    static_configs:\n      - targets: ['" +
                            instance +
                            "']\n"
                            "remote_write:\n  - url: http://127.0.0.1:" +
                            std::to_string(clisonix_port) +
                            "/prometheus/api/v1/write\n"
                            "    authorization:\n      credentials: " +
                            key +
                            "\n    queue_config: {min_shards: 1, max_shards: 1, "
                            "batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}\n");
    process prometheus({"/usr/bin/prometheus",
                        "--config.file=" + (prom.path() / "prometheus.yml").string(),
                        "--storage.tsdb.path=" + (prom.path() / "data").string(),
                        "--web.listen-address=" + instance});

    // The scraped series, stored with the mapping: `up` is measurement up, its labels tags.
    const tag_set labels{{"instance", instance}, {"job", "self"}};
    const std::string up_selector = "up{job=\"self\"}";
    const std::string counter_selector =
        "prometheus_http_requests_total{job=\"self\",handler=\"/metrics\",code=\"200\"}";
    ASSERT_TRUE(wait_until([&] { return stored_points(srv, "up", labels).size() >= 3; }, 60s))
        << prometheus.err().substr(0, 4000);
    auto up = stored_points(srv, "up", labels);
    for (const auto& [ts, v] : up)
        EXPECT_EQ(v, 1) << ts;
    auto [prom_labels, prom_up] = prometheus_points(prom_port, up_selector);
    EXPECT_EQ(prom_labels, labels);
    EXPECT_TRUE(holds_all(up, prom_up, up.rbegin()->first));
    // A counter of the target, with its own labels as tags, sample for sample.
    const tag_set counter_labels{
        {"code", "200"}, {"handler", "/metrics"}, {"instance", instance}, {"job", "self"}};
    ASSERT_TRUE(wait_until(
        [&] {
            return !stored_points(srv, "prometheus_http_requests_total", counter_labels).empty();
        },
        30s));
    auto counter = stored_points(srv, "prometheus_http_requests_total", counter_labels);
    EXPECT_TRUE(holds_all(counter, prometheus_points(prom_port, counter_selector).second,
                          counter.rbegin()->first));
    // The same series through Clisonix's Prometheus query API, under the names and labels
    // they had in Prometheus: sample for sample what /api/v1/query stored.
    auto [promql_labels, promql_up] =
        prometheus_points(clisonix_port, up_selector, "1h", "/prometheus", key);
    EXPECT_EQ(promql_labels, labels);
    EXPECT_TRUE(holds_all(promql_up, up, up.rbegin()->first));
    EXPECT_TRUE(holds_all(
        prometheus_points(clisonix_port, counter_selector, "1h", "/prometheus", key).second,
        counter, counter.rbegin()->first));

    // Kill Clisonix right after Prometheus saw a batch stored.
    const char* highest_sent = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds";
    double before = prometheus_metric(prom_port, highest_sent);
    ASSERT_TRUE(
        wait_until([&] { return prometheus_metric(prom_port, highest_sent) > before; }, 30s));
    srv.proc().signal(SIGKILL);
    ASSERT_TRUE(srv.proc().wait(10s).has_value());
    // Whatever Prometheus counts as sent now was acknowledged before the kill.
    std::this_thread::sleep_for(300ms);
    const auto acknowledged_ms =
        static_cast<int64_t>(prometheus_metric(prom_port, highest_sent)) * 1000;
    // Prometheus keeps scraping while Clisonix is down; its sends fail and are retried.
    std::this_thread::sleep_for(4s);
    EXPECT_GT(prometheus_metric(prom_port, "prometheus_remote_storage_samples_retried_total"), 0);

    server_process again(server_process::on{srv.data(), clisonix_port}, {});
    auto after_kill = stored_points(again, "up", labels);
    EXPECT_TRUE(
        holds_all(after_kill, prometheus_points(prom_port, up_selector).second, acknowledged_ms))
        << "acknowledged up to " << acknowledged_ms << " ms";
    EXPECT_TRUE(holds_all(stored_points(again, "prometheus_http_requests_total", counter_labels),
                          prometheus_points(prom_port, counter_selector).second, acknowledged_ms));

    // The gap: everything Prometheus scraped until a few seconds after the restart arrives,
    // the samples of the downtime included.
    const int64_t restarted_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    ASSERT_TRUE(wait_until(
        [&] { return prometheus_metric(prom_port, highest_sent) * 1000 > restarted_ms + 2000; },
        60s))
        << prometheus.err().substr(0, 4000);
    auto prom_after = prometheus_points(prom_port, up_selector).second;
    auto stored_after = stored_points(again, "up", labels);
    EXPECT_TRUE(holds_all(stored_after, prom_after, restarted_ms + 2000));
    size_t in_downtime = 0;
    for (const auto& [ts, v] : prom_after)
        if (ts > acknowledged_ms + 1000 && ts < restarted_ms - 1000) ++in_downtime;
    EXPECT_GE(in_downtime, 2u) << "the test must kill Clisonix for a few scrapes";

    prometheus.signal(SIGTERM);
    prometheus.wait(20s);
}

}  // namespace
}  // namespace clisonix
