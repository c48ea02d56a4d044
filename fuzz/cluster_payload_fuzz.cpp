// The telemetry log's payload decoder (docs/format/cluster-log.md) on arbitrary bytes, raw
// (CLX1) and compressed (CLZ1): a message on the stream comes from anyone holding the NATS
// credentials. Either "corrupt" (or a type clash) or a well-formed batch, never a crash or an
// allocation beyond the stated bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/cluster.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace clisonix;
    storage::write_batch batch;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (cluster::decode(in, batch)) {
        for (const auto& p : batch.points()) {
            if (p.series >= batch.series_count()) __builtin_trap();
            if (batch.series_entries()[p.series].type == storage::value_type::string &&
                p.raw >= batch.strings().size())
                __builtin_trap();
        }
        // What decodes encodes again into the same points.
        std::string again;
        std::vector<uint32_t> one_shard(batch.series_count(), 0);
        cluster::encode_shard(batch, one_shard, 0, again);
        storage::write_batch round;
        if (batch.point_count() > 0 && !cluster::decode(again, round)) __builtin_trap();
        if (round.point_count() != batch.point_count()) __builtin_trap();
    } else if (!batch.empty()) {
        __builtin_trap();  // decode() leaves nothing behind on error
    }
    return 0;
}
