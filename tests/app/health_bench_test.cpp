// `clisonix health-bench` as a user runs it: the real binary on SKAB-format files.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "support/test_support.h"

namespace clisonix {
namespace {

using testing::run_clisonix;
using testing::temp_dir;
using testing::write_file;

const char* header =
    "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Thermocouple;"
    "Voltage;Volume Flow RateRMS;anomaly;changepoint\r\n";

// A SKAB-format file: `rows` rows one second apart; from row `fault_from` on, the flow drops
// and the rows are labelled anomalous.
std::string skab_file(size_t rows, size_t fault_from) {
    std::ostringstream s;
    s << header;
    for (size_t i = 0; i < rows; ++i) {
        const bool fault = i >= fault_from;
        const double wobble = std::sin(double(i) * 0.7);
        char line[256];
        std::snprintf(line, sizeof line,
                      "2020-03-09 10:%02zu:%02zu;%.5f;%.5f;%.4f;%.5f;%.4f;%.4f;%.3f;%.1f;%d;0\r\n",
                      i / 60 % 60, i % 60, 0.026 + 0.001 * wobble, 0.040 - 0.001 * wobble,
                      1.33 + 0.02 * wobble, 0.05 + 0.01 * wobble, 79.3 + 0.01 * wobble,
                      26.0 + 0.01 * wobble, 233 + wobble, fault ? 20.0 : 32.0 + wobble,
                      fault ? 1 : 0);
        s << line;
    }
    return s.str();
}

TEST(health_bench, writes_one_score_per_row_and_the_pooled_scores) {
    temp_dir data, out;
    write_file(data.path() / "a.csv", skab_file(500, 450));
    std::filesystem::create_directories(data.path() / "kind");
    write_file(data.path() / "kind" / "b.csv", skab_file(460, 1000));
    auto r = run_clisonix({"health-bench", "--data", data.path().string(), "--train-rows", "400",
                           "--out", out.path().string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Not a terminal: one clean line per file.
    EXPECT_EQ(r.err, "health-bench: 1/2 (50%) a.csv\nhealth-bench: 2/2 (100%) kind/b.csv\n");

    auto a = testing::read_lines(out.path() / "a.csv");
    ASSERT_EQ(a.size(), 501u);
    EXPECT_EQ(a[0], "timestamp,anomaly_score");
    EXPECT_EQ(a[1].rfind("2020-03-09 10:00:00,", 0), 0u) << a[1];
    EXPECT_EQ(testing::read_lines(out.path() / "kind" / "b.csv").size(), 461u);
    // The flow drop is flagged soon after it starts, and the normal rows are not.
    auto score = [&](size_t row) { return std::stod(a[row + 1].substr(a[row + 1].find(',') + 1)); };
    EXPECT_LT(score(449), 0.5);
    EXPECT_GE(score(460), 0.5);
    EXPECT_GE(score(499), 0.5);

    EXPECT_NE(r.out.find("files 2, rows 960 (test rows 160), metrics 8"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("pooled over test rows (score >= 0.5 is abnormal): F1 "),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("FP 0 "), std::string::npos) << r.out;
}

TEST(health_bench, a_bad_row_exits_2_naming_file_line_and_field) {
    temp_dir data, out;
    auto text = skab_file(500, 1000);
    // Line 7 of the file (the header is line 1): its Pressure field is not a number.
    size_t at = 0;
    for (int i = 0; i < 6; ++i)
        at = text.find('\n', at) + 1;
    size_t field = at;
    for (int i = 0; i < 4; ++i)
        field = text.find(';', field) + 1;
    text.replace(field, text.find(';', field) - field, "abc");
    write_file(data.path() / "bad.csv", text);
    auto r = run_clisonix(
        {"health-bench", "--data", data.path().string(), "--out", out.path().string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "health-bench: bad.csv:7: Pressure: not a number: 'abc'\n");

    write_file(data.path() / "bad.csv", skab_file(10, 1000) + "2020-03-09 11:00:00;1;2\r\n");
    r = run_clisonix(
        {"health-bench", "--data", data.path().string(), "--out", out.path().string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "health-bench: bad.csv:12: row: has 3 fields; the header has 11\n");

    write_file(data.path() / "bad.csv", skab_file(400, 1000));
    r = run_clisonix(
        {"health-bench", "--data", data.path().string(), "--out", out.path().string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err,
              "health-bench: bad.csv: 400 data rows; --train-rows 400 leaves none to score\n");
}

// The inputs are never written: not when --out is --data, not through a symlinked input.
TEST(health_bench, never_overwrites_an_input) {
    temp_dir data, elsewhere, out;
    const auto original = skab_file(460, 1000);
    write_file(data.path() / "a.csv", original);
    auto r = run_clisonix(
        {"health-bench", "--data", data.path().string(), "--out", data.path().string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "health-bench: --out " + data.path().string() +
                         ": would overwrite the input a.csv\n");
    EXPECT_EQ(testing::read_file(data.path() / "a.csv"), original);

    write_file(elsewhere.path() / "real.csv", original);
    std::filesystem::remove(data.path() / "a.csv");
    std::filesystem::create_symlink(elsewhere.path() / "real.csv", data.path() / "link.csv");
    r = run_clisonix(
        {"health-bench", "--data", data.path().string(), "--out", out.path().string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(testing::read_file(elsewhere.path() / "real.csv"), original);
    EXPECT_EQ(testing::read_lines(out.path() / "link.csv").size(), 461u);
}

TEST(health_bench, a_missing_directory_or_too_few_training_rows_exit_2) {
    temp_dir out;
    auto r =
        run_clisonix({"health-bench", "--data", "/nonexistent/skab", "--out", out.path().string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "health-bench: --data /nonexistent/skab: no such directory\n");
    r = run_clisonix({"health-bench", "--data", out.path().string(), "--out", out.path().string(),
                      "--train-rows", "10"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "health-bench: --train-rows 10: the model needs at least 60\n");
    temp_dir empty;
    r = run_clisonix(
        {"health-bench", "--data", empty.path().string(), "--out", out.path().string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err,
              "health-bench: --data " + empty.path().string() + ": no *.csv file under it\n");
}

}  // namespace
}  // namespace clisonix
