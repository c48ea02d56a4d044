// Clisonix — the gateway: what stands between the network and the API's handlers.
//
// Security headers, CORS, the client address behind trusted proxies, rate limits and JSON
// Schema validation of request bodies, each as an http::middleware; plus the server-level
// settings (TLS, connection limits, headers on every answer) read from config.
//
// The lead's wiring, in this order (authentication belongs to the auth module):
//
//   auto gw = gateway::load_settings(cfg);                  // result<settings>
//   gateway::configure_server(*gw, opts);                   // TLS, per-IP limit, headers
//   auto limiter = gateway::rate_limiter::create(gateway::limiter_options{gw->redis_url});
//   chain = {gateway::client_address(gw->trusted_proxies),  // first: everything after sees
//            http::observe_requests(),                      //   the decided client address
//            gateway::secure_headers(gw->tls),
//            gateway::cors(gw->cors_origins),
//            gateway::rate_limit(*limiter, gateway::login_policy(*gw)),
//            auth::authenticate(...),
//            gateway::rate_limit(*limiter, gateway::api_policy(*gw, key_by_principal)),
//            gateway::rate_limit(*limiter, gateway::device_policy(*gw, key_by_device)),
//            gateway::validate_json(routes)};
//
// Thread safety: every middleware and the rate limiter may be used from any thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "http/http.h"

namespace clisonix::metrics {
class registry;
}

namespace clisonix::gateway {

// A set of IP networks ("10.0.0.0/8", "192.168.1.7", "fd00::/8").
class network_list {
public:
    // Comma-separated addresses or CIDR blocks; blanks around entries are ignored.
    // An error names the entry that does not parse (code "invalid_argument").
    static result<network_list> parse(std::string_view csv);
    // False for text that is not an IP address. IPv4-mapped IPv6 matches as IPv4.
    bool contains(std::string_view address) const;
    bool empty() const { return _networks.empty(); }

private:
    struct network {
        bool v6 = false;
        std::array<unsigned char, 16> bytes{};
        int prefix = 0;
    };
    std::vector<network> _networks;
};

struct settings {
    int64_t login_limit = 100;
    std::chrono::milliseconds login_window{15 * 60 * 1000};
    int64_t api_limit = 6000;
    std::chrono::milliseconds api_window{60 * 1000};
    int64_t device_limit = 600;
    std::chrono::milliseconds device_window{60 * 1000};
    network_list trusted_proxies;
    std::vector<std::string> cors_origins;  // "https://scada.example:8443", lower case
    std::string redis_url;                  // empty: counters in this process
    bool tls = false;                       // http.tls.cert is set
    int max_connections_per_ip = 256;
    std::string tls_cert, tls_key, tls_min_version = "1.3";
};

// The gateway.*, redis.url and http.tls.* / http.max_connections_per_ip keys. An error is
// "invalid_config" with the key in `field`.
result<settings> load_settings(const config::config& cfg);

// Sets TLS, the per-address connection limit and the security headers on every answer
// (including those the server writes itself: 400, 413, 431).
void configure_server(const settings& s, http::server_options& opts);

// ---- headers

// Helmet's set: CSP for a same-origin dashboard without inline scripts, nosniff,
// DENY framing, no referrer, same-origin COOP/CORP, and HSTS only when `tls`.
std::vector<std::pair<std::string, std::string>> security_headers(bool tls);
// The same set as a middleware, for servers whose options do not carry it; headers a
// handler set itself are kept.
http::middleware secure_headers(bool tls);

// ---- client address

// The client's address: the peer, unless the peer is a trusted proxy, in which case the
// right-most X-Forwarded-For entry that is not itself a trusted proxy. `forwarded_for` is
// every X-Forwarded-For value in arrival order.
std::string resolve_client_address(const network_list& trusted, std::string_view peer,
                                   const std::vector<std::string_view>& forwarded_for);
// Sets request.remote_address to the resolved client (request.peer_address stays the
// peer). The one place the client address is decided; put it first in the chain.
http::middleware client_address(network_list trusted);

// ---- CORS

// Origins on the list get CORS headers and their preflights a 204; a preflight from any
// other origin is a 403 "forbidden"; requests without Origin pass untouched.
http::middleware cors(std::vector<std::string> allowed_origins);

// ---- rate limits

struct limit_decision {
    bool allowed = true;
    int64_t limit = 0;
    int64_t remaining = 0;
    std::chrono::milliseconds reset{0};  // until the window ends
};

struct limiter_options {
    std::string redis_url;            // "redis://[:password@]host[:port][/db]"; empty: local
    size_t max_local_keys = 100'000;  // bound on the in-process counters
    std::chrono::milliseconds redis_timeout{250};    // connect and per command
    std::chrono::milliseconds probe_interval{1000};  // the breaker's reset timeout
    metrics::registry* registry = nullptr;           // null: metrics::global()
};

// Fixed windows that start at a key's first hit. Counters live in Redis when a URL is
// given (shared by every node), else in this process. Every Redis call goes through the
// circuit breaker "redis" (clisonix_circuit_breaker_state{endpoint="redis"}): the first
// failure opens it, and the limiter then counts locally, logs the change once and sets
// clisonix_ratelimit_redis_up to 0. After probe_interval a background PING is the breaker's
// half-open trial; its success closes the breaker and counters are shared again (gauge 1).
class rate_limiter {
public:
    // An error only for a malformed URL; an unreachable Redis is not an error.
    static result<std::shared_ptr<rate_limiter>> create(limiter_options opts);
    ~rate_limiter();
    rate_limiter(const rate_limiter&) = delete;
    rate_limiter& operator=(const rate_limiter&) = delete;

    limit_decision hit(std::string_view key, int64_t limit, std::chrono::milliseconds window);
    // True while the counters are in Redis.
    bool shared() const;

    // Counters and locks that must hold on every node besides rate limits (failed logins:
    // auth::shared_failures), under "clisonix:<key>". nullopt (nothing for forget) while
    // Redis is not configured or not answering: the caller keeps its own count meanwhile.
    // count: one more in a window starting at the key's first count; the count so far.
    std::optional<int64_t> count(std::string_view key, std::chrono::milliseconds window);
    // lock: `key` exists for `duration`; locked_for: how much longer (0: not locked).
    std::optional<bool> lock(std::string_view key, std::chrono::milliseconds duration);
    std::optional<std::chrono::milliseconds> locked_for(std::string_view key);
    void forget(std::string_view key);

private:
    struct impl;
    explicit rate_limiter(std::unique_ptr<impl> i);
    std::unique_ptr<impl> _impl;
};

// The key a request is counted under; "" lets the request pass uncounted.
using key_function = std::function<std::string(const http::request&)>;

struct rate_policy {
    std::string name;  // "login", "api", "device": part of the counter key and metric label
    int64_t limit = 0;
    std::chrono::milliseconds window{0};
    std::function<bool(const http::request&)> applies;
    key_function key;
};

// "ip:<client address>".
std::string key_by_client_address(const http::request& req);

// Routes marked http::route::checks_credentials (auth's login and refresh), per client
// address.
rate_policy login_policy(const settings& s);
// Every other /api/ route except telemetry, per `key` (the principal once authenticated;
// until then the client address).
rate_policy api_policy(const settings& s, key_function key = key_by_client_address);
// Telemetry routes (templates ending in "/telemetry"), per `key` (the device).
rate_policy device_policy(const settings& s, key_function key = key_by_client_address);

// Counts each request the policy applies to; answers carry RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset (seconds); beyond the limit a 429 "too_many_requests"
// envelope with Retry-After.
http::middleware rate_limit(std::shared_ptr<rate_limiter> limiter, rate_policy policy);

// ---- validation

// For every route with a request_schema: the body must be JSON (400 "invalid_json" with
// the reason; nesting deeper than 64 is refused) and valid against the schema (400
// "invalid_argument", field = JSON pointer of the first fault, e.g. "/password"). Schemas
// are compiled here, once; a schema that does not compile throws std::logic_error (a
// start-up bug, like a malformed route).
http::middleware validate_json(const http::router& routes);

}  // namespace clisonix::gateway
