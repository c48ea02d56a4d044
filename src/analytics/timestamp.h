// Parsing of NAB's local timestamps ("YYYY-MM-DD HH:MM:SS[.ffffff]") into nanoseconds.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace clisonix::analytics {

// Nanoseconds since 1970-01-01 00:00:00 of the same (zone-less) clock.
result<int64_t> parse_timestamp(std::string_view text);

}  // namespace clisonix::analytics
