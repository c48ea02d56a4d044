// The security suite over real HTTP: each attack gets its exact status and error code, and the
// stored data is unchanged afterwards.
#include <gmock/gmock.h>

#include "auth/crypto.h"
#include "auth/jwt.h"
#include "auth_test_support.h"

namespace clisonix::auth::testing {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;

class security : public auth_server {
protected:
    // An access token for `sub` signed with `secret`, with claims adjusted by the caller.
    std::string token(json::object header, json::object payload, std::string_view secret) {
        std::string input = detail::base64url_encode(json::serialize(header)) + "." +
                            detail::base64url_encode(json::serialize(payload));
        return input + "." + detail::base64url_encode(detail::hmac_sha256(secret, input));
    }
    json::object header() {
        return {{"alg", "HS256"}, {"typ", "JWT"}, {"kid", detail::key_id_of(test_secret)}};
    }
    json::object payload(std::string_view sub = "admin") {
        const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        return {{"iss", "clisonix"}, {"aud", "clisonix-api"},
                {"sub", sub},        {"role", "admin"},
                {"iat", now},        {"nbf", now},
                {"exp", now + 600},  {"jti", "t"}};
    }
};

TEST_F(security, a_forged_token_with_the_right_key_works_so_the_checks_below_mean_something) {
    auto r = call("GET", "/api/v1/users", {}, "Bearer " + token(header(), payload(), test_secret));
    EXPECT_EQ(r.status, 200);
}

TEST_F(security, no_token_is_401_with_a_bearer_challenge) {
    const auto before = dump(*store);
    auto r = call("GET", "/api/v1/users");
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(error_code(r), "unauthenticated");
    EXPECT_EQ(r.header("www-authenticate"), R"(Bearer realm="clisonix")");
    auto post = call("POST", "/api/v1/users",
                     R"({"username":"mallory","password":"long enough pw","role":"admin"})");
    EXPECT_EQ(post.status, 401);
    EXPECT_EQ(dump(*store), before);
}

TEST_F(security, malformed_credentials_are_401_invalid_token) {
    for (std::string auth : std::vector<std::string>{
             "Bearer", "Bearer abc", "Bearer a.b.c", "Bearer ..",
             "Basic YWRtaW4=", "Bearer " + std::string(5000, 'x'), "Token not-a-key"}) {
        auto r = call("GET", "/api/v1/things", {}, auth);
        EXPECT_EQ(r.status, 401) << auth;
        EXPECT_EQ(error_code(r), "invalid_token") << auth;
        EXPECT_EQ(r.header("www-authenticate"),
                  R"(Bearer realm="clisonix", error="invalid_token")");
    }
}

TEST_F(security, alg_none_is_refused) {
    auto h = header();
    h["alg"] = "none";
    auto t = token(h, payload(), test_secret);
    t = t.substr(0, t.rfind('.') + 1);  // unsigned, as an alg-none token is
    auto r = call("GET", "/api/v1/users", {}, "Bearer " + t);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(error_code(r), "invalid_token");
    EXPECT_THAT(r.body, HasSubstr("not HS256"));
    h["alg"] = "NONE";
    EXPECT_EQ(call("GET", "/api/v1/users", {}, "Bearer " + token(h, payload(), "")).status, 401);
}

TEST_F(security, hs256_signed_with_another_key_is_refused) {
    auto r = call("GET", "/api/v1/users", {},
                  "Bearer " + token(header(), payload(), "attacker-key-attacker-key-attack"));
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(error_code(r), "invalid_token");
    EXPECT_THAT(r.body, HasSubstr("signature does not verify"));
}

TEST_F(security, expired_token_is_refused_past_the_leeway) {
    auto p = payload();
    p["exp"] = p["iat"].as_int64() - 31;
    auto r = call("GET", "/api/v1/things", {}, "Bearer " + token(header(), p, test_secret));
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(error_code(r), "invalid_token");
    EXPECT_THAT(r.body, HasSubstr("expired"));
    p["exp"] = p["iat"].as_int64() - 10;  // within the 30 s leeway
    EXPECT_EQ(call("GET", "/api/v1/things", {}, "Bearer " + token(header(), p, test_secret)).status,
              200);
}

TEST_F(security, wrong_audience_or_issuer_is_refused) {
    auto p = payload();
    p["aud"] = "another-api";
    auto r = call("GET", "/api/v1/things", {}, "Bearer " + token(header(), p, test_secret));
    EXPECT_EQ(r.status, 401);
    EXPECT_THAT(r.body, HasSubstr("another audience"));
    p = payload();
    p["iss"] = "not-clisonix";
    EXPECT_EQ(call("GET", "/api/v1/things", {}, "Bearer " + token(header(), p, test_secret)).status,
              401);
}

TEST_F(security, token_of_a_deleted_or_disabled_user_stops_working) {
    const std::string viewer = bearer("viewer1", viewer_password);
    EXPECT_EQ(call("GET", "/api/v1/things", {}, viewer).status, 200);
    user_update off;
    off.disabled = true;
    ASSERT_TRUE(service->update_user("viewer1", off, {"t", "local"}).ok());
    auto r = call("GET", "/api/v1/things", {}, viewer);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(error_code(r), "invalid_token");
    EXPECT_EQ(call("GET", "/api/v1/things", {},
                   "Bearer " + token(header(), payload("ghost"), test_secret))
                  .status,
              401);
}

TEST_F(security, reused_refresh_token_revokes_the_whole_family) {
    auto first = call("POST", "/api/v1/auth/login",
                      R"({"username":"operator1","password":"operator password 1"})");
    ASSERT_EQ(first.status, 200);
    EXPECT_EQ(first.header("cache-control"), "no-store");
    const std::string r1(parse(first.body).at("refresh_token").as_string());
    EXPECT_EQ(parse(first.body).at("token_type"), "Bearer");
    EXPECT_EQ(parse(first.body).at("expires_in"), 900);

    auto second = call("POST", "/api/v1/auth/refresh", R"({"refresh_token":")" + r1 + "\"}");
    ASSERT_EQ(second.status, 200);
    const std::string r2(parse(second.body).at("refresh_token").as_string());
    const std::string a2(parse(second.body).at("access_token").as_string());
    EXPECT_NE(r2, r1);
    EXPECT_EQ(call("GET", "/api/v1/auth/me", {}, "Bearer " + a2).status, 200);

    // The old one again: refused, and the newer one dies with it.
    auto reuse = call("POST", "/api/v1/auth/refresh", R"({"refresh_token":")" + r1 + "\"}");
    EXPECT_EQ(reuse.status, 401);
    EXPECT_EQ(error_code(reuse), "invalid_token");
    EXPECT_THAT(reuse.body, HasSubstr("already used"));
    auto newer = call("POST", "/api/v1/auth/refresh", R"({"refresh_token":")" + r2 + "\"}");
    EXPECT_EQ(newer.status, 401);
    EXPECT_EQ(error_code(newer), "invalid_token");
    EXPECT_EQ(scalar(*store,
                     "SELECT COUNT(*) FROM refresh_tokens WHERE username = 'operator1' "
                     "AND revoked_at IS NULL"),
              0);
    audit_filter f;
    f.action = "refresh.reuse";
    auto audited = service->audit_log(f);
    ASSERT_TRUE(audited.ok());
    ASSERT_EQ(audited->size(), 1u);
    EXPECT_EQ((*audited)[0].actor, "operator1");
    EXPECT_EQ((*audited)[0].remote, "127.0.0.1");
    // Only the hash is stored.
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '" +
                                 detail::sha256_hex(r1) + "'"),
              1);
    EXPECT_EQ(dump(*store).find(r1), std::string::npos);
}

TEST_F(security, logout_ends_the_session) {
    auto t = login_as("viewer1", viewer_password);
    auto out =
        call("POST", "/api/v1/auth/logout", R"({"refresh_token":")" + t.refresh_token + "\"}");
    EXPECT_EQ(out.status, 204);
    auto r =
        call("POST", "/api/v1/auth/refresh", R"({"refresh_token":")" + t.refresh_token + "\"}");
    EXPECT_EQ(r.status, 401);
    EXPECT_THAT(r.body, HasSubstr("revoked"));
    EXPECT_EQ(call("POST", "/api/v1/auth/logout", R"({"refresh_token":"cxr_nope"})").status, 401);
}

TEST_F(security, viewer_calling_admin_routes_is_403_and_changes_nothing) {
    const std::string viewer = bearer("viewer1", viewer_password);
    const std::string op = bearer("operator1", operator_password);
    const auto before = dump(*store);
    auto list = call("GET", "/api/v1/users", {}, viewer);
    EXPECT_EQ(list.status, 403);
    EXPECT_EQ(error_code(list), "forbidden");
    EXPECT_EQ(parse(list.body).at("error").at("message"),
              "The role viewer may not use this route; it needs admin permission");
    auto create =
        call("POST", "/api/v1/users",
             R"({"username":"mallory","password":"long enough pw","role":"admin"})", viewer);
    EXPECT_EQ(create.status, 403);
    auto promote = call("PATCH", "/api/v1/users/viewer1", R"({"role":"admin"})", viewer);
    EXPECT_EQ(promote.status, 403);
    EXPECT_EQ(call("POST", "/api/v1/apikeys", R"({"name":"k","role":"admin"})", viewer).status,
              403);
    EXPECT_EQ(call("GET", "/api/v1/audit", {}, viewer).status, 403);
    // An operator writes but does not administer.
    EXPECT_EQ(call("DELETE", "/api/v1/users/viewer1", {}, op).status, 403);
    EXPECT_EQ(dump(*store), before);
    EXPECT_EQ(call("GET", "/api/v1/things", {}, viewer).status, 200);
}

TEST_F(security, device_token_writes_its_own_device_and_nothing_else) {
    const std::string pump1 = "Bearer " + pump1_token;
    EXPECT_EQ(call("POST", "/api/v1/telemetry", R"({"device":"pump-1"})", pump1).status, 204);
    auto other = call("POST", "/api/v1/telemetry", R"({"device":"pump-2"})", pump1);
    EXPECT_EQ(other.status, 403);
    EXPECT_EQ(error_code(other), "forbidden");
    EXPECT_EQ(error_field(other), "device");
    // The path form writes as the token's device, whatever else the request says.
    EXPECT_EQ(
        call("POST", "/api/v1/" + pump2_token + "/telemetry", R"({"device":"pump-1"})").status,
        204);
    EXPECT_EQ(written_devices(), (std::vector<std::string>{"pump-1", "pump-2"}));
    // A device reads nothing and administers nothing.
    auto read = call("GET", "/api/v1/things", {}, pump1);
    EXPECT_EQ(read.status, 403);
    EXPECT_EQ(call("GET", "/api/v1/users", {}, pump1).status, 403);
    // Bad tokens in either place.
    EXPECT_EQ(call("POST", "/api/v1/cxd_forged/telemetry", "{}").status, 401);
    EXPECT_EQ(
        call("POST", "/api/v1/telemetry", R"({"device":"pump-1"})", "Bearer cxd_forged").status,
        401);
    // A viewer may not write telemetry.
    EXPECT_EQ(call("POST", "/api/v1/telemetry", R"({"device":"pump-1"})",
                   bearer("viewer1", viewer_password))
                  .status,
              403);
    EXPECT_EQ(written_devices().size(), 2u);
}

TEST_F(security, rotated_device_token_replaces_the_old_one) {
    auto fresh = service->rotate_device_token("pump-1", {"admin", "local"});
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ(
        call("POST", "/api/v1/telemetry", R"({"device":"pump-1"})", "Bearer " + pump1_token).status,
        401);
    EXPECT_EQ(
        call("POST", "/api/v1/telemetry", R"({"device":"pump-1"})", "Bearer " + *fresh).status,
        204);
    EXPECT_EQ(dump(*store).find(*fresh), std::string::npos);
}

TEST_F(security, password_brute_force_locks_the_account_for_this_address) {
    const std::string wrong = R"({"username":"viewer1","password":"guess guess guess"})";
    const std::string right = R"({"username":"viewer1","password":"viewer password 1"})";
    for (int i = 0; i < 3; ++i) {
        auto r = call("POST", "/api/v1/auth/login", wrong);
        EXPECT_EQ(r.status, 401) << i;
        EXPECT_EQ(error_code(r), "invalid_credentials");
        EXPECT_EQ(parse(r.body).at("error").at("message"), "Invalid username or password");
    }
    const auto before = dump(*store);
    auto locked = call("POST", "/api/v1/auth/login", right);
    EXPECT_EQ(locked.status, 429);
    EXPECT_EQ(error_code(locked), "too_many_requests");
    const int retry = std::stoi(locked.header("retry-after"));
    EXPECT_GT(retry, 50);
    EXPECT_LE(retry, 60);
    EXPECT_EQ(dump(*store), before);  // no session was created

    auto count = [&](const char* action) {
        audit_filter f;
        f.action = action;
        f.actor = "viewer1";
        auto a = service->audit_log(f);
        return a.ok() ? a->size() : 999u;
    };
    EXPECT_EQ(count("login.failed"), 3u);
    EXPECT_EQ(count("login.lockout"), 1u);
    EXPECT_EQ(count("login.refused"), 1u);
    EXPECT_EQ(count("login.ok"), 0u);
    // Per account and address: the same account from elsewhere, and another account from
    // here, still log in.
    EXPECT_TRUE(service->login("viewer1", viewer_password, "10.0.0.9").ok());
    EXPECT_EQ(call("POST", "/api/v1/auth/login",
                   R"({"username":"operator1","password":"operator password 1"})")
                  .status,
              200);
}

TEST_F(security, unknown_users_fail_like_wrong_passwords) {
    auto r =
        call("POST", "/api/v1/auth/login", R"({"username":"nobody","password":"whatever1234"})");
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_credentials","message":"Invalid username or password"}})");
}

TEST_F(security, sql_metacharacters_and_path_traversal_in_names_are_refused_and_never_run) {
    const std::string admin = bearer("admin", admin_password);
    const auto before = dump(*store);
    for (std::string name :
         std::vector<std::string>{"x'); DROP TABLE users;--", "admin' OR '1'='1", "../etc/passwd",
                                  "..", "a/b", "a b", "\\\\server", std::string(65, 'a'), ""}) {
        json::object body{{"username", name}, {"password", "long enough pw"}, {"role", "viewer"}};
        auto r = call("POST", "/api/v1/users", json::serialize(body), admin);
        EXPECT_EQ(r.status, 400) << name;
        EXPECT_EQ(error_code(r), "invalid_argument") << name;
        EXPECT_EQ(error_field(r), "username") << name;
    }
    auto login = call("POST", "/api/v1/auth/login",
                      R"({"username":"admin' OR '1'='1","password":"' OR '1'='1"})");
    EXPECT_EQ(login.status, 401);
    EXPECT_EQ(error_code(login), "invalid_credentials");
    for (std::string target : {"/api/v1/users/admin'%20OR%20'1'='1", "/api/v1/users/..%2Fadmin",
                               "/api/v1/users/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"}) {
        auto del = call("DELETE", target, {}, admin);
        EXPECT_EQ(del.status, 404) << target;
        EXPECT_EQ(error_code(del), "not_found") << target;
        auto patch = call("PATCH", target, R"({"disabled":true})", admin);
        EXPECT_EQ(patch.status, 404) << target;
    }
    EXPECT_EQ(call("DELETE", "/api/v1/apikeys/1'%20OR%20'1'='1", {}, admin).status, 404);
    EXPECT_EQ(dump(*store), before);
    EXPECT_EQ(scalar(*store, "SELECT COUNT(*) FROM users"), 3);
}

TEST_F(security, unknown_fields_and_wrong_types_are_400_naming_the_field) {
    const std::string admin = bearer("admin", admin_password);
    const auto before = dump(*store);
    struct bad {
        const char* method;
        const char* target;
        const char* body;
        const char* field;
    };
    for (const bad& b : std::vector<bad>{
             {"POST", "/api/v1/auth/login",
              R"({"username":"admin","password":"correct horse battery","admin":true})", "admin"},
             {"POST", "/api/v1/auth/login", R"({"username":5,"password":"x"})", "username"},
             {"POST", "/api/v1/auth/login", R"({"username":"admin"})", "password"},
             {"POST", "/api/v1/users",
              R"({"username":"eve","password":"long enough pw","role":"root"})", "role"},
             {"POST", "/api/v1/users", R"({"username":"eve","password":"short","role":"viewer"})",
              "password"},
             {"PATCH", "/api/v1/users/viewer1", R"({"rol":"admin"})", "rol"},
             {"PATCH", "/api/v1/users/viewer1", R"({"disabled":"yes"})", "disabled"},
             {"POST", "/api/v1/apikeys", R"({"name":"k","role":"viewer","expires_in":"1d"})",
              "expires_in"},
             {"POST", "/api/v1/apikeys", R"({"name":"k","role":"viewer","expires_in":0})",
              "expires_in"},
         }) {
        auto r = call(b.method, b.target, b.body, admin);
        EXPECT_EQ(r.status, 400) << b.body;
        EXPECT_EQ(error_code(r), "invalid_argument") << b.body;
        EXPECT_EQ(error_field(r), b.field) << b.body;
    }
    for (const char* body : {"not json", "[1,2]", "{\"username\":"}) {
        auto r = call("POST", "/api/v1/auth/login", body);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_EQ(error_code(r), "invalid_argument") << body;
    }
    EXPECT_EQ(dump(*store), before);
}

}  // namespace
}  // namespace clisonix::auth::testing
