// Canonical series keys: `measurement,tag1=v1,tag2=v2 field`, line-protocol escaping.
//
// Besides line protocol's escapes (measurement: comma and space; tag keys, tag values and
// the field: comma, equals sign and space) the backslash itself is escaped, so that every
// key parses back to exactly the parts it was built from.
#include "storage/storage.h"

namespace clisonix::storage {

namespace {

void append_escaped(std::string& out, std::string_view s, bool escape_equals) {
    for (char c : s) {
        if (c == ',' || c == ' ' || c == '\\' || (escape_equals && c == '=')) out += '\\';
        out += c;
    }
}

error malformed(std::string_view key, std::string_view why) {
    return make_error("invalid_argument",
                      "malformed series key \"" + std::string(key) + "\": " + std::string(why));
}

// Reads up to the first unescaped character of `stops`, unescaping. Returns false when the
// key ends in a lone backslash.
bool read_part(std::string_view key, size_t& pos, std::string_view stops, std::string& out) {
    out.clear();
    while (pos < key.size()) {
        char c = key[pos];
        if (c == '\\') {
            if (pos + 1 >= key.size()) return false;
            out += key[pos + 1];
            pos += 2;
            continue;
        }
        if (stops.find(c) != std::string_view::npos) break;
        out += c;
        ++pos;
    }
    return true;
}

}  // namespace

std::string make_key(std::string_view measurement,
                     std::span<const std::pair<std::string, std::string>> tags,
                     std::string_view field) {
    std::string key;
    size_t n = measurement.size() + field.size() + 1;
    for (const auto& [k, v] : tags)
        n += k.size() + v.size() + 2;
    key.reserve(n + 8);
    append_escaped(key, measurement, false);
    for (const auto& [k, v] : tags) {
        key += ',';
        append_escaped(key, k, true);
        key += '=';
        append_escaped(key, v, true);
    }
    key += ' ';
    append_escaped(key, field, true);
    return key;
}

bool is_derived_field(std::string_view field) {
    return field.ends_with(".anomaly") || field.ends_with(".out_of_range") || field == "health" ||
           field.starts_with("health.");
}

result<series_info> parse_key(std::string_view key) {
    series_info info{};
    size_t pos = 0;
    if (!read_part(key, pos, ", ", info.measurement)) return malformed(key, "ends in a backslash");
    if (info.measurement.empty()) return malformed(key, "the measurement is empty");
    std::string k, v;
    while (pos < key.size() && key[pos] == ',') {
        ++pos;
        if (!read_part(key, pos, "=, ", k)) return malformed(key, "ends in a backslash");
        if (pos >= key.size() || key[pos] != '=')
            return malformed(key, "tag \"" + k + "\" has no '='");
        ++pos;
        if (!read_part(key, pos, ", ", v)) return malformed(key, "ends in a backslash");
        if (k.empty()) return malformed(key, "a tag key is empty");
        if (v.empty()) return malformed(key, "tag \"" + k + "\" has an empty value");
        info.tags.emplace_back(std::move(k), std::move(v));
        k.clear();
        v.clear();
    }
    if (pos >= key.size() || key[pos] != ' ') return malformed(key, "no field after the tags");
    ++pos;
    if (!read_part(key, pos, "", info.field)) return malformed(key, "ends in a backslash");
    if (info.field.empty()) return malformed(key, "the field is empty");
    for (size_t i = 1; i < info.tags.size(); ++i)
        if (!(info.tags[i - 1].first < info.tags[i].first))
            return malformed(key, "tags are not sorted by key");
    info.key = std::string(key);
    return info;
}

}  // namespace clisonix::storage
