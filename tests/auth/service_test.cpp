// The auth core on a metadata store: users, sessions, keys, device tokens and the audit log.
#include <gmock/gmock.h>

#include <chrono>
#include <thread>

#include "auth/crypto.h"
#include "service_contract.h"

namespace clisonix::auth::testing {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> actions(auth_service& s, const audit_filter& f = {}) {
    auto log = s.audit_log(f);
    EXPECT_TRUE(log.ok()) << log.error().message;
    std::vector<std::string> out;
    if (log) {
        for (const auto& e : *log)
            out.push_back(e.action + " " + e.target);
    }
    return out;
}

TEST_P(service_contract, first_start_creates_admin_with_a_generated_password_once) {
    auto made = service->ensure_admin(std::nullopt);
    ASSERT_TRUE(made.ok()) << made.error().message;
    ASSERT_TRUE(made->has_value());
    EXPECT_EQ((*made)->size(), 24u);
    auto admin = service->get_user("admin");
    ASSERT_TRUE(admin.ok());
    EXPECT_EQ(admin->role, "admin");
    EXPECT_TRUE(service->login("admin", **made, "127.0.0.1").ok());
    // The hash is stored, never the password.
    auto stored = store->query("SELECT password_hash FROM users");
    ASSERT_TRUE(stored.ok());
    EXPECT_THAT(std::get<std::string>(stored->data[0][0]), ::testing::StartsWith("$argon2id$"));
    EXPECT_EQ(std::get<std::string>(stored->data[0][0]).find(**made), std::string::npos);

    auto again = service->ensure_admin(std::nullopt);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->has_value());
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM users"), 1);
}

TEST_P(service_contract, first_start_uses_the_given_password_and_checks_it) {
    auto short_one = service->ensure_admin("short");
    ASSERT_FALSE(short_one.ok());
    EXPECT_EQ(short_one.error().code, "invalid_argument");
    EXPECT_EQ(short_one.error().field, "CLISONIX_ADMIN_PASSWORD");
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM users"), 0);
    auto made = service->ensure_admin("a password from the env");
    ASSERT_TRUE(made.ok());
    EXPECT_FALSE(made->has_value());
    EXPECT_TRUE(service->login("admin", "a password from the env", "127.0.0.1").ok());
}

TEST_P(service_contract, users_are_created_updated_and_deleted_with_audit) {
    ASSERT_TRUE(service->create_user("alice", "alice's password", "operator", by).ok());
    auto dup = service->create_user("alice", "alice's password", "viewer", by);
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().code, "conflict");
    EXPECT_EQ(dup.error().message, "User alice already exists");

    user_update change;
    change.role = "viewer";
    change.disabled = true;
    auto u = service->update_user("alice", change, by);
    ASSERT_TRUE(u.ok()) << u.error().message;
    EXPECT_EQ(u->role, "viewer");
    EXPECT_TRUE(u->disabled);
    auto login = service->login("alice", "alice's password", "10.0.0.2");
    ASSERT_FALSE(login.ok());
    EXPECT_EQ(login.error().code, "invalid_credentials");

    auto missing = service->update_user("bob", change, by);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, "not_found");
    ASSERT_TRUE(service->delete_user("alice", by).ok());
    EXPECT_EQ(service->delete_user("alice", by).error().code, "not_found");

    EXPECT_EQ(actions(*service),
              (std::vector<std::string>{"user.delete alice", "login.failed alice",
                                        "user.update alice", "user.create alice"}));
    audit_filter f;
    f.action = "user.update";
    auto entry = service->audit_log(f);
    ASSERT_TRUE(entry.ok());
    ASSERT_EQ(entry->size(), 1u);
    EXPECT_EQ((*entry)[0].actor, "root");
    EXPECT_EQ((*entry)[0].remote, "10.0.0.1");
    EXPECT_EQ((*entry)[0].details, R"({"role":"viewer","disabled":true})");
}

TEST_P(service_contract, refresh_rotates_and_reuse_revokes_the_family_only) {
    ASSERT_TRUE(service->create_user("alice", "alice's password", "operator", by).ok());
    auto a = service->login("alice", "alice's password", "10.0.0.2");
    auto other = service->login("alice", "alice's password", "10.0.0.3");  // another device
    ASSERT_TRUE(a.ok() && other.ok());
    auto b = service->refresh(a->refresh_token, "10.0.0.2");
    ASSERT_TRUE(b.ok()) << b.error().message;
    auto principal = service->authenticate("Bearer", b->access_token);
    ASSERT_TRUE(principal.ok()) << principal.error().message;
    EXPECT_EQ(principal->name, "alice");
    EXPECT_EQ(principal->role, "operator");

    auto reuse = service->refresh(a->refresh_token, "10.9.9.9");
    ASSERT_FALSE(reuse.ok());
    EXPECT_EQ(reuse.error().code, "invalid_token");
    EXPECT_EQ(service->refresh(b->refresh_token, "10.0.0.2").error().code, "invalid_token");
    // The other login's family lives on.
    EXPECT_TRUE(service->refresh(other->refresh_token, "10.0.0.3").ok());
    audit_filter f;
    f.action = "refresh.reuse";
    auto log = service->audit_log(f);
    ASSERT_TRUE(log.ok());
    ASSERT_EQ(log->size(), 1u);
    EXPECT_EQ((*log)[0].remote, "10.9.9.9");
}

TEST_P(service_contract, expired_refresh_tokens_are_refused) {
    ASSERT_TRUE(service->create_user("alice", "alice's password", "operator", by).ok());
    auto a = service->login("alice", "alice's password", "10.0.0.2");
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(store->execute("UPDATE refresh_tokens SET expires_at = 1").ok());
    auto r = service->refresh(a->refresh_token, "10.0.0.2");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "The refresh token has expired");
}

TEST_P(service_contract, a_password_change_ends_every_session) {
    ASSERT_TRUE(service->create_user("alice", "alice's password", "operator", by).ok());
    auto a = service->login("alice", "alice's password", "10.0.0.2");
    ASSERT_TRUE(a.ok());
    user_update change;
    change.password = "a brand new password";
    ASSERT_TRUE(service->update_user("alice", change, by).ok());
    EXPECT_EQ(service->refresh(a->refresh_token, "10.0.0.2").error().message,
              "The refresh token has been revoked");
}

// Access tokens are stateless JWTs with whole-second issue times: each step below waits for
// the next second, so that "issued before the change" is unambiguous.
void wait_for_next_second() {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto next = std::chrono::duration_cast<std::chrono::seconds>(now) + std::chrono::seconds(1);
    std::this_thread::sleep_for(next - now + std::chrono::milliseconds(20));
}

TEST_P(service_contract, access_tokens_from_before_a_password_change_or_a_disable_are_refused) {
    ASSERT_TRUE(service->create_user("erin", "erin's password", "operator", by).ok());
    auto before = service->login("erin", "erin's password", "10.0.0.2");
    ASSERT_TRUE(before.ok());
    ASSERT_TRUE(service->authenticate("Bearer", before->access_token).ok());
    wait_for_next_second();
    user_update change;
    change.password = "erin's new password";
    ASSERT_TRUE(service->update_user("erin", change, by).ok());
    auto old = service->authenticate("Bearer", before->access_token);
    ASSERT_FALSE(old.ok());
    EXPECT_EQ(old.error().code, "invalid_token");
    EXPECT_EQ(old.error().message,
              "The token was issued before the user's password changed or the user was disabled; "
              "log in again");
    // A login right after the change works.
    auto after = service->login("erin", "erin's new password", "10.0.0.2");
    ASSERT_TRUE(after.ok());
    EXPECT_TRUE(service->authenticate("Bearer", after->access_token).ok());

    // Disabling and enabling again does not bring the earlier token back.
    wait_for_next_second();
    user_update disable;
    disable.disabled = true;
    ASSERT_TRUE(service->update_user("erin", disable, by).ok());
    user_update enable;
    enable.disabled = false;
    ASSERT_TRUE(service->update_user("erin", enable, by).ok());
    EXPECT_FALSE(service->authenticate("Bearer", after->access_token).ok());
    auto again = service->login("erin", "erin's new password", "10.0.0.2");
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(service->authenticate("Bearer", again->access_token).ok());
}

TEST_P(service_contract, lockout_is_per_account_and_address_and_ends) {
    ASSERT_TRUE(service->create_user("alice", "alice's password", "operator", by).ok());
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(service->login("alice", "nope nope nope", "10.0.0.5").error().code,
                  "invalid_credentials");
    EXPECT_EQ(service->login("alice", "alice's password", "10.0.0.5").error().code,
              "too_many_requests");
    EXPECT_GT(service->locked_for("alice", "10.0.0.5").count(), 0);
    EXPECT_EQ(service->locked_for("alice", "10.0.0.6").count(), 0);
    EXPECT_TRUE(service->login("alice", "alice's password", "10.0.0.6").ok());

    // A store where the lockout is one second long shows it ends.
    auto o = fast_options();
    o.login_lockout = std::chrono::seconds(1);
    o.login_max_failures = 2;
    auth_service quick(*store, o);
    for (int i = 0; i < 2; ++i)
        (void)quick.login("alice", "nope nope nope", "10.0.0.7");
    EXPECT_EQ(quick.login("alice", "alice's password", "10.0.0.7").error().code,
              "too_many_requests");
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    EXPECT_TRUE(quick.login("alice", "alice's password", "10.0.0.7").ok());
}

TEST_P(service_contract, failed_logins_slow_down) {
    ASSERT_TRUE(service->create_user("alice", "alice's password", "operator", by).ok());
    auto o = fast_options();
    o.login_max_failures = 10;
    o.failure_delay = std::chrono::milliseconds(40);
    o.failure_delay_max = std::chrono::milliseconds(1000);
    auth_service slow(*store, o);
    auto timed = [&] {
        auto start = std::chrono::steady_clock::now();
        (void)slow.login("alice", "nope nope nope", "10.0.0.8");
        return std::chrono::steady_clock::now() - start;
    };
    auto first = timed();  // 40 ms
    (void)timed();         // 80 ms
    auto third = timed();  // 160 ms
    EXPECT_GE(first, std::chrono::milliseconds(40));
    EXPECT_GE(third, std::chrono::milliseconds(160));
    EXPECT_GT(third, first + std::chrono::milliseconds(80));
}

TEST_P(service_contract, api_keys_authenticate_until_revoked) {
    auto k = service->create_api_key("telegraf", "operator", std::chrono::hours(1), by);
    ASSERT_TRUE(k.ok()) << k.error().message;
    EXPECT_EQ(k->key.size(), 4u + 43u);
    auto p = service->authenticate("Token", k->key);
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->kind, principal_kind::api_key);
    EXPECT_EQ(p->role, "operator");
    EXPECT_EQ(p->id, k->info.id);
    auto list = service->list_api_keys();
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].expires_at, k->info.expires_at);
    ASSERT_TRUE(service->revoke_api_key(k->info.id, by).ok());
    EXPECT_EQ(service->authenticate("Bearer", k->key).error().message, "The API key is not valid");
    EXPECT_EQ(service->revoke_api_key(k->info.id, by).error().code, "not_found");
    EXPECT_EQ(service->create_api_key("bad name", "viewer", std::nullopt, by).error().field,
              "name");
    EXPECT_EQ(service->create_api_key("k", "root", std::nullopt, by).error().field, "role");
}

// Keys are verified from a cache after their first use; a key revoked by another node on the
// same store (which cannot empty this node's cache) is refused within a second.
TEST_P(service_contract, a_key_revoked_by_another_node_is_refused_within_a_second) {
    auth_service other_node(*store, fast_options());
    auto k = service->create_api_key("telegraf", "operator", std::nullopt, by);
    ASSERT_TRUE(k.ok()) << k.error().message;
    ASSERT_TRUE(service->authenticate("Token", k->key).ok());
    ASSERT_TRUE(other_node.revoke_api_key(k->info.id, by).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    auto refused = service->authenticate("Token", k->key);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().message, "The API key is not valid");
}

TEST_P(service_contract, device_tokens_are_issued_once_rotated_and_revoked) {
    auto t = service->issue_device_token("press-4", by);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_GE(t->size(), 4u + 22u);  // at least 128 bits after the prefix
    auto again = service->issue_device_token("press-4", by);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "conflict");
    auto p = service->authenticate_device(*t);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->kind, principal_kind::device);
    EXPECT_EQ(p->device, "press-4");
    EXPECT_EQ(p->role, "device");

    auto rotated = service->rotate_device_token("press-4", by);
    ASSERT_TRUE(rotated.ok());
    EXPECT_FALSE(service->authenticate_device(*t).ok());
    EXPECT_TRUE(service->authenticate("Bearer", *rotated).ok());
    EXPECT_EQ(service->rotate_device_token("press-5", by).error().code, "not_found");
    ASSERT_TRUE(service->revoke_device_token("press-4", by).ok());
    EXPECT_FALSE(service->authenticate_device(*rotated).ok());
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM device_credentials"), 0);
    EXPECT_EQ(actions(*service), (std::vector<std::string>{"device.token.revoke press-4",
                                                           "device.token.rotate press-4",
                                                           "device.token.issue press-4"}));
}

// Revocation listeners hear of every credential that ends early, once it is committed, and
// of nothing that failed or ended nothing.
TEST_P(service_contract, revocations_are_told_to_listeners_after_the_change) {
    std::vector<std::string> heard;
    service->on_revoked([&heard](const revoked_credential& r) {
        heard.push_back(std::string(kind_name(r.kind)) + " " + r.name + " " + r.id + ": " +
                        r.reason);
    });
    ASSERT_TRUE(service->create_user("alice", "correct horse battery", "viewer", by).ok());
    ASSERT_TRUE(service->create_user("bob", "correct horse battery", "viewer", by).ok());
    user_update role;
    role.role = "operator";
    ASSERT_TRUE(service->update_user("alice", role, by).ok());
    EXPECT_TRUE(heard.empty());
    user_update password;
    password.password = "another long password";
    ASSERT_TRUE(service->update_user("alice", password, by).ok());
    user_update disable;
    disable.disabled = true;
    ASSERT_TRUE(service->update_user("alice", disable, by).ok());
    ASSERT_TRUE(service->delete_user("bob", by).ok());
    EXPECT_FALSE(service->delete_user("bob", by).ok());
    auto k = service->create_api_key("telegraf", "operator", std::nullopt, by);
    ASSERT_TRUE(k.ok());
    ASSERT_TRUE(service->revoke_api_key(k->info.id, by).ok());
    ASSERT_TRUE(service->issue_device_token("press-4", by).ok());
    ASSERT_TRUE(service->rotate_device_token("press-4", by).ok());
    ASSERT_TRUE(service->revoke_device_token("press-4", by).ok());
    EXPECT_EQ(
        heard,
        (std::vector<std::string>{
            "user alice : password changed", "user alice : user disabled",
            "user bob : user deleted", "api_key telegraf " + k->info.id + ": API key revoked",
            "device press-4 : device token rotated", "device press-4 : device token revoked"}));
}

// An access token carries its expiry to the principal, so that a connection can end with it.
TEST_P(service_contract, a_principal_carries_its_credential_expiry) {
    ASSERT_TRUE(service->create_user("alice", "correct horse battery", "viewer", by).ok());
    auto s = service->login("alice", "correct horse battery", "127.0.0.1");
    ASSERT_TRUE(s.ok());
    auto p = service->authenticate("Bearer", s->access_token);
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(p->expires_at.has_value());
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    EXPECT_NEAR(static_cast<double>(*p->expires_at - now), 15 * 60 * 1000.0, 5000.0);
    auto k = service->create_api_key("wallboard", "viewer", std::nullopt, by);
    ASSERT_TRUE(k.ok());
    auto kp = service->authenticate("Token", k->key);
    ASSERT_TRUE(kp.ok());
    EXPECT_FALSE(kp->expires_at.has_value());
}

TEST_P(service_contract, names_with_sql_metacharacters_are_refused_and_tables_survive) {
    for (const char* name : {"a'; DROP TABLE users; --", "x\" OR 1=1", "../../etc", "a;b"}) {
        auto u = service->create_user(name, "long enough pw", "viewer", by);
        ASSERT_FALSE(u.ok()) << name;
        EXPECT_EQ(u.error().field, "username");
        EXPECT_EQ(service->issue_device_token(name, by).error().field, "device");
        EXPECT_EQ(service->login(name, "long enough pw", "10.0.0.1").error().code,
                  "invalid_credentials");
    }
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM users"), 0);
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM device_credentials"), 0);
}

}  // namespace
}  // namespace clisonix::auth::testing
