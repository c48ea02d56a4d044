#include "opcua/secure_channel.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "opcua/binary.h"

namespace clisonix::opcua {
namespace {

constexpr std::string_view policy_uri_none = "http://opcfoundation.org/UA/SecurityPolicy#None";
constexpr std::string_view policy_uri_basic256sha256 =
    "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256";
constexpr size_t hmac_size = 32;
constexpr size_t aes_block = 16;
constexpr uint32_t open_request_id = 446, open_response_id = 449;

error unavailable(std::string message) {
    return make_error("unavailable", std::move(message));
}
error protocol_error(std::string message) {
    return make_error("unavailable", "OPC UA server sent a bad message: " + message);
}

void put_u32(std::string& s, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

}  // namespace

result<endpoint_address> parse_endpoint_url(std::string_view url) {
    constexpr std::string_view scheme = "opc.tcp://";
    if (!url.starts_with(scheme))
        return make_error("invalid_argument",
                          "endpoint URL '" + std::string(url) + "' must start with opc.tcp://",
                          "endpoint_url");
    auto rest = url.substr(scheme.size());
    rest = rest.substr(0, rest.find('/'));
    endpoint_address a;
    if (rest.starts_with("[")) {
        auto close = rest.find(']');
        if (close == std::string_view::npos)
            return make_error("invalid_argument",
                              "endpoint URL '" + std::string(url) + "' has an unclosed '['",
                              "endpoint_url");
        a.host = std::string(rest.substr(1, close - 1));
        rest = rest.substr(close + 1);
        if (rest.starts_with(":")) a.port = std::string(rest.substr(1));
    } else {
        auto colon = rest.rfind(':');
        a.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) a.port = std::string(rest.substr(colon + 1));
    }
    if (a.port.empty()) a.port = "4840";
    if (a.host.empty())
        return make_error("invalid_argument", "endpoint URL '" + std::string(url) + "' has no host",
                          "endpoint_url");
    for (char c : a.port)
        if (c < '0' || c > '9')
            return make_error("invalid_argument",
                              "endpoint URL '" + std::string(url) + "' has a bad port",
                              "endpoint_url");
    return a;
}

secure_channel::~secure_channel() {
    close_socket();
}

void secure_channel::close_socket() {
    if (_fd >= 0) ::close(_fd);
    _fd = -1;
}

result<void> secure_channel::connect(const std::string& url, std::chrono::milliseconds timeout) {
    auto addr = parse_endpoint_url(url);
    if (!addr) return addr.error();
    _url = url;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (int rc = getaddrinfo(addr->host.c_str(), addr->port.c_str(), &hints, &list); rc != 0)
        return unavailable("cannot resolve '" + addr->host + "': " + gai_strerror(rc));
    std::string last = "no address";
    const auto deadline = clock::now() + timeout;
    for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          ai->ai_protocol);
        if (fd < 0) continue;
        int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now())
                    .count();
            rc = ::poll(&p, 1, static_cast<int>(std::max<long>(left, 0)));
            if (rc == 1) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = err ? -1 : 0;
                errno = err;
            } else {
                rc = -1;
                errno = ETIMEDOUT;
            }
        }
        if (rc == 0) {
            _fd = fd;
            break;
        }
        last = std::strerror(errno);
        ::close(fd);
    }
    freeaddrinfo(list);
    if (_fd < 0) return unavailable("cannot connect to " + url + ": " + last);
    int one = 1;
    setsockopt(_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    // Hello: our buffers; the server answers with its own (Part 6 §7.1.2.3).
    binary::writer w;
    w.raw("HELF");
    w.u32(0);
    w.u32(0);  // protocol version
    w.u32(receive_buffer_size);
    w.u32(receive_buffer_size);  // send buffer size
    w.u32(max_message_size);
    w.u32(0);  // chunk count: no limit beyond the message size
    w.string(url);
    put_u32(w.out, 4, static_cast<uint32_t>(w.out.size()));
    if (auto st = write_all(w.out); !st) return st;

    char header[8];
    if (auto st = read_exact(header, 8, deadline); !st) return st;
    binary::reader hr(std::string_view(header, 8));
    hr.skip(4);
    uint32_t size = hr.u32();
    if (size < 8 || size > 4096)
        return protocol_error("an acknowledge of " + std::to_string(size) + " bytes");
    std::string rest(size - 8, '\0');
    if (auto st = read_exact(rest.data(), rest.size(), deadline); !st) return st;
    binary::reader r(rest);
    if (std::memcmp(header, "ERR", 3) == 0) {
        uint32_t status = r.u32();
        std::string reason = r.string();
        return unavailable("OPC UA server refused the connection: " + status_name_of(status) +
                           (reason.empty() ? "" : " (" + reason + ")"));
    }
    if (std::memcmp(header, "ACK", 3) != 0) return protocol_error("expected an acknowledge");
    (void)r.u32();                      // protocol version
    uint32_t server_receive = r.u32();  // what we may send in one chunk
    (void)r.u32();
    _server_max_message = r.u32();
    (void)r.u32();
    if (!r.ok()) return protocol_error(r.error());
    if (server_receive < 8192)
        return protocol_error("a receive buffer of " + std::to_string(server_receive) + " bytes");
    _send_buffer = server_receive;
    return {};
}

void secure_channel::set_security(security_policy policy, security_mode mode,
                                  const crypto::certificate* own_cert, EVP_PKEY* own_key,
                                  const crypto::certificate* server_cert) {
    _policy = policy;
    _mode = policy == security_policy::none ? security_mode::none : mode;
    _own_cert = own_cert;
    _own_key = own_key;
    _server_cert = server_cert;
}

result<void> secure_channel::write_all(std::string_view data) {
    if (_fd < 0) return unavailable("the OPC UA connection is closed");
    while (!data.empty()) {
        ssize_t n = ::send(_fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{_fd, POLLOUT, 0};
            if (::poll(&p, 1, 10000) != 1)
                return unavailable("the OPC UA server does not take our data");
            continue;
        }
        if (n <= 0)
            return unavailable(std::string("the OPC UA connection broke: ") + std::strerror(errno));
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

result<void> secure_channel::read_exact(char* buf, size_t n, clock::time_point deadline) {
    if (_fd < 0) return unavailable("the OPC UA connection is closed");
    while (n) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) return unavailable("the OPC UA server did not answer in time");
        pollfd p{_fd, POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(left));
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0) return unavailable("the OPC UA server did not answer in time");
        ssize_t got = ::recv(_fd, buf, n, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got == 0) return unavailable("the OPC UA server closed the connection");
        if (got < 0)
            return unavailable(std::string("the OPC UA connection broke: ") + std::strerror(errno));
        buf += got;
        n -= static_cast<size_t>(got);
    }
    return {};
}

bool secure_channel::readable(std::chrono::milliseconds wait) {
    if (_fd < 0) return false;
    pollfd p{_fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
}

result<uint32_t> secure_channel::send_open(bool renew, std::chrono::milliseconds lifetime,
                                           const std::string& request_header) {
    const bool secure = secured();
    _client_nonce = secure ? crypto::random_bytes(32) : std::string();
    binary::writer body;
    body.node(node_id::of(open_request_id));
    body.raw(request_header);
    body.u32(0);  // client protocol version
    body.u32(renew ? 1 : 0);
    body.i32(static_cast<int32_t>(_mode));
    if (secure)
        body.bytes(_client_nonce);
    else
        body.bytes("");
    body.u32(static_cast<uint32_t>(lifetime.count()));

    const uint32_t request_id = _next_request_id++;
    binary::writer w;
    w.raw("OPNF");
    w.u32(0);
    w.u32(_channel_id);
    w.string(secure ? policy_uri_basic256sha256 : policy_uri_none);
    if (secure) {
        w.bytes(_own_cert->der);
        w.bytes(crypto::sha1(_server_cert->der));
    } else {
        w.null_string();
        w.null_string();
    }
    const size_t header_size = w.out.size();
    binary::writer plain;
    plain.u32(_next_sequence++);
    plain.u32(request_id);
    plain.raw(body.out);
    if (!secure) {
        w.raw(plain.out);
        put_u32(w.out, 4, static_cast<uint32_t>(w.out.size()));
        if (auto st = write_all(w.out); !st) return st.error();
        return request_id;
    }
    // Asymmetric: pad to whole OAEP blocks, sign with our key, encrypt with the server's.
    const size_t cipher_block = crypto::key_bytes(_server_cert->key.get());
    const size_t plain_block = cipher_block - 42;
    const size_t signature_size = crypto::key_bytes(_own_key);
    const bool extra_padding = cipher_block > 256;
    size_t to_encrypt = plain.out.size() + 1 + signature_size + (extra_padding ? 1 : 0);
    size_t padding = (plain_block - to_encrypt % plain_block) % plain_block;
    to_encrypt += padding;
    const size_t total = header_size + to_encrypt / plain_block * cipher_block;
    if (total > _send_buffer)
        return unavailable("the OpenSecureChannel request is larger than the server's buffer");
    plain.u8(static_cast<uint8_t>(padding & 0xFF));
    for (size_t i = 0; i < padding; ++i)
        plain.u8(static_cast<uint8_t>(padding & 0xFF));
    if (extra_padding) plain.u8(static_cast<uint8_t>(padding >> 8));
    put_u32(w.out, 4, static_cast<uint32_t>(total));
    auto signature = crypto::rsa_sign(_own_key, w.out + plain.out);
    if (!signature) return signature.error();
    plain.raw(*signature);
    auto cipher = crypto::rsa_oaep_encrypt(_server_cert->key.get(), plain.out);
    if (!cipher) return cipher.error();
    w.raw(*cipher);
    if (w.out.size() != total) return make_error("internal", "OpenSecureChannel size mismatch");
    if (auto st = write_all(w.out); !st) return st.error();
    return request_id;
}

result<void> secure_channel::accept_open_response(const incoming& m) {
    binary::reader r(m.body);
    // ResponseHeader: timestamp, handle, service result, diagnostics, string table, header.
    (void)r.i64();
    (void)r.u32();
    uint32_t status = r.u32();
    r.diagnostic_info();
    for (size_t i = 0, n = r.count(4); i < n; ++i)
        (void)r.string();
    node_id t;
    std::string b;
    r.extension_object(t, b);
    if (!r.ok()) return protocol_error(r.error());
    if (m.type_id != open_response_id || status & 0x80000000u)
        return unavailable("OPC UA server refused the secure channel: " + status_name_of(status));
    (void)r.u32();  // server protocol version
    uint32_t channel_id = r.u32();
    uint32_t token_id = r.u32();
    (void)r.i64();  // created at
    uint32_t lifetime_ms = r.u32();
    std::string server_nonce = r.string();
    if (!r.ok()) return protocol_error(r.error());
    if (secured() && server_nonce.size() != 32)
        return protocol_error("a server nonce of " + std::to_string(server_nonce.size()) +
                              " bytes");
    _channel_id = channel_id;
    _token_id = token_id;
    _security_ready = true;
    // Renew at 75 % of the lifetime, as Part 4 §5.5.2 recommends.
    _token_renew_at = clock::now() + std::chrono::milliseconds(uint64_t(lifetime_ms) * 3 / 4);
    if (secured()) {
        // Part 6 §6.7.5: our keys from P_SHA256(server nonce, client nonce), the server's the other
        // way.
        auto ours = crypto::p_sha256(server_nonce, _client_nonce, 80);
        auto theirs = crypto::p_sha256(_client_nonce, server_nonce, 80);
        _send_keys = {ours.substr(0, 32), ours.substr(32, 32), ours.substr(64, 16)};
        _receive_keys[token_id] = {theirs.substr(0, 32), theirs.substr(32, 32),
                                   theirs.substr(64, 16)};
        while (_receive_keys.size() > 2)
            _receive_keys.erase(_receive_keys.begin());
    }
    return {};
}

bool secure_channel::renewal_due() const {
    return _security_ready && clock::now() >= _token_renew_at;
}

result<std::string> secure_channel::secure_symmetric(const char* type, char chunk_type,
                                                     uint32_t request_id, std::string_view body) {
    binary::writer w;
    w.raw(std::string_view(type, 3));
    w.u8(static_cast<uint8_t>(chunk_type));
    w.u32(0);
    w.u32(_channel_id);
    w.u32(_token_id);
    binary::writer plain;
    plain.u32(_next_sequence++);
    plain.u32(request_id);
    plain.raw(body);
    if (_mode == security_mode::sign_and_encrypt) {
        size_t to_encrypt = plain.out.size() + 1 + hmac_size;
        size_t padding = (aes_block - to_encrypt % aes_block) % aes_block;
        for (size_t i = 0; i <= padding; ++i)
            plain.u8(static_cast<uint8_t>(padding));
        put_u32(w.out, 4, static_cast<uint32_t>(w.out.size() + plain.out.size() + hmac_size));
        plain.raw(crypto::hmac_sha256(_send_keys.sign, w.out + plain.out));
        auto cipher = crypto::aes_cbc(true, _send_keys.encrypt, _send_keys.iv, plain.out);
        if (!cipher) return cipher.error();
        w.raw(*cipher);
    } else if (_mode == security_mode::sign) {
        put_u32(w.out, 4, static_cast<uint32_t>(w.out.size() + plain.out.size() + hmac_size));
        w.raw(plain.out);
        w.raw(crypto::hmac_sha256(_send_keys.sign, w.out));
    } else {
        w.raw(plain.out);
        put_u32(w.out, 4, static_cast<uint32_t>(w.out.size()));
    }
    return std::move(w.out);
}

result<uint32_t> secure_channel::send(uint32_t encoding_id, std::string_view body,
                                      const char* type) {
    binary::writer msg;
    msg.node(node_id::of(encoding_id));
    msg.raw(body);
    // The body that fits one chunk of the server's receive buffer, after headers, padding
    // and signature.
    size_t room = _send_buffer - 16 - 8;
    if (_mode == security_mode::sign_and_encrypt)
        room = (_send_buffer - 16) / aes_block * aes_block - 8 - hmac_size - 1;
    else if (_mode == security_mode::sign)
        room -= hmac_size;
    if (_server_max_message && msg.out.size() > _server_max_message)
        return make_error("too_large", "the request is larger than the OPC UA server accepts");
    const uint32_t request_id = _next_request_id++;
    std::string_view rest = msg.out;
    do {
        auto part = rest.substr(0, room);
        rest.remove_prefix(part.size());
        auto chunk = secure_symmetric(type, rest.empty() ? 'F' : 'C', request_id, part);
        if (!chunk) return chunk.error();
        if (auto st = write_all(*chunk); !st) return st.error();
    } while (!rest.empty());
    return request_id;
}

result<incoming> secure_channel::receive(clock::time_point deadline) {
    for (;;) {
        std::string chunk(8, '\0');
        if (auto st = read_exact(chunk.data(), 8, deadline); !st) return st.error();
        uint32_t size = uint32_t(uint8_t(chunk[4])) | uint32_t(uint8_t(chunk[5])) << 8 |
                        uint32_t(uint8_t(chunk[6])) << 16 | uint32_t(uint8_t(chunk[7])) << 24;
        if (size < 8 || size > receive_buffer_size)
            return protocol_error("a chunk of " + std::to_string(size) + " bytes (our buffer is " +
                                  std::to_string(receive_buffer_size) + ")");
        chunk.resize(size);
        if (auto st = read_exact(chunk.data() + 8, size - 8, deadline); !st) return st.error();
        auto m = accept_chunk(std::move(chunk));
        if (!m) return m.error();
        if (*m) return std::move(**m);
    }
}

result<std::string> secure_channel::unwrap_asymmetric(std::string& chunk, size_t& offset) {
    binary::reader r(std::string_view(chunk).substr(offset));
    std::string policy = r.string();
    std::string sender_cert = r.string();
    std::string thumbprint = r.string();
    if (!r.ok()) return protocol_error(r.error());
    offset += r.position();
    if (!secured()) {
        if (policy != policy_uri_none)
            return protocol_error("security policy '" + policy + "' on a None channel");
        return chunk.substr(offset);
    }
    if (policy != policy_uri_basic256sha256)
        return protocol_error("security policy '" + policy + "'");
    if (!_server_cert || sender_cert != _server_cert->der)
        return protocol_error("the OpenSecureChannel answer is signed by another certificate");
    if (thumbprint != crypto::sha1(_own_cert->der))
        return protocol_error("the OpenSecureChannel answer is encrypted for another certificate");
    auto plain = crypto::rsa_oaep_decrypt(_own_key, std::string_view(chunk).substr(offset));
    if (!plain) return protocol_error(plain.error().message);
    const size_t sig = crypto::key_bytes(_server_cert->key.get());
    const bool extra = crypto::key_bytes(_own_key) > 256;
    if (plain->size() < sig + 8 + (extra ? 2 : 1))
        return protocol_error("a short OpenSecureChannel answer");
    std::string signed_part = chunk.substr(0, offset) + plain->substr(0, plain->size() - sig);
    if (!crypto::rsa_verify(_server_cert->key.get(), signed_part,
                            plain->substr(plain->size() - sig)))
        return protocol_error("the OpenSecureChannel answer's signature does not verify");
    size_t end = plain->size() - sig;
    size_t padding = uint8_t((*plain)[end - 1]);
    size_t pad_total = padding + 1;
    if (extra) {
        padding = (padding << 8) | uint8_t((*plain)[end - 2]);
        pad_total = padding + 2;
    }
    if (pad_total > end) return protocol_error("padding longer than the message");
    return plain->substr(0, end - pad_total);
}

result<std::string> secure_channel::unwrap_symmetric(std::string& chunk, size_t& offset) {
    if (chunk.size() < offset + 4) return protocol_error("a chunk without its token id");
    binary::reader r(std::string_view(chunk).substr(offset, 4));
    uint32_t token = r.u32();
    offset += 4;
    if (_mode == security_mode::none) return chunk.substr(offset);
    auto k = _receive_keys.find(token);
    if (k == _receive_keys.end())
        return protocol_error("an unknown security token " + std::to_string(token));
    if (_mode == security_mode::sign_and_encrypt) {
        auto plain = crypto::aes_cbc(false, k->second.encrypt, k->second.iv,
                                     std::string_view(chunk).substr(offset));
        if (!plain) return protocol_error(plain.error().message);
        chunk.replace(offset, std::string::npos, *plain);
    }
    if (chunk.size() < offset + hmac_size + 8)
        return protocol_error("a chunk shorter than its signature");
    const size_t sig_at = chunk.size() - hmac_size;
    auto expected = crypto::hmac_sha256(k->second.sign, std::string_view(chunk).substr(0, sig_at));
    if (!crypto::equal_constant_time(expected, std::string_view(chunk).substr(sig_at)))
        return protocol_error("a message signature does not verify");
    size_t end = sig_at;
    if (_mode == security_mode::sign_and_encrypt) {
        size_t padding = uint8_t(chunk[end - 1]);
        if (padding + 1 > end - offset - 8)
            return protocol_error("padding longer than the message");
        end -= padding + 1;
    }
    return chunk.substr(offset, end - offset);
}

result<std::optional<incoming>> secure_channel::accept_chunk(std::string chunk) {
    if (chunk.size() < 8) return protocol_error("a chunk shorter than its header");
    const std::string_view type(chunk.data(), 3);
    const char chunk_type = chunk[3];
    if (type == "ERR") {
        binary::reader r(std::string_view(chunk).substr(8));
        uint32_t status = r.u32();
        std::string reason = r.string();
        return unavailable("OPC UA server closed the channel: " + status_name_of(status) +
                           (reason.empty() ? "" : " (" + reason + ")"));
    }
    if (type != "OPN" && type != "MSG" && type != "CLO")
        return protocol_error("a message of type '" + std::string(type) + "'");
    if (chunk_type != 'F' && chunk_type != 'C' && chunk_type != 'A')
        return protocol_error("a chunk of type '" + std::string(1, chunk_type) + "'");
    if (chunk.size() < 12) return protocol_error("a chunk without its channel id");
    binary::reader hr(std::string_view(chunk).substr(8, 4));
    uint32_t channel = hr.u32();
    if (_channel_id != 0 && channel != _channel_id)
        return protocol_error("a message for channel " + std::to_string(channel));
    size_t offset = 12;
    auto plain = type == "OPN" ? unwrap_asymmetric(chunk, offset) : unwrap_symmetric(chunk, offset);
    if (!plain) return plain.error();
    return accept_body(chunk_type, *plain);
}

result<std::optional<incoming>> secure_channel::accept_body(char chunk_type,
                                                            std::string_view rest) {
    binary::reader r(rest);
    uint32_t sequence = r.u32();
    uint32_t request_id = r.u32();
    if (!r.ok()) return protocol_error("a chunk without its sequence header");
    // Part 6 §6.7.2.4: every chunk's number is one more than the last (wrapping near 2^32).
    if (_last_received_sequence && sequence != *_last_received_sequence + 1 &&
        !(*_last_received_sequence > 4294966271u && sequence < 1024))
        return protocol_error("sequence number " + std::to_string(sequence) + " after " +
                              std::to_string(*_last_received_sequence));
    _last_received_sequence = sequence;
    rest.remove_prefix(8);
    if (chunk_type == 'A') {
        _partial.erase(request_id);
        binary::reader a(rest);
        uint32_t status = a.u32();
        std::string reason = a.string();
        return unavailable("OPC UA server aborted its answer: " + status_name_of(status) +
                           (reason.empty() ? "" : " (" + reason + ")"));
    }
    // Answers arrive one after another; a few interleaved is plenty, and bounds the memory a
    // server can make us hold to a few whole messages.
    if (!_partial.contains(request_id) && _partial.size() >= max_partial_messages)
        return protocol_error("more than " + std::to_string(max_partial_messages) +
                              " unfinished messages at once");
    auto& assembled = _partial[request_id];
    if (assembled.size() + rest.size() > max_message_size) {
        _partial.erase(request_id);
        return protocol_error("a message larger than " + std::to_string(max_message_size) +
                              " bytes");
    }
    assembled.append(rest);
    if (chunk_type == 'C') return std::optional<incoming>{};
    incoming m;
    m.request_id = request_id;
    m.body = std::move(assembled);
    _partial.erase(request_id);
    binary::reader tr(m.body);
    node_id t = tr.node();
    if (!tr.ok() || t.type != node_id::kind::numeric || t.namespace_index != 0)
        return protocol_error("a message without a type id");
    m.type_id = t.numeric;
    m.body.erase(0, tr.position());
    return std::optional<incoming>{std::move(m)};
}

}  // namespace clisonix::opcua
