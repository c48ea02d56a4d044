// Trusted proxies and the client address: X-Forwarded-For counts only from them.
#include <gtest/gtest.h>

#include "gateway/gateway.h"
#include "gateway/test_server.h"

namespace clisonix::gateway {
namespace {

using clisonix::testing::http_request;

network_list must_parse(std::string_view csv) {
    auto n = network_list::parse(csv);
    EXPECT_TRUE(n.ok()) << csv;
    return n.ok() ? *n : network_list{};
}

TEST(network_list, matches_addresses_and_cidr_blocks_of_both_families) {
    auto n = must_parse(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,172.16.0.0/12");
    EXPECT_TRUE(n.contains("10.200.3.4"));
    EXPECT_TRUE(n.contains("192.168.1.7"));
    EXPECT_FALSE(n.contains("192.168.1.8"));
    EXPECT_TRUE(n.contains("172.31.255.255"));
    EXPECT_FALSE(n.contains("172.32.0.1"));
    EXPECT_TRUE(n.contains("fd12:3456::1"));
    EXPECT_FALSE(n.contains("fe80::1"));
    EXPECT_TRUE(n.contains("::ffff:10.1.2.3"));  // IPv4-mapped reads as IPv4
    EXPECT_FALSE(n.contains("11.0.0.1"));
    EXPECT_FALSE(n.contains("not-an-ip"));
    EXPECT_TRUE(must_parse("").empty());
}

TEST(network_list, names_the_entry_that_does_not_parse) {
    for (std::string_view bad :
         {"10.0.0.0/33", "300.1.1.1", "10.0.0.0/", "proxy.local", "::1/129", "10.0.0.0/8x"}) {
        auto n = network_list::parse("127.0.0.1," + std::string(bad));
        ASSERT_FALSE(n.ok()) << bad;
        EXPECT_EQ(n.error().code, "invalid_argument");
        EXPECT_EQ(n.error().message, "not an IP address or network: \"" + std::string(bad) + "\"");
    }
}

TEST(resolve_client_address, believes_forwarded_for_only_from_a_trusted_peer) {
    auto trusted = must_parse("10.0.0.0/8");
    // Untrusted peer: its header is ignored.
    EXPECT_EQ(resolve_client_address(trusted, "203.0.113.9", {"198.51.100.1"}), "203.0.113.9");
    // Trusted peer: the right-most untrusted hop is the client; what the client wrote
    // to its left is ignored.
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"1.1.1.1, 198.51.100.1"}),
              "198.51.100.1");
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"1.1.1.1, 198.51.100.1, 10.0.0.5"}),
              "198.51.100.1");
    // Several header lines are one list, in order.
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"1.1.1.1", "198.51.100.2"}),
              "198.51.100.2");
    // Ports and brackets are stripped.
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"198.51.100.3:4711"}), "198.51.100.3");
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"[2001:db8::1]:80"}), "2001:db8::1");
    // Garbage ends the walk at the last address a trusted proxy vouched for.
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"garbage"}), "10.0.0.2");
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"1.1.1.1, garbage, 10.0.0.7"}),
              "10.0.0.7");
    // No header: the peer.
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {}), "10.0.0.2");
    // Only proxies: the left-most is as far as we can see.
    EXPECT_EQ(resolve_client_address(trusted, "10.0.0.2", {"10.0.0.9, 10.0.0.8"}), "10.0.0.9");
}

class client_address_test : public ::testing::Test {
protected:
    client_address_test() {
        routes.add({http::method::get, "/who", "Who is calling", http::permission::open,
                    [](http::request& req) {
                        return http::response::json(200, "{\"client\":\"" + req.remote_address +
                                                             "\",\"peer\":\"" + req.peer_address +
                                                             "\"}");
                    }});
    }
    http::router routes;
};

TEST_F(client_address_test, forwarded_for_from_a_configured_proxy_sets_the_client) {
    testing::test_server srv(testing::small_options(), routes,
                             {client_address(must_parse("127.0.0.0/8"))});
    auto r =
        http_request(srv.port(), "GET", "/who", {}, {"X-Forwarded-For: 6.6.6.6, 198.51.100.7"});
    EXPECT_EQ(r.body, R"({"client":"198.51.100.7","peer":"127.0.0.1"})");
}

TEST_F(client_address_test, forwarded_for_from_anyone_else_is_ignored) {
    testing::test_server srv(testing::small_options(), routes,
                             {client_address(must_parse("10.0.0.0/8"))});
    auto r = http_request(srv.port(), "GET", "/who", {}, {"X-Forwarded-For: 198.51.100.7"});
    EXPECT_EQ(r.body, R"({"client":"127.0.0.1","peer":"127.0.0.1"})");
    testing::test_server none(testing::small_options(), routes, {client_address({})});
    auto n = http_request(none.port(), "GET", "/who", {}, {"X-Forwarded-For: 198.51.100.7"});
    EXPECT_EQ(n.body, R"({"client":"127.0.0.1","peer":"127.0.0.1"})");
}

}  // namespace
}  // namespace clisonix::gateway
