// The command line as a user meets it: exit codes and the one-line config errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "support/test_support.h"

namespace clisonix {
namespace {

using testing::run_clisonix;
using testing::temp_dir;
using testing::write_file;

TEST(cli_test, version_prints_version_and_commit) {
    auto r = run_clisonix({"version"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.rfind("clisonix 0.", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("(commit "), std::string::npos);
}

TEST(cli_test, help_on_every_command_exits_0) {
    for (auto args : std::vector<std::vector<std::string>>{{"--help"},
                                                           {"serve", "--help"},
                                                           {"config", "--help"},
                                                           {"config", "show", "--help"},
                                                           {"config", "reference", "--help"},
                                                           {"version", "--help"}}) {
        auto r = run_clisonix(args);
        EXPECT_EQ(r.exit_code, 0) << args[0];
        EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
    }
}

TEST(cli_test, unknown_command_or_flag_exits_2) {
    auto r = run_clisonix({"frobnicate"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos) << r.err;
    auto f = run_clisonix({"serve", "--prot", "1"});
    EXPECT_EQ(f.exit_code, 2);
    EXPECT_NE(f.err.find("--prot"), std::string::npos) << f.err;
}

TEST(cli_test, unknown_command_names_the_word_and_the_nearest_command) {
    for (auto [typed, meant] :
         std::vector<std::pair<std::string, std::string>>{{"foo", "demo"},
                                                          {"serv", "serve"},
                                                          {"qeury", "query"},
                                                          {"helth-bench", "health-bench"}}) {
        auto r = run_clisonix({typed});
        EXPECT_EQ(r.exit_code, 2) << typed;
        EXPECT_EQ(r.err.rfind("unknown command '" + typed + "'; did you mean '" + meant + "'?", 0),
                  0u)
            << r.err;
        EXPECT_EQ(r.err.find("A subcommand is required"), std::string::npos) << r.err;
    }
    // No command at all is still CLI11's own message, and exit 2.
    auto none = run_clisonix({});
    EXPECT_EQ(none.exit_code, 2);
}

TEST(cli_test, nab_into_a_pipe_prints_one_clean_line_per_file) {
    temp_dir dir("clisonix-nab-cli");
    std::filesystem::create_directories(dir.path() / "data" / "cat");
    std::string csv = "timestamp,value\n";
    for (int i = 0; i < 40; ++i) {
        char line[64];
        std::snprintf(line, sizeof line, "2020-01-01 00:%02d:00,%d\n", i, i % 3);
        csv += line;
    }
    write_file(dir.path() / "data" / "cat" / "f.csv", csv);
    write_file(dir.path() / "data" / "cat" / "g.csv", csv);
    write_file(dir.path() / "labels.json",
               R"({"cat/f.csv": [["2020-01-01 00:20:00.000000", "2020-01-01 00:24:00.000000"]],)"
               R"( "cat/g.csv": []})");
    // run_clisonix captures stderr into a file: not a terminal, as in a pipe or a log.
    auto r = run_clisonix({"nab", "--data", (dir.path() / "data").string(), "--labels",
                           (dir.path() / "labels.json").string(), "--out",
                           (dir.path() / "out").string(), "--detector", "level"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
    EXPECT_EQ(r.err, "nab: 1/2 (50%) level cat/f.csv\nnab: 2/2 (100%) level cat/g.csv\n");
}

// Each source of config, and each kind of mistake, gives exit 2 and exactly one line.
struct config_error_case {
    const char* name;
    std::vector<std::string> args;
    std::vector<std::string> env;
    const char* dotenv;    // contents of .env in the working dir, or null
    const char* toml;      // contents of c.toml, passed with --config, or null
    const char* expected;  // the whole of stderr
};

// Shown by CTest and GoogleTest in place of the bytes of the case.
void PrintTo(const config_error_case& c, std::ostream* os) {
    *os << c.name;
}

class config_errors : public ::testing::TestWithParam<config_error_case> {};

TEST_P(config_errors, exit_2_with_one_line_naming_key_value_source_and_rule) {
    const auto& c = GetParam();
    temp_dir cwd;
    std::vector<std::string> args{"config", "show"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    if (c.dotenv) write_file(cwd.path() / ".env", c.dotenv);
    if (c.toml) {
        write_file(cwd.path() / "c.toml", c.toml);
        args.insert(args.end(), {"--config", "c.toml"});
    }
    auto r = run_clisonix(args, c.env, cwd.path());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, c.expected);
    EXPECT_EQ(r.out, "");
}

INSTANTIATE_TEST_SUITE_P(
    cli_test, config_errors,
    ::testing::Values(
        config_error_case{
            "env_out_of_range",
            {},
            {"CLISONIX_HTTP_PORT=70000"},
            nullptr,
            nullptr,
            "config: http.port = 70000 (from CLISONIX_HTTP_PORT): must be 1..65535\n"},
        config_error_case{"flag_bad_type",
                          {"--set", "http.port=abc"},
                          {},
                          nullptr,
                          nullptr,
                          "config: http.port = \"abc\" (from --set): must be an integer\n"},
        config_error_case{"port_flag_out_of_range",
                          {"--port", "0"},
                          {},
                          nullptr,
                          nullptr,
                          "config: http.port = 0 (from --port): must be 1..65535\n"},
        config_error_case{"flag_unknown_key",
                          {"--set", "htp.port=1"},
                          {},
                          nullptr,
                          nullptr,
                          "config: htp.port (from --set): unknown key (did you mean http.port?)\n"},
        config_error_case{"env_unknown_key",
                          {},
                          {"CLISONIX_HTTP_PROT=1"},
                          nullptr,
                          nullptr,
                          "config: CLISONIX_HTTP_PROT (from environment): unknown key (did you "
                          "mean CLISONIX_HTTP_PORT?)\n"},
        config_error_case{"file_bad_enum",
                          {},
                          {},
                          nullptr,
                          "[log]\nlevel = \"loud\"\n",
                          "config: log.level = \"loud\" (from file c.toml): must be one of trace, "
                          "debug, info, warn, error\n"},
        config_error_case{
            "file_bad_type",
            {},
            {},
            nullptr,
            "[http]\nport = \"eighty\"\n",
            "config: http.port = \"eighty\" (from file c.toml): must be an integer\n"},
        config_error_case{"file_unknown_key",
                          {},
                          {},
                          nullptr,
                          "[http]\nportt = 80\n",
                          "config: http.portt (from file c.toml): unknown key (did you mean "
                          "http.port?)\n"},
        config_error_case{"dotenv_bad_size",
                          {},
                          {},
                          "CLISONIX_HTTP_BODY_LIMIT=8XB\n",
                          nullptr,
                          "config: http.body_limit = \"8XB\" (from .env): must be a size such as "
                          "512, 16KiB, 8MiB, 1GiB\n"},
        config_error_case{"dotenv_out_of_range",
                          {},
                          {},
                          "CLISONIX_LOG_KEEP_DAYS=0\n",
                          nullptr,
                          "config: log.keep_days = 0 (from .env): must be 1..3650\n"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(cli_test, config_show_reports_each_source_by_precedence_and_redacts_secrets) {
    temp_dir cwd;
    write_file(cwd.path() / "c.toml", "[http]\nport = 9000\nthreads = 3\n[log]\nkeep_days = 7\n");
    write_file(cwd.path() / ".env", "CLISONIX_HTTP_THREADS=4\nCLISONIX_LOG_LEVEL=debug\n");
    auto r = run_clisonix(
        {"config", "show", "--config", "c.toml", "--port", "9100"},
        {"CLISONIX_LOG_LEVEL=warn", "CLISONIX_META_URL=postgres://u:hunter2@db:5432/x"},
        cwd.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("http.port = 9100  # from --port\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("http.threads = 4  # from .env\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("log.level = \"warn\"  # from CLISONIX_LOG_LEVEL\n"), std::string::npos);
    EXPECT_NE(r.out.find("log.keep_days = 7  # from file c.toml\n"), std::string::npos);
    EXPECT_NE(r.out.find("http.bind = \"0.0.0.0\"  # from default\n"), std::string::npos);
    EXPECT_NE(r.out.find("meta.url = \"<redacted>\"  # from CLISONIX_META_URL\n"),
              std::string::npos);
    EXPECT_EQ(r.out.find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace clisonix
