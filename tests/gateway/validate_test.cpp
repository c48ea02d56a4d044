// JSON Schema validation of request bodies: exact codes, fields and reasons.
#include <gtest/gtest.h>

#include "gateway/gateway.h"
#include "gateway/test_server.h"

namespace clisonix::gateway {
namespace {

using clisonix::testing::http_request;

const char* login_schema = R"({
  "type": "object",
  "properties": {
    "username": {"type": "string", "minLength": 1, "maxLength": 64},
    "password": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "integer"}},
    "meta": {"type": "object", "properties": {"site": {"type": "string"}},
             "required": ["site"], "additionalProperties": false}
  },
  "required": ["username", "password"],
  "additionalProperties": false
})";

class validate_test : public ::testing::Test {
protected:
    validate_test() {
        routes.add({http::method::post, "/login", "Login", http::permission::open,
                    [this](http::request&) {
                        ++handled;
                        return http::response::json(200, R"({"ok":true})");
                    },
                    login_schema});
        routes.add(
            {http::method::post, "/free", "No schema", http::permission::open,
             [](http::request& req) { return http::response::text(200, req.body, "text/plain"); }});
        check = validate_json(routes);
    }

    http::response send(std::string_view path, std::string body) {
        http::request req;
        req.verb = http::method::post;
        req.path = std::string(path);
        req.body = std::move(body);
        req.matched = routes.find(req.verb, req.path).found;
        return check(req, [&](http::request& r) { return r.matched->handle(r); });
    }

    http::router routes;
    http::middleware check;
    int handled = 0;
};

TEST_F(validate_test, a_valid_body_reaches_the_handler) {
    auto r =
        send("/login", R"({"username":"ann","password":"pw","tags":[1,2],"meta":{"site":"a"}})");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(handled, 1);
}

TEST_F(validate_test, an_unknown_field_is_named) {
    auto r = send("/login", R"({"username":"ann","password":"pw","admin":true})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_argument","message":"Unknown field /admin","field":"/admin"}})");
    auto nested = send("/login", R"({"username":"a","password":"p","meta":{"site":"x","y":1}})");
    EXPECT_EQ(
        nested.body,
        R"({"error":{"code":"invalid_argument","message":"Unknown field /meta/y","field":"/meta/y"}})");
    EXPECT_EQ(handled, 0);
}

TEST_F(validate_test, a_wrong_type_names_the_field_and_the_type_wanted) {
    auto r = send("/login", R"({"username":"ann","password":12345})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_argument","message":"/password must be a string","field":"/password"}})");
    auto item = send("/login", R"({"username":"ann","password":"x","tags":[1,"two"]})");
    EXPECT_EQ(
        item.body,
        R"({"error":{"code":"invalid_argument","message":"/tags/1 must be an integer","field":"/tags/1"}})");
    auto root = send("/login", R"([1,2])");
    EXPECT_EQ(root.body,
              R"({"error":{"code":"invalid_argument","message":"The body must be an object"}})");
    EXPECT_EQ(handled, 0);
}

TEST_F(validate_test, a_missing_field_is_named) {
    auto r = send("/login", R"({"username":"ann"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_argument","message":"Missing required field /password","field":"/password"}})");
    auto nested = send("/login", R"({"username":"a","password":"p","meta":{}})");
    EXPECT_EQ(
        nested.body,
        R"({"error":{"code":"invalid_argument","message":"Missing required field /meta/site","field":"/meta/site"}})");
}

TEST_F(validate_test, other_constraints_give_the_schema_reason) {
    auto r = send("/login", R"({"username":"","password":"p"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_argument","message":"/username: String should be no fewer than 1 characters in length.","field":"/username"}})");
}

TEST_F(validate_test, invalid_json_is_invalid_json_with_the_reason) {
    auto r = send("/login", R"({"username":"ann",})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_json","message":"The request body is not valid JSON: syntax error at byte 18"}})");
    auto cut = send("/login", R"({"username":"ann")");
    EXPECT_EQ(
        cut.body,
        R"({"error":{"code":"invalid_json","message":"The request body is not valid JSON: incomplete JSON at the end"}})");
    auto trailing = send("/login", R"({"username":"a","password":"p"} x)");
    EXPECT_EQ(trailing.status, 400);
    EXPECT_NE(trailing.body.find(R"("code":"invalid_json")"), std::string::npos);
    auto empty = send("/login", "");
    EXPECT_EQ(
        empty.body,
        R"({"error":{"code":"invalid_json","message":"The request body is empty; this route takes JSON"}})");
    EXPECT_EQ(handled, 0);
}

TEST_F(validate_test, deep_nesting_is_refused_without_recursing) {
    auto r = send("/login", std::string(10'000, '['));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"invalid_json","message":"The request body is not valid JSON: nested deeper than 64 levels"}})");
    auto objects = send("/login", std::string(100'000, '{').replace(0, 0, ""));
    EXPECT_EQ(objects.status, 400);
    EXPECT_EQ(handled, 0);
}

TEST_F(validate_test, routes_without_a_schema_pass_untouched) {
    auto r = send("/free", "not json at all");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "not json at all");
}

TEST_F(validate_test, through_the_server) {
    auto opts = testing::small_options();
    opts.body_limit = 64 * 1024;
    testing::test_server srv(opts, routes, {validate_json(routes)});
    auto deep = http_request(srv.port(), "POST", "/login", std::string(10'000, '['));
    EXPECT_EQ(deep.status, 400);
    EXPECT_NE(deep.body.find(R"("code":"invalid_json")"), std::string::npos);
    auto ok = http_request(srv.port(), "POST", "/login", R"({"username":"a","password":"b"})");
    EXPECT_EQ(ok.status, 200);
}

TEST(validate_json, a_schema_that_does_not_compile_is_a_startup_error) {
    http::router routes;
    routes.add({http::method::post, "/x", "X", http::permission::open,
                [](http::request&) { return http::response::no_content(); }, "{not json"});
    EXPECT_THROW(validate_json(routes), std::logic_error);
}

}  // namespace
}  // namespace clisonix::gateway
