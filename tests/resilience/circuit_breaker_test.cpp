// The circuit breaker on a fake clock: every transition at the exact moment it should
// happen, the minimum volume, the rolling window forgetting old failures, the metrics, and
// backoff with full jitter.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "resilience/resilience.h"

namespace clisonix::resilience {
namespace {

using namespace std::chrono_literals;

struct fake_clock {
    clock::time_point t = clock::time_point(1000h);
    clock_fn fn() {
        return [this] { return t; };
    }
    void advance(clock::duration d) { t += d; }
};

breaker_options opts() {
    breaker_options o;
    o.error_threshold_percentage = 50;
    o.rolling_window = 10s;
    o.buckets = 10;
    o.volume_threshold = 4;
    o.reset_timeout = 30s;
    return o;
}

void fail(circuit_breaker& b) {
    ASSERT_TRUE(b.try_acquire());
    b.record_failure();
}
void succeed(circuit_breaker& b) {
    ASSERT_TRUE(b.try_acquire());
    b.record_success();
}

TEST(circuit_breaker_test, opens_at_the_threshold_only_after_the_minimum_volume) {
    fake_clock c;
    circuit_breaker b("ep", opts(), c.fn());
    EXPECT_EQ(b.state(), breaker_state::closed);
    // Three failures out of three: 100 %, but below the volume of 4.
    fail(b);
    fail(b);
    fail(b);
    EXPECT_EQ(b.state(), breaker_state::closed);
    fail(b);  // the fourth call reaches the volume
    EXPECT_EQ(b.state(), breaker_state::open);
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.stats().rejected, 1);
    EXPECT_EQ(b.retry_in(), 30s);
}

TEST(circuit_breaker_test, error_rate_below_the_threshold_keeps_it_closed) {
    fake_clock c;
    circuit_breaker b("ep", opts(), c.fn());
    // 1 failure in 3 calls: 33 % < 50 %, even well past the volume.
    for (int i = 0; i < 4; ++i) {
        succeed(b);
        succeed(b);
        fail(b);
    }
    EXPECT_EQ(b.state(), breaker_state::closed);
    EXPECT_EQ(b.stats().failures, 4);
    EXPECT_EQ(b.stats().successes, 8);
    // Exactly 50 % opens: 8 successes, now 8 failures.
    for (int i = 0; i < 3; ++i)
        fail(b);
    EXPECT_EQ(b.state(), breaker_state::closed);
    fail(b);
    EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(circuit_breaker_test, half_open_after_the_reset_timeout_lets_exactly_one_trial_through) {
    fake_clock c;
    circuit_breaker b("ep", opts(), c.fn());
    for (int i = 0; i < 4; ++i)
        fail(b);
    ASSERT_EQ(b.state(), breaker_state::open);
    c.advance(30s - 1ms);
    EXPECT_EQ(b.state(), breaker_state::open);
    EXPECT_EQ(b.retry_in(), 1ms);
    EXPECT_FALSE(b.try_acquire());
    c.advance(1ms);
    EXPECT_EQ(b.state(), breaker_state::half_open);
    EXPECT_EQ(b.retry_in(), 0ms);
    EXPECT_TRUE(b.try_acquire());   // the trial
    EXPECT_FALSE(b.try_acquire());  // a second caller while the trial is out
    EXPECT_EQ(b.state(), breaker_state::half_open);
    b.record_success();
    EXPECT_EQ(b.state(), breaker_state::closed);
    // Closing starts from an empty window: one failure does not reopen it.
    EXPECT_EQ(b.stats().failures, 0);
    fail(b);
    EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(circuit_breaker_test, a_failed_trial_reopens_for_another_reset_timeout) {
    fake_clock c;
    circuit_breaker b("ep", opts(), c.fn());
    for (int i = 0; i < 4; ++i)
        fail(b);
    c.advance(30s);
    ASSERT_TRUE(b.try_acquire());
    c.advance(2s);  // the trial takes a while
    b.record_failure();
    EXPECT_EQ(b.state(), breaker_state::open);
    EXPECT_EQ(b.retry_in(), 30s);  // counted from the failed trial
    c.advance(29s);
    EXPECT_FALSE(b.try_acquire());
    c.advance(1s);
    EXPECT_EQ(b.state(), breaker_state::half_open);
}

TEST(circuit_breaker_test, the_rolling_window_forgets_old_failures_bucket_by_bucket) {
    fake_clock c;
    circuit_breaker b("ep", opts(), c.fn());
    fail(b);
    fail(b);
    fail(b);
    EXPECT_EQ(b.stats().failures, 3);
    // 10 s window of 1 s buckets: after 10 s the three failures are gone.
    c.advance(10s);
    EXPECT_EQ(b.stats().failures, 0);
    fail(b);  // 1 of 1 in the window: below the volume
    EXPECT_EQ(b.state(), breaker_state::closed);
    // Within the window they add up: 9 s later the first is still counted.
    c.advance(9s);
    fail(b);
    fail(b);
    EXPECT_EQ(b.stats().failures, 3);
    c.advance(1s);  // the first one's bucket leaves the window
    EXPECT_EQ(b.stats().failures, 2);
    fail(b);
    EXPECT_EQ(b.state(), breaker_state::closed);
    fail(b);  // 4 failures inside one window
    EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(circuit_breaker_test, call_refuses_without_calling_when_open) {
    fake_clock c;
    circuit_breaker b("channel:ops", opts(), c.fn());
    int calls = 0;
    auto failing = [&]() -> status {
        ++calls;
        return make_error("unavailable", "receiver said 500");
    };
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(call(b, failing).error().message, "receiver said 500");
    EXPECT_EQ(calls, 4);
    auto refused = call(b, failing);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "unavailable");
    EXPECT_TRUE(refused.error().message.starts_with("circuit open: channel:ops"))
        << refused.error().message;
    EXPECT_EQ(calls, 4);
    c.advance(30s);
    auto value = call(b, [&]() -> result<int> { return 7; });
    ASSERT_TRUE(value.ok());
    EXPECT_EQ(*value, 7);
    EXPECT_EQ(b.state(), breaker_state::closed);
    // An exception is a failure and goes on to the caller.
    EXPECT_THROW(call(b, []() -> status { throw std::runtime_error("boom"); }), std::runtime_error);
    EXPECT_EQ(b.stats().failures, 1);
}

TEST(circuit_breaker_test, registry_exports_state_gauge_and_call_counters) {
    fake_clock c;
    metrics::registry m;
    breaker_registry reg(opts(), c.fn(), m);
    auto& b = reg.get("channel:ops");
    EXPECT_EQ(&b, &reg.get("channel:ops"));
    auto has = [&](const std::string& line) {
        return m.expose().find(line + "\n") != std::string::npos;
    };
    EXPECT_TRUE(has("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 0")) << m.expose();
    for (int i = 0; i < 4; ++i)
        fail(b);
    EXPECT_FALSE(b.try_acquire());
    EXPECT_TRUE(has("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 1")) << m.expose();
    EXPECT_TRUE(
        has("clisonix_circuit_breaker_calls_total{endpoint=\"channel:ops\",outcome=\"failure\"} 4"))
        << m.expose();
    EXPECT_TRUE(has(
        "clisonix_circuit_breaker_calls_total{endpoint=\"channel:ops\",outcome=\"rejected\"} 1"))
        << m.expose();
    c.advance(30s);
    EXPECT_EQ(reg.states().at("channel:ops"), breaker_state::half_open);
    EXPECT_TRUE(has("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 2")) << m.expose();
    succeed(b);
    EXPECT_TRUE(has("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 0")) << m.expose();
    EXPECT_TRUE(
        has("clisonix_circuit_breaker_calls_total{endpoint=\"channel:ops\",outcome=\"success\"} 1"))
        << m.expose();
}

TEST(circuit_breaker_test, concurrent_callers_in_half_open_get_one_trial) {
    fake_clock c;
    circuit_breaker b("ep", opts(), c.fn());
    for (int i = 0; i < 4; ++i)
        fail(b);
    c.advance(30s);
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&] {
            for (int k = 0; k < 100; ++k)
                if (b.try_acquire()) granted++;
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(granted.load(), 1);
    EXPECT_EQ(b.stats().rejected, 8 * 100 - 1);
}

TEST(backoff_test, exponential_ceiling_with_cap_and_full_jitter) {
    EXPECT_EQ(backoff_ceiling(1, 100ms, 10s), 100ms);
    EXPECT_EQ(backoff_ceiling(2, 100ms, 10s), 200ms);
    EXPECT_EQ(backoff_ceiling(5, 100ms, 10s), 1600ms);
    EXPECT_EQ(backoff_ceiling(8, 100ms, 10s), 10s);
    EXPECT_EQ(backoff_ceiling(1000, 100ms, 10s), 10s);
    EXPECT_EQ(backoff(3, 100ms, 10s, 0.0), 0ms);
    EXPECT_EQ(backoff(3, 100ms, 10s, 0.5), 200ms);
    EXPECT_EQ(backoff(3, 100ms, 10s, 0.999999), 400ms);
    // Random draws stay within [0, ceiling] and are not all the same.
    std::set<int64_t> seen;
    for (int i = 0; i < 200; ++i) {
        auto d = backoff(4, 100ms, 10s);
        EXPECT_GE(d, 0ms);
        EXPECT_LE(d, 800ms);
        seen.insert(d.count());
    }
    EXPECT_GT(seen.size(), 20u);
}

}  // namespace
}  // namespace clisonix::resilience
