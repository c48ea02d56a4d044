// Clisonix — writing JSON text by hand on hot paths (query answers, live messages, alarms),
// where building a Boost.JSON value first would cost an allocation per field.
#pragma once

#include <string>
#include <string_view>

namespace clisonix {

// Appends `s` as a JSON string literal, quotes included. Bytes are copied as they are
// (callers pass UTF-8); quotes, backslashes and control characters are escaped.
inline void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
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

}  // namespace clisonix
