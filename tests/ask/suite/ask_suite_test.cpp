// The Ask suite as CTest runs it: ask_suite.py (beside this file) starts `clisonix demo` with
// a fixed seed and a day of history and asks every question of questions.json; these tests
// only run it and show its report. README.md says how to add a question.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;

const std::string script = CLISONIX_SOURCE_DIR "/tests/ask/suite/ask_suite.py";

// Runs the harness with `args`; its report goes to the test's output either way.
int run_harness(const std::vector<std::string>& args, std::string& report) {
    std::vector<std::string> argv{"/usr/bin/python3", script};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::process harness(argv);
    auto code = harness.wait(400s);
    report = harness.out() + harness.err();
    std::cout << report << std::flush;
    return code ? *code : -1;
}

TEST(ask_suite_test, questions_file_keeps_its_rules) {
    // At least 150 questions, 40 worker-phrased, 10 not understood; every plan well formed.
    std::string report;
    EXPECT_EQ(run_harness({"--check-file"}, report), 0) << report;
    EXPECT_NE(report.find("worker-phrased"), std::string::npos) << report;
}

TEST(ask_suite_test, harness_passes_right_answers_and_fails_wrong_ones) {
    // Stand-in answers made from the expected plans and numbers must all pass, and the same
    // answers with one thing wrong each (a time, the aggregate, a value, a device, a reason)
    // must all fail: the harness can fail, and fails for the right reason.
    std::string report;
    EXPECT_EQ(run_harness({"--binary", CLISONIX_BINARY, "--self-test"}, report), 0) << report;
    EXPECT_NE(report.find("correct stand-in answers pass"), std::string::npos) << report;
    EXPECT_NE(report.find("wrong stand-in answers fail"), std::string::npos) << report;
}

TEST(ask_suite_test, every_question_is_answered_as_expected) {
    // The suite itself: POST /api/v1/ask for each question. A build without the route fails
    // here with "POST /api/v1/ask answered 404".
    std::string report;
    EXPECT_EQ(run_harness({"--binary", CLISONIX_BINARY}, report), 0) << report;
}

}  // namespace
}  // namespace clisonix
