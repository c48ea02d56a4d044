#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "observe/observe.h"

using namespace clisonix;
using ::testing::HasSubstr;

namespace {

TEST(observe_metrics, exposes_a_small_registry_exactly) {
    metrics::registry r;
    auto get = r.get_counter("http_requests_total", "HTTP requests handled.", {"route", "code"},
                             {"/api/v1/points", "200"});
    auto bad = r.get_counter("http_requests_total", "HTTP requests handled.", {"route", "code"},
                             {"/api/v1/devices", "404"});
    get.inc();
    get.inc(2);
    bad.inc();
    r.get_gauge("ingest_queue_depth", "Batches waiting.\nSecond line \\ end.").set(12.5);
    auto h = r.get_histogram("query_duration_seconds", "Query latency.", {0.01, 0.1, 1});
    h.observe(0.005);
    h.observe(0.01);  // the bound itself belongs to its bucket
    h.observe(0.5);
    h.observe(3);

    EXPECT_EQ(r.expose(),
              "# HELP http_requests_total HTTP requests handled.\n"
              "# TYPE http_requests_total counter\n"
              "http_requests_total{route=\"/api/v1/devices\",code=\"404\"} 1\n"
              "http_requests_total{route=\"/api/v1/points\",code=\"200\"} 3\n"
              "# HELP ingest_queue_depth Batches waiting.\\nSecond line \\\\ end.\n"
              "# TYPE ingest_queue_depth gauge\n"
              "ingest_queue_depth 12.5\n"
              "# HELP query_duration_seconds Query latency.\n"
              "# TYPE query_duration_seconds histogram\n"
              "query_duration_seconds_bucket{le=\"0.01\"} 2\n"
              "query_duration_seconds_bucket{le=\"0.1\"} 2\n"
              "query_duration_seconds_bucket{le=\"1\"} 3\n"
              "query_duration_seconds_bucket{le=\"+Inf\"} 4\n"
              "query_duration_seconds_sum 3.515\n"
              "query_duration_seconds_count 4\n");
}

TEST(observe_metrics, histogram_with_labels_puts_le_last) {
    metrics::registry r;
    r.get_histogram("rule_eval_seconds", "Rule evaluation.", {0.5}, {"rule"}, {"temp"})
        .observe(0.25);
    // Sum and count carry the series' labels too.
    EXPECT_EQ(r.expose(),
              "# HELP rule_eval_seconds Rule evaluation.\n"
              "# TYPE rule_eval_seconds histogram\n"
              "rule_eval_seconds_bucket{rule=\"temp\",le=\"0.5\"} 1\n"
              "rule_eval_seconds_bucket{rule=\"temp\",le=\"+Inf\"} 1\n"
              "rule_eval_seconds_sum{rule=\"temp\"} 0.25\n"
              "rule_eval_seconds_count{rule=\"temp\"} 1\n");
}

TEST(observe_metrics, escapes_label_values) {
    metrics::registry r;
    r.get_gauge("device_up", "Device reachable.", {"device"}, {"a\"b\\c\nd"}).set(1);
    EXPECT_THAT(r.expose(), HasSubstr("device_up{device=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(observe_metrics, formats_numbers_for_prometheus) {
    metrics::registry r;
    auto g = [&](const char* name) { return r.get_gauge(name, "x"); };
    g("a").set(1e300);
    g("b").set(1e15);
    g("c").set(0.1);
    g("d").set(std::numeric_limits<double>::infinity());
    g("e").set(-std::numeric_limits<double>::infinity());
    g("f").set(std::numeric_limits<double>::quiet_NaN());
    g("g").set(-3);
    g("h").set(1e-7);
    std::string text = r.expose();
    EXPECT_THAT(text, HasSubstr("\na 1e+300\n"));
    EXPECT_THAT(text, HasSubstr("\nb 1000000000000000\n"));
    EXPECT_THAT(text, HasSubstr("\nc 0.1\n"));
    EXPECT_THAT(text, HasSubstr("\nd +Inf\n"));
    EXPECT_THAT(text, HasSubstr("\ne -Inf\n"));
    EXPECT_THAT(text, HasSubstr("\nf NaN\n"));
    EXPECT_THAT(text, HasSubstr("\ng -3\n"));
    EXPECT_THAT(text, HasSubstr("\nh 1e-07\n"));
}

TEST(observe_metrics, same_series_shares_state_and_gauges_move_both_ways) {
    metrics::registry r;
    auto a = r.get_gauge("inflight_requests", "In flight.");
    auto b = r.get_gauge("inflight_requests", "In flight.");
    a.add(3);
    b.add(-1);
    EXPECT_EQ(a.value(), 2);
    metrics::counter unbound;
    unbound.inc();  // a handle from no registry ignores updates
    EXPECT_EQ(unbound.value(), 0);
}

TEST(observe_metrics, rejects_misuse) {
    metrics::registry r;
    r.get_counter("jobs_total", "Jobs.", {"queue"}, {"a"});
    EXPECT_THROW(r.get_gauge("jobs_total", "Jobs."), std::logic_error);
    EXPECT_THROW(r.get_counter("jobs_total", "Jobs.", {"other"}, {"a"}), std::logic_error);
    EXPECT_THROW(r.get_counter("jobs_total", "Jobs.", {"queue"}, {}), std::logic_error);
    EXPECT_THROW(r.get_counter("jobs", "Counter without _total."), std::logic_error);
    EXPECT_THROW(r.get_gauge("bad-name", "x"), std::logic_error);
    EXPECT_THROW(r.get_histogram("h_seconds", "x", {1, 0.5}), std::logic_error);
    EXPECT_THROW(r.get_histogram("h_seconds", "x", {1}, {"le"}, {"1"}), std::logic_error);
}

TEST(observe_metrics, concurrent_increments_sum_exactly) {
    metrics::registry r;
    auto c = r.get_counter("events_total", "Events.");
    auto h = r.get_histogram("sizes", "Sizes.", {10, 100});
    constexpr int per_thread = 100000;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            // Each thread looks up its own handle too, exercising the registry's lock.
            auto mine = r.get_counter("events_total", "Events.");
            for (int i = 0; i < per_thread; ++i) {
                (i % 2 ? c : mine).inc();
                h.observe(i % 200);
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(c.value(), 4.0 * per_thread);
    std::string text = r.expose();
    EXPECT_THAT(text, HasSubstr("events_total 400000\n"));
    EXPECT_THAT(text, HasSubstr("sizes_bucket{le=\"10\"} 22000\n"));
    EXPECT_THAT(text, HasSubstr("sizes_bucket{le=\"100\"} 202000\n"));
    EXPECT_THAT(text, HasSubstr("sizes_count 400000\n"));
    // 4 threads × 500 rounds of 0..199, all integers, so the double sum is exact.
    EXPECT_THAT(text, HasSubstr("sizes_sum 39800000\n"));
}

TEST(observe_metrics, latency_buckets_span_half_a_millisecond_to_ten_seconds) {
    EXPECT_EQ(metrics::latency_buckets(),
              (std::vector<double>{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                   1, 2.5, 5, 10}));
}

// The value of an unlabelled sample `name` in `text`, or -1 when absent.
double sample(const std::string& text, const std::string& name) {
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
}

TEST(observe_metrics, process_metrics_are_plausible) {
    metrics::registry r;
    metrics::add_process_metrics(r, "0.1.0", "abc123");
    std::string text = r.expose();
    EXPECT_GT(sample(text, "process_resident_memory_bytes"), 1e6);
    EXPECT_GE(sample(text, "process_open_fds"), 3);
    double start = sample(text, "process_start_time_seconds");
    double now = static_cast<double>(std::time(nullptr));
    EXPECT_GT(start, now - 3600);
    EXPECT_LE(start, now + 1);
    double uptime = sample(text, "clisonix_uptime_seconds");
    EXPECT_GE(uptime, 0);
    EXPECT_LT(uptime, 3600);
    EXPECT_THAT(text, HasSubstr("# TYPE clisonix_build_info gauge\n"
                                "clisonix_build_info{version=\"0.1.0\",commit=\"abc123\"} 1\n"));
    // Registering again (a restart of the wiring in tests) replaces, never duplicates.
    metrics::add_process_metrics(r, "0.1.0", "abc123");
    EXPECT_EQ(r.expose().find("process_open_fds"), text.find("process_open_fds"));
}

TEST(observe_metrics, global_registry_is_one_object) {
    EXPECT_EQ(&metrics::global(), &metrics::global());
}

TEST(observe_metrics, promtool_accepts_the_exposition) {
    const char* promtool = "/usr/bin/promtool";
    if (::access(promtool, X_OK) != 0) GTEST_SKIP() << "promtool not installed";

    metrics::registry r;
    metrics::add_process_metrics(r, "0.1.0", "abc123");
    for (const char* route : {"/api/v1/points", "/api/v1/query", "/metrics"}) {
        r.get_counter("clisonix_http_requests_total", "HTTP requests by route and status.",
                      {"route", "status"}, {route, "200"})
            .inc(7);
        r.get_histogram("clisonix_http_request_duration_seconds", "HTTP request latency.",
                        metrics::latency_buckets(), {"route"}, {route})
            .observe(0.042);
    }
    r.get_counter("clisonix_ingest_points_total", "Points accepted.").inc(1e6);
    r.get_gauge("clisonix_ingest_queue_batches", "Batches waiting to be stored.").set(0);
    r.get_gauge("clisonix_device_last_seen_seconds", "Last message time per device.", {"device"},
                {"press \"7\"\nline\\2"})
        .set(1764110401.5);

    auto file = std::filesystem::temp_directory_path() /
                ("clisonix-metrics-" + std::to_string(::getpid()) + ".prom");
    std::ofstream(file) << r.expose();
    std::string command = std::string(promtool) + " check metrics < " + file.string() + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string output;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
        output.append(buf, n);
    int status = ::pclose(pipe);
    std::filesystem::remove(file);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
    EXPECT_EQ(output, "");
}

}  // namespace
