// JWT signing and verification (RFC 7519, RFC 8725's advice: one pinned algorithm).
#include "auth/jwt.h"

#include <boost/json.hpp>

#include "auth/crypto.h"

namespace clisonix::auth::detail {

namespace json = boost::json;

namespace {

// Far above any token we issue; stops a huge header from costing parse time.
constexpr size_t max_token_length = 4096;

error invalid(std::string message) {
    return make_error("invalid_token", std::move(message));
}

result<json::object> decode_object(std::string_view part, std::string_view what) {
    auto bytes = base64url_decode(part);
    if (!bytes) return invalid("The token's " + std::string(what) + " is not base64url");
    boost::system::error_code ec;
    json::value v = json::parse(*bytes, ec);
    if (ec || !v.is_object()) {
        return invalid("The token's " + std::string(what) + " is not a JSON object");
    }
    return std::move(v.as_object());
}

const json::string* string_field(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string()) return nullptr;
    return &it->value().as_string();
}

std::optional<int64_t> int_field(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end()) return std::nullopt;
    const json::value& v = it->value();
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
        return static_cast<int64_t>(v.as_uint64());
    }
    return std::nullopt;
}

}  // namespace

std::string key_id_of(std::string_view secret) {
    return sha256_hex("clisonix-jwt-kid:" + std::string(secret)).substr(0, 16);
}

std::string sign_jwt(const jwt_claims& c, const jwt_key& key, std::string_view issuer,
                     std::string_view audience) {
    json::object header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", key.id}};
    json::object payload{{"iss", issuer}, {"aud", audience}, {"sub", c.sub}, {"role", c.role},
                         {"iat", c.iat},  {"nbf", c.nbf},    {"exp", c.exp}, {"jti", c.jti}};
    std::string signing_input = base64url_encode(json::serialize(header)) + "." +
                                base64url_encode(json::serialize(payload));
    std::string sig = hmac_sha256(key.secret, signing_input);
    return signing_input + "." + base64url_encode(sig);
}

result<jwt_claims> verify_jwt(std::string_view token, std::span<const jwt_key> keys,
                              std::string_view issuer, std::string_view audience, int64_t now_s,
                              int64_t leeway_s) {
    if (token.size() > max_token_length) return invalid("The token is too long");
    const size_t dot1 = token.find('.');
    const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
        return invalid("The token is not a JWT (three base64url parts separated by dots)");
    }
    const std::string_view header_part = token.substr(0, dot1);
    const std::string_view payload_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string_view signature_part = token.substr(dot2 + 1);

    auto header = decode_object(header_part, "header");
    if (!header) return header.error();
    // Pinned: the token does not get to choose how it is checked ("none", RS256 with our
    // secret as a public key, ...).
    const json::string* alg = string_field(*header, "alg");
    if (!alg || *alg != "HS256") return invalid("The token's algorithm is not HS256");
    if (header->contains("crit")) return invalid("The token has critical header extensions");
    const json::string* kid = string_field(*header, "kid");
    if (!kid) return invalid("The token has no key id");
    const jwt_key* key = nullptr;
    for (const auto& k : keys) {
        if (k.id == std::string_view(*kid)) key = &k;
    }
    if (!key) return invalid("The token was signed with an unknown key");

    auto signature = base64url_decode(signature_part);
    const std::string expected =
        hmac_sha256(key->secret, token.substr(0, dot2));  // "header.payload"
    if (!signature || !equal_constant_time(*signature, expected)) {
        return invalid("The token's signature does not verify");
    }

    auto payload = decode_object(payload_part, "payload");
    if (!payload) return payload.error();
    const json::string* iss = string_field(*payload, "iss");
    if (!iss || *iss != issuer) return invalid("The token was issued by someone else");
    bool audience_ok = false;
    if (auto it = payload->find("aud"); it != payload->end()) {
        if (it->value().is_string()) {
            audience_ok = it->value().as_string() == audience;
        } else if (it->value().is_array()) {
            for (const auto& a : it->value().as_array())
                audience_ok = audience_ok || (a.is_string() && a.as_string() == audience);
        }
    }
    if (!audience_ok) return invalid("The token is meant for another audience");
    auto exp = int_field(*payload, "exp");
    if (!exp) return invalid("The token has no expiry");
    if (now_s > *exp + leeway_s) return invalid("The token has expired");
    auto nbf = int_field(*payload, "nbf");
    if (nbf && now_s + leeway_s < *nbf) return invalid("The token is not valid yet");

    jwt_claims c;
    const json::string* sub = string_field(*payload, "sub");
    const json::string* role = string_field(*payload, "role");
    if (!sub || sub->empty() || !role) return invalid("The token names no subject or role");
    c.sub = std::string(*sub);
    c.role = std::string(*role);
    if (const json::string* jti = string_field(*payload, "jti")) c.jti = std::string(*jti);
    c.iat = int_field(*payload, "iat").value_or(0);
    c.nbf = nbf.value_or(0);
    c.exp = *exp;
    return c;
}

}  // namespace clisonix::auth::detail
