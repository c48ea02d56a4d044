// Clisonix — writing JSON text by hand on hot paths (query answers, live messages, alarms),
// where building a Boost.JSON value first would cost an allocation per field.
#pragma once

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace clisonix {

// Appends `s` as a JSON string literal, quotes included. Valid UTF-8 is copied as it is;
// quotes, backslashes and control characters are escaped; a byte that is not valid UTF-8
// (a name stored before ingest checked names) becomes U+FFFD, so that the answer stays
// valid JSON for every client.
inline void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (size_t i = 0; i < s.size(); ++i) {
        const char ch = s[i];
        auto c = static_cast<unsigned char>(ch);
        if (c >= 0x80) {
            const size_t len = utf8::sequence_length(s, i);
            if (len == 0) {
                out.append(utf8::replacement);
            } else {
                out.append(s.substr(i, len));
                i += len - 1;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 0xf]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

// Appends `v` as a JSON number, the shortest text that reads back to the same double. JSON
// has no NaN or infinity: such a value is written as null.
inline void append_json_number(std::string& out, double v) {
    if (!std::isfinite(v)) {
        out += "null";
        return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

}  // namespace clisonix
