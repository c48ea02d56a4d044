// An in-process http::server on a free loopback port, for the gateway's tests.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "http/http.h"
#include "support/test_support.h"

namespace clisonix::gateway::testing {

// Options small enough that limit tests stay fast.
inline http::server_options small_options() {
    http::server_options opts;
    opts.bind = "127.0.0.1";
    opts.port = clisonix::testing::free_port();
    opts.threads = 2;
    opts.header_limit = 2048;
    opts.body_limit = 1024;
    opts.header_timeout = std::chrono::milliseconds(1000);
    opts.idle_timeout = std::chrono::milliseconds(2000);
    opts.drain_timeout = std::chrono::milliseconds(2000);
    return opts;
}

class test_server {
public:
    test_server(http::server_options opts, const http::router& routes,
                std::vector<http::middleware> chain)
        : _port(opts.port), _srv(std::make_unique<http::server>(opts, routes, std::move(chain))) {
        auto listening = _srv->listen();
        if (!listening) throw std::runtime_error(listening.error().message);
        _runner = std::thread([this] { _srv->run(false); });
    }
    ~test_server() {
        _srv->stop();
        _runner.join();
    }
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;
    uint16_t port() const { return _port; }

private:
    uint16_t _port;
    std::unique_ptr<http::server> _srv;
    std::thread _runner;
};

}  // namespace clisonix::gateway::testing
