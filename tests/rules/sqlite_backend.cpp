// The engine tests on SQLite, in the test's temp dir.
#include "rules/backend.h"

namespace clisonix::rules {

result<test_store> open_test_store(const std::string& dir) {
    auto s = meta::open("", dir);
    if (!s) return s.error();
    return test_store{nullptr, std::move(*s)};
}

}  // namespace clisonix::rules
