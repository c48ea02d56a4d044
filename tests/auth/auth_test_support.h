// Shared by the auth tests: fast options, a fresh store, and an in-process server with the
// auth routes and middleware in front of stand-in telemetry routes.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "auth/routes.h"
#include "http/http.h"
#include "meta/meta.h"
#include "support/test_support.h"

namespace clisonix::auth::testing {

inline constexpr std::string_view test_secret = "0123456789abcdef0123456789abcdef";
inline constexpr std::string_view admin_password = "correct horse battery";
inline constexpr std::string_view viewer_password = "viewer password 1";
inline constexpr std::string_view operator_password = "operator password 1";

// Small Argon2 parameters and short delays keep the suite fast; production values come from
// config and are exercised by the options test.
inline options fast_options() {
    options o;
    o.argon2_memory_kib = 256;
    o.argon2_iterations = 1;
    o.jwt_secret = std::string(test_secret);
    o.login_max_failures = 3;
    o.login_lockout = std::chrono::minutes(1);
    o.failure_delay = std::chrono::milliseconds(1);
    o.failure_delay_max = std::chrono::milliseconds(4);
    return o;
}

inline int64_t scalar(meta::store& s, const std::string& sql) {
    auto r = s.query(sql);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r || r->data.empty()) return -1;
    auto* v = std::get_if<int64_t>(&r->data[0][0]);
    return v ? *v : -1;
}

// A snapshot of every auth table, to show that a refused request changed nothing.
inline std::string dump(meta::store& s) {
    std::string out;
    for (const char* sql :
         {"SELECT username, password_hash, role, disabled, updated_at FROM users ORDER BY 1",
          "SELECT token_hash, used_at, revoked_at FROM refresh_tokens ORDER BY 1",
          "SELECT id, key_hash, revoked_at FROM api_keys ORDER BY 1",
          "SELECT device, token_hash FROM device_credentials ORDER BY 1"}) {
        auto r = s.query(sql);
        if (!r) return "error: " + r.error().message;
        for (const auto& row : r->data) {
            for (const auto& v : row) {
                if (auto* t = std::get_if<std::string>(&v)) out += *t;
                if (auto* i = std::get_if<int64_t>(&v)) out += std::to_string(*i);
                out += '|';
            }
            out += '\n';
        }
        out += "--\n";
    }
    return out;
}

inline boost::json::value parse(const std::string& body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) return nullptr;
    return v;
}

inline std::string error_code(const clisonix::testing::http_response& r) {
    auto v = parse(r.body);
    if (!v.is_object() || !v.as_object().contains("error")) return "<no envelope>";
    return std::string(v.at("error").at("code").as_string());
}

inline std::string error_field(const clisonix::testing::http_response& r) {
    auto v = parse(r.body);
    if (!v.is_object() || !v.as_object().contains("error")) return "<no envelope>";
    const auto& e = v.at("error").as_object();
    return e.contains("field") ? std::string(e.at("field").as_string()) : std::string();
}

// The server: auth routes, plus telemetry routes that store what they accept, as the ingest
// module's will (the device is forced from the principal or checked with may_write_device).
class auth_server : public ::testing::Test {
protected:
    void SetUp() override {
        auto s = meta::open("", data.str());
        ASSERT_TRUE(s.ok()) << s.error().message;
        store = std::move(*s);
        service = std::make_unique<auth_service>(*store, fast_options());
        auto made = service->ensure_admin(admin_password);
        ASSERT_TRUE(made.ok()) << made.error().message;
        const actor setup{"setup", "local"};
        ASSERT_TRUE(service->create_user("viewer1", viewer_password, "viewer", setup).ok());
        ASSERT_TRUE(service->create_user("operator1", operator_password, "operator", setup).ok());
        auto pump1 = service->issue_device_token("pump-1", setup);
        auto pump2 = service->issue_device_token("pump-2", setup);
        ASSERT_TRUE(pump1.ok() && pump2.ok());
        pump1_token = *pump1;
        pump2_token = *pump2;

        auth::add_routes(routes, *service);
        routes.add({http::method::post, "/api/v1/telemetry", "Stand-in telemetry write",
                    http::permission::device, [this](http::request& req) {
                        auto body = parse(req.body);
                        std::string device = body.is_object() && body.as_object().contains("device")
                                                 ? std::string(body.at("device").as_string())
                                                 : std::string();
                        if (auto ok = may_write_device(req, device); !ok) {
                            return http::response::from_error(403, ok.error());
                        }
                        std::lock_guard lock(written_mutex);
                        written.push_back(device);
                        return http::response::no_content();
                    }});
        routes.add({http::method::post, "/api/v1/{device_token}/telemetry",
                    "Stand-in telemetry write, token in the path", http::permission::device,
                    [this](http::request& req) {
                        std::lock_guard lock(written_mutex);
                        written.push_back(current_principal(req)->device);
                        return http::response::no_content();
                    }});
        routes.add({http::method::get, "/api/v1/things", "A read route", http::permission::read,
                    [](http::request&) { return http::response::json(200, "{}"); }});

        http::server_options opts;
        opts.bind = "127.0.0.1";
        opts.port = port = clisonix::testing::free_port();
        opts.threads = 2;
        server = std::make_unique<http::server>(
            opts, routes, std::vector<http::middleware>{authenticate(*service)});
        ASSERT_TRUE(server->listen().ok());
        runner = std::thread([this] { server->run(false); });
    }
    void TearDown() override {
        if (server) server->stop();
        if (runner.joinable()) runner.join();
    }

    clisonix::testing::http_response call(std::string_view method, std::string_view target,
                                          std::string_view body = {},
                                          std::string_view authorization = {}) {
        std::vector<std::string> headers;
        if (!authorization.empty())
            headers.push_back("Authorization: " + std::string(authorization));
        if (!body.empty()) headers.push_back("Content-Type: application/json");
        return clisonix::testing::http_request(port, method, target, body, headers);
    }

    session_tokens login_as(std::string_view username, std::string_view password) {
        auto t = service->login(username, password, "127.0.0.1");
        EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
        return t.ok() ? *t : session_tokens{};
    }
    std::string bearer(std::string_view username, std::string_view password) {
        return "Bearer " + login_as(username, password).access_token;
    }

    std::vector<std::string> written_devices() {
        std::lock_guard lock(written_mutex);
        return written;
    }

    clisonix::testing::temp_dir data{"clisonix-auth"};
    std::unique_ptr<meta::store> store;
    std::unique_ptr<auth_service> service;
    std::string pump1_token;
    std::string pump2_token;
    http::router routes;
    uint16_t port = 0;
    std::unique_ptr<http::server> server;
    std::thread runner;
    std::mutex written_mutex;
    std::vector<std::string> written;
};

}  // namespace clisonix::auth::testing
