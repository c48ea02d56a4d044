// The live hub: WebSocket clients, their subscriptions, and the fan-out of telemetry and
// alarm events into each client's bounded queue.
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "common/json_text.h"
#include "live/live.h"
#include "observe/observe.h"

namespace clisonix::live {

namespace json = boost::json;

namespace {

// Bounds on what one client may ask for, so that a subscription cannot become a cost.
constexpr size_t max_points_per_message = 10'000;
constexpr size_t max_subscribed_names = 10'000;

constexpr uint16_t policy_violation = 1008;
constexpr uint16_t try_again_later = 1013;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Whose authenticated slots a connection takes: one per user or API key.
std::string slot_key(const identity& who) {
    if (!who.user.empty()) return "user:" + who.user;
    if (!who.api_key_id.empty()) return "api_key:" + who.api_key_id;
    return "name:" + who.name;
}

// Seconds for Retry-After: at least 1.
std::string retry_after_seconds(std::chrono::milliseconds after) {
    return std::to_string(std::max<int64_t>(1, (after.count() + 999) / 1000));
}

void append_value(std::string& out, const storage::write_batch& batch, storage::value_type type,
                  uint64_t raw) {
    char buf[32];
    switch (type) {
        case storage::value_type::float64: {
            double v = storage::as_double(type, raw);
            if (!std::isfinite(v)) {
                out += "null";
                return;
            }
            auto r = std::to_chars(buf, buf + sizeof buf, v);
            out.append(buf, r.ptr);
            return;
        }
        case storage::value_type::int64: {
            auto r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(raw));
            out.append(buf, r.ptr);
            return;
        }
        case storage::value_type::boolean:
            out += raw != 0 ? "true" : "false";
            return;
        case storage::value_type::string:
            if (raw < batch.strings().size())
                append_json_string(out, batch.strings()[raw]);
            else
                out += "null";
            return;
    }
}

std::string error_message(std::string_view message) {
    std::string out = R"({"type":"error","message":)";
    append_json_string(out, message);
    out.push_back('}');
    return out;
}

// Sec-WebSocket-Protocol: the offered values, trimmed.
std::vector<std::string> offered_protocols(std::string_view header) {
    std::vector<std::string> out;
    while (!header.empty()) {
        auto comma = header.find(',');
        auto item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (!item.empty()) out.emplace_back(item);
    }
    return out;
}

}  // namespace

struct hub::impl : std::enable_shared_from_this<hub::impl> {
    struct client {
        std::weak_ptr<http::websocket> ws;
        std::string remote;
        // Guarded by impl::mutex (written under the unique lock, read under either).
        bool authenticated = false;
        std::string who;
        std::string user;                   // the username listening, when by access token
        std::string api_key_id;             // the API key listening, when by key
        std::optional<int64_t> expires_at;  // when its credential ends (Unix ms)
        std::string token;                  // the credential, checked again now and then

        void listen_as(const identity& id, std::string_view credential) {
            token = std::string(credential);
            authenticated = true;
            who = id.name;
            user = id.user;
            api_key_id = id.api_key_id;
            expires_at = id.expires_at;
        }
        std::set<std::string, std::less<>> devices;   // as asked, "*" = every device
        std::set<std::string, std::less<>> assets;    // as asked
        std::set<std::string, std::less<>> resolved;  // devices under `assets`
        bool alarms = false;

        bool wants_device(std::string_view device) const {
            return authenticated &&
                   (devices.contains("*") || devices.contains(device) || resolved.contains(device));
        }

        // The admission slots this connection holds; guarded by impl::admission_mutex.
        std::string pending_address;  // a pending slot of this address; empty: none
        std::string listening_key;    // an authenticated slot of this user or key; empty: none
        // Slots are given back on close, or here when the handshake never completed.
        std::weak_ptr<impl> owner;
        ~client() {
            if (auto o = owner.lock()) o->release(*this);
        }
    };

    // Admission: why a connection may not take a slot.
    enum class refusal { none, address_pending, all_pending, all_listening, user_listening };

    std::mutex admission_mutex;
    int pending_total = 0;  // guarded by admission_mutex, as the maps below
    std::unordered_map<std::string, int> pending_by_address;
    int listening_total = 0;
    std::unordered_map<std::string, int> listening_by_key;

    refusal take_pending(client& c, const std::string& address) {
        std::lock_guard lock(admission_mutex);
        auto& mine = pending_by_address[address];
        refusal r = mine >= opts.max_pending_per_address ? refusal::address_pending
                    : pending_total >= opts.max_pending  ? refusal::all_pending
                                                         : refusal::none;
        if (r != refusal::none) {
            if (mine == 0) pending_by_address.erase(address);
            return r;
        }
        ++mine;
        ++pending_total;
        c.pending_address = address;
        return refusal::none;
    }

    // An authenticated slot for `key`, in place of what `c` held (a pending slot, or the slot
    // of the identity it had before a fresh token).
    refusal take_listening(client& c, const std::string& key) {
        std::lock_guard lock(admission_mutex);
        if (c.listening_key != key) {
            int held = c.listening_key.empty() ? 0 : 1;
            if (listening_total - held >= opts.max_connections) return refusal::all_listening;
            auto it = listening_by_key.find(key);
            if (it != listening_by_key.end() && it->second >= opts.max_connections_per_user)
                return refusal::user_listening;
            release_listening(c);
            ++listening_by_key[key];
            ++listening_total;
            c.listening_key = key;
        }
        release_pending(c);
        return refusal::none;
    }

    void release(client& c) {
        std::lock_guard lock(admission_mutex);
        release_pending(c);
        release_listening(c);
    }
    // Under admission_mutex.
    void release_pending(client& c) {
        if (c.pending_address.empty()) return;
        if (auto it = pending_by_address.find(c.pending_address);
            it != pending_by_address.end() && --it->second <= 0)
            pending_by_address.erase(it);
        --pending_total;
        c.pending_address.clear();
    }
    void release_listening(client& c) {
        if (c.listening_key.empty()) return;
        if (auto it = listening_by_key.find(c.listening_key);
            it != listening_by_key.end() && --it->second <= 0)
            listening_by_key.erase(it);
        --listening_total;
        c.listening_key.clear();
    }

    // The close reason (and code) of a connection refused an authenticated slot.
    std::pair<uint16_t, std::string> refusal_close(refusal r, const std::string& name) const {
        if (r == refusal::user_listening)
            return {policy_violation, "too many live connections for " + name +
                                          " (live.max_connections_per_user = " +
                                          std::to_string(opts.max_connections_per_user) + ")"};
        return {try_again_later, "too many live connections (live.max_connections = " +
                                     std::to_string(opts.max_connections) + ")"};
    }

    // The answer to an upgrade refused a slot.
    http::response refusal_response(refusal r, const std::string& name) const {
        http::response res;
        std::string retry = retry_after_seconds(opts.auth_timeout);
        switch (r) {
            case refusal::address_pending:
                res = http::response::error(
                    429, "too_many_requests",
                    "Too many live connections from this address are waiting to authenticate "
                    "(live.max_pending_per_address = " +
                        std::to_string(opts.max_pending_per_address) +
                        "): authenticate those, or offer the token as the subprotocols "
                        "\"bearer, <token>\"");
                break;
            case refusal::all_pending:
                res = http::response::error(
                    503, "overloaded",
                    "Too many live connections are waiting to authenticate (live.max_pending = " +
                        std::to_string(opts.max_pending) +
                        "): offer the token as the subprotocols \"bearer, <token>\"");
                break;
            case refusal::user_listening:
                res = http::response::error(
                    429, "too_many_requests",
                    "Too many live connections for " + name + " (live.max_connections_per_user = " +
                        std::to_string(opts.max_connections_per_user) + "): close one first");
                retry = "10";
                break;
            case refusal::all_listening:
            case refusal::none:
                res = http::response::error(503, "overloaded",
                                            "Too many live connections (live.max_connections = " +
                                                std::to_string(opts.max_connections) + ")");
                retry = "10";
                break;
        }
        res.headers.emplace_back("Retry-After", retry);
        return res;
    }

    impl(options o, hooks h) : opts(std::move(o)), hk(std::move(h)) {
        auto& reg = metrics::global();
        connections_gauge = reg.get_gauge("clisonix_live_connections",
                                          "Open WebSocket connections at /api/v1/live");
        const char* sent_help = "Messages queued to live WebSocket clients";
        sent_telemetry = reg.get_counter("clisonix_live_messages_sent_total", sent_help, {"type"},
                                         {"telemetry"});
        sent_alarm =
            reg.get_counter("clisonix_live_messages_sent_total", sent_help, {"type"}, {"alarm"});
        sent_control =
            reg.get_counter("clisonix_live_messages_sent_total", sent_help, {"type"}, {"control"});
        drops = reg.get_counter("clisonix_live_slow_consumer_drops_total",
                                "Live clients closed because their queue passed its bound");
    }

    options opts;
    hooks hk;
    metrics::gauge connections_gauge;
    metrics::counter sent_telemetry, sent_alarm, sent_control, drops;

    mutable std::shared_mutex mutex;
    std::set<std::shared_ptr<client>> clients;  // open connections; guarded by mutex
    std::atomic<int> open{0};
    std::atomic<int> telemetry_listeners{0};  // clients with a device subscription
    std::atomic<int> alarm_listeners{0};

    // Under the unique lock, after any change of a subscription or of the client set.
    void recount() {
        int telemetry = 0, alarm = 0;
        for (const auto& c : clients) {
            if (!c->authenticated) continue;
            if (!c->devices.empty() || !c->resolved.empty()) ++telemetry;
            if (c->alarms) ++alarm;
        }
        telemetry_listeners.store(telemetry, std::memory_order_relaxed);
        alarm_listeners.store(alarm, std::memory_order_relaxed);
    }

    // A message to one client; a queue over its bound closes the connection.
    void deliver(client& c, const std::shared_ptr<const std::string>& text,
                 metrics::counter& sent) {
        auto ws = c.ws.lock();
        if (!ws) return;
        // Which bound a refused message would pass, read before: the refusal empties the queue.
        bool by_count = ws->queued_messages() + 1 > opts.max_queue_messages;
        switch (ws->send(text)) {
            case http::websocket::send_result::queued:
                sent.inc();
                return;
            case http::websocket::send_result::closed:
                return;
            case http::websocket::send_result::overflow: {
                drops.inc();
                std::string reason = by_count
                                         ? "slow consumer: queue over " +
                                               std::to_string(opts.max_queue_messages) + " messages"
                                         : "slow consumer: queue over " +
                                               std::to_string(opts.max_queue_bytes) + " bytes";
                log::warn("live client dropped",
                          {{"client", c.remote}, {"user", c.who}, {"reason", reason}});
                ws->close(policy_violation, reason);
                return;
            }
        }
    }

    void reply(client& c, std::string text) {
        deliver(c, std::make_shared<const std::string>(std::move(text)), sent_control);
    }

    void on_open(const std::shared_ptr<client>& c, const std::shared_ptr<http::websocket>& ws) {
        c->ws = ws;
        {
            std::unique_lock lock(mutex);
            clients.insert(c);
            recount();
        }
        connections_gauge.set(static_cast<double>(++open));
        if (c->authenticated) {
            expire_at(*c, *ws);
            reply(*c, authenticated_message(*c));
        } else {
            ws->set_deadline(opts.auth_timeout, policy_violation,
                             "authentication timeout: no auth message within " +
                                 std::to_string(opts.auth_timeout.count()) + " ms");
        }
    }

    void on_close(const std::shared_ptr<client>& c) {
        {
            std::unique_lock lock(mutex);
            clients.erase(c);
            recount();
        }
        release(*c);
        connections_gauge.set(static_cast<double>(--open));
    }

    // The connection ends with its credential: a deadline at the token's expiry (the one
    // deadline a connection has; the auth timeout is over once a client is authenticated).
    std::optional<int64_t> expires_at_of(const client& c) {
        std::shared_lock lock(mutex);
        return c.expires_at;
    }
    void expire_at(const client& c, http::websocket& ws) {
        ws.cancel_deadline();
        if (auto at = expires_at_of(c))
            ws.set_deadline(std::chrono::milliseconds(std::max<int64_t>(0, *at - now_ms())),
                            policy_violation, "token expired");
    }

    static std::string authenticated_message(const client& c) {
        std::string out = R"({"type":"authenticated","user":)";
        append_json_string(out, c.who);
        out.push_back('}');
        return out;
    }

    // The names of telemetry.<key>, or an error message.
    static std::optional<std::string> names_of(const json::object& telemetry, std::string_view key,
                                               std::vector<std::string>& out) {
        auto it = telemetry.find(key);
        if (it == telemetry.end()) return std::nullopt;
        std::string what = "telemetry." + std::string(key);
        if (!it->value().is_array())
            return what + ": must be an array of " + (key == "devices" ? "device" : "asset") +
                   " names";
        for (const auto& v : it->value().as_array()) {
            if (!v.is_string() || v.as_string().empty())
                return what + ": must be an array of non-empty names";
            out.emplace_back(v.as_string());
        }
        if (out.size() > max_subscribed_names)
            return what + ": at most " + std::to_string(max_subscribed_names) + " names";
        return std::nullopt;
    }

    void on_message(const std::shared_ptr<client>& c, std::string_view text) {
        auto ws = c->ws.lock();
        if (!ws) return;
        json::error_code ec;
        json::value doc = json::parse(text, ec);
        if (ec || !doc.is_object())
            return reply(*c, error_message("messages must be JSON objects with a \"type\""));
        const auto& msg = doc.as_object();
        auto type_it = msg.find("type");
        if (type_it == msg.end() || !type_it->value().is_string())
            return reply(*c, error_message("messages must be JSON objects with a \"type\""));
        std::string_view type = type_it->value().as_string();

        if (type == "auth") return on_auth(*c, *ws, msg);
        bool authenticated;
        {
            std::shared_lock lock(mutex);
            authenticated = c->authenticated;
        }
        if (!authenticated)
            return reply(*c, error_message(R"(authenticate first: {"type":"auth","token":"..."})"));
        if (type == "subscribe" || type == "unsubscribe")
            return on_subscribe(*c, msg, type == "subscribe");
        if (type == "ping") return reply(*c, R"({"type":"pong"})");
        reply(*c, error_message("unknown message type \"" + std::string(type) +
                                "\": expected auth, subscribe, unsubscribe or ping"));
    }

    void on_auth(client& c, http::websocket& ws, const json::object& msg) {
        auto token = msg.find("token");
        if (token == msg.end() || !token->value().is_string() || token->value().as_string().empty())
            return reply(c, error_message("auth: \"token\" must be a non-empty string"));
        auto who = hk.authenticate
                       ? hk.authenticate(std::string_view(token->value().as_string()))
                       : result<identity>(make_error("unavailable", "no authenticator"));
        bool was_authenticated;
        {
            std::shared_lock lock(mutex);
            was_authenticated = c.authenticated;
        }
        if (who) {
            // From the pending budget to an authenticated slot (or to another identity's).
            if (auto r = take_listening(c, slot_key(*who)); r != refusal::none) {
                auto [code, reason] = refusal_close(r, who->name);
                log::info("live client refused", {{"client", c.remote}, {"reason", reason}});
                return ws.close(code, reason);
            }
            std::unique_lock lock(mutex);
            c.listen_as(*who, std::string_view(token->value().as_string()));
            recount();
        }
        if (!who) {
            // A client that already listens keeps its earlier identity; one that never
            // authenticated gets no second guess on this connection.
            if (was_authenticated) return reply(c, error_message("auth: " + who.error().message));
            log::info("live client refused",
                      {{"client", c.remote}, {"reason", who.error().message}});
            return ws.close(policy_violation, "authentication failed: " + who.error().message);
        }
        expire_at(c, ws);
        reply(c, authenticated_message(c));
    }

    // Every live.revalidate_interval, each listening connection's credential is checked again,
    // as a request's is on every call: this catches what no revocation event told the hub
    // (`clisonix user disable` in another process, another node on the same PostgreSQL).
    std::mutex stop_mutex;
    std::condition_variable stop_cv;
    bool stopping = false;  // guarded by stop_mutex
    std::thread revalidator;

    void start_revalidation() {
        if (!hk.authenticate) return;
        revalidator = std::thread([this] {
            std::unique_lock lock(stop_mutex);
            while (!stop_cv.wait_for(lock, opts.revalidate_interval, [this] { return stopping; })) {
                lock.unlock();
                revalidate();
                lock.lock();
            }
        });
    }
    void stop_revalidation() {
        {
            std::lock_guard lock(stop_mutex);
            stopping = true;
        }
        stop_cv.notify_all();
        if (revalidator.joinable()) revalidator.join();
    }

    void revalidate() {
        std::vector<std::pair<std::shared_ptr<client>, std::string>> listening;
        {
            std::shared_lock lock(mutex);
            for (const auto& c : clients)
                if (c->authenticated) listening.emplace_back(c, c->token);
        }
        for (const auto& entry : listening) {
            const std::string& token = entry.second;
            auto who = hk.authenticate(token);
            // Only a refusal ends a connection; a store that does not answer does not.
            if (who || (who.error().code != "invalid_token" && who.error().code != "forbidden"))
                continue;
            const client* target = entry.first.get();
            close_where(
                [target, &token](const client& x) { return &x == target && x.token == token; },
                who.error().message);
        }
    }

    // Closes the connections listening with a revoked credential; stops their telemetry first.
    size_t close_where(const std::function<bool(const client&)>& revoked, std::string_view reason) {
        std::vector<std::shared_ptr<http::websocket>> closing;
        {
            std::unique_lock lock(mutex);
            for (const auto& c : clients) {
                if (!c->authenticated || !revoked(*c)) continue;
                c->authenticated = false;
                if (auto ws = c->ws.lock()) closing.push_back(std::move(ws));
                log::info("live client closed: credential revoked",
                          {{"client", c->remote}, {"user", c->who}, {"reason", reason}});
            }
            if (!closing.empty()) recount();
        }
        for (const auto& ws : closing)
            ws->close(policy_violation, "credential revoked: " + std::string(reason));
        return closing.size();
    }

    void on_subscribe(client& c, const json::object& msg, bool subscribe) {
        std::vector<std::string> devices, assets;
        std::optional<bool> alarms;
        if (auto t = msg.find("telemetry"); t != msg.end()) {
            if (!t->value().is_object())
                return reply(
                    c, error_message(
                           R"(telemetry: must be an object {"devices":[...],"assets":[...]})"));
            const auto& telemetry = t->value().as_object();
            for (const auto& [key, value] : telemetry)
                if (key != "devices" && key != "assets")
                    return reply(c, error_message("telemetry." + std::string(key) +
                                                  ": unknown; expected devices or assets"));
            if (auto e = names_of(telemetry, "devices", devices))
                return reply(c, error_message(*e));
            if (auto e = names_of(telemetry, "assets", assets)) return reply(c, error_message(*e));
        }
        if (auto a = msg.find("alarms"); a != msg.end()) {
            if (!a->value().is_bool())
                return reply(c, error_message("alarms: must be true or false"));
            alarms = a->value().as_bool();
        }
        if (!assets.empty() && subscribe && !hk.devices_under)
            return reply(c,
                         error_message("telemetry.assets: asset subscriptions are not available"));

        // The assets after this message, resolved again now: the plant may have changed.
        std::set<std::string, std::less<>> next_assets;
        {
            std::shared_lock lock(mutex);
            next_assets = c.assets;
        }
        for (const auto& a : assets) {
            if (subscribe)
                next_assets.insert(a);
            else
                next_assets.erase(a);
        }
        std::set<std::string, std::less<>> resolved;
        for (const auto& a : next_assets) {
            if (!hk.devices_under) break;
            auto under = hk.devices_under(a);
            if (!under)
                return reply(
                    c, error_message("telemetry.assets: " + a + ": " + under.error().message));
            resolved.insert(under->begin(), under->end());
        }

        std::string ack;
        {
            std::unique_lock lock(mutex);
            if (subscribe) {
                size_t added = 0;
                for (const auto& d : devices)
                    added += c.devices.contains(d) ? 0 : 1;
                if (c.devices.size() + added > max_subscribed_names) {
                    lock.unlock();
                    return reply(c, error_message("telemetry.devices: at most " +
                                                  std::to_string(max_subscribed_names) +
                                                  " devices per connection"));
                }
            }
            for (const auto& d : devices) {
                if (subscribe)
                    c.devices.insert(d);
                else
                    c.devices.erase(d);
            }
            c.assets = std::move(next_assets);
            c.resolved = std::move(resolved);
            if (alarms) c.alarms = subscribe ? *alarms : (*alarms ? false : c.alarms);
            recount();
            ack = subscription_message(c, subscribe ? "subscribed" : "unsubscribed");
        }
        reply(c, std::move(ack));
    }

    static std::string subscription_message(const client& c, std::string_view type) {
        auto list = [](std::string& out, const std::set<std::string, std::less<>>& names) {
            out.push_back('[');
            bool first = true;
            for (const auto& n : names) {
                if (!first) out.push_back(',');
                first = false;
                append_json_string(out, n);
            }
            out.push_back(']');
        };
        std::string out = R"({"type":")" + std::string(type) + R"(","telemetry":{"devices":)";
        list(out, c.devices);
        out += R"(,"assets":)";
        list(out, c.assets);
        out += R"(,"resolved":)";
        list(out, c.resolved);
        out += R"(},"alarms":)";
        out += c.alarms ? "true" : "false";
        out.push_back('}');
        return out;
    }

    void publish_telemetry(const storage::write_batch& batch) {
        std::shared_lock lock(mutex);
        const auto& entries = batch.series_entries();
        // One group per (device, metric) that somebody wants; series of it in batch order.
        struct group {
            std::string device;
            std::string metric;
            std::vector<const storage::write_batch::point*> points;
        };
        std::vector<group> groups;
        std::map<std::pair<std::string, std::string>, size_t> group_of;
        std::vector<int64_t> series_group(entries.size(), -1);
        for (size_t i = 0; i < entries.size(); ++i) {
            auto info = storage::parse_key(entries[i].key);
            if (!info) continue;
            auto tag = std::find_if(info->tags.begin(), info->tags.end(),
                                    [](const auto& t) { return t.first == "device"; });
            if (tag == info->tags.end()) continue;
            const std::string& device = tag->second;
            bool wanted = std::any_of(clients.begin(), clients.end(),
                                      [&](const auto& c) { return c->wants_device(device); });
            if (!wanted) continue;
            auto key = std::make_pair(device, info->field);
            auto [it, added] = group_of.emplace(key, groups.size());
            if (added) groups.push_back({device, info->field, {}});
            series_group[i] = static_cast<int64_t>(it->second);
        }
        if (groups.empty()) return;
        for (const auto& p : batch.points())
            if (p.series < series_group.size() && series_group[p.series] >= 0)
                groups[static_cast<size_t>(series_group[p.series])].points.push_back(&p);

        for (const auto& g : groups) {
            for (size_t start = 0; start < g.points.size(); start += max_points_per_message) {
                size_t end = std::min(g.points.size(), start + max_points_per_message);
                std::string out = R"({"type":"telemetry","device":)";
                append_json_string(out, g.device);
                out += R"(,"metric":)";
                append_json_string(out, g.metric);
                out += R"(,"points":[)";
                char buf[24];
                for (size_t i = start; i < end; ++i) {
                    const auto* p = g.points[i];
                    if (i > start) out.push_back(',');
                    out.push_back('[');
                    auto r = std::to_chars(buf, buf + sizeof buf, p->ts / 1'000'000);
                    out.append(buf, r.ptr);
                    out.push_back(',');
                    append_value(out, batch, entries[p->series].type, p->raw);
                    out.push_back(']');
                }
                out += "]}";
                auto text = std::make_shared<const std::string>(std::move(out));
                for (const auto& c : clients)
                    if (c->wants_device(g.device)) deliver(*c, text, sent_telemetry);
            }
        }
    }

    void publish_alarm(const std::string& event_json) {
        json::error_code ec;
        json::value event = json::parse(event_json, ec);
        if (ec || !event.is_object()) {
            log::warn("live: an alarm event that is not a JSON object was not sent");
            return;
        }
        std::string out;
        if (event.as_object().contains("type")) {
            json::object copy;
            copy["type"] = "alarm";
            for (const auto& [key, value] : event.as_object())
                if (key != "type") copy[key] = value;
            out = json::serialize(copy);
        } else {
            // The event's own text after "type", so that its numbers keep their spelling
            // (Boost.JSON would print 81.2 as 8.12E1).
            std::string_view rest(event_json);
            rest.remove_prefix(rest.find('{') + 1);
            while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())))
                rest.remove_prefix(1);
            out = R"({"type":"alarm")";
            if (!rest.starts_with('}')) out.push_back(',');
            out += rest;
            while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back())))
                out.pop_back();
        }
        auto text = std::make_shared<const std::string>(std::move(out));
        std::shared_lock lock(mutex);
        for (const auto& c : clients)
            if (c->authenticated && c->alarms) deliver(*c, text, sent_alarm);
    }
};

options options_from(const config::config& cfg) {
    options o;
    o.max_queue_bytes = static_cast<size_t>(cfg.get_int("live.max_queue_bytes"));
    o.max_queue_messages = static_cast<size_t>(cfg.get_int("live.max_queue_messages"));
    o.max_connections = static_cast<int>(cfg.get_int("live.max_connections"));
    o.max_connections_per_user = static_cast<int>(cfg.get_int("live.max_connections_per_user"));
    o.max_pending = static_cast<int>(cfg.get_int("live.max_pending"));
    o.max_pending_per_address = static_cast<int>(cfg.get_int("live.max_pending_per_address"));
    o.auth_timeout = cfg.get_duration("live.auth_timeout");
    o.revalidate_interval = cfg.get_duration("live.revalidate_interval");
    return o;
}

hub::hub(options opts, hooks h) : _impl(std::make_shared<impl>(std::move(opts), std::move(h))) {
    _impl->start_revalidation();
}

hub::~hub() {
    _impl->stop_revalidation();
}

void hub::publish_telemetry(const storage::write_batch& batch) {
    // The ingest hot path: nothing but this load when nobody listens.
    if (_impl->telemetry_listeners.load(std::memory_order_relaxed) == 0) return;
    _impl->publish_telemetry(batch);
}

void hub::publish_alarm(const std::string& event_json) {
    if (_impl->alarm_listeners.load(std::memory_order_relaxed) == 0) return;
    _impl->publish_alarm(event_json);
}

size_t hub::close_user(std::string_view username, std::string_view reason) {
    if (username.empty()) return 0;
    return _impl->close_where([username](const impl::client& c) { return c.user == username; },
                              reason);
}

size_t hub::close_api_key(std::string_view api_key_id, std::string_view reason) {
    if (api_key_id.empty()) return 0;
    return _impl->close_where(
        [api_key_id](const impl::client& c) { return c.api_key_id == api_key_id; }, reason);
}

size_t hub::connections() const {
    return static_cast<size_t>(std::max(0, _impl->open.load()));
}

http::response hub::accept(http::request& req, http::websocket_accept& upgrade) {
    for (std::string_view name : {"token", "access_token"})
        if (req.query.contains(name))
            return http::response::error(
                400, "invalid_argument",
                "Tokens are never taken from the URL (it ends up in logs and browser history): "
                "offer the subprotocols \"bearer, <token>\" or send {\"type\":\"auth\","
                "\"token\":...} as the first message",
                name);
    // The token, from the subprotocols a browser can offer or an Authorization header.
    std::string token, chosen;
    auto offered = offered_protocols(req.header("sec-websocket-protocol"));
    bool clisonix_v1 = std::find(offered.begin(), offered.end(), "clisonix.v1") != offered.end();
    for (size_t i = 0; i < offered.size(); ++i) {
        if (offered[i] == "bearer" && i + 1 < offered.size()) {
            token = offered[i + 1];
            chosen = "bearer";
            break;
        }
        if (offered[i].starts_with("bearer.") && offered[i].size() > 7) {
            if (!clisonix_v1)
                return http::response::error(400, "invalid_argument",
                                             "Offer \"clisonix.v1\" beside \"bearer.<token>\": "
                                             "the server answers with it, never with the token",
                                             "Sec-WebSocket-Protocol");
            token = offered[i].substr(7);
            chosen = "clisonix.v1";
            break;
        }
    }
    if (chosen.empty() && clisonix_v1) chosen = "clisonix.v1";
    if (chosen.empty() && !offered.empty())
        return http::response::error(400, "invalid_argument",
                                     "Unknown subprotocol: offer \"bearer, <token>\", "
                                     "\"clisonix.v1, bearer.<token>\" or \"clisonix.v1\"",
                                     "Sec-WebSocket-Protocol");
    if (token.empty()) {
        std::string_view authorization = req.header("authorization");
        if (authorization.size() > 7 &&
            (authorization.starts_with("Bearer ") || authorization.starts_with("bearer ")))
            token = std::string(authorization.substr(7));
    }

    auto c = std::make_shared<impl::client>();
    c->remote = req.remote_address;
    c->owner = _impl;
    if (!token.empty()) {
        auto who = _impl->hk.authenticate
                       ? _impl->hk.authenticate(token)
                       : result<identity>(make_error("unavailable", "no authenticator"));
        if (!who) return http::response::from_error(who.error());
        if (auto r = _impl->take_listening(*c, slot_key(*who)); r != impl::refusal::none)
            return _impl->refusal_response(r, who->name);
        c->listen_as(*who, token);
    } else if (auto r = _impl->take_pending(*c, req.remote_address); r != impl::refusal::none) {
        return _impl->refusal_response(r, {});
    }

    upgrade.subprotocol = chosen;
    upgrade.max_queue_bytes = _impl->opts.max_queue_bytes;
    upgrade.max_queue_messages = _impl->opts.max_queue_messages;
    std::weak_ptr<impl> weak = _impl;
    upgrade.on_open = [weak, c](const std::shared_ptr<http::websocket>& ws) {
        if (auto self = weak.lock()) self->on_open(c, ws);
    };
    upgrade.on_message = [weak, c](std::string_view text) {
        if (auto self = weak.lock()) self->on_message(c, text);
    };
    upgrade.on_close = [weak, c](uint16_t, std::string_view) {
        if (auto self = weak.lock()) self->on_close(c);
    };
    return http::response{101, "", "", {}};
}

}  // namespace clisonix::live
