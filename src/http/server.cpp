// The HTTP/1.1 server on Boost.Beast: one io_context run by N worker threads, one strand
// per connection, limits and timeouts on every read, optional TLS, and a drain on stop().
// WebSocket routes upgrade the same stream (plain or TLS) to a Beast websocket stream.
#include <openssl/ssl.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
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
namespace bws = boost::beast::websocket;
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
        heavy_rejected = metrics::global().get_counter(
            "clisonix_http_heavy_rejected_total",
            "Requests of heavy routes (login) refused with 429 because their pool was full", {},
            {});
        heavy_pool = std::make_unique<asio::thread_pool>(
            static_cast<size_t>(std::max(1, opts.heavy_threads)));
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
    // Heavy routes run here (see http.h). Declared after the io_context so that it is joined
    // before the context goes: its jobs post their answers to the context.
    std::unique_ptr<asio::thread_pool> heavy_pool;
    std::atomic<int> heavy_in_flight{0};  // running or waiting in heavy_pool
    metrics::counter heavy_rejected;

    // Whether a heavy request may have a place in the pool; when true, the caller must
    // call heavy_done() once it has finished.
    bool heavy_admit() {
        const int capacity = std::max(1, opts.heavy_threads) + std::max(0, opts.heavy_queue);
        if (heavy_in_flight.fetch_add(1) >= capacity) {
            heavy_in_flight.fetch_sub(1);
            heavy_rejected.inc();
            return false;
        }
        return true;
    }
    void heavy_done() { heavy_in_flight.fetch_sub(1); }

    void do_accept();
    std::shared_ptr<session_base> make_session(tcp::socket sock, std::string peer);
    void on_session_closed(session_base* s, const std::string& peer);
    void begin_drain();
    void check_drained();
    // `upgrade` is set for a WebSocket upgrade request: a WebSocket route's handler fills it.
    response dispatch(request& req, websocket_accept* upgrade = nullptr);
    response run_chain(request& req, size_t index, const router::match& m,
                       websocket_accept* upgrade);
};

namespace {

// An upgraded connection: the Beast websocket stream over the HTTP session's stream, a
// bounded outgoing queue written one frame at a time on the connection's strand, and a read
// loop that hands messages to the route's callbacks. It counts as a session of the server
// (connection limits, drain) from the upgrade until its last handler has run.
template <bool Tls>
class ws_connection : public websocket,
                      public session_base,
                      public std::enable_shared_from_this<ws_connection<Tls>> {
    using next_layer =
        std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;
    using std::enable_shared_from_this<ws_connection<Tls>>::shared_from_this;
    // How long a close handshake may take before the connection is cut: a peer that stopped
    // reading would otherwise hold its socket (and the frame being written) for good.
    static constexpr auto close_timeout = std::chrono::seconds(10);

public:
    using headers = std::vector<std::pair<std::string, std::string>>;

    static std::shared_ptr<ws_connection> create(next_layer&& stream, server_core& srv,
                                                 std::string remote, websocket_accept accept,
                                                 bhttp::request<bhttp::string_body> upgrade,
                                                 headers extra) {
        auto c = std::shared_ptr<ws_connection>(
            new ws_connection(std::move(stream), srv, std::move(remote), std::move(accept),
                              std::move(upgrade), std::move(extra)));
        std::lock_guard lock(srv.sessions_mutex);
        srv.sessions.emplace(c.get(), c);
        ++srv.per_ip[c->_remote];
        return c;
    }
    ~ws_connection() override { _srv.on_session_closed(this, _remote); }

    void start() override {
        // Beast's websocket timeouts replace the HTTP ones: a handshake limit, and pings
        // when the peer is silent, closing it when it stays silent.
        beast::get_lowest_layer(_ws).expires_never();
        _ws.set_option(
            bws::stream_base::timeout{_srv.opts.header_timeout, _srv.opts.idle_timeout, true});
        _ws.set_option(bws::stream_base::decorator([extra = _extra](bws::response_type& res) {
            for (const auto& [name, value] : extra)
                res.set(name, value);
        }));
        _ws.read_message_max(_accept.max_message_bytes);
        _ws.async_accept(
            _upgrade, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
    }

    void post_close_if_idle() override { close(1001, "server shutting down"); }

    send_result send(std::shared_ptr<const std::string> text) override {
        std::lock_guard lock(_mutex);
        if (_state != state::open) return send_result::closed;
        size_t size = text->size();
        if (_queued_messages + 1 > _accept.max_queue_messages ||
            (_queued_messages > 0 && _queued_bytes + size > _accept.max_queue_bytes)) {
            // Everything not yet on the wire goes now, so that a reader that stopped costs
            // at most the frame being written.
            _state = state::overflowed;
            _queue.clear();
            _queued_bytes = _writing ? _inflight_bytes : 0;
            _queued_messages = _writing ? 1 : 0;
            return send_result::overflow;
        }
        _queue.push_back(std::move(text));
        _queued_bytes += size;
        ++_queued_messages;
        if (!_write_posted && !_writing) {
            _write_posted = true;
            asio::post(_exec, [self = shared_from_this()] { self->write_next(); });
        }
        return send_result::queued;
    }

    void close(uint16_t code, std::string_view reason) override {
        {
            std::lock_guard lock(_mutex);
            if (_state == state::closing || _state == state::closed) return;
            _state = state::closing;
            _queue.clear();
            _queued_bytes = _writing ? _inflight_bytes : 0;
            _queued_messages = _writing ? 1 : 0;
            _close_code = code;
            _close_reason = std::string(reason.substr(0, 123));
        }
        asio::post(_exec, [self = shared_from_this()] { self->begin_close(); });
    }

    void set_deadline(std::chrono::milliseconds after, uint16_t code, std::string reason) override {
        uint64_t generation = ++_deadline_generation;
        asio::post(_exec, [self = shared_from_this(), after, code, reason = std::move(reason),
                           generation]() mutable {
            if (generation != self->_deadline_generation) return;
            self->_deadline.expires_after(after);
            self->_deadline.async_wait(
                [self, code, reason = std::move(reason), generation](beast::error_code ec) {
                    if (!ec && generation == self->_deadline_generation) self->close(code, reason);
                });
        });
    }

    void cancel_deadline() override {
        ++_deadline_generation;
        asio::post(_exec, [self = shared_from_this()] { self->_deadline.cancel(); });
    }

    size_t queued_bytes() const override {
        std::lock_guard lock(_mutex);
        return _queued_bytes;
    }
    size_t queued_messages() const override {
        std::lock_guard lock(_mutex);
        return _queued_messages;
    }
    const std::string& remote_address() const override { return _remote; }

private:
    enum class state { connecting, open, overflowed, closing, closed };

    ws_connection(next_layer&& stream, server_core& srv, std::string remote,
                  websocket_accept accept, bhttp::request<bhttp::string_body> upgrade,
                  headers extra)
        : _ws(std::move(stream)),
          _exec(_ws.get_executor()),
          _srv(srv),
          _remote(std::move(remote)),
          _accept(std::move(accept)),
          _upgrade(std::move(upgrade)),
          _extra(std::move(extra)),
          _deadline(_exec),
          _close_timer(_exec) {}

    void on_accept(beast::error_code ec) {
        if (ec) {
            clisonix::log::debug("WebSocket handshake failed",
                                 {{"client", _remote}, {"reason", ec.message()}});
            std::lock_guard lock(_mutex);
            _state = state::closed;
            return cut();
        }
        {
            std::lock_guard lock(_mutex);
            if (_state == state::connecting) _state = state::open;
        }
        _opened = true;
        if (_accept.on_open) {
            try {
                _accept.on_open(shared_from_this());
            } catch (const std::exception& e) {
                clisonix::log::error("WebSocket open handler failed", {{"error", e.what()}});
                close(1011, "internal error");
            }
        }
        read_next();
        if (_srv.stopping) close(1001, "server shutting down");
    }

    void read_next() {
        _ws.async_read(_read_buffer, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->on_read(ec);
        });
    }

    void on_read(beast::error_code ec) {
        if (ec) return finish(ec);
        std::string message = beast::buffers_to_string(_read_buffer.data());
        _read_buffer.consume(_read_buffer.size());
        bool open;
        {
            std::lock_guard lock(_mutex);
            open = _state == state::open;
        }
        if (open && _accept.on_message) {
            try {
                _accept.on_message(message);
            } catch (const std::exception& e) {
                clisonix::log::error("WebSocket message handler failed", {{"error", e.what()}});
                close(1011, "internal error");
            }
        }
        read_next();
    }

    void write_next() {
        std::shared_ptr<const std::string> text;
        {
            std::lock_guard lock(_mutex);
            _write_posted = false;
            if (_writing) return;
            if (_state == state::closing) return;  // begin_close() sends the close frame
            if (_queue.empty() || _state != state::open) return;
            text = std::move(_queue.front());
            _queue.pop_front();
            _writing = true;
            _inflight_bytes = text->size();
        }
        _ws.text(true);
        _ws.async_write(asio::buffer(*text),
                        [self = shared_from_this(), text](beast::error_code ec, size_t) {
                            self->on_write(ec);
                        });
    }

    void on_write(beast::error_code ec) {
        bool closing;
        {
            std::lock_guard lock(_mutex);
            _writing = false;
            _queued_bytes -= _inflight_bytes;
            --_queued_messages;
            _inflight_bytes = 0;
            closing = _state == state::closing;
        }
        if (ec) return cut();
        if (closing) return send_close();
        write_next();
    }

    void begin_close() {
        ++_deadline_generation;
        _deadline.cancel();
        if (!_opened) return cut();  // the handshake is still running: nothing to say
        _close_timer.expires_after(close_timeout);
        _close_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (!ec) self->cut();
        });
        bool writing;
        {
            std::lock_guard lock(_mutex);
            writing = _writing;
        }
        if (!writing) send_close();  // else on_write() sends it after the frame in flight
    }

    void send_close() {
        if (_close_sent) return;
        _close_sent = true;
        bws::close_reason why(static_cast<bws::close_code>(_close_code), _close_reason);
        _ws.async_close(why, [self = shared_from_this()](beast::error_code ec) {
            if (ec) self->cut();
        });
    }

    // Ends the connection now: pending operations complete with errors.
    void cut() {
        beast::error_code ignored;
        beast::get_lowest_layer(_ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(_ws).socket().close(ignored);
    }

    void finish(beast::error_code ec) {
        if (_finished) return;
        _finished = true;
        uint16_t code = 1006;
        std::string reason;
        {
            std::lock_guard lock(_mutex);
            _state = state::closed;
            _queue.clear();
            if (_close_sent || !_close_reason.empty() || _close_code != 0) {
                code = _close_code;
                reason = _close_reason;
            } else if (ec == bws::error::closed) {
                code = _ws.reason().code;
                reason = std::string(_ws.reason().reason.data(), _ws.reason().reason.size());
            } else {
                reason = ec.message();
            }
        }
        ++_deadline_generation;
        _deadline.cancel();
        _close_timer.cancel();
        cut();
        if (_opened && _accept.on_close) {
            try {
                _accept.on_close(code, reason);
            } catch (const std::exception& e) {
                clisonix::log::error("WebSocket close handler failed", {{"error", e.what()}});
            }
        }
        // Whatever the callbacks hold is released with the connection's last handler.
        _accept.on_open = nullptr;
        _accept.on_message = nullptr;
        _accept.on_close = nullptr;
    }

    bws::stream<next_layer> _ws;
    asio::any_io_executor _exec;
    server_core& _srv;
    std::string _remote;
    websocket_accept _accept;
    bhttp::request<bhttp::string_body> _upgrade;
    headers _extra;
    beast::flat_buffer _read_buffer;
    asio::steady_timer _deadline;
    asio::steady_timer _close_timer;
    std::atomic<uint64_t> _deadline_generation{0};

    mutable std::mutex _mutex;  // guards the fields below
    state _state = state::connecting;
    std::deque<std::shared_ptr<const std::string>> _queue;
    size_t _queued_bytes = 0;  // queued plus the frame in flight
    size_t _queued_messages = 0;
    size_t _inflight_bytes = 0;
    bool _writing = false;
    bool _write_posted = false;
    uint16_t _close_code = 0;
    std::string _close_reason;

    // Used on the strand only.
    bool _opened = false;
    bool _close_sent = false;
    bool _finished = false;
};

}  // namespace

namespace {

template <bool Tls>
class session : public session_base, public std::enable_shared_from_this<session<Tls>> {
    using stream_type =
        std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;
    using std::enable_shared_from_this<session<Tls>>::shared_from_this;

public:
    session(tcp::socket socket, server_core& srv, std::string peer) requires(!Tls)
        : _stream(std::move(socket)),
          _srv(srv),
          _remote(std::move(peer)),
          _exec(_stream.get_executor()) {}
    session(tcp::socket socket, server_core& srv, std::string peer) requires(Tls)
        : _stream(std::move(socket), *srv.tls),
          _srv(srv),
          _remote(std::move(peer)),
          _exec(_stream.get_executor()) {}
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
        // Not through _stream: after an upgrade it has moved into the WebSocket connection.
        asio::post(_exec, [self = shared_from_this()] {
            if (!self->_busy) self->close();
        });
    }

    void close() {
        if (_upgraded) return;
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
        _request = request_of_header(msg);
        if (_srv.opts.check_header && _request->verb_known && !bws::is_upgrade(msg)) {
            request& req = _request->req;
            auto m = _srv.routes.find(req.verb, req.path);
            req.matched = m.found;
            req.path_params = m.params;
            bool accepted = true;
            try {
                clisonix::log::request_scope scope(req.request_id);
                accepted = _srv.opts.check_header(req);
            } catch (const std::exception& e) {
                clisonix::log::error("header check failed", {{"error", e.what()}});
            }
            // Refused: answered now, through the chain, without reading the body; the
            // connection cannot be reused since the body (if any) is still on the wire.
            if (!accepted) return respond(false);
        }
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
            return write_error(431, "too_large",
                               "The request header is larger than the limit of " +
                                   std::to_string(_srv.opts.header_limit) + " bytes");
        if (ec == bhttp::error::body_limit)
            return write_error(413, "too_large",
                               "The request body is larger than the limit of " +
                                   std::to_string(_srv.opts.body_limit) + " bytes");
        if (ec == beast::error::timeout) {
            // The stream has closed the socket on its deadline: nothing more can be sent.
            clisonix::log::info("slow client disconnected", {{"client", _remote}});
            return close();
        }
        if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category())
            return write_error(400, "invalid_argument", "Malformed HTTP request: " + ec.message());
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

    // The request as its header tells it; the body is added once read.
    struct pending_request {
        request req;
        bool verb_known = false;
    };

    pending_request request_of_header(bhttp::request<bhttp::string_body>& msg) const {
        pending_request p;
        request& req = p.req;
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
        auto client_id = sane_request_id(msg["X-Request-Id"]);
        req.request_id = client_id.empty() ? new_request_id() : std::string(client_id);
        if (auto verb = from_verb(msg.method())) {
            req.verb = *verb;
            p.verb_known = true;
        }
        return p;
    }

    void handle() { respond(true); }

    // Answers the request in _request: with its body when `body_read`, else (refused on its
    // header) with an empty one and the connection closed afterwards.
    void respond(bool body_read) {
        auto& msg = _parser->get();
        request req = std::move(_request->req);
        const bool verb_known = _request->verb_known;
        _request.reset();
        if (body_read)
            req.body = std::move(msg.body());
        else
            _body_unread = true;
        const bool keep_alive = body_read && msg.keep_alive() && !_srv.stopping;
        if (!verb_known) {
            auto res =
                response::error(501, "not_implemented",
                                "Method " + std::string(msg.method_string()) + " is not supported");
            return send(res, req.request_id, keep_alive, false);
        }
        const bool upgrade = body_read && bws::is_upgrade(msg);
        if (!upgrade) {
            auto m = _srv.routes.find(req.verb, req.path);
            if (m.found && m.found->heavy) return respond_heavy(std::move(req), keep_alive);
        }
        websocket_accept accept;
        response res = _srv.dispatch(req, upgrade ? &accept : nullptr);
        if (upgrade && res.status == 101 && req.matched && req.matched->websocket && !_srv.stopping)
            return start_websocket(std::move(accept), res, req.request_id);
        send_after_delay(std::move(res), req.request_id, keep_alive, req.verb == method::head);
    }

    // A heavy route's request runs in the server's heavy pool; its answer comes back to this
    // connection's strand. A full pool is answered at once.
    void respond_heavy(request req, bool keep_alive) {
        if (!_srv.heavy_admit()) {
            auto res =
                response::error(429, "too_many_requests",
                                "The server is busy checking other passwords; try again in 1 s");
            res.headers.emplace_back("Retry-After", "1");
            clisonix::log::request_scope scope(req.request_id);
            clisonix::log::warn("heavy request refused: pool full",
                                {{"path", req.path}, {"client", req.remote_address}});
            return send(res, req.request_id, keep_alive, req.verb == method::head);
        }
        asio::post(*_srv.heavy_pool, [self = shared_from_this(), req = std::move(req),
                                      keep_alive]() mutable {
            response res;
            try {
                res = self->_srv.dispatch(req);
            } catch (const std::exception& e) {  // a middleware's; handlers' are caught inside
                clisonix::log::error("request failed", {{"error", e.what()}});
                res = response::error(500, "internal", "The server failed to handle the request");
            }
            self->_srv.heavy_done();
            const bool head = req.verb == method::head;
            asio::post(self->_exec, [self, res = std::move(res), id = std::move(req.request_id),
                                     keep_alive, head]() mutable {
                self->send_after_delay(std::move(res), id, keep_alive, head);
            });
        });
    }

    void send_after_delay(response res, const std::string& request_id, bool keep_alive, bool head) {
        if (res.delay <= std::chrono::milliseconds::zero())
            return send(res, request_id, keep_alive, head);
        auto timer = std::make_shared<asio::steady_timer>(_exec, res.delay);
        timer->async_wait(
            [self = shared_from_this(), timer, res = std::move(res), request_id, keep_alive,
             head](beast::error_code) mutable { self->send(res, request_id, keep_alive, head); });
    }

    // Hands the stream to a WebSocket connection, which answers 101 with the headers the
    // middleware chain added; this session ends here.
    void start_websocket(websocket_accept accept, const response& res,
                         const std::string& request_id) {
        typename ws_connection<Tls>::headers extra;
        extra.emplace_back("X-Request-Id", request_id);
        for (const auto& header : res.headers)
            extra.push_back(header);
        for (const auto& [name, value] : _srv.opts.always_headers) {
            bool present = false;
            for (const auto& header : extra)
                present = present || beast::iequals(header.first, name);
            if (!present) extra.emplace_back(name, value);
        }
        if (!accept.subprotocol.empty())
            extra.emplace_back("Sec-WebSocket-Protocol", accept.subprotocol);
        _upgraded = true;
        auto connection =
            ws_connection<Tls>::create(std::move(_stream), _srv, _remote, std::move(accept),
                                       _parser->release(), std::move(extra));
        connection->start();
    }

    void send(response& res, const std::string& request_id, bool keep_alive, bool head) {
        _busy = true;
        // Decided now, not when the request arrived: a drain may have begun while it ran.
        keep_alive = keep_alive && !_srv.stopping;
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
                if (!ec && self->_body_unread) return self->linger_close();
                if (ec || !keep_alive) return self->close();
                self->read_next();
            });
    }

    // After answering a request whose body was never read: a close with unread data would
    // make the kernel reset the connection, and a client still sending its body could lose
    // the answer with it. So stop sending, then read and drop what arrives for a short while
    // (at most a body's limit), and close.
    void linger_close() {
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        lowest().expires_after(std::chrono::seconds(2));
        discard(std::make_shared<std::array<char, 16 * 1024>>(), 0);
    }

    void discard(std::shared_ptr<std::array<char, 16 * 1024>> scratch, uint64_t so_far) {
        lowest().async_read_some(asio::buffer(*scratch), [self = shared_from_this(), scratch,
                                                          so_far](beast::error_code ec, size_t n) {
            if (ec || so_far + n > self->_srv.opts.body_limit) return self->close();
            self->discard(scratch, so_far + n);
        });
    }

    stream_type _stream;
    server_core& _srv;
    beast::flat_buffer _buffer;
    std::optional<bhttp::request_parser<bhttp::string_body>> _parser;
    std::string _remote;
    bool _first = true;  // the first request gets the header timeout, later ones the idle one
    bool _busy = false;  // a request is being read, handled or answered
    bool _deadline_set = false;   // the handshake's deadline also covers the first header
    asio::any_io_executor _exec;  // the connection's strand
    bool _upgraded = false;       // the stream now belongs to a WebSocket connection
    std::optional<pending_request> _request;  // from its header until it is answered
    bool _body_unread = false;  // refused on its header: the connection ends after the answer
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
                // Not moved: make_session took it only in the branch that set `s`.
                sock.close(ignored);  // NOLINT(bugprone-use-after-move)
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

response server_core::run_chain(request& req, size_t index, const router::match& m,
                                websocket_accept* upgrade) {
    if (index < chain.size())
        return chain[index](
            req, [&, index, upgrade](request& r) { return run_chain(r, index + 1, m, upgrade); });
    if (!req.matched) {
        if (m.path_exists)
            return response::error(
                405, "method_not_allowed",
                std::string(method_name(req.verb)) + " is not allowed on " + req.path);
        return response::error(404, "not_found", "No such resource: " + req.path);
    }
    try {
        if (req.matched->websocket) {
            if (!upgrade) {
                auto res = response::error(426, "upgrade_required",
                                           req.path +
                                               " is a WebSocket endpoint: send a "
                                               "WebSocket upgrade request");
                res.headers.emplace_back("Upgrade", "websocket");
                return res;
            }
            return req.matched->websocket(req, *upgrade);
        }
        return req.matched->handle(req);
    } catch (const std::exception& e) {
        clisonix::log::error("request handler failed", {{"error", e.what()}});
        return response::error(
            500, "internal",
            "The server failed to handle the request (request id " + req.request_id + ")");
    }
}

response server_core::dispatch(request& req, websocket_accept* upgrade) {
    clisonix::log::request_scope scope(req.request_id);
    auto m = routes.find(req.verb, req.target);  // raw: the router decodes each segment once
    req.matched = m.found;
    req.path_params = m.params;
    return run_chain(req, 0, m, upgrade);
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
