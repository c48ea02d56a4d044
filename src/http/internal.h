// Private to the http module: helpers shared by the router and the server.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/http.h"

namespace clisonix::http {

// "/a/b/" -> {"a", "b", ""}; the leading '/' is dropped.
std::vector<std::string_view> split_path(std::string_view path);
// Fills req.path (decoded) and req.query from the request target.
void parse_target(std::string_view target, request& req);
// A fresh 128-bit random request id as 32 hex digits.
std::string new_request_id();
// The client's X-Request-Id when it is 1..128 characters of [A-Za-z0-9._:-], else "".
std::string_view sane_request_id(std::string_view candidate);

}  // namespace clisonix::http
