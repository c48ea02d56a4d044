// The notification routes: channels (admin) and the outbox (read; retry: admin).
#include <charconv>
#include <cstdint>

#include <boost/json.hpp>

#include "auth/routes.h"
#include "notify/internal.h"
#include "notify/notify.h"

namespace clisonix::notify {

namespace json = boost::json;
using http::request;
using http::response;

namespace {

response fail(const error& e) {
    return response::from_error(e);
}

json::object channel_json(const channel& c, resilience::breaker_state breaker) {
    json::object o{{"name", c.name}, {"type", c.type}};
    if (c.type == "webhook") {
        o["url"] = c.url;
        o["timeout_ms"] = c.timeout_ms;
        o["secret_set"] = !c.secret.empty();
    } else {
        o["topic"] = c.topic;
    }
    o["breaker"] = resilience::state_name(breaker);
    o["created_at"] = c.created_at;
    o["updated_at"] = c.updated_at;
    return o;
}

// A receiver's answer can be anything the receiver chose to say (internal pages, tokens):
// admins, who configure the channels, see it; everyone else sees the status alone.
bool sees_receiver_answers(const request& req) {
    const auto* who = auth::current_principal(req);
    return who && auth::allows(who->role, http::permission::admin);
}

json::object notification_json(const notification& n, bool with_answer) {
    json::error_code ec;
    json::value event = json::parse(n.event, ec);
    if (ec) event = json::string(n.event);
    json::object o{
        {"id", n.id},
        {"channel", n.channel},
        {"state", n.state},
        {"attempts", n.attempts},
        {"next_attempt_at", n.next_attempt_at},
        {"last_error", with_answer ? n.last_error : detail::without_receiver_answer(n.last_error)},
        {"created_at", n.created_at},
        {"event", std::move(event)}};
    if (n.delivered_at)
        o["delivered_at"] = *n.delivered_at;
    else
        o["delivered_at"] = nullptr;
    return o;
}

// The body of a channel create or replace. The gateway has checked it against the schema;
// this guards the library's own callers and tests without the gateway.
result<channel> channel_from(std::string_view body, bool with_name) {
    json::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object())
        return make_error("invalid_argument", "The body must be a JSON object", "");
    const auto& o = v.as_object();
    channel c;
    auto text = [&](std::string_view key, std::string& out) -> status {
        auto it = o.find(key);
        if (it == o.end()) return {};
        if (!it->value().is_string())
            return make_error("invalid_argument", std::string(key) + " must be a string",
                              std::string(key));
        out = std::string(it->value().as_string());
        return {};
    };
    for (auto [key, out] : {std::pair<std::string_view, std::string*>{"type", &c.type},
                            {"url", &c.url},
                            {"secret", &c.secret},
                            {"topic", &c.topic}}) {
        if (auto st = text(key, *out); !st) return st.error();
    }
    if (with_name) {
        if (auto st = text("name", c.name); !st) return st.error();
    } else if (o.contains("name")) {
        return make_error("invalid_argument", "The name is in the path and cannot change", "name");
    }
    if (auto it = o.find("timeout_ms"); it != o.end()) {
        if (!it->value().is_int64() && !it->value().is_uint64())
            return make_error("invalid_argument", "timeout_ms must be an integer", "timeout_ms");
        c.timeout_ms = it->value().to_number<int64_t>();
    }
    return c;
}

result<int64_t> int_param(std::string_view text, std::string_view name, int64_t fallback,
                          int64_t min, int64_t max) {
    if (text.empty()) return fallback;
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() || n < min || n > max)
        return make_error("invalid_argument",
                          std::string(name) + " must be an integer in " + std::to_string(min) +
                              ".." + std::to_string(max),
                          std::string(name));
    return n;
}

response list_response(notifier& n, std::string_view state, const request& req) {
    auto limit = int_param(req.query_param("limit"), "limit", 100, 1, 1000);
    if (!limit) return fail(limit.error());
    auto offset = int_param(req.query_param("offset"), "offset", 0, 0, INT64_MAX);
    if (!offset) return fail(offset.error());
    auto page = n.list_page(state, *limit, *offset);
    if (!page) return fail(page.error());
    json::array a;
    for (const auto& row : page->rows)
        a.push_back(notification_json(row, sees_receiver_answers(req)));
    return response::json(200, json::serialize(json::object{{"notifications", std::move(a)},
                                                            {"total", page->total},
                                                            {"limit", *limit},
                                                            {"offset", *offset}}));
}

constexpr std::string_view channel_properties = R"(
"type":{"enum":["webhook","mqtt"]},
"url":{"type":"string","minLength":1,"maxLength":2048},
"secret":{"type":"string","maxLength":1024},
"topic":{"type":"string","minLength":1,"maxLength":256},
"timeout_ms":{"type":"integer","minimum":100,"maximum":60000})";

const std::string new_channel_schema =
    R"({"type":"object","properties":{"name":{"type":"string","pattern":"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"},)" +
    std::string(channel_properties) +
    R"(},"required":["name","type"],"additionalProperties":false})";
const std::string channel_schema = R"({"type":"object","properties":{)" +
                                   std::string(channel_properties) +
                                   R"(},"required":["type"],"additionalProperties":false})";

}  // namespace

void add_routes(http::router& routes, notifier& n) {
    using http::method;
    namespace perm = http::permission;

    auto one_channel = [&n](const channel& c) {
        return channel_json(c, n.breakers().get("channel:" + c.name).state());
    };

    routes.add({method::get, "/api/v1/channels", "List notification channels (secrets hidden)",
                perm::admin, [&n, one_channel](request&) {
                    auto all = n.list_channels();
                    if (!all) return fail(all.error());
                    json::array a;
                    for (const auto& c : *all)
                        a.push_back(one_channel(c));
                    return response::json(200, json::serialize(json::object{{"channels", a}}));
                }});
    routes.add({method::post, "/api/v1/channels", "Create a webhook or MQTT channel", perm::admin,
                [&n, one_channel](request& req) {
                    auto c = channel_from(req.body, true);
                    if (!c) return fail(c.error());
                    auto made = n.create_channel(std::move(*c));
                    if (!made) return fail(made.error());
                    return response::json(201, json::serialize(one_channel(*made)));
                },
                new_channel_schema});
    routes.add({method::get, "/api/v1/channels/{name}", "One channel (secret hidden)", perm::admin,
                [&n, one_channel](request& req) {
                    auto c = n.get_channel(req.path_param("name"));
                    if (!c) return fail(c.error());
                    return response::json(200, json::serialize(one_channel(*c)));
                }});
    routes.add({method::put, "/api/v1/channels/{name}",
                "Replace a channel (a missing secret keeps the stored one)", perm::admin,
                [&n, one_channel](request& req) {
                    auto c = channel_from(req.body, false);
                    if (!c) return fail(c.error());
                    auto done = n.update_channel(req.path_param("name"), std::move(*c));
                    if (!done) return fail(done.error());
                    return response::json(200, json::serialize(one_channel(*done)));
                },
                channel_schema});
    routes.add({method::del, "/api/v1/channels/{name}",
                "Delete a channel (its undelivered notifications become dead)", perm::admin,
                [&n](request& req) {
                    if (auto st = n.delete_channel(req.path_param("name")); !st)
                        return fail(st.error());
                    return response::no_content();
                }});
    routes.add({method::post, "/api/v1/channels/{name}/test",
                "Send a test event through a channel (queued like any notification)", perm::admin,
                [&n](request& req) {
                    auto id = n.send_test(req.path_param("name"));
                    if (!id) return fail(id.error());
                    return response::json(202, json::serialize(json::object{{"id", *id}}));
                }});

    routes.add({method::get, "/api/v1/notifications",
                "The outbox, newest first (?state=pending|delivered|dead, limit, offset)",
                perm::read, [&n](request& req) {
                    auto state = req.query_param("state");
                    if (!state.empty() && state != "pending" && state != "delivered" &&
                        state != "dead")
                        return response::error(400, "invalid_argument",
                                               "state must be pending, delivered or dead", "state");
                    return list_response(n, state, req);
                }});
    routes.add({method::get, "/api/v1/notifications/dead",
                "Notifications given up after the last attempt (limit, offset)", perm::read,
                [&n](request& req) { return list_response(n, "dead", req); }});
    routes.add({method::post, "/api/v1/notifications/{id}/retry",
                "Send a dead notification again (attempts start over)", perm::admin,
                [&n](request& req) {
                    auto id = int_param(req.path_param("id"), "id", 0, 1, INT64_MAX);
                    if (!id) return fail(id.error());
                    auto done = n.retry(*id);
                    if (!done) return fail(done.error());
                    return response::json(
                        200, json::serialize(notification_json(*done, sees_receiver_answers(req))));
                }});
}

}  // namespace clisonix::notify
