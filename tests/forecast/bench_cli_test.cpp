// `clisonix forecast-bench` as a user runs it: the real binary on files in M4's layout, and
// the M4 hourly development subset (../shared/m4) as a regression bar.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/shared_data.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using testing::run_clisonix;
using testing::temp_dir;
using testing::write_file;

// One M4-style row: "id","v1","v2",... with a daily shape of `days` days scaled by `level`.
std::string m4_row(const std::string& id, int days, double level, int offset = 0) {
    std::string row = "\"" + id + "\"";
    for (int t = offset; t < offset + days * 24; ++t) {
        char v[32];
        std::snprintf(v, sizeof v, ",\"%g\"", level * (10 + (t % 24)));
        row += v;
    }
    return row + "\n";
}

std::string header(int n) {
    std::string h;
    for (int i = 1; i <= n; ++i)
        h += (i > 1 ? "," : "") + std::string("\"V") + std::to_string(i) + "\"";
    return h + "\n";
}

// The fields of the "all" row of the report: series, sMAPE, MASE, OWA, MSIS, coverage.
std::vector<double> all_row(const std::string& out) {
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("all ", 0) == 0) {
            std::istringstream f(line.substr(4));
            std::vector<double> v(6);
            for (auto& x : v)
                f >> x;
            return v;
        }
    return {};
}

TEST(forecast_bench, writes_forecasts_per_series_and_scores_them) {
    temp_dir dir;
    // Two series that repeat their day exactly, one 700 and one 960 hours long (M4's padding:
    // empty fields after the shorter one).
    std::string b = m4_row("B", 40, 3);
    b.pop_back();
    for (int i = 0; i < 960 - 960; ++i)
        b += ",\"\"";
    write_file(dir.path() / "train.csv", header(961) + m4_row("A", 40, 1) + b + "\n");
    write_file(dir.path() / "test.csv", header(49) + m4_row("A", 2, 1) + m4_row("B", 2, 3));
    auto r = run_clisonix({"forecast-bench", "--train", (dir.path() / "train.csv").string(),
                           "--test", (dir.path() / "test.csv").string(), "--horizon", "48",
                           "--season", "24", "--out", (dir.path() / "out").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Not a terminal: one clean line per series (in the order the cores finish them).
    EXPECT_NE(r.err.find("forecast-bench: 1/2 (50%) "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("forecast-bench: 2/2 (100%) "), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
    EXPECT_EQ(r.err.find('\r'), std::string::npos);
    for (const char* file : {"point.csv", "lower.csv", "upper.csv"}) {
        auto rows = testing::read_lines(dir.path() / "out" / file);
        ASSERT_EQ(rows.size(), 3u) << file;
        EXPECT_EQ(rows[0].substr(0, 12), "id,F1,F2,F3,") << file;
        EXPECT_EQ(rows[0].substr(rows[0].size() - 4), ",F48") << file;
        EXPECT_EQ(rows[1].substr(0, 2), "A,") << file;  // the id's text, without quotes
        EXPECT_EQ(rows[2].substr(0, 2), "B,") << file;
        EXPECT_EQ(std::count(rows[1].begin(), rows[1].end(), ','), 48) << file;
    }
    // The day repeats: the first forecast of A is its first hour (10), of B three times it.
    auto point = testing::read_lines(dir.path() / "out" / "point.csv");
    EXPECT_NEAR(std::stod(point[1].substr(2)), 10.0, 0.1);
    EXPECT_NEAR(std::stod(point[2].substr(2)), 30.0, 0.3);
    auto all = all_row(r.out);
    ASSERT_EQ(all.size(), 6u) << r.out;
    EXPECT_EQ(all[0], 2);
    EXPECT_LT(all[1], 1.0);   // sMAPE, percent
    EXPECT_LT(all[2], 0.05);  // MASE
    EXPECT_NE(r.out.find("naive2"), std::string::npos) << r.out;
}

TEST(forecast_bench, without_a_test_file_it_only_forecasts) {
    temp_dir dir;
    write_file(dir.path() / "train.csv", header(481) + m4_row("S1", 20, 1));
    auto r = run_clisonix({"forecast-bench", "--train", (dir.path() / "train.csv").string(),
                           "--out", (dir.path() / "out").string(), "--method", "snaive"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("OWA"), std::string::npos) << r.out;
    auto point = testing::read_lines(dir.path() / "out" / "point.csv");
    ASSERT_EQ(point.size(), 2u);
    EXPECT_EQ(point[1].substr(0, 9), "S1,10,11,");
}

struct bad_input {
    std::string name, train, test, expected;
};

TEST(forecast_bench, bad_input_names_the_file_and_line_and_exits_2) {
    const std::string good = m4_row("A", 10, 1);
    const std::vector<bad_input> cases = {
        {"a non-number", header(241) + good + "\"B\",\"1\",\"2\",\"x7\",\"4\"\n", "",
         "train.csv:3: series B, value 3: 'x7' is not a number"},
        {"an empty file", "", "", "train.csv:1: no series (the file is empty)"},
        {"a short series", header(241) + good + m4_row("C", 1, 1), "",
         "train.csv:3: series C has 24 values; at least 49 are needed"},
        {"an id not in TRAIN", header(241) + good, header(49) + m4_row("Z", 2, 1),
         "test.csv:2: series Z is not in "},
        {"a short test row", header(241) + good, header(49) + m4_row("A", 1, 1),
         "test.csv:2: series A has 24 values; the horizon needs 48"},
    };
    for (const auto& c : cases) {
        temp_dir dir;
        write_file(dir.path() / "train.csv", c.train);
        std::vector<std::string> args = {"forecast-bench", "--train",
                                         (dir.path() / "train.csv").string(), "--out",
                                         (dir.path() / "out").string()};
        if (!c.test.empty()) {
            write_file(dir.path() / "test.csv", c.test);
            args.push_back("--test");
            args.push_back((dir.path() / "test.csv").string());
        }
        auto r = run_clisonix(args);
        EXPECT_EQ(r.exit_code, 2) << c.name;
        EXPECT_NE(r.err.find(c.expected), std::string::npos) << c.name << ": " << r.err;
    }
    temp_dir dir;
    write_file(dir.path() / "train.csv", header(241) + good);
    auto unknown = run_clisonix({"forecast-bench", "--train", (dir.path() / "train.csv").string(),
                                 "--out", (dir.path() / "out").string(), "--method", "oracle"});
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_NE(unknown.err.find("--method oracle: unknown"), std::string::npos) << unknown.err;
    auto missing = run_clisonix({"forecast-bench", "--train", (dir.path() / "nope.csv").string(),
                                 "--out", (dir.path() / "out").string()});
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_NE(missing.err.find("nope.csv: cannot be read"), std::string::npos) << missing.err;
}

// The documented result on the M4 hourly development subset (docs/forecasting.md):
// OWA 0.382 with "auto" (seasonal naive 0.585 by the same scorer), 95 % coverage 94.5 %.
TEST(forecast_bench, m4_hourly_owa_and_coverage_hold) {
    const auto m4 = testing::shared_data("m4");
    if (auto why = testing::missing(m4)) GTEST_SKIP() << *why;
    temp_dir out;
    auto r = run_clisonix({"forecast-bench", "--train", (m4 / "Hourly-train.csv").string(),
                           "--test", (m4 / "Hourly-test.csv").string(), "--horizon", "48",
                           "--season", "24", "--out", out.str(), "--method", "auto"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::printf("%s", r.out.c_str());
    auto all = all_row(r.out);
    ASSERT_EQ(all.size(), 6u) << r.out;
    EXPECT_EQ(all[0], 120);
    EXPECT_LE(all[3], 0.382 + 0.005);  // OWA
    EXPECT_GE(all[5], 93.0);           // 95 % coverage, percent
    EXPECT_LE(all[5], 97.0);
}

}  // namespace
}  // namespace clisonix
