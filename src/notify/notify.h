// Clisonix — notifications: channels, a persistent outbox, at-least-once delivery.
//
// Channels (admin, /api/v1/channels) say where events go:
//   webhook  {"name":"ops","type":"webhook","url":"https://...","secret":"...","timeout_ms":5000}
//            POST of the event JSON as it was enqueued, with the headers
//              Content-Type: application/json
//              X-Clisonix-Event-Id: <outbox id>        (the same on every retry: deduplicate)
//              X-Clisonix-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>
//            (the signature only when the channel has a secret). 2xx = delivered.
//   mqtt     {"name":"ops-mqtt","type":"mqtt","topic":"clisonix/alarms/ops"}: the event JSON
//            published through the function given at construction (the built-in broker).
// Secrets are stored encrypted (AES-256-GCM under options::secret_key; the HMAC needs them
// back) and never returned: reads show "secret_set". Secrets stored in plaintext by an older
// version are encrypted by start().
//
// Webhooks do not reach loopback, link-local, private (RFC 1918, fc00::/7, 100.64/10),
// unspecified, multicast or reserved addresses unless options::webhook_allow lists them: a
// literal address is refused at create/update ("invalid_argument", field "url"), every
// address a host name resolves to is checked at connect time (DNS rebinding included).
// The receiver's answer in last_error is for admins: the routes show others only the status.
//
// enqueue() writes one outbox row per channel inside the caller's transaction, so an alarm
// change and its notifications commit together; wake() after the commit nudges the
// dispatcher thread. The dispatcher delivers due rows, one circuit breaker per channel
// (endpoint "channel:<name>", see resilience.h): a failed attempt is retried after
// resilience::backoff(attempt) until `max_attempts`, then the row is dead (listed at
// /api/v1/notifications/dead, retryable). While a channel's breaker is open its rows wait
// without spending attempts. Rows left pending by a stop or crash are delivered after the
// next start: delivery is at least once, and the order of one channel's events is not
// guaranteed once retries happen.
//
// Several processes may share one PostgreSQL store: a dispatcher claims due rows for
// options::claim_lease (claimed_by/claimed_until, `FOR UPDATE SKIP LOCKED`), so no two
// deliver a row at once, and rows claimed by a process that died go to another after the
// lease. See docs/decisions/0072-cluster-metadata-and-outbox.md.
//
// Metrics: clisonix_notifications_delivered_total{type}, _failed_total{type} (attempts that
// failed), _dead_total{type}, clisonix_notifications_pending (gauge), and the breakers'.
//
// Error codes: "invalid_argument" (with the field), "not_found", "conflict", and the
// metadata store's codes.
// Thread safety: every member of notifier may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "http/http.h"
#include "meta/meta.h"
#include "observe/observe.h"
#include "resilience/resilience.h"

namespace clisonix::notify {

struct options {
    int max_attempts = 8;  // attempts before a notification is dead
    std::chrono::milliseconds backoff_base{1000};
    std::chrono::milliseconds backoff_max{5 * 60 * 1000};
    std::chrono::milliseconds webhook_timeout{5000};  // for channels without timeout_ms
    resilience::breaker_options breaker;
    int batch = 100;  // rows of one channel claimed per dispatcher pass
    // How long claimed rows stay this process's before another process may take them over
    // (it then delivers them again: at least once). Rows whose channel timeout no longer fits
    // in the lease are given back rather than delivered late.
    std::chrono::milliseconds claim_lease{60 * 1000};
    // Comma-separated CIDR blocks, addresses and host names webhooks may reach although
    // they are loopback, link-local, private, CGNAT, unspecified, multicast or reserved.
    std::string webhook_allow;
    // 32 bytes sealing channel secrets at rest (AES-256-GCM); empty = stored as given.
    std::string secret_key;
};

// The options from the notify.* config keys, with the channel-secret key from
// notify.secret_key or <data.dir>/notify.key (created once, mode 0600).
// "invalid_argument" naming the key for a bad notify.webhook_allow or notify.secret_key;
// "unavailable" when the key file cannot be read or written.
result<options> options_from(const config::config& cfg);

struct channel {
    std::string name;  // 1..64 of [A-Za-z0-9._@-], starting with a letter or digit
    std::string type;  // "webhook" or "mqtt"
    std::string url;   // webhook: http:// or https://
    std::string secret;
    std::string topic;       // mqtt
    int64_t timeout_ms = 0;  // webhook; 0 = options::webhook_timeout
    int64_t created_at = 0;  // Unix ms
    int64_t updated_at = 0;
};

struct notification {
    int64_t id = 0;
    std::string channel;
    std::string event;  // the JSON as enqueued
    int64_t attempts = 0;
    int64_t next_attempt_at = 0;  // Unix ms
    std::string last_error;
    std::string state;  // "pending", "delivered", "dead"
    int64_t created_at = 0;
    std::optional<int64_t> delivered_at;
};

// Publishes `payload` on an MQTT topic (wired to mqtt::broker::publish).
using publish_fn = std::function<status(std::string_view topic, std::string_view payload)>;

class notifier {
public:
    // `store` must outlive the notifier and carry the notify migrations (meta::open).
    notifier(meta::store& store, options opts, publish_fn mqtt_publish,
             metrics::registry& metrics = metrics::global());
    ~notifier();  // stops the dispatcher
    notifier(const notifier&) = delete;
    notifier& operator=(const notifier&) = delete;

    // Encrypts plaintext secrets left by an older version (when a key is set), then starts
    // the dispatcher thread; pending rows (from before a restart) go out at once.
    void start();
    // Finishes the delivery in progress and joins the thread. Undelivered rows stay pending.
    void stop();

    // Inside the caller's transaction: one pending row per known channel name. Unknown names
    // are skipped and logged (rules check them at save time with validate_channels).
    status enqueue(meta::store& tx, const std::vector<std::string>& channels,
                   std::string_view event_json);
    // After the enqueueing transaction committed: deliver now rather than at the next poll.
    void wake();
    // "invalid_argument" naming the first unknown channel (field "notify").
    status validate_channels(const std::vector<std::string>& names);

    // Channels. create: "conflict" when the name exists. update: replaces everything but the
    // name; an empty secret keeps the stored one.
    result<channel> create_channel(channel c);
    result<channel> update_channel(std::string_view name, channel c);
    status delete_channel(std::string_view name);
    result<channel> get_channel(std::string_view name);
    result<std::vector<channel>> list_channels();
    // Enqueues {"event":"test","channel":name,"at":ms} for the channel; returns the row id.
    result<int64_t> send_test(std::string_view name);

    // The outbox, newest first. `state` empty = all.
    result<std::vector<notification>> list(std::string_view state, int64_t limit, int64_t offset);
    // One page of the outbox and the total it belongs to, read in one statement: a row that
    // changes state between two reads would otherwise be counted but not listed.
    struct page {
        std::vector<notification> rows;
        int64_t total = 0;
    };
    result<page> list_page(std::string_view state, int64_t limit, int64_t offset);
    result<int64_t> count(std::string_view state);
    result<notification> get(int64_t id);
    // A dead notification back to pending with its attempts reset: "not_found", or
    // "conflict" when it is not dead.
    result<notification> retry(int64_t id);

    resilience::breaker_registry& breakers();

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

// A secret sealed for the store under `key` (options::secret_key; empty: kept as given),
// bound to `context` so that it opens nowhere else; other modules keep their credentials
// at rest the way channels do. open_secret: "corrupt" when it does not open with `key`.
std::string seal_secret(std::string_view key, std::string_view context, std::string_view secret);
result<std::string> open_secret(std::string_view key, std::string_view context,
                                std::string_view stored);

// /api/v1/channels (admin), /api/v1/notifications (read; retry: admin).
void add_routes(http::router& routes, notifier& n);

}  // namespace clisonix::notify
