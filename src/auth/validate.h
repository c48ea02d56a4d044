// Private to src/auth: input rules shared by the service, the routes and the CLI.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <boost/json.hpp>

#include "common/result.h"

namespace clisonix::auth::detail {

// Argon2 takes any length; this bound keeps a request from making us hash megabytes.
inline constexpr size_t max_password_bytes = 1024;

// Names of users, API keys and devices: 1..64 of [A-Za-z0-9._@-], starting with a letter or
// digit. Quotes, semicolons, slashes and spaces never get in, so a name is safe in paths, logs
// and shells as well as in SQL (which binds it as a parameter anyway).
status check_name(std::string_view name, std::string_view field);
status check_role(std::string_view role);
bool iequals(std::string_view a, std::string_view b);

// A JSON request body, checked field by field until the gateway's schema validation runs in
// front of every route: unknown fields, missing required ones and wrong types are
// "invalid_argument" errors naming the field.
enum class json_type { string, boolean, integer };
struct field_rule {
    std::string_view name;
    json_type type;
    bool required;
};
result<boost::json::object> parse_body(std::string_view body, std::span<const field_rule> rules);

}  // namespace clisonix::auth::detail
