// The product's schema history and the code that applies it.
#include <array>
#include <chrono>
#include <set>
#include <string>

#include "meta/store_base.h"

namespace clisonix::meta {

namespace {

// Append only: a released migration is never edited, renumbered or removed, because
// databases in the field have already recorded it as applied.
constexpr migration product_migrations[] = {
    {1, "settings",
     "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT "
     "NULL)"},
    {2, "users",
     "CREATE TABLE users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT "
     "NULL, disabled BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT "
     "NULL)"},
    {3, "refresh_tokens",
     "CREATE TABLE refresh_tokens (token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, username "
     "TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE, created_at BIGINT NOT NULL, "
     "expires_at BIGINT NOT NULL, used_at BIGINT, revoked_at BIGINT); CREATE INDEX "
     "refresh_tokens_family ON refresh_tokens (family)"},
    {4, "api_keys",
     "CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, key_hash "
     "TEXT NOT NULL UNIQUE, created_by TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at "
     "BIGINT, revoked_at BIGINT)"},
    {5, "device_credentials",
     "CREATE TABLE device_credentials (device TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, "
     "created_at BIGINT NOT NULL, rotated_at BIGINT NOT NULL)"},
    {6, "audit_log",
     "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, "
     "action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL, details TEXT NOT NULL); "
     "CREATE INDEX audit_log_at ON audit_log (at)",
     "CREATE TABLE audit_log (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, "
     "action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL, details TEXT NOT NULL); "
     "CREATE INDEX audit_log_at ON audit_log (at)"},
};

constexpr std::string_view create_schema_migrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT "
    "NULL, applied_at BIGINT NOT NULL)";

int64_t now_unix_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Runs first in every migrating transaction: after it, this process alone migrates.
status lock_and_prepare(detail::store_base& s) {
    if (auto lock = s.migration_lock_sql(); !lock.empty()) {
        if (auto r = s.query(lock); !r) return r.error();
    }
    return s.execute_script(create_schema_migrations);
}

status check_order(std::span<const migration> list) {
    int previous = 0;
    for (const auto& m : list) {
        if (m.version <= previous) {
            return make_error("internal", "meta: migration " + std::to_string(m.version) + " \"" +
                                              std::string(m.name) +
                                              "\" is out of order; versions must increase");
        }
        previous = m.version;
    }
    return {};
}

}  // namespace

std::span<const migration> migrations() {
    return product_migrations;
}

namespace detail {

status apply_migrations(store_base& s, std::span<const migration> list) {
    if (auto ok = check_order(list); !ok) return ok;

    // One cheap transaction finds what is applied, so an up-to-date store costs one round.
    std::set<int64_t> applied;
    auto seen = s.transaction([&](store& tx) -> status {
        if (auto ok = lock_and_prepare(s); !ok) return ok;
        auto r = tx.query("SELECT version FROM schema_migrations");
        if (!r) return r.error();
        for (const auto& row : r->data)
            applied.insert(std::get<int64_t>(row[0]));
        return {};
    });
    if (!seen) return seen;

    const bool postgres = s.backend() == "postgres";
    for (const auto& m : list) {
        if (applied.contains(m.version)) continue;
        auto done = s.transaction([&](store& tx) -> status {
            if (auto ok = lock_and_prepare(s); !ok) return ok;
            // Another process may have applied it between our look and our lock.
            auto again = tx.query("SELECT 1 FROM schema_migrations WHERE version = $1",
                                  std::array<value, 1>{int64_t{m.version}});
            if (!again) return again.error();
            if (!again->data.empty()) return {};
            auto sql = postgres && !m.postgres_sql.empty() ? m.postgres_sql : m.sql;
            if (auto ok = s.execute_script(sql); !ok) return ok;
            auto rec = tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                std::array<value, 3>{int64_t{m.version}, std::string(m.name), now_unix_ms()});
            if (!rec) return rec.error();
            return {};
        });
        if (!done) {
            const auto& e = done.error();
            return make_error(e.code, "meta: migration " + std::to_string(m.version) + " \"" +
                                          std::string(m.name) + "\" failed: " + e.message);
        }
    }
    return {};
}

}  // namespace detail

}  // namespace clisonix::meta
