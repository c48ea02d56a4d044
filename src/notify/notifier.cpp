// The notifier: channels in the metadata store, the outbox, and the dispatcher thread.
#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include <unistd.h>

#include <boost/json.hpp>

#include "common/time.h"
#include "notify/internal.h"
#include "notify/notify.h"

namespace clisonix::notify {

namespace json = boost::json;
using namespace std::chrono_literals;

result<options> options_from(const config::config& cfg) {
    options o;
    o.max_attempts = static_cast<int>(cfg.get_int("notify.max_attempts"));
    o.backoff_base = cfg.get_duration("notify.backoff_base");
    o.backoff_max = cfg.get_duration("notify.backoff_max");
    o.webhook_timeout = cfg.get_duration("notify.webhook_timeout");
    o.breaker.error_threshold_percentage =
        static_cast<int>(cfg.get_int("notify.breaker_error_threshold"));
    o.breaker.rolling_window = cfg.get_duration("notify.breaker_window");
    o.breaker.volume_threshold = static_cast<int>(cfg.get_int("notify.breaker_min_volume"));
    o.breaker.reset_timeout = cfg.get_duration("notify.breaker_reset_timeout");
    o.claim_lease = cfg.get_duration("notify.claim_lease");
    o.webhook_allow = cfg.get_string("notify.webhook_allow");
    if (auto allow = detail::egress_policy::parse(o.webhook_allow); !allow) return allow.error();
    auto key = detail::secret_key_from(cfg);
    if (!key) return key.error();
    o.secret_key = std::move(*key);
    return o;
}

namespace {

using meta::as_int;
using meta::as_text;

constexpr std::string_view channel_columns =
    "name, type, url, secret, topic, timeout_ms, created_at, updated_at";

channel channel_of(const std::vector<meta::value>& row) {
    channel c;
    c.name = as_text(row[0]);
    c.type = as_text(row[1]);
    c.url = as_text(row[2]);
    c.secret = as_text(row[3]);
    c.topic = as_text(row[4]);
    c.timeout_ms = as_int(row[5]);
    c.created_at = as_int(row[6]);
    c.updated_at = as_int(row[7]);
    return c;
}

constexpr std::string_view outbox_columns =
    "id, channel, event, attempts, next_attempt_at, last_error, state, created_at, delivered_at";

notification notification_of(const std::vector<meta::value>& row) {
    notification n;
    n.id = as_int(row[0]);
    n.channel = as_text(row[1]);
    n.event = as_text(row[2]);
    n.attempts = as_int(row[3]);
    n.next_attempt_at = as_int(row[4]);
    n.last_error = as_text(row[5]);
    n.state = as_text(row[6]);
    n.created_at = as_int(row[7]);
    if (!std::holds_alternative<std::monostate>(row[8])) n.delivered_at = as_int(row[8]);
    return n;
}

std::string endpoint_of(std::string_view channel_name) {
    return "channel:" + std::string(channel_name);
}

result<int64_t> insert_row(meta::store& tx, std::string_view channel_name,
                           std::string_view event_json, int64_t at) {
    auto r = tx.query(
        "INSERT INTO notification_outbox (channel, event, attempts, next_attempt_at, last_error, "
        "state, created_at) VALUES ($1, $2, 0, $3, '', 'pending', $3) RETURNING id",
        std::array<meta::value, 3>{std::string(channel_name), std::string(event_json), at});
    if (!r) return r.error();
    if (r->data.empty()) return make_error("internal", "notify: the outbox insert returned no id");
    return as_int(r->data[0][0]);
}

// Names this process in claimed_by: the host and pid for an admin reading the outbox, and
// random bits so that a restarted process with a recycled pid is not taken for the old one.
std::string make_node_id() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    std::random_device rd;
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%08x%08x", rd(), rd());
    return std::string(host) + ":" + std::to_string(::getpid()) + ":" + suffix;
}

// Due rows of one channel that no live claim holds, claimed in one statement. On PostgreSQL,
// SKIP LOCKED lets concurrent dispatchers pass over each other's rows instead of waiting for
// them; SQLite has one writer, so the statement alone is atomic.
std::string claim_sql(std::string_view backend) {
    std::string sql =
        "UPDATE notification_outbox SET claimed_by = $4, claimed_until = $5 WHERE id IN (SELECT "
        "id FROM notification_outbox WHERE channel = $1 AND state = 'pending' AND "
        "next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until <= $2) ORDER BY id "
        "LIMIT $3";
    if (backend == "postgres") sql += " FOR UPDATE SKIP LOCKED";
    sql += ") RETURNING id, event, attempts";
    return sql;
}

}  // namespace

struct notifier::impl {
    meta::store& store;
    options opts;
    publish_fn publish;
    resilience::breaker_registry breakers;
    detail::egress_policy egress;
    const std::string node_id = make_node_id();
    const std::string claim = claim_sql(store.backend());

    metrics::gauge pending;
    struct by_type {
        metrics::counter delivered, failed, dead;
    };
    by_type webhook_metrics, mqtt_metrics;

    std::mutex mutex;
    std::condition_variable cv;
    bool stopping = false;  // guarded by mutex
    bool woken = false;     // guarded by mutex
    std::thread dispatcher;

    impl(meta::store& s, options o, publish_fn p, metrics::registry& m)
        : store(s), opts(o), publish(std::move(p)), breakers(o.breaker, {}, m) {
        // options_from has checked the list; a library caller's bad list allows nothing extra.
        if (auto allow = detail::egress_policy::parse(o.webhook_allow))
            egress = std::move(*allow);
        else
            log::error("notify: webhook_allow ignored", {{"error", allow.error().message}});
        pending = m.get_gauge("clisonix_notifications_pending",
                              "Notifications in the outbox waiting for delivery");
        auto make = [&](const std::string& type) {
            const std::vector<std::string> label{"type"};
            return by_type{
                m.get_counter("clisonix_notifications_delivered_total",
                              "Notifications delivered, by channel type", label, {type}),
                m.get_counter("clisonix_notifications_failed_total",
                              "Delivery attempts that failed, by channel type", label, {type}),
                m.get_counter("clisonix_notifications_dead_total",
                              "Notifications given up after the last attempt, by channel type",
                              label, {type})};
        };
        webhook_metrics = make("webhook");
        mqtt_metrics = make("mqtt");
    }

    by_type& metrics_of(std::string_view type) {
        return type == "mqtt" ? mqtt_metrics : webhook_metrics;
    }

    bool stop_requested() {
        std::lock_guard lock(mutex);
        return stopping;
    }

    status deliver(const channel& c, int64_t id, const std::string& event) {
        if (c.type == "mqtt") {
            if (!publish) return make_error("unavailable", "mqtt: no broker to publish through");
            return publish(c.topic, event);
        }
        auto timeout =
            c.timeout_ms > 0 ? std::chrono::milliseconds(c.timeout_ms) : opts.webhook_timeout;
        // A secret that does not open fails the attempt loudly rather than going unsigned.
        auto secret = detail::open_secret(opts.secret_key, c.name, c.secret);
        if (!secret) return make_error("unavailable", "webhook: " + secret.error().message);
        return detail::post_webhook(c.url, *secret, id, event, timeout, egress);
    }

    void record(const channel& c, int64_t id, int64_t attempts, const status& outcome) {
        const int64_t now = now_ms();
        const int64_t attempt = attempts + 1;
        auto& m = metrics_of(c.type);
        result<int64_t> done = int64_t{0};
        if (outcome) {
            m.delivered.inc();
            done = store.execute(
                "UPDATE notification_outbox SET state = 'delivered', attempts = $2, "
                "delivered_at = $3, last_error = '', claimed_by = NULL, claimed_until = NULL "
                "WHERE id = $1 AND state = 'pending' AND claimed_by = $4",
                std::array<meta::value, 4>{id, attempt, now, node_id});
        } else {
            m.failed.inc();
            std::string why = outcome.error().message.substr(0, 500);
            if (attempt >= opts.max_attempts) {
                m.dead.inc();
                log::warn("notification dead",
                          {{"id", id}, {"channel", c.name}, {"attempts", attempt}, {"error", why}});
                done = store.execute(
                    "UPDATE notification_outbox SET state = 'dead', attempts = $2, "
                    "last_error = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND "
                    "state = 'pending' AND claimed_by = $4",
                    std::array<meta::value, 4>{id, attempt, why, node_id});
            } else {
                auto delay = resilience::backoff(static_cast<int>(attempt), opts.backoff_base,
                                                 opts.backoff_max);
                log::info("notification attempt failed", {{"id", id},
                                                          {"channel", c.name},
                                                          {"attempt", attempt},
                                                          {"retry_in_ms", delay.count()},
                                                          {"error", why}});
                done = store.execute(
                    "UPDATE notification_outbox SET attempts = $2, next_attempt_at = $3, "
                    "last_error = $4, claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND "
                    "state = 'pending' AND claimed_by = $5",
                    std::array<meta::value, 5>{id, attempt, now + delay.count(), why, node_id});
            }
        }
        if (!done) {
            log::error("notify: cannot record a delivery outcome",
                       {{"id", id}, {"error", done.error().message}});
        } else if (*done == 0) {
            // The lease ran out and another process claimed the row (and may deliver it
            // again), or the row was deleted with its channel: its outcome is not ours.
            log::warn("notify: claim lost before the outcome was recorded",
                      {{"id", id}, {"channel", c.name}});
        }
    }

    // Gives back this process's claims on a channel's rows it will not deliver in this pass
    // (stop, an open breaker, a lease too short for another attempt).
    void release_claims(const std::string& channel_name) {
        auto r = store.execute(
            "UPDATE notification_outbox SET claimed_by = NULL, claimed_until = NULL WHERE "
            "channel = $1 AND claimed_by = $2 AND state = 'pending'",
            std::array<meta::value, 2>{channel_name, node_id});
        if (!r) log::warn("notify: cannot release outbox claims", {{"error", r.error().message}});
    }

    void update_pending_gauge() {
        auto r = store.query("SELECT COUNT(*) FROM notification_outbox WHERE state = 'pending'");
        if (r && !r->data.empty()) pending.set(static_cast<double>(as_int(r->data[0][0])));
    }

    // One pass over every channel with due rows; returns how long the thread may sleep.
    std::chrono::milliseconds pass() {
        std::chrono::milliseconds wait = 30s;  // idle poll: also catches rows of other nodes
        const int64_t now = now_ms();
        update_pending_gauge();
        auto due = store.query(
            "SELECT DISTINCT channel FROM notification_outbox WHERE state = 'pending' AND "
            "next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)",
            std::array<meta::value, 1>{now});
        if (!due) {
            log::warn("notify: cannot read the outbox", {{"error", due.error().message}});
            return 1s;
        }
        bool more = false;
        for (const auto& row : due->data) {
            const std::string name = as_text(row[0]);
            auto ch = load_stored(name);
            if (!ch) {
                // Deleted since the rows were written (delete_channel marks them itself;
                // this catches rows enqueued in a transaction that raced the delete).
                if (ch.error().code == "not_found") {
                    auto r = store.execute(
                        "UPDATE notification_outbox SET state = 'dead', last_error = 'channel "
                        "deleted' WHERE channel = $1 AND state = 'pending'",
                        std::array<meta::value, 1>{name});
                    if (!r)
                        log::warn("notify: cannot update the outbox",
                                  {{"error", r.error().message}});
                }
                continue;
            }
            auto& breaker = breakers.get(endpoint_of(name));
            if (breaker.state() == resilience::breaker_state::open) {
                wait = std::min(wait, std::max(breaker.retry_in(), std::chrono::milliseconds(1)));
                continue;
            }
            const int64_t claimed_until = now_ms() + opts.claim_lease.count();
            auto rows = store.query(
                claim,
                std::array<meta::value, 5>{name, now, int64_t{opts.batch}, node_id, claimed_until});
            if (!rows) {
                log::warn("notify: cannot claim outbox rows", {{"error", rows.error().message}});
                return 1s;
            }
            // RETURNING follows no ORDER BY: oldest first, as enqueued.
            std::sort(rows->data.begin(), rows->data.end(),
                      [](const auto& x, const auto& y) { return as_int(x[0]) < as_int(y[0]); });
            const int64_t timeout =
                ch->timeout_ms > 0 ? ch->timeout_ms : opts.webhook_timeout.count();
            bool given_back = false;
            int attempted = 0;
            for (const auto& r : rows->data) {
                if (stop_requested()) {
                    release_claims(name);
                    return 0ms;
                }
                if (attempted > 0 && now_ms() + timeout >= claimed_until) {
                    // An attempt could outlast the lease and overlap another process's (the
                    // first always goes, or a lease shorter than the timeout would stall).
                    release_claims(name);
                    given_back = true;
                    more = true;
                    break;
                }
                const int64_t id = as_int(r[0]);
                const std::string event = as_text(r[1]);
                ++attempted;
                bool ran = false;
                auto outcome = resilience::call(breaker, [&]() -> status {
                    ran = true;
                    return deliver(*ch, id, event);
                });
                if (!ran) {
                    // The breaker opened (or its half-open trial is out): the rest wait,
                    // without spending attempts, until it lets a trial through.
                    wait =
                        std::min(wait, std::max(breaker.retry_in(), std::chrono::milliseconds(1)));
                    release_claims(name);
                    given_back = true;
                    break;
                }
                record(*ch, id, as_int(r[2]), outcome);
            }
            if (!given_back && rows->data.size() >= static_cast<size_t>(opts.batch)) more = true;
        }
        update_pending_gauge();
        if (more) return 0ms;
        // The next moment something is due: per channel, its earliest row, or for a channel
        // whose breaker is open, the moment it lets a trial through. Rows that failed during
        // this pass may already be due again. Rows another process holds are due when its
        // lease runs out (it may have died).
        auto next = store.query(
            "SELECT channel, MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until ELSE "
            "next_attempt_at END) FROM notification_outbox WHERE state = 'pending' GROUP BY "
            "channel");
        if (!next) return 1s;
        const int64_t after = now_ms();
        for (const auto& row : next->data) {
            auto& breaker = breakers.get(endpoint_of(as_text(row[0])));
            auto left = breaker.state() == resilience::breaker_state::open
                            ? std::max(breaker.retry_in(), std::chrono::milliseconds(1))
                            : std::chrono::milliseconds(as_int(row[1]) - after);
            wait = std::min(wait, std::max(left, std::chrono::milliseconds(0)));
        }
        return wait;
    }

    void run() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            woken = false;
            lock.unlock();
            std::chrono::milliseconds wait = 1s;
            try {
                wait = pass();
            } catch (const std::exception& e) {
                log::error("notify: dispatcher pass failed", {{"error", e.what()}});
            }
            lock.lock();
            if (wait.count() > 0) cv.wait_for(lock, wait, [&] { return stopping || woken; });
        }
    }

    // The channel as stored: a sealed secret stays sealed (deliver() opens it).
    result<channel> load_stored(std::string_view name) {
        auto r = store.query("SELECT " + std::string(channel_columns) +
                                 " FROM notification_channels WHERE name = $1",
                             std::array<meta::value, 1>{std::string(name)});
        if (!r) return r.error();
        if (r->data.empty())
            return make_error("not_found", "No channel named " + std::string(name), "name");
        return channel_of(r->data[0]);
    }

    // The plaintext secret in place of the sealed one; left sealed when it does not open
    // (the routes only say whether a secret is set; deliveries report the failure).
    void reveal(channel& c) {
        if (auto plain = detail::open_secret(opts.secret_key, c.name, c.secret))
            c.secret = std::move(*plain);
    }

    result<channel> load_channel(std::string_view name) {
        auto c = load_stored(name);
        if (c) reveal(*c);
        return c;
    }

    // Secrets written in plaintext by a version before encryption at rest, sealed now. The
    // UPDATE matches the plaintext read, so a concurrent change of the secret is not undone.
    void seal_plaintext_secrets() {
        if (opts.secret_key.empty()) return;
        auto r = store.query(
            "SELECT name, secret FROM notification_channels WHERE secret <> '' ORDER BY name");
        if (!r) {
            log::warn("notify: cannot read channel secrets", {{"error", r.error().message}});
            return;
        }
        int64_t sealed = 0;
        for (const auto& row : r->data) {
            const std::string name = as_text(row[0]), stored = as_text(row[1]);
            if (detail::is_sealed(stored)) continue;
            auto done = store.execute(
                "UPDATE notification_channels SET secret = $3 WHERE name = $1 AND secret = $2",
                std::array<meta::value, 3>{name, stored,
                                           detail::seal_secret(opts.secret_key, name, stored)});
            if (!done) {
                log::warn("notify: cannot encrypt a channel secret",
                          {{"channel", name}, {"error", done.error().message}});
                continue;
            }
            sealed += *done;
        }
        if (sealed > 0) log::info("notify: channel secrets encrypted at rest", {{"count", sealed}});
    }
};

notifier::notifier(meta::store& store, options opts, publish_fn mqtt_publish,
                   metrics::registry& metrics)
    : _impl(std::make_unique<impl>(store, opts, std::move(mqtt_publish), metrics)) {
    detail::init_http_client();
}

notifier::~notifier() {
    stop();
}

void notifier::start() {
    _impl->seal_plaintext_secrets();
    std::lock_guard lock(_impl->mutex);
    if (_impl->dispatcher.joinable()) return;
    _impl->stopping = false;
    _impl->dispatcher = std::thread([i = _impl.get()] { i->run(); });
}

void notifier::stop() {
    {
        std::lock_guard lock(_impl->mutex);
        if (!_impl->dispatcher.joinable()) return;
        _impl->stopping = true;
    }
    _impl->cv.notify_all();
    _impl->dispatcher.join();
}

void notifier::wake() {
    {
        std::lock_guard lock(_impl->mutex);
        _impl->woken = true;
    }
    _impl->cv.notify_all();
}

status notifier::enqueue(meta::store& tx, const std::vector<std::string>& channels,
                         std::string_view event_json) {
    json::error_code ec;
    auto parsed = json::parse(event_json, ec);
    if (ec || !parsed.is_object())
        return make_error("invalid_argument", "A notification event must be a JSON object",
                          "event");
    const int64_t now = now_ms();
    for (const auto& name : channels) {
        auto known = tx.query("SELECT 1 FROM notification_channels WHERE name = $1",
                              std::array<meta::value, 1>{name});
        if (!known) return known.error();
        if (known->data.empty()) {
            log::warn("notify: event for an unknown channel skipped", {{"channel", name}});
            continue;
        }
        if (auto id = insert_row(tx, name, event_json, now); !id) return id.error();
    }
    return {};
}

status notifier::validate_channels(const std::vector<std::string>& names) {
    for (const auto& name : names) {
        auto c = _impl->load_channel(name);
        if (!c && c.error().code == "not_found")
            return make_error("invalid_argument", "No notification channel named " + name,
                              "notify");
        if (!c) return c.error();
    }
    return {};
}

result<channel> notifier::create_channel(channel c) {
    if (auto ok = detail::check_channel(c, true, _impl->egress); !ok) return ok.error();
    c.created_at = c.updated_at = now_ms();
    auto r = _impl->store.execute(
        "INSERT INTO notification_channels (" + std::string(channel_columns) +
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        std::array<meta::value, 8>{c.name, c.type, c.url,
                                   detail::seal_secret(_impl->opts.secret_key, c.name, c.secret),
                                   c.topic, c.timeout_ms, c.created_at, c.updated_at});
    if (!r) {
        if (r.error().code == "conflict")
            return make_error("conflict", "A channel named " + c.name + " exists", "name");
        return r.error();
    }
    return c;
}

result<channel> notifier::update_channel(std::string_view name, channel c) {
    c.name = std::string(name);
    // As stored: a kept secret is written back sealed as it is, even one that no longer
    // opens (a PUT with a new secret is how that is repaired).
    auto old = _impl->load_stored(name);
    if (!old) return old.error();
    if (auto ok = detail::check_channel(c, false, _impl->egress); !ok) return ok.error();
    std::string stored = detail::seal_secret(_impl->opts.secret_key, c.name, c.secret);
    if (c.secret.empty() && c.type == old->type) {
        stored = old->secret;
        c.secret = old->secret;
        _impl->reveal(c);
    }
    c.created_at = old->created_at;
    c.updated_at = now_ms();
    auto r = _impl->store.execute(
        "UPDATE notification_channels SET type = $2, url = $3, secret = $4, topic = $5, "
        "timeout_ms = $6, updated_at = $7 WHERE name = $1",
        std::array<meta::value, 7>{c.name, c.type, c.url, stored, c.topic, c.timeout_ms,
                                   c.updated_at});
    if (!r) return r.error();
    if (*r == 0) return make_error("not_found", "No channel named " + c.name, "name");
    // A new address deserves a fresh start, not the old endpoint's failures.
    if (old->url != c.url || old->topic != c.topic || old->type != c.type)
        _impl->breakers.get(endpoint_of(c.name)).reset();
    return c;
}

status notifier::delete_channel(std::string_view name) {
    return _impl->store.transaction([&](meta::store& tx) -> status {
        auto r = tx.execute("DELETE FROM notification_channels WHERE name = $1",
                            std::array<meta::value, 1>{std::string(name)});
        if (!r) return r.error();
        if (*r == 0)
            return make_error("not_found", "No channel named " + std::string(name), "name");
        // Nothing can deliver them any more: dead, visible, and retryable once a channel of
        // that name exists again.
        auto d = tx.execute(
            "UPDATE notification_outbox SET state = 'dead', last_error = 'channel deleted' "
            "WHERE channel = $1 AND state = 'pending'",
            std::array<meta::value, 1>{std::string(name)});
        if (!d) return d.error();
        return {};
    });
}

result<channel> notifier::get_channel(std::string_view name) {
    return _impl->load_channel(name);
}

result<std::vector<channel>> notifier::list_channels() {
    auto r = _impl->store.query("SELECT " + std::string(channel_columns) +
                                " FROM notification_channels ORDER BY name");
    if (!r) return r.error();
    std::vector<channel> out;
    for (const auto& row : r->data) {
        out.push_back(channel_of(row));
        _impl->reveal(out.back());
    }
    return out;
}

result<int64_t> notifier::send_test(std::string_view name) {
    auto c = _impl->load_channel(name);
    if (!c) return c.error();
    const int64_t now = now_ms();
    json::object event{{"event", "test"}, {"channel", c->name}, {"at", now}};
    auto id = insert_row(_impl->store, c->name, json::serialize(event), now);
    if (id) wake();
    return id;
}

result<std::vector<notification>> notifier::list(std::string_view state, int64_t limit,
                                                 int64_t offset) {
    auto p = list_page(state, limit, offset);
    if (!p) return p.error();
    return std::move(p->rows);
}

result<notifier::page> notifier::list_page(std::string_view state, int64_t limit, int64_t offset) {
    // COUNT(*) OVER () is evaluated before LIMIT, in the same snapshot as the rows.
    std::string sql =
        "SELECT " + std::string(outbox_columns) + ", COUNT(*) OVER () FROM notification_outbox";
    std::vector<meta::value> params;
    if (!state.empty()) {
        sql += " WHERE state = $3";
        params = {limit, offset, std::string(state)};
    } else {
        params = {limit, offset};
    }
    sql += " ORDER BY id DESC LIMIT $1 OFFSET $2";
    auto r = _impl->store.query(sql, params);
    if (!r) return r.error();
    page out;
    for (const auto& row : r->data)
        out.rows.push_back(notification_of(row));
    if (!r->data.empty()) {
        out.total = as_int(r->data[0].back());
    } else if (offset > 0) {
        // Past the end: no row carries the total.
        auto total = count(state);
        if (!total) return total.error();
        out.total = *total;
    }
    return out;
}

result<int64_t> notifier::count(std::string_view state) {
    auto r = state.empty()
                 ? _impl->store.query("SELECT COUNT(*) FROM notification_outbox")
                 : _impl->store.query("SELECT COUNT(*) FROM notification_outbox WHERE state = $1",
                                      std::array<meta::value, 1>{std::string(state)});
    if (!r) return r.error();
    return r->data.empty() ? 0 : as_int(r->data[0][0]);
}

result<notification> notifier::get(int64_t id) {
    auto r = _impl->store.query(
        "SELECT " + std::string(outbox_columns) + " FROM notification_outbox WHERE id = $1",
        std::array<meta::value, 1>{id});
    if (!r) return r.error();
    if (r->data.empty())
        return make_error("not_found", "No notification with id " + std::to_string(id), "id");
    return notification_of(r->data[0]);
}

result<notification> notifier::retry(int64_t id) {
    // RETURNING: the answer is the row as retried, even when the dispatcher delivers it
    // before a second read could run.
    auto r = _impl->store.query(
        "UPDATE notification_outbox SET state = 'pending', attempts = 0, next_attempt_at = $2, "
        "last_error = '', claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND state = "
        "'dead' RETURNING " +
            std::string(outbox_columns),
        std::array<meta::value, 2>{id, now_ms()});
    if (!r) return r.error();
    if (r->data.empty()) {
        auto n = get(id);
        if (!n) return n.error();
        return make_error("conflict",
                          "Notification " + std::to_string(id) + " is " + n->state +
                              "; only dead notifications can be retried",
                          "id");
    }
    wake();
    return notification_of(r->data[0]);
}

resilience::breaker_registry& notifier::breakers() {
    return _impl->breakers;
}

}  // namespace clisonix::notify
