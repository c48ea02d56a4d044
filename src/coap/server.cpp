// The CoAP server: one libcoap context whose I/O loop, handlers and writes all run on one
// thread (libcoap 4.3 is not thread-safe). See coap.h for the API it serves.
#include <arpa/inet.h>
#include <coap3/coap.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coap/coap.h"
#include "common/json_text.h"
#include "common/time.h"
#include "config/config.h"
#include "observe/observe.h"

namespace clisonix::coap {

options options_from(const config::config& cfg) {
    options o;
    o.bind = cfg.get_string("coap.bind");
    o.port = static_cast<uint16_t>(cfg.get_int("coap.port"));
    o.max_payload = static_cast<uint64_t>(cfg.get_int("coap.max_payload"));
    o.bounds = ingest::limits_from(cfg);
    return o;
}

namespace {

// "2.04" for 0x44: the notation RFC 7252 and every CoAP tool use.
std::string code_text(coap_pdu_code_t code) {
    const int c = static_cast<int>(code);
    std::string s = std::to_string(c >> 5) + ".";
    const int detail = c & 31;
    if (detail < 10) s += '0';
    return s + std::to_string(detail);
}

// libcoap's own warnings go to our log; its chatter below warnings is dropped.
void log_from_libcoap(coap_log_t level, const char* message) {
    std::string_view text(message);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.remove_suffix(1);
    if (level <= LOG_ERR)
        log::error("coap library", {{"message", text}});
    else
        log::warn("coap library", {{"message", text}});
}

void start_libcoap_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        coap_startup();
        coap_set_log_handler(log_from_libcoap);
        coap_set_log_level(LOG_WARNING);
    });
}

// What an answer is made of; the handler turns it into the response PDU.
struct answer {
    coap_pdu_code_t code = COAP_RESPONSE_CODE_CHANGED;
    std::string payload;  // a diagnostic line, or JSON for 2.05
    bool json = false;
    uint32_t max_age = 0;  // seconds; 0 = no Max-Age option
    uint64_t size1 = 0;    // 4.13: the largest body taken
};

answer fail(coap_pdu_code_t code, std::string diagnostic, uint32_t max_age = 0) {
    answer a;
    a.code = code;
    a.payload = std::move(diagnostic);
    a.max_age = max_age;
    return a;
}

// The CoAP code for an error of the pipeline or a hook, as the HTTP API maps the same codes
// (ingest/routes.cpp): the retry hints are the same seconds as its Retry-After.
answer answer_for(const error& e) {
    if (e.code == errc::invalid_argument || e.code == errc::invalid_json)
        return fail(COAP_RESPONSE_CODE_BAD_REQUEST, e.message);
    if (e.code == errc::too_large) return fail(COAP_RESPONSE_CODE_REQUEST_TOO_LARGE, e.message);
    if (e.code == errc::too_many_requests)
        return fail(COAP_RESPONSE_CODE_TOO_MANY_REQUESTS, e.message, 3600);
    if (e.code == errc::not_found) return fail(COAP_RESPONSE_CODE_NOT_FOUND, e.message);
    if (e.code == errc::storage_full)
        return fail(COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, e.message, 10);
    if (e.code == errc::overloaded || e.code == errc::unavailable)
        return fail(COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, e.message, 1);
    return fail(COAP_RESPONSE_CODE_INTERNAL_ERROR, e.message);
}

// "clientKeys=a,b&sharedKeys=c" -> {"clientKeys":"a,b","sharedKeys":"c"}: the request the
// MQTT API takes, so that both answer from the same registry call.
std::string attribute_request_json(std::string_view query) {
    std::string out = "{";
    while (!query.empty()) {
        auto amp = query.find('&');
        auto part = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = part.find('=');
        if (eq == std::string_view::npos) continue;
        auto name = part.substr(0, eq);
        if (name != "clientKeys" && name != "sharedKeys") continue;
        if (out.size() > 1) out += ',';
        append_json_string(out, name);
        out += ':';
        append_json_string(out, part.substr(eq + 1));
    }
    return out + "}";
}

// libcoap binds with SO_REUSEADDR, with which Linux lets a second UDP socket take the same
// port and the datagrams go to one of them: a second server (or another CoAP daemon) would
// silently steal the devices' requests. A bind without it fails while the port is held.
bool udp_port_taken(const coap_address_t& addr) {
    int fd = ::socket(addr.addr.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;  // let libcoap report what is wrong
    bool taken = ::bind(fd, &addr.addr.sa, addr.size) != 0 && errno == EADDRINUSE;
    ::close(fd);
    return taken;
}

}  // namespace

struct server::impl {
    impl(options o, ingest::pipeline& s, hooks h) : opts(std::move(o)), sink(s), hk(std::move(h)) {}

    options opts;
    ingest::pipeline& sink;
    hooks hk;

    coap_context_t* ctx = nullptr;
    std::thread io_thread;
    std::atomic<bool> quit{false};
    std::atomic<uint16_t> bound_port{0};

    // Answers by (client address and port, message id), kept for EXCHANGE_LIFETIME (RFC 7252
    // 4.8.2, 247 s): a request sent again because its ACK was lost gets the same answer and
    // is not handled again, so telemetry without "ts" is not stored twice. Bounded: beyond
    // the bound the oldest go first (a retransmission that old is past its last try).
    static constexpr auto exchange_lifetime = std::chrono::seconds(247);
    static constexpr size_t max_remembered = 100000;
    struct remembered {
        answer a;
        std::chrono::steady_clock::time_point at;
    };
    std::unordered_map<std::string, remembered> answers;
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> answer_order;

    static std::string exchange_key(coap_session_t* session, const coap_pdu_t* request) {
        std::string key;
        if (const coap_address_t* from = coap_session_get_addr_remote(session))
            key.assign(reinterpret_cast<const char*>(&from->addr), from->size);
        const auto mid = static_cast<uint16_t>(coap_pdu_get_mid(request));
        key.push_back(static_cast<char>(mid >> 8));
        key.push_back(static_cast<char>(mid & 0xff));
        return key;
    }

    void forget_old_answers(std::chrono::steady_clock::time_point now) {
        while (!answer_order.empty() && (answer_order.front().first + exchange_lifetime < now ||
                                         answer_order.size() > max_remembered)) {
            auto it = answers.find(answer_order.front().second);
            if (it != answers.end() && it->second.at == answer_order.front().first)
                answers.erase(it);
            answer_order.pop_front();
        }
    }

    // The I/O thread's: reused across requests.
    ingest::json_parser parser;
    storage::write_batch batch;
    std::map<int, metrics::counter> by_code;
    metrics::counter duplicates = metrics::global().get_counter(
        "clisonix_coap_duplicates_total",
        "CoAP requests received again (same client, same message id) and answered as before");

    void count(coap_pdu_code_t code) {
        auto it = by_code.find(code);
        if (it == by_code.end())
            it = by_code
                     .emplace(code, metrics::global().get_counter(
                                        "clisonix_coap_requests_total",
                                        "CoAP requests answered, by response code", {"code"},
                                        {code_text(code)}))
                     .first;
        it->second.inc();
    }

    answer write_telemetry(const std::string& device, std::string_view body) {
        ingest::json_options jo;
        jo.now_ns = now_ns();
        jo.bounds = opts.bounds;
        status st = parser.parse(body, device, jo, batch);
        if (st) {
            try {
                st = sink.submit(batch);  // durable on return: the ACK follows it
            } catch (const std::exception& e) {
                st = make_error("unavailable", std::string("write failed: ") + e.what());
            }
        }
        if (batch.point_count() > 200'000) batch = storage::write_batch{};  // no pinned peak
        if (!st) {
            // A device's own mistake is its answer's business (and a flood of them must not
            // flood the log); the engine pushing back is the operator's.
            if (st.error().code == errc::invalid_argument)
                log::debug("coap telemetry refused",
                           {{"device", device}, {"error", st.error().message}});
            else
                log::info("coap telemetry refused",
                          {{"device", device}, {"error", st.error().message}});
            return answer_for(st.error());
        }
        return {};
    }

    answer handle(coap_pdu_code_t method, const coap_pdu_t* request, const coap_string_t* query) {
        // The path: api/v1/{token}/{telemetry|attributes}.
        std::vector<std::string_view> path;
        coap_opt_iterator_t it;
        coap_option_iterator_init(request, &it, COAP_OPT_ALL);
        while (coap_opt_t* opt = coap_option_next(&it)) {
            if (it.number != COAP_OPTION_URI_PATH) continue;
            path.emplace_back(reinterpret_cast<const char*>(coap_opt_value(opt)),
                              coap_opt_length(opt));
        }
        if (path.size() != 4 || path[0] != "api" || path[1] != "v1" ||
            (path[3] != "telemetry" && path[3] != "attributes"))
            return fail(COAP_RESPONSE_CODE_NOT_FOUND,
                        "no such resource: use /api/v1/{device_token}/telemetry or /attributes");
        const bool telemetry = path[3] == "telemetry";
        if (method != COAP_REQUEST_CODE_POST && !(method == COAP_REQUEST_CODE_GET && !telemetry))
            return fail(COAP_RESPONSE_CODE_NOT_ALLOWED,
                        telemetry ? "telemetry takes POST" : "attributes take POST or GET");

        if (!hk.authenticate_device)
            return fail(COAP_RESPONSE_CODE_UNAUTHORIZED, "device tokens are not accepted here");
        auto device = hk.authenticate_device(path[2]);
        if (!device) return fail(COAP_RESPONSE_CODE_UNAUTHORIZED, "the device token is not valid");

        if (method == COAP_REQUEST_CODE_GET) {
            if (!hk.attribute_request)
                return fail(COAP_RESPONSE_CODE_NOT_IMPLEMENTED, "attribute requests are off");
            std::string_view q;
            if (query) q = {reinterpret_cast<const char*>(query->s), query->length};
            auto json = hk.attribute_request(*device, attribute_request_json(q));
            if (!json) return answer_for(json.error());
            answer a;
            a.code = COAP_RESPONSE_CODE_CONTENT;
            a.payload = std::move(*json);
            a.json = true;
            return a;
        }

        size_t length = 0, offset = 0, total = 0;
        const uint8_t* data = nullptr;
        if (!coap_get_data_large(request, &length, &data, &offset, &total)) {
            length = total = 0;
            data = nullptr;
        }
        if (total > opts.max_payload) {
            auto a = fail(COAP_RESPONSE_CODE_REQUEST_TOO_LARGE,
                          "the payload of " + std::to_string(total) +
                              " bytes is larger than coap.max_payload (" +
                              std::to_string(opts.max_payload) + " bytes)");
            a.size1 = opts.max_payload;
            return a;
        }
        if (offset != 0 || length != total)  // libcoap hands over whole bodies (SINGLE_BODY)
            return fail(COAP_RESPONSE_CODE_INCOMPLETE, "the payload arrived incomplete");
        std::string_view body(reinterpret_cast<const char*>(data), length);
        if (telemetry) return write_telemetry(*device, body);
        if (!hk.client_attributes)
            return fail(COAP_RESPONSE_CODE_NOT_IMPLEMENTED, "client attributes are off");
        if (auto st = hk.client_attributes(*device, body); !st) return answer_for(st.error());
        return {};
    }

    void respond(coap_pdu_code_t method, coap_session_t* session, const coap_pdu_t* request,
                 const coap_string_t* query, coap_pdu_t* response) {
        const auto now = std::chrono::steady_clock::now();
        forget_old_answers(now);
        auto key = exchange_key(session, request);
        answer a;
        if (auto seen = answers.find(key); seen != answers.end()) {
            a = seen->second.a;  // a retransmission: the first answer again, nothing redone
            duplicates.inc();
        } else {
            try {
                a = handle(method, request, query);
            } catch (const std::exception& e) {  // never let a request end the server
                log::error("coap request failed", {{"error", e.what()}});
                a = fail(COAP_RESPONSE_CODE_INTERNAL_ERROR, "internal error");
            }
            answers[key] = {a, now};
            answer_order.emplace_back(now, std::move(key));
            count(a.code);
        }
        coap_pdu_set_code(response, a.code);
        uint8_t buf[8];
        // Options in ascending number: Content-Format (12), Max-Age (14), Size1 (60).
        if (a.json)
            coap_add_option(response, COAP_OPTION_CONTENT_FORMAT,
                            coap_encode_var_safe(buf, sizeof(buf), COAP_MEDIATYPE_APPLICATION_JSON),
                            buf);
        if (a.max_age)
            coap_add_option(response, COAP_OPTION_MAXAGE,
                            coap_encode_var_safe(buf, sizeof(buf), a.max_age), buf);
        if (a.size1)
            coap_add_option(response, COAP_OPTION_SIZE1,
                            coap_encode_var_safe8(buf, sizeof(buf), a.size1), buf);
        if (!a.payload.empty())
            coap_add_data(response, a.payload.size(),
                          reinterpret_cast<const uint8_t*>(a.payload.data()));
    }

    template <coap_pdu_code_t Method>
    static void handler(coap_resource_t* resource, coap_session_t* session,
                        const coap_pdu_t* request, const coap_string_t* query,
                        coap_pdu_t* response) {
        static_cast<impl*>(coap_resource_get_userdata(resource))
            ->respond(Method, session, request, query, response);
    }
};

server::server(options opts, ingest::pipeline& sink, hooks h)
    : _impl(std::make_unique<impl>(std::move(opts), sink, std::move(h))) {}

server::~server() {
    stop();
}

status server::start() {
    auto& m = *_impl;
    if (m.ctx) return {};
    start_libcoap_once();
    coap_address_t addr;
    coap_address_init(&addr);
    if (inet_pton(AF_INET, m.opts.bind.c_str(), &addr.addr.sin.sin_addr) == 1) {
        addr.addr.sin.sin_family = AF_INET;
        addr.addr.sin.sin_port = htons(m.opts.port);
        addr.size = sizeof(addr.addr.sin);
    } else if (inet_pton(AF_INET6, m.opts.bind.c_str(), &addr.addr.sin6.sin6_addr) == 1) {
        addr.addr.sin6.sin6_family = AF_INET6;
        addr.addr.sin6.sin6_port = htons(m.opts.port);
        addr.size = sizeof(addr.addr.sin6);
    } else {
        return make_error("invalid_config",
                          "coap.bind \"" + m.opts.bind + "\" is not an IPv4 or IPv6 address",
                          "coap.bind");
    }
    const std::string where = m.opts.bind + ":" + std::to_string(m.opts.port);
    if (udp_port_taken(addr))
        return make_error("unavailable",
                          "cannot listen on UDP " + where + " (coap.port): the port is taken");
    m.ctx = coap_new_context(nullptr);
    if (!m.ctx) return make_error("unavailable", "cannot create the CoAP context");
    // A session per client address and port: bounded, so that many senders (or spoofed
    // ones) cannot grow memory without end; the least recently used idle one goes first and
    // its device's next request simply opens a new one.
    coap_context_set_max_idle_sessions(m.ctx, 10000);
    // Bodies sent block-wise (Block1, as coap-client does past 1 KiB) reach the handler whole.
    coap_context_set_block_mode(m.ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    if (!coap_new_endpoint(m.ctx, &addr, COAP_PROTO_UDP)) {
        coap_free_context(m.ctx);
        m.ctx = nullptr;
        return make_error("unavailable", "cannot listen on UDP " + where +
                                             " (coap.port): the port is not allowed");
    }
    // Every path goes to one resource: the token is a path segment, not a known resource.
    coap_resource_t* r = coap_resource_unknown_init2(&impl::handler<COAP_REQUEST_CODE_PUT>, 0);
    coap_register_request_handler(r, COAP_REQUEST_POST, &impl::handler<COAP_REQUEST_CODE_POST>);
    coap_register_request_handler(r, COAP_REQUEST_GET, &impl::handler<COAP_REQUEST_CODE_GET>);
    coap_register_request_handler(r, COAP_REQUEST_DELETE, &impl::handler<COAP_REQUEST_CODE_DELETE>);
    coap_resource_set_userdata(r, &m);
    coap_add_resource(m.ctx, r);
    m.bound_port = m.opts.port;
    m.quit = false;
    m.io_thread = std::thread([&m] {
        // A short wait, so that stop() is noticed within a tenth of a second.
        while (!m.quit)
            coap_io_process(m.ctx, 100);
    });
    return {};
}

void server::stop() {
    auto& m = *_impl;
    if (!m.ctx) return;
    m.quit = true;
    if (m.io_thread.joinable()) m.io_thread.join();
    coap_free_context(m.ctx);
    m.ctx = nullptr;
    m.bound_port = 0;
}

uint16_t server::port() const {
    return _impl->bound_port;
}

}  // namespace clisonix::coap
