// The HTTP/1.1 server on Boost.Beast: one io_context run by N worker threads, one strand
// per connection, limits and timeouts on every read, optional TLS, and a drain on stop().
#include <openssl/ssl.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "http/http.h"
#include "http/internal.h"
#include "observe/observe.h"

namespace clisonix::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string new_request_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char digits[] = "0123456789abcdef";
    std::string id(32, '0');
    uint64_t hi = rng(), lo = rng();
    for (int i = 0; i < 16; ++i) {
        id[i] = digits[(hi >> (60 - 4 * i)) & 0xF];
        id[16 + i] = digits[(lo >> (60 - 4 * i)) & 0xF];
    }
    return id;
}

std::string_view sane_request_id(std::string_view candidate) {
    if (candidate.empty() || candidate.size() > 128) return {};
    for (char c : candidate)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
            c != ':')
            return {};
    return candidate;
}

namespace {

std::optional<method> from_verb(bhttp::verb v) {
    switch (v) {
        case bhttp::verb::get:
            return method::get;
        case bhttp::verb::head:
            return method::head;
        case bhttp::verb::post:
            return method::post;
        case bhttp::verb::put:
            return method::put;
        case bhttp::verb::patch:
            return method::patch;
        case bhttp::verb::delete_:
            return method::del;
        case bhttp::verb::options:
            return method::options;
        default:
            return std::nullopt;
    }
}

// What the server needs of a session of either kind (plain or TLS).
class session_base {
public:
    virtual ~session_base() = default;
    virtual void start() = 0;
    // Closes the connection on its own strand if it is between requests.
    virtual void post_close_if_idle() = 0;
};

// The peer's address as text; an IPv4 peer on a dual-stack socket reads as IPv4, so that
// per-address limits and logs see one spelling.
std::string peer_address(const tcp::socket& sock) {
    beast::error_code ec;
    auto endpoint = sock.remote_endpoint(ec);
    if (ec) return {};
    auto address = endpoint.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
    return address.to_string();
}

}  // namespace

// The server's state, shared by the acceptor and every session.
struct server_core {
    server_core(server_options o, const router& r, std::vector<middleware> c)
        : opts(std::move(o)), routes(r), chain(std::move(c)) {
        rejected_per_ip = metrics::global().get_counter(
            "clisonix_http_connections_rejected_total",
            "Connections closed at once because their address held too many", {"reason"},
            {"per_ip"});
    }

    server_options opts;
    const router& routes;
    std::vector<middleware> chain;
    metrics::counter rejected_per_ip;

    // Declared before the io_context so that they outlive it: destroying the io_context
    // destroys pending handlers, and with them sessions that unregister themselves here
    // (and TLS streams that refer to the context).
    std::optional<asio::ssl::context> tls;
    std::mutex sessions_mutex;
    std::map<session_base*, std::weak_ptr<session_base>> sessions;  // guarded by sessions_mutex
    std::map<std::string, int, std::less<>> per_ip;                 // guarded by sessions_mutex
    bool accept_paused = false;                                     // guarded by sessions_mutex
    std::atomic<bool> stopping{false};

    asio::io_context ioc;
    tcp::acceptor acceptor{ioc};
    asio::steady_timer drain_timer{ioc};
    std::chrono::steady_clock::time_point drain_deadline;

    void do_accept();
    std::shared_ptr<session_base> make_session(tcp::socket sock, std::string peer);
    void on_session_closed(session_base* s, const std::string& peer);
    void begin_drain();
    void check_drained();
    response dispatch(request& req);
    response run_chain(request& req, size_t index, const router::match& m);
};

namespace {

template <bool Tls>
class session : public session_base, public std::enable_shared_from_this<session<Tls>> {
    using stream_type =
        std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;
    using std::enable_shared_from_this<session<Tls>>::shared_from_this;

public:
    session(tcp::socket socket, server_core& srv, std::string peer) requires(!Tls)
        : _stream(std::move(socket)), _srv(srv), _remote(std::move(peer)) {}
    session(tcp::socket socket, server_core& srv, std::string peer) requires(Tls)
        : _stream(std::move(socket), *srv.tls), _srv(srv), _remote(std::move(peer)) {}
    ~session() override { _srv.on_session_closed(this, _remote); }

    void start() override {
        if constexpr (Tls) {
            // The handshake counts against the header timeout: a client that stalls it
            // holds the connection no longer than one that stalls its header.
            lowest().expires_after(_srv.opts.header_timeout);
            _deadline_set = true;
            _stream.async_handshake(
                asio::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
                    if (ec) {
                        clisonix::log::debug("TLS handshake failed",
                                             {{"client", self->_remote}, {"reason", ec.message()}});
                        return self->close();
                    }
                    self->read_next();
                });
        } else {
            read_next();
        }
    }

    void post_close_if_idle() override {
        asio::post(_stream.get_executor(), [self = shared_from_this()] {
            if (!self->_busy) self->close();
        });
    }

    void close() {
        beast::error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
        lowest().socket().close(ec);
    }

private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(_stream); }

    void read_next() {
        if (_srv.stopping) return close();
        _parser.emplace();
        _parser->header_limit(_srv.opts.header_limit);
        _parser->body_limit(_srv.opts.body_limit);
        // An absolute deadline for the whole header, not per read: a client trickling a
        // byte at a time cannot stretch it.
        if (!_deadline_set)
            lowest().expires_after(_first ? _srv.opts.header_timeout : _srv.opts.idle_timeout);
        _deadline_set = false;
        bhttp::async_read_header(
            _stream, _buffer, *_parser,
            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        _busy = true;
        _first = false;
        lowest().expires_after(_srv.opts.idle_timeout);
        auto& msg = _parser->get();
        auto expect = msg[bhttp::field::expect];
        if (beast::iequals(expect, "100-continue")) {
            auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(
                bhttp::status::continue_, msg.version());
            bhttp::async_write(_stream, *cont,
                               [self = shared_from_this(), cont](beast::error_code ec2, size_t) {
                                   if (ec2) return self->close();
                                   self->read_body();
                               });
            return;
        }
        read_body();
    }

    void read_body() {
        bhttp::async_read(_stream, _buffer, *_parser,
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->on_read_error(ec);
                              self->handle();
                          });
    }

    void on_read_error(beast::error_code ec) {
        // A client that goes away or stays silent between requests, or a server closing
        // idle connections, is normal and answered with nothing.
        bool mid_request = _busy || (_parser && _parser->got_some());
        if (!mid_request || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::eof)
            return close();
        if (ec == bhttp::error::header_limit)
            return write_error(431, "header_too_large",
                               "The request header is larger than the limit of " +
                                   std::to_string(_srv.opts.header_limit) + " bytes");
        if (ec == bhttp::error::body_limit)
            return write_error(413, "body_too_large",
                               "The request body is larger than the limit of " +
                                   std::to_string(_srv.opts.body_limit) + " bytes");
        if (ec == beast::error::timeout) {
            // The stream has closed the socket on its deadline: nothing more can be sent.
            clisonix::log::info("slow client disconnected", {{"client", _remote}});
            return close();
        }
        if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category())
            return write_error(400, "bad_request", "Malformed HTTP request: " + ec.message());
        close();
    }

    void write_error(int status, std::string_view code, const std::string& message) {
        auto res = response::error(status, code, message);
        std::string id = new_request_id();
        clisonix::log::request_scope scope(id);
        clisonix::log::warn("request rejected",
                            {{"status", status}, {"reason", code}, {"client", _remote}});
        send(res, id, false, false);
    }

    void handle() {
        auto& msg = _parser->get();
        request req;
        req.target = std::string(msg.target());
        parse_target(req.target, req);
        req.remote_address = _remote;
        req.peer_address = _remote;
        req.secure = Tls;
        for (const auto& f : msg) {
            std::string name(f.name_string());
            for (auto& c : name)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            req.headers.emplace_back(std::move(name), std::string(f.value()));
        }
        req.body = std::move(msg.body());
        auto client_id = sane_request_id(msg["X-Request-Id"]);
        req.request_id = client_id.empty() ? new_request_id() : std::string(client_id);

        auto verb = from_verb(msg.method());
        response res;
        if (!verb) {
            res =
                response::error(501, "not_implemented",
                                "Method " + std::string(msg.method_string()) + " is not supported");
        } else {
            req.verb = *verb;
            res = _srv.dispatch(req);
        }
        bool keep_alive = msg.keep_alive() && !_srv.stopping;
        send(res, req.request_id, keep_alive, req.verb == method::head);
    }

    void send(response& res, const std::string& request_id, bool keep_alive, bool head) {
        _busy = true;
        auto out = std::make_shared<bhttp::response<bhttp::string_body>>();
        out->result(static_cast<unsigned>(res.status));
        out->version(11);
        if (!res.content_type.empty()) out->set(bhttp::field::content_type, res.content_type);
        out->set("X-Request-Id", request_id);
        for (auto& [name, value] : res.headers)
            out->set(name, value);
        for (const auto& [name, value] : _srv.opts.always_headers)
            if (out->find(name) == out->end()) out->set(name, value);
        out->keep_alive(keep_alive);
        if (head) {
            out->content_length(res.body.size());
        } else {
            out->body() = std::move(res.body);
            out->prepare_payload();
        }
        bhttp::async_write(
            _stream, *out,
            [self = shared_from_this(), out, keep_alive](beast::error_code ec, size_t) {
                self->_busy = false;
                if (ec || !keep_alive) return self->close();
                self->read_next();
            });
    }

    stream_type _stream;
    server_core& _srv;
    beast::flat_buffer _buffer;
    std::optional<bhttp::request_parser<bhttp::string_body>> _parser;
    std::string _remote;
    bool _first = true;  // the first request gets the header timeout, later ones the idle one
    bool _busy = false;  // a request is being read, handled or answered
    bool _deadline_set = false;  // the handshake's deadline also covers the first header
};

}  // namespace

void server_core::do_accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket sock) {
        if (ec) {
            if (ec == asio::error::operation_aborted || stopping) return;
            clisonix::log::warn("accept failed", {{"error", ec.message()}});
        } else if (stopping) {
            return;
        } else {
            std::string peer = peer_address(sock);
            std::shared_ptr<session_base> s;
            bool paused = false;
            {
                std::lock_guard lock(sessions_mutex);
                auto it = per_ip.find(peer);
                int held = it == per_ip.end() ? 0 : it->second;
                if (opts.max_connections_per_ip <= 0 || held < opts.max_connections_per_ip) {
                    ++per_ip[peer];
                    s = make_session(std::move(sock), peer);
                    sessions.emplace(s.get(), s);
                    // Leave further clients in the kernel's backlog until one closes.
                    paused = static_cast<int>(sessions.size()) >= opts.max_connections;
                    if (paused) accept_paused = true;
                }
            }
            if (s) {
                s->start();
            } else {
                // One address holding this many connections is a flood, not a user: it
                // gets no answer, and other clients keep their share.
                rejected_per_ip.inc();
                clisonix::log::debug("connection refused: too many from one address",
                                     {{"client", peer}});
                beast::error_code ignored;
                sock.close(ignored);
            }
            if (paused) return;
        }
        do_accept();
    });
}

std::shared_ptr<session_base> server_core::make_session(tcp::socket sock, std::string peer) {
    if (tls) return std::make_shared<session<true>>(std::move(sock), *this, std::move(peer));
    return std::make_shared<session<false>>(std::move(sock), *this, std::move(peer));
}

void server_core::on_session_closed(session_base* s, const std::string& peer) {
    bool resume = false;
    {
        std::lock_guard lock(sessions_mutex);
        sessions.erase(s);
        if (auto it = per_ip.find(peer); it != per_ip.end() && --it->second <= 0) per_ip.erase(it);
        if (accept_paused && !stopping &&
            static_cast<int>(sessions.size()) < opts.max_connections) {
            accept_paused = false;
            resume = true;
        }
    }
    if (resume) asio::post(ioc, [this] { do_accept(); });
}

void server_core::begin_drain() {
    if (stopping.exchange(true)) return;
    clisonix::log::info("shutting down: draining in-flight requests",
                        {{"drain_timeout_ms", static_cast<int64_t>(opts.drain_timeout.count())}});
    beast::error_code ec;
    acceptor.close(ec);
    std::vector<std::shared_ptr<session_base>> live;
    {
        std::lock_guard lock(sessions_mutex);
        for (auto& [ptr, weak] : sessions)
            if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live)
        s->post_close_if_idle();
    drain_deadline = std::chrono::steady_clock::now() + opts.drain_timeout;
    check_drained();
}

void server_core::check_drained() {
    size_t open_sessions;
    {
        std::lock_guard lock(sessions_mutex);
        open_sessions = sessions.size();
    }
    if (open_sessions == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
        if (open_sessions > 0)
            clisonix::log::warn("drain timeout: closing connections with requests in flight",
                                {{"connections", static_cast<int64_t>(open_sessions)}});
        ioc.stop();
        return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([this](beast::error_code) { check_drained(); });
}

response server_core::run_chain(request& req, size_t index, const router::match& m) {
    if (index < chain.size())
        return chain[index](req, [&, index](request& r) { return run_chain(r, index + 1, m); });
    if (!req.matched) {
        if (m.path_exists)
            return response::error(
                405, "method_not_allowed",
                std::string(method_name(req.verb)) + " is not allowed on " + req.path);
        return response::error(404, "not_found", "No such resource: " + req.path);
    }
    try {
        return req.matched->handle(req);
    } catch (const std::exception& e) {
        clisonix::log::error("request handler failed", {{"error", e.what()}});
        return response::error(
            500, "internal",
            "The server failed to handle the request (request id " + req.request_id + ")");
    }
}

response server_core::dispatch(request& req) {
    clisonix::log::request_scope scope(req.request_id);
    auto m = routes.find(req.verb, req.path);
    req.matched = m.found;
    req.path_params = m.params;
    return run_chain(req, 0, m);
}

struct server::impl : server_core {
    using server_core::server_core;
};

server::server(server_options opts, const router& routes, std::vector<middleware> chain)
    : _impl(std::make_unique<impl>(std::move(opts), routes, std::move(chain))) {}

server::~server() = default;

namespace {

// TLS 1.3 by default; 1.2 only when asked; never anything older. The key must match the
// certificate (OpenSSL checks when the key is loaded).
status setup_tls(asio::ssl::context& ctx, const server_options::tls_settings& tls) {
    if (tls.key_file.empty())
        return make_error("invalid_config", "http.tls.key: required when http.tls.cert is set",
                          "http.tls.key");
    int min_version;
    if (tls.min_version == "1.3")
        min_version = TLS1_3_VERSION;
    else if (tls.min_version == "1.2")
        min_version = TLS1_2_VERSION;
    else
        return make_error("invalid_config",
                          "http.tls.min_version: must be 1.3 or 1.2, not " + tls.min_version,
                          "http.tls.min_version");
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use |
                    asio::ssl::context::no_compression);
    // Client-initiated renegotiation (TLS 1.2) costs the server a handshake per request.
    SSL_CTX_set_options(ctx.native_handle(), SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_min_proto_version(ctx.native_handle(), min_version) != 1)
        return make_error("internal", "OpenSSL refused the minimum TLS version " + tls.min_version);
    beast::error_code ec;
    ctx.use_certificate_chain_file(tls.cert_file, ec);
    if (ec)
        return make_error("invalid_config",
                          "http.tls.cert: cannot load " + tls.cert_file + ": " + ec.message(),
                          "http.tls.cert");
    ctx.use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec)
        return make_error("invalid_config",
                          "http.tls.key: cannot load " + tls.key_file + ": " + ec.message(),
                          "http.tls.key");
    return {};
}

}  // namespace

status server::listen() {
    auto& a = _impl->acceptor;
    beast::error_code ec;
    if (!_impl->opts.tls.cert_file.empty()) {
        auto& ctx = _impl->tls.emplace(asio::ssl::context::tls_server);
        if (auto st = setup_tls(ctx, _impl->opts.tls); !st) {
            _impl->tls.reset();
            return st;
        }
    }
    auto address = asio::ip::make_address(_impl->opts.bind, ec);
    std::string where = _impl->opts.bind + ":" + std::to_string(_impl->opts.port);
    if (ec)
        return make_error("invalid_config", "http.bind: not an IP address: " + _impl->opts.bind);
    tcp::endpoint endpoint(address, _impl->opts.port);
    a.open(endpoint.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(endpoint, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error("unavailable", "cannot listen on " + where + ": " + ec.message());
    return {};
}

bool server::run(bool handle_signals) {
    auto& s = *_impl;
    asio::signal_set signals(s.ioc);
    if (handle_signals) {
        signals.add(SIGINT);
        signals.add(SIGTERM);
        signals.async_wait([this](beast::error_code ec, int sig) {
            if (ec) return;
            clisonix::log::info("signal received",
                                {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
            _impl->begin_drain();
        });
    }
    s.do_accept();

    // Every worker is a thread of its own, so that this thread can give up on workers stuck
    // in a handler once the drain time is over.
    struct tally {
        std::mutex m;
        std::condition_variable cv;
        int running = 0;
    };
    auto count = std::make_shared<tally>();
    int threads = s.opts.threads > 0
                      ? s.opts.threads
                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    count->running = threads;
    std::vector<std::thread> workers;
    for (int i = 0; i < threads; ++i)
        workers.emplace_back([&ioc = s.ioc, count] {
            ioc.run();
            std::lock_guard lock(count->m);
            --count->running;
            count->cv.notify_all();
        });

    std::unique_lock lock(count->m);
    while (count->running > 0 && !s.ioc.stopped())
        count->cv.wait_for(lock, std::chrono::milliseconds(50));
    // Stopped: handlers still running get a short grace, then are left behind.
    count->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return count->running == 0; });
    bool all_done = count->running == 0;
    lock.unlock();
    for (auto& w : workers) {
        if (all_done)
            w.join();
        else
            w.detach();
    }
    return all_done;
}

void server::stop() {
    asio::post(_impl->ioc, [this] { _impl->begin_drain(); });
}

}  // namespace clisonix::http
