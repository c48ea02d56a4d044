// A fresh PostgreSQL database per test, on the server of the `pg` CTest fixture
// (scripts/pg-test-server, started by pg_server_start in tests/meta/CMakeLists.txt).
//
// The server's URL is read from $CLISONIX_TEST_PG_URL_FILE, or else from
// <build>/pg-test/url. Each test gets its own database, dropped when the object goes, so
// tests run in parallel. Link the test with PkgConfig::LIBPQ.
#pragma once

#include <libpq-fe.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "common/result.h"

namespace clisonix::testing {

inline result<std::string> pg_server_url() {
    const char* env = std::getenv("CLISONIX_TEST_PG_URL_FILE");
    const std::string file = env ? env : CLISONIX_BUILD_DIR "/pg-test/url";
    std::string url;
    if (std::ifstream in(file); !(in >> url)) {
        return make_error("unavailable",
                          "no PostgreSQL test server: " + file +
                              " is missing. Start one with `scripts/pg-test-server start " +
                              CLISONIX_BUILD_DIR
                              "/pg-test` (ctest does it through the "
                              "pg_server_start fixture), or set CLISONIX_TEST_PG_URL_FILE");
    }
    return url;
}

// Runs one statement on the database at `url` (the server's maintenance database).
inline status pg_admin(const std::string& url, const std::string& sql) {
    PGconn* conn = PQconnectdb(url.c_str());
    std::string failure;
    if (PQstatus(conn) != CONNECTION_OK) {
        failure = PQerrorMessage(conn);
    } else {
        PGresult* r = PQexec(conn, sql.c_str());
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            failure = PQresultErrorMessage(r);
        PQclear(r);
    }
    PQfinish(conn);
    if (!failure.empty()) return make_error("unavailable", sql + ": " + failure);
    return {};
}

class pg_test_database {
public:
    // A new empty database named <prefix>_<random>.
    static result<std::unique_ptr<pg_test_database>> create(const std::string& prefix = "t") {
        auto server = pg_server_url();
        if (!server) return server.error();
        std::random_device rd;
        const std::string name = prefix + "_" + std::to_string(rd()) + "_" + std::to_string(rd());
        if (auto ok = pg_admin(*server, "CREATE DATABASE " + name); !ok) return ok.error();
        return std::unique_ptr<pg_test_database>(new pg_test_database(*server, name));
    }
    ~pg_test_database() {
        (void)pg_admin(_server, "DROP DATABASE IF EXISTS " + _name + " WITH (FORCE)");
    }
    pg_test_database(const pg_test_database&) = delete;
    pg_test_database& operator=(const pg_test_database&) = delete;

    // The URL of this database (what meta::open gets).
    std::string url() const { return _server.substr(0, _server.rfind('/') + 1) + _name; }
    const std::string& name() const { return _name; }
    // The maintenance database's URL.
    const std::string& server() const { return _server; }

private:
    pg_test_database(std::string server, std::string name)
        : _server(std::move(server)), _name(std::move(name)) {}
    std::string _server;
    std::string _name;
};

}  // namespace clisonix::testing
