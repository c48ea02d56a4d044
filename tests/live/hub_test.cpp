// The live hub without sockets: a fake http::websocket records what the hub queues, so that
// the protocol, the subscriptions, the ordering and the slow-consumer bound are checked
// message by message.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include "live/live.h"
#include "storage/storage.h"

namespace clisonix::live {
namespace {

// Queues as the server does (the same bound rule) but writes only when drain() is called
// or, for a reader that keeps up, at once.
class fake_websocket : public http::websocket {
public:
    fake_websocket(http::websocket_accept accept, bool keeps_up)
        : _accept(std::move(accept)), _keeps_up(keeps_up) {}

    send_result send(std::shared_ptr<const std::string> text) override {
        std::lock_guard lock(_mutex);
        if (_closing || _overflowed) return send_result::closed;
        if (_queue.size() + 1 > _accept.max_queue_messages ||
            (!_queue.empty() && _bytes + text->size() > _accept.max_queue_bytes)) {
            _overflowed = true;
            _queue.clear();
            _bytes = 0;
            return send_result::overflow;
        }
        if (_keeps_up && _count_only) {
            ++_counted;
        } else if (_keeps_up) {
            _received.push_back(*text);
        } else {
            _bytes += text->size();
            _queue.push_back(*text);
        }
        return send_result::queued;
    }
    void close(uint16_t code, std::string_view reason) override {
        std::lock_guard lock(_mutex);
        if (_closing) return;
        _closing = true;
        _close_code = code;
        _close_reason = std::string(reason);
    }
    void set_deadline(std::chrono::milliseconds after, uint16_t code, std::string reason) override {
        std::lock_guard lock(_mutex);
        _deadline = after;
        _deadline_code = code;
        _deadline_reason = std::move(reason);
    }
    void cancel_deadline() override {
        std::lock_guard lock(_mutex);
        _deadline.reset();
    }
    size_t queued_bytes() const override {
        std::lock_guard lock(_mutex);
        return _bytes;
    }
    size_t queued_messages() const override {
        std::lock_guard lock(_mutex);
        return _queue.size();
    }
    const std::string& remote_address() const override { return _remote; }

    // The client says something.
    void receive(std::string_view text) { _accept.on_message(text); }
    // The connection ends.
    void end() { _accept.on_close(1000, ""); }
    // Everything written to the client so far, and forgets it.
    std::vector<std::string> take() {
        std::lock_guard lock(_mutex);
        auto out = std::move(_received);
        _received.clear();
        return out;
    }
    std::optional<std::string> last() {
        auto all = take();
        if (all.empty()) return std::nullopt;
        return all.back();
    }

    // Counts what a reader that keeps up receives instead of keeping it (for timing).
    void count_only() {
        std::lock_guard lock(_mutex);
        _count_only = true;
    }
    size_t counted() {
        std::lock_guard lock(_mutex);
        return _counted;
    }

    bool closing() {
        std::lock_guard lock(_mutex);
        return _closing;
    }
    uint16_t close_code() const { return _close_code; }
    const std::string& close_reason() const { return _close_reason; }
    std::optional<std::chrono::milliseconds> deadline() const { return _deadline; }
    uint16_t deadline_code() const { return _deadline_code; }
    const std::string& deadline_reason() const { return _deadline_reason; }

private:
    http::websocket_accept _accept;
    bool _keeps_up;
    bool _count_only = false;
    size_t _counted = 0;
    std::string _remote = "127.0.0.1";
    mutable std::mutex _mutex;
    std::deque<std::string> _queue;
    size_t _bytes = 0;
    std::vector<std::string> _received;
    bool _overflowed = false;
    bool _closing = false;
    uint16_t _close_code = 0;
    std::string _close_reason;
    std::optional<std::chrono::milliseconds> _deadline;
    uint16_t _deadline_code = 0;
    std::string _deadline_reason;
};

constexpr int64_t t0_ms = 1'704'067'200'000;

class hub_test : public ::testing::Test {
protected:
    hub_test() : h(make_options(), make_hooks()) {}

    static options make_options() {
        options o;
        o.max_queue_messages = 3;
        o.max_queue_bytes = 1 << 20;
        o.max_connections = 4;
        o.max_connections_per_user = 100;
        o.auth_timeout = std::chrono::milliseconds(1500);
        return o;
    }
    static hooks make_hooks() {
        hooks k;
        k.authenticate = [](std::string_view token) -> result<identity> {
            if (token == "good-token") return identity{"ada", "ada", "", std::nullopt};
            if (token == "bob-token") return identity{"bob", "bob", "", std::nullopt};
            if (token == "key-token") return identity{"wallboard", "", "key-1", std::nullopt};
            if (token == "expiring-token") {
                auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
                return identity{"ada", "ada", "", now + 60'000};
            }
            if (token == "device-token")
                return make_error("forbidden", "A device token may not listen to live updates");
            return make_error("invalid_token", "The token is not valid");
        };
        k.devices_under = [](std::string_view asset) -> result<std::vector<std::string>> {
            if (asset == "line-2") return std::vector<std::string>{"pump-1", "pump-3"};
            return make_error("not_found", "No asset " + std::string(asset));
        };
        return k;
    }

    struct upgrade {
        http::response res;
        std::shared_ptr<fake_websocket> ws;
        std::string subprotocol;
    };
    // An upgrade request through the route handler; opens the fake connection on 101.
    upgrade connect(std::vector<std::pair<std::string, std::string>> headers = {},
                    std::string target_query = {}, bool keeps_up = true,
                    std::string remote = "127.0.0.1") {
        http::request req;
        req.path = "/api/v1/live";
        req.headers = std::move(headers);
        if (!target_query.empty()) {
            auto eq = target_query.find('=');
            req.query.emplace(target_query.substr(0, eq), target_query.substr(eq + 1));
        }
        req.remote_address = std::move(remote);
        http::websocket_accept accept;
        upgrade u;
        u.res = h.accept(req, accept);
        u.subprotocol = accept.subprotocol;
        if (u.res.status == 101) {
            auto on_open = accept.on_open;
            u.ws = std::make_shared<fake_websocket>(std::move(accept), keeps_up);
            on_open(u.ws);
        }
        return u;
    }
    std::shared_ptr<fake_websocket> authenticated(bool keeps_up = true) {
        auto u = connect({{"sec-websocket-protocol", "bearer, good-token"}}, {}, keeps_up);
        EXPECT_EQ(u.res.status, 101);
        if (keeps_up) {
            EXPECT_EQ(u.ws->last(), R"({"type":"authenticated","user":"ada"})");
        }
        return u.ws;
    }

    // telemetry,device=<d> <metric>=<v> at t0 + offset ms, for each given point.
    static storage::write_batch batch(
        const std::vector<std::tuple<std::string, std::string, int64_t, double>>& points) {
        storage::write_batch b;
        for (const auto& [device, metric, offset, v] : points) {
            std::vector<std::pair<std::string, std::string>> tags{{"device", device}};
            auto s = b.series(storage::make_key("telemetry", tags, metric),
                              storage::value_type::float64);
            b.add(*s, (t0_ms + offset) * 1'000'000, v);
        }
        return b;
    }

    hub h;
};

TEST_F(hub_test, subprotocol_bearer_token_authenticates_and_echoes_bearer) {
    auto u = connect({{"sec-websocket-protocol", "bearer, good-token"}});
    ASSERT_EQ(u.res.status, 101);
    EXPECT_EQ(u.subprotocol, "bearer");
    EXPECT_EQ(u.ws->take(), std::vector<std::string>{R"({"type":"authenticated","user":"ada"})"});
    EXPECT_FALSE(u.ws->deadline().has_value());
    EXPECT_EQ(h.connections(), 1u);
    u.ws->end();
    EXPECT_EQ(h.connections(), 0u);
}

TEST_F(hub_test, subprotocol_clisonix_v1_with_prefixed_token_echoes_clisonix_v1) {
    auto u = connect({{"sec-websocket-protocol", "clisonix.v1, bearer.good-token"}});
    ASSERT_EQ(u.res.status, 101);
    EXPECT_EQ(u.subprotocol, "clisonix.v1");
    EXPECT_EQ(u.ws->last(), R"({"type":"authenticated","user":"ada"})");
    // The prefixed form alone would make the server echo the token: refused.
    auto alone = connect({{"sec-websocket-protocol", "bearer.good-token"}});
    EXPECT_EQ(alone.res.status, 400);
    EXPECT_NE(alone.res.body.find(R"("field":"Sec-WebSocket-Protocol")"), std::string::npos);
}

TEST_F(hub_test, bad_tokens_on_the_upgrade_request_are_refused_with_401_and_403) {
    auto bad = connect({{"sec-websocket-protocol", "bearer, nope"}});
    EXPECT_EQ(bad.res.status, 401);
    EXPECT_EQ(bad.ws, nullptr);
    auto device = connect({{"authorization", "Bearer device-token"}});
    EXPECT_EQ(device.res.status, 403);
    auto unknown = connect({{"sec-websocket-protocol", "mqtt"}});
    EXPECT_EQ(unknown.res.status, 400);
}

TEST_F(hub_test, a_token_in_the_url_is_refused_with_400) {
    auto u = connect({}, "token=good-token");
    EXPECT_EQ(u.res.status, 400);
    EXPECT_NE(u.res.body.find(R"("field":"token")"), std::string::npos) << u.res.body;
    EXPECT_EQ(connect({}, "access_token=good-token").res.status, 400);
}

TEST_F(hub_test, first_message_auth_within_the_deadline) {
    auto u = connect();
    ASSERT_EQ(u.res.status, 101);
    EXPECT_EQ(u.subprotocol, "");
    ASSERT_TRUE(u.ws->deadline().has_value());
    EXPECT_EQ(*u.ws->deadline(), std::chrono::milliseconds(1500));
    EXPECT_EQ(u.ws->deadline_code(), 1008);
    EXPECT_EQ(u.ws->deadline_reason(), "authentication timeout: no auth message within 1500 ms");
    // Nothing but auth before auth; the connection stays.
    u.ws->receive(R"({"type":"subscribe","alarms":true})");
    EXPECT_EQ(
        u.ws->last(),
        R"({"type":"error","message":"authenticate first: {\"type\":\"auth\",\"token\":\"...\"}"})");
    EXPECT_FALSE(u.ws->closing());
    u.ws->receive(R"({"type":"auth","token":"good-token"})");
    EXPECT_EQ(u.ws->last(), R"({"type":"authenticated","user":"ada"})");
    EXPECT_FALSE(u.ws->deadline().has_value());
}

TEST_F(hub_test, a_bad_token_in_the_first_message_closes_with_1008) {
    auto u = connect();
    u.ws->receive(R"({"type":"auth","token":"nope"})");
    EXPECT_TRUE(u.ws->closing());
    EXPECT_EQ(u.ws->close_code(), 1008);
    EXPECT_EQ(u.ws->close_reason(), "authentication failed: The token is not valid");
    auto d = connect();
    d.ws->receive(R"({"type":"auth","token":"device-token"})");
    EXPECT_EQ(d.ws->close_reason(),
              "authentication failed: A device token may not listen to live updates");
}

TEST_F(hub_test, bad_messages_get_an_error_and_the_client_stays) {
    auto ws = authenticated();
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", R"(messages must be JSON objects with a \"type\")"},
        {R"([1,2])", R"(messages must be JSON objects with a \"type\")"},
        {R"({"type":"dance"})",
         R"(unknown message type \"dance\": expected auth, subscribe, unsubscribe or ping)"},
        {R"({"type":"subscribe","telemetry":{"devices":"pump-1"}})",
         "telemetry.devices: must be an array of device names"},
        {R"({"type":"subscribe","telemetry":{"devices":[1]}})",
         "telemetry.devices: must be an array of non-empty names"},
        {R"({"type":"subscribe","telemetry":{"sensors":["a"]}})",
         "telemetry.sensors: unknown; expected devices or assets"},
        {R"({"type":"subscribe","alarms":"yes"})", "alarms: must be true or false"},
        {R"({"type":"subscribe","telemetry":{"assets":["line-9"]}})",
         "telemetry.assets: line-9: No asset line-9"},
    };
    for (const auto& [in, message] : cases) {
        ws->receive(in);
        EXPECT_EQ(ws->last(), R"({"type":"error","message":")" + message + R"("})") << in;
    }
    EXPECT_FALSE(ws->closing());
    ws->receive(R"({"type":"ping"})");
    EXPECT_EQ(ws->last(), R"({"type":"pong"})");
}

TEST_F(hub_test, nothing_is_published_when_nobody_subscribed) {
    auto ws = authenticated();
    auto b = batch({{"pump-1", "temperature", 0, 21.5}});
    h.publish_telemetry(b);
    h.publish_alarm(R"({"event":"alarm.created"})");
    EXPECT_TRUE(ws->take().empty());
    // The cost with nobody listening: one atomic load per call.
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 1'000'000; ++i)
        h.publish_telemetry(b);
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    std::printf("publish_telemetry with nobody subscribed: %.2f ns per call\n", ns / 1e6);
    // Well under a microsecond even in a sanitizer build (a lock or a key parse is not).
    EXPECT_LT(ns / 1'000'000, 1000);
}

TEST_F(hub_test, telemetry_is_coalesced_per_device_and_metric_in_write_order) {
    auto ws = authenticated();
    ws->receive(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]}})");
    EXPECT_EQ(
        ws->last(),
        R"({"type":"subscribed","telemetry":{"devices":["pump-1"],"assets":[],"resolved":[]},"alarms":false})");
    h.publish_telemetry(batch({{"pump-1", "temperature", 0, 21.5},
                               {"pump-2", "temperature", 0, 30},
                               {"pump-1", "rpm", 0, 1450},
                               {"pump-1", "temperature", 1000, 21.75},
                               {"pump-1", "temperature", 2000, -0.125}}));
    EXPECT_EQ(
        ws->take(),
        (std::vector<std::string>{
            R"({"type":"telemetry","device":"pump-1","metric":"temperature","points":[[1704067200000,21.5],[1704067201000,21.75],[1704067202000,-0.125]]})",
            R"({"type":"telemetry","device":"pump-1","metric":"rpm","points":[[1704067200000,1450]]})"}));
    ws->receive(R"({"type":"unsubscribe","telemetry":{"devices":["pump-1"]}})");
    EXPECT_EQ(
        ws->last(),
        R"({"type":"unsubscribed","telemetry":{"devices":[],"assets":[],"resolved":[]},"alarms":false})");
    h.publish_telemetry(batch({{"pump-1", "temperature", 3000, 22}}));
    EXPECT_TRUE(ws->take().empty());
}

TEST_F(hub_test, values_keep_their_type) {
    auto ws = authenticated();
    ws->receive(R"({"type":"subscribe","telemetry":{"devices":["*"]}})");
    ws->take();
    storage::write_batch b;
    std::vector<std::pair<std::string, std::string>> tags{{"device", "m\"1"}};
    auto n = b.series(storage::make_key("telemetry", tags, "count"), storage::value_type::int64);
    auto ok = b.series(storage::make_key("telemetry", tags, "ok"), storage::value_type::boolean);
    auto s = b.series(storage::make_key("telemetry", tags, "state"), storage::value_type::string);
    b.add_int(*n, t0_ms * 1'000'000, -7);
    b.add_bool(*ok, t0_ms * 1'000'000, true);
    b.add_string(*s, t0_ms * 1'000'000, "run \"fast\"");
    // A series without a device tag is nobody's telemetry.
    auto other = b.series(storage::make_key("cpu", {}, "load"), storage::value_type::float64);
    b.add(*other, t0_ms * 1'000'000, 0.5);
    h.publish_telemetry(b);
    EXPECT_EQ(
        ws->take(),
        (std::vector<std::string>{
            R"({"type":"telemetry","device":"m\"1","metric":"count","points":[[1704067200000,-7]]})",
            R"({"type":"telemetry","device":"m\"1","metric":"ok","points":[[1704067200000,true]]})",
            R"({"type":"telemetry","device":"m\"1","metric":"state","points":[[1704067200000,"run \"fast\""]]})"}));
}

TEST_F(hub_test, assets_resolve_to_the_devices_under_them) {
    auto ws = authenticated();
    ws->receive(R"({"type":"subscribe","telemetry":{"assets":["line-2"]},"alarms":true})");
    EXPECT_EQ(
        ws->last(),
        R"({"type":"subscribed","telemetry":{"devices":[],"assets":["line-2"],"resolved":["pump-1","pump-3"]},"alarms":true})");
    h.publish_telemetry(batch({{"pump-3", "flow", 0, 12}, {"pump-2", "flow", 0, 13}}));
    EXPECT_EQ(
        ws->take(),
        std::vector<std::string>{
            R"({"type":"telemetry","device":"pump-3","metric":"flow","points":[[1704067200000,12]]})"});
}

TEST_F(hub_test, an_alarm_arrives_after_the_telemetry_that_caused_it) {
    auto ws = authenticated();
    ws->receive(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]},"alarms":true})");
    ws->take();
    // As the pipeline calls its listeners: the hub, then the rules engine, which raises the
    // alarm and tells its listeners (the hub again) on the same thread.
    auto b = batch({{"pump-1", "temperature", 0, 81.2}});
    h.publish_telemetry(b);
    h.publish_alarm(
        R"({"event":"alarm.created","alarm":{"id":7,"rule":"pump hot","device":"pump-1","severity":"major","status":"active","value":81.2},"at":1704067200000})");
    EXPECT_EQ(
        ws->take(),
        (std::vector<std::string>{
            R"({"type":"telemetry","device":"pump-1","metric":"temperature","points":[[1704067200000,81.2]]})",
            R"({"type":"alarm","event":"alarm.created","alarm":{"id":7,"rule":"pump hot","device":"pump-1","severity":"major","status":"active","value":81.2},"at":1704067200000})"}));
    // Not a JSON object: nothing is sent.
    h.publish_alarm("not json");
    EXPECT_TRUE(ws->take().empty());
}

TEST_F(hub_test, a_slow_consumer_is_closed_and_the_others_keep_receiving) {
    auto slow = authenticated(/*keeps_up=*/false);
    auto fast = authenticated();
    slow->receive(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]}})");
    fast->receive(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]}})");
    fast->take();
    // The slow one holds its two acks already; one message fills its queue of 3 and the
    // next one passes it.
    for (int i = 0; i < 5; ++i)
        h.publish_telemetry(batch({{"pump-1", "temperature", i * 1000, 20.0 + i}}));
    EXPECT_TRUE(slow->closing());
    EXPECT_EQ(slow->close_code(), 1008);
    EXPECT_EQ(slow->close_reason(), "slow consumer: queue over 3 messages");
    EXPECT_EQ(slow->queued_messages(), 0u);  // what it held was dropped
    EXPECT_EQ(fast->take().size(), 5u);
}

TEST_F(hub_test, the_byte_bound_closes_with_its_own_reason) {
    options o = make_options();
    o.max_queue_messages = 1000;
    o.max_queue_bytes = 200;
    hub small(o, make_hooks());
    http::request req;
    req.path = "/api/v1/live";
    req.headers = {{"sec-websocket-protocol", "bearer, good-token"}};
    http::websocket_accept accept;
    ASSERT_EQ(small.accept(req, accept).status, 101);
    auto on_open = accept.on_open;
    auto ws = std::make_shared<fake_websocket>(std::move(accept), false);
    on_open(ws);
    ws->receive(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]}})");
    for (int i = 0; i < 3; ++i)
        small.publish_telemetry(batch({{"pump-1", "temperature", i * 1000, 20.0 + i}}));
    EXPECT_EQ(ws->close_reason(), "slow consumer: queue over 200 bytes");
}

// What fan-out costs the ingest thread: a 1,000-point batch (10 metrics of one device) to
// 100 subscribed clients, formatted once and queued 100 times.
TEST_F(hub_test, fan_out_cost_is_printed) {
    options o = make_options();
    o.max_connections = 200;
    o.max_queue_messages = 1'000'000;
    hub big(o, make_hooks());
    std::vector<std::shared_ptr<fake_websocket>> clients;
    for (int i = 0; i < 100; ++i) {
        http::request req;
        req.path = "/api/v1/live";
        req.headers = {{"sec-websocket-protocol", "bearer, good-token"}};
        http::websocket_accept accept;
        ASSERT_EQ(big.accept(req, accept).status, 101);
        auto on_open = accept.on_open;
        clients.push_back(std::make_shared<fake_websocket>(std::move(accept), true));
        on_open(clients.back());
        clients.back()->receive(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]}})");
        clients.back()->take();
        clients.back()->count_only();
    }
    std::vector<std::tuple<std::string, std::string, int64_t, double>> points;
    for (int i = 0; i < 1000; ++i)
        points.emplace_back("pump-1", "m" + std::to_string(i % 10), i, i * 0.5);
    auto b = batch(points);
    constexpr int rounds = 50;
    auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r)
        big.publish_telemetry(b);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    std::printf("publish_telemetry, 1000 points to 100 clients: %.1f us per batch\n",
                static_cast<double>(us) / rounds);
    EXPECT_EQ(clients.front()->counted(), 10u * rounds);
}

TEST_F(hub_test, connections_beyond_the_limit_get_503) {
    std::vector<upgrade> open;
    for (int i = 0; i < 4; ++i)
        open.push_back(connect({{"sec-websocket-protocol", "bearer, good-token"}}));
    EXPECT_EQ(connect({{"sec-websocket-protocol", "bearer, good-token"}}).res.status, 503);
    open.back().ws->end();
    EXPECT_EQ(connect({{"sec-websocket-protocol", "bearer, good-token"}}).res.status, 101);
}

// Token-less upgrades wait in their own budget per address; a token always gets in while
// its user is within the authenticated limits.
TEST_F(hub_test, connections_waiting_for_a_token_have_their_own_budget_per_address) {
    std::vector<upgrade> pending;
    for (int i = 0; i < 4; ++i) {
        pending.push_back(connect());
        ASSERT_EQ(pending.back().res.status, 101);
    }
    auto refused = connect();
    EXPECT_EQ(refused.res.status, 429);
    EXPECT_NE(refused.res.body.find(R"("code":"too_many_requests")"), std::string::npos)
        << refused.res.body;
    EXPECT_NE(refused.res.body.find("live.max_pending_per_address = 4"), std::string::npos);
    auto retry = std::find_if(refused.res.headers.begin(), refused.res.headers.end(),
                              [](const auto& h) { return h.first == "Retry-After"; });
    ASSERT_NE(retry, refused.res.headers.end());
    EXPECT_EQ(retry->second, "2");  // the auth timeout, 1.5 s, rounded up
    // Another address has its own budget; a token needs none of it.
    EXPECT_EQ(connect({}, {}, true, "10.0.0.9").res.status, 101);
    auto viewer = connect({{"sec-websocket-protocol", "bearer, good-token"}});
    EXPECT_EQ(viewer.res.status, 101);
    // A pending connection that authenticates gives its pending slot back.
    pending[0].ws->receive(R"({"type":"auth","token":"bob-token"})");
    EXPECT_EQ(pending[0].ws->last(), R"({"type":"authenticated","user":"bob"})");
    EXPECT_EQ(connect().res.status, 101);
    // One that ends, too.
    pending[1].ws->end();
    EXPECT_EQ(connect().res.status, 101);
}

TEST_F(hub_test, one_user_may_not_take_every_authenticated_slot) {
    options o = make_options();
    o.max_connections_per_user = 2;
    hub small(o, make_hooks());
    auto open = [&small](const std::string& token) {
        http::request req;
        req.path = "/api/v1/live";
        req.headers = {{"sec-websocket-protocol", "bearer, " + token}};
        http::websocket_accept accept;
        return small.accept(req, accept).status;
    };
    // Two upgrades of ada, their handshakes still under way, hold her two slots.
    http::request req;
    req.path = "/api/v1/live";
    req.headers = {{"sec-websocket-protocol", "bearer, good-token"}};
    http::websocket_accept a1, a2;
    ASSERT_EQ(small.accept(req, a1).status, 101);
    ASSERT_EQ(small.accept(req, a2).status, 101);
    EXPECT_EQ(open("good-token"), 429);
    // An upgrade whose handshake never completes gives its slot back with its callbacks.
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(open("bob-token"), 101);
}

TEST_F(hub_test, a_revoked_user_or_key_is_closed_with_1008_and_gets_nothing_more) {
    auto ada = authenticated();
    auto bob = connect({{"sec-websocket-protocol", "bearer, bob-token"}});
    auto key = connect({{"sec-websocket-protocol", "bearer, key-token"}});
    ASSERT_EQ(bob.res.status, 101);
    ASSERT_EQ(key.res.status, 101);
    for (const auto& ws : {ada, bob.ws, key.ws}) {
        ws->receive(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]}})");
        ws->take();
    }
    EXPECT_EQ(h.close_user("ada", "user disabled"), 1u);
    EXPECT_TRUE(ada->closing());
    EXPECT_EQ(ada->close_code(), 1008);
    EXPECT_EQ(ada->close_reason(), "credential revoked: user disabled");
    EXPECT_FALSE(bob.ws->closing());
    EXPECT_EQ(h.close_api_key("key-1", "API key revoked"), 1u);
    EXPECT_EQ(key.ws->close_reason(), "credential revoked: API key revoked");
    EXPECT_EQ(h.close_user("nobody", "user deleted"), 0u);
    h.publish_telemetry(batch({{"pump-1", "temperature", 0, 21.5}}));
    EXPECT_TRUE(ada->take().empty());
    EXPECT_EQ(bob.ws->take().size(), 1u);
}

TEST_F(hub_test, the_connection_ends_when_its_token_expires_unless_a_fresh_one_came) {
    auto u = connect({{"sec-websocket-protocol", "bearer, expiring-token"}});
    ASSERT_EQ(u.res.status, 101);
    ASSERT_TRUE(u.ws->deadline().has_value());
    EXPECT_GT(*u.ws->deadline(), std::chrono::milliseconds(55'000));
    EXPECT_LE(*u.ws->deadline(), std::chrono::milliseconds(60'000));
    EXPECT_EQ(u.ws->deadline_code(), 1008);
    EXPECT_EQ(u.ws->deadline_reason(), "token expired");
    // A fresh token (here one that never expires) replaces the deadline.
    u.ws->receive(R"({"type":"auth","token":"good-token"})");
    EXPECT_EQ(u.ws->last(), R"({"type":"authenticated","user":"ada"})");
    EXPECT_FALSE(u.ws->deadline().has_value());
}

// A credential revoked where no event reaches the hub (another process, another node) fails
// the periodic check, and its connection closes; one that still passes stays.
TEST_F(hub_test, a_credential_that_fails_the_periodic_check_is_closed) {
    options o = make_options();
    o.revalidate_interval = std::chrono::milliseconds(20);
    auto revoked = std::make_shared<std::atomic<bool>>(false);
    hooks k = make_hooks();
    auto base = k.authenticate;
    k.authenticate = [base, revoked](std::string_view token) -> result<identity> {
        if (token == "bob-token" && *revoked)
            return make_error("invalid_token", "The token's user no longer exists or is disabled");
        return base(token);
    };
    hub checked(o, k);
    auto open = [&checked](const std::string& token) {
        http::request req;
        req.path = "/api/v1/live";
        req.headers = {{"sec-websocket-protocol", "bearer, " + token}};
        http::websocket_accept accept;
        EXPECT_EQ(checked.accept(req, accept).status, 101);
        auto on_open = accept.on_open;
        auto ws = std::make_shared<fake_websocket>(std::move(accept), true);
        on_open(ws);
        return ws;
    };
    auto bob = open("bob-token");
    auto ada = open("good-token");
    *revoked = true;
    for (int i = 0; i < 500 && !bob->closing(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(bob->closing());
    EXPECT_EQ(bob->close_code(), 1008);
    EXPECT_EQ(bob->close_reason(),
              "credential revoked: The token's user no longer exists or is disabled");
    EXPECT_FALSE(ada->closing());
}

}  // namespace
}  // namespace clisonix::live
