// scripts/cluster as a user runs it: a whole cluster (three nats-server, PostgreSQL, Redis,
// three Clisonix nodes, nginx) on free loopback ports in a temp dir, written through one node
// and read through nginx, a node killed and started again, and everything stopped.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "live/ws_client.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using testing::process;

const std::string script = CLISONIX_SOURCE_DIR "/scripts/cluster";
const std::string json_header = "Content-Type: application/json";

struct script_run {
    int exit_code = -1;
    std::string out, err;
    // The last stdout line as JSON (null when it is not JSON).
    json::value last_json() const {
        auto end = out.find_last_not_of('\n');
        if (end == std::string::npos) return nullptr;
        auto start = out.rfind('\n', end);
        std::string line = out.substr(start == std::string::npos ? 0 : start + 1, end + 1);
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        return ec ? json::value(nullptr) : v;
    }
};

script_run run_script(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = 120s) {
    std::vector<std::string> argv{"/bin/bash", script};
    argv.insert(argv.end(), args.begin(), args.end());
    process p(argv, {std::string("CLISONIX_BINARY=") + CLISONIX_BINARY});
    auto code = p.wait(timeout);
    return {code.value_or(-1), p.out(), p.err()};
}

// "http://127.0.0.1:P", "127.0.0.1:P", "nats://127.0.0.1:P" -> P.
uint16_t port_of(const json::value& address) {
    std::string text(address.as_string());
    return static_cast<uint16_t>(std::stoi(text.substr(text.rfind(':') + 1)));
}

// Alive and not a zombie: a killed process whose parent has not reaped it yet is gone.
bool alive(int64_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto paren = text.rfind(") ");
    if (paren == std::string::npos) return false;
    char state = text[paren + 2];
    return state != 'Z' && state != 'X';
}

bool accepts(uint16_t port) {
    return testing::connection(port).connected();
}

std::map<int64_t, double> points_of(uint16_t port, const std::string& token,
                                    const std::string& device, int* status = nullptr) {
    auto r = testing::http_request(
        port, "GET", "/api/v1/query?device=" + device + "&metric=v&from=0&to=4102444800000", {},
        {"Authorization: Bearer " + token});
    if (status) *status = r.status;
    std::map<int64_t, double> out;
    if (r.status != 200) return out;
    auto answer = json::parse(r.body);
    for (const auto& s : answer.at("series").as_array())
        for (const auto& p : s.at("points").as_array())
            out[p.as_array()[0].to_number<int64_t>()] = p.as_array()[1].to_number<double>();
    return out;
}

// Whether `port` answers the device's points exactly within `timeout`.
::testing::AssertionResult answers(uint16_t port, const std::string& token,
                                   const std::string& device,
                                   const std::map<int64_t, double>& expected,
                                   std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::map<int64_t, double> got;
    int status = 0;
    do {
        got = points_of(port, token, device, &status);
        if (got == expected) return ::testing::AssertionSuccess();
        std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return ::testing::AssertionFailure() << device << ": last answer " << status << " with "
                                         << got.size() << " of " << expected.size() << " points";
}

// Stops the cluster and deletes its dir whatever the test did, so that no process outlives it.
struct cluster_dir {
    testing::temp_dir parent{"clisonix-cluster"};
    std::string dir = (parent.path() / "c").string();
    ~cluster_dir() { run_script({"down", "--dir", dir, "--purge"}); }
};

TEST(cluster_script_test, up_serves_through_nginx_survives_a_killed_node_and_down_stops_all) {
    cluster_dir cluster;
    const std::string& dir = cluster.dir;

    auto up = run_script({"up", "--dir", dir});
    ASSERT_EQ(up.exit_code, 0) << up.err;
    json::value layout = up.last_json();
    ASSERT_TRUE(layout.is_object()) << up.out;
    EXPECT_EQ(layout.at("dir").as_string(), dir);
    EXPECT_TRUE(layout.at("http").as_string().starts_with("http://127.0.0.1:"));
    EXPECT_TRUE(layout.at("mqtt").as_string().starts_with("127.0.0.1:"));
    EXPECT_TRUE(layout.at("postgres").as_string().starts_with("postgres://"));
    EXPECT_TRUE(layout.at("redis").as_string().starts_with("redis://127.0.0.1:"));
    const auto& nodes = layout.at("nodes").as_array();
    const auto& nats = layout.at("nats").as_array();
    ASSERT_EQ(nodes.size(), 3u);
    ASSERT_EQ(nats.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(nodes[i].at("id").as_string(), "n" + std::to_string(i + 1));
        EXPECT_EQ(nats[i].at("name").as_string(), "nats" + std::to_string(i + 1));
        EXPECT_TRUE(alive(nodes[i].at("pid").as_int64()));
        EXPECT_TRUE(alive(nats[i].at("pid").as_int64()));
    }
    EXPECT_TRUE(alive(layout.at("nginx_pid").as_int64()));
    const uint16_t entry = port_of(layout.at("http"));
    const uint16_t n2 = port_of(nodes[1].at("http"));

    // `up` again while it runs: refused, naming the dir.
    auto twice = run_script({"up", "--dir", dir});
    EXPECT_EQ(twice.exit_code, 1);
    EXPECT_NE(twice.err.find("a cluster is already running in " + dir), std::string::npos)
        << twice.err;

    // The admin logs in on node 2 with the printed password and writes there; nginx's address
    // answers the same points, exactly, whichever node it picks.
    const std::string password(layout.at("admin_password").as_string());
    auto login = testing::http_request(n2, "POST", "/api/v1/auth/login",
                                       R"({"username":"admin","password":")" + password + "\"}",
                                       {"Content-Type: application/json"});
    ASSERT_EQ(login.status, 200) << login.body;
    const std::string token(json::parse(login.body).at("access_token").as_string());
    const std::vector<std::string> auth{"Authorization: Bearer " + token};
    std::map<int64_t, double> expected;
    std::string lines;
    for (int i = 0; i < 20; ++i) {
        int64_t ts = 1'764'892'800'000 + i * 1000;
        double v = 100 + i * 0.25;
        lines +=
            "telemetry,device=press-7 v=" + std::to_string(v) + " " + std::to_string(ts) + "\n";
        expected[ts] = v;
    }
    auto wrote = testing::http_request(n2, "POST", "/api/v1/write?precision=ms", lines, auth);
    ASSERT_EQ(wrote.status, 204) << wrote.body;
    EXPECT_TRUE(answers(entry, token, "press-7", expected, 10s));

    // The dashboard through nginx.
    auto page = testing::http_request(entry, "GET", "/");
    EXPECT_EQ(page.status, 200);
    EXPECT_TRUE(page.header("content-type").starts_with("text/html"))
        << page.header("content-type");
    EXPECT_NE(page.body.find("<title>Clisonix</title>"), std::string::npos) << page.body;

    // The live WebSocket through nginx: the upgrade reaches a node and comes back.
    testing::connection live(entry);
    ASSERT_TRUE(
        live.send("GET /api/v1/live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: bearer, " +
                  token + "\r\n\r\n"));
    auto upgraded = live.read_response(1s);  // a 101 has no length: read until the timeout
    EXPECT_EQ(upgraded.status, 101) << upgraded.body;
    EXPECT_EQ(upgraded.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    // MQTT QoS 1 through nginx's stream proxy, with a device token made through nginx.
    auto made = testing::http_request(entry, "POST", "/api/v1/devices/mqtt-7/token", {}, auth);
    ASSERT_EQ(made.status, 201) << made.body;
    const std::string device_token(json::parse(made.body).at("token").as_string());
    process pub({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p",
                 std::to_string(port_of(layout.at("mqtt"))), "-u", device_token, "-q", "1", "-t",
                 "v1/devices/me/telemetry", "-m", R"({"ts":1764892800000,"values":{"v":4.25}})"});
    ASSERT_EQ(pub.wait(10s), 0) << pub.err();
    EXPECT_TRUE(answers(entry, token, "mqtt-7", {{1'764'892'800'000, 4.25}}, 10s));

    // A device connected to n3 hears shared attributes set through n1, and its session ends
    // when n1 rotates its token: both travel between the nodes as cluster notices.
    const std::string n3_mqtt = std::to_string(port_of(nodes[2].at("mqtt")));
    const uint16_t n1_http = port_of(nodes[0].at("http"));
    process listener({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", n3_mqtt, "-u",
                      device_token, "-q", "1", "-t", "v1/devices/me/attributes", "-C", "1", "-W",
                      "20"});
    std::this_thread::sleep_for(1s);  // subscribed
    auto shared =
        testing::http_request(n1_http, "POST", "/api/v1/devices/mqtt-7/attributes?scope=shared",
                              R"({"setpoint":72.5})", {auth[0], json_header});
    ASSERT_EQ(shared.status / 100, 2) << shared.body;
    ASSERT_EQ(listener.wait(10s), 0) << listener.err();
    boost::system::error_code bad;
    auto pushed = json::parse(listener.out(), bad);
    ASSERT_FALSE(bad) << listener.out();
    EXPECT_EQ(pushed.at("setpoint").to_number<double>(), 72.5) << listener.out();

    process session({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", n3_mqtt, "-u", device_token,
                     "-t", "v1/devices/me/attributes", "-W", "30"});
    std::this_thread::sleep_for(1s);  // connected
    auto rotated = testing::http_request(n1_http, "POST", "/api/v1/devices/mqtt-7/token", {}, auth);
    ASSERT_EQ(rotated.status, 201) << rotated.body;
    auto ended = session.wait(10s);
    EXPECT_TRUE(ended.has_value()) << "the session on n3 outlived its token, rotated on n1";
    EXPECT_NE(session.err().find("Connection Refused"), std::string::npos) << session.err();

    // An alarm raised by a rule made through n1 on points written through n2 is one alarm in
    // the cluster; a live client on n3 hears it created once, and acknowledged through n1.
    const uint16_t n3_http = port_of(nodes[2].at("http"));
    testing::ws_client::options live_opts;
    live_opts.protocols = "bearer, " + token;
    testing::ws_client live3(n3_http, live_opts);
    ASSERT_EQ(live3.status(), 101);
    ASSERT_TRUE(live3.read().has_value());  // hello
    ASSERT_TRUE(live3.send(R"({"type":"subscribe","telemetry":{"devices":[]},"alarms":true})"));
    ASSERT_TRUE(live3.read().has_value());  // subscribed
    auto rule = testing::http_request(
        n1_http, "POST", "/api/v1/rules",
        R"({"name":"press hot","scope":{"device":"press-9"},"severity":"major","condition":"v > 80","clear":"v < 75"})",
        {auth[0], json_header});
    ASSERT_EQ(rule.status, 201) << rule.body;
    std::this_thread::sleep_for(500ms);  // the other nodes reload their rules (change feed)
    auto hot = testing::http_request(n2, "POST", "/api/v1/write?precision=ms",
                                     "telemetry,device=press-9 v=91.5 1764892800000\n", auth);
    ASSERT_EQ(hot.status, 204) << hot.body;
    auto created = live3.read();
    ASSERT_TRUE(created.has_value());
    auto created_doc = json::parse(*created);
    EXPECT_EQ(created_doc.at("event"), "alarm.created") << *created;
    const int64_t alarm_id = created_doc.at("alarm").at("id").as_int64();
    auto ack = testing::http_request(
        n1_http, "POST", "/api/v1/alarms/" + std::to_string(alarm_id) + "/ack", {}, auth);
    ASSERT_EQ(ack.status, 200) << ack.body;
    auto acked = live3.read();
    ASSERT_TRUE(acked.has_value());
    EXPECT_EQ(json::parse(*acked).at("event"), "alarm.acknowledged") << *acked;
    EXPECT_FALSE(live3.read(1s).has_value()) << "each change once on n3";
    auto listed = testing::http_request(entry, "GET", "/api/v1/alarms?device=press-9", {}, auth);
    ASSERT_EQ(listed.status, 200) << listed.body;
    EXPECT_EQ(json::parse(listed.body).at("total"), 1) << listed.body;

    auto status = run_script({"status", "--dir", dir});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    json::value all = status.last_json();
    ASSERT_TRUE(all.is_object()) << status.out;
    for (const auto& n : all.at("nodes").as_array())
        EXPECT_EQ(n.at("running"), true) << n;
    for (const auto& n : all.at("nats").as_array())
        EXPECT_EQ(n.at("running"), true) << n;
    EXPECT_EQ(all.at("nginx_running"), true);
    EXPECT_EQ(all.at("postgres_running"), true);
    EXPECT_EQ(all.at("redis_running"), true);

    // n1 killed: status names it, nginx keeps answering within 5 s through the other two.
    const int64_t n1_pid = nodes[0].at("pid").as_int64();
    ASSERT_EQ(::kill(static_cast<pid_t>(n1_pid), SIGKILL), 0);
    auto killed_at = std::chrono::steady_clock::now();
    auto down_one = run_script({"status", "--dir", dir});
    EXPECT_EQ(down_one.exit_code, 1);
    EXPECT_NE(down_one.err.find("not running: n1"), std::string::npos) << down_one.err;
    json::value without_n1 = down_one.last_json();
    ASSERT_TRUE(without_n1.is_object()) << down_one.out;
    EXPECT_EQ(without_n1.at("nodes").as_array()[0].at("running"), false);
    EXPECT_EQ(without_n1.at("nodes").as_array()[1].at("running"), true);
    // nginx passes a request that n1 refuses on to a live node: even the first one answers.
    int first = 0;
    points_of(entry, token, "press-7", &first);
    EXPECT_EQ(first, 200) << "the first query through nginx after n1 died";
    int answered = 0;
    while (std::chrono::steady_clock::now() - killed_at < 5s) {
        if (points_of(entry, token, "press-7", &answered) == expected) break;
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(answered, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 5s);
    // Every request after that too: nginx skips the dead node.
    for (int i = 0; i < 6; ++i)
        EXPECT_EQ(points_of(entry, token, "press-7"), expected) << i;

    // `start n1` brings it back on its port and data.
    auto started = run_script({"start", "n1", "--dir", dir});
    ASSERT_EQ(started.exit_code, 0) << started.err;
    json::value n1 = started.last_json();
    ASSERT_TRUE(n1.is_object()) << started.out;
    EXPECT_EQ(n1.at("id").as_string(), "n1");
    EXPECT_EQ(n1.at("http"), nodes[0].at("http"));
    EXPECT_NE(n1.at("pid").as_int64(), n1_pid);
    EXPECT_TRUE(answers(port_of(n1.at("http")), token, "press-7", expected, 10s));
    auto again = run_script({"start", "n1", "--dir", dir});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find("n1 is already running"), std::string::npos) << again.err;
    auto healed = run_script({"status", "--dir", dir});
    EXPECT_EQ(healed.exit_code, 0) << healed.err;
    json::value healed_layout = healed.last_json();
    ASSERT_TRUE(healed_layout.is_object()) << healed.out;

    // down: no process of the layout left, no port of it open; the data stays until --purge.
    std::vector<int64_t> pids{healed_layout.at("nginx_pid").as_int64()};
    std::vector<uint16_t> ports{entry, port_of(layout.at("mqtt")), port_of(layout.at("redis")),
                                port_of(layout.at("postgres"))};
    for (const char* list : {"nodes", "nats"})
        for (const auto& p : healed_layout.at(list).as_array())
            pids.push_back(p.at("pid").as_int64());
    for (const auto& n : nodes)
        ports.push_back(port_of(n.at("http")));
    for (const auto& n : nats)
        ports.push_back(port_of(n.at("url")));
    auto down = run_script({"down", "--dir", dir});
    EXPECT_EQ(down.exit_code, 0) << down.err;
    for (auto pid : pids)
        EXPECT_FALSE(alive(pid)) << "pid " << pid;
    for (auto port : ports)
        EXPECT_FALSE(accepts(port)) << "port " << port;
    EXPECT_TRUE(std::filesystem::exists(dir + "/cluster.env"));
    EXPECT_TRUE(std::filesystem::is_directory(dir + "/n2"));
    EXPECT_FALSE(std::filesystem::exists(dir + "/run/n2.pid"));
    auto down_again = run_script({"down", "--dir", dir, "--purge"});
    EXPECT_EQ(down_again.exit_code, 0) << down_again.err;
    EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(cluster_script_test, bad_arguments_get_the_usage_and_exit_2) {
    auto none = run_script({});
    EXPECT_EQ(none.exit_code, 2);
    EXPECT_NE(none.err.find("usage: scripts/cluster up [--dir DIR]"), std::string::npos)
        << none.err;
    auto unknown = run_script({"start", "n4", "--dir", "/nonexistent"});
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_NE(unknown.err.find("start: unknown process 'n4'"), std::string::npos) << unknown.err;
    auto purge = run_script({"up", "--purge"});
    EXPECT_EQ(purge.exit_code, 2);
    EXPECT_NE(purge.err.find("--purge is an option of down only"), std::string::npos) << purge.err;
}

TEST(cluster_script_test, up_without_the_binary_says_to_run_setup_and_exits_2) {
    testing::temp_dir parent{"clisonix-cluster"};
    std::vector<std::string> argv{"/bin/bash", script, "up", "--dir", parent.str() + "/c"};
    process p(argv, {"CLISONIX_BINARY=" + parent.str() + "/no-clisonix"});
    ASSERT_EQ(p.wait(30s), 2) << p.err();
    EXPECT_NE(p.err().find("no Clisonix binary at " + parent.str() +
                           "/no-clisonix: run scripts/setup (or set CLISONIX_BINARY)"),
              std::string::npos)
        << p.err();
    EXPECT_FALSE(std::filesystem::exists(parent.str() + "/c"));
}

}  // namespace
}  // namespace clisonix
