// Rate limits: fixed windows counted in this process or in Redis, with a fallback from the
// one to the other while Redis is away, and the policies that decide what is counted.
#include <array>
#include <condition_variable>
#include <limits>
#include <thread>
#include <unordered_map>

#include "gateway/gateway.h"
#include "gateway/redis_store.h"
#include "observe/observe.h"
#include "resilience/resilience.h"

namespace clisonix::gateway {
namespace {

using clock = std::chrono::steady_clock;

// Counters in memory, split into shards so that workers rarely wait on one lock. Memory
// is bounded: expired windows are swept as keys arrive, and when a shard is full of live
// windows the one closest to its end makes room (its client gets a fresh window, which
// only a flood of distinct keys can cause).
class local_store {
public:
    explicit local_store(size_t max_keys) : _per_shard(std::max<size_t>(1, max_keys / shards)) {}

    limit_decision hit(std::string_view key, int64_t limit, std::chrono::milliseconds window) {
        auto now = clock::now();
        auto& s = _shards[std::hash<std::string_view>{}(key) % shards];
        std::lock_guard lock(s.mutex);
        std::string k(key);
        auto it = s.counters.find(k);
        if (it == s.counters.end()) {
            if (++s.inserts % 1024 == 0 || s.counters.size() >= _per_shard) sweep(s, now);
            if (s.counters.size() >= _per_shard) evict_one(s);
            it = s.counters.emplace(std::move(k), counter{0, now + window}).first;
        } else if (it->second.ends <= now) {
            it->second = counter{0, now + window};
        }
        auto& c = it->second;
        ++c.count;
        limit_decision d;
        d.limit = limit;
        d.allowed = c.count <= limit;
        d.remaining = std::max<int64_t>(0, limit - c.count);
        d.reset = std::chrono::duration_cast<std::chrono::milliseconds>(c.ends - now);
        return d;
    }

private:
    static constexpr size_t shards = 32;
    struct counter {
        int64_t count;
        clock::time_point ends;
    };
    struct shard {
        std::mutex mutex;
        std::unordered_map<std::string, counter> counters;  // guarded by mutex
        uint64_t inserts = 0;
    };

    static void sweep(shard& s, clock::time_point now) {
        std::erase_if(s.counters, [now](const auto& kv) { return kv.second.ends <= now; });
    }
    static void evict_one(shard& s) {
        auto victim = s.counters.begin();
        for (auto it = s.counters.begin(); it != s.counters.end(); ++it)
            if (it->second.ends < victim->second.ends) victim = it;
        if (victim != s.counters.end()) s.counters.erase(victim);
    }

    size_t _per_shard;
    std::array<shard, shards> _shards;
};

int64_t seconds_up(std::chrono::milliseconds ms) {
    return (ms.count() + 999) / 1000;
}

std::string describe_window(std::chrono::milliseconds w) {
    auto ms = w.count();
    if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace

// Redis is an outbound endpoint like any other: every call to it (the counting script, the
// start-up check, the probe) goes through the circuit breaker "redis". While the breaker is
// closed the counters are shared; any other state means this node counts alone.
//
// Its options keep the fallback as eager as it always was: the first failed call opens it.
// Volume 1 and threshold 1 % over a window of one 1 ms bucket judge a failure all but alone
// (only 100 successes within the same millisecond would outvote it), so a busy node does not
// keep sending requests into a Redis that just failed, each waiting up to redis_timeout.
// The reset timeout is probe_interval: then one trial goes to Redis and its success closes
// the breaker.
//
// The trial is always the prober's PING, never a request: requests skip Redis while the
// breaker is half-open, so they never wait on a Redis that may still be dead, and a node
// without traffic still notices Redis came back (the gauge says so too).
struct rate_limiter::impl {
    // Runs one Redis call under the breaker, as hit() does; nullopt when Redis is not in use
    // or failed (then the breaker and the gauge hear of it).
    template <typename T, typename F>
    std::optional<T> through_redis(F&& call) {
        if (!redis || breaker->state() == resilience::breaker_state::half_open) return std::nullopt;
        std::string why;
        bool tried = false;
        auto r = resilience::call(*breaker, [&]() -> result<T> {
            tried = true;
            auto v = call(*redis, &why);
            if (v) return *v;
            return make_error("unavailable", why);
        });
        if (r) return *r;
        if (tried) sync(why);
        return std::nullopt;
    }

    impl(limiter_options o) : opts(std::move(o)), local(opts.max_local_keys) {}

    limiter_options opts;
    local_store local;
    std::unique_ptr<redis_store> redis;
    std::unique_ptr<resilience::circuit_breaker> breaker;
    metrics::gauge up_gauge;

    // `shared` follows the breaker (true exactly when it was closed at the last sync()), so
    // that each change is logged once and clisonix_ratelimit_redis_up matches the breaker.
    std::mutex state_mutex;
    std::condition_variable state_changed;
    bool shared = true;     // guarded by state_mutex; the breaker starts closed
    bool stopping = false;  // guarded by state_mutex
    std::thread prober;

    static resilience::breaker_options redis_breaker_options(const limiter_options& o) {
        resilience::breaker_options b;
        b.volume_threshold = 1;
        b.error_threshold_percentage = 1;
        b.buckets = 1;
        b.rolling_window = std::chrono::milliseconds(1);
        b.reset_timeout = o.probe_interval;
        return b;
    }

    // Called after every outcome the breaker was told about. Reading the breaker under
    // state_mutex keeps the last sync the one that wins.
    void sync(const std::string& why) {
        std::lock_guard lock(state_mutex);
        bool closed = breaker->state() == resilience::breaker_state::closed;
        if (closed == shared) return;
        shared = closed;
        up_gauge.set(closed ? 1 : 0);
        if (closed) {
            log::info("rate limits: Redis reachable, counters shared again");
        } else {
            redis->drop_idle();  // after a failure the pooled connections are likely broken
            log::warn(
                "rate limits: Redis unreachable, counting on this node alone until it returns",
                {{"reason", why}});
        }
        state_changed.notify_all();
    }

    // One PING through the breaker.
    status probe() {
        std::string why;
        auto r = resilience::call(*breaker, [&]() -> status {
            if (redis->probe(&why)) return {};
            return make_error("unavailable", why);
        });
        sync(r.ok() ? std::string() : r.error().message);
        return r;
    }

    // While the breaker is not closed: sleeps until its reset timeout has passed, then
    // sends the half-open trial.
    void probe_loop() {
        std::unique_lock lock(state_mutex);
        while (!stopping) {
            if (shared) {
                state_changed.wait(lock, [&] { return stopping || !shared; });
                continue;
            }
            lock.unlock();
            auto wait = breaker->retry_in();
            lock.lock();
            if (wait.count() > 0) {
                state_changed.wait_for(lock, wait, [&] { return stopping || shared; });
                continue;
            }
            lock.unlock();
            auto r = probe();
            lock.lock();
            // Refused: a request holds the trial (it raced us into half-open); let it finish.
            if (!r.ok() && breaker->state() == resilience::breaker_state::half_open)
                state_changed.wait_for(lock, opts.redis_timeout, [&] { return stopping; });
        }
    }
};

result<std::shared_ptr<rate_limiter>> rate_limiter::create(limiter_options opts) {
    auto i = std::make_unique<impl>(std::move(opts));
    if (!i->opts.redis_url.empty()) {
        auto where = parse_redis_url(i->opts.redis_url);
        if (!where) return where.error();
        auto& registry = i->opts.registry ? *i->opts.registry : metrics::global();
        i->up_gauge = registry.get_gauge(
            "clisonix_ratelimit_redis_up",
            "1 while rate-limit counters are shared in Redis, 0 while this node counts alone");
        i->up_gauge.set(1);
        i->breaker = std::make_unique<resilience::circuit_breaker>(
            "redis", impl::redis_breaker_options(i->opts), resilience::clock_fn{}, &registry);
        i->redis = std::make_unique<redis_store>(std::move(*where), i->opts.redis_timeout);
        (void)i->probe();  // unreachable: the breaker opens and the gauge reads 0
        i->prober = std::thread([p = i.get()] { p->probe_loop(); });
    }
    return std::shared_ptr<rate_limiter>(new rate_limiter(std::move(i)));
}

rate_limiter::rate_limiter(std::unique_ptr<impl> i) : _impl(std::move(i)) {}

rate_limiter::~rate_limiter() {
    if (_impl->prober.joinable()) {
        {
            std::lock_guard lock(_impl->state_mutex);
            _impl->stopping = true;
        }
        _impl->state_changed.notify_all();
        _impl->prober.join();
    }
}

bool rate_limiter::shared() const {
    if (!_impl->redis) return false;
    std::lock_guard lock(_impl->state_mutex);
    return _impl->shared;
}

limit_decision rate_limiter::hit(std::string_view key, int64_t limit,
                                 std::chrono::milliseconds window) {
    // Half-open: the trial is the prober's, so the request counts locally meanwhile. Open:
    // the breaker refuses (counted as rejected) and the request counts locally.
    if (_impl->redis && _impl->breaker->state() != resilience::breaker_state::half_open) {
        std::string why;
        bool tried = false;  // false: the open breaker refused, nothing new to sync
        auto d = resilience::call(*_impl->breaker, [&]() -> result<limit_decision> {
            tried = true;
            auto r =
                _impl->redis->hit("clisonix:ratelimit:" + std::string(key), limit, window, &why);
            if (r) return *r;
            return make_error("unavailable", why);
        });
        if (d) return *d;
        if (tried) _impl->sync(why);
    }
    return _impl->local.hit(key, limit, window);
}

std::optional<int64_t> rate_limiter::count(std::string_view key, std::chrono::milliseconds window) {
    return _impl->through_redis<int64_t>([&](redis_store& r, std::string* why) {
        auto d =
            r.hit("clisonix:" + std::string(key), std::numeric_limits<int64_t>::max(), window, why);
        return d ? std::optional<int64_t>(d->limit - d->remaining) : std::nullopt;
    });
}

std::optional<bool> rate_limiter::lock(std::string_view key, std::chrono::milliseconds duration) {
    return _impl->through_redis<bool>([&](redis_store& r, std::string* why) {
        auto v = r.integer({"SET", "clisonix:" + std::string(key), "1", "PX",
                            std::to_string(std::max<int64_t>(1, duration.count()))},
                           why);
        return v ? std::optional<bool>(true) : std::nullopt;
    });
}

std::optional<std::chrono::milliseconds> rate_limiter::locked_for(std::string_view key) {
    return _impl->through_redis<std::chrono::milliseconds>([&](redis_store& r, std::string* why) {
        auto v = r.integer({"PTTL", "clisonix:" + std::string(key)}, why);
        // -2: no such key, -1: no expiry (never set so by us).
        return v ? std::optional<std::chrono::milliseconds>(std::max<int64_t>(0, *v))
                 : std::nullopt;
    });
}

void rate_limiter::forget(std::string_view key) {
    (void)_impl->through_redis<int64_t>([&](redis_store& r, std::string* why) {
        return r.integer({"DEL", "clisonix:" + std::string(key)}, why);
    });
}

std::string key_by_client_address(const http::request& req) {
    return "ip:" + req.remote_address;
}

namespace {

// The routes that take a password or refresh token say so in the route table; an unmatched
// request is not one of them (it goes on to its 404/405, counted by the api policy).
bool is_login(const http::request& req) {
    return req.matched && req.matched->checks_credentials;
}

bool is_telemetry(const http::request& req) {
    return req.matched && req.matched->path.starts_with("/api/") &&
           req.matched->path.ends_with("/telemetry");
}

}  // namespace

rate_policy login_policy(const settings& s) {
    return {"login", s.login_limit, s.login_window, is_login, key_by_client_address};
}

rate_policy api_policy(const settings& s, key_function key) {
    return {"api", s.api_limit, s.api_window,
            [](const http::request& req) {
                return req.path.starts_with("/api/") && !is_login(req) && !is_telemetry(req);
            },
            std::move(key)};
}

rate_policy device_policy(const settings& s, key_function key) {
    return {"device", s.device_limit, s.device_window, is_telemetry, std::move(key)};
}

http::middleware rate_limit(std::shared_ptr<rate_limiter> limiter, rate_policy policy) {
    auto rejected = metrics::global().get_counter("clisonix_ratelimit_rejected_total",
                                                  "Requests refused by a rate limit", {"policy"},
                                                  {policy.name});
    return [limiter = std::move(limiter), policy = std::move(policy), rejected](
               http::request& req, const http::next& call_next) mutable {
        if (!policy.applies || !policy.applies(req)) return call_next(req);
        std::string key = policy.key ? policy.key(req) : std::string();
        if (key.empty()) return call_next(req);
        auto d = limiter->hit(policy.name + ":" + key, policy.limit, policy.window);
        auto reset = std::to_string(seconds_up(d.reset));
        if (!d.allowed) {
            auto retry = std::to_string(std::max<int64_t>(1, seconds_up(d.reset)));
            rejected.inc();
            log::debug("rate limited", {{"policy", policy.name}, {"client", req.remote_address}});
            auto res = http::response::error(
                429, "too_many_requests",
                "Too many requests: the limit is " + std::to_string(policy.limit) + " per " +
                    describe_window(policy.window) + "; retry in " + retry + " s");
            res.headers = {{"RateLimit-Limit", std::to_string(d.limit)},
                           {"RateLimit-Remaining", "0"},
                           {"RateLimit-Reset", reset},
                           {"Retry-After", retry}};
            return res;
        }
        auto res = call_next(req);
        res.headers.emplace_back("RateLimit-Limit", std::to_string(d.limit));
        res.headers.emplace_back("RateLimit-Remaining", std::to_string(d.remaining));
        res.headers.emplace_back("RateLimit-Reset", reset);
        return res;
    };
}

}  // namespace clisonix::gateway
