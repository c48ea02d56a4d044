// Private to the gateway: rate-limit counters in Redis, over hiredis.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "gateway/gateway.h"

struct redisContext;

namespace clisonix::gateway {

struct redis_endpoint {
    std::string host;
    int port = 6379;
    std::string password;
    int db = 0;
};

// "redis://[[user]:password@]host[:port][/db]"; "[::1]" for IPv6 hosts.
result<redis_endpoint> parse_redis_url(std::string_view url);

// A small pool of blocking connections with short timeouts. Any failure closes the
// connection it happened on and is reported as nullopt; the caller decides what follows.
class redis_store {
public:
    redis_store(redis_endpoint where, std::chrono::milliseconds timeout);
    ~redis_store();
    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    // INCR and, on a window's first hit, PEXPIRE, atomically in one Lua script.
    std::optional<limit_decision> hit(std::string_view key, int64_t limit,
                                      std::chrono::milliseconds window, std::string* why);
    // One command answered by an integer (PTTL, DEL) or "OK" (SET: 1) or nil (0).
    std::optional<int64_t> integer(const std::vector<std::string>& args, std::string* why);
    // True when a fresh connection answers PING (it is then kept in the pool).
    bool probe(std::string* why);
    // Closes every idle connection (after a failure they are likely all broken).
    void drop_idle();

private:
    redisContext* connect(std::string* why);
    redisContext* take(std::string* why);
    void give_back(redisContext* c);

    redis_endpoint _where;
    std::chrono::milliseconds _timeout;
    std::mutex _mutex;
    std::vector<redisContext*> _idle;  // guarded by _mutex
    std::string _sha;                  // the script's SHA1, once loaded; guarded by _mutex
};

}  // namespace clisonix::gateway
