// /api/v1/rules and /api/v1/alarms.
#include <boost/json.hpp>
#include <charconv>

#include "auth/routes.h"
#include "rules/internal.h"
#include "rules/routes.h"

namespace clisonix::rules {

namespace {

// JSON Schema of a rule document, for the gateway's validator and the OpenAPI document.
// The engine checks the same and more (the condition's syntax) on save.
constexpr std::string_view rule_schema = R"({"type":"object","properties":{
"name":{"type":"string","minLength":1,"maxLength":128},
"scope":{"type":"object","properties":{"device":{"type":"string","minLength":1},
"device_type":{"type":"string","minLength":1},"asset":{"type":"string","minLength":1}},
"minProperties":1,"maxProperties":1,"additionalProperties":false},
"severity":{"enum":["critical","major","minor","warning"]},
"condition":{"type":"string","minLength":1,"maxLength":4096},
"clear":{"type":"string","maxLength":4096},
"clear_after":{"type":"string","maxLength":32},
"notify":{"type":"array","items":{"type":"string","minLength":1},"maxItems":32},
"enabled":{"type":"boolean"},
"id":{"type":"integer"},"created_at":{"type":"integer"},"updated_at":{"type":"integer"}},
"required":["name","scope","severity","condition"],"additionalProperties":false})";

constexpr std::string_view comment_schema = R"({"type":"object","properties":{
"text":{"type":"string","minLength":1,"maxLength":4096}},
"required":["text"],"additionalProperties":false})";

http::response fail(const error& e) {
    return http::response::from_error(e);
}

std::optional<int64_t> to_int(std::string_view s) {
    int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string who(const http::request& req) {
    const auto* p = auth::current_principal(req);
    return p ? p->name : "anonymous";
}

// The {id} of the path; a non-number is no such resource.
std::optional<int64_t> id_of(const http::request& req) {
    auto id = to_int(req.path_param("id"));
    if (!id || *id <= 0) return std::nullopt;
    return id;
}

http::response no_rule(const http::request& req) {
    return http::response::error(404, "not_found",
                                 "no rule with id " + std::string(req.path_param("id")));
}

http::response no_alarm(const http::request& req) {
    return http::response::error(404, "not_found",
                                 "no alarm with id " + std::string(req.path_param("id")));
}

result<alarm_filter> filter_from(const http::request& req) {
    alarm_filter f;
    f.status = req.query_param("status");
    if (!f.status.empty() && f.status != "active" && f.status != "acknowledged" &&
        f.status != "cleared" && f.status != "open")
        return make_error("invalid_argument",
                          "status must be active, acknowledged, cleared or open", "status");
    f.severity = req.query_param("severity");
    if (!f.severity.empty() && f.severity != "critical" && f.severity != "major" &&
        f.severity != "minor" && f.severity != "warning")
        return make_error("invalid_argument", "severity must be critical, major, minor or warning",
                          "severity");
    f.device = req.query_param("device");
    f.asset = req.query_param("asset");
    struct num {
        std::string_view name;
        int64_t* out;
        int64_t min, max;
    };
    for (const auto& n :
         {num{"from", &f.from, 0, INT64_MAX}, num{"to", &f.to, 0, INT64_MAX},
          num{"limit", &f.limit, 1, 1000}, num{"offset", &f.offset, 0, INT64_MAX}}) {
        auto text = req.query_param(n.name);
        if (text.empty()) continue;
        auto v = to_int(text);
        if (!v || *v < n.min || *v > n.max)
            return make_error("invalid_argument",
                              std::string(n.name) + " must be a whole number from " +
                                  std::to_string(n.min) +
                                  (n.max == INT64_MAX ? "" : " to " + std::to_string(n.max)),
                              std::string(n.name));
        *n.out = *v;
    }
    return f;
}

}  // namespace

namespace {

// Writes an audit entry for a change made through the API (the hook may be empty).
using note_fn =
    std::function<void(const http::request&, std::string_view action, std::string_view target)>;

// Rules: list, create, read, replace, delete (changes are audited).
void add_rule_routes(http::router& routes, engine& e, const note_fn& note) {
    using http::method;
    using http::response;
    routes.add(
        {method::get, "/api/v1/rules", "Every rule", http::permission::read, [&e](http::request&) {
             auto list = e.list_rules();
             if (!list) return fail(list.error());
             std::string out = "{\"rules\":[";
             for (size_t i = 0; i < list->size(); ++i)
                 out += (i ? "," : "") + rule_json((*list)[i]);
             return response::json(200, out + "]}");
         }});
    routes.add({method::post, "/api/v1/rules", "Create a rule (its condition is checked)",
                http::permission::admin,
                [&e, note](http::request& req) {
                    auto r = rule_from_json(req.body);
                    if (!r) return fail(r.error());
                    auto made = e.create_rule(std::move(*r));
                    if (!made) return fail(made.error());
                    note(req, "rule.create", made->name);
                    return response::json(201, rule_json(*made));
                },
                std::string(rule_schema)});
    routes.add({method::get, "/api/v1/rules/{id}", "One rule", http::permission::read,
                [&e](http::request& req) {
                    auto id = id_of(req);
                    if (!id) return no_rule(req);
                    auto r = e.get_rule(*id);
                    if (!r) return fail(r.error());
                    return response::json(200, rule_json(*r));
                }});
    routes.add({method::put, "/api/v1/rules/{id}", "Replace a rule (open alarms stay open)",
                http::permission::admin,
                [&e, note](http::request& req) {
                    auto id = id_of(req);
                    if (!id) return no_rule(req);
                    auto r = rule_from_json(req.body);
                    if (!r) return fail(r.error());
                    auto made = e.update_rule(*id, std::move(*r));
                    if (!made) return fail(made.error());
                    note(req, "rule.update", made->name);
                    return response::json(200, rule_json(*made));
                },
                std::string(rule_schema)});
    routes.add({method::del, "/api/v1/rules/{id}", "Delete a rule; its open alarms are cleared",
                http::permission::admin, [&e, note](http::request& req) {
                    auto id = id_of(req);
                    if (!id) return no_rule(req);
                    auto r = e.get_rule(*id);
                    if (!r) return fail(r.error());
                    if (auto st = e.delete_rule(*id); !st) return fail(st.error());
                    note(req, "rule.delete", r->name);
                    return response::no_content();
                }});
}

// Alarms: list, read, acknowledge, clear, comment (changes are audited).
void add_alarm_routes(http::router& routes, engine& e, const note_fn& note) {
    using http::method;
    using http::response;
    routes.add({method::get, "/api/v1/alarms",
                "Alarms by status, severity, device, asset subtree and time; paged",
                http::permission::read, [&e](http::request& req) {
                    auto f = filter_from(req);
                    if (!f) return fail(f.error());
                    auto page = e.list_alarms(*f);
                    if (!page) return fail(page.error());
                    std::string out = "{\"alarms\":[";
                    for (size_t i = 0; i < page->alarms.size(); ++i)
                        out += (i ? "," : "") + alarm_json(page->alarms[i]);
                    out += "],\"total\":" + std::to_string(page->total) +
                           ",\"limit\":" + std::to_string(f->limit) +
                           ",\"offset\":" + std::to_string(f->offset) + "}";
                    return response::json(200, out);
                }});
    routes.add({method::get, "/api/v1/alarms/{id}", "One alarm with its comments",
                http::permission::read, [&e](http::request& req) {
                    auto id = id_of(req);
                    if (!id) return no_alarm(req);
                    auto a = e.get_alarm(*id);
                    if (!a) return fail(a.error());
                    return response::json(200, alarm_json(*a));
                }});
    routes.add({method::post, "/api/v1/alarms/{id}/ack", "Acknowledge an active alarm",
                http::permission::alarms, [&e, note](http::request& req) {
                    auto id = id_of(req);
                    if (!id) return no_alarm(req);
                    auto a = e.acknowledge(*id, who(req));
                    if (!a) return fail(a.error());
                    note(req, "alarm.ack", std::to_string(*id));
                    return response::json(200, alarm_json(*a));
                }});
    routes.add({method::post, "/api/v1/alarms/{id}/clear", "Clear an alarm",
                http::permission::alarms, [&e, note](http::request& req) {
                    auto id = id_of(req);
                    if (!id) return no_alarm(req);
                    auto a = e.clear(*id, who(req));
                    if (!a) return fail(a.error());
                    note(req, "alarm.clear", std::to_string(*id));
                    return response::json(200, alarm_json(*a));
                }});
    routes.add({method::post, "/api/v1/alarms/{id}/comments", "Comment on an alarm",
                http::permission::alarms,
                [&e, note](http::request& req) {
                    auto id = id_of(req);
                    if (!id) return no_alarm(req);
                    boost::system::error_code ec;
                    auto doc = boost::json::parse(req.body, ec);
                    const boost::json::value* text =
                        !ec && doc.is_object() ? doc.as_object().if_contains("text") : nullptr;
                    if (!text || !text->is_string())
                        return response::error(400, "invalid_argument", "text is required", "text");
                    auto c = e.add_comment(*id, who(req), text->as_string());
                    if (!c) return fail(c.error());
                    note(req, "alarm.comment", std::to_string(*id));
                    std::string out = "{\"id\":" + std::to_string(c->id) +
                                      ",\"alarm_id\":" + std::to_string(*id) +
                                      ",\"at\":" + std::to_string(c->at) + ",\"author\":";
                    detail::append_json_string(out, c->author);
                    out += ",\"text\":";
                    detail::append_json_string(out, c->text);
                    return response::json(201, out + "}");
                },
                std::string(comment_schema)});
}

}  // namespace

void add_routes(http::router& routes, engine& e, audit_fn audit_hook) {
    auto audit = std::make_shared<audit_fn>(std::move(audit_hook));
    const note_fn note = [audit](const http::request& req, std::string_view action,
                                 std::string_view target) {
        if (*audit) (*audit)(req, action, target);
    };
    add_rule_routes(routes, e, note);
    add_alarm_routes(routes, e, note);
}

}  // namespace clisonix::rules
