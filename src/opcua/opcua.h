// Clisonix — an OPC UA client (UA TCP binary) for reading PLCs and SCADA servers.
//
// The subset plants need (docs/decisions/0082-opcua-client.md): security policies None and
// Basic256Sha256 (Sign, SignAndEncrypt), anonymous and user name/password sessions, Browse,
// Read, and subscriptions to data changes. The client is blocking: each call sends one
// request and waits for its answer, bounded by the request timeout. One thread at a time per
// client; subscriptions deliver their data changes from inside `publish`.
//
//   opcua::client c;
//   opcua::client_options o;
//   o.endpoint_url = "opc.tcp://plc1:4840";
//   o.policy = opcua::security_policy::basic256sha256;
//   o.mode = opcua::security_mode::sign_and_encrypt;
//   o.trust_dir = "/var/lib/clisonix/opcua/trusted";
//   if (auto st = c.connect(o); !st) log(st.error().message);
//   auto values = c.read({*opcua::parse_node_id("ns=2;s=Pump1.Temp")});
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace clisonix::opcua {

// A node id (Part 3 §8.2) in one of its four kinds.
struct node_id {
    enum class kind : uint8_t { numeric, string, guid, opaque };
    uint16_t namespace_index = 0;
    kind type = kind::numeric;
    uint32_t numeric = 0;
    std::string identifier;  // the string, the 16 guid bytes, or the opaque bytes

    static node_id of(uint32_t id, uint16_t ns = 0) { return {ns, kind::numeric, id, {}}; }
    bool is_null() const { return namespace_index == 0 && type == kind::numeric && numeric == 0; }
    // The text form of Part 6 §5.3.1.10: "i=2258", "ns=2;s=Pump1.Temp", "ns=3;g=...", "ns=1;b=...".
    std::string to_string() const;
    friend bool operator==(const node_id&, const node_id&) = default;
};

// Parses the text form; the error names the part at fault ("node id 'ns=x;i=1': namespace
// index 'x' is not a number").
result<node_id> parse_node_id(std::string_view text);

// A value of one of OPC UA's built-in types, or an array of them. Numbers are widened
// (every signed integer to int64, unsigned to uint64, Float to double); String, XmlElement,
// ByteString and the body of an ExtensionObject are bytes; LocalizedText and QualifiedName
// keep their text; a Guid is its text form; a DateTime is Unix time in ms.
struct value {
    using scalar =
        std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string, node_id>;
    uint8_t type = 0;  // the built-in type id (1 Boolean ... 25 DiagnosticInfo); 0 is null
    bool is_array = false;
    std::vector<scalar> items;  // one item for a scalar
    std::vector<int32_t> dimensions;

    // The scalar as a number: Boolean, the integers, Float, Double, StatusCode, DateTime (ms).
    std::optional<double> as_double() const;
    std::string to_string() const;
};

// A value as a server reports it: status, and the times at the source and the server (Unix
// ms; 0 when the server sent none).
struct data_value {
    value v;
    uint32_t status = 0;
    int64_t source_time_ms = 0;
    int64_t server_time_ms = 0;
    bool good() const { return (status & 0xC0000000u) == 0; }
};

// "BadUserAccessDenied" for 0x801F0000; a hex code for a code without a name.
std::string status_name_of(uint32_t status);

enum class security_policy { none, basic256sha256 };
enum class security_mode : int32_t { none = 1, sign = 2, sign_and_encrypt = 3 };
result<security_policy> parse_security_policy(std::string_view text);  // "None", "Basic256Sha256"
result<security_mode> parse_security_mode(
    std::string_view text);  // "None", "Sign", "SignAndEncrypt"

struct client_options {
    std::string endpoint_url;  // opc.tcp://host:port[/path]
    security_policy policy = security_policy::none;
    security_mode mode = security_mode::none;
    // User name and password; an empty user name is an anonymous session.
    std::string user;
    std::string password;
    // Our application instance certificate and key (PEM). Needed for Basic256Sha256; when
    // both files are missing they are generated (RSA 2048, self-signed, the application URI
    // in subjectAltName) and written there, the key mode 0600.
    std::string certificate_path;
    std::string private_key_path;
    std::string application_uri;  // empty: urn:clisonix:<host name>:opcua-client
    // Server certificates we trust (PEM or DER files). A server whose certificate is not
    // there is refused, unless trust_on_first_use copies it there on first sight.
    std::string trust_dir;
    bool trust_on_first_use = false;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds request_timeout{10000};
    std::chrono::milliseconds channel_lifetime{
        600000};  // renewed at 75 % of what the server grants
    std::chrono::milliseconds session_timeout{60000};
};

// One reference found by browse: the target node, its names and class.
struct reference {
    node_id target;
    node_id reference_type;
    bool is_forward = true;
    uint16_t browse_name_namespace = 0;
    std::string browse_name;
    std::string display_name;
    uint32_t node_class = 0;  // 1 Object, 2 Variable, 4 Method, 8 ObjectType ...
    node_id type_definition;
};

// One data change delivered by a subscription.
struct data_change {
    node_id node;
    data_value value;
};

class client {
public:
    client();
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // Opens the secure channel and an activated session. Errors name the reason: the server's
    // status (BadUserAccessDenied, BadSecurityChecksFailed...), an untrusted server certificate
    // (with its thumbprint and the trust directory), a timeout, a refused connection.
    result<void> connect(const client_options& options);
    bool connected() const;

    // The hierarchical references forward from a node (BrowseNext followed to the end).
    result<std::vector<reference>> browse(const node_id& node);
    // The Value attribute of each node, in order; a node that cannot be read has a Bad status.
    result<std::vector<data_value>> read(const std::vector<node_id>& nodes);

    // A subscription with one monitored item per node (data change, sampling at the
    // publishing interval); returns its id. Data changes reach on_change from publish().
    using change_callback = std::function<void(const data_change&)>;
    result<uint32_t> subscribe(const std::vector<node_id>& nodes,
                               std::chrono::milliseconds publishing_interval,
                               change_callback on_change);
    // Sends a Publish request (acknowledging what was received) and waits up to `wait` for
    // notifications, delivering each data change; returns how many were delivered. A quiet
    // subscription is not an error: 0 after `wait`.
    result<size_t> publish(std::chrono::milliseconds wait);

    // Closes the session and the channel (politely, then the socket). Safe to call twice.
    void close();

    // The server certificate's SHA-1 thumbprint (hex) once connected with security.
    std::string server_thumbprint() const;
    // The secure channel's current security token; a new one after each renewal (at 75 % of
    // the lifetime the server granted).
    uint32_t security_token_id() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

}  // namespace clisonix::opcua
