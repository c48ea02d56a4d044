// Rate limits shared through a real redis-server, and the fallback while it is away.
#include <gtest/gtest.h>

#include <thread>

#include "gateway/gateway.h"
#include "gateway/test_server.h"
#include "observe/observe.h"

namespace clisonix::gateway {
namespace {

using clisonix::testing::http_request;
using namespace std::chrono_literals;

// redis-server on a free loopback port, without persistence; stopped on destruction.
class redis_server {
public:
    explicit redis_server(uint16_t port = clisonix::testing::free_port()) : _port(port) { start(); }
    void start() {
        _proc = std::make_unique<clisonix::testing::process>(
            std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(_port),
                                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"});
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            clisonix::testing::connection c(_port);
            if (c.connected() && c.send("PING\r\n")) {
                auto r = c.read_response(500ms);  // not HTTP: just wait for any bytes
                (void)r;
                return;
            }
            std::this_thread::sleep_for(50ms);
        }
        ADD_FAILURE() << "redis-server did not start: " << _proc->err() << _proc->out();
    }
    void stop() {
        _proc->signal(SIGKILL);
        _proc->wait(5s);
    }
    uint16_t port() const { return _port; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(_port); }

private:
    uint16_t _port;
    std::unique_ptr<clisonix::testing::process> _proc;
};

http::router login_route() {
    http::router routes;
    routes.add({http::method::post,
                "/api/v1/auth/login",
                "Login",
                http::permission::open,
                [](http::request&) { return http::response::json(200, R"({"ok":true})"); },
                {},
                {},
                false,
                /*checks_credentials=*/true});
    return routes;
}

std::shared_ptr<rate_limiter> redis_limiter(const std::string& url, metrics::registry& reg) {
    limiter_options o;
    o.redis_url = url;
    o.registry = &reg;
    o.probe_interval = 100ms;
    auto l = rate_limiter::create(o);
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().message);
    return l.ok() ? *l : nullptr;
}

std::string gauge_line(const metrics::registry& reg) {
    auto text = reg.expose();
    auto at = text.find("\nclisonix_ratelimit_redis_up ");
    if (at == std::string::npos) return "<absent>";
    auto end = text.find('\n', at + 1);
    return text.substr(at + 1, end - at - 1);
}

TEST(redis_rate_limit, two_servers_sharing_one_redis_share_one_limit) {
    redis_server redis;
    settings s;
    s.login_limit = 5;
    auto routes = login_route();
    metrics::registry reg_a, reg_b;
    auto limiter_a = redis_limiter(redis.url(), reg_a);
    auto limiter_b = redis_limiter(redis.url(), reg_b);
    ASSERT_TRUE(limiter_a && limiter_b);
    EXPECT_TRUE(limiter_a->shared());
    testing::test_server a(testing::small_options(), routes,
                           {rate_limit(limiter_a, login_policy(s))});
    testing::test_server b(testing::small_options(), routes,
                           {rate_limit(limiter_b, login_policy(s))});
    // Alternating between the two nodes: one counter.
    for (int i = 0; i < 5; ++i) {
        auto r = http_request(i % 2 ? b.port() : a.port(), "POST", "/api/v1/auth/login", "{}");
        EXPECT_EQ(r.status, 200) << i;
        EXPECT_EQ(r.header("ratelimit-remaining"), std::to_string(4 - i)) << i;
        EXPECT_EQ(r.header("ratelimit-reset"), "900") << i;
    }
    auto on_a = http_request(a.port(), "POST", "/api/v1/auth/login", "{}");
    auto on_b = http_request(b.port(), "POST", "/api/v1/auth/login", "{}");
    EXPECT_EQ(on_a.status, 429);
    EXPECT_EQ(on_b.status, 429);
    EXPECT_EQ(on_b.header("retry-after"), "900");
    EXPECT_EQ(gauge_line(reg_a), "clisonix_ratelimit_redis_up 1");
}

TEST(redis_rate_limit, falls_back_to_the_local_limiter_while_redis_is_away_and_returns) {
    clisonix::testing::temp_dir logs;
    log::init({(logs.path() / "logs").string(), 0, log::level::info, false});
    redis_server redis;
    metrics::registry reg;
    auto limiter = redis_limiter(redis.url(), reg);
    ASSERT_TRUE(limiter);
    EXPECT_EQ(limiter->hit("k", 3, 10min).remaining, 2);
    EXPECT_EQ(limiter->hit("k", 3, 10min).remaining, 1);
    EXPECT_EQ(gauge_line(reg), "clisonix_ratelimit_redis_up 1");

    redis.stop();
    // The first hit after Redis went away is counted locally: a fresh local window.
    EXPECT_EQ(limiter->hit("k", 3, 10min).remaining, 2);
    EXPECT_EQ(limiter->hit("k", 3, 10min).remaining, 1);
    EXPECT_EQ(limiter->hit("k", 3, 10min).remaining, 0);
    EXPECT_FALSE(limiter->hit("k", 3, 10min).allowed);
    EXPECT_FALSE(limiter->shared());
    EXPECT_EQ(gauge_line(reg), "clisonix_ratelimit_redis_up 0");
    // Behind the circuit breaker "redis": not closed (open, or half-open once due a trial).
    const std::string breaker_closed = "\nclisonix_circuit_breaker_state{endpoint=\"redis\"} 0\n";
    EXPECT_EQ(reg.expose().find(breaker_closed), std::string::npos) << reg.expose();

    redis.start();  // same port, empty: the shared counter starts again
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!limiter->shared() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(limiter->shared());
    EXPECT_EQ(gauge_line(reg), "clisonix_ratelimit_redis_up 1");
    EXPECT_NE(reg.expose().find(breaker_closed), std::string::npos) << reg.expose();
    EXPECT_EQ(limiter->hit("k", 3, 10min).remaining, 2);

    log::shutdown();
    auto text = clisonix::testing::read_logs(logs.path());
    auto count = [&](std::string_view needle) {
        size_t n = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
            ++n;
        return n;
    };
    // Once per transition, however many requests saw it.
    EXPECT_EQ(count("rate limits: Redis unreachable, counting on this node alone"), 1u) << text;
    EXPECT_EQ(count("rate limits: Redis reachable, counters shared again"), 1u) << text;
}

TEST(redis_rate_limit, an_unreachable_redis_at_start_is_not_fatal) {
    metrics::registry reg;
    auto limiter =
        redis_limiter("redis://127.0.0.1:" + std::to_string(clisonix::testing::free_port()), reg);
    ASSERT_TRUE(limiter);
    EXPECT_FALSE(limiter->shared());
    EXPECT_EQ(gauge_line(reg), "clisonix_ratelimit_redis_up 0");
    EXPECT_TRUE(limiter->hit("k", 1, 1min).allowed);
    EXPECT_FALSE(limiter->hit("k", 1, 1min).allowed);
}

TEST(redis_rate_limit, a_malformed_url_is_a_config_error) {
    for (std::string url :
         {"http://127.0.0.1", "redis://", "redis://host:99999", "redis://host/x"}) {
        limiter_options o;
        o.redis_url = url;
        auto l = rate_limiter::create(o);
        ASSERT_FALSE(l.ok()) << url;
        EXPECT_EQ(l.error().code, "invalid_config");
        EXPECT_EQ(l.error().field, "redis.url");
    }
}

}  // namespace
}  // namespace clisonix::gateway
