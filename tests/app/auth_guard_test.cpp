// Attacks on authentication and queries, against the real binary: failed logins must not
// stall the API, guesses spread over addresses are throttled per account, one query cannot
// pull everything, and a body is never read for a request whose credentials are refused.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::connection;
using testing::http_request;
using testing::http_response;
using testing::server_process;

std::string login_body(const std::string& user, const std::string& password) {
    return R"({"username":")" + user + R"(","password":")" + password + R"("})";
}

http_response login(uint16_t port, const std::string& user, const std::string& password,
                    std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: application/json");
    return http_request(port, "POST", "/api/v1/auth/login", login_body(user, password), headers);
}

std::chrono::milliseconds time_of(const std::function<void()>& f) {
    auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
}

boost::json::object error_of(const http_response& r) {
    return boost::json::parse(r.body).as_object().at("error").as_object();
}

// ---- 1. failed logins and the workers

TEST(auth_guard_test, failed_logins_do_not_stall_health_or_authenticated_requests) {
    // Two workers, as on the machine where 10 failed logins made /healthz take 5.9 s.
    server_process srv({"--set", "http.threads=2"});
    const std::string auth = "Authorization: Bearer " + srv.token();

    std::vector<int> statuses(16);
    std::vector<std::thread> attackers;
    for (size_t i = 0; i < statuses.size(); ++i)
        attackers.emplace_back([&, i] {
            statuses[i] =
                login(srv.port(), "nobody-" + std::to_string(i), "wrong-password-1").status;
        });
    std::this_thread::sleep_for(50ms);  // the logins are in the server now

    http_response health, me;
    auto health_time = time_of([&] { health = http_request(srv.port(), "GET", "/healthz"); });
    auto me_time =
        time_of([&] { me = http_request(srv.port(), "GET", "/api/v1/auth/me", {}, {auth}); });
    for (auto& t : attackers)
        t.join();

    EXPECT_EQ(health.status, 200);
    EXPECT_LT(health_time, 1000ms);
    EXPECT_EQ(me.status, 200);
    EXPECT_LT(me_time, 1000ms);
    for (int status : statuses)
        EXPECT_EQ(status, 401);  // each still gets its answer, after its delay
}

TEST(auth_guard_test, a_full_login_pool_answers_429_with_retry_after) {
    server_process srv({"--set", "auth.login_threads=1", "--set", "auth.login_queue=0", "--set",
                        "auth.argon2_memory_kib=65536", "--set", "auth.argon2_iterations=8"});
    std::vector<http_response> answers(12);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < answers.size(); ++i)
        clients.emplace_back(
            [&, i] { answers[i] = login(srv.port(), "user-" + std::to_string(i), "wrong-pw-12"); });
    for (auto& t : clients)
        t.join();
    int refused = 0, failed = 0;
    for (const auto& a : answers) {
        if (a.status == 429) {
            ++refused;
            EXPECT_EQ(a.header("retry-after"), "1");
            EXPECT_EQ(error_of(a).at("code").as_string(), "too_many_requests");
        } else {
            EXPECT_EQ(a.status, 401) << a.body;
            ++failed;
        }
    }
    EXPECT_GE(refused, 1);  // one hashes at a time, nothing waits: the others are refused
    EXPECT_GE(failed, 1);
}

TEST(auth_guard_test, guesses_at_one_account_from_many_addresses_are_throttled) {
    server_process srv({"--set", "gateway.trusted_proxies=127.0.0.1", "--set",
                        "auth.login_max_failures_per_account=6"});
    // One guess from each of six addresses: below the per-address lockout (5) every time.
    for (int i = 1; i <= 6; ++i) {
        auto r = login(srv.port(), "admin", "guess-number-" + std::to_string(i),
                       {"X-Forwarded-For: 203.0.113." + std::to_string(i)});
        EXPECT_EQ(r.status, 401) << i;
    }
    // The account is now locked for every address, even with the right password.
    auto r =
        login(srv.port(), "admin", testing::test_admin_password, {"X-Forwarded-For: 198.51.100.7"});
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_FALSE(r.header("retry-after").empty());
    EXPECT_NE(std::string(error_of(r).at("message").as_string()).find("for this account; try"),
              std::string::npos)
        << r.body;
    // Another account is not affected.
    auto other =
        login(srv.port(), "someone-else", "wrong-password-1", {"X-Forwarded-For: 198.51.100.7"});
    EXPECT_EQ(other.status, 401);
}

// ---- 2. the answer size of a query

TEST(auth_guard_test, a_raw_query_over_the_point_cap_is_refused_and_an_aggregate_answers) {
    // No anomaly or health series: the answer sizes below are those of the written points.
    server_process srv({"--set", "query.max_points=1000", "--set", "analytics.detector=off",
                        "--set", "analytics.health=false"});
    std::string lines;
    for (int i = 0; i < 1500; ++i)
        lines += "m,device=pump-1 temperature=" + std::to_string(20 + i % 7) + " " +
                 std::to_string(1764100000 + i) + "\n";
    ASSERT_EQ(srv.post("/api/v1/write?precision=s", lines).status, 204);

    // The whole history, as in the incident, and one day around the data.
    EXPECT_EQ(srv.get("/api/v1/query?measurement=m*&from=0").status, 400);
    const std::string range =
        "/api/v1/"
        "query?measurement=m*&metric=temperature&from=2025-11-25T00:00:00Z&to=2025-11-26T00:00:00Z";
    auto raw = srv.get(range);
    ASSERT_EQ(raw.status, 400) << raw.body.substr(0, 200);
    auto e = error_of(raw);
    EXPECT_EQ(e.at("code").as_string(), "invalid_argument");
    EXPECT_EQ(e.at("field").as_string(), "agg");
    EXPECT_EQ(e.at("message").as_string(),
              "agg: the query would return 1,500 raw points, more than the 1,000 one answer may "
              "hold; aggregate (agg=mean&step=1m), narrow the range (from, to) or the series, or "
              "page with limit");
    EXPECT_EQ(srv.get(range + "&format=csv").status, 400);

    auto mean = srv.get(range + "&agg=mean&step=1m");
    ASSERT_EQ(mean.status, 200) << mean.body;
    auto series = boost::json::parse(mean.body).at("series").as_array();
    ASSERT_EQ(series.size(), 1u);
    EXPECT_EQ(series[0].at("points").as_array().size(), 26u);  // 1500 s in 1-minute buckets

    auto page = srv.get(range + "&limit=1000");
    ASSERT_EQ(page.status, 200);
    EXPECT_EQ(boost::json::parse(page.body).at("series").at(0).at("points").as_array().size(),
              1000u);
}

// ---- 3. credentials before the body

// A request that announces a large body and never sends it: the answer must not wait for it.
http_response refused_without_body(uint16_t port, const std::string& target,
                                   const std::string& auth_line) {
    connection c(port);
    EXPECT_TRUE(c.connected());
    c.send("POST " + target + " HTTP/1.1\r\nHost: localhost\r\n" + auth_line +
           "Content-Type: application/json\r\nContent-Length: 8000000\r\n\r\n");
    auto r = c.read_response(3s);
    EXPECT_TRUE(c.closed_by_peer(5s));
    return r;
}

TEST(auth_guard_test, bad_credentials_are_refused_before_the_body_is_read) {
    server_process srv;
    auto bad = refused_without_body(srv.port(), "/api/v1/write",
                                    "Authorization: Bearer not-a-valid-token\r\n");
    EXPECT_EQ(bad.status, 401);
    EXPECT_EQ(error_of(bad).at("code").as_string(), "invalid_token");

    auto none = refused_without_body(srv.port(), "/api/v1/devices", "");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(error_of(none).at("code").as_string(), "unauthenticated");

    // A valid viewer on a route it may not use: 403, also without the body.
    ASSERT_EQ(srv.post("/api/v1/users",
                       R"({"username":"vera","password":"viewer-password-1","role":"viewer"})")
                  .status,
              201);
    auto session = login(srv.port(), "vera", "viewer-password-1");
    ASSERT_EQ(session.status, 200);
    std::string token(boost::json::parse(session.body).at("access_token").as_string());
    auto forbidden = refused_without_body(srv.port(), "/api/v1/devices",
                                          "Authorization: Bearer " + token + "\r\n");
    EXPECT_EQ(forbidden.status, 403);
    EXPECT_EQ(error_of(forbidden).at("code").as_string(), "forbidden");

    // Accepted credentials still get their body read and handled.
    EXPECT_EQ(srv.post("/api/v1/write?precision=s", "m,device=d1 v=1 1764100000").status, 204);
}

}  // namespace
}  // namespace clisonix
