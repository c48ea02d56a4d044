// Tests for config/: each source, their precedence, and the exact one-line errors.
#include "config/config.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

namespace clisonix::config {
namespace {

namespace fs = std::filesystem;

class config_test : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device random;
        _dir = fs::temp_directory_path() /
               ("clisonix-config-test-" + std::to_string(random()) + std::to_string(random()));
        fs::create_directories(_dir);
        // No .env unless a test writes one: the working directory's must not leak in.
        _from.dotenv.clear();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(_dir, ec);
    }

    std::string write(const std::string& name, const std::string& content) {
        std::string path = (_dir / name).string();
        std::ofstream(path) << content;
        return path;
    }
    std::string use_file(const std::string& toml) { return _from.file = write("c.toml", toml); }
    std::string use_dotenv(const std::string& text) {
        return _from.dotenv = write("app.env", text);
    }
    void flag(std::string key, std::string value, std::string name = "--set") {
        _from.flags.push_back({std::move(key), std::move(value), std::move(name)});
    }

    config load_ok() {
        auto c = load(_from);
        if (!c) ADD_FAILURE() << c.error().message;
        return c ? *c : config{};
    }
    std::string load_error() {
        auto c = load(_from);
        if (c) return "(loaded without error)";
        EXPECT_EQ(c.error().code, "invalid_config");
        return c.error().message;
    }

    fs::path _dir;
    sources _from;
};

TEST_F(config_test, schema_keys_are_unique_documented_and_grouped) {
    std::vector<std::string> names;
    for (const key_spec& spec : schema()) {
        names.emplace_back(spec.key);
        EXPECT_FALSE(spec.doc.empty()) << spec.key << " has no doc line";
        EXPECT_NE(spec.key.find('.'), std::string_view::npos) << spec.key;
    }
    // The foundation's keys come first, in the README's order.
    ASSERT_GE(names.size(), 9u);
    EXPECT_EQ(
        std::vector<std::string>(names.begin(), names.begin() + 9),
        (std::vector<std::string>{"http.bind", "http.port", "http.threads", "http.header_limit",
                                  "http.body_limit", "http.header_timeout", "http.idle_timeout",
                                  "http.drain_timeout", "http.max_connections"}));
    auto sorted = names;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "duplicate key";
    ASSERT_NE(find_key("meta.url"), nullptr);
    EXPECT_TRUE(find_key("meta.url")->secret);
    EXPECT_EQ(find_key("http.nope"), nullptr);
    EXPECT_EQ(env_name("http.port"), "CLISONIX_HTTP_PORT");
    EXPECT_EQ(env_name("log.keep_days"), "CLISONIX_LOG_KEEP_DAYS");
}

TEST_F(config_test, defaults) {
    config c = load_ok();
    EXPECT_EQ(c.get_string("http.bind"), "0.0.0.0");
    EXPECT_EQ(c.get_int("http.port"), 8030);
    EXPECT_EQ(c.get_int("http.header_limit"), 16 * 1024);
    EXPECT_EQ(c.get_int("http.body_limit"), 8 * 1024 * 1024);
    EXPECT_EQ(c.get_duration("http.header_timeout"), std::chrono::seconds(10));
    EXPECT_EQ(c.get_duration("http.drain_timeout"), std::chrono::seconds(30));
    EXPECT_EQ(c.get_string("log.level"), "info");
    EXPECT_TRUE(c.get_bool("log.file"));
    EXPECT_EQ(c.get_string("meta.url"), "");
    for (const key_spec& spec : schema())
        EXPECT_EQ(c.source(spec.key), "default") << spec.key;
}

TEST_F(config_test, getters_reject_unknown_keys_and_wrong_types) {
    config c = load_ok();
    EXPECT_THROW((void)c.get_int("http.nope"), std::out_of_range);
    EXPECT_THROW((void)c.get_int("http.bind"), std::logic_error);
    EXPECT_THROW((void)c.get_string("http.port"), std::logic_error);
}

TEST_F(config_test, toml_file_tables_dotted_keys_and_native_types) {
    std::string path = use_file(
        "log.file = false\n"
        "[http]\n"
        "port = 9000\n"
        "header_limit = \"32KiB\"\n"
        "body_limit = 2048\n"
        "header_timeout = 2500\n"
        "idle_timeout = \"2m\"\n"
        "[data]\n"
        "dir = \"/var/lib/clisonix\"\n");
    config c = load_ok();
    EXPECT_EQ(c.get_int("http.port"), 9000);
    EXPECT_EQ(c.get_int("http.header_limit"), 32 * 1024);
    EXPECT_EQ(c.get_int("http.body_limit"), 2048);
    EXPECT_EQ(c.get_duration("http.header_timeout"), std::chrono::milliseconds(2500));
    EXPECT_EQ(c.get_duration("http.idle_timeout"), std::chrono::minutes(2));
    EXPECT_EQ(c.get_string("data.dir"), "/var/lib/clisonix");
    EXPECT_FALSE(c.get_bool("log.file"));
    EXPECT_EQ(c.source("http.port"), "file " + path);
    EXPECT_EQ(c.source("log.file"), "file " + path);
    EXPECT_EQ(c.source("http.bind"), "default");
}

TEST_F(config_test, dotenv_file_syntax) {
    std::string path = use_dotenv(
        "# shared with other programs\n"
        "\n"
        "DATABASE_URL=whatever\n"
        "this line belongs to another program and is not ours to judge\n"
        "CLISONIX_HTTP_PORT=9100\n"
        "export CLISONIX_DATA_DIR=\"/srv/data dir\"\n"
        "  CLISONIX_LOG_LEVEL = 'debug'  # trailing comment\n"
        "CLISONIX_LOG_KEEP_DAYS=30 # unquoted comment\n"
        "CLISONIX_META_URL=postgres://u:p#w@db:5432/x\r\n"
        "CLISONIX_CONFIG=/ignored.toml\n"
        "CLISONIX_ADMIN_PASSWORD=secret\n"
        "CLISONIX_TEST_ANYTHING=1\n");
    config c = load_ok();
    EXPECT_EQ(c.get_int("http.port"), 9100);
    EXPECT_EQ(c.get_string("data.dir"), "/srv/data dir");
    EXPECT_EQ(c.get_string("log.level"), "debug");
    EXPECT_EQ(c.get_int("log.keep_days"), 30);
    EXPECT_EQ(c.get_string("meta.url"), "postgres://u:p#w@db:5432/x");
    EXPECT_EQ(c.source("http.port"), path);
    EXPECT_EQ(c.source("http.bind"), "default");
}

TEST_F(config_test, dotenv_in_the_working_directory_is_named_dot_env) {
    fs::path before = fs::current_path();
    fs::current_path(_dir);
    write(".env", "CLISONIX_HTTP_BODY_LIMIT=8XB\n");
    _from.dotenv = ".env";
    std::string message = load_error();
    fs::current_path(before);
    EXPECT_EQ(message,
              "config: http.body_limit = \"8XB\" (from .env): must be a size such as 512, 16KiB, "
              "8MiB, 1GiB");
}

TEST_F(config_test, missing_dotenv_is_not_an_error) {
    _from.dotenv = (_dir / "absent.env").string();
    EXPECT_EQ(load_ok().get_int("http.port"), 8030);
}

TEST_F(config_test, environment) {
    _from.environment = {{"CLISONIX_HTTP_PORT", "9200"},
                         {"CLISONIX_LOG_FILE", "off"},
                         {"CLISONIX_HTTP_DRAIN_TIMEOUT", "0"},
                         {"CLISONIX_CONFIG", "/somewhere.toml"},
                         {"CLISONIX_ADMIN_PASSWORD", "hunter2"},
                         {"CLISONIX_TEST_WHATEVER", "x"},
                         {"PATH", "/usr/bin"}};
    config c = load_ok();
    EXPECT_EQ(c.get_int("http.port"), 9200);
    EXPECT_FALSE(c.get_bool("log.file"));
    EXPECT_EQ(c.get_int("http.drain_timeout"), 0);
    EXPECT_EQ(c.source("http.port"), "CLISONIX_HTTP_PORT");
    EXPECT_EQ(c.source("log.file"), "CLISONIX_LOG_FILE");
}

TEST_F(config_test, from_process_environment_takes_only_clisonix_variables) {
    ASSERT_EQ(setenv("CLISONIX_TEST_PROCESS_ENV", "42", 1), 0);
    auto env = from_process_environment();
    unsetenv("CLISONIX_TEST_PROCESS_ENV");
    EXPECT_EQ(env["CLISONIX_TEST_PROCESS_ENV"], "42");
    for (const auto& [name, value] : env)
        EXPECT_TRUE(name.starts_with("CLISONIX_")) << name;
}

TEST_F(config_test, flags_apply_in_order_and_the_last_wins) {
    flag("http.port", "9300");
    flag("data.dir", "/a", "--data");
    flag("http.port", "9301", "--port");
    config c = load_ok();
    EXPECT_EQ(c.get_int("http.port"), 9301);
    EXPECT_EQ(c.source("http.port"), "--port");
    EXPECT_EQ(c.get_string("data.dir"), "/a");
    EXPECT_EQ(c.source("data.dir"), "--data");
}

TEST_F(config_test, precedence_flags_env_dotenv_file_default) {
    std::string file =
        use_file("[http]\nport = 1001\nthreads = 2\nmax_connections = 5\nbody_limit = \"1MiB\"\n");
    std::string dotenv = use_dotenv(
        "CLISONIX_HTTP_PORT=1002\nCLISONIX_HTTP_THREADS=3\nCLISONIX_HTTP_MAX_CONNECTIONS=6\n");
    _from.environment = {{"CLISONIX_HTTP_PORT", "1003"}, {"CLISONIX_HTTP_THREADS", "4"}};
    flag("http.port", "1004");
    config c = load_ok();
    EXPECT_EQ(c.get_int("http.port"), 1004);
    EXPECT_EQ(c.source("http.port"), "--set");
    EXPECT_EQ(c.get_int("http.threads"), 4);
    EXPECT_EQ(c.source("http.threads"), "CLISONIX_HTTP_THREADS");
    EXPECT_EQ(c.get_int("http.max_connections"), 6);
    EXPECT_EQ(c.source("http.max_connections"), dotenv);
    EXPECT_EQ(c.get_int("http.body_limit"), 1024 * 1024);
    EXPECT_EQ(c.source("http.body_limit"), "file " + file);
    EXPECT_EQ(c.get_int("log.keep_days"), 14);
    EXPECT_EQ(c.source("log.keep_days"), "default");
}

TEST_F(config_test, out_of_range_from_environment) {
    _from.environment = {{"CLISONIX_HTTP_PORT", "70000"}};
    auto c = load(_from);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message,
              "config: http.port = 70000 (from CLISONIX_HTTP_PORT): must be 1..65535");
    EXPECT_EQ(c.error().code, "invalid_config");
    EXPECT_EQ(c.error().field, "http.port");
}

TEST_F(config_test, ask_time_zone_is_a_zone_of_the_system_tz_database) {
    EXPECT_EQ(load_ok().get_string("ask.time_zone"), "");  // the machine's zone
    flag("ask.time_zone", "Europe/Berlin");
    EXPECT_EQ(load_ok().get_string("ask.time_zone"), "Europe/Berlin");
    _from.flags.clear();
    flag("ask.time_zone", "Mars/Olympus");
    EXPECT_EQ(load_error(),
              "config: ask.time_zone = \"Mars/Olympus\" (from --set): no time zone "
              "\"Mars/Olympus\" in the system's tz database");
    _from.flags.clear();
    flag("ask.time_zone", "../../etc/passwd");
    EXPECT_EQ(load_error(),
              "config: ask.time_zone = \"../../etc/passwd\" (from --set): expected an IANA "
              "time zone name such as Europe/Berlin");
}

TEST_F(config_test, raw_retention_by_measurement_is_a_checked_list_of_durations) {
    use_file("[storage]\nraw_retention_by_measurement = \" telemetry=7d, vibration = 36h,x=0\"\n");
    config c = load_ok();
    std::vector<std::pair<std::string, int64_t>> list;
    EXPECT_EQ(parse_duration_list(c.get_string("storage.raw_retention_by_measurement"), list), "");
    std::vector<std::pair<std::string, int64_t>> want = {
        {"telemetry", 7 * 86'400'000LL}, {"vibration", 36 * 3'600'000LL}, {"x", 0}};
    EXPECT_EQ(list, want);
    EXPECT_EQ(parse_duration_list("", list), "");
    EXPECT_TRUE(list.empty());

    _from.file.clear();
    flag("storage.raw_retention_by_measurement", "telemetry=7d,vibration");
    EXPECT_EQ(load_error(),
              "config: storage.raw_retention_by_measurement = \"telemetry=7d,vibration\" (from "
              "--set): item \"vibration\" must be name=duration, e.g. telemetry=7d");
    _from.flags.clear();
    flag("storage.raw_retention_by_measurement", "a=2x");
    EXPECT_EQ(load_error(),
              "config: storage.raw_retention_by_measurement = \"a=2x\" (from --set): \"a\": must "
              "be a duration such as 250ms, 10s, 5m, 2h, 7d");
    _from.flags.clear();
    flag("storage.raw_retention_by_measurement", "a=1d,a=2d");
    EXPECT_EQ(load_error(),
              "config: storage.raw_retention_by_measurement = \"a=1d,a=2d\" (from "
              "--set): \"a\" is listed twice");
    _from.flags.clear();
    flag("storage.raw_retention_by_measurement", "=1d");
    auto c2 = load(_from);
    ASSERT_FALSE(c2);
    EXPECT_EQ(c2.error().field, "storage.raw_retention_by_measurement");
}

TEST_F(config_test, integer_too_large_for_int64_is_out_of_range) {
    flag("http.port", "99999999999999999999999");
    EXPECT_EQ(load_error(),
              "config: http.port = 99999999999999999999999 (from --set): must be 1..65535");
}

TEST_F(config_test, bad_integer_from_flag) {
    flag("http.port", "abc");
    EXPECT_EQ(load_error(), "config: http.port = \"abc\" (from --set): must be an integer");
}

TEST_F(config_test, bad_choice_from_file) {
    std::string path = use_file("[log]\nlevel = \"loud\"\n");
    EXPECT_EQ(load_error(), "config: log.level = \"loud\" (from file " + path +
                                "): must be one of trace, debug, info, warn, error");
}

TEST_F(config_test, unknown_key_from_flag_with_suggestion) {
    flag("htp.port", "1");
    EXPECT_EQ(load_error(), "config: htp.port (from --set): unknown key (did you mean http.port?)");
    _from.flags.clear();
    flag("nothing.like.it", "1");
    EXPECT_EQ(load_error(), "config: nothing.like.it (from --set): unknown key");
}

TEST_F(config_test, bad_duration_from_environment) {
    _from.environment = {{"CLISONIX_HTTP_HEADER_TIMEOUT", "10 parsecs"}};
    EXPECT_EQ(load_error(),
              "config: http.header_timeout = \"10 parsecs\" (from CLISONIX_HTTP_HEADER_TIMEOUT): "
              "must be a duration such as 250ms, 10s, 5m, 2h, 7d");
}

TEST_F(config_test, size_and_duration_ranges_are_printed_in_units) {
    flag("http.header_limit", "2MiB");
    EXPECT_EQ(load_error(),
              "config: http.header_limit = \"2MiB\" (from --set): must be 1KiB..1MiB");
    _from.flags.clear();
    flag("http.header_timeout", "50", "--header-timeout");
    EXPECT_EQ(load_error(),
              "config: http.header_timeout = 50 (from --header-timeout): must be 100ms..10m");
    _from.flags.clear();
    flag("http.drain_timeout", "11m");
    EXPECT_EQ(load_error(), "config: http.drain_timeout = \"11m\" (from --set): must be 0ms..10m");
}

TEST_F(config_test, bad_boolean_from_dotenv) {
    std::string path = use_dotenv("CLISONIX_LOG_FILE=maybe\n");
    EXPECT_EQ(load_error(),
              "config: log.file = \"maybe\" (from " + path + "): must be true or false");
}

TEST_F(config_test, wrong_toml_types) {
    std::string path = use_file("[http]\nport = true\n");
    EXPECT_EQ(load_error(),
              "config: http.port = true (from file " + path + "): must be an integer");
    use_file("[http]\nport = 80.5\n");
    EXPECT_EQ(load_error(),
              "config: http.port = 80.5 (from file " + path + "): must be an integer");
    use_file("[http.port]\nx = 1\n");
    EXPECT_EQ(load_error(), "config: http.port (from file " + path + "): must be an integer");
    use_file("[log]\nfile = 1\n");
    EXPECT_EQ(load_error(), "config: log.file = 1 (from file " + path + "): must be true or false");
    use_file("[data]\ndir = 5\n");
    EXPECT_EQ(load_error(), "config: data.dir = 5 (from file " + path + "): must be a string");
    use_file("[http]\nheader_timeout = false\n");
    EXPECT_EQ(load_error(), "config: http.header_timeout = false (from file " + path +
                                "): must be a duration such as 250ms, 10s, 5m, 2h, 7d");
}

TEST_F(config_test, secrets_are_never_printed_in_errors) {
    std::string path = use_file("[meta]\nurl = 12345\n");
    EXPECT_EQ(load_error(),
              "config: meta.url = <redacted> (from file " + path + "): must be a string");
}

TEST_F(config_test, unknown_keys_in_file) {
    std::string path = use_file("[http]\nprot = 1\n");
    EXPECT_EQ(load_error(),
              "config: http.prot (from file " + path + "): unknown key (did you mean http.port?)");
    use_file("[lwm2m]\nport = 5683\n");
    EXPECT_EQ(load_error(), "config: lwm2m.port (from file " + path + "): unknown key");
    use_file("[lwm2m]\n");
    EXPECT_EQ(load_error(), "config: lwm2m (from file " + path + "): unknown key");
    use_file("http = 5\n");
    EXPECT_EQ(load_error(), "config: http (from file " + path + "): unknown key");
}

TEST_F(config_test, unknown_names_in_environment_and_dotenv) {
    _from.environment = {{"CLISONIX_HTTP_PROT", "1"}};
    EXPECT_EQ(load_error(),
              "config: CLISONIX_HTTP_PROT (from environment): unknown key (did you mean "
              "CLISONIX_HTTP_PORT?)");
    _from.environment.clear();
    std::string path = use_dotenv("CLISONIX_NOTHING_LIKE_IT=1\n");
    EXPECT_EQ(load_error(), "config: CLISONIX_NOTHING_LIKE_IT (from " + path + "): unknown key");
}

TEST_F(config_test, malformed_dotenv_lines_name_file_and_line) {
    std::string path = use_dotenv("# ok\nCLISONIX_HTTP_PORT=1\nCLISONIX_HTTP_PORT\n");
    EXPECT_EQ(load_error(), "config: " + path + ":3: malformed line, expected CLISONIX_NAME=value");
    use_dotenv("CLISONIX_META_URL=\"postgres://secret\n");
    EXPECT_EQ(load_error(), "config: " + path + ":1: unterminated quote");
    use_dotenv("\n\nexport CLISONIX_DATA_DIR='a' b\n");
    EXPECT_EQ(load_error(), "config: " + path + ":3: unexpected text after the closing quote");
}

TEST_F(config_test, toml_syntax_error_is_one_line_with_position) {
    std::string path = use_file("[http]\nport = = 3\n");
    std::string message = load_error();
    EXPECT_EQ(message, "config: " + path +
                           ":2:8: Error while parsing value: could not determine value type");
    EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST_F(config_test, missing_config_file_is_an_error) {
    _from.file = (_dir / "absent.toml").string();
    EXPECT_EQ(load_error(), "config: " + _from.file +
                                ": cannot read the config file (no such file or directory)");
}

TEST_F(config_test, show_prints_toml_literals_canonical_units_and_sources) {
    _from.environment = {{"CLISONIX_META_URL", "postgres://u:pw@db/x"},
                         {"CLISONIX_HTTP_HEADER_LIMIT", "16384"},
                         {"CLISONIX_HTTP_IDLE_TIMEOUT", "120000"},
                         {"CLISONIX_HTTP_DRAIN_TIMEOUT", "0s"}};
    flag("data.dir", "./other \"data\"", "--data");
    const std::string out = load_ok().show();
    // One line per key, in schema order.
    size_t lines = static_cast<size_t>(std::count(out.begin(), out.end(), '\n'));
    EXPECT_EQ(lines, schema().size());
    EXPECT_TRUE(
        out.starts_with("http.bind = \"0.0.0.0\"  # from default\n"
                        "http.port = 8030  # from default\n"
                        "http.threads = 0  # from default\n"
                        "http.header_limit = \"16KiB\"  # from CLISONIX_HTTP_HEADER_LIMIT\n"
                        "http.body_limit = \"8MiB\"  # from default\n"
                        "http.header_timeout = \"10s\"  # from default\n"
                        "http.idle_timeout = \"2m\"  # from CLISONIX_HTTP_IDLE_TIMEOUT\n"
                        "http.drain_timeout = \"0ms\"  # from CLISONIX_HTTP_DRAIN_TIMEOUT\n"
                        "http.max_connections = 10000  # from default\n"))
        << out;
    for (auto line :
         {"\ndata.dir = \"./other \\\"data\\\"\"  # from --data\n",
          "\nlog.level = \"info\"  # from default\n", "\nlog.file = true  # from default\n",
          "\nlog.keep_days = 14  # from default\n",
          "\nmeta.url = \"<redacted>\"  # from CLISONIX_META_URL\n"})
        EXPECT_NE(out.find(line), std::string::npos) << line << " missing in\n" << out;
    EXPECT_EQ(out.find("pw@"), std::string::npos);
}

TEST_F(config_test, show_prints_an_unset_secret_as_empty) {
    std::string out = load_ok().show();
    EXPECT_NE(out.find("\nmeta.url = \"\"  # from default\n"), std::string::npos) << out;
}

TEST_F(config_test, reference_markdown_has_one_row_per_key) {
    std::string md = reference_markdown();
    EXPECT_TRUE(
        md.starts_with("| Key | Type | Default | Allowed | Env | Description |\n"
                       "|---|---|---|---|---|---|\n"));
    EXPECT_NE(md.find("\n| `http.port` | integer | `8030` | 1..65535 | `CLISONIX_HTTP_PORT` | "
                      "HTTP port for the API, dashboard and metrics |\n"),
              std::string::npos)
        << md;
    EXPECT_NE(md.find("\n| `http.header_timeout` | duration | `10s` | 100ms..10m | "
                      "`CLISONIX_HTTP_HEADER_TIMEOUT` | Time a client has to send the request "
                      "header |\n"),
              std::string::npos)
        << md;
    EXPECT_NE(md.find("\n| `log.level` | enumeration | `info` | `trace`, `debug`, `info`, `warn`, "
                      "`error` | `CLISONIX_LOG_LEVEL` | Lowest level written |\n"),
              std::string::npos)
        << md;
    EXPECT_NE(
        md.find("\n| `meta.url` | string (secret) | *(empty)* | text | `CLISONIX_META_URL` |"),
        std::string::npos)
        << md;
    EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 2 + static_cast<long>(schema().size()));
    EXPECT_EQ(md, reference_markdown());
}

}  // namespace
}  // namespace clisonix::config
