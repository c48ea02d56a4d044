// /api/v1/connectors (admin): the documents, their state, and validation naming the field.
#include <charconv>
#include <cmath>

#include <boost/json.hpp>

#include "connectors/connectors.h"

namespace clisonix::connectors {

namespace json = boost::json;
using http::request;
using http::response;

namespace {

response fail(const error& e) {
    return response::from_error(e);
}

json::object mapping_json(const mapping& m) {
    return json::object{
        {"address", m.address},      {"unit_id", m.unit_id},     {"device", m.device},
        {"metric", m.metric},        {"unit", m.unit},           {"scale", m.scale},
        {"offset", m.offset},        {"data_type", m.data_type}, {"word_order", m.word_order},
        {"byte_order", m.byte_order}};
}

json::object state_json(const connector_state& s) {
    json::object o{{"status", s.status},
                   {"last_error", s.last_error},
                   {"points_read", s.points_read},
                   {"errors", s.errors},
                   {"breaker", s.breaker}};
    o["last_success"] = s.last_success ? json::value(s.last_success) : json::value(nullptr);
    o["last_error_at"] = s.last_error_at ? json::value(s.last_error_at) : json::value(nullptr);
    return o;
}

// The password is never returned, only whether one is set.
json::object connector_json(const connector& c, const connector_state& s) {
    json::array mappings;
    for (const auto& m : c.mappings)
        mappings.push_back(mapping_json(m));
    return json::object{{"id", c.id},
                        {"name", c.name},
                        {"type", c.type},
                        {"enabled", c.enabled},
                        {"endpoint", c.endpoint},
                        {"username", c.username},
                        {"password_set", !c.password.empty()},
                        {"poll_interval_ms", c.poll_interval_ms},
                        {"timeout_ms", c.timeout_ms},
                        {"mapping", std::move(mappings)},
                        {"state", state_json(s)},
                        {"created_at", c.created_at},
                        {"updated_at", c.updated_at}};
}

error invalid(const std::string& field, const std::string& reason) {
    return make_error("invalid_argument", field + ": " + reason, field);
}

// The body of a create or replace, every member type-checked with its path named
// ("mapping[3].scale"); the values are checked by service::validate.
result<connector> connector_from(std::string_view body) {
    json::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object())
        return make_error("invalid_argument", "The body must be a JSON object", "");
    const auto& o = v.as_object();
    connector c;
    auto text = [](const json::object& obj, std::string_view key, const std::string& field,
                   std::string& out) -> status {
        const auto* p = obj.if_contains(key);
        if (!p) return {};
        if (!p->is_string()) return invalid(field, "must be a string");
        out = std::string(p->as_string());
        return {};
    };
    auto integer = [](const json::object& obj, std::string_view key, const std::string& field,
                      int64_t& out) -> status {
        const auto* p = obj.if_contains(key);
        if (!p) return {};
        if (p->is_int64())
            out = p->as_int64();
        else if (p->is_uint64() && p->as_uint64() <= INT64_MAX)
            out = static_cast<int64_t>(p->as_uint64());
        else if (p->is_double() && std::trunc(p->as_double()) == p->as_double() &&
                 std::abs(p->as_double()) < 1e15)
            out = static_cast<int64_t>(p->as_double());
        else
            return invalid(field, "must be an integer");
        return {};
    };
    auto number = [](const json::object& obj, std::string_view key, const std::string& field,
                     double& out) -> status {
        const auto* p = obj.if_contains(key);
        if (!p) return {};
        if (!p->is_number()) return invalid(field, "must be a number");
        out = p->to_number<double>();
        return {};
    };
    static constexpr std::string_view known[] = {
        "name",       "type",   "enabled", "endpoint", "username", "password", "poll_interval_ms",
        "timeout_ms", "mapping"};
    for (const auto& [key, value] : o)
        if (std::find(std::begin(known), std::end(known), key) == std::end(known))
            return invalid(std::string(key), "is not a connector field");
    for (auto [key, out] : {std::pair<std::string_view, std::string*>{"name", &c.name},
                            {"type", &c.type},
                            {"endpoint", &c.endpoint},
                            {"username", &c.username},
                            {"password", &c.password}})
        if (auto st = text(o, key, std::string(key), *out); !st) return st.error();
    if (const auto* p = o.if_contains("enabled")) {
        if (!p->is_bool()) return invalid("enabled", "must be true or false");
        c.enabled = p->as_bool();
    }
    if (auto st = integer(o, "poll_interval_ms", "poll_interval_ms", c.poll_interval_ms); !st)
        return st.error();
    if (auto st = integer(o, "timeout_ms", "timeout_ms", c.timeout_ms); !st) return st.error();
    const auto* list = o.if_contains("mapping");
    if (!list) return invalid("mapping", "is required");
    if (!list->is_array()) return invalid("mapping", "must be an array of entries");
    size_t i = 0;
    for (const auto& e : list->as_array()) {
        const std::string at = "mapping[" + std::to_string(i++) + "]";
        if (!e.is_object()) return invalid(at, "must be an object");
        const auto& eo = e.as_object();
        static constexpr std::string_view entry_keys[] = {
            "address", "unit_id", "device",    "metric",     "unit",
            "scale",   "offset",  "data_type", "word_order", "byte_order"};
        for (const auto& [key, value] : eo)
            if (std::find(std::begin(entry_keys), std::end(entry_keys), key) ==
                std::end(entry_keys))
                return invalid(at + "." + std::string(key), "is not a mapping field");
        mapping m;
        for (auto [key, out] : {std::pair<std::string_view, std::string*>{"address", &m.address},
                                {"device", &m.device},
                                {"metric", &m.metric},
                                {"unit", &m.unit},
                                {"data_type", &m.data_type},
                                {"word_order", &m.word_order},
                                {"byte_order", &m.byte_order}})
            if (auto st = text(eo, key, at + "." + std::string(key), *out); !st) return st.error();
        if (auto st = integer(eo, "unit_id", at + ".unit_id", m.unit_id); !st) return st.error();
        if (auto st = number(eo, "scale", at + ".scale", m.scale); !st) return st.error();
        if (auto st = number(eo, "offset", at + ".offset", m.offset); !st) return st.error();
        c.mappings.push_back(std::move(m));
    }
    return c;
}

result<int64_t> id_param(std::string_view text) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() || n < 1)
        return invalid("id", "must be a positive integer");
    return n;
}

// The gateway checks the shape; the handler names the exact field of a mapping entry.
const std::string connector_schema =
    R"({"type":"object","properties":{)"
    R"("name":{"type":"string"},"type":{"type":"string"},"enabled":{"type":"boolean"},)"
    R"("endpoint":{"type":"string"},"username":{"type":"string"},"password":{"type":"string"},)"
    R"("poll_interval_ms":{"type":"integer"},"timeout_ms":{"type":"integer"},)"
    R"("mapping":{"type":"array","items":{"type":"object"}}},)"
    R"("required":["name","type","endpoint","mapping"]})";

}  // namespace

void add_routes(http::router& routes, service& s) {
    using http::method;
    namespace perm = http::permission;

    routes.add({method::get, "/api/v1/connectors",
                "List connectors with their state (passwords hidden)", perm::admin, [&s](request&) {
                    auto all = s.list();
                    if (!all) return fail(all.error());
                    json::array a;
                    for (const auto& c : *all)
                        a.push_back(connector_json(c, s.state(c.id)));
                    json::array types;
                    for (const auto& t : s.drivers().types())
                        types.push_back(json::string(t));
                    return response::json(
                        200, json::serialize(json::object{{"connectors", std::move(a)},
                                                          {"types", std::move(types)}}));
                }});
    routes.add({method::post, "/api/v1/connectors",
                "Create a connector (Modbus TCP: type modbus); it starts at once when enabled",
                perm::admin,
                [&s](request& req) {
                    auto c = connector_from(req.body);
                    if (!c) return fail(c.error());
                    auto made = s.create(std::move(*c));
                    if (!made) return fail(made.error());
                    return response::json(
                        201, json::serialize(connector_json(*made, s.state(made->id))));
                },
                connector_schema});
    routes.add({method::get, "/api/v1/connectors/{id}", "One connector and its state", perm::admin,
                [&s](request& req) {
                    auto id = id_param(req.path_param("id"));
                    if (!id) return fail(id.error());
                    auto c = s.get(*id);
                    if (!c) return fail(c.error());
                    return response::json(200, json::serialize(connector_json(*c, s.state(*id))));
                }});
    routes.add({method::put, "/api/v1/connectors/{id}",
                "Replace a connector (a missing password keeps the stored one); applied at once",
                perm::admin,
                [&s](request& req) {
                    auto id = id_param(req.path_param("id"));
                    if (!id) return fail(id.error());
                    auto c = connector_from(req.body);
                    if (!c) return fail(c.error());
                    auto done = s.update(*id, std::move(*c));
                    if (!done) return fail(done.error());
                    return response::json(200,
                                          json::serialize(connector_json(*done, s.state(*id))));
                },
                connector_schema});
    routes.add({method::del, "/api/v1/connectors/{id}", "Delete a connector (it stops at once)",
                perm::admin, [&s](request& req) {
                    auto id = id_param(req.path_param("id"));
                    if (!id) return fail(id.error());
                    if (auto st = s.remove(*id); !st) return fail(st.error());
                    return response::no_content();
                }});
}

}  // namespace clisonix::connectors
