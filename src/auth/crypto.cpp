// Base64url, hashes, HMAC, randomness and Argon2id for src/auth.
#include "auth/crypto.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace clisonix::auth::detail {

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

constexpr uint32_t salt_bytes = 16;
constexpr uint32_t hash_bytes = 32;

}  // namespace

std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    size_t i = 0;
    auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
    for (; i + 3 <= bytes.size(); i += 3) {
        uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (bytes.size() - i == 1) {
        uint32_t v = at(i) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
    } else if (bytes.size() - i == 2) {
        uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
    }
    return out;
}

result<std::string> base64url_decode(std::string_view text) {
    auto bad = [] { return make_error("invalid_argument", "not base64url"); };
    if (text.size() % 4 == 1) return bad();
    std::string out;
    out.reserve(text.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = decode_char(c);
        if (v < 0) return bad();
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // Leftover bits must be zero, so that each byte string has exactly one encoding.
    if ((acc & ((1u << bits) - 1)) != 0) return bad();
    return out;
}

std::string hex(std::string_view bytes) {
    constexpr std::string_view digits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string random_bytes(size_t n) {
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
        throw std::runtime_error("the system random number generator failed");
    }
    return out;
}

std::string random_token(std::string_view prefix, size_t n) {
    return std::string(prefix) + base64url_encode(random_bytes(n));
}

std::string sha256(std::string_view data) {
    std::array<unsigned char, 32> md{};
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(md.data()), 32);
}

std::string sha256_hex(std::string_view data) {
    return hex(sha256(data));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), md.data(), &len);
    return std::string(reinterpret_cast<const char*>(md.data()), len);
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

result<std::string> hash_password(std::string_view password, const argon2_params& p) {
    const std::string salt = random_bytes(salt_bytes);
    const size_t len = argon2_encodedlen(p.iterations, p.memory_kib, p.parallelism, salt_bytes,
                                         hash_bytes, Argon2_id);
    std::string encoded(len, '\0');
    int rc = argon2id_hash_encoded(p.iterations, p.memory_kib, p.parallelism, password.data(),
                                   password.size(), salt.data(), salt.size(), hash_bytes,
                                   encoded.data(), encoded.size());
    if (rc != ARGON2_OK) {
        return make_error("internal",
                          std::string("password hashing failed: ") + argon2_error_message(rc));
    }
    encoded.resize(encoded.find('\0') == std::string::npos ? encoded.size() : encoded.find('\0'));
    return encoded;
}

bool verify_password(std::string_view encoded, std::string_view password) {
    const std::string enc(encoded);  // argon2 wants a NUL-terminated string
    return argon2id_verify(enc.c_str(), password.data(), password.size()) == ARGON2_OK;
}

bool needs_rehash(std::string_view encoded, const argon2_params& p) {
    const std::string prefix = "$argon2id$v=19$m=" + std::to_string(p.memory_kib) +
                               ",t=" + std::to_string(p.iterations) +
                               ",p=" + std::to_string(p.parallelism) + "$";
    return !encoded.starts_with(prefix);
}

}  // namespace clisonix::auth::detail
