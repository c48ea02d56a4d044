// WAL replay of arbitrary bytes: as a segment (records, checksums, truncation point) and as
// a record payload (so that the fuzzer reaches the decoder without forging CRCs). Either an
// error or a well-formed result, never a crash or an unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <span>

#include "storage/wal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace clisonix::storage;
    std::span<const uint8_t> in(data, size);
    wal::decoded d;
    if (wal::decode(in, d)) {
        // A payload that decodes is internally consistent.
        for (const auto& g : d.groups) {
            if (g.count == 0 || g.first + g.count > d.points.size()) __builtin_trap();
            if (g.type == value_type::string)
                for (uint32_t i = g.first; i < g.first + g.count; ++i)
                    if (d.points[i].raw >= d.strings.size()) __builtin_trap();
        }
    }
    size_t seen = 0;
    auto res = wal::scan(in, [&](std::span<const uint8_t> payload) {
        if (!wal::decode(payload, d)) return false;
        seen += wal::record_header + payload.size();
        return true;
    });
    if (res.valid_bytes != seen || res.valid_bytes > size) __builtin_trap();
    if (res.damaged != (res.valid_bytes != size)) __builtin_trap();
    return 0;
}
