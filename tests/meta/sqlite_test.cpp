// The contract on SQLite, plus what only SQLite has: the file, its pragmas, the URL forms.
#include <gmock/gmock.h>
#include <stdlib.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "meta/contract.h"

namespace clisonix::meta::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class temp_dir {
public:
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "clisonix-meta-XXXXXX").string();
        if (mkdtemp(pattern.data())) _path = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        if (!_path.empty()) fs::remove_all(_path, ec);
    }
    const fs::path& path() const { return _path; }

private:
    fs::path _path;
};

// SQLite's empty database is a data dir without meta.db; the URL "" puts it there.
class sqlite_database final : public test_database {
public:
    std::string url() const override { return ""; }
    std::string data_dir() const override { return (_dir.path() / "data").string(); }

private:
    temp_dir _dir;
};

INSTANTIATE_TEST_SUITE_P(sqlite, contract,
                         ::testing::Values(backend_factory{
                             "sqlite",
                             []() -> result<std::unique_ptr<test_database>> {
                                 return std::unique_ptr<test_database>(
                                     std::make_unique<sqlite_database>());
                             }}),
                         factory_name);

std::string pragma(store& s, std::string_view name) {
    auto r = s.query("PRAGMA " + std::string(name));
    if (!r || r->data.empty()) return "?";
    const auto& v = r->data[0][0];
    if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (auto* t = std::get_if<std::string>(&v)) return *t;
    return "?";
}

TEST(meta_sqlite, default_url_puts_a_wal_file_in_the_data_dir) {
    temp_dir dir;
    const auto data = dir.path() / "not" / "yet" / "there";
    auto s = open("", data.string());
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ((*s)->backend(), "sqlite");
    EXPECT_TRUE(fs::is_regular_file(data / "meta.db"));
    EXPECT_EQ(pragma(**s, "journal_mode"), "wal");
    EXPECT_EQ(pragma(**s, "synchronous"), "2");  // FULL
    EXPECT_EQ(pragma(**s, "foreign_keys"), "1");
    EXPECT_EQ(pragma(**s, "busy_timeout"), "5000");
    EXPECT_TRUE((*s)->ping().ok());
}

TEST(meta_sqlite, url_forms_name_the_file) {
    temp_dir dir;
    const auto abs = dir.path() / "abs" / "m.db";
    auto a = open("sqlite://" + abs.string(), "/nonexistent");
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_TRUE(fs::is_regular_file(abs));

    const auto cwd = fs::current_path();
    fs::current_path(dir.path());
    auto r = open("sqlite:rel/m.db", "/nonexistent");
    fs::current_path(cwd);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(fs::is_regular_file(dir.path() / "rel" / "m.db"));
}

TEST(meta_sqlite, unknown_scheme_is_a_config_error_listing_the_forms) {
    for (const auto* url : {"mysql://u:pw@h/db", "sqlite://relative.db", "sqlite:", "meta.db"}) {
        auto s = open(url, "/nonexistent");
        ASSERT_FALSE(s.ok()) << url;
        EXPECT_EQ(s.error().code, "invalid_config");
        EXPECT_EQ(s.error().field, "meta.url");
        EXPECT_THAT(s.error().message, HasSubstr("sqlite:///"));
        EXPECT_THAT(s.error().message, HasSubstr("postgres://"));
        EXPECT_THAT(s.error().message, Not(HasSubstr(":pw@")));
    }
}

TEST(meta_sqlite, unwritable_location_is_an_error) {
    temp_dir dir;
    const auto file = dir.path() / "file";
    { std::ofstream(file) << "x"; }
    auto s = open("", (file / "sub").string());
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.error().message, HasSubstr("sqlite"));
}

TEST(meta_sqlite, one_statement_per_call_and_every_parameter_bound) {
    temp_dir dir;
    auto s = open("", dir.path().string());
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_FALSE((*s)->execute("DELETE FROM settings; DELETE FROM settings").ok());
    EXPECT_TRUE((*s)->execute("DELETE FROM settings;").ok());
    auto unbound = (*s)->query("SELECT $1, $2", std::array<value, 1>{int64_t{1}});
    ASSERT_FALSE(unbound.ok());
    EXPECT_THAT(unbound.error().message, HasSubstr("$1..$1"));
}

TEST(meta_url, redact_hides_passwords) {
    EXPECT_EQ(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:****@h:5432/db");
    EXPECT_EQ(redact_url("postgresql://u:p@ss@h/db"), "postgresql://u:****@h/db");
    EXPECT_EQ(redact_url("postgres://u@h:5432/db"), "postgres://u@h:5432/db");
    EXPECT_EQ(redact_url("postgres://h:5432/db?password=secret&sslmode=require"),
              "postgres://h:5432/db?password=****&sslmode=require");
    EXPECT_EQ(redact_url("postgres://h/db?sslmode=disable&password=secret"),
              "postgres://h/db?sslmode=disable&password=****");
    EXPECT_EQ(redact_url("host=h password=secret dbname=d"), "host=h password=**** dbname=d");
    EXPECT_EQ(redact_url("sqlite:///var/lib/clisonix/meta.db"),
              "sqlite:///var/lib/clisonix/meta.db");
    EXPECT_EQ(redact_url(""), "");
}

TEST(meta_migrations, product_list_starts_with_settings) {
    auto list = migrations();
    ASSERT_FALSE(list.empty());
    EXPECT_EQ(list[0].version, 1);
    EXPECT_EQ(list[0].name, "settings");
    for (size_t i = 1; i < list.size(); ++i)
        EXPECT_GT(list[i].version, list[i - 1].version);
}

}  // namespace
}  // namespace clisonix::meta::testing
