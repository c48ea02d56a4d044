// A webhook receiver for tests: a plain HTTP/1.1 server on 127.0.0.1 playing the user's
// endpoint. It records every request (method, target, headers, body), answers with the
// status (and body) it is told, and can stop listening (connections refused) and start again on the
// same port.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace clisonix::testing {

// The X-Clisonix-Signature a receiver checks: HMAC-SHA256 of the body under the channel's
// secret, in lower-case hex.
inline std::string hmac_hex(const std::string& key, const std::string& body) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
    std::string hex;
    char two[3];
    for (unsigned int i = 0; i < len; ++i) {
        std::snprintf(two, sizeof two, "%02x", mac[i]);
        hex += two;
    }
    return hex;
}

struct received_request {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    std::chrono::steady_clock::time_point at;  // when it arrived
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

class receiver {
public:
    // Listens at once on `port` (0: a free one).
    explicit receiver(uint16_t port = 0) : _port(port) { start(); }
    ~receiver() { stop(); }
    receiver(const receiver&) = delete;
    receiver& operator=(const receiver&) = delete;

    uint16_t port() const { return _port; }
    std::string url(const std::string& path = "/hook") const {
        return "http://127.0.0.1:" + std::to_string(_port) + path;
    }
    void set_status(int status) { _status = status; }
    // The body of every answer from now on ("nope" until told), sent as application/json.
    void set_body(std::string body) {
        std::lock_guard lock(_mutex);
        _body = std::move(body);
    }
    // Holds each answer this long after recording the request (a slow endpoint); a new
    // delay cuts the wait in progress short when it is shorter.
    void set_delay(std::chrono::milliseconds delay) {
        {
            std::lock_guard lock(_mutex);
            _delay_ms = static_cast<int>(delay.count());
        }
        _cv.notify_all();
    }

    void start() {
        if (_thread.joinable()) return;
        _fd = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(_port);
        if (::bind(_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(_fd, 64) != 0)
            throw std::runtime_error("receiver: cannot listen on port " + std::to_string(_port));
        socklen_t len = sizeof a;
        ::getsockname(_fd, reinterpret_cast<sockaddr*>(&a), &len);
        _port = ntohs(a.sin_port);
        _stopping = false;
        _thread = std::thread([this] { loop(); });
    }

    // Stops listening: from now on connections are refused.
    void stop() {
        if (!_thread.joinable()) return;
        _stopping = true;
        _cv.notify_all();  // ends a delayed answer's wait
        _thread.join();
        ::close(_fd);
        _fd = -1;
    }

    std::vector<received_request> requests() {
        std::lock_guard lock(_mutex);
        return _requests;
    }
    size_t count() {
        std::lock_guard lock(_mutex);
        return _requests.size();
    }
    // True once at least `n` requests arrived within `timeout`.
    bool wait_for(size_t n, std::chrono::milliseconds timeout) {
        std::unique_lock lock(_mutex);
        return _cv.wait_for(lock, timeout, [&] { return _requests.size() >= n; });
    }

private:
    void loop() {
        while (!_stopping) {
            pollfd p{_fd, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            int c = ::accept(_fd, nullptr, nullptr);
            if (c < 0) continue;
            serve(c);
            ::close(c);
        }
    }

    void serve(int c) {
        timeval tv{2, 0};
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string data;
        char buf[4096];
        size_t header_end = std::string::npos;
        while (header_end == std::string::npos) {
            ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) return;
            data.append(buf, static_cast<size_t>(n));
            header_end = data.find("\r\n\r\n");
        }
        received_request r;
        r.at = std::chrono::steady_clock::now();
        std::string head = data.substr(0, header_end);
        size_t line_end = head.find("\r\n");
        std::string first = head.substr(0, line_end);
        r.method = first.substr(0, first.find(' '));
        r.target = first.substr(first.find(' ') + 1);
        r.target = r.target.substr(0, r.target.find(' '));
        size_t at = line_end == std::string::npos ? head.size() : line_end + 2;
        while (at < head.size()) {
            size_t end = head.find("\r\n", at);
            if (end == std::string::npos) end = head.size();
            std::string line = head.substr(at, end - at);
            at = end + 2;
            auto colon = line.find(':');
            if (colon == std::string::npos) continue;
            std::string name = line.substr(0, colon);
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char ch) { return std::tolower(ch); });
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ')
                value.erase(0, 1);
            r.headers[name] = value;
        }
        size_t length =
            r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
        r.body = data.substr(header_end + 4);
        while (r.body.size() < length) {
            ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) return;
            r.body.append(buf, static_cast<size_t>(n));
        }
        const int status = _status;
        std::string reply;
        {
            std::lock_guard lock(_mutex);
            reply = "HTTP/1.1 " + std::to_string(status) +
                    " Test\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(_body.size()) + "\r\nConnection: close\r\n\r\n" + _body;
            _requests.push_back(std::move(r));
        }
        _cv.notify_all();
        {
            const auto from = std::chrono::steady_clock::now();
            std::unique_lock lock(_mutex);
            _cv.wait_until(lock, from + std::chrono::milliseconds(_delay_ms), [&] {
                return _stopping || std::chrono::steady_clock::now() >=
                                        from + std::chrono::milliseconds(_delay_ms);
            });
        }
        ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    }

    uint16_t _port;
    int _fd = -1;
    std::atomic<int> _status{200};
    int _delay_ms = 0;           // guarded by _mutex
    std::string _body = "nope";  // guarded by _mutex
    std::atomic<bool> _stopping{false};
    std::thread _thread;
    std::mutex _mutex;
    std::condition_variable _cv;
    std::vector<received_request> _requests;
};

}  // namespace clisonix::testing
