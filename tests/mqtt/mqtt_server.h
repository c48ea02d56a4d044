// Test helper: the real binary with its MQTT broker on a port the test knows, and the API
// calls the broker tests make (device tokens, API keys, what a device stored).
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace clisonix {

// Every point ever written (the query API's from/to bounds).
inline constexpr const char* range_all = "from=0&to=4102444800000";

struct mqtt_server {
    explicit mqtt_server(std::vector<std::string> extra = {})
        : port(testing::free_port()), srv(with_port(port, std::move(extra))) {}
    static std::vector<std::string> with_port(uint16_t p, std::vector<std::string> extra) {
        extra.insert(extra.begin(), {"--set", "mqtt.port=" + std::to_string(p)});
        return extra;
    }
    std::string device_token(const std::string& device) {
        auto r = srv.post("/api/v1/devices/" + device + "/token", "");
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(boost::json::parse(r.body).at("token").as_string());
    }
    std::string api_key(const std::string& name) {
        auto r = srv.post("/api/v1/apikeys", R"({"name":")" + name + R"(","role":"viewer"})",
                          {"Content-Type: application/json"});
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(boost::json::parse(r.body).at("key").as_string());
    }
    // The query API's answer for one device's metric, over all time.
    std::string query(const std::string& device, const std::string& metric) {
        auto r = srv.get("/api/v1/query?device=" + device + "&metric=" + metric + "&" + range_all);
        EXPECT_EQ(r.status, 200) << r.body;
        return r.body;
    }
    // Any API call as the admin.
    testing::http_response send(const std::string& method, const std::string& target,
                                const std::string& body = "") {
        return testing::http_request(
            srv.port(), method, target, body,
            {"Authorization: Bearer " + srv.token(), "Content-Type: application/json"});
    }
    uint16_t port;
    testing::server_process srv;
};

}  // namespace clisonix
