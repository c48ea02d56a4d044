// Security headers on every answer, including the server's own errors; CORS by allow-list.
#include <gtest/gtest.h>

#include "gateway/gateway.h"
#include "gateway/test_server.h"

namespace clisonix::gateway {
namespace {

using clisonix::testing::http_request;
using clisonix::testing::http_response;
using testing::small_options;
using testing::test_server;

const std::string csp =
    "default-src 'self'; base-uri 'self'; frame-ancestors 'none'; object-src 'none'; "
    "script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'";

void expect_helmet_set(const http_response& r) {
    EXPECT_EQ(r.header("content-security-policy"), csp);
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.header("x-frame-options"), "DENY");
    EXPECT_EQ(r.header("referrer-policy"), "no-referrer");
    EXPECT_EQ(r.header("cross-origin-opener-policy"), "same-origin");
    EXPECT_EQ(r.header("cross-origin-resource-policy"), "same-origin");
    EXPECT_EQ(r.header("x-dns-prefetch-control"), "off");
    EXPECT_EQ(r.header("x-permitted-cross-domain-policies"), "none");
    EXPECT_EQ(r.headers.count("server"), 0u);
    // Plain HTTP: HSTS would be ignored by browsers, so it is not sent.
    EXPECT_EQ(r.headers.count("strict-transport-security"), 0u);
}

class headers_test : public ::testing::Test {
protected:
    headers_test() {
        routes.add({http::method::get, "/ok", "OK", http::permission::open,
                    [](http::request&) { return http::response::json(200, R"({"ok":true})"); }});
        routes.add({http::method::post, "/echo", "Echo", http::permission::open,
                    [](http::request& req) { return http::response::json(200, req.body); }});
        routes.add({http::method::get, "/framed", "Sets its own framing rule",
                    http::permission::open, [](http::request&) {
                        auto res = http::response::json(200, "{}");
                        res.headers.emplace_back("X-Frame-Options", "SAMEORIGIN");
                        return res;
                    }});
    }
    http::router routes;
};

TEST_F(headers_test, every_answer_carries_the_set_even_errors_written_before_the_middleware) {
    auto opts = small_options();
    opts.always_headers = security_headers(false);
    test_server srv(opts, routes, {});
    auto ok = http_request(srv.port(), "GET", "/ok");
    EXPECT_EQ(ok.status, 200);
    expect_helmet_set(ok);
    auto missing = http_request(srv.port(), "GET", "/nope");
    EXPECT_EQ(missing.status, 404);
    expect_helmet_set(missing);
    auto big_body = http_request(srv.port(), "POST", "/echo", std::string(2000, 'x'));
    EXPECT_EQ(big_body.status, 413);
    expect_helmet_set(big_body);
    auto big_header =
        http_request(srv.port(), "GET", "/ok", {}, {"X-Big: " + std::string(4000, 'h')});
    EXPECT_EQ(big_header.status, 431);
    expect_helmet_set(big_header);
    clisonix::testing::connection raw(srv.port());
    raw.send("GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
    auto malformed = raw.read_response();
    EXPECT_EQ(malformed.status, 400);
    expect_helmet_set(malformed);
    // A handler's own choice wins over the default.
    EXPECT_EQ(http_request(srv.port(), "GET", "/framed").header("x-frame-options"), "SAMEORIGIN");
}

TEST_F(headers_test, the_middleware_adds_the_same_set) {
    test_server srv(small_options(), routes, {secure_headers(false)});
    auto missing = http_request(srv.port(), "GET", "/nope");
    EXPECT_EQ(missing.status, 404);
    expect_helmet_set(missing);
    EXPECT_EQ(http_request(srv.port(), "GET", "/framed").header("x-frame-options"), "SAMEORIGIN");
}

TEST(security_headers, hsts_and_upgrade_only_under_tls) {
    auto find = [](const auto& headers, std::string_view name) -> std::string {
        for (const auto& [n, v] : headers)
            if (n == name) return v;
        return "<absent>";
    };
    auto tls = security_headers(true);
    EXPECT_EQ(find(tls, "Strict-Transport-Security"), "max-age=31536000; includeSubDomains");
    EXPECT_EQ(find(tls, "Content-Security-Policy"), csp + "; upgrade-insecure-requests");
    auto plain = security_headers(false);
    EXPECT_EQ(find(plain, "Strict-Transport-Security"), "<absent>");
    EXPECT_EQ(find(plain, "Content-Security-Policy"), csp);
}

class cors_test : public headers_test {
protected:
    cors_test() : srv(small_options(), routes, {cors({"https://UI.example:8443"})}) {}
    test_server srv;
};

TEST_F(cors_test, an_allowed_origin_gets_its_origin_back_and_vary) {
    auto r = http_request(srv.port(), "GET", "/ok", {}, {"Origin: https://ui.example:8443"});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("access-control-allow-origin"), "https://ui.example:8443");
    EXPECT_EQ(r.header("vary"), "Origin");
    EXPECT_EQ(r.header("access-control-expose-headers"),
              "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Request-Id");
    EXPECT_EQ(r.headers.count("access-control-allow-credentials"), 0u);
}

TEST_F(cors_test, another_origin_gets_no_cors_headers) {
    for (std::string origin :
         {"https://evil.example", "https://ui.example:8444", "http://ui.example:8443", "null"}) {
        auto r = http_request(srv.port(), "GET", "/ok", {}, {"Origin: " + origin});
        EXPECT_EQ(r.status, 200) << origin;
        EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u) << origin;
        EXPECT_EQ(r.headers.count("access-control-expose-headers"), 0u) << origin;
        EXPECT_EQ(r.header("vary"), "Origin") << origin;
    }
    auto none = http_request(srv.port(), "GET", "/ok");
    EXPECT_EQ(none.headers.count("access-control-allow-origin"), 0u);
}

TEST_F(cors_test, preflight_from_an_allowed_origin_is_answered) {
    auto r = http_request(srv.port(), "OPTIONS", "/echo", {},
                          {"Origin: https://ui.example:8443", "Access-Control-Request-Method: POST",
                           "Access-Control-Request-Headers: authorization, content-type"});
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.header("access-control-allow-origin"), "https://ui.example:8443");
    EXPECT_EQ(r.header("access-control-allow-methods"), "GET, HEAD, POST, PUT, PATCH, DELETE");
    EXPECT_EQ(r.header("access-control-allow-headers"),
              "Authorization, Content-Type, X-Request-Id");
    EXPECT_EQ(r.header("access-control-max-age"), "600");
    EXPECT_EQ(r.header("vary"), "Origin");
}

TEST_F(cors_test, preflight_from_another_origin_is_refused_without_cors_headers) {
    auto r = http_request(srv.port(), "OPTIONS", "/echo", {},
                          {"Origin: https://evil.example", "Access-Control-Request-Method: POST"});
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"forbidden","message":"Origin https://evil.example may not call this API from a browser","field":"Origin"}})");
    EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u);
    EXPECT_EQ(r.headers.count("access-control-allow-methods"), 0u);
}

}  // namespace
}  // namespace clisonix::gateway
