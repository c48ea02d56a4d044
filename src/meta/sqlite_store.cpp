// The embedded backend: one SQLite file in WAL mode.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "meta/store_base.h"

namespace clisonix::meta::detail {

namespace {

std::string error_code_of(int rc) {
    switch (rc & 0xff) {
        case SQLITE_CONSTRAINT:
            return "conflict";
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_CANTOPEN:
        case SQLITE_IOERR:
            return "unavailable";
        case SQLITE_FULL:  // the disk: a change fails, reads go on (503 + Retry-After)
            return "storage_full";
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            return "corrupt";
        default:
            return "internal";
    }
}

struct stmt_deleter {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_deleter>;

class sqlite_store final : public store_base {
public:
    explicit sqlite_store(sqlite3* db) : _db(db) {}
    ~sqlite_store() override { sqlite3_close_v2(_db); }

    std::string_view backend() const override { return "sqlite"; }

    status ping() override {
        auto r = query("SELECT 1", {});
        if (!r) return r.error();
        return {};
    }

    result<rows> query(std::string_view sql, std::span<const value> params) override {
        std::lock_guard lock(_mutex);
        auto stmt = prepare(sql, params);
        if (!stmt) return stmt.error();
        rows out;
        const int ncols = sqlite3_column_count(stmt->get());
        for (int c = 0; c < ncols; ++c)
            out.columns.emplace_back(sqlite3_column_name(stmt->get(), c));
        for (;;) {
            int rc = sqlite3_step(stmt->get());
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) return fail(rc);
            auto& row = out.data.emplace_back();
            row.reserve(ncols);
            for (int c = 0; c < ncols; ++c)
                row.push_back(column(stmt->get(), c));
        }
        return out;
    }

    result<int64_t> execute(std::string_view sql, std::span<const value> params) override {
        std::lock_guard lock(_mutex);
        auto stmt = prepare(sql, params);
        if (!stmt) return stmt.error();
        const int64_t before = sqlite3_total_changes64(_db);
        int rc;
        while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE) return fail(rc);
        // sqlite3_changes64() keeps the count of the last INSERT/UPDATE/DELETE, so a DDL
        // statement would report a stale number; the total tells whether this one changed rows.
        return sqlite3_total_changes64(_db) == before ? 0 : sqlite3_changes64(_db);
    }

    status execute_script(std::string_view sql) override {
        std::lock_guard lock(_mutex);
        std::string text(sql);
        int rc = sqlite3_exec(_db, text.c_str(), nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) return fail(rc);
        return {};
    }

    std::string_view migration_lock_sql() const override { return {}; }

protected:
    // IMMEDIATE takes the write lock at BEGIN, so two writers queue on busy_timeout instead
    // of one failing with SQLITE_BUSY when it upgrades a read transaction.
    std::string_view begin_sql() const override { return "BEGIN IMMEDIATE"; }

private:
    clisonix::error fail(int rc) const {
        return make_error(error_code_of(rc), std::string("sqlite: ") + sqlite3_errmsg(_db));
    }

    result<stmt_ptr> prepare(std::string_view sql, std::span<const value> params) {
        sqlite3_stmt* raw = nullptr;
        const char* tail = nullptr;
        int rc = sqlite3_prepare_v2(_db, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
        stmt_ptr stmt(raw);
        if (rc != SQLITE_OK) return fail(rc);
        if (!stmt) return make_error("invalid_argument", "sqlite: empty statement");
        std::string_view rest(tail, sql.data() + sql.size() - tail);
        if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
            return make_error("invalid_argument",
                              "sqlite: one statement per call; use transaction() for several");
        }
        // By name, so "$2 ... $1" and a repeated "$1" bind as PostgreSQL would.
        int bound = 0;
        for (size_t i = 0; i < params.size(); ++i) {
            const std::string name = "$" + std::to_string(i + 1);
            int idx = sqlite3_bind_parameter_index(stmt.get(), name.c_str());
            if (idx == 0) continue;
            ++bound;
            rc = std::visit(
                [&](const auto& v) {
                    using t = std::decay_t<decltype(v)>;
                    if constexpr (std::is_same_v<t, std::monostate>) {
                        return sqlite3_bind_null(stmt.get(), idx);
                    } else if constexpr (std::is_same_v<t, int64_t>) {
                        return sqlite3_bind_int64(stmt.get(), idx, v);
                    } else if constexpr (std::is_same_v<t, double>) {
                        return sqlite3_bind_double(stmt.get(), idx, v);
                    } else {
                        return sqlite3_bind_text64(stmt.get(), idx, v.data(), v.size(),
                                                   SQLITE_TRANSIENT, SQLITE_UTF8);
                    }
                },
                params[i]);
            if (rc != SQLITE_OK) return fail(rc);
        }
        if (bound != sqlite3_bind_parameter_count(stmt.get())) {
            return make_error("invalid_argument",
                              "sqlite: the statement uses a parameter other than $1..$" +
                                  std::to_string(params.size()));
        }
        return stmt;
    }

    static value column(sqlite3_stmt* stmt, int c) {
        switch (sqlite3_column_type(stmt, c)) {
            case SQLITE_INTEGER:
                return int64_t{sqlite3_column_int64(stmt, c)};
            case SQLITE_FLOAT:
                return sqlite3_column_double(stmt, c);
            case SQLITE_NULL:
                return std::monostate{};
            default: {
                auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, c));
                return std::string(p ? p : "", sqlite3_column_bytes(stmt, c));
            }
        }
    }

    sqlite3* _db;
};

}  // namespace

result<std::unique_ptr<store_base>> open_sqlite(const std::string& path) {
    auto fail = [&](std::string_view reason) -> clisonix::error {
        return make_error("unavailable",
                          "sqlite: cannot open " + path + ": " + std::string(reason));
    };
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) return fail("cannot create " + parent.string() + ": " + ec.message());
    }

    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string reason = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close_v2(db);
        return fail(reason);
    }
    auto s = std::make_unique<sqlite_store>(db);

    sqlite3_busy_timeout(db, 5000);
    // Switching a fresh file to WAL upgrades a shared lock to an exclusive one; when another
    // process does the same at that moment SQLite answers SQLITE_BUSY at once rather than
    // waiting (waiting could deadlock), so the wait is here.
    auto mode = s->query("PRAGMA journal_mode=WAL", {});
    for (int retry = 0; !mode && sqlite3_errcode(db) == SQLITE_BUSY && retry < 500; ++retry) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        mode = s->query("PRAGMA journal_mode=WAL", {});
    }
    if (!mode) return fail(mode.error().message);
    auto* name = std::get_if<std::string>(&mode->data.at(0).at(0));
    if (!name || *name != "wal") return fail("the file cannot use WAL mode");
    // synchronous=FULL syncs the WAL at every commit. NORMAL would be enough against
    // corruption, but could lose the last acknowledged commits on power loss, and these
    // are users, devices and rules someone just saved; metadata writes are rare, so the
    // fsync costs nothing that matters.
    if (auto ok = s->execute_script("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"); !ok) {
        return fail(ok.error().message);
    }
    return std::unique_ptr<store_base>(std::move(s));
}

}  // namespace clisonix::meta::detail
