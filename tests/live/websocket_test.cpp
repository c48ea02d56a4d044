// WebSocket routes of the HTTP server, in-process on a free loopback port, spoken to with
// Beast's client: the upgrade through the middleware chain, messages both ways, close codes
// and reasons, deadlines, the queue bound, and the drain.
#include <gtest/gtest.h>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "http/http.h"
#include "support/test_support.h"
#include "ws_client.h"

namespace clisonix::http {
namespace {

using namespace std::chrono_literals;
using clisonix::testing::free_port;
using clisonix::testing::http_request;
using clisonix::testing::ws_client;

class websocket_test : public ::testing::Test {
protected:
    void SetUp() override {
        route echo{method::get, "/ws", "Echoes", permission::read, nullptr};
        echo.websocket = [this](request& req, websocket_accept& accept) {
            if (req.query_param("refuse") == "1")
                return response::error(403, "forbidden", "not you");
            accept.subprotocol = req.header("sec-websocket-protocol").empty() ? "" : "echo";
            accept.max_queue_messages = 50;
            accept.max_queue_bytes = 64 * 1024;
            accept.on_open = [this](const std::shared_ptr<websocket>& ws) {
                std::lock_guard lock(mutex);
                current = ws;
                cv.notify_all();
            };
            accept.on_message = [this](std::string_view text) { on_message(text); };
            accept.on_close = [this](uint16_t code, std::string_view reason) {
                std::lock_guard lock(mutex);
                closed_code = code;
                closed_reason = std::string(reason);
                ++closes;
                cv.notify_all();
            };
            return response{101, "", "", {}};
        };
        routes.add(std::move(echo));
        server_options opts;
        opts.bind = "127.0.0.1";
        opts.port = port = free_port();
        opts.threads = 2;
        opts.drain_timeout = 5s;
        opts.always_headers = {{"X-Content-Type-Options", "nosniff"}};
        middleware tag = [](request& req, const next& call_next) {
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

    void on_message(std::string_view text) {
        auto ws = connection();
        if (!ws) return;
        if (text == "close") return ws->close(4001, "asked to close");
        if (text == "deadline") return ws->set_deadline(200ms, 1008, "too slow to answer");
        if (text == "cancel") return ws->cancel_deadline();
        if (text == "flood") {
            // Frames of 1 KiB to a client that does not read: the queue passes its bound.
            std::string frame(1024, 'x');
            for (int i = 0; i < 100'000; ++i) {
                auto r = ws->send(frame);
                if (r == websocket::send_result::overflow) {
                    flood_overflowed_at = i;
                    flood_queued_after = ws->queued_bytes();
                    ws->close(1008, "slow consumer");
                    return;
                }
                if (r == websocket::send_result::closed) return;
            }
            return;
        }
        ws->send("echo:" + std::string(text));
    }

    std::shared_ptr<websocket> connection() {
        std::lock_guard lock(mutex);
        return current.lock();
    }
    bool wait_for_closes(int n) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, 5s, [&] { return closes >= n; });
    }

    router routes;
    uint16_t port = 0;
    std::unique_ptr<server> srv;
    std::thread runner;
    std::atomic<bool> ran_to_completion{false};

    std::mutex mutex;
    std::condition_variable cv;
    std::weak_ptr<websocket> current;
    int closes = 0;
    uint16_t closed_code = 0;
    std::string closed_reason;
    std::atomic<int> flood_overflowed_at{-1};
    std::atomic<size_t> flood_queued_after{0};
};

TEST_F(websocket_test, upgrade_runs_the_middleware_and_echoes_the_subprotocol) {
    ws_client::options o;
    o.target = "/ws";
    o.protocols = "echo, other";
    ws_client ws(port, o);
    ASSERT_EQ(ws.status(), 101);
    EXPECT_EQ(ws.header("Sec-WebSocket-Protocol"), "echo");
    EXPECT_EQ(ws.header("X-Seen-By"), "tag");
    EXPECT_EQ(ws.header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(ws.header("X-Request-Id").size(), 32u);
    ASSERT_TRUE(ws.send("hello"));
    EXPECT_EQ(ws.read(), "echo:hello");
    ASSERT_TRUE(ws.send(std::string(10'000, 'y')));
    EXPECT_EQ(ws.read(), "echo:" + std::string(10'000, 'y'));
}

TEST_F(websocket_test, a_refusal_is_a_plain_http_answer_and_plain_requests_get_426) {
    ws_client::options o;
    o.target = "/ws?refuse=1";
    ws_client ws(port, o);
    EXPECT_EQ(ws.status(), 403);
    EXPECT_FALSE(ws.open());
    auto plain = http_request(port, "GET", "/ws");
    EXPECT_EQ(plain.status, 426);
    EXPECT_EQ(plain.header("upgrade"), "websocket");
    EXPECT_NE(plain.body.find("upgrade_required"), std::string::npos);
}

TEST_F(websocket_test, the_server_closes_with_a_code_and_reason) {
    ws_client::options o;
    o.target = "/ws";
    ws_client ws(port, o);
    ASSERT_EQ(ws.status(), 101);
    ASSERT_TRUE(ws.send("close"));
    EXPECT_EQ(ws.read(), std::nullopt);
    EXPECT_EQ(ws.close_code(), 4001);
    EXPECT_EQ(ws.close_reason(), "asked to close");
    ASSERT_TRUE(wait_for_closes(1));
    EXPECT_EQ(closed_code, 4001);
}

TEST_F(websocket_test, a_deadline_closes_unless_cancelled) {
    ws_client::options o;
    o.target = "/ws";
    ws_client kept(port, o);
    ASSERT_TRUE(kept.send("deadline"));
    ASSERT_TRUE(kept.send("cancel"));
    ASSERT_TRUE(kept.send("ping"));
    EXPECT_EQ(kept.read(), "echo:ping");
    EXPECT_EQ(kept.read(600ms), std::nullopt);  // nothing more, and no close
    EXPECT_TRUE(kept.timed_out());

    ws_client ws(port, o);
    ASSERT_TRUE(ws.send("deadline"));
    EXPECT_EQ(ws.read(3s), std::nullopt);
    EXPECT_FALSE(ws.timed_out());
    EXPECT_EQ(ws.close_code(), 1008);
    EXPECT_EQ(ws.close_reason(), "too slow to answer");
}

TEST_F(websocket_test, a_client_that_does_not_read_passes_the_bound_and_the_queue_empties) {
    ws_client::options o;
    o.target = "/ws";
    o.receive_buffer = 4096;
    ws_client ws(port, o);
    ASSERT_EQ(ws.status(), 101);
    ASSERT_TRUE(ws.send("flood"));
    for (int i = 0; i < 100 && flood_overflowed_at < 0; ++i)
        std::this_thread::sleep_for(20ms);
    ASSERT_GE(flood_overflowed_at, 0);
    // The 51st frame passed the bound of 50. The flood ran on the connection's strand, so
    // nothing was on the wire yet: everything queued was dropped, and only the close is sent.
    EXPECT_EQ(flood_overflowed_at, 50);
    EXPECT_EQ(flood_queued_after, 0u);
    int read = 0;
    while (ws.read(5s))
        ++read;
    EXPECT_FALSE(ws.timed_out());
    EXPECT_EQ(ws.close_code(), 1008);
    EXPECT_EQ(ws.close_reason(), "slow consumer");
    EXPECT_EQ(read, 0);
}

TEST_F(websocket_test, stop_closes_open_websockets_with_1001_and_drains) {
    ws_client::options o;
    o.target = "/ws";
    ws_client ws(port, o);
    ASSERT_EQ(ws.status(), 101);
    ASSERT_TRUE(ws.send("x"));
    EXPECT_EQ(ws.read(), "echo:x");
    srv->stop();
    EXPECT_EQ(ws.read(), std::nullopt);
    EXPECT_EQ(ws.close_code(), 1001);
    EXPECT_EQ(ws.close_reason(), "server shutting down");
    runner.join();
    EXPECT_TRUE(ran_to_completion);
}

// The same upgrade over TLS: the WebSocket runs on the connection's TLS stream.
TEST(websocket_tls_test, echoes_over_tls) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    clisonix::testing::temp_dir dir;
    std::string cert = (dir.path() / "cert.pem").string(), key = (dir.path() / "key.pem").string();
    clisonix::testing::process openssl(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    ASSERT_EQ(openssl.wait(30s), 0) << openssl.err();

    router routes;
    route echo{method::get, "/ws", "Echoes", permission::read, nullptr};
    std::mutex m;
    std::weak_ptr<websocket> current;
    echo.websocket = [&](request& req, websocket_accept& accept) {
        EXPECT_TRUE(req.secure);
        accept.on_open = [&](const std::shared_ptr<websocket>& ws) {
            std::lock_guard lock(m);
            current = ws;
        };
        accept.on_message = [&](std::string_view text) {
            std::lock_guard lock(m);
            if (auto ws = current.lock()) ws->send("tls:" + std::string(text));
        };
        return response{101, "", "", {}};
    };
    routes.add(std::move(echo));
    server_options opts;
    opts.bind = "127.0.0.1";
    opts.port = free_port();
    opts.threads = 2;
    opts.tls.cert_file = cert;
    opts.tls.key_file = key;
    server srv(opts, routes, {});
    ASSERT_TRUE(srv.listen().ok());
    std::thread runner([&] { srv.run(false); });

    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(cert);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ioc, ctx);
    beast::get_lowest_layer(ws).expires_after(10s);
    beast::get_lowest_layer(ws).connect({asio::ip::make_address("127.0.0.1"), opts.port});
    ws.next_layer().handshake(asio::ssl::stream_base::client);
    ws.handshake("localhost", "/ws");
    ws.write(asio::buffer(std::string("secret")));
    beast::flat_buffer buffer;
    ws.read(buffer);
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), "tls:secret");
    ws.close(beast::websocket::close_code::normal);

    srv.stop();
    runner.join();
}

}  // namespace
}  // namespace clisonix::http
