// `clisonix serve` as a process: the endpoints, the logs, graceful shutdown, real peers.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <sys/statvfs.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::connection;
using testing::http_request;
using testing::process;
using testing::server_process;

TEST(serve_test, healthz_and_readyz_answer) {
    server_process srv;
    auto health = srv.get("/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, R"({"status":"ok"})");
    auto ready = srv.get("/readyz");
    EXPECT_EQ(ready.status, 200);
    EXPECT_EQ(ready.body, R"({"status":"ready"})");
    EXPECT_TRUE(std::filesystem::exists(srv.data().path() / "meta.db"));
}

// Under systemd (Type=notify) the server says READY=1 only once /readyz answers ready, and
// STATUS= why not meanwhile; STOPPING=1 when it stops.
TEST(serve_test, tells_systemd_ready_exactly_when_readyz_is_ready) {
    const std::string id = std::to_string(::getpid()) + "-" + std::to_string(std::rand());
    {
        // A reserve larger than the disk's free space: the engine refuses writes, /readyz 503.
        struct statvfs fs {};
        ASSERT_EQ(::statvfs(std::filesystem::temp_directory_path().c_str(), &fs), 0);
        if (static_cast<double>(fs.f_bavail) * fs.f_frsize >= 1024.0 * 1024 * 1024 * 1024)
            GTEST_SKIP() << "more than 1 TiB free: storage.min_free cannot exceed it";
        testing::notify_socket notify("@clisonix-test-notify-full-" + id);
        server_process full({"--set", "storage.min_free=1024GiB"}, {notify.env()});
        EXPECT_FALSE(notify.wait_for("READY=1", 2s));
        ASSERT_FALSE(notify.received.empty());
        EXPECT_TRUE(notify.received[0].starts_with("STATUS=not ready: storage: "))
            << notify.received[0];
        auto ready = http_request(full.port(), "GET", "/readyz");
        EXPECT_EQ(ready.status, 503);
        EXPECT_NE(ready.body.find("\"message\":\"storage: "), std::string::npos) << ready.body;
    }
    testing::notify_socket notify("@clisonix-test-notify-" + id);
    server_process srv({}, {notify.env()});
    ASSERT_TRUE(notify.wait_for("READY=1", 30s));
    EXPECT_EQ(notify.received.back(), "READY=1\nSTATUS=ready");
    EXPECT_EQ(http_request(srv.port(), "GET", "/readyz").status, 200);
    srv.proc().signal(SIGTERM);
    EXPECT_EQ(srv.proc().wait(), 0);
    EXPECT_TRUE(notify.wait_for("STOPPING=1", 5s));
}

TEST(serve_test, unknown_route_gets_the_error_envelope_and_a_request_id) {
    server_process srv;
    auto r = srv.get("/api/v1/nothing-here");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"not_found","message":"No such resource: /api/v1/nothing-here"}})");
    EXPECT_EQ(r.header("x-request-id").size(), 32u);
}

TEST(serve_test, openapi_document_describes_the_registered_routes) {
    server_process srv;
    auto r = srv.get("/api/v1/openapi.json");
    ASSERT_EQ(r.status, 200);
    auto doc = boost::json::parse(r.body).as_object();
    EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
    const auto& paths = doc.at("paths").as_object();
    for (auto p : {"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"})
        EXPECT_TRUE(paths.contains(p)) << p;
    EXPECT_FALSE(paths.contains("/api/v1/test/sleep"));  // test routes only when asked for
}

// Writes the scrape to a file and runs Debian's promtool over it.
std::string promtool_check(const std::string& exposition, const testing::temp_dir& dir) {
    testing::write_file(dir.path() / "scrape.txt", exposition);
    std::string cmd =
        "promtool check metrics < " + (dir.path() / "scrape.txt").string() + " 2>&1; echo rc=$?";
    std::string out;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, pipe))
        out.append(buf, n);
    ::pclose(pipe);
    return out;
}

TEST(serve_test, only_health_login_and_the_api_description_answer_without_credentials) {
    server_process srv;
    EXPECT_EQ(http_request(srv.port(), "GET", "/healthz").status, 200);
    EXPECT_EQ(http_request(srv.port(), "GET", "/readyz").status, 200);
    // The description of the API is public (it holds no data); the metrics are not.
    auto openapi = http_request(srv.port(), "GET", "/api/v1/openapi.json");
    EXPECT_EQ(openapi.status, 200);
    EXPECT_NE(openapi.body.find("\"openapi\":\"3.1.0\""), std::string::npos);
    for (auto target : {"/metrics", "/api/v1/query", "/api/v1/series"}) {
        auto r = http_request(srv.port(), "GET", target);
        EXPECT_EQ(r.status, 401) << target;
        EXPECT_NE(r.body.find("\"code\":\"unauthenticated\""), std::string::npos) << r.body;
    }
    auto write = http_request(srv.port(), "POST", "/api/v1/write", "m v=1");
    EXPECT_EQ(write.status, 401);
}

TEST(serve_test, metrics_pass_promtool_and_use_route_templates) {
    server_process srv;
    srv.get("/healthz");
    srv.get("/api/v1/no/such/path/12345");  // the dashboard answers other paths
    auto r = srv.get("/metrics");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    for (auto name :
         {"clisonix_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}",
          "clisonix_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}",
          "clisonix_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=",
          "clisonix_http_requests_in_flight ", "process_resident_memory_bytes ",
          "process_open_fds ", "process_start_time_seconds ", "clisonix_uptime_seconds ",
          "clisonix_build_info{"})
        EXPECT_NE(r.body.find(name), std::string::npos) << name;
    EXPECT_EQ(r.body.find("12345"), std::string::npos) << "raw paths must not become labels";
    EXPECT_EQ(promtool_check(r.body, srv.data()), "rc=0\n");
}

TEST(serve_test, logs_json_lines_with_an_access_line_per_request) {
    server_process srv;
    http_request(srv.port(), "GET", "/healthz", {}, {"X-Request-Id: trace-me-1"});
    srv.proc().signal(SIGTERM);
    ASSERT_EQ(srv.proc().wait(10s), 0);
    auto log = testing::read_logs(srv.data().path());
    ASSERT_FALSE(log.empty());
    bool found = false;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        auto entry = boost::json::parse(line).as_object();  // every line is one JSON object
        EXPECT_TRUE(entry.contains("ts") && entry.contains("level") && entry.contains("msg"));
        if (entry.contains("request_id") && entry.at("request_id") == "trace-me-1") {
            found = true;
            EXPECT_EQ(entry.at("msg"), "request");
            EXPECT_EQ(entry.at("method"), "GET");
            EXPECT_EQ(entry.at("route"), "/healthz");
            EXPECT_EQ(entry.at("status").as_int64(), 200);
            EXPECT_EQ(entry.at("bytes").as_int64(), 15);
            EXPECT_EQ(entry.at("client"), "127.0.0.1");
            EXPECT_TRUE(entry.contains("duration_ms"));
        }
    }
    EXPECT_TRUE(found) << log;
}

TEST(serve_test, an_unreachable_metadata_store_fails_start_without_leaking_the_password) {
    testing::temp_dir data;
    uint16_t closed_port = testing::free_port();
    auto r = testing::run_clisonix(
        {"serve", "--data", data.str(), "--port", std::to_string(testing::free_port())},
        {"CLISONIX_META_URL=postgres://clisonix:hunter2-secret@127.0.0.1:" +
         std::to_string(closed_port) + "/meta"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("metadata store unavailable"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("postgres"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("hunter2-secret"), std::string::npos) << r.err;
    auto log = testing::read_logs(data.path());
    EXPECT_NE(log.find("metadata store unavailable"), std::string::npos);
    EXPECT_EQ(log.find("hunter2-secret"), std::string::npos);
}

TEST(serve_test, sigterm_lets_a_slow_request_finish_then_exits_0) {
    server_process srv({}, {"CLISONIX_TEST_ROUTES=1"});
    connection slow(srv.port());
    ASSERT_TRUE(slow.send("GET /api/v1/test/sleep?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::this_thread::sleep_for(300ms);
    srv.proc().signal(SIGTERM);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(http_request(srv.port(), "GET", "/healthz").status, 0) << "still accepting";
    auto r = slow.read_response(10s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"slept_ms":1500})");
    EXPECT_EQ(srv.proc().wait(10s), 0);
}

TEST(serve_test, drain_timeout_bounds_the_wait_for_slow_requests) {
    server_process srv({"--set", "http.drain_timeout=300ms"}, {"CLISONIX_TEST_ROUTES=1"});
    connection slow(srv.port());
    ASSERT_TRUE(slow.send("GET /api/v1/test/sleep?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::this_thread::sleep_for(200ms);
    auto started = std::chrono::steady_clock::now();
    srv.proc().signal(SIGTERM);
    auto code = srv.proc().wait(10s);
    EXPECT_EQ(code, 0);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 6s);
}

TEST(serve_test, a_taken_port_is_a_clear_failure) {
    server_process first;
    auto r = testing::run_clisonix({"serve", "--port", std::to_string(first.port()), "--set",
                                    "http.bind=127.0.0.1", "--data", first.data().str() + "/b",
                                    "--set", "log.file=false"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << r.err;
}

// Runs scripts/pg-test-server VERB DIR; true on success.
bool pg_server(const std::string& verb, const testing::temp_dir& dir) {
    std::string cmd = std::string(CLISONIX_SOURCE_DIR) + "/scripts/pg-test-server " + verb + " " +
                      dir.str() + " >/dev/null";
    return std::system(cmd.c_str()) == 0;
}

// With PostgreSQL as the metadata store, /readyz follows the database: 503 while it is down,
// 200 again once it is back, without restarting Clisonix.
TEST(serve_test, readyz_follows_a_real_postgresql) {
    testing::temp_dir pg("clisonix-pg");
    ASSERT_TRUE(pg_server("start", pg));
    struct stop_at_exit {
        const testing::temp_dir& dir;
        ~stop_at_exit() { pg_server("stop", dir); }
    } stopper{pg};
    std::string url = testing::read_file(pg.path() / "url");
    url.pop_back();  // newline
    server_process srv({}, {"CLISONIX_META_URL=" + url});
    EXPECT_EQ(srv.get("/readyz").status, 200);

    ASSERT_TRUE(pg_server("pause", pg));
    auto down = srv.get("/readyz");
    EXPECT_EQ(down.status, 503);
    auto body = boost::json::parse(down.body).as_object();
    EXPECT_EQ(body.at("error").at("code"), "unavailable");
    EXPECT_NE(down.body.find("postgres"), std::string::npos) << down.body;
    EXPECT_EQ(down.body.find(url.substr(url.find(':', 11) + 1, 24)), std::string::npos)
        << "password leaked: " << down.body;
    EXPECT_EQ(srv.get("/healthz").status, 200);  // alive, only not ready

    ASSERT_TRUE(pg_server("resume", pg));
    EXPECT_EQ(srv.get("/readyz").status, 200);
}

// A real Prometheus (Debian's package) scrapes the server and sees it up.
TEST(serve_test, a_real_prometheus_scrapes_the_server) {
    server_process srv;
    testing::temp_dir prom;
    uint16_t prom_port = testing::free_port();
    testing::write_file(prom.path() / "prometheus.yml",
                        "global:\n  scrape_interval: 1s\n"
                        "scrape_configs:\n  - job_name: clisonix\n"
                        "    authorization:\n      credentials: " +
                            srv.token() +
                            "\n    static_configs:\n"
                            "      - targets: ['127.0.0.1:" +
                            std::to_string(srv.port()) + "']\n");
    process prometheus({"/usr/bin/prometheus",
                        "--config.file=" + (prom.path() / "prometheus.yml").string(),
                        "--storage.tsdb.path=" + (prom.path() / "data").string(),
                        "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)});
    std::string last;
    auto deadline = std::chrono::steady_clock::now() + 40s;
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = http_request(prom_port, "GET",
                              "/api/v1/query?query=clisonix_build_info%20*%20on()%20up");
        last = r.body;
        if (r.status == 200 && r.body.find("\"value\":[") != std::string::npos &&
            r.body.find("\"1\"]") != std::string::npos)
            break;
        std::this_thread::sleep_for(500ms);
    }
    ASSERT_NE(last.find("\"1\"]"), std::string::npos) << last << prometheus.err();
    auto targets = http_request(prom_port, "GET", "/api/v1/targets").body;
    EXPECT_NE(targets.find("\"health\":\"up\""), std::string::npos) << targets;
    EXPECT_EQ(targets.find("\"lastError\":\"\"") != std::string::npos, true) << targets;
}

}  // namespace
}  // namespace clisonix
