// The auth API over real HTTP: users, API keys, the audit log, and the route declarations.
#include <gmock/gmock.h>

#include <chrono>
#include <regex>
#include <thread>

#include "auth/crypto.h"
#include "auth_test_support.h"

namespace clisonix::auth::testing {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;

class api : public auth_server {};

TEST_F(api, every_auth_route_declares_a_permission_and_json_bodies_a_closed_schema) {
    http::router mine;
    auth::add_routes(mine, *service);
    ASSERT_EQ(mine.routes().size(), 12u);
    const std::set<std::string> known = {http::permission::open,   http::permission::read,
                                         http::permission::write,  http::permission::devices,
                                         http::permission::alarms, http::permission::admin,
                                         http::permission::device};
    std::set<std::string> open;
    std::set<std::string> take_secrets;  // counted by the gateway's login rate limit
    for (const auto& r : mine.routes()) {
        const std::string what = std::string(http::method_name(r->verb)) + " " + r->path;
        EXPECT_TRUE(known.contains(r->permission)) << what;
        if (r->permission == http::permission::open) open.insert(what);
        if (r->checks_credentials) take_secrets.insert(what);
        if (r->verb == http::method::post || r->verb == http::method::patch) {
            auto schema = parse(r->request_schema);
            ASSERT_TRUE(schema.is_object()) << what;
            EXPECT_EQ(schema.at("additionalProperties"), false) << what;
        }
    }
    EXPECT_EQ(open, (std::set<std::string>{"POST /api/v1/auth/login", "POST /api/v1/auth/refresh",
                                           "POST /api/v1/auth/logout"}));
    EXPECT_EQ(take_secrets,
              (std::set<std::string>{"POST /api/v1/auth/login", "POST /api/v1/auth/refresh"}));
}

TEST_F(api, every_protected_route_answers_401_without_credentials) {
    int checked = 0;
    for (const auto& r : routes.routes()) {
        if (r->permission == http::permission::open) continue;
        // Fill each {param} with a harmless value.
        const std::string target = std::regex_replace(r->path, std::regex(R"(\{[^}]+\})"), "x");
        auto res = call(http::method_name(r->verb), target, r->request_schema.empty() ? "" : "{}");
        EXPECT_EQ(res.status, 401) << r->path;
        EXPECT_EQ(error_code(res), r->path.find("{device_token}") != std::string::npos
                                       ? "invalid_token"
                                       : "unauthenticated")
            << r->path;
        ++checked;
    }
    EXPECT_EQ(checked, 9 + 3);  // the module's protected routes and the test's three
}

TEST_F(api, login_me_and_bearer_use) {
    auto r = call("POST", "/api/v1/auth/login",
                  R"({"username":"admin","password":"correct horse battery"})");
    ASSERT_EQ(r.status, 200);
    auto body = parse(r.body);
    const std::string access(body.at("access_token").as_string());
    EXPECT_EQ(std::count(access.begin(), access.end(), '.'), 2);
    EXPECT_THAT(std::string(body.at("refresh_token").as_string()), ::testing::StartsWith("cxr_"));
    auto me = call("GET", "/api/v1/auth/me", {}, "Bearer " + access);
    EXPECT_EQ(me.status, 200);
    EXPECT_EQ(me.body, R"({"kind":"user","name":"admin","role":"admin"})");
    // The scheme is case-insensitive.
    EXPECT_EQ(call("GET", "/api/v1/auth/me", {}, "bearer " + access).status, 200);
    auto wrong = call("POST", "/api/v1/auth/login",
                      R"({"username":"admin","password":"correct horse batterY"})");
    EXPECT_EQ(wrong.status, 401);
}

TEST_F(api, users_are_managed_by_admins) {
    const std::string admin = bearer("admin", admin_password);
    auto created = call(
        "POST", "/api/v1/users",
        R"({"username":"ann.lee@plant-2","password":"a fine password","role":"operator"})", admin);
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(parse(created.body).at("role"), "operator");
    EXPECT_EQ(parse(created.body).at("disabled"), false);
    auto dup = call(
        "POST", "/api/v1/users",
        R"({"username":"ann.lee@plant-2","password":"a fine password","role":"viewer"})", admin);
    EXPECT_EQ(dup.status, 409);
    EXPECT_EQ(error_code(dup), "conflict");

    auto list = call("GET", "/api/v1/users", {}, admin);
    ASSERT_EQ(list.status, 200);
    std::vector<std::string> names;
    const auto listed = parse(list.body);
    for (const auto& u : listed.at("users").as_array())
        names.emplace_back(u.at("username").as_string());
    EXPECT_EQ(names,
              (std::vector<std::string>{"admin", "ann.lee@plant-2", "operator1", "viewer1"}));
    EXPECT_THAT(list.body, ::testing::Not(HasSubstr("argon2")));

    auto patched = call("PATCH", "/api/v1/users/ann.lee@plant-2",
                        R"({"role":"viewer","password":"another fine one"})", admin);
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(parse(patched.body).at("role"), "viewer");
    EXPECT_FALSE(service->login("ann.lee@plant-2", "a fine password", "10.1.1.1").ok());
    EXPECT_TRUE(service->login("ann.lee@plant-2", "another fine one", "10.1.1.1").ok());

    // Demoting a user takes effect on their next request, not when the token expires.
    const std::string op = bearer("operator1", operator_password);
    EXPECT_EQ(call("POST", "/api/v1/telemetry", R"({"device":"pump-1"})", op).status, 403);
    EXPECT_EQ(call("GET", "/api/v1/things", {}, op).status, 200);
    EXPECT_EQ(call("PATCH", "/api/v1/users/operator1", R"({"disabled":true})", admin).status, 200);
    EXPECT_EQ(call("GET", "/api/v1/things", {}, op).status, 401);

    EXPECT_EQ(call("DELETE", "/api/v1/users/ann.lee@plant-2", {}, admin).status, 204);
    EXPECT_EQ(call("DELETE", "/api/v1/users/ann.lee@plant-2", {}, admin).status, 404);
    EXPECT_EQ(scalar(*store,
                     "SELECT COUNT(*) FROM refresh_tokens WHERE username = "
                     "'ann.lee@plant-2'"),
              0);
}

TEST_F(api, the_last_enabled_admin_cannot_be_removed) {
    const std::string admin = bearer("admin", admin_password);
    const auto before = dump(*store);
    for (auto [method, body] :
         std::vector<std::pair<const char*, const char*>>{{"PATCH", R"({"role":"viewer"})"},
                                                          {"PATCH", R"({"disabled":true})"},
                                                          {"DELETE", ""}}) {
        auto r = call(method, "/api/v1/users/admin", body, admin);
        EXPECT_EQ(r.status, 409) << body;
        EXPECT_EQ(error_code(r), "conflict");
        EXPECT_THAT(r.body, HasSubstr("last enabled admin"));
    }
    EXPECT_EQ(dump(*store), before);
    EXPECT_EQ(call("PATCH", "/api/v1/users/viewer1", R"({"role":"admin"})", admin).status, 200);
    EXPECT_EQ(call("PATCH", "/api/v1/users/admin", R"({"role":"viewer"})", admin).status, 200);
}

TEST_F(api, api_keys_are_shown_once_listed_without_the_key_and_revocable) {
    const std::string admin = bearer("admin", admin_password);
    auto created =
        call("POST", "/api/v1/apikeys", R"({"name":"telegraf","role":"operator"})", admin);
    ASSERT_EQ(created.status, 201) << created.body;
    auto body = parse(created.body);
    const std::string key(body.at("key").as_string());
    const std::string id(body.at("id").as_string());
    EXPECT_THAT(key, ::testing::StartsWith("cxk_"));
    EXPECT_EQ(body.at("name"), "telegraf");
    EXPECT_EQ(body.at("role"), "operator");
    EXPECT_TRUE(body.at("expires_at").is_null());
    EXPECT_EQ(dump(*store).find(key), std::string::npos);  // only its hash is stored

    auto list = call("GET", "/api/v1/apikeys", {}, admin);
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.body.find(key), std::string::npos);
    ASSERT_EQ(parse(list.body).at("api_keys").as_array().size(), 1u);
    EXPECT_EQ(parse(list.body).at("api_keys").at(0).at("created_by"), "admin");

    for (const std::string scheme : {"Token ", "Bearer "}) {
        auto me = call("GET", "/api/v1/auth/me", {}, scheme + key);
        EXPECT_EQ(me.status, 200) << scheme;
        EXPECT_EQ(me.body, R"({"kind":"api_key","name":"telegraf","role":"operator"})");
        EXPECT_EQ(call("POST", "/api/v1/telemetry", R"({"device":"pump-7"})", scheme + key).status,
                  403);  // operators have write, not the device permission
        EXPECT_EQ(call("GET", "/api/v1/users", {}, scheme + key).status, 403);
    }
    // A JWT is not accepted with the Token scheme.
    EXPECT_EQ(call("GET", "/api/v1/auth/me", {},
                   "Token " + login_as("admin", admin_password).access_token)
                  .status,
              401);

    EXPECT_EQ(call("DELETE", "/api/v1/apikeys/" + id, {}, admin).status, 204);
    EXPECT_EQ(call("DELETE", "/api/v1/apikeys/" + id, {}, admin).status, 404);
    auto revoked = call("GET", "/api/v1/auth/me", {}, "Token " + key);
    EXPECT_EQ(revoked.status, 401);
    EXPECT_EQ(error_code(revoked), "invalid_token");
    EXPECT_EQ(
        parse(call("GET", "/api/v1/apikeys", {}, admin).body).at("api_keys").as_array().size(), 0u);
}

TEST_F(api, an_api_key_stops_working_when_it_expires) {
    const std::string admin = bearer("admin", admin_password);
    auto created = call("POST", "/api/v1/apikeys",
                        R"({"name":"short-lived","role":"viewer","expires_in":1})", admin);
    ASSERT_EQ(created.status, 201);
    auto body = parse(created.body);
    const std::string key(body.at("key").as_string());
    const int64_t expires_at = body.at("expires_at").as_int64();
    EXPECT_GT(expires_at, 0);
    EXPECT_EQ(call("GET", "/api/v1/things", {}, "Token " + key).status, 200);
    // Used just before it expires, so that the server has it among its verified keys.
    std::this_thread::sleep_until(
        std::chrono::system_clock::time_point(std::chrono::milliseconds(expires_at - 400)));
    EXPECT_EQ(call("GET", "/api/v1/things", {}, "Token " + key).status, 200);
    std::this_thread::sleep_until(
        std::chrono::system_clock::time_point(std::chrono::milliseconds(expires_at + 10)));
    auto r = call("GET", "/api/v1/things", {}, "Token " + key);
    EXPECT_EQ(r.status, 401);
    EXPECT_THAT(r.body, HasSubstr("expired"));
}

TEST_F(api, audit_log_records_changes_and_filters_and_pages) {
    const std::string admin = bearer("admin", admin_password);
    ASSERT_EQ(call("POST", "/api/v1/users",
                   R"({"username":"zed","password":"a fine password","role":"viewer"})", admin)
                  .status,
              201);
    ASSERT_EQ(call("PATCH", "/api/v1/users/zed", R"({"disabled":true})", admin).status, 200);
    ASSERT_EQ(call("DELETE", "/api/v1/users/zed", {}, admin).status, 204);

    auto r = call("GET", "/api/v1/audit?actor=admin&limit=2", {}, admin);
    ASSERT_EQ(r.status, 200) << r.body;
    auto entries = parse(r.body).at("entries").as_array();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].at("action"), "user.delete");  // newest first
    EXPECT_EQ(entries[0].at("target"), "zed");
    EXPECT_EQ(entries[0].at("remote"), "127.0.0.1");
    EXPECT_EQ(entries[1].at("action"), "user.update");
    EXPECT_EQ(entries[1].at("details"), parse(R"({"disabled":true})"));

    auto page2 = parse(call("GET", "/api/v1/audit?actor=admin&limit=2&offset=2", {}, admin).body);
    EXPECT_EQ(page2.at("entries").at(0).at("action"), "user.create");
    EXPECT_EQ(page2.at("offset"), 2);

    auto logins = parse(call("GET", "/api/v1/audit?action=login.ok", {}, admin).body);
    EXPECT_EQ(logins.at("entries").as_array().size(), 1u);  // the admin's bearer() login
    auto future = parse(call("GET", "/api/v1/audit?from=99999999999999", {}, admin).body);
    EXPECT_EQ(future.at("entries").as_array().size(), 0u);
    auto past = parse(call("GET", "/api/v1/audit?to=1", {}, admin).body);
    EXPECT_EQ(past.at("entries").as_array().size(), 0u);

    for (const char* q : {"limit=0", "limit=1001", "offset=-1", "from=yesterday"}) {
        auto bad = call("GET", std::string("/api/v1/audit?") + q, {}, admin);
        EXPECT_EQ(bad.status, 400) << q;
        EXPECT_EQ(error_code(bad), "invalid_argument") << q;
    }
}

}  // namespace
}  // namespace clisonix::auth::testing
