// Rate limits in this process: headers, the 429, policies by route group and key.
#include <gtest/gtest.h>

#include <thread>

#include "gateway/gateway.h"
#include "gateway/test_server.h"

namespace clisonix::gateway {
namespace {

using clisonix::testing::http_request;
using namespace std::chrono_literals;

std::shared_ptr<rate_limiter> local_limiter(size_t max_keys = 100'000) {
    limiter_options o;
    o.max_local_keys = max_keys;
    auto l = rate_limiter::create(o);
    EXPECT_TRUE(l.ok());
    return *l;
}

http::router api_routes() {
    http::router routes;
    auto ok = [](http::request&) { return http::response::json(200, R"({"ok":true})"); };
    // Marked as auth marks them: the handler checks a password or refresh token.
    routes.add({http::method::post,
                "/api/v1/auth/login",
                "Login",
                http::permission::open,
                ok,
                {},
                {},
                false,
                /*checks_credentials=*/true});
    routes.add({http::method::post,
                "/api/v1/auth/refresh",
                "Refresh",
                http::permission::open,
                ok,
                {},
                {},
                false,
                /*checks_credentials=*/true});
    routes.add({http::method::get, "/api/v1/devices", "Devices", http::permission::read, ok});
    routes.add({http::method::post, "/api/v1/{device_token}/telemetry", "Telemetry",
                http::permission::device, ok});
    routes.add({http::method::get, "/healthz", "Health", http::permission::open, ok});
    return routes;
}

settings small_limits() {
    settings s;
    s.login_limit = 3;
    s.login_window = 15min;
    s.api_limit = 2;
    s.device_limit = 4;
    s.trusted_proxies = *network_list::parse("127.0.0.1");
    return s;
}

TEST(rate_limit, login_counts_per_client_address_and_answers_429_with_retry_after) {
    auto routes = api_routes();
    auto s = small_limits();
    auto limiter = local_limiter();
    testing::test_server srv(
        testing::small_options(), routes,
        {client_address(s.trusted_proxies), rate_limit(limiter, login_policy(s))});
    const std::vector<std::string> client = {"X-Forwarded-For: 198.51.100.1"};
    for (int i = 0; i < 3; ++i) {
        // Login and refresh share one counter.
        auto r = http_request(srv.port(), "POST",
                              i == 1 ? "/api/v1/auth/refresh" : "/api/v1/auth/login", "{}", client);
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("ratelimit-limit"), "3");
        EXPECT_EQ(r.header("ratelimit-remaining"), std::to_string(2 - i));
        EXPECT_EQ(r.header("ratelimit-reset"), "900");  // whole seconds, rounded up
        EXPECT_EQ(r.headers.count("retry-after"), 0u);
    }
    auto refused = http_request(srv.port(), "POST", "/api/v1/auth/login", "{}", client);
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.header("retry-after"), "900");
    EXPECT_EQ(refused.header("ratelimit-limit"), "3");
    EXPECT_EQ(refused.header("ratelimit-remaining"), "0");
    EXPECT_EQ(refused.header("ratelimit-reset"), "900");
    EXPECT_EQ(
        refused.body,
        R"({"error":{"code":"too_many_requests","message":"Too many requests: the limit is 3 per 15m; retry in 900 s"}})");
    // Another client is not affected, nor are other routes.
    auto other = http_request(srv.port(), "POST", "/api/v1/auth/login", "{}",
                              {"X-Forwarded-For: 198.51.100.2"});
    EXPECT_EQ(other.status, 200);
    EXPECT_EQ(other.header("ratelimit-remaining"), "2");
    auto devices = http_request(srv.port(), "GET", "/api/v1/devices", {}, client);
    EXPECT_EQ(devices.status, 200);
    EXPECT_EQ(devices.headers.count("ratelimit-limit"), 0u);
}

TEST(rate_limit, login_policy_follows_the_route_table_not_the_path) {
    // The policy counts the routes marked checks_credentials, whatever their path, and no
    // other route, even one at the path auth's login happens to use.
    http::router routes;
    auto ok = [](http::request&) { return http::response::json(200, R"({"ok":true})"); };
    routes.add({http::method::post,
                "/api/v1/sso/exchange",
                "Trade a secret for tokens",
                http::permission::open,
                ok,
                {},
                {},
                false,
                /*checks_credentials=*/true});
    routes.add({http::method::post, "/api/v1/auth/login", "Unmarked", http::permission::open, ok});
    auto s = small_limits();
    auto limiter = local_limiter();
    testing::test_server srv(testing::small_options(), routes,
                             {rate_limit(limiter, login_policy(s))});
    for (int i = 0; i < 3; ++i) {
        auto r = http_request(srv.port(), "POST", "/api/v1/sso/exchange", "{}");
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("ratelimit-remaining"), std::to_string(2 - i));
    }
    auto refused = http_request(srv.port(), "POST", "/api/v1/sso/exchange", "{}");
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.header("retry-after"), "900");
    for (int i = 0; i < 5; ++i) {
        auto unmarked = http_request(srv.port(), "POST", "/api/v1/auth/login", "{}");
        EXPECT_EQ(unmarked.status, 200);
        EXPECT_EQ(unmarked.headers.count("ratelimit-limit"), 0u);
    }
}

TEST(rate_limit, api_counts_per_the_key_function_and_skips_login_telemetry_and_non_api) {
    auto routes = api_routes();
    auto s = small_limits();
    auto limiter = local_limiter();
    // The hook the principal plugs into: here a header stands in for it.
    key_function by_user = [](const http::request& req) {
        return std::string(req.header("x-test-user"));
    };
    testing::test_server srv(testing::small_options(), routes,
                             {rate_limit(limiter, api_policy(s, by_user))});
    auto get = [&](std::string_view target, std::string user) {
        return http_request(srv.port(), "GET", target, {}, {"X-Test-User: " + user});
    };
    EXPECT_EQ(get("/api/v1/devices", "ann").status, 200);
    EXPECT_EQ(get("/api/v1/devices", "ann").header("ratelimit-remaining"), "0");
    EXPECT_EQ(get("/api/v1/devices", "ann").status, 429);
    EXPECT_EQ(get("/api/v1/devices", "bob").status, 200);
    // An unmatched API path counts too (a scan costs the scanner).
    EXPECT_EQ(get("/api/v1/nothing-here", "bob").header("ratelimit-remaining"), "0");
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(get("/healthz", "ann").status, 200);
        EXPECT_EQ(get("/healthz", "ann").headers.count("ratelimit-limit"), 0u);
    }
    auto login = http_request(srv.port(), "POST", "/api/v1/auth/login", "{}", {"X-Test-User: ann"});
    EXPECT_EQ(login.status, 200);
    EXPECT_EQ(login.headers.count("ratelimit-limit"), 0u);
    auto telemetry =
        http_request(srv.port(), "POST", "/api/v1/tok/telemetry", "{}", {"X-Test-User: ann"});
    EXPECT_EQ(telemetry.status, 200);
    EXPECT_EQ(telemetry.headers.count("ratelimit-limit"), 0u);
    // An empty key lets the request through uncounted.
    EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/devices").status, 200);
    EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/devices").headers.count("ratelimit-limit"),
              0u);
}

TEST(rate_limit, telemetry_counts_per_device) {
    auto routes = api_routes();
    auto s = small_limits();
    auto limiter = local_limiter();
    key_function by_device = [](const http::request& req) {
        return "device:" + std::string(req.path_param("device_token"));
    };
    testing::test_server srv(testing::small_options(), routes,
                             {rate_limit(limiter, device_policy(s, by_device))});
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(http_request(srv.port(), "POST", "/api/v1/pump1/telemetry", "{}").status, 200);
    auto refused = http_request(srv.port(), "POST", "/api/v1/pump1/telemetry", "{}");
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.header("retry-after"), "60");
    EXPECT_EQ(http_request(srv.port(), "POST", "/api/v1/pump2/telemetry", "{}").status, 200);
    EXPECT_EQ(http_request(srv.port(), "GET", "/api/v1/devices").headers.count("ratelimit-limit"),
              0u);
}

TEST(rate_limiter, a_window_starts_afresh_after_it_ends) {
    auto limiter = local_limiter();
    EXPECT_TRUE(limiter->hit("k", 2, 300ms).allowed);
    EXPECT_TRUE(limiter->hit("k", 2, 300ms).allowed);
    auto refused = limiter->hit("k", 2, 300ms);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.remaining, 0);
    EXPECT_GT(refused.reset.count(), 0);
    EXPECT_LE(refused.reset.count(), 300);
    std::this_thread::sleep_for(400ms);
    auto again = limiter->hit("k", 2, 300ms);
    EXPECT_TRUE(again.allowed);
    EXPECT_EQ(again.remaining, 1);
    EXPECT_FALSE(limiter->shared());
}

TEST(rate_limiter, memory_stays_bounded_and_live_counters_keep_counting) {
    // 64 keys in all: a flood of distinct keys evicts, but a key being hit keeps its count
    // as long as it is not the oldest window.
    auto limiter = local_limiter(64);
    EXPECT_TRUE(limiter->hit("steady", 1000, 10min).allowed);
    for (int i = 0; i < 20'000; ++i)
        limiter->hit("flood-" + std::to_string(i), 5, 10min);
    // Every distinct key got a fresh count of 1, never a stale one.
    auto fresh = limiter->hit("flood-new", 5, 10min);
    EXPECT_EQ(fresh.remaining, 4);
    auto flooded = limiter->hit("flood-19999", 5, 10min);
    EXPECT_EQ(flooded.remaining, 3);
}

TEST(rate_limiter, concurrent_hits_are_all_counted) {
    auto limiter = local_limiter();
    std::vector<std::thread> threads;
    std::atomic<int> allowed{0};
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (limiter->hit("shared", 5000, 10min).allowed) ++allowed;
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(allowed.load(), 5000);
}

}  // namespace
}  // namespace clisonix::gateway
