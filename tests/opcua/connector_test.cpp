// OPC UA connectors through the real binary against node-opcua (tests/opcua/server.js): node
// ids in the mapping become series, under security None with a user and under
// Basic256Sha256 SignAndEncrypt with the certificates in <data.dir>/opcua; bad node ids and
// endpoints are 400s naming the field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "opcua/crypto.h"
#include "opcua/node_server.h"
#include "support/test_support.h"

namespace clisonix {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
namespace fs = std::filesystem;

// node-opcua on a free port, trusting `client_cert`; its certificate copied into `trust_dir`.
std::unique_ptr<testing::process> start_opcua_server(const testing::temp_dir& pki, uint16_t port,
                                                     const std::string& client_cert,
                                                     const fs::path& trust_dir) {
    std::string why;
    auto p = opcua_test::start_node_server(
        port, pki.str(),
        client_cert.empty() ? std::vector<std::string>{} : std::vector<std::string>{client_cert},
        why);
    if (!p) {
        ADD_FAILURE() << why;
        return p;
    }
    fs::create_directories(trust_dir);
    fs::copy_file(pki.path() / "server.der", trust_dir / "server.der",
                  fs::copy_options::overwrite_existing);
    return p;
}

testing::http_response call(testing::server_process& srv, std::string_view method,
                            std::string_view target, std::string_view body = {}) {
    return testing::http_request(
        srv.port(), method, target, body,
        {"Authorization: Bearer " + srv.token(), "Content-Type: application/json"});
}

std::vector<double> values(testing::server_process& srv, const std::string& device,
                           const std::string& metric) {
    auto r = srv.get("/api/v1/query?device=" + device + "&metric=" + metric + "&from=0&to=" +
                     std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count() +
                                    60000));
    std::vector<double> out;
    if (r.status != 200) return out;
    const auto doc = json::parse(r.body);
    for (const auto& s : doc.at("series").as_array())
        for (const auto& p : s.at("points").as_array())
            out.push_back(p.as_array()[1].to_number<double>());
    return out;
}

std::string connector_json(const std::string& name, const std::string& endpoint,
                           const std::string& credentials) {
    return R"({"name":")" + name + R"(","type":"opcua","endpoint":")" + endpoint +
           R"(","poll_interval_ms":200,"timeout_ms":3000,)" + credentials + R"("mapping":[
      {"address":"ns=1;s=Pump1.Temp","device":"pump1","metric":"temperature","unit":"°C"},
      {"address":"ns=1;s=Pump1.Count","device":"pump1","metric":"count","scale":0.5,"offset":1},
      {"address":"ns=1;s=Pump1.Running","device":"pump1","metric":"running"}]})";
}

void expect_pump_series(testing::server_process& srv) {
    std::vector<double> temps;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
        temps = values(srv, "pump1", "temperature");
        if (temps.size() >= 3) break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_GE(temps.size(), 3u);
    EXPECT_GE(temps.front(), 20.0);
    EXPECT_GT(temps.back(), temps.front());  // it rises by 0.5 every 100 ms
    EXPECT_EQ(values(srv, "pump1", "count"), std::vector<double>{22.0});  // 42 * 0.5 + 1, once
    EXPECT_EQ(values(srv, "pump1", "running"), std::vector<double>{1.0});
}

TEST(opcua_connector, none_with_a_user_writes_the_mapped_nodes) {
    testing::temp_dir pki{"clisonix-opcua-pki"};
    const uint16_t port = testing::free_port();
    testing::temp_dir data{"clisonix-data"};
    auto server = start_opcua_server(pki, port, "", pki.path() / "unused");
    testing::server_process srv(testing::server_process::on{data},
                                {"--set", "analytics.detector=off"});
    const std::string endpoint = "opc.tcp://127.0.0.1:" + std::to_string(port);
    auto r = call(srv, "POST", "/api/v1/connectors",
                  connector_json("pump-opcua", endpoint,
                                 R"("username":"operator","password":"pump-secret",)"));
    ASSERT_EQ(r.status, 201) << r.body;
    expect_pump_series(srv);
    auto list = json::parse(call(srv, "GET", "/api/v1/connectors").body);
    const auto& state = list.at("connectors").as_array()[0].at("state");
    EXPECT_EQ(state.at("status").as_string(), "connected") << json::serialize(state);

    // A wrong password: the connector fails and says why.
    r = call(srv, "POST", "/api/v1/connectors",
             connector_json("pump-wrong", endpoint, R"("username":"operator","password":"nope",)"));
    ASSERT_EQ(r.status, 201) << r.body;
    const int64_t id = json::parse(r.body).at("id").to_number<int64_t>();
    std::string last_error;
    for (int i = 0; i < 100 && last_error.empty(); ++i) {
        auto c = json::parse(call(srv, "GET", "/api/v1/connectors/" + std::to_string(id)).body);
        if (auto* e = c.at("state").as_object().if_contains("last_error"); e && e->is_string())
            last_error = std::string(e->as_string());
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(last_error,
              "opcua " + endpoint + ": OPC UA ActivateSession failed: BadUserAccessDenied");
}

TEST(opcua_connector, sign_and_encrypt_uses_the_certificates_under_the_data_dir) {
    testing::temp_dir data{"clisonix-data"};
    // The certificate the server generates on first use, made here first so that node-opcua
    // can start trusting it (with the application URI the client presents).
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    opcua::crypto::certificate cert;
    opcua::crypto::pkey key;
    const std::string own = data.str() + "/opcua/own";
    ASSERT_TRUE(opcua::crypto::load_or_generate(
        own + "/cert.pem", own + "/key.pem", std::string("urn:clisonix:") + host + ":opcua-client",
        cert, key));
    testing::temp_dir pki{"clisonix-opcua-pki"};
    const uint16_t port = testing::free_port();
    auto server =
        start_opcua_server(pki, port, own + "/cert.pem", data.path() / "opcua" / "trusted");
    testing::server_process srv(testing::server_process::on{data},
                                {"--set", "analytics.detector=off"});
    auto r = call(srv, "POST", "/api/v1/connectors",
                  connector_json("pump-secure",
                                 "opc.tcp://127.0.0.1:" + std::to_string(port) +
                                     "?security_policy=Basic256Sha256&security_mode=SignAndEncrypt",
                                 ""));
    ASSERT_EQ(r.status, 201) << r.body;
    expect_pump_series(srv);
}

TEST(opcua_connector, bad_node_ids_and_endpoints_are_named) {
    testing::server_process srv({"--set", "analytics.detector=off"});
    auto r = call(srv, "POST", "/api/v1/connectors",
                  R"({"name":"x","type":"opcua","endpoint":"opc.tcp://127.0.0.1:4840","mapping":[
                      {"address":"ns=x;i=1","device":"d","metric":"m"}]})");
    EXPECT_EQ(r.status, 400);
    auto e = json::parse(r.body).at("error");
    EXPECT_EQ(e.at("field").as_string(), "mapping[0].address");
    EXPECT_EQ(e.at("message").as_string(),
              "mapping[0].address: node id 'ns=x;i=1': namespace index 'x' is not a number from 0 "
              "to 65535");
    r = call(
        srv, "POST", "/api/v1/connectors",
        R"({"name":"x","type":"opcua","endpoint":"opc.tcp://127.0.0.1:4840?security_policy=Basic128",
                 "mapping":[{"address":"i=2258","device":"d","metric":"m"}]})");
    EXPECT_EQ(r.status, 400);
    e = json::parse(r.body).at("error");
    EXPECT_EQ(e.at("field").as_string(), "endpoint");
    EXPECT_EQ(e.at("message").as_string(),
              "endpoint: security policy 'Basic128' is not one of None, Basic256Sha256");
}

}  // namespace
}  // namespace clisonix
