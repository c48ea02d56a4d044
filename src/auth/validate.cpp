// Input rules for names, roles and JSON bodies.
#include "auth/validate.h"

#include <string>

#include "auth/auth.h"

namespace clisonix::auth::detail {

namespace json = boost::json;

namespace {

bool alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string_view type_word(json_type t) {
    switch (t) {
        case json_type::string:
            return "a string";
        case json_type::boolean:
            return "true or false";
        case json_type::integer:
            return "an integer";
    }
    return {};
}

bool has_type(const json::value& v, json_type t) {
    switch (t) {
        case json_type::string:
            return v.is_string();
        case json_type::boolean:
            return v.is_bool();
        case json_type::integer:
            return v.is_int64() || v.is_uint64();
    }
    return false;
}

}  // namespace

status check_name(std::string_view name, std::string_view field) {
    bool ok = !name.empty() && name.size() <= 64 && alnum(name[0]);
    for (char c : name)
        ok = ok && (alnum(c) || c == '.' || c == '_' || c == '-' || c == '@');
    if (!ok) {
        return make_error("invalid_argument",
                          std::string(field) +
                              " must be 1..64 letters, digits or . _ - @, starting with a letter "
                              "or digit",
                          std::string(field));
    }
    return {};
}

status check_role(std::string_view role) {
    if (!is_role(role)) {
        return make_error("invalid_argument", "role must be one of admin, operator, viewer",
                          "role");
    }
    return {};
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

result<json::object> parse_body(std::string_view body, std::span<const field_rule> rules) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return make_error("invalid_argument", "The body is not valid JSON");
    if (!v.is_object()) return make_error("invalid_argument", "The body must be a JSON object");
    json::object& o = v.as_object();
    for (const auto& kv : o) {
        const field_rule* rule = nullptr;
        for (const auto& r : rules) {
            if (r.name == std::string_view(kv.key())) rule = &r;
        }
        const std::string name(kv.key());
        if (!rule) return make_error("invalid_argument", "Unknown field \"" + name + "\"", name);
        if (!has_type(kv.value(), rule->type)) {
            return make_error("invalid_argument",
                              "\"" + name + "\" must be " + std::string(type_word(rule->type)),
                              name);
        }
    }
    for (const auto& r : rules) {
        if (r.required && !o.contains(r.name)) {
            const std::string name(r.name);
            return make_error("invalid_argument", "Missing required field \"" + name + "\"", name);
        }
    }
    return std::move(o);
}

}  // namespace clisonix::auth::detail
