// The HTTP server in-process, on a free loopback port, spoken to over real sockets.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http/http.h"
#include "support/test_support.h"

namespace clisonix::http {
namespace {

using clisonix::testing::connection;
using clisonix::testing::free_port;
using clisonix::testing::http_request;

class server_test : public ::testing::Test {
protected:
    void SetUp() override {
        routes.add({method::get, "/hello/{name}", "Greets", permission::read, [](request& req) {
                        return response::json(
                            200, "{\"hello\":\"" + std::string(req.path_param("name")) +
                                     "\",\"q\":\"" + std::string(req.query_param("q")) + "\"}");
                    }});
        routes.add({method::post, "/echo", "Echoes the body", permission::read,
                    [](request& req) { return response::text(200, req.body, "text/plain"); }});
        routes.add({method::get, "/boom", "Throws", permission::read, [](request&) -> response {
                        throw std::runtime_error("secret internal detail");
                    }});
        routes.add({method::get, "/slow", "Sleeps 400 ms", permission::read, [](request&) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(400));
                        return response::json(200, R"({"done":true})");
                    }});
        server_options opts;
        opts.bind = "127.0.0.1";
        opts.port = port = free_port();
        opts.threads = 2;
        opts.header_limit = 2048;
        opts.body_limit = 1024;
        opts.header_timeout = std::chrono::milliseconds(500);
        opts.idle_timeout = std::chrono::milliseconds(2000);
        opts.drain_timeout = std::chrono::milliseconds(3000);
        // A middleware that records the matched template, as the gateway will use it.
        middleware tag = [this](request& req, const next& call_next) {
            last_template = req.matched ? req.matched->path : "none";
            auto res = call_next(req);
            res.headers.emplace_back("X-Seen-By", "tag");
            return res;
        };
        srv = std::make_unique<server>(opts, routes, std::vector<middleware>{tag});
        ASSERT_TRUE(srv->listen().ok());
        runner = std::thread([this] { ran_to_completion = srv->run(false); });
    }
    void TearDown() override {
        if (srv) srv->stop();
        if (runner.joinable()) runner.join();
    }

    router routes;
    uint16_t port = 0;
    std::unique_ptr<server> srv;
    std::thread runner;
    std::string last_template;
    bool ran_to_completion = false;
};

TEST_F(server_test, routes_with_path_and_query_parameters_through_the_middleware) {
    auto r = http_request(port, "GET", "/hello/pump%203?q=a+b");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"hello":"pump 3","q":"a b"})");
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("x-seen-by"), "tag");
    EXPECT_EQ(last_template, "/hello/{name}");
}

TEST_F(server_test, decodes_a_path_parameter_once) {
    // "%2541" is the name "%41" (a literal percent sign), not "A".
    auto r = http_request(port, "GET", "/hello/%2541");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"hello":"%41","q":""})");
    // An encoded '/' stays inside its segment.
    EXPECT_EQ(http_request(port, "GET", "/hello/pump%2F3").body, R"({"hello":"pump/3","q":""})");
}

TEST_F(server_test, a_json_answer_is_valid_utf8_whatever_the_handler_put_in_it) {
    // A handler that copies a stored name with a stray byte (0xBD) into its JSON answer.
    auto r = http_request(port, "GET", "/hello/x%BDy");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"hello\":\"x\xEF\xBF\xBDy\",\"q\":\"\"}");
}

TEST_F(server_test, echoes_a_sane_request_id_and_generates_one_otherwise) {
    auto mine = http_request(port, "GET", "/hello/x", {}, {"X-Request-Id: abc-123"});
    EXPECT_EQ(mine.header("x-request-id"), "abc-123");
    auto generated = http_request(port, "GET", "/hello/x", {}, {"X-Request-Id: bad id\"<>"});
    EXPECT_EQ(generated.header("x-request-id").size(), 32u);
}

TEST_F(server_test, unknown_path_is_404_and_wrong_method_is_405_with_the_envelope) {
    auto r = http_request(port, "GET", "/nope");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"No such resource: /nope"}})");
    auto m = http_request(port, "DELETE", "/echo");
    EXPECT_EQ(m.status, 405);
    EXPECT_EQ(
        m.body,
        R"({"error":{"code":"method_not_allowed","message":"DELETE is not allowed on /echo"}})");
}

TEST_F(server_test, handler_exception_is_a_500_envelope_without_internal_details) {
    auto r = http_request(port, "GET", "/boom", {}, {"X-Request-Id: req-7"});
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(
        r.body,
        R"J({"error":{"code":"internal","message":"The server failed to handle the request (request id req-7)"}})J");
}

TEST_F(server_test, body_over_the_limit_is_413) {
    auto r = http_request(port, "POST", "/echo", std::string(2000, 'x'));
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(
        r.body,
        R"({"error":{"code":"too_large","message":"The request body is larger than the limit of 1024 bytes"}})");
    auto ok = http_request(port, "POST", "/echo", std::string(1000, 'y'));
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body, std::string(1000, 'y'));
}

TEST_F(server_test, header_over_the_limit_is_431) {
    auto r = http_request(port, "GET", "/hello/x", {}, {"X-Big: " + std::string(4000, 'h')});
    EXPECT_EQ(r.status, 431);
    EXPECT_NE(r.body.find("\"code\":\"too_large\""), std::string::npos);
}

TEST_F(server_test, malformed_request_is_400) {
    connection c(port);
    c.send("GET /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
    auto r = c.read_response();
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("\"code\":\"invalid_argument\""), std::string::npos);
}

TEST_F(server_test, keep_alive_serves_several_requests_on_one_connection) {
    connection c(port);
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c.send("GET /hello/k" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto r = c.read_response();
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "{\"hello\":\"k" + std::to_string(i) + "\",\"q\":\"\"}");
    }
}

TEST_F(server_test, answers_expect_100_continue) {
    connection c(port);
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    // The interim 100 arrives before the body is sent; read_response skips it once the
    // final answer comes.
    c.send("hello");
    auto r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello");
}

TEST_F(server_test, a_client_that_never_sends_its_header_is_disconnected) {
    connection c(port);
    c.send("GET /hello/x HTTP/1.1\r\nHost: x\r\n");  // never finishes the header
    auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.closed_by_peer(std::chrono::seconds(3)));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST_F(server_test, stop_lets_an_in_flight_request_finish_and_closes_idle_connections) {
    connection idle(port);
    ASSERT_TRUE(idle.send("GET /hello/i HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(idle.read_response().status, 200);  // now idle, kept alive

    connection busy(port);
    ASSERT_TRUE(busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    srv->stop();
    auto r = busy.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"done":true})");
    EXPECT_EQ(r.header("connection"), "close");
    EXPECT_TRUE(idle.closed_by_peer(std::chrono::seconds(2)));
    runner.join();
    EXPECT_TRUE(ran_to_completion);
    EXPECT_EQ(http_request(port, "GET", "/hello/x").status, 0);  // no longer accepting
}

}  // namespace
}  // namespace clisonix::http
