// Arbitrary bytes as a stored block: read_header and decode must return an error or points,
// never crash, read out of bounds or allocate without bound. Inputs that start with a valid
// block are also re-checked with the checksum recomputed, so that mutations reach the column
// decoders instead of stopping at the CRC.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "storage/block.h"
#include "storage/codec.h"

using namespace clisonix::storage;

namespace {
void check(std::span<const uint8_t> in) {
    size_t size = 0;
    auto h = block::read_header(in, &size);
    std::vector<int64_t> ts;
    std::vector<uint64_t> raw;
    std::vector<std::string> strings;
    auto st = block::decode(in, ts, raw, &strings);
    if (st.ok() && !h.ok()) __builtin_trap();
    if (st.ok() && (ts.size() != h->count || raw.size() != h->count || size > in.size()))
        __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> in(data, size);
    check(in);
    if (size > 4) {
        // The same bytes with a correct trailing checksum.
        std::vector<uint8_t> fixed(data, data + size);
        uint32_t crc = codec::crc32c(std::span<const uint8_t>(fixed).first(size - 4));
        for (int i = 0; i < 4; ++i)
            fixed[size - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
        check(fixed);
    }
    return 0;
}
