// The replicated telemetry log with real processes: three clustered nats-server with
// JetStream and two Clisonix nodes, all on free loopback ports.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::process;
using testing::server_process;

// One nats-server of a three-server JetStream cluster, with its own store.
struct nats_server {
    testing::temp_dir store{"clisonix-nats"};
    uint16_t client_port = testing::free_port();
    uint16_t route_port = testing::free_port();
    std::unique_ptr<process> proc;

    void start(int index, const std::string& routes) {
        proc = std::make_unique<process>(std::vector<std::string>{
            "/usr/sbin/nats-server", "-js", "-sd", store.str(), "-a", "127.0.0.1", "-p",
            std::to_string(client_port), "-n", "nats-" + std::to_string(index), "--cluster_name",
            "clisonix-test", "--cluster", "nats://127.0.0.1:" + std::to_string(route_port),
            "--routes", routes});
    }
    // One server without routes (a stream of one replica), accepting clients on return.
    void start_alone() {
        proc = std::make_unique<process>(
            std::vector<std::string>{"/usr/sbin/nats-server", "-js", "-sd", store.str(), "-a",
                                     "127.0.0.1", "-p", std::to_string(client_port)});
        for (int i = 0; i < 100 && !testing::connection(client_port).connected(); ++i)
            std::this_thread::sleep_for(50ms);
    }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(client_port); }
};

// How long a node may take to apply what another node acknowledged. Applying takes well
// under a second here; the bound is for a machine whose disk is busy with other tests (a
// 10 s bound once ran out while a 9-million-point backfill was writing beside it). A
// passing check returns as soon as the points are there.
constexpr std::chrono::seconds apply_bound{30};

// The points of one device's metric as (ms, value), read through `node`.
std::map<int64_t, double> points_of(server_process& node, const std::string& device) {
    auto r = node.get("/api/v1/query?device=" + device + "&metric=v&from=0&to=4102444800000");
    std::map<int64_t, double> out;
    if (r.status != 200) return out;
    auto answer = boost::json::parse(r.body);
    for (const auto& s : answer.at("series").as_array())
        for (const auto& p : s.at("points").as_array())
            out[p.as_array()[0].to_number<int64_t>()] = p.as_array()[1].to_number<double>();
    return out;
}

// A write of `count` points for each of `devices` devices, starting at `first_ms`, and the
// points each device should then hold.
struct writes {
    std::map<std::string, std::map<int64_t, double>> expected;

    std::string lines(int devices, int count, int64_t first_ms) {
        std::string body;
        for (int d = 0; d < devices; ++d) {
            std::string device = "press-" + std::to_string(d);
            for (int i = 0; i < count; ++i) {
                int64_t ts = first_ms + i * 1000;
                double v = d * 1000 + (first_ms / 1000 % 100000) + i + 0.25;
                body += "telemetry,device=" + device + " v=" + std::to_string(v) + " " +
                        std::to_string(ts) + "\n";
                expected[device][ts] = v;
            }
        }
        return body;
    }
};

// Whether `node` answers every expected point with its exact value within `timeout`.
::testing::AssertionResult holds_all(server_process& node, const writes& w,
                                     std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string missing;
    do {
        missing.clear();
        for (const auto& [device, points] : w.expected)
            if (points_of(node, device) != points) missing += " " + device;
        if (missing.empty()) return ::testing::AssertionSuccess();
        std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    // What the node says about itself, so that a failure shows whether it was catching up,
    // unready or answering without the points.
    auto ready = node.get("/readyz");
    return ::testing::AssertionFailure() << "devices differing:" << missing << "\n/readyz "
                                         << ready.status << " " << ready.body.substr(0, 300);
}

TEST(cluster_log_test, writes_through_one_node_are_read_through_the_other_across_kills) {
    std::vector<nats_server> nats(3);
    std::string routes, urls;
    for (auto& n : nats) {
        routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") +
                  std::to_string(n.route_port);
        urls += (urls.empty() ? "" : ",") + n.url();
    }
    for (int i = 0; i < 3; ++i)
        nats[i].start(i, routes);
    for (auto& n : nats)
        for (int i = 0; i < 100 && !testing::connection(n.client_port).connected(); ++i)
            std::this_thread::sleep_for(50ms);

    auto node_args = [&](const std::string& id) {
        return std::vector<std::string>{
            "--set", "cluster.node_id=" + id,       "--set", "cluster.nats=" + urls,
            "--set", "cluster.publish_timeout=15s", "--set", "cluster.apply_wait=15s"};
    };
    const uint16_t mqtt_port = testing::free_port();
    auto node1_args = node_args("n1");
    node1_args.insert(node1_args.end(), {"--set", "mqtt.port=" + std::to_string(mqtt_port)});
    server_process node1(node1_args);
    auto node2 = std::make_unique<server_process>(node_args("n2"));

    // Written through node 1: 204 once JetStream and node 1 have the points, so node 1
    // answers them at once (read your writes) and node 2 soon after, with exact values.
    writes w;
    int64_t t0 = 1'764'892'800'000;
    auto first = node1.post("/api/v1/write?precision=ms", w.lines(20, 5, t0));
    ASSERT_EQ(first.status, 204) << first.body;
    EXPECT_TRUE(holds_all(node1, w, 0ms));
    EXPECT_TRUE(holds_all(*node2, w, apply_bound));

    // MQTT telemetry takes the same path: the QoS 1 PUBACK comes once the log has it.
    auto made = node1.post("/api/v1/devices/mqtt-1/token", "");
    ASSERT_EQ(made.status, 201) << made.body;
    std::string token(boost::json::parse(made.body).at("token").as_string());
    process pub({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(mqtt_port), "-u",
                 token, "-q", "1", "-t", "v1/devices/me/telemetry", "-m",
                 R"({"ts":1764892800000,"values":{"v":4.25}})"});
    ASSERT_EQ(pub.wait(10s), 0) << pub.err();
    w.expected["mqtt-1"][1'764'892'800'000] = 4.25;
    EXPECT_TRUE(holds_all(node1, w, 0ms));
    EXPECT_TRUE(holds_all(*node2, w, apply_bound));

    // Node 2 killed; node 1 takes more writes; node 2 restarted on its data catches up
    // from its durable consumer.
    node2->proc().signal(SIGKILL);
    node2->proc().wait();
    for (int round = 1; round <= 3; ++round) {
        auto r = node1.post("/api/v1/write?precision=ms", w.lines(20, 5, t0 + round * 60'000));
        ASSERT_EQ(r.status, 204) << r.body;
    }
    server_process node2_again(server_process::on{node2->data()}, node_args("n2"));
    EXPECT_TRUE(holds_all(node2_again, w, apply_bound));

    // One NATS server killed: the stream's other two replicas still make a quorum, so every
    // write is still acknowledged and reaches node 2.
    nats[0].proc->signal(SIGKILL);
    nats[0].proc->wait();
    for (int round = 4; round <= 6; ++round) {
        auto r = node1.post("/api/v1/write?precision=ms", w.lines(20, 5, t0 + round * 60'000));
        ASSERT_EQ(r.status, 204) << r.body;
    }
    EXPECT_TRUE(holds_all(node1, w, 0ms));
    EXPECT_TRUE(holds_all(node2_again, w, apply_bound));
}

// The log keeps messages for cluster.stream_max_age. A node away longer lacks what the log
// dropped meanwhile: it says so on /readyz instead of answering with holes. A node started
// on a copy of another node's data directory starts after what that copy holds.
TEST(cluster_log_test, a_node_away_longer_than_the_log_keeps_is_not_ready_until_given_a_copy) {
    nats_server lone;
    lone.start_alone();
    auto args = [&](const std::string& id) {
        return std::vector<std::string>{
            "--set", "cluster.node_id=" + id,     "--set", "cluster.nats=" + lone.url(),
            "--set", "cluster.stream_replicas=1", "--set", "cluster.stream_max_age=2s",
            "--set", "mqtt.enabled=false"};
    };
    auto node1 = std::make_unique<server_process>(args("n1"));
    auto node2 = std::make_unique<server_process>(args("n2"));
    writes w;
    const int64_t t0 = 1'764'892'800'000;
    ASSERT_EQ(node1->post("/api/v1/write?precision=ms", w.lines(3, 5, t0)).status, 204);
    ASSERT_TRUE(holds_all(*node2, w, apply_bound));
    EXPECT_EQ(node2->get("/readyz").status, 200);

    // Node 2 away while node 1 takes more, for longer than the log keeps it.
    node2->proc().signal(SIGKILL);
    node2->proc().wait();
    ASSERT_EQ(node1->post("/api/v1/write?precision=ms", w.lines(3, 5, t0 + 60'000)).status, 204);
    std::this_thread::sleep_for(4s);
    server_process node2_back(server_process::on{node2->data()}, args("n2"));
    auto not_ready = testing::http_request(node2_back.port(), "GET", "/readyz");
    EXPECT_EQ(not_ready.status, 503) << not_ready.body;
    EXPECT_NE(not_ready.body.find("this node missed telemetry log messages"), std::string::npos)
        << not_ready.body;
    EXPECT_NE(not_ready.body.find("older than cluster.stream_max_age"), std::string::npos)
        << not_ready.body;
    EXPECT_EQ(node1->get("/readyz").status, 200) << "node 1 applied everything in time";

    // A new node on a copy of node 1's data directory (node 1 stopped for a consistent
    // copy) holds everything and is ready; node 1, back, hears what the new node takes.
    node1->proc().signal(SIGTERM);
    ASSERT_EQ(node1->proc().wait(), 0);
    testing::temp_dir copy{"clisonix-copy"};
    std::filesystem::copy(node1->data().path(), copy.path(),
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
    server_process node3(server_process::on{copy}, args("n3"));
    EXPECT_EQ(node3.get("/readyz").status, 200) << node3.get("/readyz").body;
    EXPECT_TRUE(holds_all(node3, w, 0ms));
    server_process node1_back(server_process::on{node1->data()}, args("n1"));
    ASSERT_EQ(node3.post("/api/v1/write?precision=ms", w.lines(3, 5, t0 + 120'000)).status, 204);
    EXPECT_TRUE(holds_all(node1_back, w, apply_bound));
}

// A node restarted after missing writes answers nothing until it applied what the log held
// when it started: a query gets either 503 "catching up" (nginx then asks another node) or
// the whole answer, never a partial one.
TEST(cluster_log_test, a_restarted_node_answers_only_once_it_has_caught_up) {
    nats_server lone;
    lone.start_alone();
    auto args = [&](const std::string& id) {
        return std::vector<std::string>{
            "--set", "cluster.node_id=" + id,     "--set", "cluster.nats=" + lone.url(),
            "--set", "cluster.stream_replicas=1", "--set", "mqtt.enabled=false",
            "--set", "analytics.detector=off",    "--set", "analytics.health=false"};
    };
    server_process node1(args("n1"));
    auto node2 = std::make_unique<server_process>(args("n2"));
    writes w;
    const int64_t t0 = 1'764'892'800'000;
    ASSERT_EQ(node1.post("/api/v1/write?precision=ms", w.lines(20, 5, t0)).status, 204);
    ASSERT_TRUE(holds_all(*node2, w, apply_bound));
    node2->proc().signal(SIGKILL);
    node2->proc().wait();
    // A backlog node 2 needs a moment to apply: 60 writes of 20 devices x 200 points.
    for (int round = 1; round <= 60; ++round)
        ASSERT_EQ(
            node1.post("/api/v1/write?precision=ms", w.lines(20, 200, t0 + round * 400'000)).status,
            204);
    server_process back(server_process::on{node2->data()}, args("n2"));
    int refused = 0, complete = 0;
    const auto& last_device = w.expected.rbegin()->second;
    for (auto until = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < until && complete == 0;) {
        // With the token node 2 gave before (a login is refused too while catching up).
        auto r = testing::http_request(back.port(), "GET",
                                       "/api/v1/query?device=" + w.expected.rbegin()->first +
                                           "&metric=v&from=0&to=4102444800000",
                                       {}, {"Authorization: Bearer " + node2->token()});
        if (r.status == 503) {
            EXPECT_NE(r.body.find("catching up on the telemetry log"), std::string::npos) << r.body;
            EXPECT_EQ(r.header("retry-after"), "1");
            ++refused;
            continue;
        }
        ASSERT_EQ(r.status, 200) << r.body;
        size_t points = 0;
        const auto answer = boost::json::parse(r.body);
        for (const auto& series : answer.at("series").as_array())
            points += series.at("points").as_array().size();
        ASSERT_EQ(points, last_device.size()) << "a partial answer after " << refused << " 503s";
        ++complete;
    }
    EXPECT_EQ(complete, 1);
    EXPECT_TRUE(holds_all(back, w, 0ms));
    EXPECT_EQ(back.get("/readyz").status, 200);
    std::cout << "queries refused while catching up: " << refused << "\n";
}

TEST(cluster_log_test, a_write_nats_does_not_acknowledge_is_a_503_naming_the_reason) {
    // One NATS server (a stream of one replica) takes the first write; once it is gone, no
    // write is acknowledged: 503 after cluster.publish_timeout, never a 500, never a 204.
    nats_server lone;
    lone.start_alone();
    server_process node({"--set", "cluster.node_id=solo", "--set", "cluster.nats=" + lone.url(),
                         "--set", "cluster.stream_replicas=1", "--set",
                         "cluster.publish_timeout=1s"});
    ASSERT_EQ(node.post("/api/v1/write?precision=ms", "m,device=a v=1.5 1000").status, 204);
    lone.proc->signal(SIGKILL);
    lone.proc->wait();
    auto refused = node.post("/api/v1/write?precision=ms", "m,device=a v=2.5 2000");
    EXPECT_EQ(refused.status, 503) << refused.body;
    auto body = boost::json::parse(refused.body);
    EXPECT_EQ(body.at("error").at("code").as_string(), "unavailable") << refused.body;
    EXPECT_NE(refused.body.find("did not acknowledge the write within 1000 ms "
                                "(cluster.publish_timeout)"),
              std::string::npos)
        << refused.body;
}

TEST(cluster_log_test, half_a_cluster_config_is_refused_at_start_naming_the_key) {
    testing::temp_dir data;
    auto common = std::vector<std::string>{"serve", "--data", data.str(), "--port",
                                           std::to_string(testing::free_port())};
    auto run = [&](std::vector<std::string> extra) {
        auto args = common;
        args.insert(args.end(), extra.begin(), extra.end());
        return testing::run_clisonix(args, {"CLISONIX_ADMIN_PASSWORD=test-admin-password-1"});
    };
    auto no_id = run({"--set", "cluster.nats=nats://127.0.0.1:4222"});
    EXPECT_EQ(no_id.exit_code, 2);
    EXPECT_NE(no_id.err.find("cluster.nats is set but cluster.node_id is empty"), std::string::npos)
        << no_id.err;
    auto dotted = run({"--set", "cluster.node_id=a.b", "--set", "cluster.nats=nats://x:1"});
    EXPECT_EQ(dotted.exit_code, 2);
    EXPECT_NE(dotted.err.find("cluster.node_id"), std::string::npos) << dotted.err;
    EXPECT_NE(dotted.err.find("may hold only letters, digits, '-' and '_'"), std::string::npos)
        << dotted.err;
}

TEST(cluster_log_test, without_nats_at_start_serve_gives_up_after_the_start_timeout) {
    testing::temp_dir data;
    auto started = std::chrono::steady_clock::now();
    auto run = testing::run_clisonix(
        {"serve", "--data", data.str(), "--port", std::to_string(testing::free_port()), "--set",
         "cluster.node_id=n1", "--set",
         "cluster.nats=nats://127.0.0.1:" + std::to_string(testing::free_port()), "--set",
         "cluster.start_timeout=2s", "--set", "mqtt.enabled=false"},
        {"CLISONIX_ADMIN_PASSWORD=test-admin-password-1"});
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);
    EXPECT_NE((run.out + run.err).find("could not be created within cluster.start_timeout"),
              std::string::npos)
        << run.out << run.err;
}

}  // namespace
}  // namespace clisonix
