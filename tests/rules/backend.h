// The metadata store the engine tests run on: sqlite_backend.cpp or postgres_backend.cpp.
#pragma once

#include <memory>
#include <string>

#include "meta/meta.h"

namespace clisonix::rules {

struct test_store {
    std::shared_ptr<void> keep;  // what the store needs alive (a test database)
    std::unique_ptr<meta::store> store;
};

result<test_store> open_test_store(const std::string& dir);

}  // namespace clisonix::rules
