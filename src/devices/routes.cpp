// The HTTP API of devices, device types, attributes, assets, relations and graph queries.
#include <array>
#include <charconv>
#include <initializer_list>

#include "auth/routes.h"
#include "devices/internal.h"
#include "http/http.h"

namespace clisonix::devices {

namespace json = boost::json;
using http::request;
using http::response;

namespace {

response fail(const error& e) {
    // The one too_many_requests here is the attributes-per-device quota, which lifts only when
    // attributes are deleted: clients that honour Retry-After come back rarely.
    return response::from_error(e, std::chrono::hours(1));
}

auth::actor actor_of(const request& req) {
    const auto* p = auth::current_principal(req);
    return {p ? p->name : "anonymous", req.remote_address};
}

// ---- JSON out ---------------------------------------------------------------------------

json::object to_json(const device& d) {
    json::object o{{"id", d.id},
                   {"name", d.name},
                   {"type", d.type},
                   {"label", d.label},
                   {"description", d.description},
                   {"created_at", d.created_at},
                   {"updated_at", d.updated_at},
                   {"online", d.online},
                   {"connected", d.connected}};
    o["last_seen"] = d.last_seen ? json::value(*d.last_seen) : json::value(nullptr);
    return o;
}

json::object to_json(const device_type& t) {
    json::error_code ec;
    auto metrics = json::parse(detail::metrics_to_json(t.metrics), ec);
    return json::object{{"id", t.id},
                        {"name", t.name},
                        {"description", t.description},
                        {"metrics", metrics},
                        {"offline_timeout_ms", t.offline_timeout_ms},
                        {"analytics", json::parse(detail::analytics_to_json(t.analytics), ec)},
                        {"created_at", t.created_at},
                        {"updated_at", t.updated_at}};
}

json::object to_json(const asset& a) {
    return json::object{{"id", a.id},
                        {"name", a.name},
                        {"type", a.type},
                        {"label", a.label},
                        {"description", a.description},
                        {"created_at", a.created_at},
                        {"updated_at", a.updated_at}};
}

json::object to_json(const node& n, bool with_depth) {
    json::object o{{"id", n.id}, {"kind", n.kind}, {"name", n.name}, {"type", n.type}};
    if (with_depth) o["depth"] = n.depth;
    return o;
}

json::object to_json(const relation& r) {
    return json::object{{"id", r.id},
                        {"from", to_json(r.from, false)},
                        {"to", to_json(r.to, false)},
                        {"type", r.type},
                        {"created_at", r.created_at}};
}

template <typename T>
response list_answer(const char* key, const std::vector<T>& items) {
    json::array arr;
    for (const auto& x : items)
        arr.push_back(to_json(x));
    return response::json(200, json::serialize(json::object{{key, std::move(arr)}}));
}

response nodes_answer(const std::vector<node>& nodes) {
    json::array arr;
    for (const auto& n : nodes)
        arr.push_back(to_json(n, true));
    return response::json(200, json::serialize(json::object{{"nodes", std::move(arr)}}));
}

// ---- JSON in ----------------------------------------------------------------------------

// The body as an object whose keys are all in `allowed`; errors name the field.
result<json::object> body_object(const request& req,
                                 std::initializer_list<std::string_view> allowed,
                                 std::initializer_list<std::string_view> required = {}) {
    json::error_code ec;
    auto v = json::parse(req.body, ec);
    if (ec || !v.is_object())
        return make_error("invalid_argument", "The request body must be a JSON object", "body");
    auto& o = v.as_object();
    for (const auto& [k, val] : o) {
        bool known = false;
        for (auto a : allowed)
            known = known || a == k;
        if (!known)
            return make_error("invalid_argument", "Unknown field " + std::string(k),
                              std::string(k));
    }
    for (auto r : required)
        if (!o.contains(r))
            return make_error("invalid_argument", "Missing required field " + std::string(r),
                              std::string(r));
    return std::move(o);
}

result<std::optional<std::string>> opt_string(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v) return std::optional<std::string>();
    if (!v->is_string())
        return make_error("invalid_argument", std::string(key) + ": must be a string",
                          std::string(key));
    return std::optional<std::string>(std::string(v->as_string()));
}

// A reference to a node in a body: a name (string) or an id (integer).
result<std::string> node_ref(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v)
        return make_error("invalid_argument", std::string(key) + ": required", std::string(key));
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_int64() || v->is_uint64()) return std::to_string(v->to_number<int64_t>());
    return make_error("invalid_argument", std::string(key) + ": a name or an id", std::string(key));
}

result<int> depth_param(const request& req) {
    auto text = req.query_param("depth");
    if (text.empty()) return -1;
    int n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || ptr != text.data() + text.size() || n < 0)
        return make_error("invalid_argument", "depth: expected a non-negative integer", "depth");
    return n;
}

constexpr std::string_view name_pattern = R"("^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")";

std::string device_schema() {
    return std::string(R"({"type":"object","properties":{"name":{"type":"string","pattern":)") +
           std::string(name_pattern) +
           R"(},"type":{"type":"string"},"label":{"type":"string"},"description":{"type":"string"}},"required":["name"],"additionalProperties":false})";
}
constexpr std::string_view device_patch_schema =
    R"({"type":"object","properties":{"type":{"type":"string"},"label":{"type":"string"},"description":{"type":"string"}},"minProperties":1,"additionalProperties":false})";
constexpr std::string_view metrics_schema =
    R"({"type":"object","additionalProperties":{"type":"object","properties":{"unit":{"type":"string"},"min":{"type":"number"},"max":{"type":"number"}},"additionalProperties":false}})";
std::string type_schema(bool create) {
    return std::string(R"({"type":"object","properties":{)") +
           (create ? R"("name":{"type":"string"},)" : "") +
           R"("description":{"type":"string"},"metrics":)" + std::string(metrics_schema) +
           R"(,"offline_timeout_ms":{"type":"integer","minimum":1},"analytics":{"type":"object"}})" +
           (create ? R"(,"required":["name"])" : R"(,"minProperties":1)") +
           R"(,"additionalProperties":false})";
}
constexpr std::string_view asset_schema =
    R"({"type":"object","properties":{"name":{"type":"string"},"type":{"type":"string"},"label":{"type":"string"},"description":{"type":"string"}},"required":["name","type"],"additionalProperties":false})";
constexpr std::string_view asset_patch_schema =
    R"({"type":"object","properties":{"type":{"type":"string"},"label":{"type":"string"},"description":{"type":"string"}},"minProperties":1,"additionalProperties":false})";
constexpr std::string_view relation_schema =
    R"({"type":"object","properties":{"from":{"type":["string","integer"]},"to":{"type":["string","integer"]},"type":{"type":"string"}},"required":["from","to","type"],"additionalProperties":false})";
constexpr std::string_view attributes_schema = R"({"type":"object","minProperties":1})";

result<type_update> type_change_from(const json::object& o) {
    type_update u;
    auto d = opt_string(o, "description");
    if (!d) return d.error();
    u.description = *d;
    if (auto* m = o.if_contains("metrics")) {
        auto metrics = detail::metrics_from_json(*m, "metrics");
        if (!metrics) return metrics.error();
        u.metrics = std::move(*metrics);
    }
    if (auto* t = o.if_contains("offline_timeout_ms")) {
        if (!t->is_int64() && !t->is_uint64())
            return make_error("invalid_argument", "offline_timeout_ms: must be an integer",
                              "offline_timeout_ms");
        u.offline_timeout_ms = t->to_number<int64_t>();
    }
    if (auto* a = o.if_contains("analytics")) {
        auto parsed = detail::analytics_from_json(*a);
        if (!parsed) return parsed.error();
        u.analytics = std::move(*parsed);
    }
    return u;
}

json::object import_json(const import_report& r) {
    json::array created, skipped, errors;
    for (const auto& [line, d] : r.created) {
        auto o = to_json(d.info);
        o["line"] = line;
        o["token"] = d.token;
        created.push_back(std::move(o));
    }
    for (const auto& [line, name] : r.skipped)
        skipped.push_back(json::object{{"line", line}, {"name", name}});
    for (const auto& e : r.errors)
        errors.push_back(
            json::object{{"line", e.line}, {"field", e.field}, {"message", e.message}});
    return json::object{{"created", std::move(created)},
                        {"skipped", std::move(skipped)},
                        {"errors", std::move(errors)}};
}

}  // namespace

namespace {

// Devices: the list and a new device.
void add_device_collection_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/devices", "Devices (?type= filters), with online status",
                perm::read, [&reg](request& req) {
                    auto list = reg.list_devices(req.query_param("type"));
                    if (!list) return fail(list.error());
                    return list_answer("devices", *list);
                }});
    routes.add({method::post, "/api/v1/devices",
                "Create a device; the answer carries its access token, shown only this once",
                perm::devices,
                [&reg](request& req) {
                    auto o = body_object(req, {"name", "type", "label", "description"}, {"name"});
                    if (!o) return fail(o.error());
                    new_device d;
                    for (auto [key, target] :
                         {std::pair{"name", &d.name}, std::pair{"type", &d.type},
                          std::pair{"label", &d.label}, std::pair{"description", &d.description}}) {
                        auto s = opt_string(*o, key);
                        if (!s) return fail(s.error());
                        if (*s) *target = **s;
                    }
                    auto made = reg.create_device(d, actor_of(req));
                    if (!made) return fail(made.error());
                    auto out = to_json(made->info);
                    out["token"] = made->token;
                    return response::json(201, json::serialize(out));
                },
                device_schema()});
}

// A device's access token, and devices imported in bulk from CSV.
void add_device_token_and_import_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::post, "/api/v1/devices/{device}/token",
                "Issue or rotate a device's access token (shown once); registers the device",
                perm::devices, [&reg](request& req) {
                    auto device = req.path_param("device");
                    auto token = reg.issue_token(device, actor_of(req));
                    if (!token) return fail(token.error());
                    json::object out{{"device", device}, {"token", *token}};
                    return response::json(201, json::serialize(out));
                }});
    routes.add({method::post, "/api/v1/devices/import",
                "Create devices from CSV (name,type,label,description); per-row errors",
                perm::devices, [&reg](request& req) {
                    std::vector<import_row> rows;
                    std::vector<import_error> errors;
                    parse_device_csv(req.body, rows, errors);
                    for (const auto& e : errors)
                        if (e.field == "header")
                            return response::error(
                                400, "invalid_argument",
                                "line " + std::to_string(e.line) + ": " + e.message, "header");
                    if (rows.empty() && errors.empty())
                        return response::error(400, "invalid_argument",
                                               "The body holds no device rows", "body");
                    auto report = reg.import_devices(rows, actor_of(req));
                    report.errors.insert(report.errors.begin(), errors.begin(), errors.end());
                    std::sort(report.errors.begin(), report.errors.end(),
                              [](const import_error& a, const import_error& b) {
                                  return a.line < b.line;
                              });
                    return response::json(200, json::serialize(import_json(report)));
                }});
}

// One device: read, update, delete.
void add_device_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/devices/{device}", "One device, by name or id", perm::read,
                [&reg](request& req) {
                    auto d = reg.get_device(req.path_param("device"));
                    if (!d) return fail(d.error());
                    return response::json(200, json::serialize(to_json(*d)));
                }});
    routes.add({method::patch, "/api/v1/devices/{device}",
                "Change a device's type, label or description", perm::devices,
                [&reg](request& req) {
                    auto o = body_object(req, {"type", "label", "description"});
                    if (!o) return fail(o.error());
                    device_update u;
                    for (auto [key, target] :
                         {std::pair{"type", &u.type}, std::pair{"label", &u.label},
                          std::pair{"description", &u.description}}) {
                        auto s = opt_string(*o, key);
                        if (!s) return fail(s.error());
                        *target = *s;
                    }
                    auto d = reg.update_device(req.path_param("device"), u);
                    if (!d) return fail(d.error());
                    return response::json(200, json::serialize(to_json(*d)));
                },
                std::string(device_patch_schema)});
    routes.add({method::del, "/api/v1/devices/{device}",
                "Delete a device, its attributes, relations and token (its telemetry stays)",
                perm::devices, [&reg](request& req) {
                    auto st = reg.delete_device(req.path_param("device"), actor_of(req));
                    if (!st) return fail(st.error());
                    return response::no_content();
                }});
}

// A device's client, server and shared attributes.
void add_attribute_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/devices/{device}/attributes",
                "Attributes by scope (?scope=client|server|shared; none: all three)", perm::read,
                [&reg](request& req) {
                    auto a = reg.attributes(req.path_param("device"), req.query_param("scope"));
                    if (!a) return fail(a.error());
                    return response::json(200, *a);
                }});
    routes.add({method::post, "/api/v1/devices/{device}/attributes",
                "Set server or shared attributes (?scope=); shared ones are pushed to the device",
                perm::devices,
                [&reg](request& req) {
                    auto scope = req.query_param("scope");
                    if (scope == "client")
                        return response::error(400, "invalid_argument",
                                               "scope: client attributes are reported by the "
                                               "device itself; use server or shared",
                                               "scope");
                    auto st = reg.set_attributes(req.path_param("device"), scope, req.body);
                    if (!st) return fail(st.error());
                    auto a = reg.attributes(req.path_param("device"), scope);
                    if (!a) return fail(a.error());
                    return response::json(200, *a);
                },
                std::string(attributes_schema)});
    routes.add({method::del, "/api/v1/devices/{device}/attributes",
                "Delete attributes (?scope=&keys=a,b)", perm::devices, [&reg](request& req) {
                    std::vector<std::string> keys;
                    std::string_view text = req.query_param("keys");
                    size_t start = 0;
                    while (start < text.size()) {
                        size_t comma = std::min(text.find(',', start), text.size());
                        if (comma > start) keys.emplace_back(text.substr(start, comma - start));
                        start = comma + 1;
                    }
                    auto st = reg.delete_attributes(req.path_param("device"),
                                                    req.query_param("scope"), keys);
                    if (!st) return fail(st.error());
                    return response::no_content();
                }});
}

// Device types (profiles): metrics with units and expected ranges.
void add_device_type_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/device-types", "Device types (profiles)", perm::read,
                [&reg](request&) {
                    auto list = reg.list_types();
                    if (!list) return fail(list.error());
                    return list_answer("device_types", *list);
                }});
    routes.add({method::post, "/api/v1/device-types",
                "Create a device type: metrics (unit, expected range) and offline timeout",
                perm::devices,
                [&reg](request& req) {
                    auto o = body_object(
                        req, {"name", "description", "metrics", "offline_timeout_ms", "analytics"},
                        {"name"});
                    if (!o) return fail(o.error());
                    auto name = opt_string(*o, "name");
                    if (!name) return fail(name.error());
                    auto change = type_change_from(*o);
                    if (!change) return fail(change.error());
                    device_type t;
                    t.name = name->value_or("");
                    t.description = change->description.value_or("");
                    t.metrics = change->metrics.value_or(std::map<std::string, metric_spec>{});
                    t.offline_timeout_ms = change->offline_timeout_ms.value_or(0);
                    t.analytics = change->analytics.value_or(type_analytics{});
                    auto made = reg.create_type(t);
                    if (!made) return fail(made.error());
                    return response::json(201, json::serialize(to_json(*made)));
                },
                type_schema(true)});
    routes.add({method::get, "/api/v1/device-types/{type}", "One device type, by name or id",
                perm::read, [&reg](request& req) {
                    auto t = reg.get_type(req.path_param("type"));
                    if (!t) return fail(t.error());
                    return response::json(200, json::serialize(to_json(*t)));
                }});
    routes.add(
        {method::patch, "/api/v1/device-types/{type}",
         "Change a device type's description, metrics, offline timeout or analytics", perm::devices,
         [&reg](request& req) {
             auto o =
                 body_object(req, {"description", "metrics", "offline_timeout_ms", "analytics"});
             if (!o) return fail(o.error());
             auto change = type_change_from(*o);
             if (!change) return fail(change.error());
             auto t = reg.update_type(req.path_param("type"), *change);
             if (!t) return fail(t.error());
             return response::json(200, json::serialize(to_json(*t)));
         },
         type_schema(false)});
    routes.add({method::del, "/api/v1/device-types/{type}", "Delete a device type no device uses",
                perm::devices, [&reg](request& req) {
                    auto st = reg.delete_type(req.path_param("type"));
                    if (!st) return fail(st.error());
                    return response::no_content();
                }});
}

// Assets: list, create, read, update, delete.
void add_asset_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/assets", "Assets (?type= filters)", perm::read,
                [&reg](request& req) {
                    auto list = reg.list_assets(req.query_param("type"));
                    if (!list) return fail(list.error());
                    return list_answer("assets", *list);
                }});
    routes.add(
        {method::post, "/api/v1/assets",
         "Create an asset (type: site, area, line, machine or any other)", perm::devices,
         [&reg](request& req) {
             auto o = body_object(req, {"name", "type", "label", "description"}, {"name", "type"});
             if (!o) return fail(o.error());
             new_asset a;
             for (auto [key, target] :
                  {std::pair{"name", &a.name}, std::pair{"type", &a.type},
                   std::pair{"label", &a.label}, std::pair{"description", &a.description}}) {
                 auto s = opt_string(*o, key);
                 if (!s) return fail(s.error());
                 if (*s) *target = **s;
             }
             auto made = reg.create_asset(a);
             if (!made) return fail(made.error());
             return response::json(201, json::serialize(to_json(*made)));
         },
         std::string(asset_schema)});
    routes.add({method::get, "/api/v1/assets/{asset}", "One asset, by name or id", perm::read,
                [&reg](request& req) {
                    auto a = reg.get_asset(req.path_param("asset"));
                    if (!a) return fail(a.error());
                    return response::json(200, json::serialize(to_json(*a)));
                }});
    routes.add({method::patch, "/api/v1/assets/{asset}",
                "Change an asset's type, label or description", perm::devices,
                [&reg](request& req) {
                    auto o = body_object(req, {"type", "label", "description"});
                    if (!o) return fail(o.error());
                    asset_update u;
                    for (auto [key, target] :
                         {std::pair{"type", &u.type}, std::pair{"label", &u.label},
                          std::pair{"description", &u.description}}) {
                        auto s = opt_string(*o, key);
                        if (!s) return fail(s.error());
                        *target = *s;
                    }
                    auto a = reg.update_asset(req.path_param("asset"), u);
                    if (!a) return fail(a.error());
                    return response::json(200, json::serialize(to_json(*a)));
                },
                std::string(asset_patch_schema)});
    routes.add({method::del, "/api/v1/assets/{asset}", "Delete an asset and its relations",
                perm::devices, [&reg](request& req) {
                    auto st = reg.delete_asset(req.path_param("asset"));
                    if (!st) return fail(st.error());
                    return response::no_content();
                }});
}

// The graph below and above an asset.
void add_asset_graph_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/assets/{asset}/children",
                "Nodes the asset relates to (?type=, default contains; * = any)", perm::read,
                [&reg](request& req) {
                    auto c =
                        reg.children(req.path_param("asset"), req.query_param("type", "contains"));
                    if (!c) return fail(c.error());
                    return nodes_answer(*c);
                }});
    routes.add({method::get, "/api/v1/assets/{asset}/ancestors",
                "Every node that contains this one, nearest first", perm::read,
                [&reg](request& req) {
                    auto a = reg.ancestor_nodes(req.path_param("asset"));
                    if (!a) return fail(a.error());
                    return nodes_answer(*a);
                }});
    routes.add({method::get, "/api/v1/assets/{asset}/subtree",
                "The node and what it contains, to ?depth= levels (default all)", perm::read,
                [&reg](request& req) {
                    auto depth = depth_param(req);
                    if (!depth) return fail(depth.error());
                    auto s = reg.subtree(req.path_param("asset"), *depth);
                    if (!s) return fail(s.error());
                    return nodes_answer(*s);
                }});
    routes.add(
        {method::get, "/api/v1/assets/{asset}/devices",
         "Names of the devices under the asset (?depth=)", perm::read, [&reg](request& req) {
             auto depth = depth_param(req);
             if (!depth) return fail(depth.error());
             auto d = reg.devices_under(req.path_param("asset"), *depth);
             if (!d) return fail(d.error());
             json::array arr;
             for (const auto& n : *d)
                 arr.emplace_back(n);
             return response::json(200, json::serialize(json::object{{"devices", std::move(arr)}}));
         }});
}

// Relations between assets and devices, and paths through the graph.
void add_relation_routes(http::router& routes, registry& reg) {
    using http::method;
    namespace perm = http::permission;
    routes.add({method::get, "/api/v1/relations", "Relations (?from=&to=&type= filter)", perm::read,
                [&reg](request& req) {
                    relation_filter f{std::string(req.query_param("from")),
                                      std::string(req.query_param("to")),
                                      std::string(req.query_param("type"))};
                    auto list = reg.list_relations(f);
                    if (!list) return fail(list.error());
                    return list_answer("relations", *list);
                }});
    routes.add({method::post, "/api/v1/relations",
                "Relate two assets or devices ({\"from\",\"to\",\"type\"}, names or ids)",
                perm::devices,
                [&reg](request& req) {
                    auto o = body_object(req, {"from", "to", "type"}, {"from", "to", "type"});
                    if (!o) return fail(o.error());
                    auto from = node_ref(*o, "from");
                    if (!from) return fail(from.error());
                    auto to = node_ref(*o, "to");
                    if (!to) return fail(to.error());
                    auto type = opt_string(*o, "type");
                    if (!type) return fail(type.error());
                    auto r = reg.add_relation(*from, *to, type->value_or(""));
                    if (!r) return fail(r.error());
                    return response::json(201, json::serialize(to_json(*r)));
                },
                std::string(relation_schema)});
    routes.add({method::del, "/api/v1/relations/{id}", "Delete a relation", perm::devices,
                [&reg](request& req) {
                    auto id = detail::as_id(req.path_param("id"));
                    if (!id)
                        return response::error(400, "invalid_argument", "id: expected a number",
                                               "id");
                    auto st = reg.delete_relation(*id);
                    if (!st) return fail(st.error());
                    return response::no_content();
                }});
    routes.add({method::get, "/api/v1/graph/path",
                "Shortest path between two nodes over any relation, either direction "
                "(?directed=true: from->to only)",
                perm::read, [&reg](request& req) {
                    for (const char* k : {"from", "to"})
                        if (req.query_param(k).empty())
                            return response::error(400, "invalid_argument",
                                                   std::string(k) + ": required", k);
                    auto p = reg.shortest_path(req.query_param("from"), req.query_param("to"),
                                               req.query_param("directed") == "true");
                    if (!p) return fail(p.error());
                    json::array nodes, edges;
                    for (const auto& n : p->nodes)
                        nodes.push_back(to_json(n, false));
                    for (const auto& e : p->edges)
                        edges.push_back(to_json(e));
                    return response::json(
                        200, json::serialize(json::object{{"length", p->edges.size()},
                                                          {"nodes", std::move(nodes)},
                                                          {"edges", std::move(edges)}}));
                }});
}

}  // namespace

void add_routes(http::router& routes, registry& reg) {
    add_device_collection_routes(routes, reg);
    add_device_token_and_import_routes(routes, reg);
    add_device_routes(routes, reg);
    add_attribute_routes(routes, reg);
    add_device_type_routes(routes, reg);
    add_asset_routes(routes, reg);
    add_asset_graph_routes(routes, reg);
    add_relation_routes(routes, reg);
}

}  // namespace clisonix::devices
