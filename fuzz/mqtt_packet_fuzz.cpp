// libFuzzer target: the MQTT packet decoder on arbitrary bytes, as a broker reads them.
//
// The first byte picks the protocol level (3.1.1 or 5.0); the rest is a stream of packets
// framed as on the wire. Every packet the decoder accepts is encoded again and must decode
// to the same kind of packet (what the broker sends must be what a peer can read).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "mqtt/codec.h"

using namespace clisonix::mqtt;

namespace {

void reencode(const packet& p, uint8_t version) {
    std::string out;
    std::visit(
        [&](const auto& pk) {
            using T = std::decay_t<decltype(pk)>;
            if constexpr (std::is_same_v<T, connect_packet>) {
                encode(pk, out);
            } else if constexpr (std::is_same_v<T, ping_packet>) {
                encode(pk, out);
            } else if constexpr (std::is_same_v<T, auth_packet>) {
                return;
            } else {
                encode(pk, version, out);
            }
        },
        p);
    if (out.empty()) return;
    frame f;
    if (read_frame(reinterpret_cast<const uint8_t*>(out.data()), out.size(), 1u << 28, f) !=
        frame_status::complete)
        std::abort();
    const uint8_t v =
        std::holds_alternative<connect_packet>(p) ? std::get<connect_packet>(p).version : version;
    packet again;
    if (decode(f.first, std::string_view(out).substr(f.header_size), v, again) != reason::success)
        std::abort();
    if (again.index() != p.index()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const uint8_t version = (data[0] & 1) ? v5 : v311;
    size_t offset = 1;
    while (offset < size) {
        frame f;
        auto st = read_frame(data + offset, size - offset, 64 * 1024, f);
        if (st != frame_status::complete) break;
        std::string_view body(reinterpret_cast<const char*>(data + offset + f.header_size),
                              f.remaining);
        packet p;
        if (decode(f.first, body, version, p) == reason::success) reencode(p, version);
        offset += f.total();
    }
    // The helpers on the raw text as well.
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (valid_topic_filter(text)) (void)topic_matches(text, "v1/devices/me/attributes");
    (void)valid_utf8(text);
    return 0;
}
