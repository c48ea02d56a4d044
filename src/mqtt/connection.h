// Private to src/mqtt: one client connection: its socket (plain or TLS), the packet reader,
// the outbound buffer, the CONNECT handshake, and the handling of every packet a client sends.
// Lives on the broker's network thread only.
#pragma once

#include "mqtt/broker_state.h"

namespace clisonix::mqtt::detail {

struct connection : std::enable_shared_from_this<connection> {
    enum class state { tls_handshake, awaiting_connect, connected, closing, closed };

    connection(impl& b, tcp::socket sock, std::string peer)
        : br(b), plain(std::move(sock)), address(std::move(peer)) {}

    impl& br;
    tcp::socket plain;
    std::optional<asio::ssl::stream<tcp::socket>> secure;
    state st = state::awaiting_connect;
    uint8_t version = v311;
    std::string address;  // the peer's IP, for the per-address connection limit
    // The connect timeout counts from here, not from the last byte: a client that trickles
    // its CONNECT one byte at a time gets no more time than one that sends nothing.
    const clock::time_point opened_at = clock::now();
    clock::time_point last_rx = clock::now();
    std::chrono::milliseconds keep_alive{0};  // 0: until connected, opts.connect_timeout
    std::shared_ptr<session> sess;
    std::string authenticated_key;  // the API key a user session logged in with
    std::optional<will_message> will;
    bool send_will = true;
    uint16_t peer_receive_max = 65535;
    uint32_t peer_max_packet = 0;  // 0: no limit

    std::vector<uint8_t> in;  // a partial packet (plain) or everything read (TLS)
    bool reading = false;
    bool paused = false;
    std::string out, writing;
    bool writing_now = false;
    bool doomed = false;  // a close is posted
    clock::time_point closing_since{};

    // PUBACKs in the order the PUBLISH packets came.
    struct ack {
        uint16_t packet_id;
        uint8_t reason;
        bool ready;
    };
    std::deque<ack> acks;
    uint64_t ack_base = 0;  // seq of acks.front()
    size_t unresolved = 0;

    tcp::socket& lowest() { return secure ? secure->next_layer() : plain; }

    template <typename Handler>
    void read_some(asio::mutable_buffer b, Handler&& h) {
        if (secure)
            secure->async_read_some(b, std::forward<Handler>(h));
        else
            plain.async_read_some(b, std::forward<Handler>(h));
    }
    template <typename Handler>
    void write_all(asio::const_buffer b, Handler&& h) {
        if (secure)
            asio::async_write(*secure, b, std::forward<Handler>(h));
        else
            asio::async_write(plain, b, std::forward<Handler>(h));
    }

    void start();

    // Plain sockets wait for readability and then read into the broker's shared buffer, so
    // that an idle connection holds no read buffer; only a partial packet is kept in `in`.
    // TLS streams read into `in` directly (the SSL layer owns its own buffers anyway).
    void do_read();

    // New bytes (or, with n = 0, what `in` holds): every whole packet is handled, the rest
    // kept, then reading goes on unless paused or closing.
    void on_bytes(const uint8_t* data, size_t n);

    // Handles the whole packets at `data`; returns the bytes consumed.
    size_t parse(const uint8_t* data, size_t n);

    void pause();
    void resume();

    void send(std::string_view bytes);
    size_t outbound_bytes() const { return out.size() + writing.size(); }

    void do_write();

    // After the last packet is written: half-close and wait for the peer to close, so that
    // it reads our CONNACK/DISCONNECT instead of a reset.
    void finish_closing();

    // Sends `tail` (CONNACK or DISCONNECT, may be empty) and closes.
    void close_after(std::string tail);

    void protocol_close(uint8_t why);

    // Leaves the broker's books: session detached (or dropped), will published, hooks told.
    void detach();

    void close_now();

    // --- packets ------------------------------------------------------------------------

    // False when the packet must wait (telemetry while the writer is full).
    bool handle(const frame& f, std::string_view body);

    result<std::pair<std::string, std::string>> identify(const connect_packet& c);

    void on_connect(connect_packet& c);

    // Queues an acknowledgement; `ready` false for telemetry still being written.
    uint64_t push_ack(uint16_t id, uint8_t why, bool ready);
    void resolve_ack(uint64_t seq, uint8_t why);
    void send_ready_acks();

    void on_publish(const publish_packet& p);

    void on_puback(const ack_packet& a);

    void on_subscribe(const subscribe_packet& s);

    void on_unsubscribe(const unsubscribe_packet& u);

    // An outbound PUBLISH (never larger than the client accepts).
    void send_publish(std::string_view topic, std::string_view payload, uint8_t qos, uint16_t id);
};

}  // namespace clisonix::mqtt::detail
