// Helpers of the connector tests: the pymodbus server (modbus_server.py), a server's flags
// for fast breakers, admin calls, waiting on the API, and the connector reading every
// register the server's layout offers.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace clisonix::testing::modbus_peer {

using namespace std::chrono_literals;
namespace json = boost::json;

inline const std::vector<std::string> json_header{"Content-Type: application/json"};

// The pymodbus server on `port`, listening on return.
inline std::unique_ptr<testing::process> start_modbus_server(uint16_t port) {
    auto p = std::make_unique<testing::process>(std::vector<std::string>{
        "/usr/bin/python3", std::string(CLISONIX_SOURCE_DIR) + "/tests/connectors/modbus_server.py",
        std::to_string(port)});
    for (int i = 0; i < 200; ++i) {
        testing::connection c(port);
        if (c.connected()) return p;
        if (!p->running()) break;
        std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "the Modbus server did not listen: " << p->err();
    return p;
}

// Server flags: a breaker that opens after two failures and tries again after a second.
inline std::vector<std::string> fast_flags() {
    return {"--set", "analytics.detector=off",
            "--set", "connectors.backoff_base=20ms",
            "--set", "connectors.backoff_max=300ms",
            "--set", "connectors.breaker_min_volume=2",
            "--set", "connectors.breaker_reset_timeout=1s"};
}

inline testing::http_response call(server_process& srv, std::string_view method,
                                   std::string_view target, std::string_view body = {}) {
    return testing::http_request(
        srv.port(), method, target, body,
        {"Authorization: Bearer " + srv.token(), "Content-Type: application/json"});
}

// Polls `target` until `pred` holds on its JSON (or `limit` passes); returns the last body.
template <typename Pred>
json::value wait_for(server_process& srv, const std::string& target, Pred pred,
                     std::chrono::milliseconds limit = 15s) {
    json::value v;
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        auto r = srv.get(target);
        if (r.status == 200) {
            v = json::parse(r.body);
            if (pred(v)) return v;
        }
        std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "timed out waiting on " << target << ": " << json::serialize(v);
    return v;
}

// Every mapping the server's layout offers.
inline std::string values_connector(const std::string& name, uint16_t port, int poll_ms) {
    return R"({"name":")" + name + R"(","type":"modbus","endpoint":"tcp://127.0.0.1:)" +
           std::to_string(port) + R"(","poll_interval_ms":)" + std::to_string(poll_ms) +
           R"(,"timeout_ms":1000,"mapping":[
      {"address":"holding:0","device":"press","metric":"counter"},
      {"address":"holding:1","device":"press","metric":"temperature","unit":"°C","data_type":"int16","scale":0.1,"offset":0},
      {"address":"holding:2","device":"press","metric":"f_big","data_type":"float32"},
      {"address":"holding:4","device":"press","metric":"f_little","data_type":"float32","word_order":"little"},
      {"address":"holding:6","device":"press","metric":"i32","data_type":"int32"},
      {"address":"holding:10","device":"press","metric":"f_swapped","data_type":"float32","byte_order":"little"},
      {"address":"input:0","device":"press","metric":"input0","scale":2,"offset":-1000},
      {"address":"coil:0","device":"press","metric":"coil0","data_type":"bool"},
      {"address":"coil:1","device":"press","metric":"coil1","data_type":"bool"},
      {"address":"discrete:0","device":"press","metric":"di0","data_type":"bool"},
      {"address":"holding:0","unit_id":2,"device":"press-2","metric":"h0"},
      {"address":"holding:0","unit_id":2,"device":"press-2","metric":"h0_tenths","scale":0.1},
      {"address":"holding:1","unit_id":2,"device":"press-2","metric":"f64","data_type":"float64"},
      {"address":"input:0","unit_id":2,"device":"press-2","metric":"input0"}]})";
}

inline double last_value(server_process& srv, const std::string& device,
                         const std::string& metric) {
    auto r = srv.get("/api/v1/last?device=" + device + "&metric=" + metric);
    EXPECT_EQ(r.status, 200) << r.body;
    auto series = json::parse(r.body).at("series").as_array();
    EXPECT_EQ(series.size(), 1u) << device << " " << metric << ": " << r.body;
    if (series.empty()) return -1e300;
    return series[0].at("points").as_array()[0].as_array()[1].to_number<double>();
}

}  // namespace clisonix::testing::modbus_peer
