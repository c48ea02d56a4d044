// The auth service: users, sessions, API keys, device tokens and the audit log, on the
// metadata store.
#include <algorithm>
#include <array>
#include <list>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>

#include <boost/json.hpp>

#include "auth/auth.h"
#include "auth/crypto.h"
#include "auth/jwt.h"
#include "auth/validate.h"
#include "common/time.h"
#include "observe/observe.h"

namespace clisonix::auth {

namespace json = boost::json;
using detail::jwt_key;
using meta::value;

namespace {

// Token prefixes tell the credential kinds apart without a database round trip, and let
// secret scanners recognise a leaked token.
constexpr std::string_view refresh_prefix = "cxr_";
constexpr std::string_view api_key_prefix = "cxk_";
constexpr std::string_view device_prefix = "cxd_";
constexpr size_t refresh_bytes = 32;  // 256 bits
constexpr size_t api_key_bytes = 32;
constexpr size_t device_bytes = 24;  // 192 bits
constexpr size_t max_token_length = 4096;

const std::string& text(const value& v) {
    static const std::string empty;
    auto* s = std::get_if<std::string>(&v);
    return s ? *s : empty;
}

int64_t number(const value& v) {
    auto* i = std::get_if<int64_t>(&v);
    return i ? *i : 0;
}

std::optional<int64_t> optional_number(const value& v) {
    auto* i = std::get_if<int64_t>(&v);
    if (!i) return std::nullopt;
    return *i;
}

value nullable(const std::optional<int64_t>& v) {
    if (!v) return std::monostate{};
    return *v;
}

user user_from(const std::vector<value>& row) {
    return user{text(row[0]), text(row[1]), number(row[2]) != 0, number(row[3]), number(row[4])};
}

constexpr std::string_view user_columns = "username, role, disabled, created_at, updated_at";

error invalid_token(std::string message) {
    return make_error("invalid_token", std::move(message));
}

status write_audit(meta::store& s, const audit_entry& e) {
    auto r = s.execute(
        "INSERT INTO audit_log (at, actor, action, target, remote, details) VALUES ($1, $2, $3, "
        "$4, $5, $6)",
        std::array<value, 6>{e.at ? e.at : now_ms(), e.actor, e.action, e.target, e.remote,
                             e.details.empty() ? std::string("{}") : e.details});
    if (!r) return r.error();
    return {};
}

audit_entry entry(const actor& by, std::string action, std::string target,
                  const json::object& details = {}) {
    audit_entry e;
    e.actor = by.name;
    e.remote = by.remote;
    e.action = std::move(action);
    e.target = std::move(target);
    e.details = json::serialize(details);
    return e;
}

struct failure_state {
    int count = 0;
    int64_t last_ms = 0;
    int64_t locked_until = 0;
};

// Failed logins by key, at most `capacity` entries: beyond it the entry that failed least
// recently is forgotten, so that a flood of made-up usernames costs a fixed amount of memory
// (and can at worst make the table forget the oldest failures, never grow). A list in
// failure order, most recent first, and an index into it.
class failure_table {
public:
    explicit failure_table(size_t capacity) : _capacity(std::max<size_t>(1, capacity)) {}

    const failure_state* find(const std::string& key) const {
        auto it = _index.find(key);
        return it == _index.end() ? nullptr : &it->second->second;
    }

    // The entry of `key`, created when absent, now the most recent.
    failure_state& touch(const std::string& key) {
        if (auto it = _index.find(key); it != _index.end()) {
            _order.splice(_order.begin(), _order, it->second);
            return it->second->second;
        }
        if (_index.size() >= _capacity) {
            _index.erase(_order.back().first);
            _order.pop_back();
        }
        _order.emplace_front(key, failure_state{});
        _index.emplace(key, _order.begin());
        return _order.front().second;
    }

    void erase(const std::string& key) {
        if (auto it = _index.find(key); it != _index.end()) {
            _order.erase(it->second);
            _index.erase(it);
        }
    }

private:
    using entry = std::pair<std::string, failure_state>;
    size_t _capacity;
    std::list<entry> _order;
    std::unordered_map<std::string, std::list<entry>::iterator> _index;
};

// Records a failure in `f`: returns {failures so far, whether this one started a lockout}.
std::pair<int, bool> count_failure(failure_state& f, int64_t now, int64_t window,
                                   int max_failures) {
    // Failures older than the lockout time are forgiven.
    if (now - f.last_ms > window) f.count = 0;
    f.count += 1;
    f.last_ms = now;
    const int count = f.count;
    if (count >= max_failures) {
        f.locked_until = now + window;
        f.count = 0;  // after the lockout, a fresh set of tries
        return {count, true};
    }
    return {count, false};
}

}  // namespace

struct auth_service::impl {
    impl(meta::store& s, options o)
        : store(s),
          opts(std::move(o)),
          failures(opts.login_failure_entries),
          account_failures(opts.login_failure_entries) {
        keys.push_back(jwt_key{detail::key_id_of(opts.jwt_secret), opts.jwt_secret});
    }

    meta::store& store;
    options opts;
    std::vector<jwt_key> keys;  // keys[0] signs; all verify

    std::once_flag dummy_once;
    std::string dummy_hash;

    std::mutex listeners_mutex;
    std::vector<revocation_listener> listeners;  // guarded by listeners_mutex

    // API keys that verified recently, by key: a query client sends the same key with every
    // request, and looking it up in the metadata store cost more than the query it guards.
    // A revocation here empties it at once; one on another node (a shared PostgreSQL store)
    // takes effect when the entry is older than api_key_recheck_ms. Expiry is checked on
    // every use. Only keys that verified are kept, so a flood of bad keys cannot fill it.
    static constexpr int64_t api_key_recheck_ms = 1000;
    static constexpr size_t api_key_cache_entries = 1024;
    struct verified_key {
        principal who;
        int64_t verified_at_ms = 0;
    };
    std::mutex api_key_cache_mutex;
    std::unordered_map<std::string, verified_key> api_key_cache;  // guarded by the mutex

    std::optional<principal> cached_api_key(std::string_view token) {
        std::lock_guard lock(api_key_cache_mutex);
        auto it = api_key_cache.find(std::string(token));
        if (it == api_key_cache.end()) return std::nullopt;
        const int64_t now = now_ms();
        if (now - it->second.verified_at_ms >= api_key_recheck_ms ||
            (it->second.who.expires_at && *it->second.who.expires_at <= now)) {
            api_key_cache.erase(it);
            return std::nullopt;
        }
        return it->second.who;
    }
    void remember_api_key(std::string_view token, const principal& who) {
        std::lock_guard lock(api_key_cache_mutex);
        if (api_key_cache.size() >= api_key_cache_entries) api_key_cache.clear();
        api_key_cache[std::string(token)] = {who, now_ms()};
    }

    // After the change committed: every listener hears of it.
    void revoked(principal_kind kind, std::string_view name, std::string_view id,
                 std::string_view reason) {
        std::vector<revocation_listener> copy;
        {
            std::lock_guard lock(listeners_mutex);
            copy = listeners;
        }
        {
            // Any revocation (a key, or a user whose keys it does not touch) empties the
            // cache: revocations are rare, and a wrong entry would outlive a revoked key.
            std::lock_guard lock(api_key_cache_mutex);
            api_key_cache.clear();
        }
        const revoked_credential r{kind, std::string(name), std::string(id), std::string(reason)};
        for (const auto& l : copy)
            l(r);
    }

    std::mutex failures_mutex;
    std::shared_ptr<shared_failures> shared;  // set before serving, then only read
    failure_table failures;                   // by account and client address
    failure_table account_failures;           // by account, from any address

    detail::argon2_params argon2() const {
        return {opts.argon2_memory_kib, opts.argon2_iterations, 1};
    }

    // A hash that no password matches, verified for unknown users so that their failure takes
    // as long as a wrong password and does not tell which usernames exist.
    const std::string& dummy() {
        std::call_once(dummy_once, [this] {
            auto h = detail::hash_password(detail::random_bytes(16), argon2());
            dummy_hash = h ? *h : std::string();
        });
        return dummy_hash;
    }

    status check_password(std::string_view password) const {
        // Counted in code points, so that a passphrase in any script gets the same rule.
        size_t chars = std::count_if(password.begin(), password.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        });
        if (chars < opts.password_min_length) {
            return make_error("invalid_argument",
                              "The password must be at least " +
                                  std::to_string(opts.password_min_length) + " characters long",
                              "password");
        }
        if (password.size() > detail::max_password_bytes) {
            return make_error("invalid_argument",
                              "The password must be at most " +
                                  std::to_string(detail::max_password_bytes) + " bytes long",
                              "password");
        }
        return {};
    }

    std::string failure_key(std::string_view username, std::string_view remote) const {
        return std::string(username) + '\n' + std::string(remote);
    }

    struct lock_state {
        int64_t until = 0;  // Unix ms; 0 or past: not locked
        bool account_wide = false;
    };

    lock_state locked_until(std::string_view username, std::string_view remote) {
        lock_state out;
        {
            std::lock_guard lock(failures_mutex);
            if (const auto* f = failures.find(failure_key(username, remote)))
                out.until = f->locked_until;
            if (const auto* a = account_failures.find(std::string(username));
                a && a->locked_until > out.until) {
                out = {a->locked_until, true};
            }
        }
        // Lockouts another node started (or this one, in the shared store).
        if (shared) {
            const int64_t now = now_ms();
            if (auto ms = shared->locked_for(shared_key("lock", username, remote));
                ms && ms->count() > 0 && now + ms->count() > out.until)
                out = {now + ms->count(), false};
            if (auto ms = shared->locked_for(shared_key("lock", username, {}));
                ms && ms->count() > 0 && now + ms->count() > out.until)
                out = {now + ms->count(), true};
        }
        return out;
    }

    // "login:<what>:<account>" (account-wide) or "login:<what>:<account>\n<address>".
    static std::string shared_key(std::string_view what, std::string_view username,
                                  std::string_view remote) {
        std::string k = "login:" + std::string(what) + ":" + std::string(username);
        if (!remote.empty()) k += "\n" + std::string(remote);
        return k;
    }

    // Counts one failure under `remote` (empty: account-wide) in the shared store, locking
    // at `max`; {count, locked} or nullopt while the store is away.
    std::optional<std::pair<int, bool>> count_shared(std::string_view username,
                                                     std::string_view remote, int max) {
        const auto window = opts.login_lockout;
        auto n = shared->count(shared_key("fail", username, remote), window);
        if (!n) return std::nullopt;
        if (*n < max) return std::pair<int, bool>{static_cast<int>(*n), false};
        (void)shared->lock(shared_key("lock", username, remote), window);
        shared->forget(shared_key("fail", username, remote));  // a fresh set after it
        return std::pair<int, bool>{static_cast<int>(*n), true};
    }

    struct failure_count {
        int count = 0;                // failures of this account from this address
        int account_count = 0;        // failures of this account from anywhere
        bool locked = false;          // this failure started the per-address lockout
        bool account_locked = false;  // ... or the per-account one
    };

    failure_count record_failure(std::string_view username, std::string_view remote) {
        const int64_t now = now_ms();
        const int64_t window = opts.login_lockout.count();
        failure_count c;
        {
            std::lock_guard lock(failures_mutex);
            std::tie(c.count, c.locked) =
                count_failure(failures.touch(failure_key(username, remote)), now, window,
                              opts.login_max_failures);
            std::tie(c.account_count, c.account_locked) =
                count_failure(account_failures.touch(std::string(username)), now, window,
                              opts.login_max_failures_per_account);
        }
        if (shared) {
            // The cluster's counts include this node's: they decide while the store answers.
            if (auto r = count_shared(username, remote, opts.login_max_failures))
                std::tie(c.count, c.locked) = *r;
            if (auto r = count_shared(username, {}, opts.login_max_failures_per_account))
                std::tie(c.account_count, c.account_locked) = *r;
        }
        return c;
    }

    // A success forgets the failures from this address only: the account-wide count keeps
    // running, so that a guesser elsewhere is not given a fresh set each time the owner
    // logs in.
    void clear_failures(std::string_view username, std::string_view remote) {
        {
            std::lock_guard lock(failures_mutex);
            failures.erase(failure_key(username, remote));
        }
        if (shared) shared->forget(shared_key("fail", username, remote));
    }

    std::chrono::milliseconds failure_delay(int count) const {
        auto d = opts.failure_delay;
        for (int i = 1; i < count && d < opts.failure_delay_max; ++i)
            d *= 2;
        return std::min(d, opts.failure_delay_max);
    }

    void audit_or_log(const audit_entry& e) {
        if (auto st = write_audit(store, e); !st) {
            log::error("audit log write failed",
                       {{"action", e.action}, {"target", e.target}, {"error", st.error().message}});
        }
    }

    result<session_tokens> issue_session(meta::store& s, std::string_view username,
                                         std::string_view role, const std::string& family) {
        const int64_t now = now_ms();
        detail::jwt_claims c;
        c.sub = std::string(username);
        c.role = std::string(role);
        c.jti = detail::hex(detail::random_bytes(16));
        c.iat = now / 1000;
        c.nbf = c.iat;
        c.exp = c.iat + opts.access_ttl.count();
        session_tokens t;
        t.access_token = detail::sign_jwt(c, keys[0], opts.issuer, opts.audience);
        t.expires_in = opts.access_ttl.count();
        t.refresh_token = detail::random_token(refresh_prefix, refresh_bytes);
        auto ins = s.execute(
            "INSERT INTO refresh_tokens (token_hash, family, username, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            std::array<value, 5>{detail::sha256_hex(t.refresh_token), family, std::string(username),
                                 now, now + opts.refresh_ttl.count() * 1000});
        if (!ins) return ins.error();
        return t;
    }

    status revoke_family(meta::store& s, const std::string& family) {
        auto r = s.execute(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
            std::array<value, 2>{family, now_ms()});
        if (!r) return r.error();
        return {};
    }

    // Refuses a change that would leave no enabled admin, so the system stays manageable.
    status keep_an_admin(meta::store& tx, std::string_view username) {
        auto r = tx.query(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND username <> $1",
            std::array<value, 1>{std::string(username)});
        if (!r) return r.error();
        if (r->data.empty() || number(r->data[0][0]) == 0) {
            return make_error("conflict",
                              "User " + std::string(username) +
                                  " is the last enabled admin; create another admin first");
        }
        return {};
    }
};

auth_service::auth_service(meta::store& store, options opts) {
    if (opts.jwt_secret.size() < 32) {
        throw std::invalid_argument("auth: the JWT secret must be at least 32 bytes");
    }
    _impl = std::make_unique<impl>(store, std::move(opts));
}

auth_service::~auth_service() = default;

const options& auth_service::settings() const {
    return _impl->opts;
}

std::chrono::seconds auth_service::locked_for(std::string_view username, std::string_view remote) {
    const int64_t left = _impl->locked_until(username, remote).until - now_ms();
    if (left <= 0) return std::chrono::seconds(0);
    return std::chrono::seconds((left + 999) / 1000);
}

// ---- users -------------------------------------------------------------------------------

result<std::optional<std::string>> auth_service::ensure_admin(
    std::optional<std::string_view> password) {
    auto n = _impl->store.query("SELECT COUNT(*) FROM users");
    if (!n) return n.error();
    if (!n->data.empty() && number(n->data[0][0]) > 0) return std::optional<std::string>();

    std::optional<std::string> generated;
    std::string chosen;
    if (password) {
        chosen = std::string(*password);
        if (auto ok = _impl->check_password(chosen); !ok) {
            return make_error("invalid_argument", "CLISONIX_ADMIN_PASSWORD: " + ok.error().message,
                              "CLISONIX_ADMIN_PASSWORD");
        }
    } else {
        // 24 base64url characters: 144 random bits, easy to copy from a terminal.
        chosen = detail::random_token("", 18);
        generated = chosen;
    }
    auto created = create_user("admin", chosen, role_admin, actor{"system", "local"});
    if (!created) {
        // Another process starting at the same moment created it first.
        if (created.error().code == "conflict") return std::optional<std::string>();
        return created.error();
    }
    log::info("created the first admin user", {{"username", "admin"}});
    return generated;
}

result<user> auth_service::create_user(std::string_view username, std::string_view password,
                                       std::string_view role, const actor& by) {
    if (auto ok = detail::check_name(username, "username"); !ok) return ok.error();
    if (auto ok = detail::check_role(role); !ok) return ok.error();
    if (auto ok = _impl->check_password(password); !ok) return ok.error();
    auto hash = detail::hash_password(password, _impl->argon2());
    if (!hash) return hash.error();
    const int64_t now = now_ms();
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto ins = tx.execute(
            "INSERT INTO users (username, password_hash, role, disabled, created_at, updated_at) "
            "VALUES ($1, $2, $3, 0, $4, $4)",
            std::array<value, 4>{std::string(username), *hash, std::string(role), now});
        if (!ins) {
            if (ins.error().code == "conflict") {
                return make_error("conflict", "User " + std::string(username) + " already exists",
                                  "username");
            }
            return ins.error();
        }
        return write_audit(
            tx, entry(by, "user.create", std::string(username), {{"role", std::string(role)}}));
    });
    if (!done) return done.error();
    return user{std::string(username), std::string(role), false, now, now};
}

result<std::vector<user>> auth_service::list_users() {
    auto r =
        _impl->store.query("SELECT " + std::string(user_columns) + " FROM users ORDER BY username");
    if (!r) return r.error();
    std::vector<user> out;
    for (const auto& row : r->data)
        out.push_back(user_from(row));
    return out;
}

result<user> auth_service::get_user(std::string_view username) {
    auto r = _impl->store.query(
        "SELECT " + std::string(user_columns) + " FROM users WHERE username = $1",
        std::array<value, 1>{std::string(username)});
    if (!r) return r.error();
    if (r->data.empty()) {
        return make_error("not_found", "No such user: " + std::string(username), "username");
    }
    return user_from(r->data[0]);
}

result<user> auth_service::update_user(std::string_view username, const user_update& change,
                                       const actor& by) {
    if (change.role) {
        if (auto ok = detail::check_role(*change.role); !ok) return ok.error();
    }
    std::optional<std::string> hash;
    if (change.password) {
        if (auto ok = _impl->check_password(*change.password); !ok) return ok.error();
        auto h = detail::hash_password(*change.password, _impl->argon2());
        if (!h) return h.error();
        hash = std::move(*h);
    }
    const int64_t now = now_ms();
    std::optional<user> updated;
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto cur =
            tx.query("SELECT " + std::string(user_columns) + " FROM users WHERE username = $1",
                     std::array<value, 1>{std::string(username)});
        if (!cur) return cur.error();
        if (cur->data.empty()) {
            return make_error("not_found", "No such user: " + std::string(username), "username");
        }
        user u = user_from(cur->data[0]);
        const bool loses_admin =
            u.role == role_admin && !u.disabled &&
            ((change.role && *change.role != role_admin) || (change.disabled && *change.disabled));
        if (loses_admin) {
            if (auto ok = _impl->keep_an_admin(tx, username); !ok) return ok;
        }
        json::object details;
        if (change.role) {
            u.role = *change.role;
            details["role"] = u.role;
        }
        if (change.disabled) {
            u.disabled = *change.disabled;
            details["disabled"] = u.disabled;
        }
        if (hash) details["password_changed"] = true;
        u.updated_at = now;
        auto upd = tx.execute(
            "UPDATE users SET role = $2, disabled = $3, updated_at = $4, password_hash = "
            "COALESCE($5, password_hash) WHERE username = $1",
            std::array<value, 5>{std::string(username), u.role, int64_t{u.disabled ? 1 : 0}, now,
                                 hash ? value(*hash) : value(std::monostate{})});
        if (!upd) return upd.error();
        // A new password or a disabled account ends every session the user had: refresh
        // tokens are revoked, and access tokens issued before this second are refused.
        if (hash || (change.disabled && *change.disabled)) {
            auto cut = tx.execute("UPDATE users SET tokens_valid_after = $2 WHERE username = $1",
                                  std::array<value, 2>{std::string(username), now / 1000});
            if (!cut) return cut.error();
            auto rev = tx.execute(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE username = $1 AND revoked_at IS "
                "NULL",
                std::array<value, 2>{std::string(username), now});
            if (!rev) return rev.error();
        }
        updated = u;
        return write_audit(tx, entry(by, "user.update", std::string(username), details));
    });
    if (!done) return done.error();
    if (change.disabled && *change.disabled)
        _impl->revoked(principal_kind::user, username, {}, "user disabled");
    else if (hash)
        _impl->revoked(principal_kind::user, username, {}, "password changed");
    return *updated;
}

status auth_service::delete_user(std::string_view username, const actor& by) {
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto cur = tx.query("SELECT role, disabled FROM users WHERE username = $1",
                            std::array<value, 1>{std::string(username)});
        if (!cur) return cur.error();
        if (cur->data.empty()) {
            return make_error("not_found", "No such user: " + std::string(username), "username");
        }
        if (text(cur->data[0][0]) == role_admin && number(cur->data[0][1]) == 0) {
            if (auto ok = _impl->keep_an_admin(tx, username); !ok) return ok;
        }
        auto del = tx.execute("DELETE FROM users WHERE username = $1",
                              std::array<value, 1>{std::string(username)});
        if (!del) return del.error();
        return write_audit(tx, entry(by, "user.delete", std::string(username)));
    });
    if (done) _impl->revoked(principal_kind::user, username, {}, "user deleted");
    return done;
}

// ---- sessions ----------------------------------------------------------------------------

result<session_tokens> auth_service::login(std::string_view username, std::string_view password,
                                           std::string_view remote,
                                           std::chrono::milliseconds* failure_delay) {
    impl& d = *_impl;
    const actor from{std::string(username), std::string(remote)};
    if (auto lock = d.locked_until(username, remote); lock.until > now_ms()) {
        d.audit_or_log(entry(from, "login.refused", std::string(username),
                             {{"reason", lock.account_wide ? "account_locked" : "locked"}}));
        return make_error(
            "too_many_requests",
            std::string(lock.account_wide ? "Too many failed logins for this account; try again in "
                                          : "Too many failed logins for this account from this "
                                            "address; try again in ") +
                std::to_string((lock.until - now_ms() + 999) / 1000) + " s");
    }

    std::string hash;
    std::string role;
    bool disabled = false;
    bool found = false;
    if (detail::check_name(username, "username") && password.size() <= detail::max_password_bytes) {
        auto r =
            d.store.query("SELECT password_hash, role, disabled FROM users WHERE username = $1",
                          std::array<value, 1>{std::string(username)});
        if (!r) return r.error();
        if (!r->data.empty()) {
            found = true;
            hash = text(r->data[0][0]);
            role = text(r->data[0][1]);
            disabled = number(r->data[0][2]) != 0;
        }
    }
    const bool password_ok = found ? detail::verify_password(hash, password)
                                   : (detail::verify_password(d.dummy(), password), false);

    if (!password_ok || disabled) {
        const char* reason = !found ? "unknown_user" : !password_ok ? "bad_password" : "disabled";
        const auto failed = d.record_failure(username, remote);
        const int count = failed.count;
        d.audit_or_log(entry(
            from, "login.failed", std::string(username),
            {{"reason", reason}, {"failures", count}, {"account_failures", failed.account_count}}));
        if (failed.locked) {
            d.audit_or_log(
                entry(from, "login.lockout", std::string(username),
                      {{"failures", count}, {"lockout_s", d.opts.login_lockout.count() / 1000}}));
            log::warn("login locked out", {{"username", username}, {"client", remote}});
        }
        if (failed.account_locked) {
            d.audit_or_log(entry(from, "login.lockout", std::string(username),
                                 {{"scope", "account"},
                                  {"failures", failed.account_count},
                                  {"lockout_s", d.opts.login_lockout.count() / 1000}}));
            log::warn("login locked out for every address",
                      {{"username", username}, {"client", remote}});
        }
        if (failure_delay)
            *failure_delay = d.failure_delay(count);
        else
            std::this_thread::sleep_for(d.failure_delay(count));
        return make_error("invalid_credentials", "Invalid username or password");
    }

    d.clear_failures(username, remote);
    if (detail::needs_rehash(hash, d.argon2())) {
        // Parameters went up in config since this hash was made: upgrade it while we have the
        // password in hand. Failing here costs nothing but the upgrade.
        if (auto h = detail::hash_password(password, d.argon2())) {
            (void)d.store.execute("UPDATE users SET password_hash = $2 WHERE username = $1",
                                  std::array<value, 2>{std::string(username), *h});
        }
    }
    const std::string family = detail::hex(detail::random_bytes(16));
    auto tokens = d.issue_session(d.store, username, role, family);
    if (!tokens) return tokens.error();
    d.audit_or_log(entry(from, "login.ok", std::string(username), {{"role", role}}));
    return tokens;
}

result<session_tokens> auth_service::refresh(std::string_view refresh_token,
                                             std::string_view remote) {
    impl& d = *_impl;
    if (!refresh_token.starts_with(refresh_prefix) || refresh_token.size() > max_token_length) {
        return invalid_token("The refresh token is not valid");
    }
    const std::string token_hash = detail::sha256_hex(refresh_token);
    std::optional<session_tokens> out;
    std::optional<audit_entry> reuse;
    auto done = d.store.transaction([&](meta::store& tx) -> status {
        auto r = tx.query(
            "SELECT t.family, t.username, t.expires_at, t.used_at, t.revoked_at, u.role, "
            "u.disabled FROM refresh_tokens t JOIN users u ON u.username = t.username WHERE "
            "t.token_hash = $1",
            std::array<value, 1>{token_hash});
        if (!r) return r.error();
        if (r->data.empty()) return invalid_token("The refresh token is not valid");
        const auto& row = r->data[0];
        const std::string family = text(row[0]);
        const std::string username = text(row[1]);
        if (optional_number(row[3])) {
            // A used token came back: either it was stolen or the thief already used its
            // successor. Either way nobody can tell the holders apart, so the whole family ends.
            if (auto ok = d.revoke_family(tx, family); !ok) return ok;
            reuse = entry(actor{username, std::string(remote)}, "refresh.reuse", username,
                          {{"family", family}});
            return {};
        }
        if (optional_number(row[4])) return invalid_token("The refresh token has been revoked");
        if (number(row[2]) <= now_ms()) return invalid_token("The refresh token has expired");
        if (number(row[6]) != 0) return invalid_token("The user is disabled");
        auto used = tx.execute(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
            std::array<value, 2>{token_hash, now_ms()});
        if (!used) return used.error();
        auto next = d.issue_session(tx, username, text(row[5]), family);
        if (!next) return next.error();
        out = std::move(*next);
        return {};
    });
    if (!done) return done.error();
    if (reuse) {
        d.audit_or_log(*reuse);
        log::warn("refresh token reused; its family is revoked", {{"username", reuse->target}});
        return invalid_token(
            "The refresh token was already used; every session of that login is now revoked");
    }
    return std::move(*out);
}

status auth_service::logout(std::string_view refresh_token, std::string_view remote) {
    impl& d = *_impl;
    if (!refresh_token.starts_with(refresh_prefix) || refresh_token.size() > max_token_length) {
        return invalid_token("The refresh token is not valid");
    }
    auto r = d.store.query("SELECT family, username FROM refresh_tokens WHERE token_hash = $1",
                           std::array<value, 1>{detail::sha256_hex(refresh_token)});
    if (!r) return r.error();
    if (r->data.empty()) return invalid_token("The refresh token is not valid");
    const std::string family = text(r->data[0][0]);
    const std::string username = text(r->data[0][1]);
    if (auto ok = d.revoke_family(d.store, family); !ok) return ok;
    d.audit_or_log(entry(actor{username, std::string(remote)}, "logout", username));
    return {};
}

// ---- API keys ----------------------------------------------------------------------------

result<new_api_key> auth_service::create_api_key(std::string_view name, std::string_view role,
                                                 std::optional<std::chrono::seconds> expires_in,
                                                 const actor& by) {
    if (auto ok = detail::check_name(name, "name"); !ok) return ok.error();
    if (auto ok = detail::check_role(role); !ok) return ok.error();
    constexpr int64_t ten_years_s = 10LL * 366 * 24 * 3600;
    if (expires_in && (expires_in->count() < 1 || expires_in->count() > ten_years_s)) {
        return make_error("invalid_argument",
                          "expires_in must be 1.." + std::to_string(ten_years_s) + " seconds",
                          "expires_in");
    }
    new_api_key k;
    k.key = detail::random_token(api_key_prefix, api_key_bytes);
    k.info.id = detail::hex(detail::random_bytes(8));
    k.info.name = std::string(name);
    k.info.role = std::string(role);
    k.info.created_by = by.name;
    k.info.created_at = now_ms();
    if (expires_in) k.info.expires_at = k.info.created_at + expires_in->count() * 1000;
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto ins = tx.execute(
            "INSERT INTO api_keys (id, name, role, key_hash, created_by, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            std::array<value, 7>{k.info.id, k.info.name, k.info.role, detail::sha256_hex(k.key),
                                 k.info.created_by, k.info.created_at,
                                 nullable(k.info.expires_at)});
        if (!ins) return ins.error();
        json::object details{{"name", k.info.name}, {"role", k.info.role}};
        if (k.info.expires_at) details["expires_at"] = *k.info.expires_at;
        return write_audit(tx, entry(by, "apikey.create", k.info.id, details));
    });
    if (!done) return done.error();
    return k;
}

result<std::vector<api_key>> auth_service::list_api_keys() {
    auto r = _impl->store.query(
        "SELECT id, name, role, created_by, created_at, expires_at FROM api_keys WHERE "
        "revoked_at IS NULL ORDER BY created_at, id");
    if (!r) return r.error();
    std::vector<api_key> out;
    for (const auto& row : r->data) {
        out.push_back(api_key{text(row[0]), text(row[1]), text(row[2]), text(row[3]),
                              number(row[4]), optional_number(row[5])});
    }
    return out;
}

status auth_service::revoke_api_key(std::string_view id, const actor& by) {
    std::string name;
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto cur = tx.query("SELECT name FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
                            std::array<value, 1>{std::string(id)});
        if (!cur) return cur.error();
        if (cur->data.empty())
            return make_error("not_found", "No such API key: " + std::string(id), "id");
        name = text(cur->data[0][0]);
        auto upd =
            tx.execute("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                       std::array<value, 2>{std::string(id), now_ms()});
        if (!upd) return upd.error();
        if (*upd == 0) return make_error("not_found", "No such API key: " + std::string(id), "id");
        return write_audit(tx, entry(by, "apikey.revoke", std::string(id)));
    });
    if (done) _impl->revoked(principal_kind::api_key, name, id, "API key revoked");
    return done;
}

// ---- device tokens -----------------------------------------------------------------------

result<std::string> auth_service::issue_device_token(std::string_view device, const actor& by) {
    if (auto ok = detail::check_name(device, "device"); !ok) return ok.error();
    std::string token = detail::random_token(device_prefix, device_bytes);
    const int64_t now = now_ms();
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto ins = tx.execute(
            "INSERT INTO device_credentials (device, token_hash, created_at, rotated_at) VALUES "
            "($1, $2, $3, $3)",
            std::array<value, 3>{std::string(device), detail::sha256_hex(token), now});
        if (!ins) {
            if (ins.error().code == "conflict") {
                return make_error(
                    "conflict",
                    "Device " + std::string(device) + " already has a token; rotate it instead",
                    "device");
            }
            return ins.error();
        }
        return write_audit(tx, entry(by, "device.token.issue", std::string(device)));
    });
    if (!done) return done.error();
    return token;
}

result<std::string> auth_service::rotate_device_token(std::string_view device, const actor& by) {
    std::string token = detail::random_token(device_prefix, device_bytes);
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto upd = tx.execute(
            "UPDATE device_credentials SET token_hash = $2, rotated_at = $3 WHERE device = $1",
            std::array<value, 3>{std::string(device), detail::sha256_hex(token), now_ms()});
        if (!upd) return upd.error();
        if (*upd == 0) {
            return make_error("not_found", "Device " + std::string(device) + " has no token",
                              "device");
        }
        return write_audit(tx, entry(by, "device.token.rotate", std::string(device)));
    });
    if (!done) return done.error();
    _impl->revoked(principal_kind::device, device, {}, "device token rotated");
    return token;
}

status auth_service::revoke_device_token(std::string_view device, const actor& by) {
    auto done = _impl->store.transaction([&](meta::store& tx) -> status {
        auto del = tx.execute("DELETE FROM device_credentials WHERE device = $1",
                              std::array<value, 1>{std::string(device)});
        if (!del) return del.error();
        if (*del == 0) {
            return make_error("not_found", "Device " + std::string(device) + " has no token",
                              "device");
        }
        return write_audit(tx, entry(by, "device.token.revoke", std::string(device)));
    });
    if (done) _impl->revoked(principal_kind::device, device, {}, "device token revoked");
    return done;
}

// ---- credentials -------------------------------------------------------------------------

result<principal> auth_service::authenticate_device(std::string_view token) {
    if (!token.starts_with(device_prefix) || token.size() > max_token_length) {
        return invalid_token("The device token is not valid");
    }
    const std::string token_hash = detail::sha256_hex(token);
    auto r = _impl->store.query(
        "SELECT device, token_hash FROM device_credentials WHERE token_hash = $1",
        std::array<value, 1>{token_hash});
    if (!r) return r.error();
    if (r->data.empty() || !detail::equal_constant_time(text(r->data[0][1]), token_hash)) {
        return invalid_token("The device token is not valid");
    }
    principal p;
    p.kind = principal_kind::device;
    p.name = text(r->data[0][0]);
    p.device = p.name;
    p.role = "device";
    return p;
}

result<principal> auth_service::authenticate(std::string_view scheme, std::string_view token) {
    const bool bearer = detail::iequals(scheme, "bearer");
    if (!bearer && !detail::iequals(scheme, "token")) {
        return invalid_token("Unsupported authorization scheme; use Bearer or Token");
    }
    if (token.empty() || token.size() > max_token_length) {
        return invalid_token("The credential is empty or too long");
    }
    if (token.starts_with(device_prefix)) return authenticate_device(token);
    if (token.starts_with(api_key_prefix)) {
        if (auto cached = _impl->cached_api_key(token)) return std::move(*cached);
        const std::string key_hash = detail::sha256_hex(token);
        auto r = _impl->store.query(
            "SELECT id, name, role, expires_at, revoked_at, key_hash FROM api_keys WHERE key_hash "
            "= $1",
            std::array<value, 1>{key_hash});
        if (!r) return r.error();
        if (r->data.empty() || optional_number(r->data[0][4]) ||
            !detail::equal_constant_time(text(r->data[0][5]), key_hash)) {
            return invalid_token("The API key is not valid");
        }
        const auto& row = r->data[0];
        if (auto exp = optional_number(row[3]); exp && *exp <= now_ms()) {
            return invalid_token("The API key has expired");
        }
        principal p;
        p.kind = principal_kind::api_key;
        p.id = text(row[0]);
        p.name = text(row[1]);
        p.role = text(row[2]);
        p.expires_at = optional_number(row[3]);
        _impl->remember_api_key(token, p);
        return p;
    }
    if (!bearer) return invalid_token("The Token scheme takes an API key or a device token");

    auto claims = detail::verify_jwt(token, _impl->keys, _impl->opts.issuer, _impl->opts.audience,
                                     now_ms() / 1000);
    if (!claims) return claims.error();
    // The account is looked up on every request, so that disabling a user or changing a
    // role takes effect at once rather than when the access token expires.
    auto r = _impl->store.query(
        "SELECT role, disabled, tokens_valid_after FROM users WHERE username = $1",
        std::array<value, 1>{claims->sub});
    if (!r) return r.error();
    if (r->data.empty() || number(r->data[0][1]) != 0) {
        return invalid_token("The token's user no longer exists or is disabled");
    }
    // JWT times are whole seconds: a token issued in the same second as the change stays
    // valid (a new login right after a password change must work).
    if (claims->iat < number(r->data[0][2])) {
        return invalid_token(
            "The token was issued before the user's password changed or the user was disabled; "
            "log in again");
    }
    principal p;
    p.kind = principal_kind::user;
    p.name = claims->sub;
    p.role = text(r->data[0][0]);
    p.id = claims->jti;
    p.expires_at = claims->exp * 1000;
    return p;
}

// ---- audit -------------------------------------------------------------------------------

void auth_service::forget_cached_api_keys() {
    std::lock_guard lock(_impl->api_key_cache_mutex);
    _impl->api_key_cache.clear();
}

void auth_service::share_failures(std::shared_ptr<shared_failures> shared) {
    _impl->shared = std::move(shared);
}

void auth_service::on_revoked(revocation_listener listener) {
    std::lock_guard lock(_impl->listeners_mutex);
    _impl->listeners.push_back(std::move(listener));
}

status auth_service::audit(const audit_entry& e) {
    return write_audit(_impl->store, e);
}

result<std::vector<audit_entry>> auth_service::audit_log(const audit_filter& f) {
    std::string sql = "SELECT id, at, actor, action, target, remote, details FROM audit_log";
    std::vector<value> params;
    std::string where;
    auto add = [&](std::string_view condition, value v) {
        params.push_back(std::move(v));
        where += where.empty() ? " WHERE " : " AND ";
        where += std::string(condition) + " $" + std::to_string(params.size());
    };
    if (!f.actor.empty()) add("actor =", f.actor);
    if (!f.action.empty()) add("action =", f.action);
    if (f.from) add("at >=", *f.from);
    if (f.to) add("at <", *f.to);
    sql += where + " ORDER BY at DESC, id DESC";
    params.push_back(f.limit);
    sql += " LIMIT $" + std::to_string(params.size());
    params.push_back(f.offset);
    sql += " OFFSET $" + std::to_string(params.size());
    auto r = _impl->store.query(sql, params);
    if (!r) return r.error();
    std::vector<audit_entry> out;
    for (const auto& row : r->data) {
        out.push_back(audit_entry{number(row[0]), number(row[1]), text(row[2]), text(row[3]),
                                  text(row[4]), text(row[5]), text(row[6])});
    }
    return out;
}

}  // namespace clisonix::auth
