// Clisonix — UTF-8 checks for what comes in (names, string values) and repair for what goes
// out (JSON answers must be valid UTF-8 even for bytes stored before names were checked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace clisonix::utf8 {

// The length of the well-formed UTF-8 sequence at s[i] (1 for ASCII), or 0 when the bytes
// there are not one: stray continuation bytes, overlong forms, surrogates and code points
// past U+10FFFF are refused, as RFC 3629 says (and Go's utf8.Valid, which InfluxData's line
// protocol decoder uses).
inline size_t sequence_length(std::string_view s, size_t i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b = byte(i);
    if (b < 0x80) return 1;
    const size_t len = b < 0xC2 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF5 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return 0;
    for (size_t k = 1; k < len; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    const unsigned char b1 = byte(i + 1);
    if (b == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b == 0xED && b1 > 0x9F) return 0;  // surrogate
    if (b == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    return len;
}

// The offset of the first byte that does not start a well-formed sequence, or npos when all
// of `s` is valid. ASCII runs are skipped eight bytes at a time.
inline size_t first_invalid(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        if (i + 8 <= s.size()) {
            uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        const size_t len = sequence_length(s, i);
        if (len == 0) return i;
        i += len;
    }
    return std::string_view::npos;
}

inline bool valid(std::string_view s) {
    return first_invalid(s) == std::string_view::npos;
}

// The replacement character U+FFFD, which stands for every byte that is not valid UTF-8.
inline constexpr std::string_view replacement = "\xEF\xBF\xBD";

// Appends `s` with each byte that does not start a well-formed sequence replaced by U+FFFD.
inline void append_repaired(std::string& out, std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        size_t bad = first_invalid(s.substr(i));
        if (bad == std::string_view::npos) {
            out.append(s.substr(i));
            return;
        }
        out.append(s.substr(i, bad));
        out.append(replacement);
        i += bad + 1;
    }
}

// `s` itself when valid, else a copy with the invalid bytes replaced by U+FFFD.
inline std::string repaired(std::string s) {
    if (valid(s)) return s;
    std::string out;
    out.reserve(s.size() + 16);
    append_repaired(out, s);
    return out;
}

}  // namespace clisonix::utf8
