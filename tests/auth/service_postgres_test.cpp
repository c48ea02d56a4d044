// The auth core on a real PostgreSQL (the pg fixture's server; see tests/meta/CMakeLists.txt).
#include <libpq-fe.h>

#include <fstream>
#include <random>

#include "service_contract.h"

namespace clisonix::auth::testing {
namespace {

result<std::string> server_url() {
    const char* env = std::getenv("CLISONIX_TEST_PG_URL_FILE");
    const std::string file = env ? env : CLISONIX_BUILD_DIR "/pg-test/url";
    std::string url;
    if (std::ifstream in(file); !(in >> url)) {
        return make_error("unavailable", "no PostgreSQL test server: " + file +
                                             " is missing (ctest starts one through the "
                                             "pg_server_start fixture)");
    }
    return url;
}

status admin(const std::string& url, const std::string& sql) {
    PGconn* conn = PQconnectdb(url.c_str());
    std::string failure;
    if (PQstatus(conn) != CONNECTION_OK) {
        failure = PQerrorMessage(conn);
    } else {
        PGresult* r = PQexec(conn, sql.c_str());
        if (PQresultStatus(r) != PGRES_COMMAND_OK) failure = PQresultErrorMessage(r);
        PQclear(r);
    }
    PQfinish(conn);
    if (!failure.empty()) return make_error("unavailable", sql + ": " + failure);
    return {};
}

class postgres_database final : public test_database {
public:
    static result<std::unique_ptr<test_database>> create() {
        auto server = server_url();
        if (!server) return server.error();
        std::random_device rd;
        const std::string name = "auth_" + std::to_string(rd()) + "_" + std::to_string(rd());
        if (auto ok = admin(*server, "CREATE DATABASE " + name); !ok) return ok.error();
        return std::unique_ptr<test_database>(new postgres_database(*server, name));
    }
    ~postgres_database() override {
        (void)admin(_server, "DROP DATABASE IF EXISTS " + _name + " WITH (FORCE)");
    }
    std::string url() const override { return _server.substr(0, _server.rfind('/') + 1) + _name; }
    std::string data_dir() const override { return "/nonexistent"; }

private:
    postgres_database(std::string server, std::string name)
        : _server(std::move(server)), _name(std::move(name)) {}
    std::string _server;
    std::string _name;
};

INSTANTIATE_TEST_SUITE_P(postgres, service_contract,
                         ::testing::Values(backend{"postgres", postgres_database::create}),
                         backend_name);

}  // namespace
}  // namespace clisonix::auth::testing
