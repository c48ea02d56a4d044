// libFuzzer target: the Prometheus remote-write decoder. The input is taken twice: as the
// request body itself (snappy's decoder on arbitrary bytes) and, snappy-compressed here, as
// the protobuf WriteRequest inside (so that the message parser and the label and sample
// checks see arbitrary messages, not only what survives decompression). A decode either
// fails with an empty batch or puts exactly the samples it counted into the batch.
#include <snappy.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/ingest.h"

using namespace clisonix;

namespace {

void check(ingest::remote_write_decoder& decoder, std::string_view body) {
    static const ingest::limits bounds{.max_line_bytes = 64 * 1024,
                                       .max_points_per_request = 10'000,
                                       .max_series_per_request = 1'000,
                                       .max_body_bytes = 1 << 20};
    storage::write_batch batch;
    auto counts = decoder.decode(body, bounds, batch);
    if (!counts) {
        if (!batch.empty() || counts.error().message.empty()) std::abort();
        return;
    }
    if (batch.point_count() != counts->samples) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static ingest::remote_write_decoder decoder;  // reused, as a worker thread reuses it
    std::string_view input(reinterpret_cast<const char*>(data), size);
    check(decoder, input);
    std::string compressed;
    snappy::Compress(input.data(), input.size(), &compressed);
    check(decoder, compressed);
    return 0;
}
