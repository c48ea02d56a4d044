// auth options from config, and the JWT key file in the data dir.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/auth.h"
#include "auth/crypto.h"
#include "common/key_file.h"

namespace clisonix::auth {

namespace {

constexpr size_t min_secret_bytes = 32;

error key_file_error(const std::string& path, const std::string& why) {
    return make_error("unavailable", "auth: JWT key file " + path + ": " + why, "auth.jwt_secret");
}

result<std::string> read_key_file(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return key_file_error(path, "cannot be read");
    auto key = detail::base64url_decode(line);
    if (!key || key->size() < min_secret_bytes) {
        return key_file_error(path, "does not hold a base64url key of 32 or more bytes");
    }
    // The key signs every session: keep it readable by this user only, even if someone
    // loosened the mode.
    ::chmod(path.c_str(), 0600);
    return std::move(*key);
}

// The key from <dir>/jwt.key, created on first use. O_EXCL settles a race between two
// processes starting at once: the loser reads the winner's key.
result<std::string> key_from_file(const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / "jwt.key").string();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const std::string key = detail::random_bytes(min_secret_bytes);
    auto created = create_key_file(path, detail::base64url_encode(key) + "\n");
    if (!created) return key_file_error(path, created.error().message);
    if (!*created) return read_key_file(path);
    return key;
}

}  // namespace

result<options> options_from(const config::config& cfg) {
    options o;
    o.argon2_memory_kib = static_cast<uint32_t>(cfg.get_int("auth.argon2_memory_kib"));
    o.argon2_iterations = static_cast<uint32_t>(cfg.get_int("auth.argon2_iterations"));
    o.password_min_length = static_cast<size_t>(cfg.get_int("auth.password_min_length"));
    o.access_ttl =
        std::chrono::duration_cast<std::chrono::seconds>(cfg.get_duration("auth.access_ttl"));
    o.refresh_ttl =
        std::chrono::duration_cast<std::chrono::seconds>(cfg.get_duration("auth.refresh_ttl"));
    o.issuer = cfg.get_string("auth.issuer");
    o.audience = cfg.get_string("auth.audience");
    o.login_max_failures = static_cast<int>(cfg.get_int("auth.login_max_failures"));
    o.login_lockout = cfg.get_duration("auth.login_lockout");
    o.login_max_failures_per_account =
        static_cast<int>(cfg.get_int("auth.login_max_failures_per_account"));
    o.login_failure_entries = static_cast<size_t>(cfg.get_int("auth.login_failure_entries"));

    const std::string& secret = cfg.get_string("auth.jwt_secret");
    if (!secret.empty()) {
        if (secret.size() < min_secret_bytes) {
            return make_error("invalid_config",
                              "config: auth.jwt_secret (from " + cfg.source("auth.jwt_secret") +
                                  "): must be at least 32 characters",
                              "auth.jwt_secret");
        }
        o.jwt_secret = secret;
        return o;
    }
    auto key = key_from_file(cfg.get_string("data.dir"));
    if (!key) return key.error();
    o.jwt_secret = std::move(*key);
    return o;
}

}  // namespace clisonix::auth
