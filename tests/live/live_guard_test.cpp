// Live updates under attack and revocation, through the real binary: token-less upgrades
// cannot keep a viewer out, and a live connection ends with its credential (user disabled,
// deleted or given a new password, API key revoked, access token expired).
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <vector>

#include "support/test_support.h"
#include "ws_client.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::server_process;
using testing::ws_client;

constexpr int64_t t0_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
const std::string viewer_password = "viewer password 12345";

ws_client::options with_token(const std::string& token) {
    ws_client::options o;
    o.protocols = "bearer, " + token;
    return o;
}

// Creates the viewer `name` and logs in: its access token.
std::string viewer(server_process& srv, const std::string& name) {
    auto made = srv.post(
        "/api/v1/users",
        R"({"username":")" + name + R"(","password":")" + viewer_password + R"(","role":"viewer"})",
        {"Content-Type: application/json"});
    EXPECT_EQ(made.status, 201) << made.body;
    auto login =
        http_request(srv.port(), "POST", "/api/v1/auth/login",
                     R"({"username":")" + name + R"(","password":")" + viewer_password + "\"}",
                     {"Content-Type: application/json"});
    EXPECT_EQ(login.status, 200) << login.body;
    return std::string(boost::json::parse(login.body).at("access_token").as_string());
}

testing::http_response as_admin(server_process& srv, std::string_view method,
                                std::string_view target, std::string_view body = {}) {
    return http_request(srv.port(), method, target, body,
                        {"Authorization: Bearer " + srv.token(), "Content-Type: application/json"});
}

// A connection that listens to pump-1 as `token`.
void listen(ws_client& ws, const std::string& user) {
    ASSERT_EQ(ws.status(), 101);
    ASSERT_EQ(ws.read(), R"({"type":"authenticated","user":")" + user + "\"}");
    ASSERT_TRUE(ws.send(R"({"type":"subscribe","telemetry":{"devices":["pump-1"]}})"));
    ASSERT_TRUE(ws.read().has_value());
}

void write_pump_1(server_process& srv, double value) {
    auto w = srv.post("/api/v1/devices/pump-1/telemetry",
                      R"({"ts":)" + std::to_string(t0_ms) + R"(,"values":{"temperature":)" +
                          std::to_string(value) + "}}",
                      {"Content-Type: application/json"});
    ASSERT_EQ(w.status, 204) << w.body;
}

// The connection's next event is the server's close frame, with 1008 and `reason`.
void expect_closed(ws_client& ws, const std::string& reason) {
    std::optional<std::string> m;
    while ((m = ws.read(10s)))
        ASSERT_FALSE(m->starts_with(R"({"type":"telemetry")")) << "telemetry after revocation";
    EXPECT_FALSE(ws.timed_out()) << "still open";
    EXPECT_EQ(ws.close_code(), 1008);
    EXPECT_EQ(ws.close_reason(), reason);
}

TEST(live_guard_test, token_less_upgrades_cannot_keep_a_viewer_out) {
    server_process srv({"--set", "analytics.detector=off", "--set", "live.max_connections=3",
                        "--set", "live.max_pending_per_address=3"});
    std::string token = viewer(srv, "vera");
    std::vector<std::unique_ptr<ws_client>> pending;
    for (int i = 0; i < 3; ++i) {
        pending.push_back(std::make_unique<ws_client>(srv.port(), ws_client::options{}));
        ASSERT_EQ(pending.back()->status(), 101) << "pending connection " << i;
    }
    // Beyond the address's budget: refused, saying why and when to try again.
    for (int i = 0; i < 5; ++i) {
        ws_client extra(srv.port(), {});
        EXPECT_EQ(extra.status(), 429);
        EXPECT_FALSE(extra.open());
        EXPECT_EQ(extra.header("Retry-After"), "5");
    }
    ws_client extra(srv.port(), {});
    ASSERT_EQ(extra.status(), 429);
    auto error = boost::json::parse(extra.body()).at("error");
    EXPECT_EQ(error.at("code"), "too_many_requests");
    EXPECT_NE(std::string(error.at("message").as_string()).find("live.max_pending_per_address = 3"),
              std::string::npos)
        << extra.body();

    // The viewer with a token gets in and receives telemetry.
    ws_client vera(srv.port(), with_token(token));
    listen(vera, "vera");
    write_pump_1(srv, 21.5);
    EXPECT_EQ(
        vera.read(),
        R"({"type":"telemetry","device":"pump-1","metric":"temperature","points":[[1704067200000,21.5]]})");
    // A pending connection that authenticates leaves room for the next token-less one.
    ASSERT_TRUE(pending[0]->send(R"({"type":"auth","token":")" + token + "\"}"));
    EXPECT_EQ(pending[0]->read(), R"({"type":"authenticated","user":"vera"})");
    ws_client next(srv.port(), {});
    EXPECT_EQ(next.status(), 101);
}

TEST(live_guard_test, disabling_a_user_closes_their_live_connection) {
    server_process srv({"--set", "analytics.detector=off"});
    std::string token = viewer(srv, "vera");
    ws_client vera(srv.port(), with_token(token));
    listen(vera, "vera");
    ws_client admin(srv.port(), with_token(srv.token()));
    listen(admin, "admin");

    auto off = as_admin(srv, "PATCH", "/api/v1/users/vera", R"({"disabled":true})");
    ASSERT_EQ(off.status, 200) << off.body;
    write_pump_1(srv, 1);
    expect_closed(vera, "credential revoked: user disabled");
    // Nobody else is cut off.
    EXPECT_EQ(
        admin.read(),
        R"({"type":"telemetry","device":"pump-1","metric":"temperature","points":[[1704067200000,1]]})");
    // And the same token does not get back in.
    ws_client again(srv.port(), with_token(token));
    EXPECT_EQ(again.status(), 401);
}

TEST(live_guard_test, a_password_change_or_deletion_closes_the_users_live_connections) {
    server_process srv({"--set", "analytics.detector=off"});
    std::string vera_token = viewer(srv, "vera");
    std::string dan_token = viewer(srv, "dan");
    ws_client vera(srv.port(), with_token(vera_token));
    listen(vera, "vera");
    ws_client vera_by_message(srv.port(), {});
    ASSERT_TRUE(vera_by_message.send(R"({"type":"auth","token":")" + vera_token + "\"}"));
    listen(vera_by_message, "vera");
    ws_client dan(srv.port(), with_token(dan_token));
    listen(dan, "dan");

    auto reset =
        as_admin(srv, "PATCH", "/api/v1/users/vera", R"({"password":"a brand new password"})");
    ASSERT_EQ(reset.status, 200) << reset.body;
    expect_closed(vera, "credential revoked: password changed");
    expect_closed(vera_by_message, "credential revoked: password changed");

    ASSERT_EQ(as_admin(srv, "DELETE", "/api/v1/users/dan").status, 204);
    expect_closed(dan, "credential revoked: user deleted");
}

TEST(live_guard_test, revoking_an_api_key_closes_the_connections_that_used_it) {
    server_process srv({"--set", "analytics.detector=off"});
    auto key = srv.post("/api/v1/apikeys", R"({"name":"wallboard","role":"viewer"})",
                        {"Content-Type: application/json"});
    ASSERT_EQ(key.status, 201) << key.body;
    auto doc = boost::json::parse(key.body);
    std::string secret(doc.at("key").as_string());
    std::string id(doc.at("id").as_string());
    ws_client board(srv.port(), with_token(secret));
    listen(board, "wallboard");
    ASSERT_EQ(as_admin(srv, "DELETE", "/api/v1/apikeys/" + id).status, 204);
    expect_closed(board, "credential revoked: API key revoked");
}

TEST(live_guard_test, the_connection_ends_when_its_access_token_expires) {
    server_process srv({"--set", "analytics.detector=off", "--set", "auth.access_ttl=2s"});
    std::string token = viewer(srv, "vera");
    auto start = std::chrono::steady_clock::now();
    ws_client vera(srv.port(), with_token(token));
    listen(vera, "vera");
    expect_closed(vera, "token expired");
    // The token lived at most 2 s (its expiry is in whole seconds).
    EXPECT_LE(std::chrono::steady_clock::now() - start, 8s);
}

// `clisonix user disable` runs in another process: no event reaches the server, the periodic
// check of the credential closes the connection.
TEST(live_guard_test, a_user_disabled_from_the_command_line_is_closed_by_the_periodic_check) {
    server_process srv(
        {"--set", "analytics.detector=off", "--set", "live.revalidate_interval=300ms"});
    std::string token = viewer(srv, "vera");
    ws_client vera(srv.port(), with_token(token));
    listen(vera, "vera");
    auto disabled =
        testing::run_clisonix({"user", "disable", "vera", "--data", srv.data_path().string()});
    ASSERT_EQ(disabled.exit_code, 0) << disabled.out << disabled.err;
    expect_closed(vera, "credential revoked: The token's user no longer exists or is disabled");
}

}  // namespace
}  // namespace clisonix
