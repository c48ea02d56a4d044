// The UA TCP connection and its secure channel (Part 6 §6.7, §7.1): Hello/Acknowledge,
// OpenSecureChannel (asymmetric: RSA-OAEP, RSA-SHA256), then messages chunked, numbered,
// signed (HMAC-SHA256) and encrypted (AES-256-CBC) with keys derived from both nonces.
// Chunk parsing needs no socket (accept_chunk), so that the fuzz target drives it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "opcua/crypto.h"
#include "opcua/opcua.h"

namespace clisonix::opcua {

// A whole message received: the request it answers and its body after the type id.
struct incoming {
    uint32_t request_id = 0;
    uint32_t type_id = 0;  // the binary encoding id of the body (e.g. 634 ReadResponse)
    std::string body;
};

struct endpoint_address {
    std::string host;
    std::string port;
};
result<endpoint_address> parse_endpoint_url(std::string_view url);

class secure_channel {
public:
    using clock = std::chrono::steady_clock;
    static constexpr uint32_t receive_buffer_size = 65536;
    static constexpr uint32_t max_message_size = 16u << 20;
    static constexpr size_t max_partial_messages = 4;

    secure_channel() = default;
    ~secure_channel();
    secure_channel(const secure_channel&) = delete;
    secure_channel& operator=(const secure_channel&) = delete;

    // TCP connect and Hello/Acknowledge.
    result<void> connect(const std::string& url, std::chrono::milliseconds timeout);
    // The security of the channel; own_cert/key and server_cert live as long as the channel.
    void set_security(security_policy policy, security_mode mode,
                      const crypto::certificate* own_cert, EVP_PKEY* own_key,
                      const crypto::certificate* server_cert);
    // Sends OpenSecureChannel (issue or renew); returns its request id. The answer comes
    // through receive() and is applied by accept_open_response().
    result<uint32_t> send_open(bool renew, std::chrono::milliseconds requested_lifetime,
                               const std::string& request_header);
    result<void> accept_open_response(const incoming& m);
    bool renewal_due() const;
    bool is_open() const { return _token_id != 0 || _security_ready; }

    // Sends a request (its encoding id and body) as MSG chunks; returns the request id.
    result<uint32_t> send(uint32_t encoding_id, std::string_view body, const char* type = "MSG");
    // The next whole message, or an error (timeout, ERR from the server, bad chunk).
    result<incoming> receive(clock::time_point deadline);
    // Whether bytes wait on the socket within `wait`.
    bool readable(std::chrono::milliseconds wait);
    void close_socket();

    // One chunk (header included) as read from the wire; a whole message when it completes.
    // Public for the fuzz target, which drives it without a socket.
    result<std::optional<incoming>> accept_chunk(std::string chunk);

    uint32_t channel_id() const { return _channel_id; }
    uint32_t token_id() const { return _token_id; }
    uint32_t server_receive_buffer() const { return _send_buffer; }

private:
    struct keys {
        std::string sign, encrypt, iv;
    };
    result<void> read_exact(char* buf, size_t n, clock::time_point deadline);
    result<void> write_all(std::string_view data);
    result<std::string> secure_symmetric(const char* type, char chunk_type, uint32_t request_id,
                                         std::string_view body);
    result<std::string> unwrap_symmetric(std::string& chunk, size_t& offset);
    result<std::string> unwrap_asymmetric(std::string& chunk, size_t& offset);
    result<std::optional<incoming>> accept_body(char chunk_type, std::string_view rest);
    bool secured() const { return _policy != security_policy::none; }

    int _fd = -1;
    std::string _url;
    uint32_t _send_buffer = 8192;  // the server's receive buffer: our largest chunk
    uint32_t _server_max_message = 0;
    security_policy _policy = security_policy::none;
    security_mode _mode = security_mode::none;
    const crypto::certificate* _own_cert = nullptr;
    EVP_PKEY* _own_key = nullptr;
    const crypto::certificate* _server_cert = nullptr;

    uint32_t _channel_id = 0;
    uint32_t _token_id = 0;
    bool _security_ready = false;
    clock::time_point _token_renew_at{};
    std::string _client_nonce;
    keys _send_keys;
    std::map<uint32_t, keys> _receive_keys;  // by token id: the current and the previous one

    uint32_t _next_sequence = 1;
    uint32_t _next_request_id = 1;
    std::optional<uint32_t> _last_received_sequence;
    std::map<uint32_t, std::string> _partial;  // chunks of unfinished messages, by request id
};

}  // namespace clisonix::opcua
