// Webhook delivery over libcurl, the HMAC signature, and channel validation.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "notify/internal.h"

namespace clisonix::notify::detail {

void init_http_client() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string hmac_sha256_hex(std::string_view key, std::string_view body) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        hex += digits[mac[i] >> 4];
        hex += digits[mac[i] & 0xf];
    }
    return hex;
}

namespace {

struct easy_deleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct list_deleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// Keeps the start of the answer for the error message; the rest is read and dropped.
size_t keep_start(char* data, size_t size, size_t count, void* user) {
    auto* out = static_cast<std::string*>(user);
    const size_t n = size * count;
    if (out->size() < 200) out->append(data, std::min(n, 200 - out->size()));
    return n;
}

bool printable(std::string_view s) {
    for (unsigned char ch : s)
        if (ch < 0x20 || ch == 0x7f) return false;
    return true;
}

// The URL's host as curl parses it (IPv6 in brackets); empty when it does not parse.
std::string host_of(const std::string& url) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
    char* host = nullptr;
    if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK ||
        curl_url_get(u.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK)
        return {};
    std::string out = host ? host : "";
    curl_free(host);
    return out;
}

// What the connect-time check needs, and what it refused (for the error message).
struct connect_guard {
    const egress_policy* egress;
    std::string host;
    std::string refused;  // "127.0.0.1 (loopback)" of the last refused address
};

// libcurl calls this for every address it is about to connect to, after name resolution:
// the one place that sees the address actually used, whatever DNS answered before.
curl_socket_t open_checked_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
    auto* guard = static_cast<connect_guard*>(user);
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    char text[INET6_ADDRSTRLEN] = {};
    if (address->family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&address->addr);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    } else if (address->family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address->addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    } else {
        guard->refused = "an address of family " + std::to_string(address->family);
        return CURL_SOCKET_BAD;
    }
    auto why = guard->egress->refusal(guard->host, text);
    if (!why.empty()) {
        guard->refused = std::string(text) + " (" + why + ")";
        return CURL_SOCKET_BAD;
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

}  // namespace

status post_webhook(const std::string& url, const std::string& secret, int64_t event_id,
                    const std::string& body, std::chrono::milliseconds timeout,
                    const egress_policy& egress) {
    std::unique_ptr<CURL, easy_deleter> h(curl_easy_init());
    if (!h) return make_error("unavailable", "webhook: cannot create an HTTP client");
    curl_slist* raw = nullptr;
    auto add = [&](const std::string& line) { raw = curl_slist_append(raw, line.c_str()); };
    add("Content-Type: application/json");
    add("X-Clisonix-Event-Id: " + std::to_string(event_id));
    if (!secret.empty()) add("X-Clisonix-Signature: sha256=" + hmac_sha256_hex(secret, body));
    add("Expect:");  // no 100-continue round trip
    std::unique_ptr<curl_slist, list_deleter> headers(raw);

    std::string answer;
    char errbuf[CURL_ERROR_SIZE] = {};
    CURL* c = h.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "Clisonix-Webhook/1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_start);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    // No proxy from the environment: the address check must see the receiver, not a proxy.
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    connect_guard guard{&egress, host_of(url), {}};
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &guard);

    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK && !guard.refused.empty())
        return make_error("unavailable", "webhook: " + guard.host + " resolves to " +
                                             guard.refused +
                                             ", which webhooks may not reach unless it is in "
                                             "notify.webhook_allow");
    if (rc != CURLE_OK) {
        std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        return make_error("unavailable", "webhook: " + why);
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) return {};
    if (!printable(answer)) answer.clear();
    return make_error("unavailable", "webhook: answered " + std::to_string(code) +
                                         (answer.empty() ? "" : ": " + answer));
}

status check_channel(const channel& c, bool check_name, const egress_policy& egress) {
    auto bad = [](std::string message, std::string field) {
        return make_error("invalid_argument", std::move(message), std::move(field));
    };
    if (check_name) {
        bool ok = !c.name.empty() && c.name.size() <= 64 &&
                  std::isalnum(static_cast<unsigned char>(c.name[0]));
        for (unsigned char ch : c.name)
            ok = ok && (std::isalnum(ch) || ch == '.' || ch == '_' || ch == '@' || ch == '-');
        if (!ok)
            return bad("name must be 1..64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit",
                       "name");
    }
    if (c.secret.size() > 1024) return bad("secret must be at most 1024 bytes", "secret");
    if (c.type == "webhook") {
        if (c.url.empty()) return bad("A webhook channel needs a url", "url");
        if (c.url.size() > 2048 || !printable(c.url) || c.url.find(' ') != std::string::npos)
            return bad("url must be an http:// or https:// URL", "url");
        std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
        if (!u || curl_url_set(u.get(), CURLUPART_URL, c.url.c_str(), 0) != CURLUE_OK)
            return bad("url must be an http:// or https:// URL", "url");
        char* scheme = nullptr;
        char* host = nullptr;
        curl_url_get(u.get(), CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(u.get(), CURLUPART_HOST, &host, 0);
        std::string s = scheme ? scheme : "", hs = host ? host : "";
        curl_free(scheme);
        curl_free(host);
        // The URL must say its scheme: curl would otherwise guess one.
        if ((s != "http" && s != "https") || hs.empty() ||
            !(c.url.starts_with("http://") || c.url.starts_with("https://")))
            return bad("url must be an http:// or https:// URL with a host", "url");
        // A literal address is refused at once; a host name is checked on every connect.
        if (is_ip_literal(hs)) {
            auto why = egress.refusal(hs, address_text(hs));
            if (!why.empty())
                return bad("url: " + address_text(hs) + " (" + why +
                               ") is not reachable for webhooks unless notify.webhook_allow "
                               "lists it",
                           "url");
        }
        if (c.timeout_ms != 0 && (c.timeout_ms < 100 || c.timeout_ms > 60'000))
            return bad("timeout_ms must be 100..60000", "timeout_ms");
        if (!c.topic.empty()) return bad("topic is for mqtt channels", "topic");
        return {};
    }
    if (c.type == "mqtt") {
        if (c.topic.empty()) return bad("An mqtt channel needs a topic", "topic");
        if (c.topic.size() > 256 || !printable(c.topic) ||
            c.topic.find_first_of("+#") != std::string::npos || c.topic.starts_with('$'))
            return bad("topic must be 1..256 characters without + # or a leading $", "topic");
        if (!c.url.empty()) return bad("url is for webhook channels", "url");
        if (!c.secret.empty()) return bad("secret is for webhook channels", "secret");
        return {};
    }
    return bad("type must be webhook or mqtt", "type");
}

}  // namespace clisonix::notify::detail
