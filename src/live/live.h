// Clisonix — live updates: telemetry and alarm events pushed to WebSocket clients.
//
// GET /api/v1/live upgrades to a WebSocket. Nobody listens without a token, and a token is
// never taken from the URL (a `token` or `access_token` query parameter is answered 400):
//   - browsers offer subprotocols `bearer, <token>` (the server answers `bearer`) or
//     `clisonix.v1, bearer.<token>` (the server answers `clisonix.v1`);
//   - other clients may send `Authorization: Bearer <token>` on the upgrade request;
//   - or the first message is {"type":"auth","token":"<access JWT or API key>"}, within
//     live.auth_timeout, else the server closes with 1008 and the reason.
// A bad token on the upgrade request is answered 401 (403 when it may not read); in the
// first message it closes the connection with 1008. Device tokens may not listen.
//
// Admission (docs/decisions/0046-admission-and-revocation.md): an upgrade with a
// valid token takes one of live.max_connections slots and one of its user's (or API key's)
// live.max_connections_per_user; beyond, 503 "overloaded" or 429 "too_many_requests", both
// with Retry-After. An upgrade without a token waits for its first message in a separate
// budget: live.max_pending_per_address per client address (429 beyond) and live.max_pending
// in all (503 beyond), each for at most live.auth_timeout. A first-message token then moves
// the connection to the authenticated slots (when they are full: closed with 1013 or 1008).
//
// Revocation: a connection lives only as long as its credential. It is closed with 1008 and
// a reason when the credential's user is disabled, deleted or given a new password, its API
// key is revoked (close_user, close_api_key; `clisonix serve` wires them to auth's
// revocation listener), or the access token expires ("token expired"); and, for changes made
// by another process or node, when its credential fails the check repeated every
// live.revalidate_interval ("credential revoked: <why>"). A client stays
// connected past its token's expiry by sending {"type":"auth","token":"<fresh token>"}
// before it (the dashboard reconnects with a fresh token instead).
//
// Messages are JSON text frames (docs/decisions/0026-live-protocol.md):
//   client: {"type":"subscribe","telemetry":{"devices":["pump-1"],"assets":["line-2"]},
//            "alarms":true}        ("*" in devices: every device)
//           {"type":"unsubscribe","telemetry":{"devices":[...],"assets":[...]},"alarms":true}
//           {"type":"ping"}
//   server: {"type":"authenticated","user":"admin"}
//           {"type":"subscribed"|"unsubscribed","telemetry":{"devices":[...],"assets":[...],
//            "resolved":[devices under the assets]},"alarms":true}
//           {"type":"telemetry","device":"pump-1","metric":"temperature",
//            "points":[[ts_ms,value],...]}   one per device and metric per write, in
//                                            write order (at most 10,000 points each)
//           {"type":"alarm","event":"alarm.created",...}   the alarm event's own fields
//           {"type":"error","message":"..."}  for a bad message; the connection stays
//           {"type":"pong"}
// Assets are resolved to devices when subscribing (and again on every later subscribe).
// Every message to a connection goes through one queue, in publish order: a client sees
// the telemetry before an alarm that telemetry raised, when the hub's pipeline listener runs
// before the rules engine's. A client whose queue passes live.max_queue_bytes or
// live.max_queue_messages is closed with 1008 "slow consumer: queue over N bytes|messages";
// the server keeps at most its queue bound (plus the frame in flight) for it.
//
// Metrics: clisonix_live_connections, clisonix_live_messages_sent_total{type},
// clisonix_live_slow_consumer_drops_total.
//
// Thread safety: publish_telemetry and publish_alarm may be called from any thread, and
// cost one atomic load when nobody subscribed. The hub must outlive the HTTP server.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "http/http.h"
#include "storage/storage.h"

namespace clisonix::live {

struct options {
    size_t max_queue_bytes = 1 << 20;  // live.max_queue_bytes
    size_t max_queue_messages = 1000;  // live.max_queue_messages
    // Authenticated connections, in all and per user or API key. Connections still waiting
    // for their token do not count: they have their own budget below, so that token-less
    // upgrades cannot keep a user with a valid token out.
    int max_connections = 1000;         // live.max_connections (503 beyond)
    int max_connections_per_user = 20;  // live.max_connections_per_user (429 beyond)
    // Connections waiting for their first-message token, in all and per client address.
    int max_pending = 100;                          // live.max_pending (503 beyond)
    int max_pending_per_address = 4;                // live.max_pending_per_address (429 beyond)
    std::chrono::milliseconds auth_timeout{5'000};  // live.auth_timeout
    // How often each listening connection's credential is checked again (revocations that
    // no event told this process of: another process or node changed the store).
    std::chrono::milliseconds revalidate_interval{60'000};  // live.revalidate_interval
};

// The options from the `live.*` config keys.
options options_from(const config::config& cfg);

// Who listens, as the authenticate hook resolved a token.
struct identity {
    std::string name;        // shown to the client: {"type":"authenticated","user":name}
    std::string user;        // the username behind an access token; empty for an API key
    std::string api_key_id;  // the API key's id; empty for an access token
    // When the credential ends (Unix ms): the connection is closed then with 1008 "token
    // expired", unless the client sent a fresh token ({"type":"auth"}) before.
    std::optional<int64_t> expires_at;
};

struct hooks {
    // An access JWT or API key -> who listens. Errors: "invalid_token" (401), "forbidden"
    // (403: a device token, or a role without read permission), others (503).
    std::function<result<identity>(std::string_view token)> authenticate;
    // The devices under an asset (name or id). Empty: asset subscriptions are refused.
    std::function<result<std::vector<std::string>>(std::string_view asset)> devices_under;
};

class hub {
public:
    hub(options opts, hooks h);
    ~hub();
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // A durable batch (a pipeline listener): one telemetry message per device and metric
    // to each client subscribed to that device. Series without a `device` tag are skipped.
    void publish_telemetry(const storage::write_batch& batch);
    // An alarm event (a JSON object, see src/rules) to each client subscribed to alarms.
    void publish_alarm(const std::string& event_json);

    // The WebSocket route's handler (GET /api/v1/live).
    http::response accept(http::request& req, http::websocket_accept& upgrade);

    // Closes every connection listening as `username` (or with the API key `api_key_id`) with
    // 1008 "credential revoked: <reason>", at once: for a user disabled, deleted or given a
    // new password, a key revoked. Returns how many were closed.
    size_t close_user(std::string_view username, std::string_view reason);
    size_t close_api_key(std::string_view api_key_id, std::string_view reason);

    // Open connections (authenticated or not).
    size_t connections() const;

private:
    struct impl;
    std::shared_ptr<impl> _impl;
};

}  // namespace clisonix::live
