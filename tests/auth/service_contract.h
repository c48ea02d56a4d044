// The store-backed core of auth, written once (service_test.cpp) and run on each metadata
// backend (service_sqlite_test.cpp, service_postgres_test.cpp).
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "auth_test_support.h"

namespace clisonix::auth::testing {

// One empty database for one test; dropped or deleted when destroyed.
class test_database {
public:
    virtual ~test_database() = default;
    virtual std::string url() const = 0;
    virtual std::string data_dir() const = 0;
};

struct backend {
    std::string name;
    std::function<result<std::unique_ptr<test_database>>()> make;
};

inline void PrintTo(const backend& b, std::ostream* os) {
    *os << b.name;
}

inline std::string backend_name(const ::testing::TestParamInfo<backend>& info) {
    return info.param.name;
}

class service_contract : public ::testing::TestWithParam<backend> {
protected:
    void SetUp() override {
        auto db = GetParam().make();
        ASSERT_TRUE(db.ok()) << db.error().message;
        _db = std::move(*db);
        auto s = meta::open(_db->url(), _db->data_dir());
        ASSERT_TRUE(s.ok()) << s.error().message;
        store = std::move(*s);
        service = std::make_unique<auth_service>(*store, fast_options());
    }

    std::unique_ptr<test_database> _db;
    std::unique_ptr<meta::store> store;
    std::unique_ptr<auth_service> service;
    const actor by{"root", "10.0.0.1"};
};

}  // namespace clisonix::auth::testing
