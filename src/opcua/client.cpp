// The client: discovery, session, and the services on one secure channel.
#include <unistd.h>

#include <map>
#include <optional>
#include <set>

#include "opcua/crypto.h"
#include "opcua/opcua.h"
#include "opcua/secure_channel.h"
#include "opcua/services.h"

namespace clisonix::opcua {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr std::string_view policy_uri_none = "http://opcfoundation.org/UA/SecurityPolicy#None";
constexpr std::string_view policy_uri_basic256sha256 =
    "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256";
constexpr std::string_view rsa_sha256_uri = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
constexpr std::string_view rsa_oaep_uri = "http://www.w3.org/2001/04/xmlenc#rsa-oaep";
constexpr uint32_t attribute_value = 13;
constexpr uint32_t hierarchical_references = 33;

std::string_view policy_uri(security_policy p) {
    return p == security_policy::none ? policy_uri_none : policy_uri_basic256sha256;
}

// The error code a user branches on, from the status the server answered.
error service_error(std::string_view service, uint32_t status) {
    const std::string name = status_name_of(status);
    std::string_view code = "unavailable";
    if (name == "BadUserAccessDenied" || name == "BadIdentityTokenRejected" ||
        name == "BadIdentityTokenInvalid")
        code = "invalid_credentials";
    else if (name.starts_with("BadCertificate") || name == "BadSecurityChecksFailed" ||
             name == "BadSecurityPolicyRejected" || name == "BadSecurityModeRejected")
        code = "forbidden";
    else if (name == "BadNodeIdUnknown" || name == "BadNodeIdInvalid")
        code = "not_found";
    return make_error(code, "OPC UA " + std::string(service) + " failed: " + name);
}

std::string default_application_uri() {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    return std::string("urn:clisonix:") + host + ":opcua-client";
}

}  // namespace

struct client::impl {
    client_options options;
    std::unique_ptr<secure_channel> channel;
    crypto::certificate own_cert;
    crypto::pkey own_key;
    crypto::certificate server_cert;
    std::vector<services::endpoint> endpoints;
    node_id auth_token;
    std::string session_nonce;  // the server's latest nonce, for the password and signatures
    uint32_t next_handle = 1;
    bool session_open = false;

    struct subscription {
        uint32_t id = 0;
        std::map<uint32_t, node_id> items;  // by client handle
        change_callback on_change;
    };
    std::vector<subscription> subscriptions;
    std::vector<std::pair<uint32_t, uint32_t>> acknowledgements;  // (subscription, sequence)
    std::set<uint32_t> publishes_outstanding;
    size_t delivered = 0;
    uint32_t next_client_handle = 1;
    std::optional<error> publish_failure;

    std::string request_header(std::chrono::milliseconds timeout_hint) {
        binary::writer w;
        w.node(auth_token);
        w.datetime_ms(now_ms());
        w.u32(next_handle++);
        w.u32(0);  // return diagnostics
        w.null_string();
        w.u32(static_cast<uint32_t>(timeout_hint.count()));
        w.null_extension_object();
        return std::move(w.out);
    }

    static int64_t now_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    // Handles a message that answers no call in progress: a Publish response.
    void dispatch(const incoming& m) {
        if (!publishes_outstanding.erase(m.request_id)) return;
        binary::reader r(m.body);
        uint32_t status = services::read_response_header(r);
        if (!r.ok()) {
            publish_failure = make_error("unavailable", "OPC UA Publish answer: " + r.error());
            return;
        }
        if (status & 0x80000000u) {
            // BadTimeout and BadTooManyPublishRequests only say that this request was not
            // needed; anything else (BadSessionIdInvalid, BadNoSubscription...) means the
            // subscription is gone, and the caller must connect again.
            const auto name = status_name_of(status);
            if (name != "BadTimeout" && name != "BadTooManyPublishRequests")
                publish_failure = service_error("Publish", status);
            return;
        }
        if (m.type_id != services::publish_response) return;
        auto p = services::read_publish(r);
        if (!r.ok()) {
            publish_failure = make_error("unavailable", "OPC UA Publish answer: " + r.error());
            return;
        }
        if (p.has_data) acknowledgements.emplace_back(p.subscription_id, p.sequence_number);
        for (auto& s : subscriptions) {
            if (s.id != p.subscription_id) continue;
            for (const auto& c : p.changes) {
                auto it = s.items.find(c.client_handle);
                if (it == s.items.end()) continue;
                ++delivered;
                if (s.on_change) s.on_change(data_change{it->second, c.value});
            }
        }
    }

    result<incoming> wait_for(uint32_t request_id) {
        const auto deadline = clock::now() + options.request_timeout;
        for (;;) {
            auto m = channel->receive(deadline);
            if (!m) return m.error();
            if (m->request_id == request_id) return std::move(*m);
            dispatch(*m);
        }
    }

    result<void> renew_if_due() {
        if (!channel->renewal_due()) return {};
        auto id = channel->send_open(true, options.channel_lifetime,
                                     request_header(options.request_timeout));
        if (!id) return id.error();
        auto m = wait_for(*id);
        if (!m) return m.error();
        return channel->accept_open_response(*m);
    }

    // One request and its answer; returns the answer's body after its ResponseHeader.
    result<std::string> call(std::string_view service, uint32_t request_type,
                             uint32_t response_type, const std::string& body) {
        if (!channel) return make_error("unavailable", "the OPC UA client is not connected");
        if (auto st = renew_if_due(); !st) return st.error();
        auto id = channel->send(request_type, body);
        if (!id) return id.error();
        auto m = wait_for(*id);
        if (!m) return m.error();
        binary::reader r(m->body);
        uint32_t status = services::read_response_header(r);
        if (!r.ok())
            return make_error("unavailable",
                              "OPC UA " + std::string(service) + " answer: " + r.error());
        if (status & 0x80000000u) return service_error(service, status);
        if (m->type_id != response_type)
            return make_error("unavailable", "OPC UA " + std::string(service) +
                                                 " was answered with message type " +
                                                 std::to_string(m->type_id));
        return m->body.substr(r.position());
    }

    result<void> open_channel(security_policy policy, security_mode mode,
                              const crypto::certificate* server) {
        channel = std::make_unique<secure_channel>();
        if (auto st = channel->connect(options.endpoint_url, options.connect_timeout); !st)
            return st;
        channel->set_security(policy, mode, &own_cert, own_key.get(), server);
        auto id = channel->send_open(false, options.channel_lifetime,
                                     request_header(options.request_timeout));
        if (!id) return id.error();
        auto m = wait_for(*id);
        if (!m) {
            // A server that rejects our certificate closes the socket or sends ERR; say so.
            if (policy != security_policy::none &&
                m.error().message.find("closed") != std::string::npos)
                return make_error("forbidden",
                                  "OPC UA server closed the connection while opening the secure "
                                  "channel: it probably does not trust our certificate (" +
                                      m.error().message + ")");
            return m.error();
        }
        auto opened = channel->accept_open_response(*m);
        if (!opened && policy != security_policy::none &&
            (opened.error().message.ends_with("BadSecurityChecksFailed") ||
             opened.error().message.find("BadCertificate") != std::string::npos))
            // Servers do not say which check failed (Part 4 §5.5.2); the usual one is that our
            // certificate is not (yet) in their trust list.
            return make_error("forbidden",
                              opened.error().message +
                                  ": the server probably does not trust our certificate (SHA-1 " +
                                  crypto::hex(crypto::sha1(own_cert.der)) + ", " +
                                  options.certificate_path + ")");
        return opened;
    }

    void close_channel() {
        if (!channel) return;
        if (channel->is_open())
            (void)channel->send(services::close_secure_channel_request, request_header(1s), "CLO");
        channel->close_socket();
        channel.reset();
    }

    result<void> get_endpoints() {
        binary::writer w;
        w.raw(request_header(options.request_timeout));
        w.string(options.endpoint_url);
        w.count(0);
        w.count(0);
        auto body = call("GetEndpoints", services::get_endpoints_request,
                         services::get_endpoints_response, w.out);
        if (!body) return body.error();
        binary::reader r(*body);
        endpoints = services::read_endpoints(r);
        if (!r.ok()) return make_error("unavailable", "OPC UA GetEndpoints answer: " + r.error());
        return {};
    }

    const services::endpoint* find_endpoint(security_policy policy, security_mode mode) const {
        for (const auto& e : endpoints)
            if (e.security_policy_uri == policy_uri(policy) && e.mode == static_cast<int32_t>(mode))
                return &e;
        return nullptr;
    }

    result<void> trust_server(const std::string& der) {
        auto c = crypto::certificate_from_der(der);
        if (!c) return c.error();
        const std::string thumbprint = crypto::hex(crypto::sha1(der));
        if (options.trust_dir.empty())
            return make_error("forbidden",
                              "the OPC UA server certificate (SHA-1 " + thumbprint +
                                  ") cannot be checked: no trust directory is configured",
                              "trust_dir");
        auto ok = crypto::trusted(options.trust_dir, der, options.trust_on_first_use);
        if (!ok) return ok.error();
        if (!*ok)
            return make_error("forbidden",
                              "the OPC UA server certificate (SHA-1 " + thumbprint +
                                  ") is not trusted: copy it into " + options.trust_dir,
                              "trust_dir");
        server_cert = std::move(*c);
        return {};
    }

    result<void> create_session(const services::endpoint& endpoint, bool secure) {
        const std::string client_nonce = crypto::random_bytes(32);
        binary::writer w;
        w.raw(request_header(options.request_timeout));
        // ApplicationDescription of the client.
        w.string(options.application_uri);
        w.string("urn:clisonix");
        w.u8(0x02);
        w.string("Clisonix");
        w.i32(1);  // client
        w.null_string();
        w.null_string();
        w.count(0);
        w.null_string();  // server uri
        w.string(options.endpoint_url);
        w.string("clisonix-" + std::to_string(now_ms()));
        w.bytes(client_nonce);
        if (secure)
            w.bytes(own_cert.der);
        else
            w.null_string();
        w.f64(static_cast<double>(options.session_timeout.count()));
        w.u32(0);  // max response message size: no limit beyond the channel's
        auto body = call("CreateSession", services::create_session_request,
                         services::create_session_response, w.out);
        if (!body) return body.error();
        binary::reader r(*body);
        (void)r.node();  // session id
        auth_token = r.node();
        (void)r.f64();
        session_nonce = r.string();
        std::string server_certificate = r.string();
        auto session_endpoints = services::read_endpoints(r);
        for (size_t i = 0, n = r.count(8); i < n && r.ok(); ++i) {
            (void)r.string();
            (void)r.string();
        }
        std::string algorithm = r.string();
        std::string signature = r.string();
        if (!r.ok()) return make_error("unavailable", "OPC UA CreateSession answer: " + r.error());
        if (secure) {
            // The server proves it holds its key: it signs our certificate and nonce.
            if (server_certificate != server_cert.der)
                return make_error("forbidden",
                                  "the OPC UA server's session certificate is not its channel's");
            if (!crypto::rsa_verify(server_cert.key.get(), own_cert.der + client_nonce, signature))
                return make_error("forbidden",
                                  "the OPC UA server's session signature does not verify");
        }
        if (endpoints.empty()) endpoints = std::move(session_endpoints);
        (void)endpoint;
        return {};
    }

    result<void> activate_session(const services::endpoint& endpoint, bool secure) {
        const bool anonymous = options.user.empty();
        const services::user_token_policy* token = nullptr;
        for (const auto& t : endpoint.user_tokens)
            if (t.token_type == (anonymous ? 0 : 1)) {
                token = &t;
                break;
            }
        if (!token)
            return make_error("forbidden", std::string("the OPC UA endpoint accepts no ") +
                                               (anonymous ? "anonymous" : "user name") +
                                               " sessions");
        binary::writer w;
        w.raw(request_header(options.request_timeout));
        if (secure) {
            auto sig = crypto::rsa_sign(own_key.get(), server_cert.der + session_nonce);
            if (!sig) return sig.error();
            w.string(rsa_sha256_uri);
            w.bytes(*sig);
        } else {
            w.null_string();
            w.null_string();
        }
        w.count(0);  // software certificates
        w.count(0);  // locale ids
        binary::writer t;
        t.string(token->policy_id);
        if (anonymous) {
            w.extension_object(services::anonymous_identity_token, t.out);
        } else {
            t.string(options.user);
            // The token's policy, or the channel's when it names none (Part 4 §7.37).
            std::string_view token_policy = token->security_policy_uri.empty()
                                                ? policy_uri(options.policy)
                                                : token->security_policy_uri;
            if (token_policy == policy_uri_none) {
                t.bytes(options.password);
                t.null_string();
            } else if (token_policy == policy_uri_basic256sha256) {
                const crypto::certificate* key_holder = secure ? &server_cert : nullptr;
                crypto::certificate from_endpoint;
                if (!key_holder) {
                    auto c = crypto::certificate_from_der(endpoint.server_certificate);
                    if (!c) return c.error();
                    from_endpoint = std::move(*c);
                    key_holder = &from_endpoint;
                }
                // Part 4 §7.37.4: length, password, server nonce, encrypted with the server's key.
                binary::writer secret;
                secret.u32(static_cast<uint32_t>(options.password.size() + session_nonce.size()));
                secret.raw(options.password);
                secret.raw(session_nonce);
                auto cipher = crypto::rsa_oaep_encrypt(key_holder->key.get(), secret.out);
                if (!cipher) return cipher.error();
                t.bytes(*cipher);
                t.string(rsa_oaep_uri);
            } else {
                return make_error("not_implemented",
                                  "the OPC UA server wants the password secured by " +
                                      std::string(token_policy) +
                                      ", which Clisonix does not support");
            }
            w.extension_object(services::user_name_identity_token, t.out);
        }
        w.null_string();  // user token signature
        w.null_string();
        auto body = call("ActivateSession", services::activate_session_request,
                         services::activate_session_response, w.out);
        if (!body) return body.error();
        binary::reader r(*body);
        session_nonce = r.string();
        return {};
    }
};

client::client() : _impl(std::make_unique<impl>()) {}
client::~client() {
    close();
}

bool client::connected() const {
    return _impl->session_open;
}

uint32_t client::security_token_id() const {
    return _impl->channel ? _impl->channel->token_id() : 0;
}

std::string client::server_thumbprint() const {
    return _impl->server_cert.der.empty() ? std::string()
                                          : crypto::hex(crypto::sha1(_impl->server_cert.der));
}

result<void> client::connect(const client_options& options) {
    close();
    auto& s = *_impl;
    s = impl{};
    s.options = options;
    if (s.options.application_uri.empty()) s.options.application_uri = default_application_uri();
    const bool secure = options.policy != security_policy::none;
    if (secure && options.mode == security_mode::none)
        return make_error("invalid_argument",
                          "security policy Basic256Sha256 needs mode Sign or SignAndEncrypt",
                          "security_mode");
    if (!secure && options.mode != security_mode::none)
        return make_error("invalid_argument",
                          "security mode Sign and SignAndEncrypt need policy Basic256Sha256",
                          "security_mode");
    if (auto a = parse_endpoint_url(options.endpoint_url); !a) return a.error();
    if (secure) {
        if (options.certificate_path.empty() || options.private_key_path.empty())
            return make_error("invalid_argument",
                              "security policy Basic256Sha256 needs a certificate and key path",
                              "certificate_path");
        if (auto st = crypto::load_or_generate(options.certificate_path, options.private_key_path,
                                               s.options.application_uri, s.own_cert, s.own_key);
            !st)
            return st;
    }

    // Discovery on a None channel: the endpoints, their certificate and user token policies.
    if (auto st = s.open_channel(security_policy::none, security_mode::none, nullptr); !st) {
        s.close_channel();
        return st;
    }
    if (auto st = s.get_endpoints(); !st) {
        s.close_channel();
        return st;
    }
    const services::endpoint* endpoint = s.find_endpoint(options.policy, options.mode);
    if (!endpoint) {
        s.close_channel();
        return make_error("forbidden",
                          "the OPC UA server offers no endpoint with security policy " +
                              std::string(secure ? "Basic256Sha256" : "None") + " and mode " +
                              (options.mode == security_mode::none   ? "None"
                               : options.mode == security_mode::sign ? "Sign"
                                                                     : "SignAndEncrypt"),
                          "security_policy");
    }
    const services::endpoint chosen = *endpoint;
    if (secure) {
        s.close_channel();
        if (auto st = s.trust_server(chosen.server_certificate); !st) return st;
        if (auto st = s.open_channel(options.policy, options.mode, &s.server_cert); !st) {
            s.close_channel();
            return st;
        }
    }
    auto fail = [&](error e) {
        s.close_channel();
        return e;
    };
    if (auto st = s.create_session(chosen, secure); !st) return fail(st.error());
    if (auto st = s.activate_session(chosen, secure); !st) return fail(st.error());
    s.session_open = true;
    return {};
}

result<std::vector<reference>> client::browse(const node_id& node) {
    auto& s = *_impl;
    binary::writer w;
    w.raw(s.request_header(s.options.request_timeout));
    w.node(node_id{});  // view: the whole address space
    w.i64(0);
    w.u32(0);
    w.u32(0);  // max references per node: the server's choice
    w.count(1);
    w.node(node);
    w.i32(0);  // forward
    w.node(node_id::of(hierarchical_references));
    w.boolean(true);
    w.u32(0);   // every node class
    w.u32(63);  // every result field
    auto body = s.call("Browse", services::browse_request, services::browse_response, w.out);
    std::vector<reference> out;
    for (;;) {
        if (!body) return body.error();
        binary::reader r(*body);
        auto results = services::read_browse_results(r);
        if (!r.ok()) return make_error("unavailable", "OPC UA Browse answer: " + r.error());
        if (results.size() != 1)
            return make_error("unavailable", "OPC UA Browse answered for " +
                                                 std::to_string(results.size()) + " nodes");
        if (results[0].status & 0x80000000u) {
            auto e = service_error("Browse of " + node.to_string(), results[0].status);
            return e;
        }
        for (auto& ref : results[0].references)
            out.push_back(std::move(ref));
        if (results[0].continuation_point.empty()) return out;
        binary::writer next;
        next.raw(s.request_header(s.options.request_timeout));
        next.boolean(false);
        next.count(1);
        next.bytes(results[0].continuation_point);
        body = s.call("BrowseNext", services::browse_next_request, services::browse_next_response,
                      next.out);
    }
}

result<std::vector<data_value>> client::read(const std::vector<node_id>& nodes) {
    auto& s = *_impl;
    binary::writer w;
    w.raw(s.request_header(s.options.request_timeout));
    w.f64(0);  // max age: a fresh value
    w.i32(2);  // both timestamps
    w.count(nodes.size());
    for (const auto& n : nodes) {
        w.node(n);
        w.u32(attribute_value);
        w.null_string();
        w.qualified_name(0, "");
    }
    auto body = s.call("Read", services::read_request, services::read_response, w.out);
    if (!body) return body.error();
    binary::reader r(*body);
    std::vector<data_value> out;
    for (size_t i = 0, n = r.count(1); i < n && r.ok(); ++i)
        out.push_back(r.read_data_value());
    if (!r.ok()) return make_error("unavailable", "OPC UA Read answer: " + r.error());
    if (out.size() != nodes.size())
        return make_error("unavailable", "OPC UA Read answered " + std::to_string(out.size()) +
                                             " values for " + std::to_string(nodes.size()) +
                                             " nodes");
    return out;
}

result<uint32_t> client::subscribe(const std::vector<node_id>& nodes,
                                   std::chrono::milliseconds interval, change_callback on_change) {
    auto& s = *_impl;
    if (nodes.empty())
        return make_error("invalid_argument", "a subscription needs at least one node", "nodes");
    binary::writer w;
    w.raw(s.request_header(s.options.request_timeout));
    w.f64(static_cast<double>(interval.count()));
    w.u32(30);  // lifetime count (in intervals without a Publish before the server drops it)
    w.u32(10);  // keep-alive count
    w.u32(0);
    w.boolean(true);
    w.u8(0);
    auto body = s.call("CreateSubscription", services::create_subscription_request,
                       services::create_subscription_response, w.out);
    if (!body) return body.error();
    binary::reader r(*body);
    impl::subscription sub;
    sub.id = r.u32();
    sub.on_change = std::move(on_change);
    if (!r.ok()) return make_error("unavailable", "OPC UA CreateSubscription answer: " + r.error());

    binary::writer m;
    m.raw(s.request_header(s.options.request_timeout));
    m.u32(sub.id);
    m.i32(2);
    m.count(nodes.size());
    std::vector<uint32_t> handles;
    for (const auto& n : nodes) {
        m.node(n);
        m.u32(attribute_value);
        m.null_string();
        m.qualified_name(0, "");
        m.i32(2);  // reporting
        handles.push_back(s.next_client_handle++);
        m.u32(handles.back());
        m.f64(static_cast<double>(interval.count()));
        m.null_extension_object();  // the default filter: status or value changes
        m.u32(10);
        m.boolean(true);
    }
    body = s.call("CreateMonitoredItems", services::create_monitored_items_request,
                  services::create_monitored_items_response, m.out);
    if (!body) return body.error();
    binary::reader mr(*body);
    size_t n = mr.count(4);
    if (n != nodes.size() && mr.ok())
        return make_error("unavailable", "OPC UA CreateMonitoredItems answered for " +
                                             std::to_string(n) + " nodes");
    for (size_t i = 0; i < n && mr.ok(); ++i) {
        uint32_t status = mr.u32();
        (void)mr.u32();
        (void)mr.f64();
        (void)mr.u32();
        node_id t;
        std::string b;
        mr.extension_object(t, b);
        if (status & 0x80000000u)
            return service_error("CreateMonitoredItems of " + nodes[i].to_string(), status);
        sub.items[handles[i]] = nodes[i];
    }
    if (!mr.ok())
        return make_error("unavailable", "OPC UA CreateMonitoredItems answer: " + mr.error());
    s.subscriptions.push_back(std::move(sub));
    return s.subscriptions.back().id;
}

result<size_t> client::publish(std::chrono::milliseconds wait) {
    auto& s = *_impl;
    if (!s.channel || !s.session_open)
        return make_error("unavailable", "the OPC UA client is not connected");
    if (s.subscriptions.empty())
        return make_error("invalid_argument", "publish needs a subscription first");
    if (auto st = s.renew_if_due(); !st) return st.error();
    s.delivered = 0;
    const auto deadline = clock::now() + wait;
    while (s.delivered == 0) {
        // Two Publish requests in flight, so that the server always has one to answer with.
        while (s.publishes_outstanding.size() < 2) {
            binary::writer w;
            // The server holds a Publish until data or a keep-alive: no timeout short of that.
            w.raw(s.request_header(10min));
            w.count(s.acknowledgements.size());
            for (auto [sub, seq] : s.acknowledgements) {
                w.u32(sub);
                w.u32(seq);
            }
            s.acknowledgements.clear();
            auto id = s.channel->send(services::publish_request, w.out);
            if (!id) return id.error();
            s.publishes_outstanding.insert(*id);
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left <= 0ms || !s.channel->readable(left)) break;
        auto m = s.channel->receive(clock::now() + s.options.request_timeout);
        if (!m) return m.error();
        s.dispatch(*m);
        if (s.publish_failure) {
            auto e = std::move(*s.publish_failure);
            s.publish_failure.reset();
            return e;
        }
    }
    return s.delivered;
}

void client::close() {
    auto& s = *_impl;
    if (!s.channel) return;
    if (s.session_open) {
        binary::writer w;
        w.raw(s.request_header(2s));
        w.boolean(true);  // delete subscriptions
        s.options.request_timeout =
            std::min(s.options.request_timeout, std::chrono::milliseconds(2000));
        (void)s.call("CloseSession", services::close_session_request,
                     services::close_session_response, w.out);
    }
    s.session_open = false;
    s.close_channel();
    s.subscriptions.clear();
    s.publishes_outstanding.clear();
}

}  // namespace clisonix::opcua
