// Clisonix — splitting one CSV line (RFC 4180 quoting) for the import commands.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clisonix {

// The cells of `line`: commas separate cells, a cell in double quotes may hold commas, and
// "" inside quotes is one quote. A carriage return outside quotes is dropped, so CRLF files
// read like LF ones. `unterminated` (when given) tells whether a quote was left open.
inline std::vector<std::string> split_csv_line(std::string_view line,
                                               bool* unterminated = nullptr) {
    std::vector<std::string> cells(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                cells.back().push_back('"');
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                cells.back().push_back(c);
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            cells.emplace_back();
        } else if (c != '\r') {
            cells.back().push_back(c);
        }
    }
    if (unterminated) *unterminated = quoted;
    return cells;
}

}  // namespace clisonix
