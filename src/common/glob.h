// Clisonix — the glob patterns of series selection (`pump-*`, `temp?`), shared by the query
// language and the storage engine's tag index.
#pragma once

#include <string_view>

namespace clisonix {

// `*` matches any run of characters, `?` one; everything else is literal.
inline bool glob_match(std::string_view pattern, std::string_view text) {
    size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

// The characters every match of `pattern` starts with (up to its first `*` or `?`).
inline std::string_view glob_literal_prefix(std::string_view pattern) {
    return pattern.substr(0, pattern.find_first_of("*?"));
}

// Whether the pattern matches exactly one text: itself.
inline bool glob_is_literal(std::string_view pattern) {
    return pattern.find_first_of("*?") == std::string_view::npos;
}

}  // namespace clisonix
