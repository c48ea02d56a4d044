// Rate-limit counters in Redis: one Lua script per hit, so that the increment and the
// window's expiry are one atomic step even with many nodes counting the same key.
#include "gateway/redis_store.h"

#include <hiredis/hiredis.h>

#include <charconv>

namespace clisonix::gateway {
namespace {

// KEYS[1] counter; ARGV[1] window in ms. Returns {count, ms left in the window}. A key
// without expiry (someone else's, or a crash between the two calls in an older version)
// gets one, so that no counter lives forever.
constexpr const char* script = R"lua(
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
)lua";

struct reply_deleter {
    void operator()(redisReply* r) const {
        if (r) freeReplyObject(r);
    }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

reply_ptr command(redisContext* c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    return reply_ptr(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data())));
}

bool parse_int(std::string_view text, int& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

result<redis_endpoint> parse_redis_url(std::string_view url) {
    auto bad = [&](std::string_view why) {
        return make_error("invalid_config",
                          "config: redis.url: " + std::string(why) +
                              " (expected redis://[:password@]host[:port][/db])",
                          "redis.url");
    };
    redis_endpoint e;
    if (!url.starts_with("redis://")) return bad("must start with redis://");
    url.remove_prefix(8);
    if (auto at = url.rfind('@'); at != std::string_view::npos) {
        auto userinfo = url.substr(0, at);
        url.remove_prefix(at + 1);
        auto colon = userinfo.find(':');
        e.password =
            std::string(colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1));
    }
    std::string_view hostport = url.substr(0, url.find('/'));
    if (auto slash = url.find('/'); slash != std::string_view::npos) {
        auto db = url.substr(slash + 1);
        if (!db.empty() && (!parse_int(db, e.db) || e.db < 0))
            return bad("the database is not a number");
    }
    std::string_view port;
    if (hostport.starts_with('[')) {
        auto close = hostport.find(']');
        if (close == std::string_view::npos) return bad("unclosed [ in the host");
        e.host = std::string(hostport.substr(1, close - 1));
        auto rest = hostport.substr(close + 1);
        if (rest.starts_with(':'))
            port = rest.substr(1);
        else if (!rest.empty())
            return bad("junk after the host");
    } else {
        auto colon = hostport.find(':');
        e.host = std::string(hostport.substr(0, colon));
        if (colon != std::string_view::npos) port = hostport.substr(colon + 1);
    }
    if (e.host.empty()) return bad("no host");
    if (!port.empty() && (!parse_int(port, e.port) || e.port < 1 || e.port > 65535))
        return bad("the port must be 1..65535");
    return e;
}

redis_store::redis_store(redis_endpoint where, std::chrono::milliseconds timeout)
    : _where(std::move(where)), _timeout(timeout) {}

redis_store::~redis_store() {
    drop_idle();
}

void redis_store::drop_idle() {
    std::vector<redisContext*> idle;
    {
        std::lock_guard lock(_mutex);
        idle.swap(_idle);
    }
    for (auto* c : idle)
        redisFree(c);
}

redisContext* redis_store::connect(std::string* why) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((_timeout.count() % 1000) * 1000);
    redisContext* c = redisConnectWithTimeout(_where.host.c_str(), _where.port, tv);
    auto fail = [&](std::string reason) -> redisContext* {
        if (why) *why = std::move(reason);
        if (c) redisFree(c);
        return nullptr;
    };
    if (!c) return fail("out of memory");
    if (c->err) return fail(c->errstr);
    if (redisSetTimeout(c, tv) != REDIS_OK) return fail("cannot set the command timeout");
    auto expect_ok = [&](const std::vector<std::string>& args) -> bool {
        auto r = command(c, args);
        return r && r->type != REDIS_REPLY_ERROR;
    };
    if (!_where.password.empty() && !expect_ok({"AUTH", _where.password}))
        return fail(c->err ? c->errstr : "AUTH refused");
    if (_where.db != 0 && !expect_ok({"SELECT", std::to_string(_where.db)}))
        return fail(c->err ? c->errstr : "SELECT refused");
    // Loading on every new connection also restores the script after a Redis restart.
    auto loaded = command(c, {"SCRIPT", "LOAD", script});
    if (!loaded || loaded->type != REDIS_REPLY_STRING)
        return fail(c->err ? c->errstr : "SCRIPT LOAD refused");
    std::lock_guard lock(_mutex);
    _sha.assign(loaded->str, loaded->len);
    return c;
}

redisContext* redis_store::take(std::string* why) {
    {
        std::lock_guard lock(_mutex);
        if (!_idle.empty()) {
            auto* c = _idle.back();
            _idle.pop_back();
            return c;
        }
    }
    return connect(why);
}

void redis_store::give_back(redisContext* c) {
    std::lock_guard lock(_mutex);
    // A handful is enough: requests hold a connection for one round trip.
    if (_idle.size() < 16) {
        _idle.push_back(c);
        return;
    }
    redisFree(c);
}

std::optional<limit_decision> redis_store::hit(std::string_view key, int64_t limit,
                                               std::chrono::milliseconds window, std::string* why) {
    redisContext* c = take(why);
    if (!c) return std::nullopt;
    std::string sha;
    {
        std::lock_guard lock(_mutex);
        sha = _sha;
    }
    std::string k(key), w = std::to_string(window.count());
    auto r = command(c, {"EVALSHA", sha, "1", k, w});
    if (r && r->type == REDIS_REPLY_ERROR &&
        std::string_view(r->str, r->len).starts_with("NOSCRIPT"))
        r = command(c, {"EVAL", script, "1", k, w});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
        if (why)
            *why = c->err ? c->errstr
                          : (r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                                               : "unexpected reply");
        redisFree(c);
        return std::nullopt;
    }
    limit_decision d;
    int64_t count = r->element[0]->integer;
    d.limit = limit;
    d.allowed = count <= limit;
    d.remaining = std::max<int64_t>(0, limit - count);
    d.reset = std::chrono::milliseconds(std::max<long long>(0, r->element[1]->integer));
    give_back(c);
    return d;
}

std::optional<int64_t> redis_store::integer(const std::vector<std::string>& args,
                                            std::string* why) {
    redisContext* c = take(why);
    if (!c) return std::nullopt;
    auto r = command(c, args);
    std::optional<int64_t> out;
    if (r && r->type == REDIS_REPLY_INTEGER) out = r->integer;
    if (r && r->type == REDIS_REPLY_STATUS) out = 1;
    if (r && r->type == REDIS_REPLY_NIL) out = 0;
    if (!out) {
        if (why)
            *why = c->err ? c->errstr
                          : (r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                                               : "unexpected reply");
        redisFree(c);
        return std::nullopt;
    }
    give_back(c);
    return out;
}

bool redis_store::probe(std::string* why) {
    redisContext* c = connect(why);
    if (!c) return false;
    auto r = command(c, {"PING"});
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (why) *why = c->err ? c->errstr : "PING refused";
        redisFree(c);
        return false;
    }
    give_back(c);
    return true;
}

}  // namespace clisonix::gateway
