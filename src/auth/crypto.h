// Private to src/auth: the primitives (OpenSSL 3 and libargon2) behind tokens and passwords.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace clisonix::auth::detail {

// RFC 4648 §5 without padding.
std::string base64url_encode(std::string_view bytes);
// Strict: only the URL-safe alphabet, no padding, no whitespace, no trailing bits set.
result<std::string> base64url_decode(std::string_view text);

std::string hex(std::string_view bytes);
// `n` bytes from the OpenSSL CSPRNG; throws std::runtime_error if it cannot be seeded,
// which only happens on a broken system.
std::string random_bytes(size_t n);
// A token: `prefix` + base64url of `n` random bytes.
std::string random_token(std::string_view prefix, size_t n);

std::string sha256(std::string_view data);                             // 32 raw bytes
std::string sha256_hex(std::string_view data);                         // 64 hex digits
std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 raw bytes

// Constant-time equality (CRYPTO_memcmp); unequal lengths are unequal at once, which reveals
// only the length.
bool equal_constant_time(std::string_view a, std::string_view b);

struct argon2_params {
    uint32_t memory_kib = 19456;
    uint32_t iterations = 2;
    uint32_t parallelism = 1;
};
// The PHC string "$argon2id$v=19$m=...,t=...,p=...$salt$hash" with a fresh 16-byte salt.
result<std::string> hash_password(std::string_view password, const argon2_params& p);
// libargon2 compares the recomputed hash in constant time.
bool verify_password(std::string_view encoded, std::string_view password);
// Whether `encoded` was hashed with other parameters (then it is rehashed at the next login).
bool needs_rehash(std::string_view encoded, const argon2_params& p);

}  // namespace clisonix::auth::detail
