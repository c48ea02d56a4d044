// Clisonix — the double a 32-bit float stands for, as people read it.
//
// Machines send IEEE single-precision values (Modbus float32 registers, Sparkplug Float,
// OPC UA Float). Widened as is, 21.3f becomes 21.299999237060547 in storage, queries and
// charts; the float's own shortest decimal text (21.3) is what the machine meant, and the
// double read from it round-trips to the same float.
#pragma once

#include <charconv>
#include <system_error>

namespace clisonix {

inline double decimal_of(float f) {
    char text[32];
    auto [end, ec] = std::to_chars(text, text + sizeof text, f);
    double d = static_cast<double>(f);
    if (ec == std::errc()) std::from_chars(text, end, d);  // locale-free, unlike strtod
    return d;
}

}  // namespace clisonix
