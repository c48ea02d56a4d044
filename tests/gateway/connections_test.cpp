// Connection limits and slow clients: a flood of trickling headers does not starve others.
#include <gtest/gtest.h>

#include <iostream>
#include <thread>

#include "gateway/test_server.h"

namespace clisonix::gateway {
namespace {

using clisonix::testing::connection;
using clisonix::testing::http_request;
using namespace std::chrono_literals;

http::router hello_route() {
    http::router routes;
    routes.add({http::method::get, "/hello", "Hello", http::permission::open,
                [](http::request&) { return http::response::json(200, R"({"hello":true})"); }});
    return routes;
}

TEST(slow_clients, trickled_headers_are_cut_at_the_header_timeout_and_others_are_served) {
    auto routes = hello_route();
    auto opts = testing::small_options();
    opts.header_timeout = 1500ms;
    testing::test_server srv(opts, routes, {});

    constexpr int slow_count = 200;
    const std::string header =
        "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(400, 'p') + "\r\n\r\n";
    std::vector<std::unique_ptr<connection>> slow;
    for (int i = 0; i < slow_count; ++i) {
        slow.push_back(std::make_unique<connection>(srv.port()));
        ASSERT_TRUE(slow.back()->connected()) << i;
    }
    // One byte to each slow connection every 20 ms: the whole header would take 9 s,
    // far past the header timeout, but every byte arrives well within the idle time.
    std::atomic<bool> done{false};
    std::thread trickle([&] {
        for (size_t pos = 0; pos < header.size() - 4 && !done; ++pos) {
            for (auto& c : slow)
                c->send(header.substr(pos, 1));
            std::this_thread::sleep_for(20ms);
        }
    });
    auto started = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(300ms);  // the flood is under way
    auto normal_started = std::chrono::steady_clock::now();
    auto r = http_request(srv.port(), "GET", "/hello");
    auto latency = std::chrono::steady_clock::now() - normal_started;
    std::cout << "normal client served in "
              << std::chrono::duration<double, std::milli>(latency).count() << " ms with "
              << slow_count << " slow clients connected\n";
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"hello":true})");
    EXPECT_LT(latency, 2s);

    int closed = 0;
    for (auto& c : slow)
        if (c->closed_by_peer(4s)) ++closed;
    auto all_closed = std::chrono::steady_clock::now() - started;
    done = true;
    trickle.join();
    EXPECT_EQ(closed, slow_count);
    // Closed by the header deadline (1.5 s from connecting), not by finishing the header
    // (9 s): a generous bound that still tells the two apart.
    EXPECT_LT(all_closed, 6s);
    std::cout << "all " << slow_count << " slow clients closed after "
              << std::chrono::duration<double, std::milli>(all_closed).count() << " ms\n";
}

TEST(connection_limits, one_address_cannot_hold_more_than_its_share) {
    auto routes = hello_route();
    auto opts = testing::small_options();
    opts.max_connections_per_ip = 5;
    opts.header_timeout = 5s;
    testing::test_server srv(opts, routes, {});
    std::vector<std::unique_ptr<connection>> held;
    for (int i = 0; i < 5; ++i) {
        held.push_back(std::make_unique<connection>(srv.port()));
        ASSERT_TRUE(held.back()->send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
        EXPECT_EQ(held.back()->read_response().status, 200);  // kept alive
    }
    connection sixth(srv.port());
    EXPECT_TRUE(sixth.closed_by_peer(3s));
    // Held connections still work, and a freed slot is usable again.
    ASSERT_TRUE(held[0]->send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(held[0]->read_response().status, 200);
    held.pop_back();
    for (int attempt = 0; attempt < 50; ++attempt) {
        auto r = http_request(srv.port(), "GET", "/hello");
        if (r.status == 200) return;
        std::this_thread::sleep_for(20ms);  // the server notices the close asynchronously
    }
    ADD_FAILURE() << "no connection accepted after one was freed";
}

}  // namespace
}  // namespace clisonix::gateway
