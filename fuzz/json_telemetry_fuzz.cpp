// Arbitrary bytes through the JSON telemetry parser: a clean result or a clean error naming
// what is wrong, never a crash; a refused request leaves the batch empty.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ingest/ingest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace clisonix;
    static ingest::json_parser parser;
    static storage::write_batch batch;
    ingest::json_options opts;
    opts.now_ns = 1'700'000'000'000'000'000;
    opts.bounds.max_points_per_request = 2000;
    opts.bounds.max_series_per_request = 500;
    std::string_view body(reinterpret_cast<const char*>(data), size);
    auto st = parser.parse(body, "fuzz device,1", opts, batch);
    if (!st) {
        if (!batch.empty() || st.error().message.empty()) std::abort();
        return 0;
    }
    for (const auto& s : batch.series_entries()) {
        auto info = storage::parse_key(s.key);
        if (!info.ok() || info->measurement != "telemetry" || info->tags.size() != 1 ||
            info->tags[0].second != "fuzz device,1")
            std::abort();
    }
    return 0;
}
