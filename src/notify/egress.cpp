// Where webhooks may go: the address ranges refused by default and the allow-list that opens
// them for on-site receivers (notify.webhook_allow).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <optional>

#include "notify/internal.h"

namespace clisonix::notify::detail {

namespace {

// One IP network in 16 bytes: IPv4 as IPv4-mapped IPv6, so one comparison serves both.
struct network {
    std::array<unsigned char, 16> bytes{};
    int prefix = 0;  // over the 16 bytes
};

std::optional<std::array<unsigned char, 16>> parse_ip(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
        text = text.substr(1, text.size() - 2);
    if (text.empty() || text.size() > 64) return std::nullopt;
    const std::string s(text);
    std::array<unsigned char, 16> out{};
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        out[10] = out[11] = 0xff;
        std::memcpy(out.data() + 12, &v4, 4);
        return out;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(out.data(), &v6, 16);
        return out;
    }
    return std::nullopt;
}

bool is_v4(const std::array<unsigned char, 16>& a) {
    static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.data(), mapped, 12) == 0;
}

std::optional<network> parse_network(std::string_view text) {
    std::string_view host = text;
    int prefix = -1;
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        host = text.substr(0, slash);
        auto bits = text.substr(slash + 1);
        if (bits.empty() || bits.size() > 3) return std::nullopt;
        prefix = 0;
        for (char c : bits) {
            if (c < '0' || c > '9') return std::nullopt;
            prefix = prefix * 10 + (c - '0');
        }
    }
    auto ip = parse_ip(host);
    if (!ip) return std::nullopt;
    const bool v4 = is_v4(*ip);
    const int max = v4 ? 32 : 128;
    if (prefix > max) return std::nullopt;
    if (prefix < 0) prefix = max;
    return network{*ip, v4 ? prefix + 96 : prefix};
}

bool contains(const network& n, const std::array<unsigned char, 16>& a) {
    const int whole = n.prefix / 8, rest = n.prefix % 8;
    if (std::memcmp(n.bytes.data(), a.data(), whole) != 0) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
    return (n.bytes[whole] & mask) == (a[whole] & mask);
}

struct refused_range {
    const char* cidr;
    const char* kind;
};

// Ranges a webhook may not reach unless allowed: the host itself, its neighbours on the
// site network and the cloud metadata service (169.254.169.254) are what an attacker who
// can create a channel would aim at.
constexpr refused_range refused_ranges[] = {
    {"0.0.0.0/8", "unspecified"},     {"::/128", "unspecified"},
    {"127.0.0.0/8", "loopback"},      {"::1/128", "loopback"},
    {"169.254.0.0/16", "link-local"}, {"fe80::/10", "link-local"},
    {"10.0.0.0/8", "private"},        {"172.16.0.0/12", "private"},
    {"192.168.0.0/16", "private"},    {"100.64.0.0/10", "private (CGNAT)"},
    {"fc00::/7", "private"},          {"224.0.0.0/4", "multicast"},
    {"ff00::/8", "multicast"},        {"240.0.0.0/4", "reserved"},
    {"192.0.0.0/24", "reserved"},     {"198.18.0.0/15", "reserved"},
};

const std::vector<std::pair<network, const char*>>& refused_networks() {
    static const auto all = [] {
        std::vector<std::pair<network, const char*>> out;
        for (const auto& r : refused_ranges)
            out.emplace_back(*parse_network(r.cidr), r.kind);
        return out;
    }();
    return all;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool host_name_like(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    bool letter = false;
    for (unsigned char c : s) {
        if (std::isalpha(c)) letter = true;
        if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') return false;
    }
    return letter;
}

}  // namespace

struct egress_policy::allowed_networks {
    std::vector<network> list;
};

egress_policy::egress_policy() : _networks(std::make_shared<allowed_networks>()) {}

result<egress_policy> egress_policy::parse(std::string_view csv) {
    egress_policy p;
    while (!csv.empty()) {
        auto comma = csv.find(',');
        std::string_view entry = csv.substr(0, comma);
        csv = comma == std::string_view::npos ? std::string_view{} : csv.substr(comma + 1);
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front())))
            entry.remove_prefix(1);
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back())))
            entry.remove_suffix(1);
        if (entry.empty()) continue;
        if (auto n = parse_network(entry)) {
            p._networks->list.push_back(*n);
        } else if (host_name_like(entry) && entry.find('/') == std::string_view::npos) {
            std::string name = lower(entry);
            while (!name.empty() && name.back() == '.')
                name.pop_back();
            p._hosts.push_back(std::move(name));
        } else {
            return make_error("invalid_argument",
                              "notify.webhook_allow: \"" + std::string(entry) +
                                  "\" is not an IP address, CIDR block or host name",
                              "notify.webhook_allow");
        }
    }
    return p;
}

bool egress_policy::host_allowed(std::string_view host) const {
    std::string name = lower(host);
    while (!name.empty() && name.back() == '.')
        name.pop_back();
    return std::find(_hosts.begin(), _hosts.end(), name) != _hosts.end();
}

std::string egress_policy::refusal(std::string_view host, std::string_view address) const {
    auto ip = parse_ip(address);
    if (!ip) return "is not an IP address";
    if (host_allowed(host)) return {};
    for (const auto& n : _networks->list)
        if (contains(n, *ip)) return {};
    for (const auto& [n, kind] : refused_networks())
        if (contains(n, *ip)) return kind;
    return {};
}

bool is_ip_literal(std::string_view host) {
    return parse_ip(host).has_value();
}

std::string address_text(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        return std::string(host.substr(1, host.size() - 2));
    return std::string(host);
}

std::string without_receiver_answer(std::string_view last_error) {
    // "webhook: answered 500: <the receiver's body>" -> "webhook: answered 500"
    constexpr std::string_view answered = "webhook: answered ";
    if (!last_error.starts_with(answered)) return std::string(last_error);
    size_t end = answered.size();
    while (end < last_error.size() && std::isdigit(static_cast<unsigned char>(last_error[end])))
        ++end;
    return std::string(last_error.substr(0, end));
}

}  // namespace clisonix::notify::detail
