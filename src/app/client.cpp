#include "app/client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace clisonix::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct client::impl {
    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    std::string host;
    std::string port;
    std::string token;
    bool connected = false;

    status open() {
        asio::ip::tcp::resolver resolver(ioc);
        beast::error_code ec;
        auto endpoints = resolver.resolve(host, port, ec);
        if (!ec) stream.connect(endpoints, ec);
        if (ec)
            return make_error("unavailable",
                              "cannot connect to " + host + ":" + port + ": " + ec.message());
        connected = true;
        return {};
    }
};

result<std::unique_ptr<client>> client::connect(std::string_view base_url, std::string token) {
    std::string_view rest = base_url;
    if (!rest.starts_with("http://"))
        return make_error(
            "invalid_argument",
            "--url: expected http://host[:port], got \"" + std::string(base_url) + "\"", "url");
    rest.remove_prefix(7);
    if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
    std::unique_ptr<client> c(new client());
    c->_impl = std::make_unique<impl>();
    auto colon = rest.rfind(':');
    c->_impl->host = std::string(rest.substr(0, colon));
    c->_impl->port = colon == std::string_view::npos ? "80" : std::string(rest.substr(colon + 1));
    c->_impl->token = std::move(token);
    if (auto st = c->_impl->open(); !st) return st.error();
    return c;
}

client::~client() = default;

result<client_response> client::request(std::string_view method, std::string_view target,
                                        std::string_view body, std::string_view content_type,
                                        std::string_view accept) {
    auto& s = *_impl;
    // One retry on a fresh connection: the server may have closed an idle keep-alive one.
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!s.connected)
            if (auto st = s.open(); !st) return st.error();
        bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
        req.set(bhttp::field::host, s.host);
        req.set(bhttp::field::accept, accept);
        if (!s.token.empty()) req.set(bhttp::field::authorization, "Bearer " + s.token);
        if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
        req.body() = std::string(body);
        req.prepare_payload();
        beast::error_code ec;
        bhttp::write(s.stream, req, ec);
        beast::flat_buffer buffer;
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(1ull << 32);
        if (!ec) bhttp::read(s.stream, buffer, parser, ec);
        if (ec) {
            s.stream.close();
            s.connected = false;
            if (attempt == 0) continue;
            return make_error("unavailable",
                              "request to " + s.host + ":" + s.port + " failed: " + ec.message());
        }
        auto& res = parser.get();
        client_response out{static_cast<int>(res.result_int()),
                            std::string(res[bhttp::field::content_type]), std::move(res.body())};
        if (!res.keep_alive()) {
            s.stream.close();
            s.connected = false;
        }
        return out;
    }
    return make_error("unavailable", "request failed");
}

std::string error_message(const client_response& r) {
    boost::system::error_code ec;
    auto v = boost::json::parse(r.body, ec);
    if (!ec && v.is_object() && v.as_object().contains("error")) {
        const auto& e = v.as_object().at("error");
        if (e.is_object() && e.as_object().contains("message") &&
            e.as_object().at("message").is_string())
            return std::string(e.as_object().at("message").as_string());
    }
    return "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
}

}  // namespace clisonix::app
