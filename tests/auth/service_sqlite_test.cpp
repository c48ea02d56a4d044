// The auth core on SQLite, plus what needs no database server: options from config, the JWT
// key file, and the `clisonix user` commands.
#include <sys/stat.h>

#include <gmock/gmock.h>

#include <sstream>

#include "service_contract.h"

namespace clisonix::auth::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class sqlite_database final : public test_database {
public:
    std::string url() const override { return ""; }
    std::string data_dir() const override { return _dir.str(); }

private:
    clisonix::testing::temp_dir _dir{"clisonix-auth-sqlite"};
};

INSTANTIATE_TEST_SUITE_P(sqlite, service_contract,
                         ::testing::Values(backend{"sqlite",
                                                   []() -> result<std::unique_ptr<test_database>> {
                                                       return std::unique_ptr<test_database>(
                                                           std::make_unique<sqlite_database>());
                                                   }}),
                         backend_name);

result<config::config> load(const std::string& data_dir, std::vector<std::string> sets = {}) {
    config::sources src;
    src.dotenv = "";
    src.flags.push_back({"data.dir", data_dir, "--data"});
    for (auto& s : sets) {
        auto eq = s.find('=');
        src.flags.push_back({s.substr(0, eq), s.substr(eq + 1), "--set"});
    }
    return config::load(src);
}

TEST(auth_options, defaults_follow_the_config_schema) {
    clisonix::testing::temp_dir dir;
    auto cfg = load(dir.str());
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    auto o = options_from(*cfg);
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_EQ(o->argon2_memory_kib, 19456u);
    EXPECT_EQ(o->argon2_iterations, 2u);
    EXPECT_EQ(o->password_min_length, 12u);
    EXPECT_EQ(o->access_ttl, std::chrono::minutes(15));
    EXPECT_EQ(o->refresh_ttl, std::chrono::hours(24 * 7));
    EXPECT_EQ(o->issuer, "clisonix");
    EXPECT_EQ(o->audience, "clisonix-api");
    EXPECT_EQ(o->login_max_failures, 5);
    EXPECT_EQ(o->login_lockout, std::chrono::minutes(15));
    EXPECT_EQ(o->jwt_secret.size(), 32u);
}

TEST(auth_options, generated_key_is_kept_in_the_data_dir_with_mode_0600) {
    clisonix::testing::temp_dir dir;
    auto cfg = load(dir.str());
    ASSERT_TRUE(cfg.ok());
    auto first = options_from(*cfg);
    ASSERT_TRUE(first.ok()) << first.error().message;
    const fs::path key = dir.path() / "jwt.key";
    struct stat st {};
    ASSERT_EQ(::stat(key.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto second = options_from(*cfg);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->jwt_secret, first->jwt_secret);  // sessions survive a restart

    clisonix::testing::write_file(key, "garbage\n");
    auto broken = options_from(*cfg);
    ASSERT_FALSE(broken.ok());
    EXPECT_THAT(broken.error().message, HasSubstr("jwt.key"));
}

TEST(auth_options, a_configured_secret_wins_and_must_be_long) {
    clisonix::testing::temp_dir dir;
    auto cfg = load(dir.str(), {"auth.jwt_secret=" + std::string(40, 's'),
                                "auth.login_max_failures=7", "auth.access_ttl=5m"});
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    auto o = options_from(*cfg);
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->jwt_secret, std::string(40, 's'));
    EXPECT_EQ(o->login_max_failures, 7);
    EXPECT_EQ(o->access_ttl, std::chrono::minutes(5));
    EXPECT_FALSE(fs::exists(dir.path() / "jwt.key"));

    auto short_cfg = load(dir.str(), {"auth.jwt_secret=short"});
    ASSERT_TRUE(short_cfg.ok());
    auto bad = options_from(*short_cfg);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, "invalid_config");
    EXPECT_EQ(bad.error().message,
              "config: auth.jwt_secret (from --set): must be at least 32 characters");
    EXPECT_THAT(bad.error().message, ::testing::Not(HasSubstr("short")));  // a secret
}

class user_cli : public ::testing::Test {
protected:
    void SetUp() override {
        auto s = meta::open("", dir.str());
        ASSERT_TRUE(s.ok()) << s.error().message;
        store = std::move(*s);
    }
    int run(user_command cmd) {
        out.str("");
        err.str("");
        return run_user_command(*store, fast_options(), cmd, out, err);
    }
    clisonix::testing::temp_dir dir;
    std::unique_ptr<meta::store> store;
    std::ostringstream out, err;
};

TEST_F(user_cli, add_list_passwd_disable) {
    EXPECT_EQ(run({"add", "alice", "operator", std::string("alice's password")}), 0) << err.str();
    EXPECT_EQ(out.str(), "created user alice (operator)\n");
    EXPECT_EQ(run({"add", "bob", "viewer", std::nullopt}), 0);
    EXPECT_THAT(out.str(), ::testing::MatchesRegex("created user bob \\(viewer\\)\npassword: "
                                                   "[A-Za-z0-9_-]{24}\n"));
    const std::string bob_password = out.str().substr(out.str().rfind(' ') + 1, 24);

    EXPECT_EQ(run({"list", "", "", std::nullopt}), 0);
    EXPECT_EQ(out.str(),
              "USERNAME                ROLE      STATUS\n"
              "alice                   operator  enabled\n"
              "bob                     viewer    enabled\n");

    EXPECT_EQ(run({"passwd", "alice", "", std::string("a newer password")}), 0);
    EXPECT_EQ(out.str(), "changed the password of alice\n");
    EXPECT_EQ(run({"disable", "bob", "", std::nullopt}), 0);
    EXPECT_EQ(out.str(), "disabled user bob\n");

    auth_service s(*store, fast_options());
    EXPECT_TRUE(s.login("alice", "a newer password", "local").ok());
    EXPECT_EQ(s.login("bob", bob_password, "local").error().code, "invalid_credentials");
    EXPECT_EQ(run({"enable", "bob", "", std::nullopt}), 0);
    EXPECT_TRUE(s.login("bob", bob_password, "local").ok());

    audit_filter f;
    f.actor = "cli";
    EXPECT_EQ(s.audit_log(f)->size(), 5u);  // add, add, passwd, disable, enable
}

TEST_F(user_cli, usage_errors_exit_2_with_one_line) {
    EXPECT_EQ(run({"frobnicate", "alice", "", std::nullopt}), 2);
    EXPECT_EQ(err.str(),
              "user: unknown action \"frobnicate\"; use add, list, passwd, disable or enable\n");
    EXPECT_EQ(run({"add", "", "viewer", std::nullopt}), 2);
    EXPECT_EQ(err.str(), "user add: a username is required\n");
    EXPECT_EQ(run({"add", "alice", "root", std::string("long enough pw")}), 2);
    EXPECT_EQ(err.str(), "user: role must be one of admin, operator, viewer\n");
    EXPECT_EQ(run({"add", "alice", "viewer", std::string("short")}), 2);
    EXPECT_EQ(err.str(), "user: The password must be at least 12 characters long\n");
    EXPECT_EQ(run({"add", "bad/name", "viewer", std::string("long enough pw")}), 2);
    EXPECT_EQ(run({"passwd", "nobody", "", std::string("long enough pw")}), 2);
    EXPECT_EQ(err.str(), "user: No such user: nobody\n");
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM users"), 0);
}

}  // namespace
}  // namespace clisonix::auth::testing
