// Trusted proxy networks and the one decision of who the client is.
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cstring>
#include <optional>

#include "gateway/gateway.h"

namespace clisonix::gateway {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// IPv4-mapped IPv6 reads as IPv4, so that "::ffff:10.0.0.1" and "10.0.0.1" are one host.
std::optional<boost::asio::ip::address> parse_address(std::string_view text) {
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address(std::string(text), ec);
    if (ec) return std::nullopt;
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    return a;
}

// An X-Forwarded-For entry may carry a port ("203.0.113.7:4711", "[2001:db8::1]:80").
std::optional<boost::asio::ip::address> parse_forwarded(std::string_view text) {
    text = trim(text);
    if (auto a = parse_address(text)) return a;
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close != std::string_view::npos) return parse_address(text.substr(1, close - 1));
        return std::nullopt;
    }
    auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos)
        return parse_address(text.substr(0, colon));
    return std::nullopt;
}

}  // namespace

result<network_list> network_list::parse(std::string_view csv) {
    network_list list;
    while (!csv.empty()) {
        auto comma = csv.find(',');
        std::string_view entry = trim(csv.substr(0, comma));
        csv = comma == std::string_view::npos ? std::string_view{} : csv.substr(comma + 1);
        if (entry.empty()) continue;
        std::string_view host = entry;
        int prefix = -1;
        if (auto slash = entry.find('/'); slash != std::string_view::npos) {
            host = entry.substr(0, slash);
            auto bits = entry.substr(slash + 1);
            prefix = 0;
            if (bits.empty() || bits.size() > 3) prefix = 1000;
            for (char c : bits) {
                if (c < '0' || c > '9') {
                    prefix = 1000;
                    break;
                }
                prefix = prefix * 10 + (c - '0');
            }
        }
        auto address = parse_address(host);
        int max_prefix = address && address->is_v4() ? 32 : 128;
        if (!address || prefix > max_prefix)
            return make_error("invalid_argument",
                              "not an IP address or network: \"" + std::string(entry) + "\"");
        network n;
        n.v6 = address->is_v6();
        n.prefix = prefix < 0 ? max_prefix : prefix;
        if (n.v6) {
            auto b = address->to_v6().to_bytes();
            std::copy(b.begin(), b.end(), n.bytes.begin());
        } else {
            auto b = address->to_v4().to_bytes();
            std::copy(b.begin(), b.end(), n.bytes.begin());
        }
        list._networks.push_back(n);
    }
    return list;
}

bool network_list::contains(std::string_view text) const {
    auto address = parse_address(trim(text));
    if (!address) return false;
    std::array<unsigned char, 16> bytes{};
    if (address->is_v6()) {
        auto b = address->to_v6().to_bytes();
        std::copy(b.begin(), b.end(), bytes.begin());
    } else {
        auto b = address->to_v4().to_bytes();
        std::copy(b.begin(), b.end(), bytes.begin());
    }
    for (const auto& n : _networks) {
        if (n.v6 != address->is_v6()) continue;
        int whole = n.prefix / 8, rest = n.prefix % 8;
        if (std::memcmp(n.bytes.data(), bytes.data(), whole) != 0) continue;
        if (rest != 0) {
            auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
            if ((n.bytes[whole] & mask) != (bytes[whole] & mask)) continue;
        }
        return true;
    }
    return false;
}

std::string resolve_client_address(const network_list& trusted, std::string_view peer,
                                   const std::vector<std::string_view>& forwarded_for) {
    std::string client(peer);
    if (forwarded_for.empty() || !trusted.contains(peer)) return client;
    // Walk from the right: each hop was added by the proxy to its right, which we trust; the
    // first hop that is not a trusted proxy is the client. Anything left of it was written
    // by the client itself and proves nothing. An entry that does not parse ends the walk
    // at the last address a trusted proxy vouched for.
    std::vector<std::string_view> hops;
    for (auto value : forwarded_for) {
        while (true) {
            auto comma = value.find(',');
            hops.push_back(value.substr(0, comma));
            if (comma == std::string_view::npos) break;
            value.remove_prefix(comma + 1);
        }
    }
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        auto address = parse_forwarded(*it);
        if (!address) return client;
        client = address->to_string();
        if (!trusted.contains(client)) return client;
    }
    return client;
}

http::middleware client_address(network_list trusted) {
    return [trusted = std::move(trusted)](http::request& req, const http::next& call_next) {
        if (req.peer_address.empty()) req.peer_address = req.remote_address;
        if (!trusted.empty()) {
            std::vector<std::string_view> forwarded;
            for (const auto& [name, value] : req.headers)
                if (name == "x-forwarded-for") forwarded.push_back(value);
            req.remote_address = resolve_client_address(trusted, req.peer_address, forwarded);
        }
        return call_next(req);
    };
}

}  // namespace clisonix::gateway
