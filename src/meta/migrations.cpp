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
    // Devices (src/devices): profiles; metrics is a JSON object {metric: {unit, min, max}}.
    {7, "device_types",
     "CREATE TABLE device_types (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
     "description TEXT NOT NULL, metrics TEXT NOT NULL, offline_timeout_ms BIGINT NOT NULL, "
     "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     "CREATE TABLE device_types (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
     "description TEXT NOT NULL, metrics TEXT NOT NULL, offline_timeout_ms BIGINT NOT NULL, "
     "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)"},
    // Devices and assets share `graph_nodes`: one id space and one name space, so that a
    // relation's end is named by its name or id alone. Ids are never reused.
    {8, "devices",
     "CREATE TABLE graph_nodes (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name "
     "TEXT NOT NULL UNIQUE); "
     "CREATE TABLE devices (id BIGINT PRIMARY KEY REFERENCES graph_nodes (id) ON DELETE CASCADE, "
     "name TEXT NOT NULL UNIQUE, type TEXT NOT NULL REFERENCES device_types (name), label TEXT NOT "
     "NULL, description TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, "
     "last_seen BIGINT); CREATE INDEX devices_type ON devices (type); "
     "CREATE TABLE device_attributes (device_id BIGINT NOT NULL REFERENCES devices (id) ON DELETE "
     "CASCADE, scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at BIGINT NOT "
     "NULL, PRIMARY KEY (device_id, scope, key))",
     "CREATE TABLE graph_nodes (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL "
     "UNIQUE); "
     "CREATE TABLE devices (id BIGINT PRIMARY KEY REFERENCES graph_nodes (id) ON DELETE CASCADE, "
     "name TEXT NOT NULL UNIQUE, type TEXT NOT NULL REFERENCES device_types (name), label TEXT NOT "
     "NULL, description TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, "
     "last_seen BIGINT); CREATE INDEX devices_type ON devices (type); "
     "CREATE TABLE device_attributes (device_id BIGINT NOT NULL REFERENCES devices (id) ON DELETE "
     "CASCADE, scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at BIGINT NOT "
     "NULL, PRIMARY KEY (device_id, scope, key))"},
    {9, "assets_relations",
     "CREATE TABLE assets (id BIGINT PRIMARY KEY REFERENCES graph_nodes (id) ON DELETE CASCADE, "
     "name TEXT NOT NULL UNIQUE, type TEXT NOT NULL, label TEXT NOT NULL, description TEXT NOT "
     "NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL); "
     "CREATE INDEX assets_type ON assets (type); "
     "CREATE TABLE relations (id INTEGER PRIMARY KEY AUTOINCREMENT, from_kind TEXT NOT NULL, "
     "from_id BIGINT NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE, to_kind TEXT NOT "
     "NULL, to_id BIGINT NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE, type TEXT NOT "
     "NULL, created_at BIGINT NOT NULL, UNIQUE (from_id, to_id, type)); "
     "CREATE INDEX relations_to ON relations (to_id, type)",
     "CREATE TABLE assets (id BIGINT PRIMARY KEY REFERENCES graph_nodes (id) ON DELETE CASCADE, "
     "name TEXT NOT NULL UNIQUE, type TEXT NOT NULL, label TEXT NOT NULL, description TEXT NOT "
     "NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL); "
     "CREATE INDEX assets_type ON assets (type); "
     "CREATE TABLE relations (id BIGSERIAL PRIMARY KEY, from_kind TEXT NOT NULL, from_id BIGINT "
     "NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE, to_kind TEXT NOT NULL, to_id BIGINT "
     "NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE, type TEXT NOT NULL, created_at "
     "BIGINT NOT NULL, UNIQUE (from_id, to_id, type)); "
     "CREATE INDEX relations_to ON relations (to_id, type)"},
    // Rules (src/rules): one row per rule document; the condition is kept as written.
    {10, "rules",
     "CREATE TABLE rules (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
     "scope_kind TEXT NOT NULL, scope_value TEXT NOT NULL, severity TEXT NOT NULL, condition_text "
     "TEXT NOT NULL, clear_text TEXT NOT NULL, clear_after TEXT NOT NULL, notify TEXT NOT NULL, "
     "enabled BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     "CREATE TABLE rules (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, scope_kind TEXT NOT "
     "NULL, scope_value TEXT NOT NULL, severity TEXT NOT NULL, condition_text TEXT NOT NULL, "
     "clear_text TEXT NOT NULL, clear_after TEXT NOT NULL, notify TEXT NOT NULL, enabled BIGINT "
     "NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)"},
    // Alarms: at most one open (not cleared) alarm per (rule, device), held by the partial
    // unique index; cleared alarms stay as history.
    {11, "alarms",
     "CREATE TABLE alarms (id INTEGER PRIMARY KEY AUTOINCREMENT, rule_id BIGINT NOT NULL, "
     "rule_name TEXT NOT NULL, device TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL, "
     "is_open BIGINT NOT NULL, repeat_count BIGINT NOT NULL, first_at BIGINT NOT NULL, last_at "
     "BIGINT NOT NULL, last_value DOUBLE PRECISION, message TEXT NOT NULL, created_at BIGINT NOT "
     "NULL, updated_at BIGINT NOT NULL, acked_by TEXT, acked_at BIGINT, cleared_by TEXT, "
     "cleared_at BIGINT); "
     "CREATE UNIQUE INDEX alarms_open ON alarms (rule_id, device) WHERE is_open = 1; "
     "CREATE INDEX alarms_device ON alarms (device, id); "
     "CREATE INDEX alarms_status ON alarms (status, id)",
     "CREATE TABLE alarms (id BIGSERIAL PRIMARY KEY, rule_id BIGINT NOT NULL, rule_name TEXT NOT "
     "NULL, device TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL, is_open BIGINT NOT "
     "NULL, repeat_count BIGINT NOT NULL, first_at BIGINT NOT NULL, last_at BIGINT NOT NULL, "
     "last_value DOUBLE PRECISION, message TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at "
     "BIGINT NOT NULL, acked_by TEXT, acked_at BIGINT, cleared_by TEXT, cleared_at BIGINT); "
     "CREATE UNIQUE INDEX alarms_open ON alarms (rule_id, device) WHERE is_open = 1; "
     "CREATE INDEX alarms_device ON alarms (device, id); "
     "CREATE INDEX alarms_status ON alarms (status, id)"},
    {12, "alarm_comments",
     "CREATE TABLE alarm_comments (id INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id BIGINT NOT NULL "
     "REFERENCES alarms (id), at BIGINT NOT NULL, author TEXT NOT NULL, body TEXT NOT NULL); "
     "CREATE INDEX alarm_comments_alarm ON alarm_comments (alarm_id, id)",
     "CREATE TABLE alarm_comments (id BIGSERIAL PRIMARY KEY, alarm_id BIGINT NOT NULL REFERENCES "
     "alarms (id), at BIGINT NOT NULL, author TEXT NOT NULL, body TEXT NOT NULL); "
     "CREATE INDEX alarm_comments_alarm ON alarm_comments (alarm_id, id)"},
    // notify: channels (secrets kept for the HMAC, never returned) and the outbox. Outbox ids
    // are the X-Clisonix-Event-Id receivers deduplicate on, so they are never reused
    // (AUTOINCREMENT; BIGSERIAL on PostgreSQL).
    {13, "notification_channels",
     "CREATE TABLE notification_channels (name TEXT PRIMARY KEY, type TEXT NOT NULL, url TEXT NOT "
     "NULL, secret TEXT NOT NULL, topic TEXT NOT NULL, timeout_ms BIGINT NOT NULL, created_at "
     "BIGINT NOT NULL, updated_at BIGINT NOT NULL)"},
    {14, "notification_outbox",
     "CREATE TABLE notification_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT "
     "NULL, event TEXT NOT NULL, attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL, "
     "last_error TEXT NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL, delivered_at "
     "BIGINT); "
     "CREATE INDEX notification_outbox_due ON notification_outbox (state, next_attempt_at)",
     "CREATE TABLE notification_outbox (id BIGSERIAL PRIMARY KEY, channel TEXT NOT NULL, "
     "event TEXT NOT NULL, attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL, last_error "
     "TEXT NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL, delivered_at BIGINT); "
     "CREATE INDEX notification_outbox_due ON notification_outbox (state, next_attempt_at)"},
    // Machine health and per-type analytics: a type's analytics settings as JSON ('{}': the
    // server's defaults), and the baseline window a user chose per device, from which the
    // health model is retrained at every start.
    {15, "machine_health",
     "ALTER TABLE device_types ADD COLUMN analytics TEXT NOT NULL DEFAULT '{}'; "
     "CREATE TABLE health_baselines (device TEXT PRIMARY KEY, from_ms BIGINT NOT NULL, to_ms "
     "BIGINT NOT NULL, set_by TEXT NOT NULL, updated_at BIGINT NOT NULL)"},
    // Access tokens (stateless JWTs) issued before this Unix second are refused: set when a
    // user's password changes or the user is disabled, so that neither an old token nor
    // re-enabling the account brings an earlier session back.
    {16, "user_tokens_valid_after",
     "ALTER TABLE users ADD COLUMN tokens_valid_after BIGINT NOT NULL DEFAULT 0"},
    // What an alarm's rule kind adds to it, as a JSON object (a forecast crossing's expected,
    // earliest and latest times); '' for none.
    {17, "alarm_details", "ALTER TABLE alarms ADD COLUMN details TEXT NOT NULL DEFAULT ''"},
    // Outbox rows claimed by one dispatcher (its node id) until a lease runs out, so that
    // several processes on one database deliver each row once, and a dead process's rows
    // go to another after the lease. NULL: unclaimed.
    {18, "notification_outbox_claims",
     "ALTER TABLE notification_outbox ADD COLUMN claimed_by TEXT; "
     "ALTER TABLE notification_outbox ADD COLUMN claimed_until BIGINT"},
    // Change notices for the caches of every process sharing a PostgreSQL store
    // (meta::change_feed): NOTIFY in the changing transaction, the table's name as payload.
    // Last-seen times are written all the time and cached by nobody else, so an UPDATE of
    // devices counts only for the columns a cache holds. New outbox rows wake every
    // dispatcher. SQLite: one process, nothing to do.
    {19, "change_notices", "SELECT 1",
     "CREATE FUNCTION clisonix_meta_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
     "PERFORM pg_notify('clisonix_meta', TG_TABLE_NAME); RETURN NULL; END $$; "
     "CREATE TRIGGER device_types_changed AFTER INSERT OR UPDATE OR DELETE ON device_types FOR "
     "EACH STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER devices_changed AFTER INSERT OR DELETE OR UPDATE OF name, type, label, "
     "description ON devices FOR EACH STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER graph_nodes_changed AFTER INSERT OR UPDATE OR DELETE ON graph_nodes FOR EACH "
     "STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER assets_changed AFTER INSERT OR UPDATE OR DELETE ON assets FOR EACH STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER relations_changed AFTER INSERT OR UPDATE OR DELETE ON relations FOR EACH "
     "STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE ON rules FOR EACH STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys FOR EACH "
     "STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users FOR EACH STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER notification_channels_changed AFTER INSERT OR UPDATE OR DELETE ON "
     "notification_channels FOR EACH STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER notification_outbox_added AFTER INSERT ON notification_outbox FOR EACH "
     "STATEMENT EXECUTE FUNCTION clisonix_meta_changed(); "
     "CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE ON settings FOR EACH "
     "STATEMENT "
     "EXECUTE FUNCTION clisonix_meta_changed()"},
    // The data time (ms) of the point that cleared an alarm (0: cleared by a person, by its
    // rule's removal, or before this column). Cluster nodes evaluating the same points
    // recognise an incident already raised and cleared by another node from any point inside
    // it, not only its first (docs/decisions/0073-alarms-once-in-a-cluster.md).
    {20, "alarm_cleared_ts", "ALTER TABLE alarms ADD COLUMN cleared_ts BIGINT NOT NULL DEFAULT 0"},
    // Connectors (src/connectors): one row per connector; the mapping list as JSON; the
    // password sealed like channel secrets. Changes reach every process's runners through
    // the change feed.
    {21, "connectors",
     "CREATE TABLE connectors (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
     "type TEXT NOT NULL, enabled BIGINT NOT NULL, endpoint TEXT NOT NULL, username TEXT NOT "
     "NULL, password TEXT NOT NULL, poll_interval_ms BIGINT NOT NULL, timeout_ms BIGINT NOT NULL, "
     "mapping TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
     "CREATE TABLE connectors (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, type TEXT NOT "
     "NULL, enabled BIGINT NOT NULL, endpoint TEXT NOT NULL, username TEXT NOT NULL, password "
     "TEXT NOT NULL, poll_interval_ms BIGINT NOT NULL, timeout_ms BIGINT NOT NULL, mapping TEXT "
     "NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL); "
     "CREATE TRIGGER connectors_changed AFTER INSERT OR UPDATE OR DELETE ON connectors FOR EACH "
     "STATEMENT EXECUTE FUNCTION clisonix_meta_changed()"},
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
