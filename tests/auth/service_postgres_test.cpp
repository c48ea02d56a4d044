// The auth core on a real PostgreSQL (the pg fixture's server, tests/support/pg_test_db.h).
#include "service_contract.h"
#include "support/pg_test_db.h"

namespace clisonix::auth::testing {
namespace {

class postgres_database final : public test_database {
public:
    static result<std::unique_ptr<test_database>> create() {
        auto db = clisonix::testing::pg_test_database::create("auth");
        if (!db) return db.error();
        return std::unique_ptr<test_database>(new postgres_database(std::move(*db)));
    }
    std::string url() const override { return _db->url(); }
    std::string data_dir() const override { return "/nonexistent"; }

private:
    explicit postgres_database(std::unique_ptr<clisonix::testing::pg_test_database> db)
        : _db(std::move(db)) {}
    std::unique_ptr<clisonix::testing::pg_test_database> _db;
};

INSTANTIATE_TEST_SUITE_P(postgres, service_contract,
                         ::testing::Values(backend{"postgres", postgres_database::create}),
                         backend_name);

}  // namespace
}  // namespace clisonix::auth::testing
