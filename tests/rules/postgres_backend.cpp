// The engine tests on PostgreSQL: a fresh database of the pg fixture per test.
#include "rules/backend.h"
#include "support/pg_test_db.h"

namespace clisonix::rules {

result<test_store> open_test_store(const std::string&) {
    auto db = testing::pg_test_database::create("rules");
    if (!db) return db.error();
    std::shared_ptr<testing::pg_test_database> keep(std::move(*db));
    auto s = meta::open(keep->url(), "/nonexistent");
    if (!s) return s.error();
    return test_store{keep, std::move(*s)};
}

}  // namespace clisonix::rules
