// Private to src/notify: the webhook client, the signature, and channel validation.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "notify/notify.h"

namespace clisonix::notify::detail {

// libcurl's global state, once per process, before any thread uses it.
void init_http_client();

// Lower-case hex of HMAC-SHA256(key, body).
std::string hmac_sha256_hex(std::string_view key, std::string_view body);

// Where a webhook may connect. Refused unless allowed: unspecified, loopback, link-local,
// private (RFC 1918, fc00::/7, 100.64/10), multicast and reserved addresses. Allowed: the
// host names and networks of notify.webhook_allow. Copies share the parsed lists.
class egress_policy {
public:
    egress_policy();  // the defaults: nothing extra allowed
    // Comma-separated CIDR blocks, addresses and host names; "invalid_argument" naming the
    // entry that is none of them (field "notify.webhook_allow").
    static result<egress_policy> parse(std::string_view csv);
    // Empty when `address` (as resolved for the URL's `host`) may be reached; otherwise the
    // kind of address it is ("loopback", "private", ...).
    std::string refusal(std::string_view host, std::string_view address) const;
    bool host_allowed(std::string_view host) const;

private:
    struct allowed_networks;
    std::shared_ptr<allowed_networks> _networks;
    std::vector<std::string> _hosts;  // lower case, without a trailing dot
};

// True when a URL's host is an IPv4 or IPv6 address ("[::1]" included).
bool is_ip_literal(std::string_view host);
// The URL host without IPv6 brackets.
std::string address_text(std::string_view host);

// A last_error without the receiver's answer: "webhook: answered 500: <body>" becomes
// "webhook: answered 500" (what non-admins may see); other errors are returned unchanged.
std::string without_receiver_answer(std::string_view last_error);

// One POST of `body` to `url` with the Clisonix headers (see notify.h). Ok on a 2xx answer;
// "unavailable" naming the status or the transport error otherwise. Never follows
// redirects (a redirect could carry the signed body somewhere else) nor environment proxies.
// Every address the host resolves to is checked against `egress` just before the connect, so
// a name that resolves (or re-resolves) to an internal address is refused.
status post_webhook(const std::string& url, const std::string& secret, int64_t event_id,
                    const std::string& body, std::chrono::milliseconds timeout,
                    const egress_policy& egress);

// "invalid_argument" with the field: name (when `check_name`), type, url (http/https with a
// host; a literal address that `egress` refuses), topic (no wildcards), timeout_ms (100..60000
// or 0), secret (at most 1024 bytes).
status check_channel(const channel& c, bool check_name, const egress_policy& egress);

// The key sealing channel secrets: SHA-256 of notify.secret_key (32+ characters), else the
// 32 random bytes of <data.dir>/notify.key, created on first use with mode 0600.
result<std::string> secret_key_from(const config::config& cfg);

// Channel secrets at rest: AES-256-GCM under the 32-byte `key`, bound to the channel name,
// stored as "enc:v1:" + hex(nonce | ciphertext | tag). An empty key stores secrets as given.
bool is_sealed(std::string_view stored);
std::string seal_secret(std::string_view key, std::string_view channel_name,
                        std::string_view secret);
// The plaintext of a stored secret; a plaintext (from before encryption) comes back as it is.
// "corrupt" when a sealed secret does not open with `key`.
result<std::string> open_secret(std::string_view key, std::string_view channel_name,
                                std::string_view stored);

}  // namespace clisonix::notify::detail
