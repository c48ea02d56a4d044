// Canonical series keys (storage.h): `measurement,tag=value field`, tags sorted by key,
// line-protocol escaping. Private to ingest.
#pragma once

#include <string>
#include <string_view>

namespace clisonix::ingest::detail {

// What a backslash may escape in a name: `\,`, `\ `, `\=` stand for the character; a backslash
// before anything else is itself (the line protocol reference: backslashes need no escaping).
inline bool escapable(char c) {
    return c == ',' || c == ' ' || c == '=';
}

enum class element { measurement, tag, field };

// Characters the canonical key escapes (storage::make_key): a measurement ends at ',' or
// ' '; tag keys, tag values and field keys also at '='; a literal backslash is escaped too,
// so that every key parses back to exactly its parts.
inline bool needs_escape(char c, element e) {
    return c == ',' || c == ' ' || c == '\\' || (c == '=' && e != element::measurement);
}

// Appends `text` (plain, unescaped) in its canonical escaped form.
inline void append_escaped(std::string& out, std::string_view text, element e) {
    for (char c : text) {
        if (needs_escape(c, e)) out.push_back('\\');
        out.push_back(c);
    }
}

// Appends `raw`, a name as written in line protocol, unescaped into `out`.
inline void append_unescaped(std::string& out, std::string_view raw) {
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 1 < raw.size() && escapable(raw[i + 1])) ++i;
        out.push_back(raw[i]);
    }
}

// Appends `raw`, a name as written, in canonical form. Without a backslash the written form
// is already canonical (the specials it could hold would have ended it, and an unescaped '='
// in a measurement stays unescaped), so it is copied.
inline void append_canonical(std::string& out, std::string_view raw, bool has_backslash,
                             element e) {
    if (!has_backslash) {
        out.append(raw);
        return;
    }
    for (size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '\\' && i + 1 < raw.size() && escapable(raw[i + 1])) c = raw[++i];
        if (needs_escape(c, e)) out.push_back('\\');
        out.push_back(c);
    }
}

}  // namespace clisonix::ingest::detail
