// libFuzzer target: the Sparkplug B payload decoder on arbitrary bytes, as the broker reads a
// PUBLISH on spBv1.0/... . Every payload it accepts is encoded again and must decode to the
// same metrics (what the broker sends, e.g. the rebirth command, must be what a peer reads),
// and every value is re-typed by every data type a birth may announce.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mqtt/sparkplug.h"

using namespace clisonix::mqtt::sparkplug;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto decoded = decode(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!decoded) return 0;
    for (const auto& m : decoded->metrics)
        for (uint32_t t = 0; t <= 21; ++t)
            (void)retype(m.v, t);
    auto again = decode(encode(*decoded));
    if (!again || again->metrics.size() != decoded->metrics.size() ||
        again->seq != decoded->seq || again->timestamp_ms != decoded->timestamp_ms)
        std::abort();
    return 0;
}
