// Clisonix — resilience for outbound calls: circuit breakers, backoff with jitter.
//
// Every call that leaves the process (webhooks, MQTT publishes of notifications, the gateway's
// Redis rate-limit store) goes through
// a circuit_breaker, modelled on Opossum:
//   closed    calls go through; each outcome lands in a rolling window of `buckets` buckets
//             covering `rolling_window`. Once the window holds at least `volume_threshold`
//             calls and failures are >= `error_threshold_percentage` of them, it opens.
//   open      calls are refused at once (counted as "rejected", fn is not called) until
//             `reset_timeout` has passed since it opened; then it is half-open.
//   half_open exactly one trial call is let through at a time; its success closes the
//             breaker (the window starts empty), its failure opens it again for another
//             `reset_timeout`.
// Failures older than the window are forgotten, bucket by bucket.
//
//   resilience::breaker_registry breakers(opts);
//   auto r = resilience::call(breakers.get("channel:ops"), [&] { return post_webhook(); });
//   if (!r && r.error().code == "unavailable") ...   // "circuit open ..." when refused
//
// The registry exports, per endpoint name:
//   clisonix_circuit_breaker_state{endpoint}             0 closed, 1 open, 2 half-open
//   clisonix_circuit_breaker_calls_total{endpoint,outcome}  success | failure | rejected
//
// Thread safety: circuit_breaker, breaker_registry and backoff() may be used from any thread.
// Error codes: call() returns "unavailable" ("circuit open: <endpoint> ...") when refused;
// otherwise whatever fn returned.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "observe/observe.h"

namespace clisonix::resilience {

using clock = std::chrono::steady_clock;
// The time source; tests pass a fake one to step through transitions exactly.
using clock_fn = std::function<clock::time_point()>;

enum class breaker_state { closed = 0, open = 1, half_open = 2 };
std::string_view state_name(breaker_state s);  // "closed", "open", "half_open"

struct breaker_options {
    int error_threshold_percentage = 50;  // 1..100: failures/calls at which it opens
    std::chrono::milliseconds rolling_window{10'000};
    int buckets = 10;          // the window is forgotten one bucket (window/buckets) at a time
    int volume_threshold = 5;  // calls in the window before it may open at all
    std::chrono::milliseconds reset_timeout{30'000};
};

// Outcome counts inside the current rolling window.
struct window_stats {
    int64_t successes = 0;
    int64_t failures = 0;
    int64_t rejected = 0;
};

class circuit_breaker {
public:
    // `metrics`: when given, the state gauge and call counters for `name` are kept there.
    circuit_breaker(std::string name, breaker_options opts, clock_fn now = {},
                    metrics::registry* metrics = nullptr);
    circuit_breaker(const circuit_breaker&) = delete;
    circuit_breaker& operator=(const circuit_breaker&) = delete;

    const std::string& name() const { return _name; }

    // Asks to make one call now. True: the caller must report its outcome with
    // record_success() or record_failure() (in half-open it holds the single trial). False:
    // refused (open, or half-open with the trial still out); counted as rejected.
    bool try_acquire();
    void record_success();
    void record_failure();

    // The state now (an open breaker whose reset timeout passed reads as half-open).
    breaker_state state();
    // While open: how long until a trial is allowed; zero otherwise.
    std::chrono::milliseconds retry_in();
    window_stats stats();
    // Back to closed with an empty window (e.g. the endpoint's address changed).
    void reset();

private:
    struct bucket {
        int64_t index = -1;  // which slice of time it counts; stale ones are reset on use
        window_stats counts;
    };
    bucket& current(clock::time_point now);
    window_stats sum(clock::time_point now) const;
    void refresh(clock::time_point now);  // open -> half_open once the reset timeout passed
    void set_state(breaker_state s, clock::time_point now);

    std::string _name;
    breaker_options _opts;
    clock_fn _now;
    std::chrono::nanoseconds _bucket_len;
    std::mutex _mutex;
    breaker_state _state = breaker_state::closed;  // guarded by _mutex
    clock::time_point _opened_at{};                // guarded by _mutex
    bool _trial_out = false;                       // guarded by _mutex
    std::vector<bucket> _buckets;                  // guarded by _mutex
    metrics::gauge _state_gauge;
    metrics::counter _successes, _failures, _rejections;
};

// Breakers by endpoint name, created on first use with the registry's options. References
// stay valid for the registry's lifetime.
class breaker_registry {
public:
    explicit breaker_registry(breaker_options defaults, clock_fn now = {},
                              metrics::registry& metrics = metrics::global());
    circuit_breaker& get(std::string_view endpoint);
    // Every endpoint's state, by name.
    std::map<std::string, breaker_state> states();

private:
    breaker_options _defaults;
    clock_fn _now;
    metrics::registry& _metrics;
    std::mutex _mutex;
    std::map<std::string, std::unique_ptr<circuit_breaker>, std::less<>> _breakers;
};

// Exponential backoff with full jitter: a uniform draw from [0, min(cap, base * 2^(attempt-1))]
// for attempt 1, 2, 3 ... `unit_draw` in [0, 1) makes it deterministic for tests; without it
// a per-thread random generator is used.
std::chrono::milliseconds backoff_ceiling(int attempt, std::chrono::milliseconds base,
                                          std::chrono::milliseconds cap);
std::chrono::milliseconds backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap);
std::chrono::milliseconds backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap, double unit_draw);

// The error call() returns when the breaker refuses.
error circuit_open_error(const circuit_breaker& b);

// Runs `fn` (returning a result<T> or status) through the breaker: refused -> an
// "unavailable" error without calling fn; otherwise fn's result, recorded as success or
// failure. An exception from fn counts as a failure and propagates.
template <typename F>
auto call(circuit_breaker& b, F&& fn) -> std::invoke_result_t<F&> {
    if (!b.try_acquire()) return circuit_open_error(b);
    try {
        auto r = fn();
        if (r.ok())
            b.record_success();
        else
            b.record_failure();
        return r;
    } catch (...) {
        b.record_failure();
        throw;
    }
}

}  // namespace clisonix::resilience
