// Webhooks and internal addresses, through the real binary: literal loopback, link-local and
// private URLs refused at create/update (400 naming "url"); a host name that resolves to
// loopback refused when it connects, with a last_error that says why; the allow-list letting
// on-site receivers through; the receiver's answer shown to admins only.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "notify/receiver.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::receiver;
using testing::server_process;
namespace json = boost::json;

const std::vector<std::string> json_header{"Content-Type: application/json"};

std::vector<std::string> flags(const std::string& allow) {
    std::vector<std::string> f{
        "--set", "notify.max_attempts=1",   "--set", "notify.backoff_base=20ms",
        "--set", "notify.backoff_max=50ms", "--set", "analytics.detector=off",
        "--set", "mqtt.enabled=false"};
    if (!allow.empty()) f.insert(f.end(), {"--set", "notify.webhook_allow=" + allow});
    return f;
}

testing::http_response create(server_process& srv, const std::string& name,
                              const std::string& url) {
    return srv.post("/api/v1/channels",
                    R"({"name":")" + name + R"(","type":"webhook","url":")" + url + R"("})",
                    json_header);
}

// The outbox row of notification `id` once it is no longer pending (or after 10 s).
json::object settled(server_process& srv, int64_t id,
                     const std::vector<std::string>& auth_header = {}) {
    json::object row;
    for (int i = 0; i < 500; ++i) {
        auto r = auth_header.empty()
                     ? srv.get("/api/v1/notifications")
                     : http_request(srv.port(), "GET", "/api/v1/notifications", {}, auth_header);
        if (r.status == 200) {
            const json::value page = json::parse(r.body);
            for (const auto& n : page.at("notifications").as_array())
                if (n.at("id").as_int64() == id) row = n.as_object();
            if (!row.empty() && row.at("state") != "pending") return row;
        }
        std::this_thread::sleep_for(20ms);
    }
    return row;
}

int64_t send_test(server_process& srv, const std::string& channel) {
    auto sent = srv.post("/api/v1/channels/" + channel + "/test", "");
    EXPECT_EQ(sent.status, 202) << sent.body;
    return json::parse(sent.body).at("id").as_int64();
}

TEST(webhook_egress_test, literal_internal_addresses_are_refused_naming_url) {
    server_process srv(flags(""));
    for (const std::string url :
         {"http://127.0.0.1:8030/api/v1/users", "http://[::1]:8030/x",
          "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook",
          "http://192.168.0.10/hook", "http://100.64.0.1/hook", "http://0.0.0.0:8030/",
          "http://[fd00::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://224.0.0.1/x"}) {
        auto r = create(srv, "internal", url);
        ASSERT_EQ(r.status, 400) << url << " " << r.body;
        auto e = json::parse(r.body).at("error");
        EXPECT_EQ(e.at("code"), "invalid_argument") << url;
        EXPECT_EQ(e.at("field"), "url") << url;
        EXPECT_NE(std::string(e.at("message").as_string()).find("notify.webhook_allow"),
                  std::string::npos)
            << r.body;
    }
    // A public address is fine, and an update cannot point it inside afterwards.
    ASSERT_EQ(create(srv, "ops", "https://203.0.113.9/hook").status, 201);
    auto put =
        http_request(srv.port(), "PUT", "/api/v1/channels/ops",
                     R"({"type":"webhook","url":"http://169.254.169.254/latest/meta-data/"})",
                     {"Authorization: Bearer " + srv.token(), "Content-Type: application/json"});
    ASSERT_EQ(put.status, 400) << put.body;
    EXPECT_EQ(json::parse(put.body).at("error").at("field"), "url");
    EXPECT_EQ(json::parse(srv.get("/api/v1/channels/ops").body).at("url"),
              "https://203.0.113.9/hook");
}

// "localhost" is no literal address: it is accepted at create, and refused when the
// dispatcher connects to what it resolves to. Nothing reaches the loopback receiver.
TEST(webhook_egress_test, a_name_resolving_to_loopback_is_refused_at_delivery) {
    receiver rx;
    server_process srv(flags(""));
    ASSERT_EQ(create(srv, "ops", "http://localhost:" + std::to_string(rx.port()) + "/hook").status,
              201);
    auto row = settled(srv, send_test(srv, "ops"));
    ASSERT_EQ(row.at("state"), "dead") << json::serialize(row);
    const std::string why(row.at("last_error").as_string());
    EXPECT_TRUE(why.starts_with("webhook: localhost resolves to ")) << why;
    EXPECT_NE(why.find("(loopback)"), std::string::npos) << why;
    EXPECT_NE(why.find("notify.webhook_allow"), std::string::npos) << why;
    EXPECT_EQ(rx.count(), 0u);
}

// On-site receivers: by host name or by network.
TEST(webhook_egress_test, the_allow_list_lets_on_site_receivers_through) {
    receiver rx;
    {
        server_process srv(flags("localhost"));
        ASSERT_EQ(
            create(srv, "ops", "http://localhost:" + std::to_string(rx.port()) + "/hook").status,
            201);
        EXPECT_EQ(settled(srv, send_test(srv, "ops")).at("state"), "delivered");
        // The name is allowed, not loopback: a literal 127.0.0.1 is still refused.
        EXPECT_EQ(create(srv, "lit", rx.url()).status, 400);
    }
    server_process srv(flags("10.0.0.0/8, 127.0.0.0/8"));
    ASSERT_EQ(create(srv, "ops", rx.url()).status, 201);
    EXPECT_EQ(settled(srv, send_test(srv, "ops")).at("state"), "delivered");
    EXPECT_EQ(rx.count(), 2u);
    // [::1] is not in the list.
    EXPECT_EQ(create(srv, "v6", "http://[::1]:9/hook").status, 400);
}

TEST(webhook_egress_test, a_bad_allow_list_stops_the_server_with_exit_code_2) {
    testing::temp_dir data;
    auto r =
        testing::run_clisonix({"serve", "--set", "data.dir=" + data.str(), "--set",
                               "http.port=" + std::to_string(testing::free_port()), "--set",
                               "mqtt.enabled=false", "--set", "notify.webhook_allow=10.0.0.0/33"},
                              {"CLISONIX_ADMIN_PASSWORD=test-admin-password-1"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("notify.webhook_allow"), std::string::npos) << r.err;
}

// What the receiver answered is for admins; a viewer (here an API key) sees the status.
TEST(webhook_egress_test, a_viewer_sees_the_status_but_not_the_receivers_answer) {
    receiver rx;
    rx.set_status(500);  // answers "nope"
    server_process srv(flags("127.0.0.1"));
    ASSERT_EQ(create(srv, "ops", rx.url()).status, 201);
    const int64_t id = send_test(srv, "ops");
    auto admin_row = settled(srv, id);
    EXPECT_EQ(admin_row.at("last_error"), "webhook: answered 500: nope");

    auto key = srv.post("/api/v1/apikeys", R"({"name":"wallboard","role":"viewer"})", json_header);
    ASSERT_EQ(key.status, 201) << key.body;
    const std::vector<std::string> viewer{"Authorization: Token " +
                                          std::string(json::parse(key.body).at("key").as_string())};
    auto viewer_row = settled(srv, id, viewer);
    EXPECT_EQ(viewer_row.at("state"), "dead");
    EXPECT_EQ(viewer_row.at("last_error"), "webhook: answered 500");
    auto dead = http_request(srv.port(), "GET", "/api/v1/notifications/dead", {}, viewer);
    ASSERT_EQ(dead.status, 200) << dead.body;
    EXPECT_EQ(dead.body.find("nope"), std::string::npos) << dead.body;
}

}  // namespace
}  // namespace clisonix
