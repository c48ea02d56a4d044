// The error vocabulary's HTTP statuses: the one code -> status table (see http.h).
#include <algorithm>
#include <cstdint>
#include <string>

#include "http/http.h"

namespace clisonix::http {

namespace {

struct code_status {
    std::string_view code;
    int status;
};

// Every code of errc; a code missing here answers 500, which the vocabulary test catches.
constexpr code_status statuses[] = {
    {errc::invalid_argument, 400},   {errc::invalid_json, 400},
    {errc::invalid_config, 400},     {errc::unauthenticated, 401},
    {errc::invalid_token, 401},      {errc::invalid_credentials, 401},
    {errc::forbidden, 403},          {errc::not_found, 404},
    {errc::method_not_allowed, 405}, {errc::conflict, 409},
    {errc::too_large, 413},          {errc::unsupported_media_type, 415},
    {errc::upgrade_required, 426},   {errc::too_many_requests, 429},
    {errc::internal, 500},           {errc::corrupt, 500},
    {errc::not_implemented, 501},    {errc::unavailable, 503},
    {errc::overloaded, 503},         {errc::storage_full, 503},
};

}  // namespace

int status_for(std::string_view code) {
    for (const auto& entry : statuses)
        if (entry.code == code) return entry.status;
    return 500;
}

int status_for(const clisonix::error& e) {
    return status_for(e.code);
}

response response::from_error(const clisonix::error& e, std::chrono::seconds retry_after) {
    response res = error(status_for(e), e.code, e.message, e.field);
    // These codes tell the client to come back; Retry-After says when (at least 1 s).
    if (e.code == errc::too_many_requests || e.code == errc::overloaded ||
        e.code == errc::storage_full)
        res.headers.emplace_back("Retry-After",
                                 std::to_string(std::max<int64_t>(1, retry_after.count())));
    return res;
}

}  // namespace clisonix::http
