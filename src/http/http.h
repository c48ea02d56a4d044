// Clisonix — the HTTP server: routes, middleware, limits, graceful shutdown.
//
// Every route is declared once, with its method, path template and a one-line summary;
// the router, the metrics labels and the OpenAPI document all come from that declaration:
//
//   router.add({method::get, "/api/v1/devices/{device}", "One device", permission::read,
//               get_device});
//
// A request flows: read (header and body limits, timeouts) -> route match (path
// parameters; the matched template is known to every middleware) -> middleware chain, in
// the order given -> the route's handler (or a 404/405 envelope). Every 4xx/5xx answer
// carries the JSON error envelope {"error":{"code":"...","message":"...","field":"..."}},
// and every answer carries X-Request-Id (the client's, when it sent a sane one).
//
// Handlers run on the server's worker threads and may block briefly; they must be
// thread-safe. An exception escaping a handler becomes a 500 envelope and a log line.
// A route marked `heavy` (password hashing) runs, with its middleware chain, in a small
// bounded pool instead, so that a burst of it cannot occupy the workers that answer every
// other request; when that pool is full the server answers 429 too_many_requests with
// Retry-After. A response with a `delay` is held that long on a timer, not on a thread.
//
// Credentials are checked before a body is read: `server_options::header_check` sees each
// request once its header has arrived, and a request it refuses is answered at once (through
// the middleware chain, with an empty body) and its connection closed, the body never read.
//
// WebSocket: a route with a `websocket` handler is a WebSocket endpoint. An upgrade request
// to it runs through the middleware chain like any other request (auth, rate limits, the
// access log); the handler then either fills a websocket_accept and answers 101, and the
// server completes the RFC 6455 handshake over the same TCP/TLS stream, or answers anything
// else, which is sent as a plain HTTP answer. A plain (non-upgrade) request gets 426.
//
// Boost.Beast stays inside server.cpp: this header names none of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace clisonix::config {
class config;
}

namespace clisonix::http {

enum class method { get, head, post, put, patch, del, options };

// "GET", "DELETE" ...
std::string_view method_name(method m);

// %XX decoding; '+' becomes ' ' in query strings and form bodies only. (A route that reads
// repeated parameters, such as Prometheus' `match[]`, or an
// application/x-www-form-urlencoded body decodes the pairs itself with this.)
std::string percent_decode(std::string_view text, bool plus_is_space);

struct route;

struct request {
    method verb = method::get;
    std::string target;  // as sent: path and query
    std::string path;    // percent-decoded path, without the query
    std::map<std::string, std::string, std::less<>> query;        // decoded query parameters
    std::map<std::string, std::string, std::less<>> path_params;  // from the route template
    std::vector<std::pair<std::string, std::string>> headers;     // names in lower case
    std::string body;
    std::string remote_address;  // the client: the TCP peer, or the address a trusted proxy
                                 // reported (set by the gateway's client_address middleware)
    std::string peer_address;    // always the TCP peer
    bool secure = false;         // arrived over TLS
    std::string request_id;
    const route* matched = nullptr;  // null when no route matched
    // Who is calling, set by the auth middleware; read it with auth::current_principal().
    std::shared_ptr<const void> principal;

    // The value of header `name` (case-insensitive), or "" when absent.
    std::string_view header(std::string_view name) const;
    // The query parameter, or `fallback` when absent.
    std::string_view query_param(std::string_view name, std::string_view fallback = {}) const;
    std::string_view path_param(std::string_view name) const;
};

// Decodes `a=1&b=x+y` (a query string, or an application/x-www-form-urlencoded body) into
// `into`; a later value of a name replaces an earlier one.
void add_form_params(std::string_view form, std::map<std::string, std::string, std::less<>>& into);

struct response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    // The server holds the answer this long before sending it, on a timer: no thread waits
    // (the failed-login delay).
    std::chrono::milliseconds delay{0};

    static response json(int status, std::string body);
    static response text(int status, std::string body, std::string content_type);
    static response no_content();
    // The error envelope. `code` is a stable identifier ("not_found", "invalid_argument"),
    // `message` one sentence for a person, `field` the input at fault (omitted when empty).
    static response error(int status, std::string_view code, std::string_view message,
                          std::string_view field = {});
    // The envelope of an error value, with the status of its code (status_for). A
    // too_many_requests, overloaded or storage_full answer carries Retry-After: `retry_after`
    // seconds.
    static response from_error(const clisonix::error& e,
                               std::chrono::seconds retry_after = std::chrono::seconds(1));
    // The envelope with a status the caller chooses, for the few answers whose status says
    // more than the code (431 for a header over the limit, 503 from /readyz whatever failed).
    static response from_error(int status, const clisonix::error& e);
};

// The HTTP status of an error code (errc): the one table of the product. invalid_* 400,
// the three 401s, forbidden 403, not_found 404, conflict 409, too_large 413,
// unsupported_media_type 415, too_many_requests 429, not_implemented 501, unavailable,
// overloaded and storage_full 503; internal, corrupt and any code outside the vocabulary 500.
int status_for(std::string_view code);
int status_for(const clisonix::error& e);

using handler = std::function<response(request&)>;

// One open WebSocket connection, after the handshake. Outgoing text frames go through a
// bounded queue per connection: send() never blocks, and a peer that does not read fills
// its queue rather than the server's memory.
// Thread safety: every method may be called from any thread.
class websocket {
public:
    enum class send_result {
        queued,    // the frame is queued (or being written)
        overflow,  // the queue is over its bound: the frame and everything queued were
                   // dropped; returned once, and the caller is expected to close()
        closed,    // closing or closed: nothing more is sent
    };
    virtual ~websocket() = default;

    // Queues one text frame. The queue holds at most max_queue_messages frames and
    // max_queue_bytes bytes (one frame of any size is always accepted into an empty queue).
    virtual send_result send(std::shared_ptr<const std::string> text) = 0;
    send_result send(std::string text) {
        return send(std::make_shared<const std::string>(std::move(text)));
    }
    // Starts the closing handshake with `code` (1000 normal, 1001 going away, 1008 policy,
    // 1011 internal, 1013 try again later) and `reason` (cut to 123 bytes). Frames not yet
    // written are dropped; a frame being written is finished first. When the peer does not
    // answer within 10 s, the connection is cut. Later calls do nothing.
    virtual void close(uint16_t code, std::string_view reason) = 0;
    // Closes the connection with `code` and `reason` after `after`, unless cancel_deadline()
    // comes first (e.g. a first message that must arrive in time). One deadline at a time.
    virtual void set_deadline(std::chrono::milliseconds after, uint16_t code,
                              std::string reason) = 0;
    virtual void cancel_deadline() = 0;
    // Bytes and frames queued and not yet written.
    virtual size_t queued_bytes() const = 0;
    virtual size_t queued_messages() const = 0;
    // The client address of the upgrade request.
    virtual const std::string& remote_address() const = 0;
};

// What a WebSocket route's handler fills in to accept an upgrade (and then answers 101).
// The callbacks run on the connection's strand, one at a time per connection: on_open once
// after the handshake, on_message per complete text (or binary) message, on_close once when
// the connection has ended (code 1006 when it ended without a close frame). on_close is not
// called when the handshake fails or the server is destroyed with the connection still open.
// The server owns an open connection: keep a std::weak_ptr to it, not a shared_ptr.
struct websocket_accept {
    std::string subprotocol;  // echoed in Sec-WebSocket-Protocol; must be one the client offered
    size_t max_queue_bytes = 1 << 20;
    size_t max_queue_messages = 1000;
    size_t max_message_bytes = 64 * 1024;  // largest message read from the client (1009 beyond)
    std::function<void(const std::shared_ptr<websocket>&)> on_open;
    std::function<void(std::string_view message)> on_message;
    std::function<void(uint16_t code, std::string_view reason)> on_close;
};

using websocket_handler = std::function<response(request&, websocket_accept&)>;

// What a caller must hold to use a route; the gateway enforces it. Every route declares one.
namespace permission {
inline constexpr const char* open = "public";      // no credentials (health, login)
inline constexpr const char* read = "read";        // viewer and above
inline constexpr const char* write = "write";      // operator: telemetry through the API
inline constexpr const char* devices = "devices";  // operator: manage devices
inline constexpr const char* alarms = "alarms";    // operator: acknowledge alarms
inline constexpr const char* admin = "admin";      // users, rules, settings
inline constexpr const char* device = "device";    // a device's own token writes telemetry
}  // namespace permission

struct route {
    method verb;
    std::string path;        // template: "/api/v1/devices/{device}"
    std::string summary;     // one line, shown in the OpenAPI document
    std::string permission;  // one of http::permission
    handler handle;
    std::string request_schema = {};  // JSON Schema of the body, when the route takes JSON
    // Set for a WebSocket endpoint (GET only; `handle` may then be empty): see the top.
    websocket_handler websocket = {};
    // Slow by design (Argon2 password hashing): the request runs in the server's bounded
    // heavy-work pool, not on a worker thread (see the top).
    bool heavy = false;
    // The handler itself checks a secret sent in the body (a password, a refresh token) on an
    // open route: the gateway's login rate limit counts these routes per client address, so
    // that guessing costs the guesser whatever the path. Set by auth on login and refresh.
    bool checks_credentials = false;
};

// Decides from the header alone (the route is matched, the body not yet read) whether the
// request will be refused whatever its body, e.g. for missing or bad credentials. It may
// record what it learnt in the request (the principal), which then reaches the chain.
// Returns false to refuse: see the top.
using header_check = std::function<bool(request&)>;

using next = std::function<response(request&)>;
// A middleware sees the request before the handler and the response after it; it may
// answer by itself without calling `call_next` (e.g. a rate limit).
using middleware = std::function<response(request&, const next& call_next)>;

class router {
public:
    // Throws std::logic_error for a duplicate or malformed template, or a missing
    // permission: a start-up bug.
    void add(route r);

    struct match {
        const route* found = nullptr;
        std::map<std::string, std::string, std::less<>> params;
        bool path_exists = false;  // some route has this path with another method (405)
    };
    // `raw_path` as sent: still percent-encoded (a query after '?' is ignored). Parameters
    // are decoded once, after the segments are split.
    match find(method verb, std::string_view raw_path) const;

    const std::vector<std::unique_ptr<route>>& routes() const { return _routes; }

private:
    std::vector<std::unique_ptr<route>> _routes;
    // _routes[i]'s template split at '/' once, not on every request (views into its path).
    std::vector<std::vector<std::string_view>> _segments;
};

// An OpenAPI 3.1 document generated from the router's declarations.
std::string openapi_document(const router& routes, std::string_view title,
                             std::string_view version);

// Access log line and Prometheus metrics (requests by route and status, latency histogram,
// in-flight gauge) for every request. Route labels are templates, never raw paths.
middleware observe_requests();

struct server_options {
    std::string bind = "0.0.0.0";
    uint16_t port = 8030;
    int threads = 0;  // 0: one per core
    uint32_t header_limit = 16 * 1024;
    uint64_t body_limit = 8 * 1024 * 1024;
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds drain_timeout{30'000};
    int max_connections = 10'000;
    // Connections from one peer address beyond this are closed at once (0: no limit).
    int max_connections_per_ip = 256;
    // Headers put on every answer, including those the server writes before any middleware
    // runs (431, 413, 400); a header the response already carries is left as it is.
    std::vector<std::pair<std::string, std::string>> always_headers;
    // Requests of `heavy` routes run in a pool of this many threads, with at most
    // heavy_queue more waiting for one; beyond that they are answered 429 at once.
    int heavy_threads = 2;
    int heavy_queue = 16;
    header_check check_header;  // empty: every body is read
    // TLS when `cert_file` is set: a PEM certificate chain and its private key. TLS 1.3 only,
    // unless `min_version` is "1.2"; 1.1 and below are always refused.
    struct tls_settings {
        std::string cert_file;
        std::string key_file;
        std::string min_version = "1.3";
    } tls;
};

// The options from the `http.*` config keys (TLS and the gateway's headers are set by
// gateway::configure_server).
server_options server_options_from(const config::config& cfg);

// Thread safety: stop() may be called from any thread (and from a signal handler's
// strand); everything else from the thread that owns the server.
class server {
public:
    server(server_options opts, const router& routes, std::vector<middleware> chain);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds and listens; an error names the address and the reason.
    status listen();
    // Serves until stop() and the drain finish (or SIGTERM/SIGINT when `handle_signals`).
    // Returns false when a handler was still running after the drain time: its thread is
    // left behind, and the caller must exit the process without destroying the server.
    bool run(bool handle_signals);
    // Graceful shutdown: stop accepting, let in-flight requests finish (up to the drain
    // timeout), close idle connections, then return from run().
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

}  // namespace clisonix::http
