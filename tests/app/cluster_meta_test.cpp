// Two Clisonix processes on one real PostgreSQL (Debian's, started by scripts/pg-test-server in
// a temp dir): what one node changes reaches the other's caches, the outbox is delivered by
// one node per row, and a node killed while holding claims leaves its rows to the other after
// the lease.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include <boost/json.hpp>

#include "common/time.h"
#include "notify/receiver.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::server_process;
namespace json = boost::json;

const std::vector<std::string> json_header{"Content-Type: application/json"};

// A PostgreSQL server of its own in a temp dir, stopped when the test ends.
class postgres_server {
public:
    postgres_server() {
        if (!run("start")) throw std::runtime_error("scripts/pg-test-server start failed");
        _url = testing::read_file(_dir.path() / "url");
        while (!_url.empty() && (_url.back() == '\n' || _url.back() == ' '))
            _url.pop_back();
    }
    ~postgres_server() { run("stop"); }
    const std::string& url() const { return _url; }

private:
    bool run(const std::string& verb) {
        const std::string cmd = std::string(CLISONIX_SOURCE_DIR) + "/scripts/pg-test-server " +
                                verb + " " + _dir.str() + " >/dev/null";
        return std::system(cmd.c_str()) == 0;
    }
    testing::temp_dir _dir{"clisonix-pg"};
    std::string _url;
};

// The flags of every node of one cluster: the shared meta store, the same channel-secret
// key, loopback webhooks, and a short claim lease for the takeover test.
std::vector<std::string> node_flags() {
    return {"--set", "notify.webhook_allow=127.0.0.1",
            "--set", "notify.secret_key=0123456789abcdef0123456789abcdef",
            "--set", "notify.claim_lease=3s",
            "--set", "analytics.detector=off"};
}

std::vector<std::string> node_env(const postgres_server& pg) {
    return {"CLISONIX_META_URL=" + pg.url()};
}

// Event id -> how many times it arrived.
std::map<std::string, int> deliveries(testing::receiver& rx) {
    std::map<std::string, int> seen;
    for (const auto& r : rx.requests())
        ++seen[r.header("x-clisonix-event-id")];
    return seen;
}

int64_t send_test(server_process& node) {
    auto r = node.post("/api/v1/channels/ops/test", "");
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status / 100 != 2) return -1;
    return json::parse(r.body).at("id").as_int64();
}

TEST(cluster_meta_test, a_type_device_and_rule_made_on_one_node_fire_on_the_other) {
    postgres_server pg;
    server_process a(node_flags(), node_env(pg));
    server_process b(node_flags(), node_env(pg));
    // B has loaded its (empty) devices and rules before A makes any.
    ASSERT_EQ(b.get("/api/v1/rules").status, 200);

    auto type =
        a.post("/api/v1/device-types",
               R"({"name":"pump","metrics":{"temperature":{"min":0,"max":80}}})", json_header);
    ASSERT_EQ(type.status, 201) << type.body;
    auto device = a.post("/api/v1/devices", R"({"name":"pump-1","type":"pump"})", json_header);
    ASSERT_EQ(device.status, 201) << device.body;
    // Scoped by type: B must know both the rule and which type pump-1 has.
    auto rule = a.post("/api/v1/rules", R"({"name":"pump hot","scope":{"device_type":"pump"},
        "severity":"major","condition":"temperature > 80"})",
                       json_header);
    ASSERT_EQ(rule.status, 201) << rule.body;
    const auto made = std::chrono::steady_clock::now();

    // Points written through B fire the rule once B has heard of the changes.
    int64_t total = 0;
    int64_t ts = now_ms();
    while (total == 0 && std::chrono::steady_clock::now() - made < 2s) {
        auto w = b.post("/api/v1/write?precision=ms",
                        "telemetry,device=pump-1 temperature=95 " + std::to_string(++ts) + "\n");
        ASSERT_EQ(w.status, 204) << w.body;
        auto alarms = b.get("/api/v1/alarms?status=active");
        ASSERT_EQ(alarms.status, 200) << alarms.body;
        total = json::parse(alarms.body).at("total").as_int64();
        if (total == 0) std::this_thread::sleep_for(50ms);
    }
    const auto took = std::chrono::steady_clock::now() - made;
    EXPECT_EQ(total, 1) << "B did not fire A's rule within 2 s";
    std::cout << "rule and device from A fired on B after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    auto alarm = json::parse(b.get("/api/v1/alarms?status=active").body).at("alarms").at(0);
    EXPECT_EQ(alarm.at("device"), "pump-1");
    EXPECT_EQ(alarm.at("severity"), "major");
}

TEST(cluster_meta_test, an_api_key_revoked_on_one_node_stops_working_on_the_other) {
    postgres_server pg;
    server_process a(node_flags(), node_env(pg));
    server_process b(node_flags(), node_env(pg));
    auto created =
        a.post("/api/v1/apikeys", R"({"name":"telegraf","role":"operator"})", json_header);
    ASSERT_EQ(created.status, 201) << created.body;
    const std::string key(json::parse(created.body).at("key").as_string());
    const std::string id(json::parse(created.body).at("id").as_string());
    auto me = [&](server_process& node) {
        return testing::http_request(node.port(), "GET", "/api/v1/auth/me", {},
                                     {"Authorization: Token " + key})
            .status;
    };
    ASSERT_EQ(me(b), 200);  // verified, and now cached, on B

    auto revoked = testing::http_request(a.port(), "DELETE", "/api/v1/apikeys/" + id, {},
                                         {"Authorization: Bearer " + a.token()});
    ASSERT_EQ(revoked.status, 204) << revoked.body;
    const auto at = std::chrono::steady_clock::now();
    int status = me(b);
    while (status == 200 && std::chrono::steady_clock::now() - at < 2s) {
        std::this_thread::sleep_for(20ms);
        status = me(b);
    }
    EXPECT_EQ(status, 401) << "the revoked key still works on B after 2 s";
    std::cout << "key revoked on A refused on B after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - at)
                     .count()
              << " ms\n";
}

TEST(cluster_meta_test, each_outbox_row_is_delivered_once_with_two_dispatchers) {
    postgres_server pg;
    testing::receiver rx;
    server_process a(node_flags(), node_env(pg));
    server_process b(node_flags(), node_env(pg));
    auto made =
        a.post("/api/v1/channels", R"({"name":"ops","type":"webhook","url":")" + rx.url() + R"("})",
               json_header);
    ASSERT_EQ(made.status, 201) << made.body;

    // Enqueued through both nodes, so that both dispatchers are awake and claim at once.
    constexpr int n = 60;
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i)
        ids.push_back(send_test(i % 2 == 0 ? a : b));
    ASSERT_TRUE(rx.wait_for(n, 20s)) << "only " << rx.count() << " of " << n << " arrived";
    std::this_thread::sleep_for(500ms);  // room for a duplicate to show up

    auto seen = deliveries(rx);
    EXPECT_EQ(rx.count(), static_cast<size_t>(n));
    ASSERT_EQ(seen.size(), static_cast<size_t>(n));
    for (int64_t id : ids)
        EXPECT_EQ(seen[std::to_string(id)], 1) << "event " << id;
    auto delivered = b.get("/api/v1/notifications?state=delivered&limit=1");
    ASSERT_EQ(delivered.status, 200) << delivered.body;
    EXPECT_EQ(json::parse(delivered.body).at("total").as_int64(), n) << delivered.body;
}

TEST(cluster_meta_test, rows_claimed_by_a_killed_node_go_to_the_other_after_the_lease) {
    postgres_server pg;
    testing::receiver rx;
    server_process a(node_flags(), node_env(pg));
    auto made =
        a.post("/api/v1/channels", R"({"name":"ops","type":"webhook","url":")" + rx.url() + R"("})",
               json_header);
    ASSERT_EQ(made.status, 201) << made.body;

    // A slow receiver: node A delivers the first row while the other four are enqueued,
    // then claims those four at once and is killed while delivering the second.
    rx.set_delay(3s);
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i)
        ids.push_back(send_test(a));
    ASSERT_TRUE(rx.wait_for(2, 10s));
    a.proc().signal(SIGKILL);
    a.proc().wait(5s);
    rx.set_delay(0ms);  // also ends the wait of A's last request

    // Node B starts while A's rows are still claimed, and adds one of its own.
    server_process b(node_flags(), node_env(pg));
    ids.push_back(send_test(b));
    ASSERT_TRUE(rx.wait_for(ids.size() + 1, 15s))
        << "only " << rx.count() << " of " << ids.size() + 1 << " arrived";
    std::this_thread::sleep_for(500ms);

    auto requests = rx.requests();
    ASSERT_EQ(requests[1].header("x-clisonix-event-id"), std::to_string(ids[1]));
    auto seen = deliveries(rx);
    for (int64_t id : ids) {
        // The row A was delivering when it died arrives again (at least once); the others once.
        EXPECT_EQ(seen[std::to_string(id)], id == ids[1] ? 2 : 1) << "event " << id;
    }
    // The rows A held waited for its lease (3 s from its claim, just before the second
    // request arrived) rather than going to B as soon as it started.
    for (size_t i = 2; i < requests.size(); ++i) {
        const std::string id = requests[i].header("x-clisonix-event-id");
        if (id == std::to_string(ids.back())) continue;  // B's own row
        EXPECT_GE(requests[i].at - requests[1].at, 2s)
            << "event " << id << " came before the lease ran out";
    }
    auto pending = b.get("/api/v1/notifications?state=pending&limit=1");
    ASSERT_EQ(pending.status, 200) << pending.body;
    EXPECT_EQ(json::parse(pending.body).at("total").as_int64(), 0) << pending.body;
}

}  // namespace
}  // namespace clisonix
