// The circuit breaker, its registry and the backoff helper.
#include <algorithm>
#include <cmath>
#include <random>

#include "resilience/resilience.h"

namespace clisonix::resilience {

std::string_view state_name(breaker_state s) {
    switch (s) {
        case breaker_state::closed:
            return "closed";
        case breaker_state::open:
            return "open";
        case breaker_state::half_open:
            return "half_open";
    }
    return "closed";
}

namespace {

breaker_options sane(breaker_options o) {
    o.error_threshold_percentage = std::clamp(o.error_threshold_percentage, 1, 100);
    o.buckets = std::max(1, o.buckets);
    o.volume_threshold = std::max(1, o.volume_threshold);
    o.rolling_window = std::max(o.rolling_window, std::chrono::milliseconds(o.buckets));
    o.reset_timeout = std::max(o.reset_timeout, std::chrono::milliseconds(0));
    return o;
}

const std::vector<std::string> endpoint_label{"endpoint"};
const std::vector<std::string> outcome_labels{"endpoint", "outcome"};

}  // namespace

circuit_breaker::circuit_breaker(std::string name, breaker_options opts, clock_fn now,
                                 metrics::registry* m)
    : _name(std::move(name)),
      _opts(sane(opts)),
      _now(now ? std::move(now) : clock_fn([] { return clock::now(); })),
      _bucket_len(std::chrono::duration_cast<std::chrono::nanoseconds>(_opts.rolling_window) /
                  _opts.buckets),
      _buckets(static_cast<size_t>(_opts.buckets)) {
    if (m) {
        _state_gauge = m->get_gauge("clisonix_circuit_breaker_state",
                                    "Circuit breaker state: 0 closed, 1 open, 2 half-open",
                                    endpoint_label, {_name});
        const char* help = "Calls through a circuit breaker by outcome";
        _successes = m->get_counter("clisonix_circuit_breaker_calls_total", help, outcome_labels,
                                    {_name, "success"});
        _failures = m->get_counter("clisonix_circuit_breaker_calls_total", help, outcome_labels,
                                   {_name, "failure"});
        _rejections = m->get_counter("clisonix_circuit_breaker_calls_total", help, outcome_labels,
                                     {_name, "rejected"});
        _state_gauge.set(0);
    }
}

circuit_breaker::bucket& circuit_breaker::current(clock::time_point now) {
    const int64_t index = now.time_since_epoch() / _bucket_len;
    bucket& b = _buckets[static_cast<size_t>(index % static_cast<int64_t>(_buckets.size()))];
    if (b.index != index) {
        b.index = index;
        b.counts = {};
    }
    return b;
}

window_stats circuit_breaker::sum(clock::time_point now) const {
    const int64_t index = now.time_since_epoch() / _bucket_len;
    const int64_t oldest = index - static_cast<int64_t>(_buckets.size()) + 1;
    window_stats s;
    for (const auto& b : _buckets) {
        if (b.index < oldest || b.index > index) continue;
        s.successes += b.counts.successes;
        s.failures += b.counts.failures;
        s.rejected += b.counts.rejected;
    }
    return s;
}

void circuit_breaker::set_state(breaker_state s, clock::time_point now) {
    if (s == breaker_state::open) _opened_at = now;
    if (s == _state) return;
    const breaker_state previous = _state;
    _state = s;
    _trial_out = false;
    _state_gauge.set(static_cast<double>(static_cast<int>(s)));
    if (s == breaker_state::closed) {
        for (auto& b : _buckets)
            b = bucket{};
    }
    // While an endpoint stays down the breaker cycles open -> half-open -> open once per reset
    // timeout; only the edges an operator acts on (it went down, it came back) are info.
    const bool cycling = s == breaker_state::half_open ||
                         (s == breaker_state::open && previous == breaker_state::half_open);
    log::write(cycling ? log::level::debug : log::level::info, "circuit breaker state",
               {{"endpoint", _name}, {"state", state_name(s)}});
}

void circuit_breaker::refresh(clock::time_point now) {
    if (_state == breaker_state::open && now - _opened_at >= _opts.reset_timeout)
        set_state(breaker_state::half_open, now);
}

bool circuit_breaker::try_acquire() {
    std::lock_guard lock(_mutex);
    const auto now = _now();
    refresh(now);
    if (_state == breaker_state::closed) return true;
    if (_state == breaker_state::half_open && !_trial_out) {
        _trial_out = true;
        return true;
    }
    current(now).counts.rejected++;
    _rejections.inc();
    return false;
}

void circuit_breaker::record_success() {
    std::lock_guard lock(_mutex);
    const auto now = _now();
    _successes.inc();
    refresh(now);
    if (_state == breaker_state::half_open) {
        set_state(breaker_state::closed, now);
        return;
    }
    current(now).counts.successes++;
}

void circuit_breaker::record_failure() {
    std::lock_guard lock(_mutex);
    const auto now = _now();
    _failures.inc();
    refresh(now);
    if (_state == breaker_state::half_open) {
        set_state(breaker_state::open, now);
        return;
    }
    current(now).counts.failures++;
    if (_state != breaker_state::closed) return;
    const auto s = sum(now);
    const int64_t calls = s.successes + s.failures;
    if (calls >= _opts.volume_threshold &&
        s.failures * 100 >= static_cast<int64_t>(_opts.error_threshold_percentage) * calls)
        set_state(breaker_state::open, now);
}

breaker_state circuit_breaker::state() {
    std::lock_guard lock(_mutex);
    refresh(_now());
    return _state;
}

std::chrono::milliseconds circuit_breaker::retry_in() {
    std::lock_guard lock(_mutex);
    const auto now = _now();
    refresh(now);
    if (_state != breaker_state::open) return std::chrono::milliseconds(0);
    auto left = _opened_at + _opts.reset_timeout - now;
    // Rounded up, so that a caller sleeping this long finds the breaker half-open.
    return std::chrono::ceil<std::chrono::milliseconds>(left);
}

window_stats circuit_breaker::stats() {
    std::lock_guard lock(_mutex);
    return sum(_now());
}

void circuit_breaker::reset() {
    std::lock_guard lock(_mutex);
    set_state(breaker_state::closed, _now());
}

breaker_registry::breaker_registry(breaker_options defaults, clock_fn now, metrics::registry& m)
    : _defaults(defaults), _now(std::move(now)), _metrics(m) {}

circuit_breaker& breaker_registry::get(std::string_view endpoint) {
    std::lock_guard lock(_mutex);
    auto it = _breakers.find(endpoint);
    if (it == _breakers.end()) {
        it = _breakers
                 .emplace(std::string(endpoint),
                          std::make_unique<circuit_breaker>(std::string(endpoint), _defaults, _now,
                                                            &_metrics))
                 .first;
    }
    return *it->second;
}

std::map<std::string, breaker_state> breaker_registry::states() {
    std::vector<circuit_breaker*> all;
    {
        std::lock_guard lock(_mutex);
        for (auto& [name, b] : _breakers)
            all.push_back(b.get());
    }
    std::map<std::string, breaker_state> out;
    for (auto* b : all)
        out.emplace(b->name(), b->state());
    return out;
}

std::chrono::milliseconds backoff_ceiling(int attempt, std::chrono::milliseconds base,
                                          std::chrono::milliseconds cap) {
    if (attempt < 1) attempt = 1;
    if (base.count() <= 0 || cap.count() <= 0) return std::chrono::milliseconds(0);
    // Doubling stops once past the cap, so that large attempt numbers cannot overflow.
    int64_t ceiling = base.count();
    for (int i = 1; i < attempt && ceiling < cap.count(); ++i)
        ceiling *= 2;
    return std::chrono::milliseconds(std::min(ceiling, static_cast<int64_t>(cap.count())));
}

std::chrono::milliseconds backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap, double unit_draw) {
    unit_draw = std::clamp(unit_draw, 0.0, 1.0);
    const auto ceiling = backoff_ceiling(attempt, base, cap).count();
    return std::chrono::milliseconds(
        std::min<int64_t>(ceiling, static_cast<int64_t>(std::floor(unit_draw * (ceiling + 1)))));
}

std::chrono::milliseconds backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> draw(0.0, 1.0);
    return backoff(attempt, base, cap, draw(rng));
}

error circuit_open_error(const circuit_breaker& b) {
    return make_error("unavailable",
                      "circuit open: " + b.name() +
                          " failed too often recently; calls are refused until a trial succeeds");
}

}  // namespace clisonix::resilience
