// The auth routes, the permission table and the authentication middleware.
#include <array>
#include <charconv>
#include <variant>

#include <boost/json.hpp>

#include "auth/crypto.h"
#include "auth/routes.h"
#include "auth/validate.h"

namespace clisonix::auth {

namespace json = boost::json;
using detail::field_rule;
using detail::json_type;
using http::request;
using http::response;

// ---- roles and permissions -----------------------------------------------------------------

bool is_role(std::string_view role) {
    return role == role_viewer || role == role_operator || role == role_admin;
}

bool allows(std::string_view role, std::string_view permission) {
    namespace p = http::permission;
    if (permission == p::open) return true;
    if (role == role_admin) return true;
    if (role == role_operator) {
        return permission == p::read || permission == p::write || permission == p::devices ||
               permission == p::alarms;
    }
    if (role == role_viewer) return permission == p::read;
    if (role == "device") return permission == p::device;
    return false;
}

std::string_view kind_name(principal_kind k) {
    switch (k) {
        case principal_kind::user:
            return "user";
        case principal_kind::api_key:
            return "api_key";
        case principal_kind::device:
            return "device";
    }
    return {};
}

const principal* current_principal(const request& req) {
    // Only this module's middleware sets the field, always to a principal.
    return static_cast<const principal*>(req.principal.get());
}

status may_write_device(const request& req, std::string_view device) {
    const principal* p = current_principal(req);
    if (!p) return make_error("forbidden", "No authenticated caller", "device");
    if (p->kind == principal_kind::device) {
        if (p->device == device) return {};
        return make_error("forbidden",
                          "This device token may only write telemetry for device " + p->device,
                          "device");
    }
    if (allows(p->role, http::permission::write)) return {};
    return make_error("forbidden", "The role " + p->role + " may not write telemetry", "device");
}

// ---- middleware ----------------------------------------------------------------------------

namespace {

response unauthorized(std::string_view code, std::string_view message, bool bad_token) {
    response r = response::error(401, code, message);
    r.headers.emplace_back("WWW-Authenticate",
                           bad_token ? R"(Bearer realm="clisonix", error="invalid_token")"
                                     : R"(Bearer realm="clisonix")");
    return r;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// The password of HTTP Basic credentials (base64 of `user:password`); "" when malformed,
// which authenticate() refuses as an empty credential.
std::string basic_password(std::string_view encoded) {
    // RFC 4648 base64 to the URL-safe alphabet without padding, which the decoder takes.
    std::string url(encoded);
    while (!url.empty() && url.back() == '=')
        url.pop_back();
    for (auto& c : url) {
        if (c == '+')
            c = '-';
        else if (c == '/')
            c = '_';
    }
    auto decoded = detail::base64url_decode(url);
    if (!decoded) return {};
    const size_t colon = decoded->find(':');
    return colon == std::string::npos ? std::string() : decoded->substr(colon + 1);
}

}  // namespace

namespace {

// The caller of a matched, non-open route, from what the header carries; or the 401/403/503
// that refuses the request.
std::variant<principal, response> resolve(auth_service& service, const request& req) {
    const std::string& needed = req.matched->permission;
    result<principal> who = make_error("unauthenticated", "");
    if (needed == http::permission::device && req.path_params.contains("device_token")) {
        who = service.authenticate_device(req.path_param("device_token"));
    } else {
        const std::string_view header = trim(req.header("authorization"));
        const size_t space = header.find(' ');
        // InfluxDB 1.x clients (Grafana's InfluxDB source, node-influx, Telegraf) send a
        // user name and password: the password is the API key, the user name is not read.
        const bool influx_route = req.matched->path == "/write" || req.matched->path == "/query";
        if (header.empty() && influx_route && req.query.contains("p")) {
            // Clients that cannot set headers pass it as the query parameter `p`, as
            // InfluxDB's 1.x API allows.
            who = service.authenticate("Token", req.query_param("p"));
        } else if (header.empty()) {
            return unauthorized("unauthenticated",
                                "This route needs credentials: send Authorization: Bearer "
                                "<token>",
                                false);
        } else if (space == std::string_view::npos) {
            return unauthorized("invalid_token",
                                "The Authorization header must be \"Bearer <token>\" or "
                                "\"Token <key>\"",
                                true);
        } else if (influx_route && detail::iequals(header.substr(0, space), "basic")) {
            who = service.authenticate("Token", basic_password(trim(header.substr(space + 1))));
        } else {
            who = service.authenticate(header.substr(0, space), trim(header.substr(space + 1)));
        }
    }
    if (!who) {
        if (who.error().code == "invalid_token") {
            return unauthorized("invalid_token", who.error().message, true);
        }
        return response::from_error(who.error());
    }
    if (!allows(who->role, needed)) {
        return response::error(403, "forbidden",
                               "The role " + who->role + " may not use this route; it needs " +
                                   needed + " permission");
    }
    return std::move(*who);
}

bool needs_credentials(const request& req) {
    // Unmatched requests go on to their 404/405; open routes need nobody.
    return req.matched && req.matched->permission != http::permission::open;
}

}  // namespace

http::middleware authenticate(auth_service& service) {
    return [&service](request& req, const http::next& call_next) -> response {
        // check_before_body() may have resolved the caller already, from the same header.
        if (!needs_credentials(req) || req.principal) return call_next(req);
        auto who = resolve(service, req);
        if (auto* refused = std::get_if<response>(&who)) return std::move(*refused);
        req.principal = std::make_shared<const principal>(std::move(std::get<principal>(who)));
        return call_next(req);
    };
}

http::header_check check_before_body(auth_service& service) {
    return [&service](request& req) {
        if (!needs_credentials(req)) return true;
        auto who = resolve(service, req);
        if (std::holds_alternative<response>(who)) return false;  // the chain answers it
        req.principal = std::make_shared<const principal>(std::move(std::get<principal>(who)));
        return true;
    };
}

// ---- routes --------------------------------------------------------------------------------

namespace {

response fail(const error& e) {
    return response::from_error(e);
}

actor actor_of(const request& req) {
    const principal* p = current_principal(req);
    return actor{p ? p->name : std::string("anonymous"), req.remote_address};
}

json::value maybe_ms(const std::optional<int64_t>& v) {
    if (!v) return nullptr;
    return *v;
}

json::object user_json(const user& u) {
    return {{"username", u.username},
            {"role", u.role},
            {"disabled", u.disabled},
            {"created_at", u.created_at},
            {"updated_at", u.updated_at}};
}

json::object key_json(const api_key& k) {
    return {{"id", k.id},
            {"name", k.name},
            {"role", k.role},
            {"created_by", k.created_by},
            {"created_at", k.created_at},
            {"expires_at", maybe_ms(k.expires_at)}};
}

response session_json(const session_tokens& t) {
    json::object o{{"access_token", t.access_token},
                   {"refresh_token", t.refresh_token},
                   {"expires_in", t.expires_in},
                   {"token_type", "Bearer"}};
    response r = response::json(200, json::serialize(o));
    // Tokens must not be kept by browsers or proxies.
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
}

std::string str(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it == o.end() ? std::string() : std::string(it->value().as_string());
}

result<std::optional<int64_t>> int_query(const request& req, std::string_view name) {
    std::string_view v = req.query_param(name);
    if (v.empty()) return std::optional<int64_t>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size()) {
        return make_error("invalid_argument", std::string(name) + " must be an integer",
                          std::string(name));
    }
    return std::optional<int64_t>(n);
}

// JSON Schemas of the bodies, for the gateway's validator and the OpenAPI document.
constexpr std::string_view login_schema = R"({"type":"object","properties":{
"username":{"type":"string","minLength":1,"maxLength":64},
"password":{"type":"string","minLength":1,"maxLength":1024}},
"required":["username","password"],"additionalProperties":false})";
constexpr std::string_view refresh_schema = R"({"type":"object","properties":{
"refresh_token":{"type":"string","minLength":1,"maxLength":4096}},
"required":["refresh_token"],"additionalProperties":false})";
constexpr std::string_view new_user_schema = R"({"type":"object","properties":{
"username":{"type":"string","pattern":"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"},
"password":{"type":"string","minLength":8,"maxLength":1024},
"role":{"enum":["admin","operator","viewer"]}},
"required":["username","password","role"],"additionalProperties":false})";
constexpr std::string_view user_patch_schema = R"({"type":"object","properties":{
"password":{"type":"string","minLength":8,"maxLength":1024},
"role":{"enum":["admin","operator","viewer"]},
"disabled":{"type":"boolean"}},
"minProperties":1,"additionalProperties":false})";
constexpr std::string_view new_key_schema = R"({"type":"object","properties":{
"name":{"type":"string","pattern":"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"},
"role":{"enum":["admin","operator","viewer"]},
"expires_in":{"type":"integer","minimum":1,"maximum":316224000}},
"required":["name","role"],"additionalProperties":false})";

constexpr std::array login_rules{field_rule{"username", json_type::string, true},
                                 field_rule{"password", json_type::string, true}};
constexpr std::array refresh_rules{field_rule{"refresh_token", json_type::string, true}};
constexpr std::array new_user_rules{field_rule{"username", json_type::string, true},
                                    field_rule{"password", json_type::string, true},
                                    field_rule{"role", json_type::string, true}};
constexpr std::array user_patch_rules{field_rule{"password", json_type::string, false},
                                      field_rule{"role", json_type::string, false},
                                      field_rule{"disabled", json_type::boolean, false}};
constexpr std::array new_key_rules{field_rule{"name", json_type::string, true},
                                   field_rule{"role", json_type::string, true},
                                   field_rule{"expires_in", json_type::integer, false}};

}  // namespace

namespace {

// Sessions: log in, refresh, log out, who am I.
void add_session_routes(http::router& routes, auth_service& self) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::post,
                "/api/v1/auth/login",
                "Log in: access and refresh tokens",
                perm::open,
                [&self](request& req) {
                    auto body = detail::parse_body(req.body, login_rules);
                    if (!body) return fail(body.error());
                    const std::string username = str(*body, "username");
                    // Argon2 runs here, in the server's heavy pool (the route is heavy); the delay
                    // of a failure is waited on a timer by the server, not by a thread.
                    std::chrono::milliseconds delay{0};
                    auto t =
                        self.login(username, str(*body, "password"), req.remote_address, &delay);
                    if (!t) {
                        // A lockout is a too_many_requests whose Retry-After is the lockout's rest.
                        response r = response::from_error(
                            t.error(), self.locked_for(username, req.remote_address));
                        r.delay = delay;
                        return r;
                    }
                    return session_json(*t);
                },
                std::string(login_schema),
                {},
                /*heavy=*/true,
                /*checks_credentials=*/true});
    routes.add({method::post,
                "/api/v1/auth/refresh",
                "Trade a refresh token for new tokens (the old one is spent)",
                perm::open,
                [&self](request& req) {
                    auto body = detail::parse_body(req.body, refresh_rules);
                    if (!body) return fail(body.error());
                    auto t = self.refresh(str(*body, "refresh_token"), req.remote_address);
                    if (!t) return fail(t.error());
                    return session_json(*t);
                },
                std::string(refresh_schema),
                {},
                /*heavy=*/false,
                /*checks_credentials=*/true});
    routes.add({method::post, "/api/v1/auth/logout",
                "End the session of a refresh token (its whole family)", perm::open,
                [&self](request& req) {
                    auto body = detail::parse_body(req.body, refresh_rules);
                    if (!body) return fail(body.error());
                    auto st = self.logout(str(*body, "refresh_token"), req.remote_address);
                    if (!st) return fail(st.error());
                    return response::no_content();
                },
                std::string(refresh_schema)});
    routes.add(
        {method::get, "/api/v1/auth/me", "Who the caller is", perm::read, [](request& req) {
             const principal* p = current_principal(req);
             json::object o{{"kind", kind_name(p->kind)}, {"name", p->name}, {"role", p->role}};
             return response::json(200, json::serialize(o));
         }});
}

// Users (admin): list, create, update, delete.
void add_user_routes(http::router& routes, auth_service& self) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/users", "List users", perm::admin, [&self](request&) {
                    auto users = self.list_users();
                    if (!users) return fail(users.error());
                    json::array a;
                    for (const auto& u : *users)
                        a.push_back(user_json(u));
                    return response::json(200, json::serialize(json::object{{"users", a}}));
                }});
    routes.add({method::post,
                "/api/v1/users",
                "Create a user",
                perm::admin,
                [&self](request& req) {
                    auto body = detail::parse_body(req.body, new_user_rules);
                    if (!body) return fail(body.error());
                    auto u = self.create_user(str(*body, "username"), str(*body, "password"),
                                              str(*body, "role"), actor_of(req));
                    if (!u) return fail(u.error());
                    return response::json(201, json::serialize(user_json(*u)));
                },
                std::string(new_user_schema),
                {},
                true});
    routes.add({method::patch,
                "/api/v1/users/{username}",
                "Change a user's password, role or disabled flag",
                perm::admin,
                [&self](request& req) {
                    auto body = detail::parse_body(req.body, user_patch_rules);
                    if (!body) return fail(body.error());
                    if (body->empty()) {
                        return fail(make_error("invalid_argument",
                                               "Give at least one of password, role, disabled"));
                    }
                    user_update change;
                    if (body->contains("password")) change.password = str(*body, "password");
                    if (body->contains("role")) change.role = str(*body, "role");
                    if (auto it = body->find("disabled"); it != body->end()) {
                        change.disabled = it->value().as_bool();
                    }
                    auto u = self.update_user(req.path_param("username"), change, actor_of(req));
                    if (!u) return fail(u.error());
                    return response::json(200, json::serialize(user_json(*u)));
                },
                std::string(user_patch_schema),
                {},
                true});
    routes.add({method::del, "/api/v1/users/{username}", "Delete a user", perm::admin,
                [&self](request& req) {
                    auto st = self.delete_user(req.path_param("username"), actor_of(req));
                    if (!st) return fail(st.error());
                    return response::no_content();
                }});
}

// API keys: create (the key is shown once), list, revoke.
void add_api_key_routes(http::router& routes, auth_service& self) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::post, "/api/v1/apikeys",
                "Create an API key for a service account (the key is shown once)", perm::admin,
                [&self](request& req) {
                    auto body = detail::parse_body(req.body, new_key_rules);
                    if (!body) return fail(body.error());
                    std::optional<std::chrono::seconds> expires_in;
                    if (auto it = body->find("expires_in"); it != body->end()) {
                        const auto& v = it->value();
                        expires_in = std::chrono::seconds(
                            v.is_int64() ? v.as_int64()
                                         : static_cast<int64_t>(
                                               std::min<uint64_t>(v.as_uint64(), INT64_MAX)));
                    }
                    auto k = self.create_api_key(str(*body, "name"), str(*body, "role"), expires_in,
                                                 actor_of(req));
                    if (!k) return fail(k.error());
                    json::object o{{"key", k->key},
                                   {"id", k->info.id},
                                   {"name", k->info.name},
                                   {"role", k->info.role},
                                   {"expires_at", maybe_ms(k->info.expires_at)}};
                    response r = response::json(201, json::serialize(o));
                    r.headers.emplace_back("Cache-Control", "no-store");
                    return r;
                },
                std::string(new_key_schema)});
    routes.add({method::get, "/api/v1/apikeys", "List API keys (never the keys themselves)",
                perm::admin, [&self](request&) {
                    auto keys = self.list_api_keys();
                    if (!keys) return fail(keys.error());
                    json::array a;
                    for (const auto& k : *keys)
                        a.push_back(key_json(k));
                    return response::json(200, json::serialize(json::object{{"api_keys", a}}));
                }});
    routes.add({method::del, "/api/v1/apikeys/{id}", "Revoke an API key", perm::admin,
                [&self](request& req) {
                    auto st = self.revoke_api_key(req.path_param("id"), actor_of(req));
                    if (!st) return fail(st.error());
                    return response::no_content();
                }});
}

// The audit log, filtered and paged.
void add_audit_routes(http::router& routes, auth_service& self) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/audit",
                "The audit log, newest first (?actor, action, from, to in Unix ms; limit, offset)",
                perm::admin, [&self](request& req) {
                    audit_filter f;
                    f.actor = std::string(req.query_param("actor"));
                    f.action = std::string(req.query_param("action"));
                    for (auto name : {"from", "to", "limit", "offset"}) {
                        auto v = int_query(req, name);
                        if (!v) return fail(v.error());
                        if (!*v) continue;
                        const std::string_view n = name;
                        if (n == "from") f.from = **v;
                        if (n == "to") f.to = **v;
                        if (n == "limit") {
                            if (**v < 1 || **v > 1000) {
                                return fail(make_error("invalid_argument", "limit must be 1..1000",
                                                       "limit"));
                            }
                            f.limit = **v;
                        }
                        if (n == "offset") {
                            if (**v < 0) {
                                return fail(make_error("invalid_argument",
                                                       "offset must not be negative", "offset"));
                            }
                            f.offset = **v;
                        }
                    }
                    auto entries = self.audit_log(f);
                    if (!entries) return fail(entries.error());
                    json::array a;
                    for (const auto& e : *entries) {
                        boost::system::error_code ec;
                        json::value details = json::parse(e.details, ec);
                        if (ec) details = json::object();
                        a.push_back(json::object{{"id", e.id},
                                                 {"at", e.at},
                                                 {"actor", e.actor},
                                                 {"action", e.action},
                                                 {"target", e.target},
                                                 {"remote", e.remote},
                                                 {"details", details}});
                    }
                    json::object o{{"entries", a}, {"limit", f.limit}, {"offset", f.offset}};
                    return response::json(200, json::serialize(o));
                }});
}

}  // namespace

void add_routes(http::router& routes, auth_service& service) {
    add_session_routes(routes, service);
    add_user_routes(routes, service);
    add_api_key_routes(routes, service);
    add_audit_routes(routes, service);
}

}  // namespace clisonix::auth
