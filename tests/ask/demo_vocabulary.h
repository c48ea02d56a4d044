// A vocabulary built like the demo plant's (src/app/demo_plant.cpp): 2 sites, 3 lines each,
// 8 pumps, 6 compressors and 6 conveyors with the demo's metrics and units.
#pragma once

#include <cstdint>
#include <string>

#include "ask/ask.h"

namespace clisonix::ask::testing {

// `zone`: the IANA zone times are read in.
vocabulary demo_vocabulary(std::string zone = "Europe/Berlin");

// A small plant whose lines are named plainly: line-1 (pump-01, pump-02, compressor-01) and
// line-2 (pump-03 ... pump-06) in the site "plant-a".
vocabulary plain_lines_vocabulary(std::string zone = "Europe/Berlin");

// Saturday 2026-12-05 10:30 in Berlin (CET, +01:00).
inline constexpr int64_t saturday_1030 = 1796463000000;

}  // namespace clisonix::ask::testing
