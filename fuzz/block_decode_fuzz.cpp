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
    // As a block of a part (version 2: columns only), with an index entry made up from the
    // input's size: whatever the entry claims, an error or exactly its count of points.
    block::known entry;
    entry.type = static_cast<value_type>(1 + in.size() % 4);
    entry.count = static_cast<uint32_t>(in.size() % 257);
    entry.first_ts = 1000;
    entry.last_ts = 1000 + 10 * static_cast<int64_t>(entry.count > 0 ? entry.count - 1 : 0);
    ts.clear();
    raw.clear();
    strings.clear();
    auto with_entry = block::decode(in, ts, raw, &strings, &entry);
    if (with_entry.ok() && !in.empty() && in[0] == 2 &&
        (ts.size() != entry.count || raw.size() != entry.count))
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
