// Two Clisonix processes behind one address share their rate limits through a real Redis.
#include <gtest/gtest.h>

#include <thread>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::process;
using testing::server_process;

// A real Redis on a free loopback port, without persistence, stopped with the test.
struct redis_server {
    testing::temp_dir dir;
    uint16_t port = testing::free_port();
    process proc{{"/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                  "--save", "", "--appendonly", "no", "--dir", dir.str()}};
    redis_server() {
        for (int i = 0; i < 100 && !testing::connection(port).connected(); ++i)
            std::this_thread::sleep_for(50ms);
    }
    std::string url_setting() const {
        return "redis.url=redis://127.0.0.1:" + std::to_string(port);
    }
};

TEST(cluster_test, two_processes_share_one_login_limit_through_redis) {
    redis_server redis;
    std::vector<std::string> shared = {"--set", redis.url_setting(), "--set",
                                       "gateway.login_limit=6"};
    server_process a(shared), b(shared);

    // Another made-up account each time: the per-address rate limit is what is counted here,
    // not the lockout of one account (the next test).
    int attempt = 0;
    auto login = [&attempt](uint16_t port) {
        return http_request(port, "POST", "/api/v1/auth/login",
                            R"({"username":"nobody-)" + std::to_string(++attempt) +
                                R"(","password":"wrong-password-123"})",
                            {"Content-Type: application/json"});
    };
    // Six attempts spread over both processes use up the one limit...
    for (int i = 0; i < 3; ++i) {
        EXPECT_NE(login(a.port()).status, 429);
        EXPECT_NE(login(b.port()).status, 429);
    }
    // ...so the seventh is refused, whichever process it reaches.
    auto refused = login(b.port());
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_EQ(refused.header("ratelimit-limit"), "6");
    EXPECT_EQ(login(a.port()).status, 429);
}

// Failed logins count on every node: four wrong passwords for one account from one address,
// spread over two processes, lock it on both, and the right password is then refused on
// both until the lockout ends.
TEST(cluster_test, failed_logins_spread_over_two_processes_lock_the_account_on_both) {
    redis_server redis;
    std::vector<std::string> shared = {"--set", redis.url_setting(), "--set",
                                       "auth.login_max_failures=4"};
    server_process a(shared), b(shared);
    auto login = [](uint16_t port, const std::string& password) {
        return http_request(port, "POST", "/api/v1/auth/login",
                            R"({"username":"admin","password":")" + password + "\"}",
                            {"Content-Type: application/json"});
    };
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(login(a.port(), "wrong-password-123").status, 401);
        auto r = login(b.port(), "wrong-password-123");
        if (i == 0) {
            EXPECT_EQ(r.status, 401) << r.body;
        }
    }
    for (auto port : {a.port(), b.port()}) {
        auto refused = login(port, testing::test_admin_password);
        EXPECT_EQ(refused.status, 429) << refused.body;
        EXPECT_NE(refused.body.find("Too many failed logins for this account from this address"),
                  std::string::npos)
            << refused.body;
        EXPECT_FALSE(refused.header("retry-after").empty());
    }
}

}  // namespace
}  // namespace clisonix
