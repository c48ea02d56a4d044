// The CoAP endpoint through the real binary, with Debian's coap-client-notls (libcoap3-bin) as
// the device: ThingsBoard's CoAP API for telemetry and attributes, the response codes a
// device acts on, durability before the acknowledgement, and raw datagrams no client sends.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
using testing::server_process;

constexpr const char* range_all = "from=0&to=4102444800000";
constexpr int64_t ts0 = 1704067200000;  // 2024-01-01T00:00:00Z

// A UDP port on 127.0.0.1 that was free a moment ago.
uint16_t free_udp_port() {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

// What coap-client printed of the last response it received (with -v 6 it prints every PDU
// as "v:1 t:ACK c:2.04 i:.. {token} [ options ] :: 'payload'").
struct coap_reply {
    std::string type;     // "ACK", "NON", "CON"
    std::string code;     // "2.04"
    std::string options;  // as printed: "Max-Age:10, Size1:1024"
    std::string payload;
    std::string output;  // everything, for failure messages
};

coap_reply parse_reply(const std::string& out) {
    coap_reply r;
    r.output = out;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("v:1 t:", 0) != 0) continue;
        auto c = line.find(" c:");
        if (c == std::string::npos || !std::isdigit(static_cast<unsigned char>(line[c + 3])))
            continue;  // a request, not a response
        r.type = line.substr(6, line.find(' ', 6) - 6);
        r.code = line.substr(c + 3, 4);
        auto open = line.find(" [ "), close = line.find(" ]", open);
        if (open != std::string::npos && close != std::string::npos)
            r.options = close > open + 3 ? line.substr(open + 3, close - open - 3) : "";
        auto p = line.find(":: '");
        r.payload = p == std::string::npos ? "" : line.substr(p + 4, line.rfind('\'') - p - 4);
    }
    return r;
}

// One coap-client-notls run: `method` on coap://127.0.0.1:port/path, CON unless `non`.
coap_reply coap(uint16_t port, const std::string& method, const std::string& path,
                const std::string& payload = {}, bool non = false) {
    std::vector<std::string> argv{
        "/usr/bin/coap-client-notls", "-m", method, "-v", "6", "-B", "10"};
    if (non) argv.push_back("-N");
    if (!payload.empty()) argv.insert(argv.end(), {"-e", payload});
    argv.push_back("coap://127.0.0.1:" + std::to_string(port) + path);
    testing::process client(argv);
    auto rc = client.wait(30s);
    EXPECT_TRUE(rc.has_value()) << "coap-client did not finish";
    return parse_reply(client.out() + client.err());
}

std::string series(const std::string& device, const std::string& metric,
                   const std::string& points) {
    return R"({"series":[{"measurement":"telemetry","tags":{"device":")" + device +
           R"("},"metric":")" + metric + R"(","points":)" + points + "}]}";
}

// A server with the CoAP endpoint on a free UDP port.
struct coap_server {
    explicit coap_server(std::vector<std::string> extra = {})
        : port(free_udp_port()), srv(args(port, std::move(extra))) {}
    // On the data of an earlier server, on that server's CoAP port.
    coap_server(const testing::temp_dir& data, uint16_t same_port)
        : port(same_port), srv(server_process::on{data}, args(port, {})) {}

    static std::vector<std::string> args(uint16_t port, std::vector<std::string> extra) {
        std::vector<std::string> a{"--set", "coap.port=" + std::to_string(port)};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::string create_device(const std::string& name) {
        auto r = srv.post("/api/v1/devices", R"({"name":")" + name + R"("})",
                          {"Content-Type: application/json"});
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(boost::json::parse(r.body).at("token").as_string());
    }
    std::string query(const std::string& device, const std::string& metric) {
        auto r = srv.get("/api/v1/query?device=" + device + "&metric=" + metric + "&" + range_all);
        EXPECT_EQ(r.status, 200) << r.body;
        return r.body;
    }
    std::string telemetry_path(const std::string& token) {
        return "/api/v1/" + token + "/telemetry";
    }
    uint16_t port;
    server_process srv;
};

TEST(coap_endpoint_test, a_confirmable_post_is_stored_and_answered_2_04_on_the_ack) {
    coap_server s;
    auto token = s.create_device("pump-1");
    auto r = coap(s.port, "post", s.telemetry_path(token),
                  R"([{"ts":1704067200000,"values":{"temperature":21.5,"rpm":1450}},)"
                  R"({"ts":1704067201000,"values":{"temperature":22.25}}])");
    EXPECT_EQ(r.type, "ACK") << r.output;  // piggybacked: the ACK carries the answer
    EXPECT_EQ(r.code, "2.04") << r.output;
    EXPECT_EQ(
        s.query("pump-1", "temperature"),
        series("pump-1", "temperature",
               "[[" + std::to_string(ts0) + ",21.5],[" + std::to_string(ts0 + 1000) + ",22.25]]"));
    EXPECT_EQ(s.query("pump-1", "rpm"),
              series("pump-1", "rpm", "[[" + std::to_string(ts0) + ",1450]]"));
    auto metrics = s.srv.get("/metrics").body;
    EXPECT_NE(metrics.find("clisonix_coap_requests_total{code=\"2.04\"} 1"), std::string::npos)
        << metrics;
}

TEST(coap_endpoint_test, a_bad_token_is_4_01_and_a_rotated_token_stops_working) {
    coap_server s;
    auto old_token = s.create_device("pump-1");
    auto bad = coap(s.port, "post", s.telemetry_path("not-a-token"), R"({"temperature":1})");
    EXPECT_EQ(bad.code, "4.01") << bad.output;
    EXPECT_EQ(bad.payload, "the device token is not valid");

    auto rotated = s.srv.post("/api/v1/devices/pump-1/token", "");
    ASSERT_EQ(rotated.status, 201) << rotated.body;
    auto new_token = std::string(boost::json::parse(rotated.body).at("token").as_string());
    auto refused = coap(s.port, "post", s.telemetry_path(old_token),
                        R"({"ts":1704067200000,"values":{"temperature":1}})");
    EXPECT_EQ(refused.code, "4.01") << refused.output;
    auto taken = coap(s.port, "post", s.telemetry_path(new_token),
                      R"({"ts":1704067201000,"values":{"temperature":2}})");
    EXPECT_EQ(taken.code, "2.04") << taken.output;
    EXPECT_EQ(s.query("pump-1", "temperature"),
              series("pump-1", "temperature", "[[" + std::to_string(ts0 + 1000) + ",2]]"));
}

TEST(coap_endpoint_test, bad_json_is_4_00_naming_the_field_and_nothing_is_stored) {
    coap_server s;
    auto token = s.create_device("pump-1");
    auto r = coap(s.port, "post", s.telemetry_path(token),
                  R"({"ts":1704067200000,"values":{"pressure":1,"temperature":[1]}})");
    EXPECT_EQ(r.type, "ACK") << r.output;
    EXPECT_EQ(r.code, "4.00") << r.output;
    EXPECT_EQ(r.payload, "values.temperature: expected a number, string or boolean");
    auto syntax = coap(s.port, "post", s.telemetry_path(token), R"({"temperature":)");
    EXPECT_EQ(syntax.code, "4.00") << syntax.output;
    EXPECT_FALSE(syntax.payload.empty()) << syntax.output;
    EXPECT_EQ(s.query("pump-1", "pressure"), R"({"series":[]})");
}

TEST(coap_endpoint_test, a_non_confirmable_post_is_stored_too) {
    coap_server s;
    auto token = s.create_device("pump-1");
    auto r = coap(s.port, "post", s.telemetry_path(token),
                  R"({"ts":1704067200000,"values":{"temperature":19.75}})", /*non=*/true);
    EXPECT_EQ(r.type, "NON") << r.output;
    EXPECT_EQ(r.code, "2.04") << r.output;
    EXPECT_EQ(s.query("pump-1", "temperature"),
              series("pump-1", "temperature", "[[" + std::to_string(ts0) + ",19.75]]"));
}

TEST(coap_endpoint_test, what_was_acknowledged_survives_a_kill_and_a_restart) {
    std::optional<coap_server> first(std::in_place);
    auto token = first->create_device("pump-1");
    auto r = coap(first->port, "post", first->telemetry_path(token),
                  R"({"ts":1704067200000,"values":{"temperature":30.5}})");
    ASSERT_EQ(r.code, "2.04") << r.output;
    // No chance to flush anything after the ACK: what the ACK promised is on disk already.
    first->srv.proc().signal(SIGKILL);
    ASSERT_TRUE(first->srv.proc().wait(10s).has_value());
    coap_server again(first->srv.data(), first->port);
    EXPECT_EQ(again.query("pump-1", "temperature"),
              series("pump-1", "temperature", "[[" + std::to_string(ts0) + ",30.5]]"));
    // The restarted endpoint takes the same token.
    auto more = coap(again.port, "post", again.telemetry_path(token),
                     R"({"ts":1704067201000,"values":{"temperature":31}})");
    EXPECT_EQ(more.code, "2.04") << more.output;
}

// The UDP ports the process `pid` holds sockets on (its fds matched against /proc/net/udp*).
std::set<uint16_t> udp_ports_of(int pid) {
    std::set<std::string> inodes;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            char target[256];
            auto n = ::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
            if (n <= 0) continue;
            std::string t(target, static_cast<size_t>(n));
            if (t.rfind("socket:[", 0) == 0) inodes.insert(t.substr(8, t.size() - 9));
        }
        ::closedir(d);
    }
    std::set<uint16_t> ports;
    for (const char* table : {"/proc/net/udp", "/proc/net/udp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream f(line);
            std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
            f >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
            if (!inodes.count(inode)) continue;
            ports.insert(
                static_cast<uint16_t>(std::stoul(local.substr(local.find(':') + 1), nullptr, 16)));
        }
    }
    return ports;
}

TEST(coap_endpoint_test, coap_port_0_starts_no_listener) {
    server_process off({"--set", "coap.port=0"});
    EXPECT_TRUE(udp_ports_of(off.proc().pid()).empty());
    EXPECT_EQ(testing::read_logs(off.data_path()).find("coap listening"), std::string::npos);
    // The same check sees the endpoint when it runs.
    coap_server on;
    EXPECT_EQ(udp_ports_of(on.srv.proc().pid()), std::set<uint16_t>{on.port});
}

TEST(coap_endpoint_test, a_port_held_by_another_socket_is_a_clear_failure) {
    coap_server first;
    auto r = testing::run_clisonix(
        {"serve", "--port", std::to_string(testing::free_port()), "--data",
         first.srv.data().str() + "/b", "--set", "http.bind=127.0.0.1", "--set", "mqtt.port=0",
         "--set", "coap.bind=127.0.0.1", "--set", "coap.port=" + std::to_string(first.port)},
        {std::string("CLISONIX_ADMIN_PASSWORD=") + testing::test_admin_password});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("cannot listen on UDP 127.0.0.1:" + std::to_string(first.port) +
                         " (coap.port): the port is taken"),
              std::string::npos)
        << r.err;
}

TEST(coap_endpoint_test, a_bind_address_that_is_no_address_is_a_usage_error) {
    testing::temp_dir data;
    auto r = testing::run_clisonix(
        {"serve", "--port", std::to_string(testing::free_port()), "--data", data.str(), "--set",
         "http.bind=127.0.0.1", "--set", "mqtt.port=0", "--set", "coap.bind=plant.local", "--set",
         "coap.port=" + std::to_string(free_udp_port())},
        {std::string("CLISONIX_ADMIN_PASSWORD=") + testing::test_admin_password});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("coap.bind \"plant.local\" is not an IPv4 or IPv6 address"),
              std::string::npos)
        << r.err;
}

TEST(coap_endpoint_test, a_second_devices_token_writes_only_to_that_device) {
    coap_server s;
    auto token_a = s.create_device("pump-a");
    auto token_b = s.create_device("pump-b");
    auto r = coap(s.port, "post", s.telemetry_path(token_b),
                  R"({"ts":1704067200000,"values":{"temperature":55}})");
    ASSERT_EQ(r.code, "2.04") << r.output;
    EXPECT_EQ(s.query("pump-b", "temperature"),
              series("pump-b", "temperature", "[[" + std::to_string(ts0) + ",55]]"));
    EXPECT_EQ(s.query("pump-a", "temperature"), R"({"series":[]})");
}

TEST(coap_endpoint_test, client_attributes_are_set_and_read_back) {
    coap_server s;
    auto token = s.create_device("pump-1");
    auto set = coap(s.port, "post", "/api/v1/" + token + "/attributes",
                    R"({"firmware":"1.2.3","battery":87})");
    EXPECT_EQ(set.code, "2.04") << set.output;
    auto stored = s.srv.get("/api/v1/devices/pump-1/attributes?scope=client");
    ASSERT_EQ(stored.status, 200) << stored.body;
    EXPECT_EQ(boost::json::parse(stored.body),
              boost::json::parse(R"({"client":{"firmware":"1.2.3","battery":87}})"));
    auto got = coap(s.port, "get", "/api/v1/" + token + "/attributes?clientKeys=firmware");
    EXPECT_EQ(got.code, "2.05") << got.output;
    EXPECT_EQ(got.payload, R"({"client":{"firmware":"1.2.3"}})");
}

TEST(coap_endpoint_test, other_paths_are_4_04_other_methods_4_05_and_big_bodies_4_13) {
    coap_server s({"--set", "coap.max_payload=1KiB"});
    auto token = s.create_device("pump-1");
    auto unknown = coap(s.port, "post", "/api/v1/" + token + "/rpc", "{}");
    EXPECT_EQ(unknown.code, "4.04") << unknown.output;
    auto get = coap(s.port, "get", s.telemetry_path(token));
    EXPECT_EQ(get.code, "4.05") << get.output;
    // 2,000 bytes: coap-client sends them block-wise (Block1); the whole body is refused.
    std::string big = R"({"ts":1704067200000,"values":{"note":")" + std::string(1950, 'x') + "\"}}";
    auto large = coap(s.port, "post", s.telemetry_path(token), big);
    EXPECT_EQ(large.code, "4.13") << large.output;
    EXPECT_EQ(large.payload, "the payload of " + std::to_string(big.size()) +
                                 " bytes is larger than coap.max_payload (1024 bytes)");
    EXPECT_EQ(s.query("pump-1", "note"), R"({"series":[]})");
}

TEST(coap_endpoint_test, a_full_disk_is_5_03_with_max_age_and_writes_resume_after) {
    testing::tmpfs_dir tmp(48ull << 20);
    if (!tmp.mounted()) GTEST_SKIP() << tmp.skip_reason();
    // A reserve of 16 MiB: filling the disk to 4 MiB free trips it at once.
    const uint16_t port = free_udp_port();
    server_process srv(server_process::on{tmp.dir()}, {"--set", "coap.port=" + std::to_string(port),
                                                       "--set", "storage.min_free=16MiB"});
    auto created =
        srv.post("/api/v1/devices", R"({"name":"pump-1"})", {"Content-Type: application/json"});
    ASSERT_EQ(created.status, 201) << created.body;
    auto token = std::string(boost::json::parse(created.body).at("token").as_string());
    const std::string path = "/api/v1/" + token + "/telemetry";
    tmp.fill(tmp.path() / "filler", 4 << 20);
    // The engine notices the disk within a second: until then writes are still taken.
    coap_reply refused;
    bool first_taken = false;
    for (int i = 0; i < 50 && refused.code != "5.03"; ++i) {
        refused = coap(port, "post", path, R"({"ts":1704067200000,"values":{"temperature":1}})");
        if (refused.code == "2.04") first_taken = true;
        if (refused.code != "5.03") std::this_thread::sleep_for(200ms);
    }
    EXPECT_EQ(refused.type, "ACK") << refused.output;
    ASSERT_EQ(refused.code, "5.03") << refused.output;
    EXPECT_EQ(refused.options, "Max-Age:10") << refused.output;
    EXPECT_TRUE(refused.payload.starts_with("the file system of ")) << refused.output;
    std::filesystem::remove(tmp.path() / "filler");
    coap_reply taken;
    for (int i = 0; i < 50 && taken.code != "2.04"; ++i) {
        taken = coap(port, "post", path, R"({"ts":1704067201000,"values":{"temperature":2}})");
        if (taken.code != "2.04") std::this_thread::sleep_for(200ms);
    }
    EXPECT_EQ(taken.code, "2.04") << taken.output;
    auto stored =
        srv.get("/api/v1/query?device=pump-1&metric=temperature&" + std::string(range_all));
    EXPECT_EQ(stored.body,
              series("pump-1", "temperature",
                     std::string("[") + (first_taken ? "[" + std::to_string(ts0) + ",1]," : "") +
                         "[" + std::to_string(ts0 + 1000) + ",2]]"));
}

// A CON POST to /api/v1/{token}/telemetry as one datagram, with message id `mid`.
std::string telemetry_datagram(const std::string& token, uint16_t mid, const std::string& json) {
    auto option = [](int delta, const std::string& value) {
        auto nibble = [](size_t x, std::string& ext) -> int {
            if (x < 13) return static_cast<int>(x);
            if (x < 269) {
                ext += static_cast<char>(x - 13);
                return 13;
            }
            ext += static_cast<char>((x - 269) >> 8);
            ext += static_cast<char>((x - 269) & 0xff);
            return 14;
        };
        std::string delta_ext, length_ext;
        int d = nibble(static_cast<size_t>(delta), delta_ext);
        int l = nibble(value.size(), length_ext);
        return std::string(1, static_cast<char>((d << 4) | l)) + delta_ext + length_ext + value;
    };
    std::string pdu = {0x41, 0x02, static_cast<char>(mid >> 8), static_cast<char>(mid & 0xff),
                       0x77};  // CON, POST, one byte of token
    pdu += option(11, "api") + option(0, "v1") + option(0, token) + option(0, "telemetry");
    return pdu + "\xff" + json;
}

// Sends `datagram` from `fd` and returns the answer (empty when none came within 5 s).
std::string exchange(int fd, uint16_t port, const std::string& datagram) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    char buf[2048];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST(coap_endpoint_test, a_request_sent_again_is_answered_again_and_stored_once) {
    coap_server s;
    auto token = s.create_device("pump-1");
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    timeval wait{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    // No "ts": stored at the time of arrival, so a second handling would add a second point.
    const std::string ack_2_04_for_1234 = {0x61, 0x44, 0x12, 0x34, 0x77};
    auto first = exchange(fd, s.port, telemetry_datagram(token, 0x1234, R"({"temperature":5})"));
    auto again = exchange(fd, s.port, telemetry_datagram(token, 0x1234, R"({"temperature":5})"));
    auto other = exchange(fd, s.port, telemetry_datagram(token, 0x1235, R"({"temperature":6})"));
    ::close(fd);
    EXPECT_EQ(first, ack_2_04_for_1234);
    EXPECT_EQ(again, ack_2_04_for_1234);
    EXPECT_EQ(other, std::string({0x61, 0x44, 0x12, 0x35, 0x77}));
    auto stored = boost::json::parse(s.query("pump-1", "temperature"));
    const auto& points = stored.at("series").at(0).at("points").as_array();
    ASSERT_EQ(points.size(), 2u) << stored;
    EXPECT_EQ(points[0].as_array()[1].to_number<double>(), 5);
    EXPECT_EQ(points[1].as_array()[1].to_number<double>(), 6);
    auto metrics = s.srv.get("/metrics").body;
    EXPECT_NE(metrics.find("clisonix_coap_duplicates_total 1\n"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("clisonix_coap_requests_total{code=\"2.04\"} 2\n"), std::string::npos)
        << metrics;
}

TEST(coap_endpoint_test, malformed_datagrams_leave_the_endpoint_answering) {
    coap_server s;
    auto token = s.create_device("pump-1");
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(s.port);
    const std::vector<std::string> garbage = {
        std::string("\x00", 1),                          // shorter than a header
        std::string("\x80\x01\x00\x01", 4),              // version 2
        std::string("\x48\x02\x12\x34\x01", 5),          // token length 8, one byte of it
        std::string("\x40\x02\x12\x34\xbf\xff\xff", 7),  // option with a reserved length
        std::string("\x40\x02\x12\x34\xff", 5),          // payload marker, no payload
        std::string(1500, '\xff'),                       // noise
        "GET / HTTP/1.1\r\n\r\n",
    };
    for (const auto& g : garbage)
        ::sendto(fd, g.data(), g.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ::close(fd);
    auto r = coap(s.port, "post", s.telemetry_path(token),
                  R"({"ts":1704067200000,"values":{"temperature":12.5}})");
    EXPECT_EQ(r.code, "2.04") << r.output;
    EXPECT_EQ(s.query("pump-1", "temperature"),
              series("pump-1", "temperature", "[[" + std::to_string(ts0) + ",12.5]]"));
    EXPECT_TRUE(s.srv.proc().running());
}

}  // namespace
}  // namespace clisonix
