// The OPC UA driver on Clisonix's own client (opcua.h): one session per connector with one
// subscription over every mapped node id; a poll delivers the data changes that arrived,
// waiting at most the poll interval (which is also the publishing interval).
//
// The endpoint is the server's URL; its query names the security (the connector document has
// no field of its own for it): opc.tcp://plc:4840?security_policy=Basic256Sha256
// &security_mode=SignAndEncrypt[&trust_on_first_use=true]. Our certificate lives in
// <pki>/own/ (generated on first use), the trusted server certificates in <pki>/trusted/.
#include <map>

#include "connectors/connectors.h"
#include "opcua/opcua.h"

namespace clisonix::connectors {

namespace {

struct endpoint_settings {
    std::string url;  // without the query
    opcua::security_policy policy = opcua::security_policy::none;
    opcua::security_mode mode = opcua::security_mode::none;
    bool trust_on_first_use = false;
};

error bad_endpoint(const std::string& why) {
    return make_error("invalid_argument", "endpoint: " + why, "endpoint");
}

result<endpoint_settings> parse_endpoint(const std::string& endpoint) {
    endpoint_settings s;
    const auto q = endpoint.find('?');
    s.url = endpoint.substr(0, q);
    if (!s.url.starts_with("opc.tcp://") || s.url.size() == 10)
        return bad_endpoint("\"" + endpoint + "\" must be opc.tcp://host[:port][/path]");
    std::string_view query =
        q == std::string::npos ? std::string_view() : std::string_view(endpoint).substr(q + 1);
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = pair.find('=');
        auto key = pair.substr(0, eq);
        auto value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (key == "security_policy") {
            auto p = opcua::parse_security_policy(value);
            if (!p) return bad_endpoint(p.error().message);
            s.policy = *p;
        } else if (key == "security_mode") {
            auto m = opcua::parse_security_mode(value);
            if (!m) return bad_endpoint(m.error().message);
            s.mode = *m;
        } else if (key == "trust_on_first_use") {
            if (value != "true" && value != "false")
                return bad_endpoint("trust_on_first_use must be true or false");
            s.trust_on_first_use = value == "true";
        } else {
            return bad_endpoint(
                "\"" + std::string(key) +
                "\" is not one of security_policy, security_mode, trust_on_first_use");
        }
    }
    if ((s.policy == opcua::security_policy::none) != (s.mode == opcua::security_mode::none))
        return bad_endpoint(
            "security_policy Basic256Sha256 goes with security_mode Sign or SignAndEncrypt, "
            "and None with None");
    return s;
}

class opcua_session final : public session {
public:
    opcua_session(const connector& c, std::string pki_dir) : _c(c), _pki(std::move(pki_dir)) {
        for (size_t i = 0; i < c.mappings.size(); ++i) {
            auto id = opcua::parse_node_id(c.mappings[i].address);
            if (id) _indexes[id->to_string()].push_back(i);
        }
    }
    ~opcua_session() override { close(); }

    status connect() override {
        close();
        auto e = parse_endpoint(_c.endpoint);
        if (!e) return e.error();
        opcua::client_options o;
        o.endpoint_url = e->url;
        o.policy = e->policy;
        o.mode = e->mode;
        o.trust_on_first_use = e->trust_on_first_use;
        o.user = _c.username;
        o.password = _c.password;
        o.certificate_path = _pki + "/own/cert.pem";
        o.private_key_path = _pki + "/own/key.pem";
        o.trust_dir = _pki + "/trusted";
        o.connect_timeout = std::chrono::milliseconds(_c.timeout_ms);
        o.request_timeout = std::chrono::milliseconds(_c.timeout_ms);
        ++_sent;
        if (auto st = _client.connect(o); !st) return fail(st.error());
        std::vector<opcua::node_id> nodes;
        for (const auto& [text, _] : _indexes)
            nodes.push_back(*opcua::parse_node_id(text));
        ++_sent;
        auto sub = _client.subscribe(nodes, std::chrono::milliseconds(_c.poll_interval_ms),
                                     [this](const opcua::data_change& d) { on_change(d); });
        if (!sub) {
            _client.close();
            return fail(sub.error());
        }
        return {};
    }

    status poll(std::vector<reading>& out) override {
        if (!_client.connected()) return make_error("unavailable", "opcua: not connected");
        ++_sent;
        auto n = _client.publish(std::chrono::milliseconds(_c.poll_interval_ms));
        if (!n) return fail(n.error());
        out.insert(out.end(), _pending.begin(), _pending.end());
        _pending.clear();
        return {};
    }

    void close() override {
        _client.close();
        _pending.clear();
    }

    uint64_t requests() const override { return _sent; }

private:
    // A value that is not Good, or not a number (a String node), is a gap, not an error.
    void on_change(const opcua::data_change& d) {
        if (!d.value.good()) return;
        auto v = d.value.v.as_double();
        if (!v) return;
        auto it = _indexes.find(d.node.to_string());
        if (it == _indexes.end()) return;
        for (size_t i : it->second) {
            const auto& m = _c.mappings[i];
            _pending.push_back({i, *v * m.scale + m.offset});
        }
    }

    error fail(const error& e) const {
        return make_error(
            e.code, "opcua " + _c.endpoint.substr(0, _c.endpoint.find('?')) + ": " + e.message,
            e.field);
    }

    connector _c;
    std::string _pki;
    opcua::client _client;
    std::map<std::string, std::vector<size_t>> _indexes;  // node id text -> mapping entries
    std::vector<reading> _pending;
    uint64_t _sent = 0;
};

class opcua_driver final : public driver {
public:
    explicit opcua_driver(std::string pki_dir) : _pki(std::move(pki_dir)) {}

    std::string_view type() const override { return "opcua"; }

    status validate(const connector& c) const override {
        auto e = parse_endpoint(c.endpoint);
        if (!e) return e.error();
        if (e->policy != opcua::security_policy::none && _pki.empty())
            return bad_endpoint(
                "this server has no OPC UA certificate directory for Basic256Sha256");
        if (!c.password.empty() && c.username.empty())
            return make_error("invalid_argument", "username: is required with a password",
                              "username");
        for (size_t i = 0; i < c.mappings.size(); ++i) {
            const std::string at = "mapping[" + std::to_string(i) + "].address";
            if (auto id = opcua::parse_node_id(c.mappings[i].address); !id)
                return make_error("invalid_argument", at + ": " + id.error().message, at);
        }
        return {};
    }

    std::unique_ptr<session> open(const connector& c) const override {
        return std::make_unique<opcua_session>(c, _pki);
    }

private:
    std::string _pki;
};

}  // namespace

std::unique_ptr<driver> make_opcua_driver(std::string pki_dir) {
    return std::make_unique<opcua_driver>(std::move(pki_dir));
}

}  // namespace clisonix::connectors
