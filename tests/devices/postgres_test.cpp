// The registry contract on PostgreSQL: the pg fixture's server (tests/meta/CMakeLists.txt),
// a fresh database per test.
#include "registry_contract.h"
#include "support/pg_test_db.h"

namespace clisonix::devices::testing {

namespace {
struct postgres_store final : test_store {
    std::string url() const override { return db->url(); }
    std::string data_dir() const override { return "/nonexistent"; }
    std::unique_ptr<clisonix::testing::pg_test_database> db;
};
}  // namespace

backend this_backend() {
    return {"postgres", []() -> result<std::unique_ptr<test_store>> {
                auto db = clisonix::testing::pg_test_database::create("devices");
                if (!db) return db.error();
                auto s = std::make_unique<postgres_store>();
                s->db = std::move(*db);
                return std::unique_ptr<test_store>(std::move(s));
            }};
}

}  // namespace clisonix::devices::testing
