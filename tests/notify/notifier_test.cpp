// The notifier on a real SQLite store, delivering to a real HTTP receiver: exactly-signed
// delivery, the transaction boundary, the circuit breaker's open / half-open / closed
// cycle, retries until dead and back, MQTT channels, and a restart that loses nothing.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <set>
#include <thread>

#include "common/time.h"
#include "notify/notify.h"
#include "notify/receiver.h"
#include "support/test_support.h"

// Built twice: on SQLite (notifier_test) and, with CLISONIX_NOTIFY_PG, on the PostgreSQL
// test server (notifier_postgres_test), so that every statement runs on both backends.
#ifdef CLISONIX_NOTIFY_PG
#include "support/pg_test_db.h"
#define NOTIFIER_TEST notifier_postgres_test
#else
#define NOTIFIER_TEST notifier_test
#endif

namespace clisonix::notify {
namespace {

using namespace std::chrono_literals;
using testing::hmac_hex;
using testing::receiver;

options fast_options() {
    options o;
    o.max_attempts = 100;
    o.backoff_base = 10ms;
    o.backoff_max = 20ms;
    o.webhook_timeout = 2s;
    o.breaker.volume_threshold = 1000;  // off unless a test wants it
    o.breaker.reset_timeout = 500ms;
    o.webhook_allow = "127.0.0.1";        // the receiver plays an on-site endpoint
    o.secret_key = std::string(32, 'k');  // secrets sealed at rest, as in the server
    return o;
}

struct fixture {
    testing::temp_dir dir{"clisonix-notify"};
#ifdef CLISONIX_NOTIFY_PG
    std::unique_ptr<testing::pg_test_database> pg;  // before the store: dropped after it
#endif
    std::unique_ptr<meta::store> store;
    metrics::registry metrics;
    std::mutex published_mutex;
    std::vector<std::pair<std::string, std::string>> published;
    std::atomic<bool> mqtt_up{true};
    std::unique_ptr<notifier> n;

#ifdef CLISONIX_NOTIFY_PG
    std::string url() {
        if (!pg) {
            auto db = testing::pg_test_database::create("notify");
            if (!db) throw std::runtime_error(db.error().message);
            pg = std::move(*db);
        }
        return pg->url();
    }
#else
    std::string url() {
        return "sqlite:" + (dir.path() / "meta.db").string();
    }
#endif

    explicit fixture(options o = fast_options()) {
        open_store();
        make_notifier(o);
    }
    void open_store() {
        auto s = meta::open(url(), dir.str());
        if (!s) throw std::runtime_error(s.error().message);
        store = std::move(*s);
    }
    void make_notifier(options o) {
        n = std::make_unique<notifier>(
            *store, o,
            [this](std::string_view topic, std::string_view payload) -> status {
                if (!mqtt_up) return make_error("unavailable", "mqtt not running");
                std::lock_guard lock(published_mutex);
                published.emplace_back(topic, payload);
                return {};
            },
            metrics);
        n->start();
    }
    void enqueue(const std::vector<std::string>& channels, const std::string& event) {
        auto st = store->transaction(
            [&](meta::store& tx) -> status { return n->enqueue(tx, channels, event); });
        ASSERT_TRUE(st.ok()) << st.error().message;
        n->wake();
    }
    void webhook(const std::string& name, const std::string& url, const std::string& secret) {
        channel c;
        c.name = name;
        c.type = "webhook";
        c.url = url;
        c.secret = secret;
        auto made = n->create_channel(c);
        ASSERT_TRUE(made.ok()) << made.error().message;
    }
    // Waits until `count(state) == expected` (or 10 s pass); returns the last count.
    int64_t wait_state(const std::string& state, int64_t expected,
                       std::chrono::milliseconds timeout = 10s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        int64_t c = -1;
        while (std::chrono::steady_clock::now() < deadline) {
            c = *n->count(state);
            if (c == expected) return c;
            std::this_thread::sleep_for(5ms);
        }
        return c;
    }
    bool metric(const std::string& line) {
        return metrics.expose().find(line + "\n") != std::string::npos;
    }
};

std::string alarm_event(int i) {
    return R"({"event":"alarm.created","alarm":{"id":)" + std::to_string(i) +
           R"(,"rule":"pump hot","device":"pump-1","severity":"major"},"at":1704067200000})";
}

TEST(NOTIFIER_TEST, a_webhook_gets_the_exact_body_once_with_a_valid_signature) {
    receiver rx;
    fixture f;
    f.webhook("ops", rx.url(), "s3cret-key");
    const std::string event = alarm_event(1);
    f.enqueue({"ops"}, event);
    ASSERT_TRUE(rx.wait_for(1, 10s));
    ASSERT_EQ(f.wait_state("delivered", 1), 1);
    std::this_thread::sleep_for(200ms);
    auto got = rx.requests();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].method, "POST");
    EXPECT_EQ(got[0].target, "/hook");
    EXPECT_EQ(got[0].body, event);
    EXPECT_EQ(got[0].header("content-type"), "application/json");
    EXPECT_EQ(got[0].header("x-clisonix-signature"), "sha256=" + hmac_hex("s3cret-key", event));
    auto rows = f.n->list("delivered", 10, 0);
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ(got[0].header("x-clisonix-event-id"), std::to_string((*rows)[0].id));
    EXPECT_EQ((*rows)[0].attempts, 1);
    EXPECT_TRUE((*rows)[0].delivered_at.has_value());
    EXPECT_TRUE(f.metric("clisonix_notifications_delivered_total{type=\"webhook\"} 1"))
        << f.metrics.expose();
    EXPECT_TRUE(f.metric("clisonix_notifications_pending 0"));
}

// A page and its total come from one read, so that a row changing state in between is never
// counted without being listed (the dead-letter list once showed total 1 and no rows).
TEST(NOTIFIER_TEST, a_page_carries_the_total_of_its_state) {
    receiver rx;
    fixture f;
    f.webhook("ops", rx.url(), "");
    for (int i = 1; i <= 3; ++i)
        f.enqueue({"ops"}, alarm_event(i));
    ASSERT_EQ(f.wait_state("delivered", 3), 3);
    auto first = f.n->list_page("delivered", 2, 0);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->rows.size(), 2u);
    EXPECT_EQ(first->total, 3);
    EXPECT_GT(first->rows[0].id, first->rows[1].id);
    auto last = f.n->list_page("delivered", 2, 2);
    EXPECT_EQ(last->rows.size(), 1u);
    EXPECT_EQ(last->total, 3);
    auto past_the_end = f.n->list_page("delivered", 2, 5);
    EXPECT_TRUE(past_the_end->rows.empty());
    EXPECT_EQ(past_the_end->total, 3);
    auto none = f.n->list_page("dead", 2, 0);
    EXPECT_TRUE(none->rows.empty());
    EXPECT_EQ(none->total, 0);
    EXPECT_EQ(f.n->list_page("", 10, 0)->total, 3);
}

TEST(NOTIFIER_TEST, rows_commit_with_the_callers_transaction_and_unknown_channels_are_skipped) {
    receiver rx;
    fixture f;
    f.webhook("ops", rx.url(), "");
    auto rolled_back = f.store->transaction([&](meta::store& tx) -> status {
        if (auto st = f.n->enqueue(tx, {"ops"}, alarm_event(1)); !st) return st;
        return make_error("conflict", "the alarm change failed");
    });
    EXPECT_FALSE(rolled_back.ok());
    f.enqueue({"nobody", "ops"}, alarm_event(2));
    ASSERT_EQ(f.wait_state("delivered", 1), 1);
    EXPECT_EQ(*f.n->count(""), 1);
    ASSERT_TRUE(rx.wait_for(1, 1s));
    EXPECT_EQ(rx.requests()[0].body, alarm_event(2));
    // No secret, no signature.
    EXPECT_EQ(rx.requests()[0].header("x-clisonix-signature"), "");
    EXPECT_EQ(f.n->validate_channels({"ops"}).ok(), true);
    auto bad = f.n->validate_channels({"ops", "nobody"});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, "invalid_argument");
    EXPECT_EQ(bad.error().field, "notify");
    auto not_json = f.store->transaction(
        [&](meta::store& tx) -> status { return f.n->enqueue(tx, {"ops"}, "not json"); });
    EXPECT_EQ(not_json.error().code, "invalid_argument");
}

TEST(NOTIFIER_TEST, a_failing_receiver_opens_the_breaker_and_half_open_recovers) {
    receiver rx;
    rx.set_status(500);
    auto o = fast_options();
    o.breaker.volume_threshold = 2;
    o.breaker.error_threshold_percentage = 50;
    o.breaker.rolling_window = 10s;
    o.breaker.reset_timeout = 700ms;
    fixture f(o);
    f.webhook("ops", rx.url(), "k");
    f.enqueue({"ops"}, alarm_event(1));
    // Two failed attempts reach the volume at 100 % errors: open.
    ASSERT_TRUE(rx.wait_for(2, 5s));
    auto& breaker = f.n->breakers().get("channel:ops");
    for (int i = 0; i < 100 && breaker.state() != resilience::breaker_state::open; ++i)
        std::this_thread::sleep_for(5ms);
    ASSERT_EQ(breaker.state(), resilience::breaker_state::open);
    EXPECT_TRUE(f.metric("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 1"))
        << f.metrics.expose();
    // While open, new notifications wait without spending attempts.
    for (int i = 2; i <= 4; ++i)
        f.enqueue({"ops"}, alarm_event(i));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(rx.count(), 2u);
    auto pending = *f.n->list("pending", 10, 0);
    ASSERT_EQ(pending.size(), 4u);
    for (const auto& p : pending)
        EXPECT_EQ(p.attempts, p.event == alarm_event(1) ? 2 : 0) << p.event;

    // After the reset timeout exactly one trial goes out; it fails and the breaker reopens.
    ASSERT_TRUE(rx.wait_for(3, 3s));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(rx.count(), 3u);
    EXPECT_EQ(breaker.state(), resilience::breaker_state::open);

    // The receiver recovers: the next trial succeeds, the breaker closes, everything goes.
    rx.set_status(204);
    ASSERT_EQ(f.wait_state("delivered", 4, 5s), 4);
    EXPECT_EQ(breaker.state(), resilience::breaker_state::closed);
    EXPECT_TRUE(f.metric("clisonix_circuit_breaker_state{endpoint=\"channel:ops\"} 0"));
    auto got = rx.requests();
    ASSERT_EQ(got.size(), 7u);
    std::set<std::string> bodies;
    for (size_t i = 3; i < got.size(); ++i)
        bodies.insert(got[i].body);
    EXPECT_EQ(bodies.size(), 4u);
    auto delivered = f.n->list("delivered", 10, 0);
    for (const auto& d : *delivered)
        EXPECT_EQ(d.attempts, d.event == alarm_event(1) ? 4 : 1) << d.event;
    EXPECT_TRUE(f.metric("clisonix_notifications_failed_total{type=\"webhook\"} 3"));
}

TEST(NOTIFIER_TEST, retries_with_backoff_until_dead_then_retry_delivers) {
    receiver rx;
    rx.set_status(503);
    auto o = fast_options();
    o.max_attempts = 3;
    fixture f(o);
    f.webhook("ops", rx.url(), "k");
    f.enqueue({"ops"}, alarm_event(1));
    ASSERT_EQ(f.wait_state("dead", 1), 1);
    EXPECT_EQ(rx.count(), 3u);
    auto dead = *f.n->list("dead", 10, 0);
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].attempts, 3);
    EXPECT_EQ(dead[0].last_error, "webhook: answered 503: nope");
    EXPECT_TRUE(f.metric("clisonix_notifications_dead_total{type=\"webhook\"} 1"));
    // The same event id on every attempt, for the receiver to deduplicate.
    for (const auto& r : rx.requests())
        EXPECT_EQ(r.header("x-clisonix-event-id"), std::to_string(dead[0].id));

    rx.set_status(200);
    auto again = f.n->retry(dead[0].id);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->state, "pending");
    EXPECT_EQ(again->attempts, 0);
    EXPECT_EQ(again->last_error, "");
    // Pending (or already delivered) is not dead: a second retry is refused.
    EXPECT_EQ(f.n->retry(dead[0].id).error().code, "conflict");
    ASSERT_EQ(f.wait_state("delivered", 1), 1);
    EXPECT_EQ(f.n->get(dead[0].id)->attempts, 1);
    EXPECT_EQ(f.n->retry(dead[0].id).error().code, "conflict");
    EXPECT_EQ(f.n->retry(999).error().code, "not_found");
}

TEST(NOTIFIER_TEST, a_refused_connection_is_a_failed_attempt) {
    uint16_t port = 0;
    {
        receiver gone;
        port = gone.port();
    }
    auto o = fast_options();
    o.max_attempts = 2;
    fixture f(o);
    f.webhook("ops", "http://127.0.0.1:" + std::to_string(port) + "/hook", "");
    f.enqueue({"ops"}, alarm_event(1));
    ASSERT_EQ(f.wait_state("dead", 1), 1);
    auto dead = *f.n->list("dead", 10, 0);
    EXPECT_TRUE(dead[0].last_error.starts_with("webhook: ")) << dead[0].last_error;
}

TEST(NOTIFIER_TEST, a_restart_with_undelivered_notifications_delivers_them_all) {
    receiver rx;
    const uint16_t port = rx.port();
    rx.stop();  // the user's endpoint is down: connections are refused
    auto o = fast_options();
    o.max_attempts = 100000;  // none may die while the endpoint is down
    auto f = std::make_unique<fixture>(o);
    f->webhook("ops", "http://127.0.0.1:" + std::to_string(port) + "/hook", "k");
    for (int i = 1; i <= 5; ++i)
        f->enqueue({"ops"}, alarm_event(i));
    // Let every row fail at least once, then "crash": notifier and store go away.
    for (int i = 0; i < 500; ++i) {
        bool all = true;
        auto rows = f->n->list("pending", 10, 0);
        for (const auto& p : *rows)
            all = all && p.attempts >= 1;
        if (all) break;
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(*f->n->count("pending"), 5);
    f->n.reset();
    f->store.reset();

    rx.start();  // the endpoint is back, same port
    f->open_store();
    f->make_notifier(fast_options());
    ASSERT_EQ(f->wait_state("delivered", 5), 5);
    std::set<std::string> bodies;
    for (const auto& r : rx.requests())
        bodies.insert(r.body);
    EXPECT_EQ(bodies.size(), 5u);
    for (int i = 1; i <= 5; ++i)
        EXPECT_TRUE(bodies.contains(alarm_event(i))) << i;
}

// Many events in one go: each arrives exactly once (no retries were needed), and the rate
// is printed for the record.
TEST(NOTIFIER_TEST, five_hundred_events_arrive_once_each) {
    receiver rx;
    fixture f;
    f.webhook("ops", rx.url(), "k");
    auto start = std::chrono::steady_clock::now();
    auto st = f.store->transaction([&](meta::store& tx) -> status {
        for (int i = 0; i < 500; ++i)
            if (auto ok = f.n->enqueue(tx, {"ops"}, alarm_event(i)); !ok) return ok;
        return {};
    });
    ASSERT_TRUE(st.ok());
    f.n->wake();
    ASSERT_EQ(f.wait_state("delivered", 500, 60s), 500);
    auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::set<std::string> ids;
    for (const auto& r : rx.requests())
        ids.insert(r.header("x-clisonix-event-id"));
    EXPECT_EQ(rx.count(), 500u);
    EXPECT_EQ(ids.size(), 500u);
    std::printf("delivered 500 webhooks in %.3f s (%.0f/s)\n", took, 500 / took);
}

// A row claimed by another process (one sharing the store, here one that died) is left to it
// until its lease runs out, then delivered here, and the claim is gone once it is recorded.
TEST(NOTIFIER_TEST, a_row_another_process_claimed_waits_for_its_lease) {
    receiver rx;
    fixture f;
    f.webhook("ops", rx.url(), "k");
    const auto claimed = std::chrono::steady_clock::now();
    auto st = f.store->transaction([&](meta::store& tx) -> status {
        if (auto ok = f.n->enqueue(tx, {"ops"}, alarm_event(1)); !ok) return ok;
        auto r = tx.execute(
            "UPDATE notification_outbox SET claimed_by = 'other:1:dead', claimed_until = $1",
            std::array<meta::value, 1>{now_ms() + 500});
        if (!r) return r.error();
        return {};
    });
    ASSERT_TRUE(st.ok()) << st.error().message;
    f.n->wake();
    EXPECT_FALSE(rx.wait_for(1, 300ms)) << "delivered while another process held it";
    ASSERT_TRUE(rx.wait_for(1, 5s));
    EXPECT_GE(rx.requests()[0].at - claimed, 450ms);
    ASSERT_EQ(f.wait_state("delivered", 1), 1);
    auto r = f.store->query("SELECT claimed_by, claimed_until FROM notification_outbox");
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(std::holds_alternative<std::monostate>(r->data.at(0).at(0)));
    EXPECT_TRUE(std::holds_alternative<std::monostate>(r->data.at(0).at(1)));
    EXPECT_EQ(rx.count(), 1u);
}

TEST(NOTIFIER_TEST, deleting_a_channel_makes_its_undelivered_notifications_dead) {
    fixture f;
    channel c;
    c.name = "ops-mqtt";
    c.type = "mqtt";
    c.topic = "clisonix/alarms/ops";
    ASSERT_TRUE(f.n->create_channel(c).ok());
    f.mqtt_up = false;
    f.enqueue({"ops-mqtt"}, alarm_event(1));
    f.enqueue({"ops-mqtt"}, alarm_event(2));
    ASSERT_TRUE(f.n->delete_channel("ops-mqtt").ok());
    EXPECT_EQ(*f.n->count("pending"), 0);
    auto dead = f.n->list("dead", 10, 0);
    ASSERT_EQ(dead->size(), 2u);
    EXPECT_EQ(dead->at(0).last_error, "channel deleted");
    EXPECT_EQ(dead->at(0).event, alarm_event(2));  // newest first
}

TEST(NOTIFIER_TEST, mqtt_channels_publish_through_the_given_function_and_retry) {
    fixture f;
    channel c;
    c.name = "ops-mqtt";
    c.type = "mqtt";
    c.topic = "clisonix/alarms/ops";
    ASSERT_TRUE(f.n->create_channel(c).ok());
    f.mqtt_up = false;
    f.enqueue({"ops-mqtt"}, alarm_event(1));
    auto first_pending = [&] {
        auto rows = f.n->list("pending", 1, 0);
        return rows->empty() ? notification{} : rows->front();
    };
    for (int i = 0; i < 400 && first_pending().attempts < 2; ++i)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(first_pending().last_error, "mqtt not running");
    f.mqtt_up = true;
    ASSERT_EQ(f.wait_state("delivered", 1), 1);
    std::lock_guard lock(f.published_mutex);
    ASSERT_EQ(f.published.size(), 1u);
    EXPECT_EQ(f.published[0].first, "clisonix/alarms/ops");
    EXPECT_EQ(f.published[0].second, alarm_event(1));
    EXPECT_TRUE(f.metric("clisonix_notifications_delivered_total{type=\"mqtt\"} 1"));
}

channel mk(std::string name, std::string type, std::string url, std::string secret,
           std::string topic, int64_t timeout_ms) {
    channel c;
    c.name = std::move(name);
    c.type = std::move(type);
    c.url = std::move(url);
    c.secret = std::move(secret);
    c.topic = std::move(topic);
    c.timeout_ms = timeout_ms;
    return c;
}

TEST(NOTIFIER_TEST, channels_are_validated) {
    fixture f;
    auto attempt = [&](channel c) { return f.n->create_channel(std::move(c)); };
    auto field_of = [&](channel c) {
        auto r = attempt(std::move(c));
        return r.ok() ? std::string("ok") : r.error().code + ":" + r.error().field;
    };
    EXPECT_EQ(field_of(mk("ops", "webhook", "ftp://x/y", "", "", 0)), "invalid_argument:url");
    EXPECT_EQ(field_of(mk("ops", "webhook", "http://", "", "", 0)), "invalid_argument:url");
    EXPECT_EQ(field_of(mk("ops", "webhook", "example.com/hook", "", "", 0)),
              "invalid_argument:url");
    EXPECT_EQ(field_of(mk("ops", "webhook", "", "", "", 0)), "invalid_argument:url");
    EXPECT_EQ(field_of(mk("ops", "sms", "", "", "", 0)), "invalid_argument:type");
    EXPECT_EQ(field_of(mk("bad name", "mqtt", "", "", "a", 0)), "invalid_argument:name");
    EXPECT_EQ(field_of(mk("m", "mqtt", "", "", "a/#", 0)), "invalid_argument:topic");
    EXPECT_EQ(field_of(mk("ops", "webhook", "https://h.example/x", "", "", 50)),
              "invalid_argument:timeout_ms");
    EXPECT_EQ(field_of(mk("ops", "webhook", "https://h.example/x", "", "", 0)), "ok");
    EXPECT_EQ(field_of(mk("ops", "webhook", "https://h.example/x", "", "", 0)), "conflict:name");
    // Replacing without a secret keeps the stored one.
    channel with_secret = mk("s", "webhook", "http://a.example/", "k", "", 0);
    ASSERT_TRUE(attempt(with_secret).ok());
    auto replaced = f.n->update_channel("s", mk("", "webhook", "http://b.example/", "", "", 0));
    ASSERT_TRUE(replaced.ok());
    EXPECT_EQ(f.n->get_channel("s")->secret, "k");
    EXPECT_EQ(f.n->get_channel("s")->url, "http://b.example/");
    EXPECT_EQ(f.n->update_channel("nope", mk("", "mqtt", "", "", "t", 0)).error().code,
              "not_found");
    EXPECT_TRUE(f.n->delete_channel("s").ok());
    EXPECT_EQ(f.n->delete_channel("s").error().code, "not_found");
}

}  // namespace
}  // namespace clisonix::notify
