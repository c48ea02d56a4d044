// Clisonix — the metadata store: users, devices, assets, rules and settings live here.
//
// One interface, two backends: SQLite (the embedded default, a file in the data dir, WAL
// mode) and PostgreSQL (libpq; `meta.url = "postgres://user:pass@host:5432/db"`). Callers
// write one SQL text for both: parameters are `$1`, `$2` ... in both dialects, and the
// schema sticks to types both understand (BIGINT, DOUBLE PRECISION, TEXT). Where a
// statement must differ, a migration carries a PostgreSQL variant.
//
// Versioned migrations are applied by open(): each runs once, in its own transaction,
// recorded in `schema_migrations`. Two processes opening the same store at once are safe:
// the migrating transaction holds the database's write lock (SQLite `BEGIN IMMEDIATE`,
// PostgreSQL `pg_advisory_xact_lock`), and the second one finds the work done.
//
// Error codes: "conflict" (a constraint was violated, e.g. a duplicate name), "unavailable"
// (no connection, busy or locked, I/O), "storage_full" (SQLite's disk is full: changes fail,
// reads work), "corrupt" (a damaged SQLite file), "internal".
//
// Thread safety: a store may be used from any thread; statements are serialised on one
// connection, and a transaction keeps the connection for its whole duration.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace clisonix::meta {

// A parameter or a column value. NULL is std::monostate.
using value = std::variant<std::monostate, int64_t, double, std::string>;

// A column value as the type the schema declares, whichever way the backend handed it back:
// as_int reads int64, a double (truncated) or decimal text; as_double likewise; as_text reads
// text, or an integer in decimal. NULL reads as 0 or "".
int64_t as_int(const value& v);
double as_double(const value& v);
std::string as_text(const value& v);

struct rows {
    std::vector<std::string> columns;
    std::vector<std::vector<value>> data;
};

class store {
public:
    virtual ~store() = default;

    // "sqlite" or "postgres".
    virtual std::string_view backend() const = 0;
    // A cheap round trip; an error when the database does not answer (for /readyz).
    virtual status ping() = 0;
    // Runs one statement and returns its rows (none for statements without a result).
    virtual result<rows> query(std::string_view sql, std::span<const value> params = {}) = 0;
    // Runs one statement and returns the number of rows it changed.
    virtual result<int64_t> execute(std::string_view sql, std::span<const value> params = {}) = 0;
    // Runs `body` in one transaction: committed when body returns ok, rolled back when it
    // returns an error (which is returned). Statements inside go through `tx`.
    virtual status transaction(const std::function<status(store& tx)>& body) = 0;
    // The highest migration version applied.
    virtual result<int> schema_version() = 0;
};

struct migration {
    int version;                      // 1, 2, 3 ... never reused, never edited once released
    std::string_view name;            // "settings"
    std::string_view sql;             // both dialects, unless postgres_sql is set
    std::string_view postgres_sql{};  // PostgreSQL variant when the dialects differ
};

// The product's migrations, in order.
std::span<const migration> migrations();

// Opens the store named by `url` and applies pending migrations:
//   ""                          -> SQLite at <data_dir>/meta.db
//   "sqlite:///abs/path.db", "sqlite:rel/path.db"  -> SQLite at that path
//   "postgres://..." or "postgresql://..."         -> PostgreSQL (libpq connection URI)
// Errors name the backend and the reason, without the password.
result<std::unique_ptr<store>> open(std::string_view url, std::string_view data_dir);

// Like open() with an explicit migration list (tests use it to prove migrations run once).
result<std::unique_ptr<store>> open_with(std::string_view url, std::string_view data_dir,
                                         std::span<const migration> list);

// Hears of changes to the store's tables committed by any process sharing it, so that a
// process can drop what it caches of them. On PostgreSQL, triggers (migration 19) send
// NOTIFY clisonix_meta with the table's name in the changing transaction, delivered at its
// commit; the feed LISTENs on a connection of its own. After that connection was lost and
// restored (changes in between are unknown) and on its first connect, every handler runs.
// SQLite has one process: its feed hears nothing.
class change_feed {
public:
    using handler = std::function<void()>;
    virtual ~change_feed() = default;  // stops the feed's thread
    // `invalidate` runs on the feed's thread, once per batch of notices naming any of
    // `tables`; it must not block for long (notices wait meanwhile).
    virtual void subscribe(std::vector<std::string> tables, handler invalidate) = 0;
};

// The feed of the store at `url` (as open() takes it), its thread started. `on_event` hears
// of connections lost and restored, for the log.
result<std::unique_ptr<change_feed>> open_change_feed(
    std::string_view url, std::function<void(const std::string& event)> on_event = {});

// The channel of the change notices (for tests and tools that listen themselves).
inline constexpr std::string_view change_channel = "clisonix_meta";

// `url` with any password replaced by "****", for messages and logs.
std::string redact_url(std::string_view url);

// One permission change made by restrict_data_dir ("0644" -> "0600").
struct mode_change {
    std::string path;
    std::string from;
    std::string to;
};

// Removes the group and other permission bits from `dir` and everything under it (symlinks
// are neither followed nor changed), so that a data directory created by an older version
// or copied in with a loose umask holds no readable secrets. Returns what it changed.
std::vector<mode_change> restrict_data_dir(const std::string& dir);

}  // namespace clisonix::meta
