// Rate limits: fixed windows counted in this process or in Redis, with a fallback from the
// one to the other while Redis is away, and the policies that decide what is counted.
#include <array>
#include <atomic>
#include <condition_variable>
#include <thread>
#include <unordered_map>

#include "gateway/gateway.h"
#include "gateway/redis_store.h"
#include "observe/observe.h"

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

struct rate_limiter::impl {
    impl(limiter_options o) : opts(std::move(o)), local(opts.max_local_keys) {}

    limiter_options opts;
    local_store local;
    std::unique_ptr<redis_store> redis;
    std::atomic<bool> redis_up{false};
    metrics::gauge up_gauge;

    std::mutex probe_mutex;
    std::condition_variable probe_wake;
    bool stopping = false;  // guarded by probe_mutex
    std::thread prober;

    void mark_down(const std::string& why) {
        if (!redis_up.exchange(false)) return;
        up_gauge.set(0);
        redis->drop_idle();
        log::warn("rate limits: Redis unreachable, counting on this node alone until it returns",
                  {{"reason", why}});
        // Taking the lock orders this wake-up after the prober's check of redis_up.
        { std::lock_guard lock(probe_mutex); }
        probe_wake.notify_all();
    }

    void mark_up() {
        if (redis_up.exchange(true)) return;
        up_gauge.set(1);
        log::info("rate limits: Redis reachable, counters shared again");
    }

    // While Redis is down, one thread tries it now and then, so that requests never wait
    // on a dead Redis.
    void probe_loop() {
        std::unique_lock lock(probe_mutex);
        while (!stopping) {
            if (redis_up) {
                probe_wake.wait(lock, [&] { return stopping || !redis_up; });
                continue;
            }
            lock.unlock();
            std::string why;
            if (redis->probe(&why)) mark_up();
            lock.lock();
            if (!redis_up) probe_wake.wait_for(lock, opts.probe_interval, [&] { return stopping; });
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
        i->redis = std::make_unique<redis_store>(std::move(*where), i->opts.redis_timeout);
        std::string why;
        if (i->redis->probe(&why)) {
            i->redis_up = true;
            i->up_gauge.set(1);
        } else {
            i->up_gauge.set(0);
            log::warn(
                "rate limits: Redis unreachable, counting on this node alone until it returns",
                {{"reason", why}});
        }
        i->prober = std::thread([p = i.get()] { p->probe_loop(); });
    }
    return std::shared_ptr<rate_limiter>(new rate_limiter(std::move(i)));
}

rate_limiter::rate_limiter(std::unique_ptr<impl> i) : _impl(std::move(i)) {}

rate_limiter::~rate_limiter() {
    if (_impl->prober.joinable()) {
        {
            std::lock_guard lock(_impl->probe_mutex);
            _impl->stopping = true;
        }
        _impl->probe_wake.notify_all();
        _impl->prober.join();
    }
}

bool rate_limiter::shared() const {
    return _impl->redis_up;
}

limit_decision rate_limiter::hit(std::string_view key, int64_t limit,
                                 std::chrono::milliseconds window) {
    if (_impl->redis && _impl->redis_up) {
        std::string why;
        if (auto d =
                _impl->redis->hit("clisonix:ratelimit:" + std::string(key), limit, window, &why))
            return *d;
        _impl->mark_down(why);
    }
    return _impl->local.hit(key, limit, window);
}

std::string key_by_client_address(const http::request& req) {
    return "ip:" + req.remote_address;
}

namespace {

bool is_login(const http::request& req) {
    return req.verb == http::method::post &&
           (req.path == "/api/v1/auth/login" || req.path == "/api/v1/auth/refresh");
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
                429, "rate_limited",
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
