#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <boost/json.hpp>

#include "observe/observe.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace clisonix;

namespace {

// gtest's regex on Linux is POSIX ERE, which has no \d.
const std::string date_re = "[0-9]{4}-[0-9]{2}-[0-9]{2}";
const std::string time_re = "[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}";

// Suites are named observe_* so that `ctest -R observe` selects them.
// Each test logs into its own fresh directory and reads back the lines of the day's file.
class observe_log : public ::testing::Test {
protected:
    void SetUp() override {
        _dir = fs::temp_directory_path() /
               ("clisonix-log-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(_dir);
    }
    void TearDown() override {
        log::shutdown();
        fs::remove_all(_dir);
    }

    void start(log::level min = log::level::info) {
        log::init(
            {.dir = (_dir / "logs").string(), .keep_days = 3, .min_level = min, .console = false});
    }

    std::vector<std::string> lines() {
        std::vector<std::string> out;
        for (const auto& entry : fs::directory_iterator(_dir / "logs")) {
            std::ifstream in(entry.path());
            for (std::string line; std::getline(in, line);)
                out.push_back(line);
        }
        return out;
    }

    std::vector<json::object> records() {
        std::vector<json::object> out;
        for (const auto& line : lines())
            out.push_back(json::parse(line).as_object());
        return out;
    }

    fs::path _dir;
};

TEST_F(observe_log, writes_one_json_object_per_line_with_fields) {
    start();
    log::info("listening", {{"port", 8030},
                            {"bind", "0.0.0.0"},
                            {"tls", false},
                            {"ratio", 0.25},
                            {"big", int64_t{-9007199254740993}},
                            {"inf", std::numeric_limits<double>::infinity()}});
    log::shutdown();

    auto recs = records();
    ASSERT_EQ(recs.size(), 1u);
    const auto& r = recs[0];
    EXPECT_EQ(r.at("msg").as_string(), "listening");
    EXPECT_EQ(r.at("level").as_string(), "info");
    EXPECT_EQ(r.at("port").as_int64(), 8030);
    EXPECT_EQ(r.at("bind").as_string(), "0.0.0.0");
    EXPECT_EQ(r.at("tls").as_bool(), false);
    EXPECT_EQ(r.at("ratio").as_double(), 0.25);
    EXPECT_EQ(r.at("big").as_int64(), -9007199254740993);
    EXPECT_TRUE(r.at("inf").is_null());
    EXPECT_FALSE(r.contains("request_id"));
    EXPECT_THAT(std::string(r.at("ts").as_string()),
                ::testing::MatchesRegex(date_re + "T" + time_re + "Z"));
    // Keys come in a fixed order: ts, level, msg, then the caller's fields.
    EXPECT_THAT(lines()[0], ::testing::StartsWith(R"({"ts":")"));
    EXPECT_THAT(lines()[0], ::testing::HasSubstr(R"("level":"info","msg":"listening","port":8030,)"
                                                 R"("bind":"0.0.0.0","tls":false,"ratio":0.25,)"));
}

TEST_F(observe_log, names_the_file_by_day) {
    start();
    log::info("x");
    log::shutdown();
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(_dir / "logs")) {
        names.push_back(e.path().filename().string());
    }
    ASSERT_EQ(names.size(), 1u);
    EXPECT_THAT(names[0], ::testing::MatchesRegex("clisonix_" + date_re + "\\.log"));
}

TEST_F(observe_log, request_id_only_inside_a_scope) {
    start();
    log::info("before");
    {
        log::request_scope outer("req-1");
        log::info("outer");
        {
            log::request_scope inner("req-2");
            log::info("inner");
        }
        log::info("outer again");
    }
    log::info("after");
    log::shutdown();

    auto recs = records();
    ASSERT_EQ(recs.size(), 5u);
    EXPECT_FALSE(recs[0].contains("request_id"));
    EXPECT_EQ(recs[1].at("request_id").as_string(), "req-1");
    EXPECT_EQ(recs[2].at("request_id").as_string(), "req-2");
    EXPECT_EQ(recs[3].at("request_id").as_string(), "req-1");
    EXPECT_FALSE(recs[4].contains("request_id"));
}

TEST_F(observe_log, escapes_quotes_newlines_control_chars_and_bad_utf8) {
    start();
    std::string tricky = "say \"hi\"\\ \n\t\x01 caf\xC3\xA9 \xE2\x82\xAC";
    log::error(tricky, {{"k\"ey", tricky},
                        {"bad",
                         "a\xFF"
                         "b\xC0\xAF"}});
    log::shutdown();

    auto raw = lines();
    ASSERT_EQ(raw.size(), 1u);
    EXPECT_THAT(raw[0], ::testing::HasSubstr(R"("msg":"say \"hi\"\\ \u000a\u0009\u0001 café €")"));
    auto r = json::parse(raw[0]).as_object();
    EXPECT_EQ(r.at("msg").as_string(), tricky);
    EXPECT_EQ(r.at("k\"ey").as_string(), tricky);
    EXPECT_EQ(r.at("bad").as_string(),
              "a\xEF\xBF\xBD"
              "b\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(r.at("level").as_string(), "error");
}

TEST_F(observe_log, drops_lines_below_the_minimum_level) {
    start(log::level::info);
    EXPECT_FALSE(log::enabled(log::level::debug));
    EXPECT_TRUE(log::enabled(log::level::info));
    log::debug("dropped");
    log::trace("dropped too");
    log::info("kept");
    log::warn("kept too");
    log::shutdown();

    auto recs = records();
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].at("msg").as_string(), "kept");
    EXPECT_EQ(recs[1].at("level").as_string(), "warn");
}

TEST_F(observe_log, flushes_warnings_at_once) {
    start();
    log::warn("disk almost full", {{"free_bytes", 1024}});
    auto raw = lines();  // no shutdown: the warning must already be on disk
    ASSERT_EQ(raw.size(), 1u);
    EXPECT_THAT(raw[0], ::testing::HasSubstr(R"("msg":"disk almost full","free_bytes":1024})"));
}

TEST_F(observe_log, flushes_other_lines_within_a_second) {
    start();
    log::info("heartbeat");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto raw = lines();  // no shutdown: the periodic flush must have run
    ASSERT_EQ(raw.size(), 1u);
    EXPECT_THAT(raw[0], ::testing::HasSubstr(R"("msg":"heartbeat"})"));
}

TEST_F(observe_log, console_gets_readable_text) {
    log::init({.dir = "", .min_level = log::level::debug, .console = true});
    ::testing::internal::CaptureStderr();
    {
        log::request_scope scope("r7");
        log::debug("user login", {{"user", "ada"}, {"agent", "curl 8.0"}, {"ok", true}, {"n", 3}});
    }
    log::shutdown();
    std::string err = ::testing::internal::GetCapturedStderr();
    ASSERT_THAT(err, ::testing::EndsWith("\n"));
    err.pop_back();
    EXPECT_THAT(err, ::testing::MatchesRegex(date_re + " " + time_re +
                                             R"( DEBUG user login user=ada )"
                                             R"(agent="curl 8\.0" ok=true n=3 request_id=r7)"));
}

TEST_F(observe_log, writes_text_to_stderr_before_init) {
    ::testing::internal::CaptureStderr();
    log::warn("not yet", {{"q", "a b"}});
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(err, ::testing::EndsWith(" WARN  not yet q=\"a b\"\n"));
}

TEST(observe_log_level, parses_names) {
    EXPECT_EQ(log::parse_level("trace"), log::level::trace);
    EXPECT_EQ(log::parse_level("debug"), log::level::debug);
    EXPECT_EQ(log::parse_level("warn"), log::level::warn);
    EXPECT_EQ(log::parse_level("error"), log::level::error);
    EXPECT_EQ(log::parse_level("loud"), log::level::info);
}

}  // namespace
