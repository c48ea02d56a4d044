// Private to src/auth: JWT access tokens, HS256 only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace clisonix::auth::detail {

struct jwt_key {
    std::string id;      // the `kid` header
    std::string secret;  // HMAC key bytes
};

// A key id derived from the secret, so that a changed secret gets a new `kid` by itself and
// tokens signed with the old one are told apart from forgeries in the logs.
std::string key_id_of(std::string_view secret);

struct jwt_claims {
    std::string sub;  // username
    std::string role;
    std::string jti;
    int64_t iat = 0;  // Unix seconds
    int64_t nbf = 0;
    int64_t exp = 0;
};

std::string sign_jwt(const jwt_claims& claims, const jwt_key& key, std::string_view issuer,
                     std::string_view audience);

// Checks, in this order: shape, header (alg pinned to HS256, known kid), signature (constant
// time), then iss, aud, exp and nbf (each with `leeway_s`), sub and role. Errors are
// "invalid_token" with a message saying which check failed.
result<jwt_claims> verify_jwt(std::string_view token, std::span<const jwt_key> keys,
                              std::string_view issuer, std::string_view audience, int64_t now_s,
                              int64_t leeway_s = 30);

}  // namespace clisonix::auth::detail
