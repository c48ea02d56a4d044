// The data directory at rest, through the real binary: nothing in it readable by group or
// others (also a directory left loose by an older version), and channel secrets in meta.db
// encrypted, read back as a local user with the sqlite3 CLI, while webhooks stay signed with
// the right secret across restarts, plaintext secrets from before included.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "notify/receiver.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::hmac_hex;
using testing::receiver;
using testing::server_process;
namespace json = boost::json;
namespace fs = std::filesystem;

const std::vector<std::string> json_header{"Content-Type: application/json"};

std::vector<std::string> flags() {
    return {"--set", "analytics.detector=off",        "--set", "mqtt.enabled=false",
            "--set", "notify.webhook_allow=127.0.0.1"};
}

// Paths under `dir` (and `dir`) with any group or other permission bit, as "path mode".
std::vector<std::string> loose_paths(const fs::path& dir) {
    std::vector<std::string> loose;
    auto check = [&](const fs::path& p) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
        if ((st.st_mode & 077) != 0) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
            loose.push_back(p.string() + " " + mode);
        }
    };
    check(dir);
    for (const auto& e : fs::recursive_directory_iterator(dir))
        check(e.path());
    return loose;
}

std::string sqlite(const fs::path& db, const std::string& sql) {
    testing::process p({"/usr/bin/sqlite3", db.string(), sql});
    EXPECT_EQ(p.wait(10s), 0) << p.err();
    std::string out = p.out();
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

void stop(server_process& srv) {
    srv.proc().signal(SIGTERM);
    ASSERT_EQ(srv.proc().wait(20s), 0);
}

// The test event of `channel` arrives signed with `secret`.
void expect_signed(server_process& srv, receiver& rx, const std::string& channel,
                   const std::string& secret) {
    const size_t before = rx.count();
    ASSERT_EQ(srv.post("/api/v1/channels/" + channel + "/test", "").status, 202);
    ASSERT_TRUE(rx.wait_for(before + 1, 10s));
    auto got = rx.requests().back();
    EXPECT_EQ(got.header("x-clisonix-signature"), "sha256=" + hmac_hex(secret, got.body));
}

TEST(data_at_rest_test, nothing_in_the_data_directory_is_readable_by_others) {
    receiver rx;
    auto first = std::make_unique<server_process>(flags());
    ASSERT_EQ(
        first
            ->post("/api/v1/channels",
                   R"({"name":"ops","type":"webhook","url":")" + rx.url() + R"(","secret":"k3y"})",
                   json_header)
            .status,
        201);
    ASSERT_EQ(first->post("/api/v1/write", "m,device=d1 v=1", {}).status, 204);
    EXPECT_TRUE(fs::exists(first->data_path() / "meta.db"));
    EXPECT_TRUE(fs::exists(first->data_path() / "logs"));
    EXPECT_EQ(loose_paths(first->data_path()), std::vector<std::string>{});
    stop(*first);
    EXPECT_EQ(loose_paths(first->data_path()), std::vector<std::string>{});

    // A directory left readable (an older version, a copy with umask 022) is tightened at
    // the next start, and the log says what changed.
    const fs::path data = first->data_path();
    fs::permissions(data, fs::perms(0755));
    fs::permissions(data / "meta.db", fs::perms(0644));
    fs::permissions(data / "logs", fs::perms(0755));
    server_process second(server_process::on{first->data()}, flags());
    EXPECT_EQ(loose_paths(data), std::vector<std::string>{});
    const std::string logs = testing::read_logs(data);
    EXPECT_NE(logs.find("data directory permissions tightened"), std::string::npos);
    EXPECT_NE(logs.find("\"from\":\"0644\",\"to\":\"0600\""), std::string::npos) << logs;
}

TEST(data_at_rest_test, channel_secrets_are_encrypted_and_still_sign_after_a_restart) {
    receiver rx;
    const std::string secret = "plain-webhook-secret-7f3a";
    auto first = std::make_unique<server_process>(flags());
    ASSERT_EQ(first
                  ->post("/api/v1/channels",
                         R"({"name":"ops","type":"webhook","url":")" + rx.url() +
                             R"(","secret":")" + secret + R"("})",
                         json_header)
                  .status,
              201);
    const fs::path db = first->data_path() / "meta.db";
    const std::string stored = sqlite(db, "SELECT secret FROM notification_channels");
    EXPECT_TRUE(stored.starts_with("enc:v1:")) << stored;
    EXPECT_EQ(stored.find(secret), std::string::npos);
    // Nor anywhere in the database files (the WAL included).
    for (const char* name : {"meta.db", "meta.db-wal"}) {
        if (!fs::exists(first->data_path() / name)) continue;
        EXPECT_EQ(testing::read_file(first->data_path() / name).find(secret), std::string::npos)
            << name;
    }
    expect_signed(*first, rx, "ops", secret);
    stop(*first);

    server_process second(server_process::on{first->data()}, flags());
    expect_signed(second, rx, "ops", secret);
    // The key lives beside meta.db, readable by the server's user only.
    struct stat st {};
    ASSERT_EQ(::stat((first->data_path() / "notify.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A secret stored in plaintext by a version before encryption keeps working and is
// encrypted at the next start.
TEST(data_at_rest_test, plaintext_secrets_from_before_are_migrated) {
    receiver rx;
    auto first = std::make_unique<server_process>(flags());
    ASSERT_EQ(first
                  ->post("/api/v1/channels",
                         R"({"name":"legacy","type":"webhook","url":")" + rx.url() +
                             R"(","secret":"to-be-replaced"})",
                         json_header)
                  .status,
              201);
    stop(*first);
    const fs::path db = first->data_path() / "meta.db";
    sqlite(db,
           "UPDATE notification_channels SET secret = 'old-plain-secret' WHERE name = "
           "'legacy'");
    ASSERT_EQ(sqlite(db, "SELECT secret FROM notification_channels"), "old-plain-secret");

    server_process second(server_process::on{first->data()}, flags());
    const std::string stored = sqlite(db, "SELECT secret FROM notification_channels");
    EXPECT_TRUE(stored.starts_with("enc:v1:")) << stored;
    expect_signed(second, rx, "legacy", "old-plain-secret");
    stop(second);  // the log is complete once the server has stopped
    EXPECT_NE(testing::read_logs(first->data_path()).find("channel secrets encrypted at rest"),
              std::string::npos);
}

// With another key (notify.key lost, notify.secret_key changed) a sealed secret does not
// open: the delivery fails and says so, rather than going out unsigned.
TEST(data_at_rest_test, a_secret_sealed_under_another_key_fails_the_delivery_loudly) {
    receiver rx;
    auto first = std::make_unique<server_process>(flags());
    ASSERT_EQ(
        first
            ->post("/api/v1/channels",
                   R"({"name":"ops","type":"webhook","url":")" + rx.url() + R"(","secret":"k3y"})",
                   json_header)
            .status,
        201);
    stop(*first);
    auto other_key = flags();
    other_key.insert(other_key.end(),
                     {"--set", "notify.secret_key=another-key-of-at-least-32-characters"});
    server_process second(server_process::on{first->data()}, other_key);
    ASSERT_EQ(second.post("/api/v1/channels/ops/test", "").status, 202);
    std::string last_error;
    for (int i = 0; i < 500 && last_error.empty(); ++i) {
        const json::value page = json::parse(second.get("/api/v1/notifications").body);
        for (const auto& n : page.at("notifications").as_array())
            last_error = std::string(n.at("last_error").as_string());
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_NE(last_error.find("does not open with this server's key"), std::string::npos)
        << last_error;
    EXPECT_EQ(rx.count(), 0u);
}

}  // namespace
}  // namespace clisonix
