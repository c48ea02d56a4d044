// Clisonix — authentication and authorisation: users, sessions, API keys, device tokens, audit.
//
// Who may call what:
//   - people log in with a username and password (Argon2id hashes in the metadata store) and
//     get a short-lived JWT access token (HS256, `kid` header) plus an opaque refresh token
//     (stored only as its SHA-256, rotated on every use; a reused one revokes its family);
//   - service accounts (Telegraf, scripts) use API keys with a role and an optional expiry,
//     sent as `Authorization: Token <key>` (InfluxDB clients) or `Authorization: Bearer <key>`;
//   - devices use their own token, as `Authorization: Bearer <token>` or in the path
//     (`/api/v1/{device_token}/telemetry`), and may only write their own telemetry.
//
// Roles grant the permissions routes declare (http::permission's names, plain strings here):
//   viewer -> read;  operator -> read, write, devices, alarms;  admin -> everything;
//   device -> device.
// This header knows no HTTP: the routes, the authentication middleware (401/403) and the
// caller of a request are in `routes.h`, which only the wiring and the route files include.
//
// Every login (ok, failed, locked out), refresh-token reuse and every change to users, API
// keys and device credentials is written to the audit log in the metadata store.
//
// Error codes: "invalid_argument" (with the field), "not_found", "conflict", "unauthenticated",
// "invalid_token", "invalid_credentials", "too_many_requests" (locked out), "forbidden", and the
// store's codes.
//
// Thread safety: an auth_service may be used from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "meta/meta.h"

namespace clisonix::auth {

// Roles, weakest first.
inline constexpr std::string_view role_viewer = "viewer";
inline constexpr std::string_view role_operator = "operator";
inline constexpr std::string_view role_admin = "admin";

bool is_role(std::string_view role);
// Whether `role` ("viewer", "operator", "admin", or "device" for a device principal) grants
// `permission` (one of http::permission). Every role has http::permission::open.
bool allows(std::string_view role, std::string_view permission);

enum class principal_kind { user, api_key, device };
std::string_view kind_name(principal_kind k);  // "user", "api_key", "device"

// Who is calling, as the middleware resolved it.
struct principal {
    principal_kind kind = principal_kind::user;
    std::string name;    // username, API key name, or device name
    std::string role;    // "viewer", "operator", "admin"; "device" for devices
    std::string device;  // the device a device principal may write; empty otherwise
    std::string id;      // API key id; access token id (jti) for users; empty for devices
    // When the credential stops being valid (Unix ms): the access token's expiry, an API
    // key's expiry; none for keys that never expire and for device tokens. A connection
    // opened with it (a live WebSocket) ends then.
    std::optional<int64_t> expires_at;
};

struct options {
    uint32_t argon2_memory_kib = 19456;
    uint32_t argon2_iterations = 2;
    size_t password_min_length = 12;
    std::chrono::seconds access_ttl{15 * 60};
    std::chrono::seconds refresh_ttl{7 * 24 * 3600};
    std::string jwt_secret;  // the signing key's bytes; at least 32
    std::string issuer = "clisonix";
    std::string audience = "clisonix-api";
    int login_max_failures = 5;  // per account and client address
    // Per account from any address: guesses spread over many addresses (a botnet, or
    // X-Forwarded-For behind a proxy) are throttled too. Higher than the per-address
    // limit, since anyone can spend it to lock an account out (see the decision record).
    int login_max_failures_per_account = 20;
    std::chrono::milliseconds login_lockout{15 * 60 * 1000};
    // Entries of each failure table (account+address, account); the least recently
    // failed is forgotten beyond it, so that made-up usernames cannot grow memory.
    size_t login_failure_entries = 100'000;
    // A failed login answers after failure_delay * 2^(failures - 1), at most
    // failure_delay_max, so that guessing slows down before the lockout stops it.
    std::chrono::milliseconds failure_delay{250};
    std::chrono::milliseconds failure_delay_max{2000};
};

// The options from the `auth.*` config keys. An empty `auth.jwt_secret` means the key in
// <data.dir>/jwt.key, created on first use (32 random bytes, mode 0600).
result<options> options_from(const config::config& cfg);

// Who did something, for the audit log: a username, "cli", or "system"; and from where.
struct actor {
    std::string name;
    std::string remote;  // client IP; "local" for the command line
};

struct user {
    std::string username;
    std::string role;
    bool disabled = false;
    int64_t created_at = 0;  // Unix ms
    int64_t updated_at = 0;
};

struct user_update {
    std::optional<std::string> password;
    std::optional<std::string> role;
    std::optional<bool> disabled;
};

struct session_tokens {
    std::string access_token;
    std::string refresh_token;
    int64_t expires_in = 0;  // seconds the access token lives
};

struct api_key {
    std::string id;
    std::string name;
    std::string role;
    std::string created_by;
    int64_t created_at = 0;
    std::optional<int64_t> expires_at;  // Unix ms
};

struct new_api_key {
    api_key info;
    std::string key;  // shown once, stored only hashed
};

struct audit_entry {
    int64_t id = 0;
    int64_t at = 0;  // Unix ms
    std::string actor;
    std::string action;  // "login.ok", "login.failed", "user.create" ...
    std::string target;
    std::string remote;
    std::string details = "{}";  // a JSON object
};

struct audit_filter {
    std::string actor;            // empty: any
    std::string action;           // empty: any
    std::optional<int64_t> from;  // Unix ms, inclusive
    std::optional<int64_t> to;    // Unix ms, exclusive
    int64_t limit = 100;
    int64_t offset = 0;
};

// A credential that stopped working before its time, told to whoever holds connections
// opened with it (live WebSockets, MQTT sessions) so that they end at once instead of living
// on until their client leaves: requests check their credential on every call, a connection
// only when it opens.
//   user:    `name` is the username: the user was disabled, deleted, or given a new
//            password (every token of theirs is revoked); `id` is empty;
//   api_key: `name` is the key's name and `id` its id: the key was revoked (deleted);
//   device:  `name` is the device: its token was rotated or revoked; `id` is empty.
struct revoked_credential {
    principal_kind kind = principal_kind::device;
    std::string name;
    std::string id;
    std::string reason;  // for a person: "user disabled", "user deleted", "password changed",
                         // "API key revoked", "device token rotated", "device token revoked"
};
using revocation_listener = std::function<void(const revoked_credential&)>;

// Failed logins counted where every node of a cluster sees them (Redis, through the gateway's
// limiter), so that a guesser spread over N nodes gets the same tries as on one. Each call
// answers nullopt while the shared store is away: the node then counts alone, as without it.
struct shared_failures {
    virtual ~shared_failures() = default;
    // One more failure under `key`; the failures since the first within `window`.
    virtual std::optional<int64_t> count(std::string_view key,
                                         std::chrono::milliseconds window) = 0;
    virtual std::optional<bool> lock(std::string_view key, std::chrono::milliseconds duration) = 0;
    // How much longer `key` is locked (0: not locked).
    virtual std::optional<std::chrono::milliseconds> locked_for(std::string_view key) = 0;
    virtual void forget(std::string_view key) = 0;
};

class auth_service {
public:
    // `store` must outlive the service and have the auth migrations applied (meta::open).
    auth_service(meta::store& store, options opts);
    ~auth_service();
    auth_service(const auth_service&) = delete;
    auth_service& operator=(const auth_service&) = delete;

    const options& settings() const;

    // First start: when there are no users, creates `admin` with `password` (normally
    // $CLISONIX_ADMIN_PASSWORD) or, without one, a generated password that is returned so
    // that the caller prints it once on the console. nullopt when nothing was generated.
    result<std::optional<std::string>> ensure_admin(std::optional<std::string_view> password);

    // Users. Usernames are 1..64 of [A-Za-z0-9._@-], starting with a letter or digit.
    result<user> create_user(std::string_view username, std::string_view password,
                             std::string_view role, const actor& by);
    result<std::vector<user>> list_users();
    result<user> get_user(std::string_view username);
    result<user> update_user(std::string_view username, const user_update& change, const actor& by);
    status delete_user(std::string_view username, const actor& by);

    // Sessions. `remote` is the client IP (lockouts are per account and IP, and per account).
    // A failed login is slowed down by the failure delay: slept here, or, with
    // `failure_delay`, returned there for the caller to wait without a thread (the HTTP
    // route sets it as the response's delay). Error "too_many_requests" while locked out.
    result<session_tokens> login(std::string_view username, std::string_view password,
                                 std::string_view remote,
                                 std::chrono::milliseconds* failure_delay = nullptr);
    result<session_tokens> refresh(std::string_view refresh_token, std::string_view remote);
    status logout(std::string_view refresh_token, std::string_view remote);
    // How long logins for `username` from `remote` stay refused (0 when not locked), by
    // either lockout.
    std::chrono::seconds locked_for(std::string_view username, std::string_view remote);

    // API keys for service accounts; `expires_in` none = never.
    result<new_api_key> create_api_key(std::string_view name, std::string_view role,
                                       std::optional<std::chrono::seconds> expires_in,
                                       const actor& by);
    result<std::vector<api_key>> list_api_keys();
    status revoke_api_key(std::string_view id, const actor& by);

    // Device tokens (shown once, stored hashed). issue: "conflict" when the device has one;
    // rotate: "not_found" when it has none; the old token stops working at once.
    result<std::string> issue_device_token(std::string_view device, const actor& by);
    result<std::string> rotate_device_token(std::string_view device, const actor& by);
    status revoke_device_token(std::string_view device, const actor& by);

    // Called after each credential that ends early (see `revoked_credential`) once the change
    // committed, on the caller's thread: a listener must only hand the news on, never block
    // or call back here. Add listeners before serving. Revocations made by another process
    // (`clisonix user disable` on the same store, another node on PostgreSQL) are not seen.
    void on_revoked(revocation_listener listener);
    // From now on failed logins and lockouts are also counted in `shared` (before serving).
    void share_failures(std::shared_ptr<shared_failures> shared);
    // Drops the API keys verified recently, so that the next use of each is checked against
    // the store again: the server calls it when another process changed keys or users.
    void forget_cached_api_keys();

    // Resolves a credential: `scheme` is "Bearer" or "Token" (case-insensitive), `token` what
    // follows. Errors: "invalid_token" with a message saying why.
    result<principal> authenticate(std::string_view scheme, std::string_view token);
    // A device token alone (the path form).
    result<principal> authenticate_device(std::string_view token);

    status audit(const audit_entry& entry);
    result<std::vector<audit_entry>> audit_log(const audit_filter& filter);

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

// `clisonix user add|list|passwd|disable|enable`. The password of add/passwd comes from
// `password` (the CLI reads it from stdin) or, when absent, is generated and printed once.
// Prints to `out` (results) and `err` (one-line errors); returns 0, 1 (runtime failure) or 2
// (usage error: unknown action, bad name, role or password, unknown user).
struct user_command {
    std::string action;  // "add", "list", "passwd", "disable", "enable"
    std::string username;
    std::string role = std::string(role_viewer);
    std::optional<std::string> password;
};
int run_user_command(meta::store& store, const options& opts, const user_command& cmd,
                     std::ostream& out, std::ostream& err);

}  // namespace clisonix::auth
