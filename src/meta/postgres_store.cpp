// The scale-out backend: PostgreSQL through libpq, text-format parameters and results.
#include <libpq-fe.h>

#include <charconv>
#include <string>
#include <vector>

#include "meta/store_base.h"

namespace clisonix::meta::detail {

namespace {

// Type OIDs from PostgreSQL's pg_type.dat; fixed since the 1990s, absent from libpq's headers.
constexpr Oid bool_oid = 16;
constexpr Oid int8_oid = 20;
constexpr Oid int2_oid = 21;
constexpr Oid int4_oid = 23;
constexpr Oid float4_oid = 700;
constexpr Oid float8_oid = 701;
constexpr Oid numeric_oid = 1700;

// Any constant works as long as every Clisonix process uses the same one ("clisonix" in ASCII).
constexpr std::string_view migration_lock = "SELECT pg_advisory_xact_lock(7164217051751278968)";

struct result_deleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

// libpq's messages end in a newline and put hints on "\n\t" lines; ours are one line.
std::string one_line(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\n' || c == '\t') c = ' ';
        if (c != ' ' || (!out.empty() && out.back() != ' ')) out += c;
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

std::string to_text(int64_t v) {
    char buf[24];
    auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    return std::string(buf, end);
}

// Shortest text that parses back to the same double; PostgreSQL 12+ prints float8 the same
// way (extra_float_digits = 1), so values round-trip exactly in both directions.
std::string to_text(double v) {
    char buf[32];
    auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    return std::string(buf, end);
}

value from_text(const char* text, int len, Oid type) {
    std::string_view s(text, len);
    switch (type) {
        case int2_oid:
        case int4_oid:
        case int8_oid: {
            int64_t v = 0;
            if (std::from_chars(s.data(), s.data() + s.size(), v).ec == std::errc{}) return v;
            break;
        }
        case float4_oid:
        case float8_oid:
        case numeric_oid: {
            double v = 0;
            if (std::from_chars(s.data(), s.data() + s.size(), v).ec == std::errc{}) return v;
            break;
        }
        case bool_oid:
            return int64_t{s == "t" ? 1 : 0};
        default:
            break;
    }
    return std::string(s);
}

class postgres_store final : public store_base {
public:
    postgres_store(PGconn* conn, std::string redacted) : _conn(conn), _url(std::move(redacted)) {}
    ~postgres_store() override { PQfinish(_conn); }

    std::string_view backend() const override { return "postgres"; }

    status ping() override {
        auto r = run("SELECT 1", {});
        if (!r) return r.error();
        return {};
    }

    result<rows> query(std::string_view sql, std::span<const value> params) override {
        std::lock_guard lock(_mutex);
        auto r = run(sql, params);
        if (!r) return r.error();
        PGresult* res = r->get();
        rows out;
        const int ncols = PQnfields(res);
        const int nrows = PQntuples(res);
        for (int c = 0; c < ncols; ++c)
            out.columns.emplace_back(PQfname(res, c));
        out.data.reserve(nrows);
        for (int i = 0; i < nrows; ++i) {
            auto& row = out.data.emplace_back();
            row.reserve(ncols);
            for (int c = 0; c < ncols; ++c) {
                if (PQgetisnull(res, i, c)) {
                    row.emplace_back(std::monostate{});
                } else {
                    row.push_back(
                        from_text(PQgetvalue(res, i, c), PQgetlength(res, i, c), PQftype(res, c)));
                }
            }
        }
        return out;
    }

    result<int64_t> execute(std::string_view sql, std::span<const value> params) override {
        std::lock_guard lock(_mutex);
        auto r = run(sql, params);
        if (!r) return r.error();
        int64_t n = 0;
        std::string_view count = PQcmdTuples(r->get());
        std::from_chars(count.data(), count.data() + count.size(), n);
        return n;
    }

    status execute_script(std::string_view sql) override {
        std::lock_guard lock(_mutex);
        if (auto ok = connected(); !ok) return ok;
        // PQexec, unlike PQexecParams, accepts several statements in one string.
        result_ptr res(PQexec(_conn, std::string(sql).c_str()));
        return check(res.get());
    }

    std::string_view migration_lock_sql() const override { return migration_lock; }

protected:
    std::string_view begin_sql() const override { return "BEGIN"; }

private:
    // The connection is checked before each call rather than after a failure, so a server
    // that went away and came back is reached again by the next ping (and /readyz recovers).
    status connected() {
        if (PQstatus(_conn) == CONNECTION_OK) return {};
        if (in_transaction()) {
            return make_error("unavailable",
                              "postgres: the connection to " + _url + " was lost in a transaction");
        }
        PQreset(_conn);
        if (PQstatus(_conn) == CONNECTION_OK) return {};
        return make_error("unavailable", "postgres: cannot reconnect to " + _url + ": " +
                                             one_line(PQerrorMessage(_conn)));
    }

    status check(const PGresult* res) {
        switch (PQresultStatus(res)) {
            case PGRES_COMMAND_OK:
            case PGRES_TUPLES_OK:
            case PGRES_EMPTY_QUERY:
                return {};
            default:
                break;
        }
        const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
        const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
        std::string_view sqlstate = state ? state : "";
        std::string code = "internal";
        if (sqlstate.starts_with("23")) code = "conflict";
        if (sqlstate.starts_with("08") || PQstatus(_conn) != CONNECTION_OK) code = "unavailable";
        return make_error(code, "postgres: " + (primary ? std::string(primary)
                                                        : one_line(PQerrorMessage(_conn))));
    }

    result<result_ptr> run(std::string_view sql, std::span<const value> params) {
        std::lock_guard lock(_mutex);
        if (auto ok = connected(); !ok) return ok.error();
        std::vector<std::string> text(params.size());
        std::vector<const char*> values(params.size(), nullptr);
        // Numbers are sent typed, so "SELECT $1" returns what was bound, as SQLite does;
        // text and NULL stay untyped (0) for the server to infer from the context.
        std::vector<Oid> types(params.size(), 0);
        for (size_t i = 0; i < params.size(); ++i) {
            if (auto* v = std::get_if<int64_t>(&params[i])) {
                text[i] = to_text(*v);
                types[i] = int8_oid;
            } else if (auto* d = std::get_if<double>(&params[i])) {
                text[i] = to_text(*d);
                types[i] = float8_oid;
            } else if (auto* s = std::get_if<std::string>(&params[i])) {
                text[i] = *s;
            } else {
                continue;
            }
            values[i] = text[i].c_str();
        }
        result_ptr res(PQexecParams(_conn, std::string(sql).c_str(),
                                    static_cast<int>(params.size()), types.data(), values.data(),
                                    nullptr, nullptr, 0));
        if (auto ok = check(res.get()); !ok) return ok.error();
        return res;
    }

    PGconn* _conn;
    std::string _url;  // redacted, for messages
};

void ignore_notice(void*, const char*) {}

}  // namespace

result<std::unique_ptr<store_base>> open_postgres(std::string_view url) {
    const std::string full(url);
    const std::string redacted = redact_url(url);
    // Keywords before "dbname" are defaults: the URL, expanded last, overrides them.
    const char* keys[] = {"connect_timeout", "client_encoding", "dbname", nullptr};
    const char* values[] = {"5", "UTF8", full.c_str(), nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, 1);
    if (!conn) return make_error("unavailable", "postgres: out of memory connecting");
    if (PQstatus(conn) != CONNECTION_OK) {
        std::string reason = one_line(PQerrorMessage(conn));
        PQfinish(conn);
        // libpq echoes the part of a URL it cannot parse, which may be the password.
        if (auto [begin, size] = url_password(full); size > 0) {
            const std::string password = full.substr(begin, size);
            for (size_t at = reason.find(password); at != std::string::npos;
                 at = reason.find(password, at + 4)) {
                reason.replace(at, size, "****");
            }
        }
        return make_error("unavailable", "postgres: cannot connect to " + redacted + ": " + reason);
    }
    // CREATE TABLE IF NOT EXISTS and friends print NOTICEs to stderr by default.
    PQsetNoticeProcessor(conn, ignore_notice, nullptr);
    return std::unique_ptr<store_base>(std::make_unique<postgres_store>(conn, redacted));
}

}  // namespace clisonix::meta::detail
