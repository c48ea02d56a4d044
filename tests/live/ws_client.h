// A WebSocket client for tests: Boost.Beast's client over a plain TCP connection, with a
// timeout on every read so that a test fails instead of hanging.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace clisonix::testing {

class ws_client {
public:
    struct options {
        std::string target = "/api/v1/live";
        std::string protocols;  // Sec-WebSocket-Protocol, when not empty
        std::vector<std::pair<std::string, std::string>> headers;
        int receive_buffer = 0;  // SO_RCVBUF before connecting (a client that reads slowly)
    };

    ws_client(uint16_t port, options opts) {
        namespace asio = boost::asio;
        namespace beast = boost::beast;
        asio::ip::tcp::socket sock(_ioc);
        sock.open(asio::ip::tcp::v4());
        if (opts.receive_buffer > 0)
            sock.set_option(asio::socket_base::receive_buffer_size(opts.receive_buffer));
        beast::error_code ec;
        sock.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
        if (ec) return;
        _ws.emplace(std::move(sock));
        _ws->set_option(
            beast::websocket::stream_base::decorator([opts](beast::websocket::request_type& req) {
                if (!opts.protocols.empty())
                    req.set(beast::http::field::sec_websocket_protocol, opts.protocols);
                for (const auto& [name, value] : opts.headers)
                    req.set(name, value);
            }));
        bool done = false;
        _ws->async_handshake(_response, "127.0.0.1:" + std::to_string(port), opts.target,
                             [&](beast::error_code e) {
                                 ec = e;
                                 done = true;
                             });
        _ioc.run_for(std::chrono::seconds(10));
        _open = done && !ec;
        if (!_open) _closed = true;
    }

    // 101 when open, else the status the server answered (0: no answer).
    int status() const { return static_cast<int>(_response.result_int()); }
    std::string header(std::string_view name) const {
        auto it = _response.find(name);
        return it == _response.end() ? std::string() : std::string(it->value());
    }
    // The body of an answer other than 101 (the JSON error).
    std::string body() const { return _response.body(); }
    bool open() const { return _open && !_closed; }

    bool send(const std::string& text) {
        if (!open()) return false;
        boost::beast::error_code ec;
        _ws->text(true);
        _ws->write(boost::asio::buffer(text), ec);
        return !ec;
    }

    // The next message; nullopt when the connection closed (see closed(), reason()) or
    // nothing came within `timeout` (timed_out(); the client is unusable afterwards).
    std::optional<std::string> read(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        if (!open()) return std::nullopt;
        boost::beast::error_code ec;
        bool done = false;
        _ws->async_read(_buffer, [&](boost::beast::error_code e, size_t) {
            ec = e;
            done = true;
        });
        _ioc.restart();
        _ioc.run_for(timeout);
        if (!done) {
            _timed_out = true;
            _closed = true;
            boost::beast::get_lowest_layer(*_ws).cancel();
            _ioc.restart();
            _ioc.run_for(std::chrono::seconds(1));
            return std::nullopt;
        }
        if (ec) {
            _closed = true;
            _error = ec;
            if (ec == boost::beast::websocket::error::closed) _reason = _ws->reason();
            return std::nullopt;
        }
        std::string text = boost::beast::buffers_to_string(_buffer.data());
        _buffer.consume(_buffer.size());
        return text;
    }

    bool closed() const { return _closed; }
    bool timed_out() const { return _timed_out; }
    // The close frame the server sent (code 0 when it sent none).
    uint16_t close_code() const { return static_cast<uint16_t>(_reason.code); }
    std::string close_reason() const {
        return std::string(_reason.reason.data(), _reason.reason.size());
    }
    boost::beast::error_code error() const { return _error; }

private:
    boost::asio::io_context _ioc;
    std::optional<boost::beast::websocket::stream<boost::beast::tcp_stream>> _ws;
    boost::beast::websocket::response_type _response;
    boost::beast::flat_buffer _buffer;
    boost::beast::websocket::close_reason _reason;
    boost::beast::error_code _error;
    bool _open = false;
    bool _closed = false;
    bool _timed_out = false;
};

}  // namespace clisonix::testing
