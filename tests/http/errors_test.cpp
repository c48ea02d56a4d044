// The error vocabulary: one status per code, Retry-After where a client must wait, and no
// code in src/ outside the vocabulary (a scan of the sources, so that a new module cannot
// invent a code the dashboard and the clients do not know).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "common/result.h"
#include "http/http.h"

namespace clisonix::http {
namespace {

std::string header_of(const response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return "";
}

TEST(status_for, each_code_has_its_documented_status) {
    const std::map<std::string, int> expected = {
        {"invalid_argument", 400}, {"invalid_json", 400},      {"invalid_config", 400},
        {"unauthenticated", 401},  {"invalid_token", 401},     {"invalid_credentials", 401},
        {"forbidden", 403},        {"not_found", 404},         {"method_not_allowed", 405},
        {"conflict", 409},         {"too_large", 413},         {"unsupported_media_type", 415},
        {"upgrade_required", 426}, {"too_many_requests", 429}, {"internal", 500},
        {"corrupt", 500},          {"not_implemented", 501},   {"unavailable", 503},
        {"overloaded", 503},       {"storage_full", 503},
    };
    EXPECT_EQ(expected.size(), std::size(errc::all));
    for (auto code : errc::all) {
        ASSERT_TRUE(expected.contains(std::string(code))) << code;
        EXPECT_EQ(status_for(code), expected.at(std::string(code))) << code;
    }
}

TEST(status_for, a_code_outside_the_vocabulary_is_a_500) {
    EXPECT_EQ(status_for("bad_credentials"), 500);
    EXPECT_EQ(status_for(""), 500);
}

TEST(from_error, carries_status_envelope_and_field) {
    auto r = response::from_error(make_error("forbidden", "The role viewer may not", "role"));
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"forbidden","message":"The role viewer may not","field":"role"}})");
    EXPECT_EQ(header_of(r, "Retry-After"), "");
}

TEST(from_error, tells_a_client_when_to_come_back) {
    auto busy = response::from_error(make_error("overloaded", "The write queue is full"));
    EXPECT_EQ(busy.status, 503);
    EXPECT_EQ(header_of(busy, "Retry-After"), "1");
    auto locked = response::from_error(make_error("too_many_requests", "Too many failed logins"),
                                       std::chrono::seconds(900));
    EXPECT_EQ(locked.status, 429);
    EXPECT_EQ(header_of(locked, "Retry-After"), "900");
    auto full = response::from_error(make_error("storage_full", "The disk is full"),
                                     std::chrono::seconds(10));
    EXPECT_EQ(full.status, 503);
    EXPECT_EQ(header_of(full, "Retry-After"), "10");
    // A dependency that is down is not a promise to be back in a second.
    EXPECT_EQ(header_of(response::from_error(make_error("unavailable", "db")), "Retry-After"), "");
}

// Every literal code in src/: make_error("code", ...), response::error(NNN, "code", ...) and
// the server's write_error(NNN, "code", ...). A literal status must be the code's status,
// except where the status says more than the code (431 for a header over the limit).
TEST(error_vocabulary, every_code_in_src_is_in_the_vocabulary) {
    const std::set<std::string_view> known(std::begin(errc::all), std::end(errc::all));
    const std::regex made(R"re(make_error\(\s*"([^"]*)")re");
    const std::regex answered(R"re((?:response::error|write_error)\(\s*(\d{3}),\s*"([^"]*)")re");
    const std::set<std::pair<int, std::string>> status_exceptions = {{431, "too_large"}};
    int files = 0;
    int codes = 0;
    std::vector<std::string> faults;
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(std::string(CLISONIX_SOURCE_DIR) + "/src")) {
        const auto ext = entry.path().extension();
        if (ext != ".cpp" && ext != ".h") continue;
        std::ifstream in(entry.path());
        std::stringstream text;
        text << in.rdbuf();
        const std::string s = text.str();
        ++files;
        const auto where = entry.path().lexically_relative(CLISONIX_SOURCE_DIR).string();
        for (std::sregex_iterator it(s.begin(), s.end(), made), end; it != end; ++it, ++codes)
            if (!known.contains((*it)[1].str()))
                faults.push_back(where + ": make_error(\"" + (*it)[1].str() + "\")");
        for (std::sregex_iterator it(s.begin(), s.end(), answered), end; it != end; ++it, ++codes) {
            const std::string code = (*it)[2].str();
            const int status = std::stoi((*it)[1].str());
            if (!known.contains(code))
                faults.push_back(where + ": error(" + std::to_string(status) + ", \"" + code +
                                 "\")");
            else if (status != status_for(code) && !status_exceptions.contains({status, code}))
                faults.push_back(where + ": status " + std::to_string(status) + " for \"" + code +
                                 "\" (status_for says " + std::to_string(status_for(code)) + ")");
        }
    }
    EXPECT_GT(files, 100);
    EXPECT_GT(codes, 200);  // the scan finds the codes (a broken pattern would find none)
    EXPECT_TRUE(faults.empty()) << [&] {
        std::string all;
        for (const auto& f : faults)
            all += f + "\n";
        return all;
    }();
}

}  // namespace
}  // namespace clisonix::http
