// Clisonix — wall-clock time as the product stores it: integers since the Unix epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace clisonix {

// Now, in milliseconds since the epoch (metadata timestamps: created_at, last_seen ...).
inline int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Now, in nanoseconds since the epoch (the time-series engine's unit).
inline int64_t now_ns() {
    using namespace std::chrono;
    return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace clisonix
