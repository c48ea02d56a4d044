// libFuzzer target: the OPC UA message decoder on arbitrary bytes, as the client reads them
// from a server.
//
// The input is a stream of UA TCP chunks (framed by the size in their header) on a channel
// with security None: each is checked and reassembled by the secure channel, and every whole
// message is decoded as the answer its type id names (GetEndpoints, Browse, Read, Publish,
// CreateSession...). The seed corpus is node-opcua's side of real sessions. The same bytes are
// also read as a stream of Variants and as a node id in text form.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "opcua/binary.h"
#include "opcua/secure_channel.h"
#include "opcua/services.h"

using namespace clisonix::opcua;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    secure_channel channel;
    size_t offset = 0;
    while (offset + 8 <= input.size()) {
        binary::reader header(input.substr(offset + 4, 4));
        const size_t chunk_size = header.u32();
        if (chunk_size < 8 || chunk_size > input.size() - offset ||
            chunk_size > secure_channel::receive_buffer_size)
            break;
        auto message = channel.accept_chunk(std::string(input.substr(offset, chunk_size)));
        offset += chunk_size;
        if (!message) break;  // an error ends the connection, as in the client
        if (*message) (void)services::decode_any((*message)->type_id, (*message)->body);
    }

    binary::reader r(input);
    while (r.ok() && r.left())
        (void)r.variant();
    (void)parse_node_id(input);
    return 0;
}
