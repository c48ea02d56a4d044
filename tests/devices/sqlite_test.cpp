// The registry contract on SQLite (the embedded default).
#include "registry_contract.h"
#include "support/test_support.h"

namespace clisonix::devices::testing {

namespace {
// SQLite's empty store is a data dir without meta.db; the URL "" puts it there.
struct sqlite_store final : test_store {
    std::string url() const override { return ""; }
    std::string data_dir() const override { return dir.str(); }
    clisonix::testing::temp_dir dir{"clisonix-devices"};
};
}  // namespace

backend this_backend() {
    return {"sqlite", []() -> result<std::unique_ptr<test_store>> {
                return std::unique_ptr<test_store>(std::make_unique<sqlite_store>());
            }};
}

}  // namespace clisonix::devices::testing
