// The development data that is not in the repository: nab/, skab/, m4/ and bench/ in
// ../shared beside the checkout (or in $CLISONIX_SHARED_DIR). A checkout without it still
// passes its tests: the tests that need it are skipped and say what is missing.
//
//   const auto nab = clisonix::testing::shared_data("nab");
//   if (auto why = clisonix::testing::missing(nab / "data")) GTEST_SKIP() << *why;
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace clisonix::testing {

inline std::filesystem::path shared_data(const std::string& name) {
    if (const char* dir = std::getenv("CLISONIX_SHARED_DIR"); dir && *dir)
        return std::filesystem::path(dir) / name;
    return std::filesystem::path(CLISONIX_SOURCE_DIR) / ".." / "shared" / name;
}

// Why a test that needs `dir` cannot run, or nullopt when it is there.
inline std::optional<std::string> missing(const std::filesystem::path& dir) {
    if (std::filesystem::is_directory(dir)) return std::nullopt;
    return "needs the development data " + dir.lexically_normal().string() +
           " (../shared beside the checkout, or CLISONIX_SHARED_DIR); not in the repository";
}

}  // namespace clisonix::testing
