// Test helper: a raw MQTT connection speaking through the product's codec, for packets a
// well-behaved client never sends and for exact reason codes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>

#include "mqtt/codec.h"

namespace clisonix {

class raw_client {
public:
    explicit raw_client(uint16_t port) {
        _fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(_fd);
            _fd = -1;
        }
    }
    ~raw_client() { close(); }
    void close() {
        if (_fd >= 0) ::close(_fd);
        _fd = -1;
    }
    bool send(const std::string& bytes) {
        return _fd >= 0 && ::send(_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                               static_cast<ssize_t>(bytes.size());
    }
    // The next packet, or nullopt when the peer closed or `timeout` passed.
    std::optional<mqtt::packet> read(uint8_t version,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            mqtt::frame f;
            auto st = mqtt::read_frame(reinterpret_cast<const uint8_t*>(_buf.data()), _buf.size(),
                                       1 << 28, f);
            if (st == mqtt::frame_status::complete) {
                _body = _buf.substr(f.header_size, f.remaining);
                _buf.erase(0, f.total());
                mqtt::packet p;
                if (mqtt::decode(f.first, _body, version, p) != 0) return std::nullopt;
                return p;
            }
            if (!fill(deadline)) return std::nullopt;
        }
    }
    // True when the broker closes the connection within `timeout` (packets before are skipped).
    bool closed_by_peer(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            if (!fill(deadline)) return _eof;
        }
    }
    void connect(uint8_t version, const std::string& user, std::optional<std::string> password = {},
                 uint16_t keep_alive = 60, std::optional<mqtt::will_message> will = {},
                 bool clean = true, const std::string& client_id = "raw") {
        mqtt::connect_packet c;
        c.version = version;
        c.client_id = client_id;
        c.clean_start = clean;
        c.keep_alive = keep_alive;
        c.username = user;
        c.password = password;
        c.will = will;
        if (!clean && version == mqtt::v5) c.props.session_expiry = 600;
        std::string b;
        mqtt::encode(c, b);
        send(b);
    }

private:
    bool fill(std::chrono::steady_clock::time_point deadline) {
        if (_fd < 0 || _eof) return false;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{_fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        char tmp[4096];
        ssize_t n = ::recv(_fd, tmp, sizeof tmp, 0);
        if (n <= 0) {
            _eof = true;
            return false;
        }
        _buf.append(tmp, static_cast<size_t>(n));
        return true;
    }
    int _fd = -1;
    bool _eof = false;
    std::string _buf;
    std::string _body;
};

inline uint8_t connack_reason(raw_client& c, uint8_t version) {
    auto p = c.read(version);
    if (!p || !std::holds_alternative<mqtt::connack_packet>(*p)) return 0xFF;
    return std::get<mqtt::connack_packet>(*p).reason;
}

inline std::string publish_bytes(uint8_t version, const std::string& topic,
                                 const std::string& payload, uint8_t qos, uint16_t id = 0) {
    std::string b;
    mqtt::encode(mqtt::publish_packet{topic, payload, qos, false, false, id, {}}, version, b);
    return b;
}

inline std::optional<uint8_t> disconnect_reason(raw_client& c) {
    for (int i = 0; i < 10; ++i) {
        auto p = c.read(mqtt::v5);
        if (!p) return std::nullopt;
        if (auto* d = std::get_if<mqtt::disconnect_packet>(&*p)) return d->reason;
    }
    return std::nullopt;
}

}  // namespace clisonix
