// Canonical series keys (storage.h): `measurement,tag=value field`, tags sorted by key,
// line-protocol escaping. Private to ingest.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace clisonix::ingest::detail {

// A byte that may not occur in a name: the C0 controls and DEL (InfluxData's line protocol
// decoder refuses the same set, "nonPrintable", in measurements, tag keys and values and
// field keys). One unsigned compare: bytes >= 0x80 also land here and go to the UTF-8 check.
constexpr bool unusual_byte(unsigned char c) {
    return static_cast<unsigned char>(c - 0x20) >= 0x5F;
}

// The one rule for every name that ingest stores, whatever the path (line protocol over
// HTTP, JSON telemetry over HTTP or MQTT, the device of a path or a token): no control
// character and valid UTF-8. The reason when `name` breaks it, else nullopt. Escaping
// cannot change the answer (escapes are ASCII before ASCII), so the written and the
// unescaped form may be passed alike.
inline std::optional<std::string> name_problem(std::string_view name) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < name.size(); ++i) {
        auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7F)
            return std::string("holds the control character 0x") + hex[c >> 4] + hex[c & 0xF] +
                   " at byte " + std::to_string(i);
    }
    if (size_t bad = utf8::first_invalid(name); bad != std::string_view::npos) {
        auto c = static_cast<unsigned char>(name[bad]);
        return std::string("is not valid UTF-8 (byte 0x") + hex[c >> 4] + hex[c & 0xF] +
               " at byte " + std::to_string(bad) + ")";
    }
    return std::nullopt;
}

// `name` for an error message: at most 200 bytes (an absurd name must not make an absurd
// message), invalid UTF-8 shown as U+FFFD, in quotes.
inline std::string quoted(std::string_view name) {
    constexpr size_t shown = 200;
    std::string out = "\"";
    utf8::append_repaired(out, name.substr(0, shown));
    if (name.size() > shown) out.append("...");
    out.push_back('"');
    return out;
}

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
