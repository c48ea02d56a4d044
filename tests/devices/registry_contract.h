// The registry's contract, written once (registry_test.cpp) and run on each metadata backend
// (sqlite_test.cpp, postgres_test.cpp) with a factory for fresh stores.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "auth/auth.h"
#include "devices/devices.h"
#include "meta/meta.h"

namespace clisonix::devices::testing {

// A fresh, empty store for one test; the backing database goes with it.
struct test_store {
    virtual ~test_store() = default;
    virtual std::string url() const = 0;
    virtual std::string data_dir() const = 0;
};

struct backend {
    std::string name;
    std::function<result<std::unique_ptr<test_store>>()> make;
};

// The backend of this test executable (sqlite_test.cpp or postgres_test.cpp).
backend this_backend();

inline void PrintTo(const backend& b, std::ostream* os) {
    *os << b.name;
}

inline std::string backend_name(const ::testing::TestParamInfo<backend>& info) {
    return info.param.name;
}

inline auth::options fast_auth_options() {
    auth::options o;
    o.argon2_memory_kib = 256;
    o.argon2_iterations = 1;
    o.jwt_secret = "0123456789abcdef0123456789abcdef";
    return o;
}

class registry_contract : public ::testing::TestWithParam<backend> {
protected:
    void SetUp() override {
        auto db = GetParam().make();
        ASSERT_TRUE(db.ok()) << db.error().message;
        _db = std::move(*db);
        auto s = meta::open(_db->url(), _db->data_dir());
        ASSERT_TRUE(s.ok()) << s.error().message;
        store = std::move(*s);
        auth = std::make_unique<auth::auth_service>(*store, fast_auth_options());
        reg = make_registry();
    }
    void TearDown() override {
        reg.reset();
        auth.reset();
        store.reset();
    }

    std::unique_ptr<registry> make_registry() {
        options o;
        o.flush_interval = std::chrono::hours(1);  // tests flush by hand
        auto r = std::make_unique<registry>(*store, *auth, o);
        auto st = r->start();
        EXPECT_TRUE(st.ok()) << st.error().message;
        return r;
    }

    std::unique_ptr<test_store> _db;
    std::unique_ptr<meta::store> store;
    std::unique_ptr<auth::auth_service> auth;
    std::unique_ptr<registry> reg;
    const auth::actor by{"tester", "local"};
};

}  // namespace clisonix::devices::testing
