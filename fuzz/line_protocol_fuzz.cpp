// Arbitrary bytes through the line protocol parser: a clean result or a clean error, never a
// crash; an accepted batch holds only well-formed series keys, and a refused one is empty.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ingest/ingest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace clisonix;
    // Reused like a worker thread reuses them, so that stale state would show.
    static ingest::line_parser parser;
    static storage::write_batch batch;
    if (size == 0) return 0;
    ingest::line_options opts;
    opts.unit = static_cast<ingest::precision>(data[0] % 6);
    opts.now_ns = 1'700'000'000'000'000'000;
    opts.bounds.max_line_bytes = 4096;
    opts.bounds.max_points_per_request = 2000;
    opts.bounds.max_series_per_request = 500;
    std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto st = parser.parse(body, opts, batch);
    if (!st) {
        if (!batch.empty() || st.error().message.empty()) std::abort();
        return 0;
    }
    for (const auto& s : batch.series_entries()) {
        if (!storage::parse_key(s.key).ok()) std::abort();
    }
    for (const auto& p : batch.points()) {
        if (p.series >= batch.series_count()) std::abort();
    }
    return 0;
}
