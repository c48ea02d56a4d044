// The contract every meta backend keeps, written once (contract_test.cpp) and instantiated
// per backend (sqlite_test.cpp, postgres_test.cpp) with a factory for fresh databases.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "common/result.h"
#include "meta/meta.h"

namespace clisonix::meta::testing {

// One empty database for one test; dropped or deleted when destroyed.
class test_database {
public:
    virtual ~test_database() = default;
    virtual std::string url() const = 0;       // what open() gets
    virtual std::string data_dir() const = 0;  // ditto
};

struct backend_factory {
    std::string name;
    std::function<result<std::unique_ptr<test_database>>()> make;
};

// Names the parameter in gtest's messages instead of dumping its bytes.
inline void PrintTo(const backend_factory& f, std::ostream* os) {
    *os << f.name;
}

inline std::string factory_name(const ::testing::TestParamInfo<backend_factory>& info) {
    return info.param.name;
}

class contract : public ::testing::TestWithParam<backend_factory> {
protected:
    void SetUp() override {
        auto db = GetParam().make();
        ASSERT_TRUE(db.ok()) << db.error().message;
        _db = std::move(*db);
    }

    result<std::unique_ptr<store>> open_default() { return open(_db->url(), _db->data_dir()); }
    result<std::unique_ptr<store>> open_list(std::span<const migration> list) {
        return open_with(_db->url(), _db->data_dir(), list);
    }

    std::unique_ptr<test_database> _db;
};

}  // namespace clisonix::meta::testing
